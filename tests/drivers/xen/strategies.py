"""Hypothesis strategies for domains Xen can express, in the form the readers give back.

:func:`xen_domains` draws a :class:`~virtkit.xml.domain.DomainConfig` that a
conversion writes and reads back unchanged, for one ``xend_config_format``
and one native format (``sxpr`` or ``xm``). "The form the readers give
back" is what each reader adds or derives, fixed here so the round trip is
an identity; every other modelled field is drawn freely:

- both: disk buses derived from the names, the disk driver named
  (``file``/``phy``/``tap``), a CD-ROM read-only, memory in whole MiB, the
  implicit mouse of a graphical guest, a PV guest's pty console, each HVM
  serial port mirrored as the console, vCPU pins or a cpuset (not both: pins
  are written per vCPU, with the cpuset filled in), VNC displays ordered
  before SDL ones;
- S-expressions: no ``autoport``; a PV guest's clock only when local time
  (UTC is xend's default, not shown), an HVM guest's always; vif names not
  starting with ``vif`` (those are xend's, never sent back); with format 1 a
  VNC display is only ``(vnc 1)``: its port is then -1 and it has no
  listen/password/keymap;
- XM files: ``autoport`` set from the port; the clock always given; item
  values without ``,`` (and ``=`` in vif/vfb items).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from virtkit.drivers.xen.spellings import HVM_FEATURES, SOUND_MODELS, disk_bus, implicit_mouse
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
)

__all__ = ["xen_domains"]

_printable = st.characters(blacklist_categories=("Cs", "Cc", "Cn"))


def _text(native: str, *, item: bool = False) -> st.SearchStrategy[str]:
    """Non-empty text a native format can carry (XM: no newline, writable quoting)."""
    base = st.text(_printable, min_size=1, max_size=16)
    if native == "xm":
        base = base.filter(lambda s: not (('"' in s and "'" in s) and (s.endswith('"') or '"""' in s)))
        if item:
            base = base.filter(lambda s: "," not in s and "=" not in s and s == s.strip())
    return base


def _word(native: str) -> st.SearchStrategy[str]:
    """A token: paths, bridge names, hosts (no blanks, no ',', ':' or '@')."""
    return st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_./"),
                   min_size=1, max_size=12)


_macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(lambda bs: ":".join(f"{b:02x}" for b in bs))
_services = st.integers(1, 65535).map(str)


def _opt(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), s)


@st.composite
def _cpulist(draw: st.DrawFn) -> str:
    from virtkit.cpuset import format_cpulist

    cpus = draw(st.sets(st.integers(0, 15), min_size=1, max_size=6))
    return format_cpulist(i in cpus for i in range(16))


@st.composite
def _disks(draw: st.DrawFn, hvm: bool, fmt: int, native: str) -> list[Disk]:
    count = draw(st.integers(0, 3))
    prefixes = ["hd", "xvd", "sd"] if hvm else ["xvd", "sd"]
    names = draw(st.lists(st.tuples(st.sampled_from(prefixes), st.sampled_from("abcd")).map("".join),
                          min_size=count, max_size=count, unique=True))
    out = []
    for name in names:
        cdrom = draw(st.booleans()) and not (hvm and fmt == 1)
        kind = draw(st.sampled_from(["file", "block", "tap"]))
        source = None if cdrom and draw(st.booleans()) else "/" + draw(_word(native))
        driver = {"file": "file", "block": "phy", "tap": "tap"}[kind]
        readonly = cdrom or draw(st.booleans())
        out.append(Disk(type="block" if kind == "block" and source else "file",
                        device="cdrom" if cdrom else "disk",
                        source=source, target_dev=name, target_bus=disk_bus(name),
                        driver_name=None if source is None else driver,
                        driver_type=draw(st.sampled_from(["aio", "qcow", "vhd"])) if kind == "tap" and source
                        else None,
                        readonly=readonly, shareable=not readonly and draw(st.booleans())))
    if hvm and fmt == 1 and "hdc" not in names and draw(st.booleans()):
        # Format 1's CD-ROM is (image (hvm (cdrom PATH))): read back after the other disks.
        out.append(Disk(type="file", device="cdrom", source="/" + draw(_word(native)), target_dev="hdc",
                        target_bus="ide", driver_name="file", readonly=True))
    if hvm:
        for fd in ("fda", "fdb"):
            if draw(st.booleans()):
                out.append(Disk(type="file", device="floppy", source="/" + draw(_word(native)),
                                target_dev=fd, target_bus="fdc", driver_name="file"))
    return out


@st.composite
def _interfaces(draw: st.DrawFn, native: str) -> list[Interface]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        bridged = draw(st.booleans())
        source = draw(_opt(_word(native))) if bridged else None
        if bridged and source is None:
            script: str | None = "vif-bridge"
        elif bridged:
            script = draw(_opt(st.sampled_from(["vif-bridge", "/etc/xen/scripts/vif-bridge"])))
        else:
            script = draw(_opt(st.sampled_from(["vif-routed", "vif-nat"])))
        target = draw(_opt(_word(native).filter(lambda s: not s.startswith("vif")).map(lambda s: "t" + s)))
        out.append(Interface(type="bridge" if bridged else "ethernet", mac=draw(_opt(_macs)), source=source,
                             ip_address=draw(_opt(st.sampled_from(["10.0.0.1", "192.168.1.20"]))),
                             script=script, target_dev=target,
                             model=draw(_opt(st.sampled_from(["e1000", "rtl8139", "ne2k_pci", "netfront"])))))
    return out


@st.composite
def _chardev(draw: st.DrawFn, kind: str, port: int, native: str) -> CharDevice:
    t = draw(st.sampled_from(["pty", "null", "stdio", "vc", "file", "pipe", "dev", "tcp", "udp", "unix"]))
    path = "/" + draw(_word(native))
    if t in ("file", "pipe", "dev"):
        return CharDevice(kind=kind, type=t, source_path=path, target_port=port)
    if t == "tcp":
        return CharDevice(kind=kind, type="tcp", source_mode=draw(st.sampled_from(["bind", "connect"])),
                          source_host=draw(_opt(_word(native))), source_service=draw(_services),
                          protocol=draw(st.sampled_from(["raw", "telnet"])), target_port=port)
    if t == "unix":
        return CharDevice(kind=kind, type="unix", source_mode=draw(st.sampled_from(["bind", "connect"])),
                          source_path=path, target_port=port)
    if t == "udp":
        bind = draw(st.booleans())
        return CharDevice(kind=kind, type="udp", connect_host=draw(_opt(_word(native))),
                          connect_service=draw(_services),
                          source_host=draw(_opt(_word(native))) if bind else None,
                          source_service=draw(_services) if bind else None,
                          source_mode="bind" if bind else None, target_port=port)
    return CharDevice(kind=kind, type=t, target_port=port)


@st.composite
def _graphics(draw: st.DrawFn, fmt: int, hvm: bool, native: str) -> list[Graphics]:
    out = []
    flat = native == "sxpr" and (fmt < 4 if hvm else fmt < 3)
    if draw(st.booleans()):
        if flat and fmt == 1:
            out.append(Graphics(type="vnc", port=-1))
        else:
            fixed = draw(st.booleans())
            port = 5900 + draw(st.integers(0, 99)) if fixed else -1
            out.append(Graphics(
                type="vnc", port=port, autoport=None if native == "sxpr" else not fixed,
                listen=draw(_opt(st.sampled_from(["0.0.0.0", "127.0.0.1", "::"]))),
                keymap=draw(_opt(st.sampled_from(["en-us", "ja", "de"]))),
                passwd=draw(_opt(_text(native, item=True)))))
    if draw(st.booleans()):
        out.append(Graphics(type="sdl", display=draw(_opt(st.sampled_from([":0", ":0.0", "localhost:10.0"]))),
                            xauth=draw(_opt(st.just("/root/.Xauthority")))))
    return out


@st.composite
def xen_domains(draw: st.DrawFn, fmt: int = 4, native: str = "sxpr") -> DomainConfig:
    """A Xen domain that ``native`` (``sxpr`` or ``xm``) in dialect ``fmt`` carries unchanged."""
    hvm = draw(st.booleans())
    text = _text(native)
    vcpus = draw(st.integers(1, 8))
    memory = draw(st.integers(32, 65536)) * 1024
    current = draw(_opt(st.integers(16, memory // 1024 - 1).map(lambda m: m * 1024))) if memory > 32768 else None
    pins: tuple[VcpuPin, ...] = ()
    cpuset = None
    if draw(st.booleans()):
        pins = tuple(VcpuPin(n, draw(_cpulist())) for n in range(vcpus) if draw(st.booleans()))
    else:
        cpuset = draw(_opt(_cpulist()))
    bootloader = draw(_opt(text)) if not hvm else None
    f: dict[str, Any] = {
        "name": draw(text), "type": "xen", "uuid": draw(st.binary(min_size=16, max_size=16)),
        "memory": memory, "current_memory": current, "vcpus": vcpus,
        "vcpus_current": draw(_opt(st.integers(1, vcpus - 1))) if vcpus > 1 else None,
        "cpuset": cpuset, "vcpu_pins": pins,
        "bootloader": bootloader,
        "bootloader_args": draw(_opt(text)) if bootloader is not None else None,
        "on_poweroff": draw(_opt(st.sampled_from(list(LifecycleAction)))),
        "on_reboot": draw(_opt(st.sampled_from(list(LifecycleAction)))),
        "on_crash": draw(_opt(st.sampled_from(list(LifecycleAction)))),
    }
    if native == "sxpr":
        f["description"] = draw(_opt(text))
    graphics = draw(_graphics(fmt, hvm, native))
    inputs: list[Input] = []
    chardevs: list[CharDevice] = []
    if hvm:
        kernel = draw(_opt(st.just("/boot/vmlinuz"))) if native == "sxpr" else None
        f["os"] = OSConfig(type="hvm", loader="/usr/lib/xen/boot/hvmloader", kernel=kernel,
                           initrd=draw(_opt(st.just("/boot/initrd"))) if kernel else None,
                           cmdline=draw(_opt(text)) if kernel else None,
                           boot=tuple(draw(st.lists(st.sampled_from(["hd", "cdrom", "fd", "network"]),
                                                    min_size=1, max_size=3))))
        f["features"] = tuple(x for x in HVM_FEATURES if draw(st.booleans()))
        f["clock_offset"] = draw(st.sampled_from(["utc", "localtime"]))
        if draw(st.booleans()):
            f["clock_timers"] = (ClockTimer(name="hpet", present=draw(st.booleans())),)
        f["emulator"] = draw(_opt(st.just("/usr/lib/xen/bin/qemu-dm")))
        serials = [draw(_chardev("serial", i, native)) for i in range(draw(st.integers(0, 2)))]
        parallels = [draw(_chardev("parallel", i, native)) for i in range(draw(st.integers(0, 2)))]
        chardevs = serials + parallels
        if serials:
            chardevs.append(CharDevice(**{**serials[0].__dict__, "kind": "console", "target_port": 0}))
        usb = draw(_opt(st.sampled_from(["mouse", "tablet", "keyboard"])))
        if usb:
            inputs.append(Input(type=usb, bus="usb"))
        models = draw(st.lists(st.sampled_from(SOUND_MODELS), unique=True, max_size=3))
        f["sounds"] = tuple(Sound(model=m) for m in models)
    else:
        kernel = "/boot/vmlinuz-" + draw(_word(native)) if bootloader is None or draw(st.booleans()) else None
        if native == "sxpr" and kernel is None and fmt < 3:
            graphics = []  # (image (linux ...)) carries them: no image, no graphics
        f["os"] = OSConfig(type="linux", kernel=kernel,
                           initrd=draw(_opt(st.just("/boot/initrd"))) if kernel else None,
                           cmdline=draw(_opt(text)) if kernel else None,
                           root=draw(_opt(st.just("/dev/xvda1"))) if kernel else None)
        localtime = draw(st.booleans())
        f["clock_offset"] = "localtime" if localtime else ("utc" if native == "xm" else None)
        chardevs = [CharDevice(kind="console", type="pty", target_port=0)]
    if graphics:
        inputs.append(implicit_mouse(hvm))
    f["disks"] = tuple(draw(_disks(hvm, fmt, native)))
    f["interfaces"] = tuple(draw(_interfaces(native)))
    f["chardevs"] = tuple(chardevs)
    f["graphics"] = tuple(graphics)
    f["inputs"] = tuple(inputs)
    return DomainConfig(**f)
