"""XM config files (``/etc/xen/NAME``) ⇄ the domain model.

:func:`parse_xm` reads a file (text, bytes or a parsed
:class:`~virtkit.drivers.xen.conf.ConfFile`) into a
:class:`~virtkit.xml.domain.DomainConfig` as libvirt showed it in 2009: a pty
console for PV guests, each HVM serial port mirrored as the console, the
mouse of a graphical guest, ``autoport`` on VNC displays, the clock always
given. :func:`format_xm` writes a config back, keys in libvirt's order; with
``into=`` an existing file it rewrites only the keys that changed and keeps
its comments, layout and the keys it does not manage.

Keys (``xen-protocols.md`` 4.3): ``name``, ``uuid``, ``memory``/``maxmem``
(MiB), ``vcpus``, ``vcpu_avail``, ``cpus``, ``builder = "hvm"``, ``kernel``
(PV kernel or HVM loader), ``ramdisk``, ``extra``, ``root``, ``bootloader``,
``bootargs``, ``device_model``, ``boot``, ``pae``/``acpi``/``apic``/``hap``/
``viridian``, ``hpet``, ``localtime``, ``cdrom`` (format 1), ``fda``/``fdb``,
``on_poweroff``/``on_reboot``/``on_crash``, the flat graphics keys (``vnc``,
``vncunused``, ``vncdisplay``, ``vnclisten``, ``vncpasswd``, ``keymap``,
``sdl``, ``display``, ``xauthority``) or ``vfb = [ ... ]`` (PV guests from
format 3), ``disk``, ``vif``, ``serial``, ``parallel``, ``usb``,
``usbdevice``, ``soundhw``. A few keys that tune xend or the device model
but have no counterpart in the domain XML are accepted and left alone
(:data:`IGNORED_KEYS`); any other key is an error.

Errors: a malformed file, an unknown key or a value of the wrong type raise
:class:`~virtkit.errors.ConfigSyntaxError` with the ``line``; a domain Xen
cannot express raises NoSupportError (code CONFIG_UNSUPPORTED) naming the
XML element, before anything is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from virtkit import _lazy_re as lazy_re
from virtkit.drivers.xen import spellings as sp
from virtkit.drivers.xen.conf import ConfFile, ConfValue, format_value, parse_conf
from virtkit.errors import ConfigSyntaxError, InvalidUUIDError
from virtkit.uuid import format_uuid, parse_uuid
from virtkit.xml.domain import (
    CharDevice,
    ClockTimer,
    DomainConfig,
    Disk,
    Graphics,
    Input,
    Interface,
    LifecycleAction,
    OSConfig,
    Sound,
    VcpuPin,
)

__all__ = ["parse_xm", "format_xm", "READ_KEYS", "IGNORED_KEYS"]

#: Every key :func:`parse_xm` reads (and :func:`format_xm` may write).
READ_KEYS = frozenset({
    "name", "uuid", "memory", "maxmem", "vcpus", "vcpu_avail", "cpus", "builder", "kernel",
    "ramdisk", "extra", "root", "bootloader", "bootargs", "device_model", "boot", "pae", "acpi",
    "apic", "hap", "viridian", "hpet", "localtime", "cdrom", "fda", "fdb", "on_poweroff",
    "on_reboot", "on_crash", "vnc", "vncunused", "vncdisplay", "vnclisten", "vncpasswd", "keymap",
    "sdl", "display", "xauthority", "vfb", "disk", "vif", "serial", "parallel", "usb",
    "usbdevice", "soundhw",
})
#: xm keys with no counterpart in the domain XML: accepted, ignored, kept on rewrite.
IGNORED_KEYS = frozenset({
    "on_xend_start", "on_xend_stop", "shadow_memory", "cpu_weight", "cpu_cap", "stdvga",
    "videoram", "vncconsole", "monitor", "nographic", "xen_platform_pci",
})
_VIF_KEYS = frozenset({"mac", "bridge", "script", "ip", "model", "vifname", "type", "backend",
                       "rate", "accel", "uuid"})
_VFB_KEYS = frozenset({"type", "vnc", "sdl", "vncunused", "vncdisplay", "vnclisten", "vncpasswd",
                       "keymap", "display", "xauthority", "uuid"})


# ================================================================== reading

class _Reader:
    """Typed access to a ConfFile, with errors naming the key and its line."""

    def __init__(self, conf: ConfFile) -> None:
        self.conf = conf

    def fail(self, name: str, message: str) -> ConfigSyntaxError:
        e = self.conf.entry(name)
        line = e.line if e is not None else None
        where = f"line {line}: " if line is not None else ""
        return ConfigSyntaxError(f"{where}{name}: {message}", line=line)

    def integer(self, name: str) -> int | None:
        value = self.conf.get(name)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
        if isinstance(value, int):
            return value
        raise self.fail(name, f"expected an integer, not {value!r}")

    def string(self, name: str) -> str | None:
        value = self.conf.get(name)
        if value is None or isinstance(value, str):
            return value
        raise self.fail(name, f"expected a string, not {value!r}")

    def opt(self, name: str) -> str | None:
        return self.string(name) or None

    def flag(self, name: str) -> bool | None:
        value = self.integer(name)
        return None if value is None else value != 0

    def strings(self, name: str) -> list[str]:
        """A list of strings (a single string counts as a one-item list)."""
        value = self.conf.get(name)
        if value is None:
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise self.fail(name, f"expected a list of strings, not {value!r}")
        return [v for v in items if isinstance(v, str)]


def parse_xm(data: ConfFile | str | bytes, xend_config_format: int = sp.DEFAULT_FORMAT, *,
             host_arch: str | None = None) -> DomainConfig:
    """The domain model of an XM config file.

    ``host_arch`` is the host's architecture (from its capabilities), which
    libvirt wrote into ``<os><type arch machine>``; without it those stay
    unset. Raises ConfigSyntaxError with the line for a malformed file, an
    unknown key or an ill-typed value.
    """
    sp.check_format(xend_config_format)
    conf = data if isinstance(data, ConfFile) else parse_conf(data)
    for e in conf.entries():
        if e.name not in READ_KEYS and e.name not in IGNORED_KEYS:
            raise ConfigSyntaxError(f"line {e.line}: unknown key {e.name!r}", line=e.line)
        for v in (e.value if isinstance(e.value, list) else [e.value]):
            bad = sp.NOT_IN_XML.search(v) if isinstance(v, str) else None
            if bad is not None:
                raise ConfigSyntaxError(f"line {e.line}: {e.name}: character U+{ord(bad.group()):04X}, "
                                        f"which domain XML cannot carry", line=e.line)
    r = _Reader(conf)
    name = r.opt("name")
    if name is None:
        raise ConfigSyntaxError("the file sets no 'name'", line=None)
    f: dict[str, object] = {"name": name, "type": "xen"}
    uuid = r.opt("uuid")
    if uuid is not None:
        try:
            f["uuid"] = parse_uuid(uuid)
        except InvalidUUIDError as e:
            raise r.fail("uuid", str(e)) from None
    memory = r.integer("memory")
    maxmem = r.integer("maxmem")
    cur = memory if memory is not None else (maxmem if maxmem is not None else 128)
    maximum = max(maxmem if maxmem is not None else cur, cur)
    if cur <= 0:
        raise r.fail("memory" if memory is not None else "maxmem", "must be positive")
    if maxmem is not None and maxmem <= 0:
        raise r.fail("maxmem", "must be positive")
    f["memory"] = maximum * 1024
    if cur != maximum:
        f["current_memory"] = cur * 1024
    vcpus = r.integer("vcpus")
    if vcpus is not None:
        if vcpus < 1:
            raise r.fail("vcpus", "must be positive")
        f["vcpus"] = vcpus
        avail = r.integer("vcpu_avail")
        if avail is not None:
            f["vcpus_current"] = sp.current_from_avail(avail, vcpus)
    _read_cpus(r, f)

    builder = r.opt("builder")
    hvm = builder == "hvm"
    if builder not in (None, "hvm", "linux"):
        raise r.fail("builder", f"expected 'hvm' or 'linux', not {builder!r}")
    arch = host_arch
    machine = ("xenfv" if hvm else "xenpv") if host_arch else None
    if hvm:
        f["os"] = OSConfig(type="hvm", loader=r.opt("kernel"), boot=sp.parse_boot(r.opt("boot") or "c"),
                           arch=arch, machine=machine)
        f["features"] = tuple(x for x in sp.HVM_FEATURES if r.flag(x))
        emulator = r.opt("device_model")
        if emulator is not None:
            f["emulator"] = emulator
        hpet = r.flag("hpet")
        if hpet is not None:
            f["clock_timers"] = (ClockTimer(name="hpet", present=hpet),)
    else:
        f["os"] = OSConfig(type="linux", kernel=r.opt("kernel"), initrd=r.opt("ramdisk"),
                           cmdline=r.opt("extra"), root=r.opt("root"), arch=arch,
                           machine=machine)
        bootloader = r.opt("bootloader")
        if bootloader is not None:
            f["bootloader"] = bootloader
            args = r.opt("bootargs")
            if args is not None:
                f["bootloader_args"] = args
    f["clock_offset"] = "localtime" if r.flag("localtime") else "utc"
    for key in ("on_poweroff", "on_reboot", "on_crash"):
        action = r.opt(key)
        if action is not None:
            try:
                f[key] = sp.parse_action(action)
            except ValueError as e:
                raise r.fail(key, str(e)) from None

    disks = [_read_disk(r, item) for item in r.strings("disk")]
    if hvm:
        cdrom = r.opt("cdrom")
        if cdrom is not None and not any(d.device == "cdrom" and d.target_dev == "hdc" for d in disks):
            disks.append(Disk(type="file", device="cdrom", source=cdrom, target_dev="hdc",
                              target_bus="ide", driver_name="file", readonly=True))
        for fd in ("fda", "fdb"):
            path = r.opt(fd)
            if path is not None:
                disks.append(Disk(type="file", device="floppy", source=path, target_dev=fd,
                                  target_bus="fdc", driver_name="file"))
    interfaces = [_read_vif(r, item, hvm) for item in r.strings("vif")]

    chardevs: list[CharDevice] = []
    inputs: list[Input] = []
    sounds: tuple[Sound, ...] = ()
    for key in ("serial", "parallel"):
        values = r.strings(key)
        if values and not hvm and any(v.strip() not in ("", "none") for v in values):
            raise r.fail(key, "only HVM guests have serial and parallel ports")
        for port, v in enumerate(values):
            try:
                dev = sp.parse_chardev(v, key, port)
            except ValueError as e:
                raise r.fail(key, str(e)) from None
            if dev is not None:
                chardevs.append(dev)
    if hvm:
        usbdevice = r.opt("usbdevice")
        if usbdevice is not None:
            if usbdevice not in ("mouse", "tablet", "keyboard"):
                raise r.fail("usbdevice", f"expected mouse, tablet or keyboard, not {usbdevice!r}")
            inputs.append(Input(type=usbdevice, bus="usb"))
        soundhw = r.opt("soundhw")
        if soundhw is not None:
            sounds = sp.parse_sounds(soundhw)
    graphics = _read_vfbs(r) if r.conf.get("vfb") is not None else []
    if not graphics:
        graphics = _read_flat_graphics(r)
    if graphics:
        inputs.append(sp.implicit_mouse(hvm))
    if hvm:
        serial = next((c for c in chardevs if c.kind == "serial"), None)
        if serial is not None:
            chardevs.append(dataclasses.replace(serial, kind="console", target_port=0))
    else:
        chardevs.append(CharDevice(kind="console", type="pty", target_port=0))
    f["disks"] = tuple(disks)
    f["interfaces"] = tuple(interfaces)
    f["chardevs"] = tuple(chardevs)
    f["inputs"] = tuple(inputs)
    f["graphics"] = tuple(graphics)
    f["sounds"] = sounds
    return DomainConfig(**f)  # type: ignore[arg-type]


#: libvirt's CPU list (the domain schema's dom.cpuset): ``0-3,^2,6``.
_CPULIST = lazy_re.compile(r"([0-9]+(-[0-9]+)?|\^[0-9]+)(,([0-9]+(-[0-9]+)?|\^[0-9]+))*\Z")


def _read_cpus(r: _Reader, f: dict[str, object]) -> None:
    value = r.conf.get("cpus")
    if value is None:
        return

    def cpulist(item: str) -> str:
        text = item.replace(" ", "")
        if not _CPULIST.match(text):
            raise r.fail("cpus", f"not a CPU list such as '0-3,^2,6': {item!r}")
        return text

    if isinstance(value, str):
        if value:
            f["cpuset"] = cpulist(value)
        return
    if isinstance(value, int):
        f["cpuset"] = cpulist(str(value))
        return
    pins = []
    for n, item in enumerate(value):
        if isinstance(item, int):
            item = str(item)
        if not isinstance(item, str):
            raise r.fail("cpus", f"expected CPU lists, not {value!r}")
        if item:
            pins.append(VcpuPin(n, cpulist(item)))
    if pins:
        f["vcpu_pins"] = tuple(pins)


def _read_disk(r: _Reader, item: str) -> Disk:
    fields = [x.strip() for x in item.split(",")]
    if len(fields) < 2 or len(fields) > 3 or not fields[1]:
        raise r.fail("disk", f"expected 'SOURCE,TARGET,MODE', not {item!r}")
    source, target = fields[0], fields[1]
    mode = fields[2] if len(fields) == 3 else "w"
    if mode not in ("w", "r", "ro", "rw", "w!", "r!", "!"):
        raise r.fail("disk", f"unknown mode {mode!r} in {item!r} (w, r or w!)")
    name, device = sp.parse_disk_target(target)
    readonly, shareable = sp.parse_mode(mode)
    if not source:
        return Disk(type="file", device=device, target_dev=name, target_bus=sp.disk_bus(name),
                    readonly=readonly or device == "cdrom", shareable=shareable)
    disk_type, driver, driver_type, path = sp.parse_source(source)
    return Disk(type=disk_type, device=device, source=path, target_dev=name,
                target_bus=sp.disk_bus(name), driver_name=driver, driver_type=driver_type,
                readonly=readonly or device == "cdrom", shareable=shareable)


def _pairs(r: _Reader, key: str, item: str, allowed: frozenset[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in item.split(","):
        part = part.strip()
        if not part:
            continue
        k, sep, v = part.partition("=")
        k = k.strip()
        if not sep or k not in allowed:
            raise r.fail(key, f"unknown option {part!r} in {item!r}")
        out[k] = v.strip()
    return out


def _read_vif(r: _Reader, item: str, hvm: bool) -> Interface:
    o = _pairs(r, "vif", item, _VIF_KEYS)
    bridge = o.get("bridge") or None
    script = o.get("script") or None
    model = o.get("model") or None
    if model is None and o.get("type") == "netfront":
        model = "netfront"
    mac = o.get("mac") or None
    if mac is not None and not sp.is_mac(mac):
        raise r.fail("vif", f"{mac!r} is not a MAC address")
    if_type = sp.interface_type(bridge, script)
    return Interface(type=if_type, mac=mac, source=bridge if if_type == "bridge" else None,
                     ip_address=o.get("ip") or None, script=script,
                     target_dev=o.get("vifname") or None, model=model)


def _vnc(unused: str | int | None, display: str | int | None, listen: str | None,
         passwd: str | None, keymap: str | None) -> Graphics:
    vncunused = 1 if unused in (None, "") else int(unused)
    vncdisplay = None if display in (None, "") else int(display)
    port = sp.vnc_port(vncunused, vncdisplay)
    return Graphics(type="vnc", port=port, autoport=port == -1, listen=listen or None,
                    passwd=passwd or None, keymap=keymap or None)


def _read_vfbs(r: _Reader) -> list[Graphics]:
    out: list[Graphics] = []
    for item in r.strings("vfb"):
        o = _pairs(r, "vfb", item, _VFB_KEYS)
        kind = o.get("type") or ("vnc" if o.get("vnc") == "1" else "sdl" if o.get("sdl") == "1" else None)
        try:
            if kind == "vnc":
                out.append(_vnc(o.get("vncunused"), o.get("vncdisplay"), o.get("vnclisten"),
                                o.get("vncpasswd"), o.get("keymap")))
            elif kind == "sdl":
                out.append(Graphics(type="sdl", display=o.get("display") or None,
                                    xauth=o.get("xauthority") or None))
            else:
                raise r.fail("vfb", f"{item!r} names no display type (type=vnc or type=sdl)")
        except ValueError:
            raise r.fail("vfb", f"expected numbers for vncunused and vncdisplay in {item!r}") from None
    return out


def _read_flat_graphics(r: _Reader) -> list[Graphics]:
    out: list[Graphics] = []
    if r.flag("vnc"):
        out.append(_vnc(r.integer("vncunused"), r.integer("vncdisplay"), r.opt("vnclisten"),
                        r.opt("vncpasswd"), r.opt("keymap")))
    if r.flag("sdl"):
        out.append(Graphics(type="sdl", display=r.opt("display"), xauth=r.opt("xauthority")))
    return out


# ================================================================== writing

def format_xm(cfg: DomainConfig, xend_config_format: int = sp.DEFAULT_FORMAT, *,
              into: ConfFile | str | bytes | None = None) -> str:
    """The XM config file of ``cfg``.

    Keys are written in libvirt's order. With ``into`` (an existing file)
    the result is that file with the keys this module manages rewritten,
    added or removed, and everything else (comments, layout, the keys of
    :data:`IGNORED_KEYS`) kept. Raises NoSupportError (code
    CONFIG_UNSUPPORTED) naming the element Xen cannot express, and
    ConfigSyntaxError when ``into`` is malformed; nothing is produced then.
    """
    fmt = sp.check_format(xend_config_format)
    g = sp.xen_guest(cfg)
    pairs = _xm_pairs(g, fmt)
    for key, value in pairs:
        try:
            format_value(value)
        except ValueError as e:
            raise sp.unsupported(f"XM key '{key}'", str(e)) from None
    if into is None:
        conf = ConfFile()
    elif isinstance(into, ConfFile):
        conf = into
    else:
        conf = parse_conf(into)
    keys = {k for k, _ in pairs}
    for name in conf.names():
        if name in READ_KEYS and name not in keys:
            conf.remove(name)
    for key, value in pairs:
        try:
            conf.set(key, value)
        except ValueError as e:
            raise sp.unsupported(f"XM key '{key}'", str(e)) from None
    return conf.dumps()


def _xm_pairs(g: sp.XenGuest, fmt: int) -> list[tuple[str, ConfValue]]:
    cfg = g.config
    os = cfg.os
    out: list[tuple[str, ConfValue]] = []
    add = out.append
    add(("name", cfg.name))
    if cfg.uuid is not None:
        add(("uuid", format_uuid(cfg.uuid)))
    add(("maxmem", -(-cfg.memory // 1024)))
    add(("memory", -(-cfg.current_memory_kib // 1024)))
    add(("vcpus", cfg.vcpus))
    if cfg.vcpus_current is not None and cfg.vcpus_current < cfg.vcpus:
        add(("vcpu_avail", sp.avail_from_current(cfg.vcpus_current)))
    if cfg.vcpu_pins:
        pins = {p.vcpu: p.cpuset for p in cfg.vcpu_pins}
        add(("cpus", [pins.get(n, cfg.cpuset or "") for n in range(cfg.vcpus)]))
    elif cfg.cpuset is not None:
        add(("cpus", cfg.cpuset))
    if g.hvm:
        add(("builder", "hvm"))
        add(("kernel", os.loader or ""))
        add(("boot", sp.format_boot(os.boot)))
        for feature in ("pae", "acpi", "apic"):
            add((feature, 1 if feature in g.features else 0))
        for feature in ("hap", "viridian"):
            if feature in g.features:
                add((feature, 1))
        if g.hpet is not None:
            add(("hpet", 1 if g.hpet else 0))
        add(("localtime", 1 if g.localtime else 0))
        if fmt == 1:
            for disk, name, place in g.disks:
                if disk.device == "cdrom":
                    if name != "hdc":
                        raise sp.unsupported(place, "xend 3.0.2 (format 1) emulates a CD-ROM only as hdc")
                    if disk.source is not None:
                        add(("cdrom", disk.source))
        for name, path in g.floppies:
            add((name, path))
    else:
        if cfg.bootloader is not None:
            add(("bootloader", cfg.bootloader))
            if cfg.bootloader_args is not None:
                add(("bootargs", cfg.bootloader_args))
        for key, value in (("kernel", os.kernel), ("ramdisk", os.initrd), ("extra", os.cmdline),
                           ("root", os.root)):
            if value is not None:
                add((key, value))
        if g.localtime:
            add(("localtime", 1))
    for key, action in (("on_poweroff", cfg.on_poweroff), ("on_reboot", cfg.on_reboot),
                        ("on_crash", cfg.on_crash)):
        if action is not None:
            add((key, LifecycleAction(action).value))
    if g.hvm:
        if cfg.emulator is not None:
            add(("device_model", cfg.emulator))
        if g.usb_inputs:
            add(("usb", 1))
            add(("usbdevice", g.usb_inputs[0]))
    if g.graphics:
        if g.hvm or fmt < 3:
            _flat_graphics(g, add)
        else:
            vfbs: list[ConfValue] = [_vfb_item(gr) for gr in g.graphics]
            add(("vfb", vfbs))
    disks: list[ConfValue] = [_disk_item(d, name, place, g.hvm, fmt) for d, name, place in g.disks
                              if not (g.hvm and fmt == 1 and d.device == "cdrom")]
    if disks:
        add(("disk", disks))
    if g.interfaces:
        vifs: list[ConfValue] = [_vif_item(n, place, g.hvm) for n, place in g.interfaces]
        add(("vif", vifs))
    if g.hvm:
        for key, devs in (("parallel", g.parallels), ("serial", g.serials)):
            values: list[ConfValue] = list(sp.port_values(devs, listen=",listen"))
            add((key, values[0] if len(values) == 1 else values))
        if g.sounds:
            add(("soundhw", g.sounds))
    return out


def _flat_graphics(g: sp.XenGuest, add: Callable[[tuple[str, ConfValue]], None]) -> None:
    if g.sdl is not None and g.vnc is None:
        add(("sdl", 1))
        add(("vnc", 0))
    else:
        add(("sdl", 1 if g.sdl is not None else 0))
        add(("vnc", 1))
    if g.vnc is not None:
        display = sp.vnc_display(g.vnc, "devices/graphics (vnc)")
        if display is None:
            add(("vncunused", 1))
        else:
            add(("vncunused", 0))
            add(("vncdisplay", display))
        for key, value in (("vnclisten", g.vnc.listen), ("vncpasswd", g.vnc.passwd),
                           ("keymap", g.vnc.keymap)):
            if value is not None:
                add((key, value))
    if g.sdl is not None:
        for key, value in (("display", g.sdl.display), ("xauthority", g.sdl.xauth)):
            if value is not None:
                add((key, value))


def _vfb_item(gr: Graphics) -> str:
    for value in (gr.display, gr.xauth, gr.listen, gr.passwd, gr.keymap):
        if value is not None:
            _item_value(value, "devices/graphics")
    if gr.type == "sdl":
        parts = ["type=sdl"]
        if gr.display is not None:
            parts.append(f"display={gr.display}")
        if gr.xauth is not None:
            parts.append(f"xauthority={gr.xauth}")
        return ",".join(parts)
    parts = ["type=vnc"]
    display = sp.vnc_display(gr, "devices/graphics (vnc)")
    if display is None:
        parts.append("vncunused=1")
    else:
        parts += ["vncunused=0", f"vncdisplay={display}"]
    for key, value in (("vnclisten", gr.listen), ("vncpasswd", gr.passwd), ("keymap", gr.keymap)):
        if value is not None:
            parts.append(f"{key}={value}")
    return ",".join(parts)


def _disk_item(d: Disk, name: str, place: str, hvm: bool, fmt: int) -> str:
    source = _item_value(sp.format_source(d, place) or "", place)
    target = f"ioemu:{name}" if hvm and fmt == 1 else name
    if d.device == "cdrom":
        target += ":cdrom"
    return f"{source},{target},{sp.format_mode(d)}"


def _item_value(value: str, place: str) -> str:
    """A value inside a ``disk``/``vif``/``vfb`` item, where ',' separates fields."""
    if "," in value:
        raise sp.unsupported(place, f"{value!r} holds a ',', which XM list items cannot carry")
    return value


def _vif_item(n: Interface, place: str, hvm: bool) -> str:
    for value in (n.mac, n.source, n.script, n.ip_address, n.model, n.target_dev):
        if value is not None:
            _item_value(value.replace("=", ","), place)
    parts = []
    if n.mac is not None:
        parts.append(f"mac={n.mac}")
    if n.type == "bridge" and n.source is not None:
        parts.append(f"bridge={n.source}")
    if n.script is not None:
        parts.append(f"script={n.script}")
    if n.ip_address is not None:
        parts.append(f"ip={n.ip_address}")
    if n.model == "netfront":
        parts.append("type=netfront")
    else:
        if n.model is not None:
            parts.append(f"model={n.model}")
        if hvm:
            parts.append("type=ioemu")
    if n.target_dev is not None:
        parts.append(f"vifname={n.target_dev}")
    return ",".join(parts)
