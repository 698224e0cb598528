"""virtkit.drivers.qemu.command: golden qemuxml2argv cases and unit tests."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.drivers.qemu.cases import DATA, Case, all_cases, invalid_cases
from virtkit.drivers.qemu.command import (
    CommandContext,
    Tap,
    build_command,
    command_environment,
    device_parts,
    disk_names,
    interface_ids,
    interface_names,
    keyval,
    lifecycle,
)
from virtkit.errors import ErrorCode, ErrorDomain, NoSupportError, VirtError, XMLError, XMLSchemaError
from virtkit.xml.domain import (
    CharDevice,
    Disk,
    DomainConfig,
    Graphics,
    Input,
    Interface,
    LifecycleAction,
    OSConfig,
    Sound,
    parse_domain,
)

REGENERATE = os.environ.get("VIRTKIT_REGENERATE") == "1"
CASES = all_cases()
OK_CASES = [c for c in CASES if not c.expects_error]
ERROR_CASES = [c for c in CASES if c.expects_error]


# ---------------------------------------------------------------- golden files


@pytest.mark.parametrize("case", OK_CASES, ids=lambda c: c.name)
def test_golden_args(case: Case) -> None:
    args = build_command(case.config(), case.context())
    text = "\n".join(args) + "\n"
    if REGENERATE or not case.args_file.exists():
        if not REGENERATE:
            pytest.fail(f"{case.args_file.name} is missing; run with VIRTKIT_REGENERATE=1 and review it")
        case.args_file.write_text(text)
    assert text == case.args_file.read_text()


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.name)
def test_golden_errors(case: Case) -> None:
    code, fragment = case.expected_error()
    with pytest.raises(VirtError) as info:
        build_command(case.config(), case.context())
    err = info.value
    assert err.code == ErrorCode[code], str(err)
    assert err.domain == ErrorDomain.QEMU
    assert fragment in err.message
    assert not case.args_file.exists(), "an error case must not have an .args file"


@pytest.mark.parametrize("path", invalid_cases(), ids=lambda p: p.stem)
def test_invalid_xml_fails_the_schema(path: os.PathLike[str]) -> None:
    with pytest.raises(XMLSchemaError):
        parse_domain(open(path).read())


def test_case_files_are_paired() -> None:
    stems = {c.name for c in CASES}
    assert len(CASES) >= 25 and len(ERROR_CASES) >= 10
    for f in DATA.iterdir():
        if f.suffix in (".args", ".err", ".ctx"):
            assert f.stem in stems, f"{f.name} has no {f.stem}.xml"
    for c in CASES:
        assert c.args_file.exists() != c.expects_error or REGENERATE, c.name


def test_golden_arguments_are_one_per_line() -> None:
    for c in OK_CASES:
        if c.args_file.exists():
            lines = c.args_file.read_text().splitlines()
            assert lines[0].startswith("/") and all(lines), c.name


# ---------------------------------------------------------------- unit tests


def _cfg(**kw: object) -> DomainConfig:
    base: dict[str, object] = {"name": "t", "type": "qemu", "memory": 65536,
                               "os": OSConfig(type="hvm", machine="pc")}
    base.update(kw)
    return DomainConfig(**base)  # type: ignore[arg-type]


CTX = CommandContext(qmp_socket="/tmp/t.qmp", emulator="/usr/bin/qemu-system-x86_64", sandbox=False)


def _arg_after(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_keyval_escapes_commas_and_booleans() -> None:
    assert keyval({"driver": "file", "filename": "/a,b", "read-only": True, "x": False}) == \
        "driver=file,filename=/a,,b,read-only=on,x=off"
    assert keyval({"id": "n", "type": "user"}, "type") == "user,id=n"


def test_names_are_stable() -> None:
    n = disk_names("vdb")
    assert (n.device_id, n.format_node, n.storage_node) == ("disk-vdb", "vdb-format", "vdb-storage")
    assert interface_names(3) == ("hostnet3", "net3")


@pytest.mark.parametrize(("dev", "slot"), [("hda", "bus=ide.0,unit=0"), ("hdb", "bus=ide.0,unit=1"),
                                           ("hdc", "bus=ide.1,unit=0"), ("hdd", "bus=ide.1,unit=1")])
def test_ide_slots_on_pc(dev: str, slot: str) -> None:
    disk = Disk(source="/x.img", target_dev=dev)
    args = build_command(_cfg(disks=(disk,)), CTX)
    device = [a for a in _arg_after(args, "-device") if a.startswith("ide-hd")][0]
    assert slot in device


def test_disk_letters_count_like_columns() -> None:
    disks = tuple(Disk(source=f"/{d}.img", target_dev=d, target_bus="scsi") for d in ("sdz", "sdaa"))
    args = build_command(_cfg(disks=disks), CTX)
    scsi = [a for a in _arg_after(args, "-device") if a.startswith("scsi-hd")]
    assert "scsi-id=25" in scsi[0] and "scsi-id=26" in scsi[1]


def test_interface_without_mac_is_a_programming_error() -> None:
    with pytest.raises(VirtError, match="fill_missing_macs"):
        build_command(_cfg(interfaces=(Interface(type="user"),)), CTX)


def test_tap_interface_needs_a_tap() -> None:
    iface = Interface(type="bridge", source="br0", mac="52:54:00:00:00:01")
    with pytest.raises(NoSupportError) as info:
        build_command(_cfg(interfaces=(iface,)), CTX)
    assert info.value.code == ErrorCode.NO_SUPPORT and info.value.domain == ErrorDomain.QEMU
    args = build_command(_cfg(interfaces=(iface,)), dataclasses.replace(CTX, taps={0: Tap(fd=5)}))
    assert "tap,id=hostnet0,fd=5" in args


def test_kvm_type_means_kvm_accel_and_qemu_means_tcg() -> None:
    for typ, accel in (("kvm", "accel=kvm"), ("qemu", "accel=tcg")):
        machine = _arg_after(build_command(_cfg(type=typ), CTX), "-machine")[0]
        assert accel in machine


def test_no_emulator_anywhere_is_an_error() -> None:
    with pytest.raises(VirtError, match="no emulator"):
        build_command(_cfg(), dataclasses.replace(CTX, emulator=None))


def test_start_paused_and_pidfile_are_context() -> None:
    args = build_command(_cfg(), CTX)
    assert "-S" in args and "-pidfile" not in args
    args = build_command(_cfg(), dataclasses.replace(CTX, start_paused=False, pidfile="/run/p"))
    assert "-S" not in args and _arg_after(args, "-pidfile") == ["/run/p"]


def test_vnc_password_never_on_the_command_line() -> None:
    cfg = _cfg(graphics=(Graphics(type="vnc", port=5905, passwd="hunter2"),))
    args = build_command(cfg, CTX)
    assert not any("hunter2" in a for a in args)
    assert _arg_after(args, "-vnc") == ["127.0.0.1:5,password=on"]


def test_vnc_autoport_lets_qemu_pick() -> None:
    cfg = _cfg(graphics=(Graphics(type="vnc", port=-1),))
    assert _arg_after(build_command(cfg, CTX), "-vnc") == ["127.0.0.1:0,to=99"]
    ctx = dataclasses.replace(CTX, vnc_display=12)
    assert _arg_after(build_command(cfg, ctx), "-vnc") == ["127.0.0.1:12"]


def test_sdl_environment() -> None:
    cfg = _cfg(graphics=(Graphics(type="sdl", display=":1", xauth="/x/.Xauthority"),))
    assert command_environment(cfg) == {"DISPLAY": ":1", "XAUTHORITY": "/x/.Xauthority"}
    assert command_environment(_cfg()) == {}


@pytest.mark.parametrize(("reboot", "expected"), [
    (None, "reboot=reset"), (LifecycleAction.RESTART, "reboot=reset"),
    (LifecycleAction.DESTROY, "reboot=shutdown"), (LifecycleAction.PRESERVE, "reboot=shutdown"),
])
def test_lifecycle_reboot_mapping(reboot: LifecycleAction | None, expected: str) -> None:
    life = lifecycle(_cfg(on_reboot=reboot))
    assert life.qemu_action.startswith(expected)
    assert "shutdown=pause" in life.qemu_action


def test_lifecycle_defaults() -> None:
    life = lifecycle(_cfg())
    assert (life.on_poweroff, life.on_reboot, life.on_crash) == (
        LifecycleAction.DESTROY, LifecycleAction.RESTART, LifecycleAction.DESTROY)


@pytest.mark.parametrize("action", list(LifecycleAction))
def test_every_action_is_accepted_on_crash(action: LifecycleAction) -> None:
    assert lifecycle(_cfg(on_crash=action)).on_crash is action


@pytest.mark.parametrize("what", ["on_poweroff", "on_reboot"])
def test_core_dump_actions_are_for_crashes_only(what: str) -> None:
    assert getattr(lifecycle(_cfg(**{what: LifecycleAction.RENAME_RESTART})), what) \
        is LifecycleAction.RENAME_RESTART
    with pytest.raises(VirtError, match="for <on_crash> only") as info:
        lifecycle(_cfg(**{what: LifecycleAction.COREDUMP_RESTART}))
    assert info.value.code == ErrorCode.CONFIG_UNSUPPORTED


def test_incoming_and_pci_slots() -> None:
    cfg = _cfg(interfaces=(Interface(mac="52:54:00:00:00:01", model="virtio"),))
    args = build_command(cfg, dataclasses.replace(CTX, incoming="defer",
                                                  pci_slots={"net0": 7, "balloon0": 0x1f}))
    assert args[-2:] == ["-incoming", "defer"]
    devices = _arg_after(args, "-device")
    assert "virtio-net-pci,netdev=hostnet0,id=net0,mac=52:54:00:00:00:01,addr=0x7" in devices
    assert "virtio-balloon-pci,id=balloon0,addr=0x1f" in devices


def _nic(mac: str, alias: str | None = None) -> Interface:
    return Interface(mac=mac, model="virtio",
                     extra=(f"<alias name='{alias}'/>",) if alias else ())


def test_interface_ids_keep_aliases_and_skip_taken_ids() -> None:
    cfg = _cfg(interfaces=(_nic("52:54:00:00:00:01"), _nic("52:54:00:00:00:02", "net0"),
                           _nic("52:54:00:00:00:03"), _nic("52:54:00:00:00:04", "net7")))
    assert interface_ids(cfg) == [("hostnet1", "net1"), ("hostnet0", "net0"),
                                  ("hostnet2", "net2"), ("hostnet7", "net7")]
    assert "-netdev" in build_command(cfg, CTX)
    twice = _cfg(interfaces=(_nic("52:54:00:00:00:01", "net1"), _nic("52:54:00:00:00:02", "net1")))
    with pytest.raises(XMLError, match="same <alias name>"):
        build_command(twice, CTX)


def test_device_parts_are_qmp_arguments() -> None:
    disk = Disk(source="/x.img", target_dev="vdb", driver_cache="none")
    cfg = _cfg(disks=(Disk(source="/a.img", target_dev="vda"), disk))
    parts = device_parts(cfg, disk, CTX)
    storage, fmt = parts.backends
    assert storage == {"driver": "file", "filename": "/x.img", "node-name": "vdb-storage",
                       "cache": {"direct": True, "no-flush": False}}
    assert fmt["file"] == "vdb-storage" and fmt["node-name"] == "vdb-format"
    assert parts.device == {"driver": "virtio-blk-pci", "drive": "vdb-format", "id": "disk-vdb",
                            "write-cache": True}
    assert parts.controllers == frozenset()
    scsi = Disk(source="/y.img", target_dev="sdb")
    assert device_parts(_cfg(disks=(scsi,)), scsi, CTX).controllers == {"scsi"}
    nic = _nic("52:54:00:00:00:09")
    parts = device_parts(_cfg(interfaces=(_nic("52:54:00:00:00:01", "net1"), nic)), nic, CTX)
    assert parts.backends == ({"type": "user", "id": "hostnet2"},)  # net1 is taken
    assert parts.device == {"driver": "virtio-net-pci", "netdev": "hostnet2", "id": "net2",
                            "mac": "52:54:00:00:00:09"}


def test_pvpanic_only_with_on_crash() -> None:
    assert not any(a.startswith("pvpanic") for a in build_command(_cfg(), CTX))
    args = build_command(_cfg(on_crash=LifecycleAction.DESTROY), CTX)
    assert "pvpanic,id=panic0" in args


def test_console_alias_of_serial_is_not_duplicated() -> None:
    cfg = _cfg(chardevs=(CharDevice(kind="serial", type="pty"),
                         CharDevice(kind="console", type="pty", target_type="serial", target_port=0)))
    args = build_command(cfg, CTX)
    assert len([a for a in _arg_after(args, "-device") if a.startswith("isa-serial")]) == 1


def test_readonly_cdrom_nodes_are_read_only() -> None:
    cfg = _cfg(disks=(Disk(device="cdrom", source="/x.iso", target_dev="hdc"),))
    blockdevs = _arg_after(build_command(cfg, CTX), "-blockdev")
    assert len(blockdevs) == 2 and all("read-only=on" in b for b in blockdevs)


def test_direct_errors_not_reachable_from_xml() -> None:
    for cfg, match in (
        (_cfg(disks=(Disk(source="/x", target_dev="hda", target_bus="nvme"),)), "bus 'nvme'"),
        (_cfg(disks=(Disk(source="/x", target_dev="sda1"),)), "whole-disk name"),
        (_cfg(disks=(Disk(target_dev="hda"),)), "needs a <source>"),
        (_cfg(sounds=(Sound(model="theremin"),)), "sound model 'theremin'"),
        (_cfg(inputs=(Input(type="mouse", bus="xen"),)), "input bus 'xen'"),
        (_cfg(graphics=(Graphics(type="spice"),)), "graphics type 'spice'"),
        (_cfg(os=OSConfig(machine="pc", initrd="/i")), "need a <kernel>"),
        (_cfg(current_memory=10**9), "exceeds <memory>"),
        (_cfg(vcpus=2, vcpus_current=3), "vCPUs online"),
        (_cfg(memory=0), "no memory"),
        (_cfg(interfaces=(Interface(type="vde", mac="52:54:00:00:00:01"),)), "type 'vde'"),
        (_cfg(interfaces=(Interface(mac="52:54:00:00:00:01", model="tulip"),)), "NIC model 'tulip'"),
        (_cfg(interfaces=(Interface(mac="52:54:00:00:00:01"), Interface(mac="52:54:00:00:00:01"))),
         "used twice"),
    ):
        with pytest.raises(VirtError, match=match) as info:
            build_command(cfg, CTX)
        assert info.value.domain == ErrorDomain.QEMU


def test_contradictions_are_xml_errors() -> None:
    cfg = _cfg(chardevs=(CharDevice(kind="serial", target_port=1), CharDevice(kind="serial", target_port=1)))
    with pytest.raises(XMLError, match="same number"):
        build_command(cfg, CTX)


# ---------------------------------------------------------------- properties

_DISKS = st.builds(
    Disk,
    type=st.sampled_from(["file", "block"]),
    device=st.sampled_from(["disk", "cdrom", "floppy"]),
    source=st.one_of(st.none(), st.sampled_from(["/a.img", "/b,c.img", "/dev/sdb"])),
    target_dev=st.sampled_from(["hda", "hdb", "hdc", "hdd", "hde", "vda", "vdb", "sda", "sdb",
                                "fda", "fdb", "fdc", "xvda", "ubz"]),
    target_bus=st.one_of(st.none(), st.sampled_from(["ide", "sata", "scsi", "virtio", "fdc", "usb", "xen"])),
    driver_type=st.one_of(st.none(), st.sampled_from(["raw", "qcow2", "aio"])),
    readonly=st.booleans(),
    shareable=st.booleans(),
    driver_cache=st.one_of(st.none(), st.sampled_from(["none", "writeback", "bogus"])),
    driver_io=st.one_of(st.none(), st.sampled_from(["native", "threads"])),
)
_CHARDEVS = st.builds(
    CharDevice,
    kind=st.sampled_from(["serial", "parallel", "console"]),
    type=st.sampled_from(["pty", "file", "null", "tcp", "udp", "unix", "dev", "stdio", "vc"]),
    source_path=st.one_of(st.none(), st.just("/p")),
    source_host=st.one_of(st.none(), st.just("127.0.0.1")),
    source_service=st.one_of(st.none(), st.just("4000")),
    source_mode=st.one_of(st.none(), st.sampled_from(["bind", "connect"])),
    connect_service=st.one_of(st.none(), st.just("4001")),
    target_port=st.one_of(st.none(), st.integers(0, 4)),
    target_type=st.one_of(st.none(), st.sampled_from(["serial", "virtio", "xen"])),
)


@given(
    disks=st.lists(_DISKS, max_size=4),
    chardevs=st.lists(_CHARDEVS, max_size=4),
    machine=st.sampled_from(["pc", "q35", "isapc", "pc-i440fx-7.2"]),
    kind=st.sampled_from(["qemu", "kvm"]),
)
def test_builder_fails_only_with_virt_errors(disks: list[Disk], chardevs: list[CharDevice],
                                             machine: str, kind: str) -> None:
    cfg = _cfg(type=kind, os=OSConfig(machine=machine), disks=tuple(disks), chardevs=tuple(chardevs))
    try:
        first = build_command(cfg, CTX)
    except VirtError:
        return
    assert first == build_command(cfg, CTX)
    assert first[0] == CTX.emulator
    # Every device and node id is unique.
    ids = [p.split("=", 1)[1] for a in first for p in a.split(",") if p.startswith(("id=", "node-name="))]
    assert len(ids) == len(set(ids))
