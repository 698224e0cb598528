"""Xen's native spellings, shared by the S-expression and the XM conversions.

xend's S-expressions (:mod:`~virtkit.drivers.xen.sxpr`) and XM config files
(:mod:`~virtkit.drivers.xen.xm`) spell devices the same way: a disk is a
``DRIVER:PATH`` source, a ``hda:cdrom`` target and a ``w``/``r``/``w!`` mode;
a serial port is ``pty``, ``file:/tmp/log`` or ``tcp:host:port,server``; HVM
boot devices are letters; sound cards a comma list. This module maps those
spellings to the domain model and back, and :func:`xen_guest` checks once
that a :class:`~virtkit.xml.domain.DomainConfig` can be expressed for Xen at
all, giving both writers one validated view of it (:class:`XenGuest`).

What cannot be expressed (a QEMU-only device: a virtio disk, a user-mode NIC,
a SPICE display...) raises :class:`~virtkit.errors.NoSupportError` with code
``CONFIG_UNSUPPORTED`` and domain ``XEN``, naming the element: nothing is
dropped silently, except what libvirt's Xen driver also ignored (documented
where it happens: ``vif*`` interface names, the PV console, the implicit PS/2
or Xen mouse, ``<source dev>`` of a routed interface).

Reference: libvirt 0.2.2's domain XML format for Xen, xend's S-expressions
and XM config keys (``xen-protocols.md`` sections 1.5 and 4.3 of the
project's reference material).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from virtkit import _lazy_re as lazy_re
from virtkit.errors import ErrorCode, ErrorDomain, InvalidArgumentError, NoSupportError
from virtkit.xml.domain import (
    CharDevice,
    DomainConfig,
    Disk,
    Graphics,
    Input,
    Interface,
    LifecycleAction,
    Sound,
)

if TYPE_CHECKING:
    from virtkit.domain import DomainState

__all__ = [
    "state_of",
    "version_number",
    "FORMATS",
    "DEFAULT_FORMAT",
    "XenGuest",
    "check_format",
    "unsupported",
    "xen_guest",
    "device_place",
    "disk_bus",
    "parse_disk_target",
    "parse_source",
    "format_source",
    "parse_mode",
    "format_mode",
    "parse_chardev",
    "format_chardev",
    "port_values",
    "parse_boot",
    "format_boot",
    "parse_sounds",
    "format_sounds",
    "parse_action",
    "vnc_port",
    "vnc_display",
    "current_from_avail",
    "avail_from_current",
    "implicit_mouse",
    "interface_type",
    "is_mac",
    "NOT_IN_XML",
    "NOT_IN_XML_BYTES",
    "with_implicit_devices",
    "HVM_FEATURES",
    "SOUND_MODELS",
]

#: The ``xend_config_format`` dialects: 1 = Xen 3.0.2 and older, 2 = 3.0.3,
#: 3 = 3.0.4 (managed domains, PV framebuffer as a ``vfb`` device), 4 = 3.1
#: and later (HVM framebuffer as a ``vfb`` device too).
FORMATS = (1, 2, 3, 4)
#: What Xen 3.1 to 4.4 report, and the default of the conversions.
DEFAULT_FORMAT = 4

#: Sound cards Xen's device model emulates.
SOUND_MODELS = ("sb16", "es1370", "pcspk", "ac97")
#: What ``soundhw = 'all'`` means: every card libvirt knew when Xen's device model
#: took ``all`` (2008): sb16, es1370 and the PC speaker.
SOUND_ALL = ("sb16", "es1370", "pcspk")

_BOOT_LETTERS = {"fd": "a", "hd": "c", "cdrom": "d", "network": "n"}
_BOOT_DEVS = {v: k for k, v in _BOOT_LETTERS.items()}
_ACTIONS = {a.value: a for a in LifecycleAction}
#: HVM features xend knows (``(acpi 1)``...), in the order virtkit writes them.
HVM_FEATURES = ("acpi", "apic", "pae", "hap", "viridian")
#: Children of a device that carry nothing Xen needs (today's libvirt adds them).
_IGNORABLE_DEVICE_EXTRAS = ("<address", "<alias")


def check_format(xend_config_format: int) -> int:
    """``xend_config_format`` itself, or InvalidArgumentError when it is not 1-4."""
    if xend_config_format not in FORMATS:
        raise InvalidArgumentError(
            f"xend_config_format must be one of 1, 2, 3, 4, not {xend_config_format!r}")
    return xend_config_format


def unsupported(place: str, message: str) -> NoSupportError:
    """The error for XML that Xen cannot express: CONFIG_UNSUPPORTED, domain XEN."""
    return NoSupportError(f"unsupported configuration: {place}: {message}",
                          code=ErrorCode.CONFIG_UNSUPPORTED, domain=ErrorDomain.XEN)


def device_place(kind: str, index: int, name: str | None = None) -> str:
    """``devices/disk[2] (hda)``: where a device sits in the domain XML (1-based)."""
    return f"devices/{kind}[{index + 1}]" + (f" ({name})" if name else "")


# ------------------------------------------------------------------ disks

def disk_bus(dev: str) -> str | None:
    """The bus a Xen device name implies: ``xvd*`` xen, ``hd*`` ide, ``sd*`` scsi, ``fd*`` fdc."""
    if dev.startswith("xvd"):
        return "xen"
    if dev.startswith("hd"):
        return "ide"
    if dev.startswith("sd"):
        return "scsi"
    if dev.startswith("fd"):
        return "fdc"
    return None


def parse_disk_target(dev: str) -> tuple[str, str]:
    """``ioemu:hda``, ``hdc:cdrom``, ``xvda:disk`` -> (device name, ``disk``/``cdrom``/``floppy``)."""
    if dev.startswith("ioemu:"):
        dev = dev[6:]
    name, _, kind = dev.partition(":")
    if kind == "cdrom":
        return name, "cdrom"
    return name, "floppy" if name.startswith("fd") else "disk"


def parse_source(uname: str) -> tuple[str, str | None, str | None, str]:
    """``phy:/dev/x``, ``file:/x``, ``tap:aio:/x`` -> (disk type, driver name, driver type, path).

    A source without a driver prefix is a file. ``phy`` means a block device.
    """
    driver, sep, rest = uname.partition(":")
    if not sep or uname.startswith("/"):
        return "file", None, None, uname
    if driver in ("tap", "tap2"):
        subtype, sep2, path = rest.partition(":")
        if sep2:
            return "file", driver, subtype, path
        return "file", driver, None, rest
    return ("block" if driver == "phy" else "file"), driver, None, rest


def format_source(d: Disk, place: str) -> str | None:
    """The ``DRIVER:PATH`` source of a disk (None for an empty CD-ROM)."""
    if d.source is None:
        return None
    name = d.driver_name
    if name in ("tap", "tap2"):
        return f"{name}:{d.driver_type or 'aio'}:{d.source}"
    if d.driver_type not in (None, "raw"):
        raise unsupported(place, f"driver type '{d.driver_type}' needs the 'tap' driver on Xen")
    if name is None:
        return ("phy:" if d.type == "block" else "file:") + d.source
    if name in ("phy", "file"):
        return f"{name}:{d.source}"
    raise unsupported(place, f"disk driver '{name}' is not one of Xen's (phy, file, tap, tap2)")


def parse_mode(mode: str | None) -> tuple[bool, bool]:
    """``w``, ``r``/``ro``, ``w!``/``!`` -> (read-only, shareable)."""
    mode = mode or "w"
    return mode.startswith("r"), mode.endswith("!")


def format_mode(d: Disk) -> str:
    """The mode of a disk: ``r`` read-only, ``w!`` shareable, else ``w``."""
    if d.readonly or d.device == "cdrom":
        return "r"
    return "w!" if d.shareable else "w"


# ------------------------------------------------------------ serial, parallel

def parse_chardev(value: str, kind: str, port: int) -> CharDevice | None:
    """A serial or parallel port from its native spelling (None for ``none``).

    ``pty``, ``null``, ``stdio``, ``vc``, ``file:PATH``, ``pipe:PATH``,
    ``/dev/ttyS0``, ``tcp:HOST:PORT[,server|,listen][,nowait]``, ``telnet:...``,
    ``udp:RHOST:RPORT[@LHOST:LPORT]``, ``unix:PATH[,server|,listen]``.
    Raises ValueError for a spelling Xen's device model would not accept.
    """
    value = value.strip()
    if value in ("", "none"):
        return None
    if value in ("pty", "null", "stdio", "vc"):
        return CharDevice(kind=kind, type=value, target_port=port)
    if value.startswith("/"):
        return CharDevice(kind=kind, type="dev", source_path=value, target_port=port)
    scheme, sep, rest = value.partition(":")
    if not sep:
        raise ValueError(f"unknown character device {value!r}")
    if scheme in ("file", "pipe"):
        return CharDevice(kind=kind, type=scheme, source_path=rest, target_port=port)
    if scheme in ("tcp", "telnet"):
        address, *opts = rest.split(",")
        host, sep, service = address.rpartition(":")
        if not sep:
            raise ValueError(f"{value!r}: expected {scheme}:HOST:PORT")
        bind = "server" in opts or "listen" in opts
        return CharDevice(kind=kind, type="tcp", source_mode="bind" if bind else "connect",
                          source_host=host or None, source_service=service,
                          protocol="telnet" if scheme == "telnet" else "raw", target_port=port)
    if scheme == "udp":
        remote, _, local = rest.partition("@")
        rhost, _, rport = remote.rpartition(":")
        lhost, _, lport = local.rpartition(":") if local else ("", "", "")
        return CharDevice(kind=kind, type="udp", connect_host=rhost or None,
                          connect_service=rport or None, source_host=lhost or None,
                          source_service=lport or None,
                          source_mode="bind" if local else None, target_port=port)
    if scheme == "unix":
        path, *opts = rest.split(",")
        bind = "server" in opts or "listen" in opts
        return CharDevice(kind=kind, type="unix", source_mode="bind" if bind else "connect",
                          source_path=path, target_port=port)
    raise ValueError(f"unknown character device {value!r}")


def format_chardev(c: CharDevice, place: str, *, listen: str) -> str:
    """The native spelling of a serial or parallel port.

    ``listen`` is what marks a listening socket: ``,server,nowait`` in
    S-expressions, ``,listen`` in XM files.
    """
    t = c.type
    if t in ("pty", "null", "stdio", "vc"):
        return t
    if t in ("file", "pipe"):
        return f"{t}:{_need(c.source_path, place, 'a source path')}"
    if t == "dev":
        return _need(c.source_path, place, "a source path")
    if t == "tcp":
        scheme = "telnet" if c.protocol == "telnet" else "tcp"
        host = c.source_host or ""
        service = _need(c.source_service, place, "a service (port)")
        return f"{scheme}:{host}:{service}" + (listen if c.source_mode == "bind" else "")
    if t == "udp":
        remote = f"udp:{c.connect_host or ''}:{_need(c.connect_service, place, 'a service (port)')}"
        if c.source_host is not None or c.source_service is not None:
            remote += f"@{c.source_host or ''}:{c.source_service or ''}"
        return remote
    if t == "unix":
        return f"unix:{_need(c.source_path, place, 'a socket path')}" + (
            listen if c.source_mode == "bind" else "")
    raise unsupported(place, f"character device type '{t}' cannot be expressed for Xen")


def port_values(devs: Iterable[tuple[CharDevice, str]], *, listen: str) -> list[str]:
    """The native values of serial (or parallel) ports, each at the position of its
    target port, ``none`` in the gaps: ``["none", "/dev/ttyS1"]``; ``["none"]`` for no port."""
    slots: dict[int, str] = {}
    for c, place in devs:
        port = c.target_port if c.target_port is not None and c.target_port not in slots else (
            max(slots, default=-1) + 1)
        if port > 63:
            raise unsupported(place, f"port {port} is beyond what Xen's device model numbers")
        slots[port] = format_chardev(c, place, listen=listen)
    if not slots:
        return ["none"]
    return [slots.get(i, "none") for i in range(max(slots) + 1)]


def _need(value: str | None, place: str, what: str) -> str:
    if not value:
        raise unsupported(place, f"needs {what}")
    return value


# ---------------------------------------------------------- boot, sound, misc

def parse_boot(letters: str) -> tuple[str, ...]:
    """HVM boot letters (``c``, ``dc``...) -> boot devices; unknown letters are skipped."""
    devs = tuple(_BOOT_DEVS[c] for c in letters if c in _BOOT_DEVS)
    return devs or ("hd",)


def format_boot(boot: Iterable[str]) -> str:
    """Boot devices -> HVM boot letters (``hd`` when none is given)."""
    return "".join(_BOOT_LETTERS[b] for b in boot if b in _BOOT_LETTERS) or "c"


def parse_sounds(value: str) -> tuple[Sound, ...]:
    """``sb16,es1370`` -> sound cards; unknown names are skipped, ``all`` is :data:`SOUND_ALL`."""
    if value.strip() == "all":
        return tuple(Sound(model=m) for m in SOUND_ALL)
    return tuple(Sound(model=m) for m in (s.strip() for s in value.split(",")) if m in SOUND_MODELS)


def format_sounds(sounds: Iterable[Sound]) -> str:
    """Sound cards -> ``sb16,es1370`` (each model once, in order of first appearance)."""
    seen: list[str] = []
    for s in sounds:
        if s.model not in seen:
            seen.append(s.model)
    return ",".join(seen)


def parse_action(value: str) -> LifecycleAction:
    """``destroy``, ``restart``, ``preserve``, ``rename-restart``, ``coredump-*``; ValueError otherwise."""
    try:
        return _ACTIONS[value]
    except KeyError:
        raise ValueError(f"unknown lifecycle action {value!r}") from None


def vnc_port(vncunused: int | None, vncdisplay: int | None) -> int:
    """The VNC port from xend's keys: 5900 + display, or -1 (chosen at start)."""
    if vncdisplay is not None and not vncunused:
        return 5900 + vncdisplay
    return -1


def vnc_display(g: Graphics, place: str) -> int | None:
    """The VNC display number of a fixed port, None for an automatic one."""
    if g.port is None or g.port == -1 or g.autoport:
        return None
    if g.port < 5900:
        raise unsupported(place, f"VNC port {g.port} is below 5900 (xend takes a display number)")
    return g.port - 5900


def current_from_avail(avail: int, vcpus: int) -> int | None:
    """``vcpu_avail`` (a bit mask of online vCPUs) -> ``<vcpu current>`` (None when all are)."""
    current = bin(avail & ((1 << vcpus) - 1)).count("1")
    return current if 0 < current < vcpus else None


def avail_from_current(current: int) -> int:
    """``<vcpu current='N'>`` -> the ``vcpu_avail`` mask of vCPUs 0..N-1."""
    return (1 << current) - 1


def implicit_mouse(hvm: bool) -> Input:
    """The mouse every graphical guest has: PS/2 for HVM, Xen's for PV (libvirt shows it)."""
    return Input(type="mouse", bus="ps2" if hvm else "xen")


#: Characters XML 1.0 cannot carry: a value holding one has no domain XML.
NOT_IN_XML = lazy_re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: The same, in UTF-8 text.
NOT_IN_XML_BYTES = lazy_re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]")

_MAC = lazy_re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\Z")


def is_mac(text: str) -> bool:
    """Whether ``text`` is a MAC address (six hex pairs separated by ':')."""
    return _MAC.match(text) is not None


def interface_type(bridge: str | None, script: str | None) -> str:
    """``bridge`` when the NIC names a bridge or uses ``vif-bridge``, else ``ethernet`` (routed)."""
    if bridge or (script is not None and script.rsplit("/", 1)[-1].startswith("vif-bridge")):
        return "bridge"
    return "ethernet"


# ================================================================ the Xen view

@dataclass(frozen=True)
class XenGuest:
    """A domain as Xen sees it: checked once by :func:`xen_guest`, shared by both writers.

    Device lists keep document order. ``disks`` excludes floppies (HVM
    ``fda``/``fdb`` keys); each entry pairs the disk with its bare target name
    (``ioemu:`` removed) and its place in the XML for error messages.
    """

    config: DomainConfig
    hvm: bool
    disks: tuple[tuple[Disk, str, str], ...]
    floppies: tuple[tuple[str, str], ...]
    interfaces: tuple[tuple[Interface, str], ...]
    serials: tuple[tuple[CharDevice, str], ...]
    parallels: tuple[tuple[CharDevice, str], ...]
    #: USB input devices of an HVM guest: ``mouse``, ``tablet``, ``keyboard``.
    usb_inputs: tuple[str, ...]
    vnc: Graphics | None
    sdl: Graphics | None
    sounds: str | None
    features: tuple[str, ...]
    localtime: bool
    #: ``<clock><timer name='hpet' present/>``: True, False or None (not given).
    hpet: bool | None

    @property
    def graphics(self) -> tuple[Graphics, ...]:
        return tuple(g for g in (self.vnc, self.sdl) if g is not None)


def xen_guest(cfg: DomainConfig) -> XenGuest:
    """Check that ``cfg`` can be expressed for Xen and return its Xen view.

    Raises NoSupportError (code CONFIG_UNSUPPORTED, domain XEN) naming the
    element for anything Xen cannot express: another hypervisor's domain
    type, QEMU-only buses and devices, unknown extension elements.
    """
    if cfg.type != "xen":
        raise unsupported("domain/@type", f"a domain of type '{cfg.type}' is not a Xen domain")
    os = cfg.os
    if os.type == "hvm":
        hvm = True
    elif os.type in ("linux", "xen"):
        hvm = False
    else:
        raise unsupported("os/type", f"OS type '{os.type}' is neither 'linux' (PV) nor 'hvm'")
    if hvm and not os.loader:
        raise unsupported("os/loader", "an HVM guest needs a loader (Xen's hvmloader)")
    if not hvm and os.kernel is None and cfg.bootloader is None:
        raise unsupported("os", "a PV guest needs a kernel or a bootloader")
    if os.firmware is not None or os.loader_type not in (None, "rom") or os.extra:
        raise unsupported("os", "firmware selection and <os> extensions cannot be expressed for Xen")
    for x in cfg.extra:
        raise unsupported(f"domain/{_tag(x)}", "this element cannot be expressed for Xen")
    for x in cfg.extra_devices:
        raise unsupported(f"devices/{_tag(x)}", "this device cannot be expressed for Xen")
    for x in cfg.features_extra:
        raise unsupported(f"features/{_tag(x)}", "this feature cannot be expressed for Xen")
    for pin in cfg.vcpu_pins:
        if pin.vcpu >= cfg.vcpus:
            raise unsupported(f"cputune/vcpupin (vcpu {pin.vcpu})",
                              f"the domain has {cfg.vcpus} vCPU(s): there is no vCPU {pin.vcpu} to pin")
    features: list[str] = []
    for name in cfg.features:
        if name not in HVM_FEATURES:
            raise unsupported(f"features/{name}", "Xen knows acpi, apic, pae, hap and viridian")
        if hvm and name not in features:
            features.append(name)
    features.sort(key=HVM_FEATURES.index)
    if cfg.clock_offset not in (None, "utc", "localtime"):
        raise unsupported("clock/@offset", f"offset '{cfg.clock_offset}' (Xen: utc or localtime)")
    if cfg.clock_adjustment not in (None, "reset"):
        raise unsupported("clock/@adjustment", "Xen's clock adjustment is not expressed")
    hpet: bool | None = None
    for t in cfg.clock_timers:
        if t.name != "hpet" or not hvm or t.tickpolicy or t.track or t.frequency or t.mode:
            raise unsupported(f"clock/timer ({t.name})", "Xen knows only whether an HVM guest has an HPET")
        hpet = t.present if t.present is not None else True

    disks: list[tuple[Disk, str, str]] = []
    floppies: list[tuple[str, str]] = []
    targets: set[str] = set()
    for i, d in enumerate(cfg.disks):
        name, _ = parse_disk_target(d.target_dev)
        place = device_place("disk", i, name)
        _check_extras(d.extra, place)
        if name in targets:
            raise unsupported(place, f"target '{name}' is used twice")
        targets.add(name)
        if d.target_bus not in (None, "xen", "ide", "scsi", "fdc"):
            raise unsupported(place, f"bus '{d.target_bus}' is not one of Xen's (xen, ide, scsi)")
        if d.driver_cache is not None or d.driver_io is not None or d.driver_discard is not None:
            raise unsupported(place, "cache, io and discard modes cannot be expressed for Xen")
        if d.device == "floppy":
            if not hvm:
                raise unsupported(place, "a PV guest has no floppy drive")
            if name not in ("fda", "fdb"):
                raise unsupported(place, "Xen's floppy drives are fda and fdb")
            if d.source is not None:
                floppies.append((name, d.source))
            continue
        format_source(d, place)  # checks the driver
        disks.append((d, name, place))

    interfaces: list[tuple[Interface, str]] = []
    for i, n in enumerate(cfg.interfaces):
        place = device_place("interface", i, n.mac)
        _check_extras(n.extra, place)
        if n.type not in ("bridge", "ethernet"):
            hint = (" (name its bridge with type='bridge')" if n.type == "network" else "")
            raise unsupported(place, f"interface type '{n.type}' cannot be expressed for Xen{hint}")
        interfaces.append((n, place))

    serials: list[tuple[CharDevice, str]] = []
    parallels: list[tuple[CharDevice, str]] = []
    counts = {"serial": 0, "parallel": 0, "console": 0}
    for c in cfg.chardevs:
        counts[c.kind] = counts.get(c.kind, 0) + 1
        place = device_place(c.kind, counts[c.kind] - 1, c.type)
        _check_extras(c.extra, place)
        if c.kind == "console":
            # The PV console is Xen's own; an HVM guest's console is its first serial port.
            if not hvm and c.type != "pty":
                raise unsupported(place, "a PV guest's console is a pty")
            continue
        if not hvm:
            raise unsupported(place, f"a PV guest has no {c.kind} port (its console is a pty)")
        format_chardev(c, place, listen="")  # checks the type
        (serials if c.kind == "serial" else parallels).append((c, place))

    usb_inputs: list[str] = []
    for i, inp in enumerate(cfg.inputs):
        place = device_place("input", i, inp.type)
        _check_extras(inp.extra, place)
        if inp.bus == "usb":
            if not hvm:
                raise unsupported(place, "a PV guest has no USB bus")
            usb_inputs.append(inp.type)
        elif inp.bus not in (None, "ps2", "xen") or inp.type != "mouse":
            raise unsupported(place, f"{inp.type} on bus '{inp.bus}' cannot be expressed for Xen")
    if len(usb_inputs) > 1:
        raise unsupported("devices/input", "xend takes one USB input device")

    vnc = sdl = None
    for i, g in enumerate(cfg.graphics):
        place = device_place("graphics", i, g.type)
        _check_extras(g.extra, place)
        if g.type == "vnc" and vnc is None:
            vnc_display(g, place)
            vnc = g
        elif g.type == "sdl" and sdl is None:
            sdl = g
        else:
            raise unsupported(place, f"Xen shows one VNC and one SDL display, not '{g.type}' here")

    sounds = None
    for i, s in enumerate(cfg.sounds):
        place = device_place("sound", i, s.model)
        _check_extras(s.extra, place)
        if not hvm:
            raise unsupported(place, "a PV guest has no sound card")
        if s.model not in SOUND_MODELS:
            raise unsupported(place, f"sound model '{s.model}' (Xen's: {', '.join(SOUND_MODELS)})")
    if cfg.sounds:
        sounds = format_sounds(cfg.sounds)

    return XenGuest(
        config=cfg, hvm=hvm, disks=tuple(disks), floppies=tuple(floppies),
        interfaces=tuple(interfaces), serials=tuple(serials), parallels=tuple(parallels),
        usb_inputs=tuple(usb_inputs), vnc=vnc, sdl=sdl, sounds=sounds, features=tuple(features),
        localtime=cfg.clock_offset == "localtime", hpet=hpet,
    )


def _tag(verbatim: str) -> str:
    head = verbatim.lstrip("<").split(None, 1)[0] if verbatim.startswith("<") else verbatim
    return head.rstrip("/>")


def _check_extras(extra: tuple[str, ...], place: str) -> None:
    for x in extra:
        if not x.startswith(_IGNORABLE_DEVICE_EXTRAS):
            raise unsupported(f"{place}/{_tag(x)}", "this element cannot be expressed for Xen")


def with_implicit_devices(cfg: DomainConfig, hvm: bool) -> DomainConfig:
    """Add what libvirt shows for every Xen guest: the mouse of a graphical guest."""
    if cfg.graphics and not any(i.type == "mouse" and i.bus in ("ps2", "xen") for i in cfg.inputs):
        return dataclasses.replace(cfg, inputs=cfg.inputs + (implicit_mouse(hvm),))
    return cfg


def state_of(letters: str) -> DomainState:
    """libvirt's state from Xen's six state letters (r b p s c d), as xend and xl print them
    (xen-protocols 1.5)."""
    from virtkit.domain import DomainState

    if "c" in letters:
        return DomainState.CRASHED
    if "s" in letters:
        return DomainState.SHUTOFF
    if "d" in letters:
        return DomainState.SHUTDOWN
    if "p" in letters:
        return DomainState.PAUSED
    if "b" in letters:
        return DomainState.BLOCKED
    return DomainState.RUNNING  # "r", or runnable and waiting for a CPU


def version_number(major: int, minor: int, extra: str) -> int:
    """Xen's version as libvirt numbers it: major * 1,000,000 + minor * 1000 + the
    leading digits of ``xen_extra`` (``.2-pre`` -> 2)."""
    digits = ""
    for c in extra.lstrip(".-"):
        if not c.isdigit():
            break
        digits += c
    return major * 1_000_000 + minor * 1000 + (int(digits) if digits else 0)
