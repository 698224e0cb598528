"""Domain XML: fixtures, the Xen corpus, today's spellings, golden output, round trips."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from tests import needs
from hypothesis import given

from tests.conftest import DATA as CORPUS
from tests.xml import strategies
from tests.xml._support import check_golden, goldens, ids, inputs, invalid
from virtkit.errors import XMLError, XMLSchemaError
from virtkit.uuid import parse_uuid
from virtkit.xml import _document, schema
from virtkit.xml.domain import (
    CharDevice,
    ClockTimer,
    Disk,
    DomainConfig,
    Graphics,
    Input,
    Interface,
    LifecycleAction,
    OSConfig,
    Sound,
    VcpuPin,
    format_device,
    format_domain,
    memory_to_kib,
    parse_device,
    parse_domain,
)

DOMAINS = inputs("domain", exclude_prefix="device-")
DEVICES = inputs("domain", prefix="device-")
CORPUS_FILES = sorted(
    p for d in ("sexpr2xmldata", "xml2sexprdata", "xmconfigdata") for p in (CORPUS / d).glob("*.xml")
)


# ------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("path", DOMAINS, ids=ids(DOMAINS))
def test_fixture_loads_and_matches_golden(path: Path) -> None:
    cfg = parse_domain(path.read_bytes())
    out = format_domain(cfg)
    schema.validate("domain", _document.parse_xml(out, "domain"))
    assert parse_domain(out) == cfg
    assert format_domain(parse_domain(out)) == out
    check_golden(path, out)


@pytest.mark.parametrize("path", DEVICES, ids=ids(DEVICES))
def test_device_fixture_loads_and_matches_golden(path: Path) -> None:
    dev = parse_device(path.read_text())
    out = format_device(dev)
    schema.validate("device", _document.parse_xml(out, "device"))
    assert parse_device(out) == dev
    check_golden(path, out)


@pytest.mark.parametrize("path", goldens("domain"), ids=ids(goldens("domain")))
def test_golden_outputs_are_valid_and_canonical(path: Path) -> None:
    text = path.read_text()
    if path.name.startswith("device-"):
        assert format_device(parse_device(text)) == text
    else:
        assert format_domain(parse_domain(text)) == text


@pytest.mark.parametrize("path", invalid("domain"), ids=ids(invalid("domain")))
def test_invalid_fixture_is_refused(path: Path) -> None:
    parse = parse_device if path.name.startswith("device-") else parse_domain
    with pytest.raises(XMLError) as info:
        parse(path.read_bytes())
    err = info.value
    assert err.line is not None and err.line >= 1, err
    assert f"line {err.line}" in str(err)


# ------------------------------------------------------- the Xen-era corpus


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[f"{p.parent.name}/{p.name}" for p in CORPUS_FILES])
def test_xen_corpus_loads_and_round_trips(path: Path) -> None:
    cfg = parse_domain(path.read_bytes())
    assert cfg.type == "xen"
    assert cfg.uuid is not None and len(cfg.uuid) == 16
    assert cfg.memory > 0
    out = format_domain(cfg)
    assert parse_domain(out) == cfg


def test_corpus_is_all_there() -> None:
    # Every XML file of the copied corpus is run above: none is left out.
    assert len(CORPUS_FILES) == 24 + 19 + 19


def test_corpus_pv_bootloader_without_os() -> None:
    cfg = parse_domain((CORPUS / "sexpr2xmldata/sexpr2xml-disk-block-shareable.xml").read_text())
    assert cfg.bootloader == "/usr/bin/pygrub"
    assert cfg.os == OSConfig(type="linux")
    assert cfg.memory == 524288 and cfg.current_memory == 393216
    disk = cfg.disks[0]
    assert (disk.driver_name, disk.driver_type, disk.target_bus, disk.shareable) == ("tap", "aio", "xen", True)


def test_corpus_serial_tcp_and_console() -> None:
    cfg = parse_domain((CORPUS / "xmconfigdata/test-fullvirt-serial-tcp-telnet.xml").read_text())
    serial, console = cfg.chardevs
    assert serial == CharDevice(kind="serial", type="tcp", source_mode="bind", source_host="127.0.0.1",
                                source_service="9999", protocol="telnet", target_port=0)
    assert console.kind == "console" and console.protocol == "telnet"
    assert cfg.graphics == (Graphics(type="vnc", port=-1, autoport=True, listen="127.0.0.1", passwd="123poi"),)
    assert cfg.os.machine == "xenfv" and cfg.os.arch == "i686"


def test_corpus_wiremode_is_read_as_protocol() -> None:
    cfg = parse_domain((CORPUS / "xml2sexprdata/xml2sexpr-fv-parallel-tcp.xml").read_text())
    (parallel,) = cfg.chardevs
    assert (parallel.kind, parallel.protocol, parallel.source_mode) == ("parallel", "raw", "connect")
    assert "<protocol type='raw'/>" in format_domain(cfg)


def test_corpus_routed_ethernet_and_console_tty() -> None:
    cfg = parse_domain((CORPUS / "xml2sexprdata/xml2sexpr-net-routed.xml").read_text())
    (nic,) = cfg.interfaces
    assert nic == Interface(type="ethernet", mac="00:11:22:33:44:55", source="eth3", ip_address="172.14.5.6",
                            script="vif-routed", target_dev="vif4.0")
    assert cfg.chardevs == (CharDevice(kind="console", type="pty", tty="/dev/pts/4"),)


def test_corpus_vcpu_current_and_xen_console_target() -> None:
    cfg = parse_domain((CORPUS / "sexpr2xmldata/sexpr2xml-pv-vcpus.xml").read_text())
    assert (cfg.vcpus, cfg.vcpus_current, cfg.online_vcpus) == (4, 2, 2)
    assert cfg.chardevs[0].target_type == "xen"


def test_corpus_whitespace_of_cmdline_is_kept() -> None:
    cfg = parse_domain((CORPUS / "sexpr2xmldata/sexpr2xml-pv.xml").read_text())
    assert cfg.os.cmdline is not None
    assert cfg.os.cmdline.startswith(" method=") and cfg.os.cmdline.endswith("os  ")


def test_corpus_clock_adjustment_and_listen_child() -> None:
    paths = [p for p in CORPUS_FILES if "adjustment=" in p.read_text()]
    assert paths
    for p in paths:
        assert parse_domain(p.read_text()).clock_adjustment == "reset"


# ---------------------------------------------------- 0.2.2's documentation


def test_docs_fc4() -> None:
    cfg = parse_domain((inputs("domain", prefix="docs-fc4")[0]).read_text())
    assert (cfg.name, cfg.type, cfg.id, cfg.memory, cfg.vcpus) == ("fc4", "xen", 18, 131072, 1)
    assert cfg.os == OSConfig(type="linux", kernel="/boot/vmlinuz-2.6.15-1.43_FC5guest",
                              initrd="/boot/initrd-2.6.15-1.43_FC5guest.img", root="/dev/sda1",
                              cmdline=" ro selinux=0 3")
    assert cfg.disks == (Disk(type="file", source="/u/fc4.img", target_dev="sda1"),)
    assert cfg.interfaces == (Interface(type="bridge", source="xenbr0", mac="aa:00:00:00:00:11",
                                        script="/etc/xen/scripts/vif-bridge"),)
    assert cfg.chardevs == (CharDevice(kind="console", type="pty", tty="/dev/pts/5"),)


def test_docs_fv0() -> None:
    cfg = parse_domain((inputs("domain", prefix="docs-fv0")[0]).read_text())
    assert cfg.uuid == parse_uuid("4dea22b3-1d52-d8f3-2516-782e98ab3fa0")
    assert cfg.features == ("pae", "acpi", "apic")
    assert (cfg.on_poweroff, cfg.on_reboot, cfg.on_crash) == (
        LifecycleAction.DESTROY, LifecycleAction.RESTART, LifecycleAction.RESTART)
    assert [d.device for d in cfg.disks] == ["disk", "cdrom", "floppy"]
    assert cfg.disks[1].readonly
    assert cfg.graphics == (Graphics(type="vnc", port=5904),)
    assert cfg.emulator == "/usr/lib/xen/bin/qemu-dm"
    assert cfg.os.loader == "/usr/lib/xen/boot/hvmloader" and cfg.os.boot == ("hd",)


def test_docs_kvm_and_qemu() -> None:
    kvm = parse_domain((inputs("domain", prefix="docs-demo2")[0]).read_text())
    assert kvm.type == "kvm" and kvm.graphics[0].port == -1
    assert kvm.interfaces == (Interface(type="user", mac="24:42:53:21:52:45"),)
    qemu = parse_domain((inputs("domain", prefix="docs-qemu")[0]).read_text())
    assert (qemu.os.arch, qemu.os.machine, qemu.os.boot) == ("i686", "pc", ("cdrom",))
    assert qemu.current_memory == 219200 and qemu.vcpus == 2
    assert qemu.interfaces == (Interface(type="network", source="default"),)


def test_docs_production_lifecycle_and_default_type() -> None:
    cfg = parse_domain((inputs("domain", prefix="docs-lifecycle")[0]).read_text())
    assert cfg.type == "xen"  # 0.2.2: 'xen' when the attribute is left out
    assert cfg.on_crash is LifecycleAction.RENAME_RESTART


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("user", Interface(type="user")),
        ("user-mac", Interface(type="user", mac="11:22:33:44:55:66")),
        ("network", Interface(type="network", source="default")),
        ("network-target", Interface(type="network", source="default", target_dev="vnet7",
                                     mac="11:22:33:44:55:66")),
        ("bridge", Interface(type="bridge", source="br0")),
        ("bridge-target", Interface(type="bridge", source="br0", target_dev="vnet7", mac="11:22:33:44:55:66")),
        ("ethernet", Interface(type="ethernet")),
        ("ethernet-script", Interface(type="ethernet", target_dev="vnet7", script="/etc/qemu-ifup-mynet")),
        ("mcast", Interface(type="mcast", source_address="230.0.0.1", source_port=5558)),
        ("server", Interface(type="server", source_address="192.168.0.1", source_port=5558)),
        ("client", Interface(type="client", source_address="192.168.0.1", source_port=5558)),
    ],
)
def test_docs_interface_examples(name: str, expected: Interface) -> None:
    path = inputs("domain", prefix=f"device-docs-net-{name}.")[0]
    assert parse_device(path.read_text()) == expected


def test_live_network_interface_names_its_bridge() -> None:
    xml = ("<interface type='network'><mac address='52:54:00:00:00:01'/>"
           "<source network='default' portid='2c2a2b1f-7c57-4b3a-a3d5-8f7c0a2e9b11' "
           "bridge='virbr0'/><target dev='vnet0'/></interface>")
    nic = parse_device(xml)
    assert (nic.source, nic.source_bridge, nic.target_dev) == ("default", "virbr0", "vnet0")
    assert "<source network='default' bridge='virbr0'/>" in format_device(nic)


# -------------------------------------------------------- today's spellings


def test_today_spellings() -> None:
    cfg = parse_domain((inputs("domain", prefix="today-spellings")[0]).read_text())
    assert cfg.uuid == parse_uuid("4dea22b3-1d52-d8f3-2516-782e98ab3fa0")
    assert cfg.description == 'A guest & its "description" <escaped>'
    assert cfg.memory == 1024 * 1024
    assert cfg.current_memory == 524289  # 512 MiB + 1 byte, rounded up to KiB
    assert (cfg.vcpus, cfg.vcpus_current, cfg.cpuset, cfg.vcpu_placement) == (4, 2, "0-1,^1,3", "static")
    assert cfg.vcpu_pins == (VcpuPin(0, "0"), VcpuPin(1, "1-3"))
    assert cfg.os.boot == ("network", "cdrom", "hd")
    assert (cfg.os.firmware, cfg.os.loader_type, cfg.os.loader_readonly) == ("efi", "pflash", True)
    assert [x.split(">")[0] for x in cfg.os.extra] == ["<nvram", "<bootmenu enable='yes'/"]
    assert cfg.features == ("acpi", "apic")
    assert cfg.features_extra[0].startswith("<hyperv mode='custom'>")
    assert (cfg.clock_offset, cfg.clock_adjustment) == ("localtime", "reset")
    assert cfg.on_crash is LifecycleAction.PRESERVE and cfg.on_reboot is None
    disk, floppy = cfg.disks
    assert (disk.type, disk.source, disk.driver_cache, disk.driver_io, disk.shareable) == (
        "block", "/dev/vg0/spellings", "none", "native", True)
    assert disk.extra == ("<boot order='1'/>",)
    assert floppy.source is None and floppy.target_bus == "fdc"
    assert cfg.interfaces[0].extra == ("<link state='up'/>",)
    assert [c.kind for c in cfg.chardevs] == ["serial", "parallel", "console"]
    assert cfg.chardevs[2] == CharDevice(kind="console", type="pty", target_type="serial", target_port=0)
    assert cfg.inputs == (Input(type="keyboard", bus="virtio"),)
    assert cfg.graphics[0].listen == "0.0.0.0" and cfg.graphics[0].passwd == "s'cret"
    assert cfg.sounds == (Sound(model="ac97"),)
    assert cfg.extra_devices == ("<watchdog model='i6300esb' action='reset'/>",)
    (cmdline,) = cfg.extra
    assert cmdline.startswith("<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")


def test_libvirt9_qemu_dump_keeps_everything() -> None:
    path = inputs("domain", prefix="libvirt9-qemu-kvm")[0]
    cfg = parse_domain(path.read_text())
    assert [x.split(" ")[0].split(">")[0] for x in cfg.extra] == [
        "<metadata", "<resource", "<cpu", "<pm", "<seclabel", "<seclabel"]
    assert [x.split(" ")[0].split(">")[0] for x in cfg.extra_devices] == [
        "<controller", "<controller", "<controller", "<channel", "<audio", "<video", "<memballoon", "<rng"]
    vda = cfg.disks[0]
    assert (vda.target_dev, vda.target_bus, vda.driver_type, vda.driver_discard) == ("vda", "virtio", "qcow2", "unmap")
    assert vda.extra[0] == "<backingStore/>"
    nic = cfg.interfaces[0]
    assert (nic.type, nic.source, nic.model, nic.target_dev) == ("network", "default", "virtio", "vnet2")
    serial, console = cfg.chardevs
    assert (serial.target_type, serial.target_model, serial.source_path) == ("isa-serial", "isa-serial", "/dev/pts/1")
    assert (console.tty, console.target_type) == ("/dev/pts/1", "serial")
    assert cfg.clock_timers == (ClockTimer("rtc", tickpolicy="catchup"), ClockTimer("pit", tickpolicy="delay"),
                                ClockTimer("hpet", present=False))
    assert cfg.features_extra == ("<vmport state='off'/>",)
    # Every extension element comes back out unchanged (same canonical XML),
    # in libvirt's own layout.
    out = format_domain(cfg)
    original = _document.parse_xml(path.read_bytes(), "domain")
    known = {"name", "uuid", "memory", "currentMemory", "vcpu", "os", "features", "clock", "on_poweroff",
             "on_reboot", "on_crash", "devices"}
    expected = [el for el in original if el.tag not in known]
    assert [_c14n(_document.parse_fragment(x)) for x in cfg.extra] == [_c14n(el) for el in expected]
    for block in cfg.extra + cfg.extra_devices:
        assert block in out


def _c14n(el: object) -> bytes:
    from lxml import etree  # type: ignore[import-untyped, unused-ignore]

    return bytes(etree.tostring(el, method="c14n", exclusive=True))


def test_libvirt9_test_driver_dump() -> None:
    cfg = parse_domain((inputs("domain", prefix="libvirt9-test-default")[0]).read_text())
    assert (cfg.name, cfg.type, cfg.id, cfg.memory, cfg.current_memory) == ("test", "test", 1, 8388608, 2097152)
    assert cfg.disks[0].extra[0].startswith("<address type='pci'")
    assert cfg.extra_devices[0].startswith("<memballoon model='virtio'>")


def test_live_virsh_test_driver_dump_round_trips() -> None:
    needs.program("virsh", "libvirt-clients")
    out = subprocess.run(["virsh", "-c", "test:///default", "dumpxml", "test"], check=True,
                         capture_output=True, timeout=60).stdout
    cfg = parse_domain(out)
    assert parse_domain(format_domain(cfg)) == cfg


@pytest.mark.parametrize(
    ("value", "unit", "kib"),
    [
        (1024, None, 1024), (1024, "KiB", 1024), (5, "k", 5), (5, "K", 5), (2048, "b", 2), (2049, "bytes", 3),
        (1, "byte", 1), (1000, "KB", 977), (1, "MB", 977), (1, "M", 1024), (1, "MiB", 1024), (1, "GB", 976563),
        (1, "G", 1048576), (1, "GiB", 1048576), (1, "TB", 976562500), (1, "T", 2**30), (1, "TiB", 2**30),
        (3, "m", 3072), (2, "g", 2 * 2**20), (1, "t", 2**30),
    ],
)
def test_memory_units(value: int, unit: str | None, kib: int) -> None:
    assert memory_to_kib(value, unit) == kib
    attr = "" if unit is None else f" unit='{unit}'"
    doc = f"<domain type='test'><name>m</name><memory{attr}>{value}</memory><os><type>hvm</type></os></domain>"
    assert parse_domain(doc).memory == kib


def test_memory_too_large_is_refused() -> None:
    doc = "<domain><name>m</name><memory unit='TiB'>18446744073709551615</memory><os><type>hvm</type></os></domain>"
    with pytest.raises(XMLError, match="too large"):
        parse_domain(doc)


@pytest.mark.parametrize(
    "spelling",
    ["4dea22b3-1d52-d8f3-2516-782e98ab3fa0", "4DEA22B31D52D8F32516782E98AB3FA0",
     "4d ea 22 b3 1d 52 d8 f3 25 16 78 2e 98 ab 3f a0", " 4dea22b31d52d8f32516782e98ab3fa0\n"],
)
def test_uuid_spellings_and_canonical_output(spelling: str) -> None:
    cfg = parse_domain(f"<domain><name>u</name><uuid>{spelling}</uuid><memory>1</memory>"
                       "<os><type>hvm</type></os></domain>")
    assert "<uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>" in format_domain(cfg)


# ------------------------------------------------------------------ errors


def test_error_names_line_and_element() -> None:
    doc = "\n".join([
        "<domain type='xen'>", "  <name>x</name>", "  <memory>1</memory>", "  <os><type>hvm</type></os>",
        "  <on_crash>explode</on_crash>", "</domain>",
    ])
    with pytest.raises(XMLSchemaError) as info:
        parse_domain(doc)
    assert (info.value.line, info.value.element) == (5, "on_crash")
    assert "line 5" in str(info.value) and "<on_crash>" in str(info.value)


def test_malformed_error_names_line() -> None:
    with pytest.raises(XMLError) as info:
        parse_domain("<domain>\n  <name>x</nam>\n</domain>")
    assert not isinstance(info.value, XMLSchemaError)
    assert info.value.line == 2 and info.value.element == "name"


def test_str_with_encoding_declaration() -> None:
    doc = "<?xml version='1.0' encoding='UTF-8'?>\n<domain><name>é</name><memory>1</memory><os><type>hvm</type></os></domain>"
    assert parse_domain(doc).name == "é"
    assert parse_domain(doc.encode()).name == "é"


def test_wrong_argument_type() -> None:
    with pytest.raises(TypeError):
        parse_domain(42)  # type: ignore[arg-type]


def test_format_device_rejects_non_devices() -> None:
    with pytest.raises(TypeError):
        format_device("disk")  # type: ignore[arg-type]


def test_fast_constructor_matches_init() -> None:
    build = _document.constructor(DomainConfig)
    assert build(name="x") == DomainConfig(name="x")
    assert build(name="x").os is not build(name="y").os  # default factory called per instance
    assert _document.constructor(Disk)(type="block") == Disk(type="block")


# ------------------------------------------------------------ properties


@given(strategies.domains())
def test_round_trip(cfg: DomainConfig) -> None:
    out = format_domain(cfg)
    schema.validate("domain", _document.parse_xml(out, "domain"))
    back = parse_domain(out)
    assert back == cfg
    assert format_domain(back) == out
    # The layout: one element per line, two-space steps, a final newline.
    assert out.startswith("<domain") and out.endswith("</domain>\n")
    assert all((len(line) - len(line.lstrip(" "))) % 2 == 0 for line in out.splitlines() if line.lstrip().startswith("<"))


@given(strategies.devices)
def test_device_round_trip(dev: Disk | Interface | CharDevice | Graphics | Input | Sound) -> None:
    out = format_device(dev)
    back = parse_device(out)
    assert back == dev
    assert format_device(back) == out


def test_replace_keeps_equality_semantics() -> None:
    cfg = parse_domain((inputs("domain", prefix="docs-fv0")[0]).read_text())
    changed = replace(cfg, memory=cfg.memory * 2)
    assert parse_domain(format_domain(changed)).memory == cfg.memory * 2
