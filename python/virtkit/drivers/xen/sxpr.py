"""xend's domain S-expressions ⇄ the domain model, in each ``xend_config_format``.

xend describes a domain as ``(domain (name ..) (memory ..) (image ..)
(device ..) ...)`` (``GET /xend/domain/NAME?detail=1``) and takes one as
``(vm ...)`` with the same inner structure (``op=create``/``op=new``, form
field ``config``). Two calls convert:

- :func:`parse_sxpr`: an S-expression (text, bytes, a parsed
  :class:`~virtkit.sexpr.SExpr` or its tuple tree) -> a
  :class:`~virtkit.xml.domain.DomainConfig`, as libvirt's Xen driver showed
  it in 2008: disks with their driver and bus, a vif's runtime name, a pty
  console for PV guests, each HVM serial port mirrored as the console, the
  PS/2 (HVM) or Xen (PV) mouse of a graphical guest, the clock of HVM guests.
  Runtime keys (``state``, ``cpu_time``...) are ignored here;
  :class:`Sx` reads them for the driver.
- :func:`format_sxpr`: a DomainConfig -> the ``(vm ...)`` text to post, in
  late libvirt's layout (one line, lists side by side, string values quoted,
  ``(localtime 0|1)`` at top level). :func:`format_device_sxpr` writes one
  device for ``op=device_create`` (without the ``(device ...)`` wrapper).

The dialect matters (``xen-protocols.md`` 1.1, 1.5): with format 1 an HVM
CD-ROM is ``(image (hvm (cdrom PATH)))`` and disks are ``ioemu:hda``, VNC
takes only ``(vnc 1)``, and an unknown VNC port is 5900 + the domain id;
format 2 writes ``hda:disk``/``hdc:cdrom`` devices and VNC display, listen,
password and keymap; format 3 describes a PV framebuffer as ``(device (vfb
...))``; format 4 an HVM one too, and drops ``(type ioemu)`` from NICs.
Reading accepts every dialect's spellings whatever the format.

Errors: malformed text raises :class:`~virtkit.errors.SExprSyntaxError`
(byte offset); a missing or ill-typed value
:class:`~virtkit.errors.SExprValueError` naming its path
(``domain/memory``); a configuration Xen cannot express NoSupportError
(code CONFIG_UNSUPPORTED) naming the XML element (see
:mod:`~virtkit.drivers.xen.spellings`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Union, cast

from virtkit import _lazy_re as lazy_re
from virtkit import sexpr
from virtkit.drivers.xen import spellings as sp
from virtkit.errors import InvalidUUIDError, SExprError, SExprSyntaxError, SExprValueError
from virtkit.uuid import format_uuid, parse_uuid
from virtkit.xml.domain import (
    CharDevice,
    Device,
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

__all__ = ["Sx", "parse_sxpr", "format_sxpr", "format_device_sxpr", "device_sxpr_kind", "load"]

#: A parsed S-expression as nested tuples of strings (``SExpr.to_tree()``).
Tree = Union[str, tuple["Tree", ...]]


# ================================================================== reading

class Sx:
    """A list of an S-expression tree, read by key (``(key value)`` children).

    ``path`` names the list in errors (``domain/image/hvm``). Values are
    strings; absent keys give None, never a default; a key given without a
    value (``(bootloader )``) gives ``""``.
    """

    __slots__ = ("tree", "path", "_index")

    def __init__(self, tree: tuple[Tree, ...], path: str) -> None:
        self.tree = tree
        self.path = path
        self._index: dict[str, tuple[Tree, ...]] | None = None

    @property
    def head(self) -> str:
        h = self.tree[0] if self.tree else ""
        return h if isinstance(h, str) else ""

    def _lists(self) -> dict[str, tuple[Tree, ...]]:
        index = self._index
        if index is None:
            index = {}
            for child in self.tree[1:]:
                if type(child) is tuple and child and type(child[0]) is str:
                    index.setdefault(child[0], child)
            self._index = index
        return index

    def has(self, key: str) -> bool:
        return key in self._lists()

    def node(self, key: str) -> Sx | None:
        """The first ``(key ...)`` child, as an :class:`Sx`."""
        child = self._lists().get(key)
        return None if child is None else Sx(child, f"{self.path}/{key}")

    def nodes(self, key: str) -> Iterator[Sx]:
        """Every ``(key ...)`` child, in order."""
        for child in self.tree[1:]:
            if type(child) is tuple and child and child[0] == key:
                yield Sx(child, f"{self.path}/{key}")

    def first(self) -> Sx | None:
        """The first child list (``(image (hvm ...))`` -> the ``hvm`` list)."""
        for child in self.tree[1:]:
            if type(child) is tuple and child:
                return Sx(child, f"{self.path}/{child[0] if isinstance(child[0], str) else '?'}")
        return None

    def raw(self, key: str) -> Tree | None:
        """The value of ``(key value)`` as it is: a string or a tuple (None when absent)."""
        child = self._lists().get(key)
        if child is None:
            return None
        return child[1] if len(child) > 1 else ""

    def text(self, key: str) -> str | None:
        """The string value of ``(key value)``; SExprValueError when it is a list."""
        value = self.raw(key)
        if value is None or isinstance(value, str):
            return value
        raise SExprValueError(f"value at '{self.path}/{key}' is a list, not a string",
                              path=f"{self.path}/{key}")

    def opt(self, key: str) -> str | None:
        """Like :meth:`text`, with an empty value counted as absent."""
        value = self.text(key)
        return value or None

    def int(self, key: str) -> int | None:
        """The integer value of ``(key N)``; SExprValueError when it is not one."""
        value = self.text(key)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                as_float = float("nan")
            if as_float.is_integer():
                return int(as_float)
            raise SExprValueError(f"value {value!r} at '{self.path}/{key}' is not an integer",
                                  path=f"{self.path}/{key}") from None

    def float(self, key: str) -> float | None:
        """The number value of ``(key X)`` (xend's ``cpu_time`` seconds)."""
        value = self.text(key)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise SExprValueError(f"value {value!r} at '{self.path}/{key}' is not a number",
                                  path=f"{self.path}/{key}") from None

    def flag(self, key: str) -> bool | None:
        """``(key 1)`` True, ``(key 0)`` False, absent None."""
        value = self.int(key)
        return None if value is None else value != 0


def load(data: bytes | str | sexpr.SExpr | tuple[Tree, ...], *, lenient: bool = False) -> Sx:
    """The top list of an S-expression (text, bytes, SExpr or tuple tree) as an :class:`Sx`."""
    if isinstance(data, (bytes, str)):
        data = sexpr.loads(data, lenient=lenient)
    tree = data.to_tree() if isinstance(data, sexpr.SExpr) else data
    if not isinstance(tree, tuple) or not tree or not isinstance(tree[0], str):
        raise SExprError("expected a list such as (domain ...) at the top of the S-expression")
    return Sx(cast("tuple[Tree, ...]", tree), tree[0])


def parse_sxpr(data: bytes | str | sexpr.SExpr | tuple[Tree, ...] | Sx,
               xend_config_format: int = sp.DEFAULT_FORMAT, *, vnc_port: int | None = None,
               tty: str | None = None, lenient: bool = False) -> DomainConfig:
    """The domain model of a ``(domain ...)`` (or ``(vm ...)``) S-expression.

    ``vnc_port`` and ``tty`` are what xenstore says of a running domain
    (its VNC port, its console's pty), when the caller knows them; without a
    port, a VNC display shows 5900 + the domain id with format 1 and the
    display's fixed port or -1 (automatic) otherwise. ``lenient`` accepts
    what libvirt's own reader did (lists left open at the end of input).

    Raises SExprSyntaxError for malformed text, SExprError/SExprValueError
    naming the path of a missing or ill-typed value.
    """
    fmt = sp.check_format(xend_config_format)
    if isinstance(data, (bytes, str)):
        offset, char = -1, ""
        if isinstance(data, bytes):
            found_b = sp.NOT_IN_XML_BYTES.search(data)
            if found_b is not None:
                offset, char = found_b.start(), found_b.group().decode("utf-8", "replace")
        else:
            found = sp.NOT_IN_XML.search(data)
            if found is not None:
                offset = len(data[:found.start()].encode("utf-8", "surrogatepass"))
                char = found.group()
        if char:
            raise SExprSyntaxError(
                f"malformed S-expression at byte {offset}: character U+{ord(char[0]):04X}, which "
                f"domain XML cannot carry", offset=offset, expected="a character XML can carry")
    dom = data if isinstance(data, Sx) else load(data, lenient=lenient)
    if dom.head not in ("domain", "vm"):
        raise SExprError(f"expected (domain ...) or (vm ...), not ({dom.head} ...)")
    p = dom.path
    name = dom.opt("name")
    if name is None:
        raise SExprError(f"the domain has no name ({p}/name is missing or empty)")
    f: dict[str, object] = {"name": name, "type": "xen"}
    domid = dom.int("domid")
    if domid is not None and domid >= 0:
        f["id"] = domid
    uuid_text = dom.opt("uuid")
    if uuid_text is not None:
        try:
            f["uuid"] = parse_uuid(uuid_text)
        except InvalidUUIDError as e:
            raise SExprValueError(f"bad UUID at '{p}/uuid': {e}", path=f"{p}/uuid") from None

    cur = dom.int("memory")
    maximum = dom.int("maxmem")
    if cur is None:
        cur = maximum
    if cur is None:
        raise SExprError(f"the domain has no memory size ({p}/memory is missing)")
    maximum = max(maximum if maximum is not None else cur, cur)
    if cur < 0:
        raise SExprValueError(f"negative memory size at '{p}/memory'", path=f"{p}/memory")
    f["memory"] = maximum * 1024
    if cur != maximum:
        f["current_memory"] = cur * 1024
    vcpus = dom.int("vcpus")
    if vcpus is not None:
        if vcpus < 1:
            raise SExprValueError(f"vCPU count {vcpus} at '{p}/vcpus' is not positive", path=f"{p}/vcpus")
        f["vcpus"] = vcpus
        avail = dom.int("vcpu_avail")
        if avail is not None:
            f["vcpus_current"] = sp.current_from_avail(avail, vcpus)
    _read_cpus(dom, f, vcpus or 1)
    bootloader = dom.opt("bootloader")
    if bootloader is not None:
        f["bootloader"] = bootloader
        args = dom.opt("bootloader_args")
        if args is not None:
            f["bootloader_args"] = args
    description = dom.opt("description")
    if description is not None:
        f["description"] = description
    for key in ("on_poweroff", "on_reboot", "on_crash"):
        action = dom.opt(key)
        if action is not None:
            try:
                f[key] = sp.parse_action(action)
            except ValueError as e:
                raise SExprValueError(f"{e} at '{p}/{key}'", path=f"{p}/{key}") from None

    image = dom.node("image")
    kind = image.first() if image is not None else None
    hvm = kind is not None and kind.head == "hvm"
    localtime = dom.flag("localtime")
    if kind is not None and localtime is None:
        localtime = kind.flag("localtime")
    disks: list[Disk] = []
    chardevs: list[CharDevice] = []
    inputs: list[Input] = []
    sounds: tuple[Sound, ...] = ()
    if hvm:
        assert kind is not None
        f["os"] = _hvm_os(kind)
        f["features"] = tuple(x for x in sp.HVM_FEATURES if kind.flag(x))
        f["clock_offset"] = "localtime" if localtime else "utc"
        hpet = kind.flag("hpet")
        if hpet is not None:
            from virtkit.xml.domain import ClockTimer

            f["clock_timers"] = (ClockTimer(name="hpet", present=hpet),)
        emulator = kind.opt("device_model")
        if emulator is not None:
            f["emulator"] = emulator
        for key in ("serial", "parallel"):
            chardevs += _read_chardevs(kind, key)
        usbdevice = kind.opt("usbdevice")
        if usbdevice in ("mouse", "tablet", "keyboard"):
            inputs.append(Input(type=usbdevice, bus="usb"))
        soundhw = kind.opt("soundhw")
        if soundhw is not None:
            sounds = sp.parse_sounds(soundhw)
    else:
        os = OSConfig(type="linux")
        if kind is not None and kind.head == "linux":
            os = OSConfig(type="linux", kernel=kind.opt("kernel"), initrd=kind.opt("ramdisk"),
                          cmdline=kind.opt("args"), root=kind.opt("root"))
        f["os"] = os
        if localtime:
            f["clock_offset"] = "localtime"

    interfaces: list[Interface] = []
    graphics: list[Graphics] = []
    for device in dom.nodes("device"):
        dev = device.first()
        if dev is None:
            continue
        head = dev.head
        if head in ("vbd", "tap", "tap2"):
            disk = _read_disk(dev)
            if disk is not None:
                disks.append(disk)
        elif head == "vif":
            interfaces.append(_read_vif(dev, domid if "id" in f else None, len(interfaces)))
        elif head == "vfb":
            g = _read_vfb(dev, fmt, f.get("id"), vnc_port)
            if g is not None:
                graphics.append(g)
        # vkbd, console, pci, vtpm...: not part of the domain XML model.
    if hvm:
        assert kind is not None
        cdrom = kind.opt("cdrom")
        if cdrom is not None and not any(d.device == "cdrom" and d.target_dev == "hdc" for d in disks):
            disks.append(Disk(type="file", device="cdrom", source=cdrom, target_dev="hdc",
                              target_bus="ide", driver_name="file", readonly=True))
        for fd in ("fda", "fdb"):
            path = kind.opt(fd)
            if path is not None:
                disks.append(Disk(type="file", device="floppy", source=path, target_dev=fd,
                                  target_bus="fdc", driver_name="file"))
    if not graphics and kind is not None:
        graphics = _read_flat_graphics(kind, fmt, f.get("id"), vnc_port)
    if graphics:
        inputs.append(sp.implicit_mouse(hvm))
    if not hvm:
        chardevs.append(CharDevice(kind="console", type="pty", target_port=0, tty=tty))
    else:
        serial = next((c for c in chardevs if c.kind == "serial"), None)
        if serial is not None:
            mirror = CharDevice(kind="console", type=serial.type, source_path=serial.source_path,
                                source_host=serial.source_host, source_service=serial.source_service,
                                source_mode=serial.source_mode, connect_host=serial.connect_host,
                                connect_service=serial.connect_service, protocol=serial.protocol,
                                target_port=0, tty=tty if serial.type == "pty" else None)
            chardevs.append(mirror)
    f["disks"] = tuple(disks)
    f["interfaces"] = tuple(interfaces)
    f["chardevs"] = tuple(chardevs)
    f["graphics"] = tuple(graphics)
    f["inputs"] = tuple(inputs)
    f["sounds"] = sounds
    return DomainConfig(**f)  # type: ignore[arg-type]


def _read_cpus(dom: Sx, f: dict[str, object], vcpus: int) -> None:
    """``(cpus '0-3')`` -> ``<vcpu cpuset>``; ``(cpus ((0 1) () ...))`` -> per-vCPU pins."""
    from virtkit.cpuset import format_cpulist

    value = dom.raw("cpus")
    if value is None or value == "":
        return
    if isinstance(value, str):
        f["cpuset"] = value
        return
    pins = []
    for n, entry in enumerate(value):
        cpus = [entry] if isinstance(entry, str) else list(entry)
        numbers = set()
        for c in cpus:
            if not isinstance(c, str):
                raise SExprValueError(f"CPU list of vCPU {n} at '{dom.path}/cpus' is nested too deep",
                                      path=f"{dom.path}/cpus")
            try:
                numbers.update(_cpus_of(c))
            except ValueError:
                raise SExprValueError(f"bad CPU {c!r} for vCPU {n} at '{dom.path}/cpus'",
                                      path=f"{dom.path}/cpus") from None
        if numbers and n < vcpus:
            top = max(numbers)
            pins.append(VcpuPin(n, format_cpulist(i in numbers for i in range(top + 1))))
    if pins:
        f["vcpu_pins"] = tuple(pins)


def _cpus_of(text: str) -> set[int]:
    """``3`` or ``0-3,^2`` (xend accepts CPU list strings in a vCPU's entry)."""
    out: set[int] = set()
    excluded: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        neg = item.startswith("^")
        lo, sep, hi = item.lstrip("^").partition("-")
        start, end = int(lo), int(hi) if sep else int(lo)
        if start < 0 or end < start:
            raise ValueError(text)
        (excluded if neg else out).update(range(start, end + 1))
    return out - excluded


def _hvm_os(kind: Sx) -> OSConfig:
    loader = kind.opt("loader")
    kernel = kind.opt("kernel")
    boot = sp.parse_boot(kind.opt("boot") or "c")
    if loader is not None:
        return OSConfig(type="hvm", loader=loader, kernel=kernel, initrd=kind.opt("ramdisk"),
                        cmdline=kind.opt("args"), boot=boot)
    return OSConfig(type="hvm", loader=kernel, boot=boot)


def _read_chardevs(kind: Sx, key: str) -> list[CharDevice]:
    value = kind.raw(key)
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    out: list[CharDevice] = []
    values_seen: list[object] = []  # a list's position is the port: (serial (none /dev/ttyS1))
    for v in values:
        if not isinstance(v, str):
            raise SExprValueError(f"value at '{kind.path}/{key}' is nested too deep",
                                  path=f"{kind.path}/{key}")
        try:
            dev = sp.parse_chardev(v, key, len(values_seen))
        except ValueError as e:
            raise SExprValueError(f"{e} at '{kind.path}/{key}'", path=f"{kind.path}/{key}") from None
        values_seen.append(v)
        if dev is not None:
            out.append(dev)
    return out


def _read_disk(dev: Sx) -> Disk | None:
    target = dev.opt("dev")
    if target is None:
        return None
    name, device = sp.parse_disk_target(target)
    readonly, shareable = sp.parse_mode(dev.opt("mode"))
    uname = dev.opt("uname")
    if uname is None:
        return Disk(type="file", device=device, target_dev=name, target_bus=sp.disk_bus(name),
                    readonly=readonly or device == "cdrom", shareable=shareable)
    disk_type, driver, driver_type, path = sp.parse_source(uname)
    return Disk(type=disk_type, device=device, source=path, target_dev=name,
                target_bus=sp.disk_bus(name), driver_name=driver, driver_type=driver_type,
                readonly=readonly or device == "cdrom", shareable=shareable)


def _read_vif(vif: Sx, domid: int | None, index: int) -> Interface:
    bridge = vif.opt("bridge")
    script = vif.opt("script")
    model = vif.opt("model")
    if model is None and vif.opt("type") == "netfront":
        model = "netfront"
    target = vif.opt("vifname")
    if target is None and domid is not None:
        target = f"vif{domid}.{index}"
    if_type = sp.interface_type(bridge, script)
    return Interface(type=if_type, mac=_mac(vif), source=bridge if if_type == "bridge" else None,
                     ip_address=vif.opt("ip"), script=script, target_dev=target, model=model)


def _mac(vif: Sx) -> str | None:
    mac = vif.opt("mac")
    if mac is not None and not sp.is_mac(mac):
        raise SExprValueError(f"{mac!r} at '{vif.path}/mac' is not a MAC address", path=f"{vif.path}/mac")
    return mac


def _port(fmt: int, domid: object, known: int | None, vncunused: int | None,
          vncdisplay: int | None) -> int:
    if known is not None:
        return known
    if vncdisplay is not None and not vncunused:
        return 5900 + vncdisplay
    if fmt == 1 and isinstance(domid, int):
        return 5900 + domid
    return -1


def _read_vfb(vfb: Sx, fmt: int, domid: object, known_port: int | None) -> Graphics | None:
    kind = vfb.opt("type")
    if kind is None:
        kind = "vnc" if vfb.flag("vnc") else "sdl" if vfb.flag("sdl") else None
    if kind == "vnc":
        return Graphics(type="vnc",
                        port=_port(fmt, domid, known_port, vfb.int("vncunused"), vfb.int("vncdisplay")),
                        listen=vfb.opt("vnclisten"), passwd=vfb.opt("vncpasswd"),
                        keymap=vfb.opt("keymap"))
    if kind == "sdl":
        return Graphics(type="sdl", display=vfb.opt("display"), xauth=vfb.opt("xauthority"))
    return None


def _read_flat_graphics(kind: Sx, fmt: int, domid: object, known_port: int | None) -> list[Graphics]:
    out: list[Graphics] = []
    if kind.flag("vnc"):
        out.append(Graphics(type="vnc",
                            port=_port(fmt, domid, known_port, kind.int("vncunused"),
                                       kind.int("vncdisplay")),
                            listen=kind.opt("vnclisten"), passwd=kind.opt("vncpasswd"),
                            keymap=kind.opt("keymap")))
    if kind.flag("sdl"):
        out.append(Graphics(type="sdl", display=kind.opt("display"), xauth=kind.opt("xauthority")))
    return out


# ================================================================== writing

_BARE = lazy_re.compile(r"[A-Za-z0-9_./:,@+=-]+\Z")
_Add = Callable[[str], None]


def _q(value: str) -> str:
    """A quoted atom: ``'...'`` with ``\\`` and ``'`` escaped (libvirt's escaping)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _b(value: str) -> str:
    """A bare atom when it reads back as itself, else a quoted one."""
    return value if _BARE.match(value) else _q(value)


def format_sxpr(cfg: DomainConfig, xend_config_format: int = sp.DEFAULT_FORMAT) -> str:
    """The ``(vm ...)`` S-expression that defines or creates ``cfg`` with xend.

    One line in late libvirt's layout, without a final newline. Memory is
    rounded up to whole MiB (xend's unit). Raises NoSupportError (code
    CONFIG_UNSUPPORTED) naming the element Xen cannot express, and
    InvalidArgumentError for a format other than 1-4.
    """
    fmt = sp.check_format(xend_config_format)
    g = sp.xen_guest(cfg)
    out: list[str] = [f"(vm (name {_q(cfg.name)})"]
    add = out.append
    add(f"(memory {_mib(cfg.current_memory_kib)})(maxmem {_mib(cfg.memory)})(vcpus {cfg.vcpus})")
    if cfg.vcpus_current is not None and cfg.vcpus_current < cfg.vcpus:
        add(f"(vcpu_avail {sp.avail_from_current(cfg.vcpus_current)})")
    _write_cpus(add, cfg)
    if cfg.uuid is not None:
        add(f"(uuid {_q(format_uuid(cfg.uuid))})")
    if cfg.bootloader is not None:
        add(f"(bootloader {_q(cfg.bootloader)})")
        if cfg.bootloader_args is not None:
            add(f"(bootloader_args {_q(cfg.bootloader_args)})")
    if cfg.description is not None:
        add(f"(description {_q(cfg.description)})")
    for key, action in (("on_poweroff", cfg.on_poweroff), ("on_reboot", cfg.on_reboot),
                        ("on_crash", cfg.on_crash)):
        if action is not None:
            add(f"({key} {_q(LifecycleAction(action).value)})")
    if g.hvm:
        _write_hvm_image(add, g, fmt)
    elif cfg.os.kernel is not None:
        _write_pv_image(add, g, fmt)
    add(f"(localtime {1 if g.localtime else 0})")
    for disk, name, place in g.disks:
        if g.hvm and fmt == 1 and disk.device == "cdrom":
            continue  # (image (hvm (cdrom PATH)))
        add(_disk_sxpr(disk, name, place, g.hvm, fmt))
    for nic, place in g.interfaces:
        add(_vif_sxpr(nic, place, g.hvm, fmt))
    if g.graphics and _new_graphics(g.hvm, fmt):
        if not g.hvm:
            add("(device (vkbd))")
        for gr in g.graphics:
            add(f"(device (vfb {_vfb_body(gr, g)}))")
    add(")")
    return "".join(out)


def _mib(kib: int) -> int:
    return -(-kib // 1024)


def _new_graphics(hvm: bool, fmt: int) -> bool:
    """Whether graphics are ``(device (vfb ...))`` (PV: format 3+; HVM: format 4)."""
    return fmt >= 4 if hvm else fmt >= 3


def _write_cpus(add: _Add, cfg: DomainConfig) -> None:
    from virtkit.cpuset import parse_cpulist

    if cfg.vcpu_pins:
        pins = {p.vcpu: p.cpuset for p in cfg.vcpu_pins}
        entries = []
        for n in range(cfg.vcpus):
            spec = pins.get(n, cfg.cpuset)
            if spec is None:
                entries.append("()")
                continue
            try:
                cpus = sorted(_cpus_of(spec))
            except ValueError:
                raise sp.unsupported(f"cputune/vcpupin[{n}]", f"bad CPU list {spec!r}") from None
            entries.append("(" + " ".join(map(str, cpus)) + ")")
        add(f"(cpus ({' '.join(entries)}))")
    elif cfg.cpuset is not None:
        try:
            parse_cpulist(cfg.cpuset, 1 << 16)
        except Exception:  # noqa: BLE001 - any malformed list
            raise sp.unsupported("vcpu/@cpuset", f"bad CPU list {cfg.cpuset!r}") from None
        add(f"(cpus {_q(cfg.cpuset)})")


def _write_pv_image(add: _Add, g: sp.XenGuest, fmt: int) -> None:
    os = g.config.os
    parts = [f"(kernel {_q(os.kernel or '')})"]
    if os.initrd is not None:
        parts.append(f"(ramdisk {_q(os.initrd)})")
    if os.cmdline is not None:
        parts.append(f"(args {_q(os.cmdline)})")
    if os.root is not None:
        parts.append(f"(root {_q(os.root)})")
    if not _new_graphics(False, fmt):
        parts += _flat_graphics(g, fmt)
    add(f"(image (linux {''.join(parts)}))")


def _write_hvm_image(add: _Add, g: sp.XenGuest, fmt: int) -> None:
    cfg = g.config
    os = cfg.os
    parts: list[str] = []
    if os.kernel is not None:
        parts.append(f"(kernel {_q(os.kernel)})")
        if os.initrd is not None:
            parts.append(f"(ramdisk {_q(os.initrd)})")
        if os.cmdline is not None:
            parts.append(f"(args {_q(os.cmdline)})")
        parts.append(f"(loader {_q(os.loader or '')})")
    else:
        parts.append(f"(kernel {_q(os.loader or '')})")
    parts.append(f"(vcpus {cfg.vcpus})")
    parts.append(f"(boot {sp.format_boot(os.boot)})")
    for name, path in g.floppies:
        parts.append(f"({name} {_q(path)})")
    if fmt == 1:
        for disk, name, place in g.disks:
            if disk.device == "cdrom":
                if name != "hdc":
                    raise sp.unsupported(place, "xend 3.0.2 (format 1) emulates a CD-ROM only as hdc")
                if disk.source is not None:
                    parts.append(f"(cdrom {_q(disk.source)})")
    for feature in g.features:
        parts.append(f"({feature} 1)")
    if g.hpet is not None:
        parts.append(f"(hpet {1 if g.hpet else 0})")
    parts.append("(usb 1)")
    if g.usb_inputs:
        parts.append(f"(usbdevice {g.usb_inputs[0]})")
    for key, devs in (("parallel", g.parallels), ("serial", g.serials)):
        values = sp.port_values(devs, listen=",server,nowait")
        if len(values) == 1:
            parts.append(f"({key} {_b(values[0])})")
        else:
            parts.append(f"({key} ({' '.join(_b(v) for v in values)}))")
    if g.sounds:
        parts.append(f"(soundhw {_q(g.sounds)})")
    if cfg.emulator is not None:
        parts.append(f"(device_model {_q(cfg.emulator)})")
    if not _new_graphics(True, fmt):
        parts += _flat_graphics(g, fmt)
    add(f"(image (hvm {''.join(parts)}))")


def _flat_graphics(g: sp.XenGuest, fmt: int) -> list[str]:
    """Graphics as image keys: ``(vnc 1)...`` / ``(sdl 1)...`` (formats before ``vfb``)."""
    parts: list[str] = []
    if g.vnc is not None:
        parts.append("(vnc 1)")
        if fmt >= 2:
            parts += _vnc_keys(g.vnc)
    if g.sdl is not None:
        parts.append("(sdl 1)")
        if g.sdl.display is not None:
            parts.append(f"(display {_q(g.sdl.display)})")
        if g.sdl.xauth is not None:
            parts.append(f"(xauthority {_q(g.sdl.xauth)})")
    return parts


def _vnc_keys(v: Graphics) -> list[str]:
    display = sp.vnc_display(v, "devices/graphics (vnc)")
    parts = ["(vncunused 1)"] if display is None else ["(vncunused 0)", f"(vncdisplay {display})"]
    if v.listen is not None:
        parts.append(f"(vnclisten {_q(v.listen)})")
    if v.passwd is not None:
        parts.append(f"(vncpasswd {_q(v.passwd)})")
    if v.keymap is not None:
        parts.append(f"(keymap {_q(v.keymap)})")
    return parts


def _vfb_body(gr: Graphics, g: sp.XenGuest) -> str:
    if gr.type == "vnc":
        return "(type vnc)" + "".join(_vnc_keys(gr))
    body = "(type sdl)"
    if gr.display is not None:
        body += f"(display {_q(gr.display)})"
    if gr.xauth is not None:
        body += f"(xauthority {_q(gr.xauth)})"
    return body


def _disk_sxpr(d: Disk, name: str, place: str, hvm: bool, fmt: int, *, wrap: bool = True) -> str:
    if hvm:
        dev = f"ioemu:{name}" if fmt == 1 else f"{name}:{'cdrom' if d.device == 'cdrom' else 'disk'}"
    else:
        dev = f"{name}:cdrom" if d.device == "cdrom" else name
    body = f"(dev {_q(dev)})"
    uname = sp.format_source(d, place)
    if uname is not None:
        body += f"(uname {_q(uname)})"
    body += f"(mode {_q(sp.format_mode(d))})"
    kind = d.driver_name if d.driver_name in ("tap", "tap2") else "vbd"
    inner = f"({kind} {body})"
    return f"(device {inner})" if wrap else inner


def _vif_sxpr(n: Interface, place: str, hvm: bool, fmt: int, *, wrap: bool = True) -> str:
    body = ""
    if n.mac is not None:
        body += f"(mac {_q(n.mac)})"
    if n.type == "bridge" and n.source is not None:
        body += f"(bridge {_q(n.source)})"
    if n.script is not None:
        body += f"(script {_q(n.script)})"
    if n.ip_address is not None:
        body += f"(ip {_q(n.ip_address)})"
    if n.target_dev is not None and not n.target_dev.startswith("vif"):
        # vifN.M names are xend's own choice at start: libvirt never sent them back.
        body += f"(vifname {_q(n.target_dev)})"
    if n.model == "netfront":
        body += "(type netfront)"
    else:
        if n.model is not None:
            body += f"(model {_q(n.model)})"
        if hvm and fmt <= 3:
            body += "(type ioemu)"
    inner = f"(vif {body})"
    return f"(device {inner})" if wrap else inner


def device_sxpr_kind(device: Device) -> str:
    """xend's device class for ``op=device_destroy``: ``vbd``, ``tap``, ``vif``, ``vfb``."""
    if isinstance(device, Disk):
        return device.driver_name if device.driver_name in ("tap", "tap2") else "vbd"
    if isinstance(device, Interface):
        return "vif"
    if isinstance(device, Graphics):
        return "vfb"
    raise sp.unsupported("device", f"xend cannot hot-plug a {type(device).__name__.lower()}")


def format_device_sxpr(device: Device, cfg: DomainConfig,
                       xend_config_format: int = sp.DEFAULT_FORMAT) -> str:
    """One device as ``op=device_create`` takes it: ``(vbd ...)``, ``(vif ...)``, ``(vfb ...)``.

    ``cfg`` is the domain it joins (HVM or PV changes the spelling). Raises
    NoSupportError (code CONFIG_UNSUPPORTED) for a device xend cannot add:
    serial ports, inputs and sound cards exist only at start.
    """
    import dataclasses

    fmt = sp.check_format(xend_config_format)
    kind = device_sxpr_kind(device)
    probe = dataclasses.replace(cfg, disks=(), interfaces=(), graphics=(), inputs=(), sounds=(),
                                chardevs=(), extra_devices=())
    if isinstance(device, Disk):
        g = sp.xen_guest(dataclasses.replace(probe, disks=(device,)))
        if not g.disks:
            raise sp.unsupported(sp.device_place("disk", 0, device.target_dev),
                                 "xend cannot hot-plug a floppy drive")
        disk, name, place = g.disks[0]
        return _disk_sxpr(disk, name, place, g.hvm, fmt, wrap=False)
    if isinstance(device, Interface):
        g = sp.xen_guest(dataclasses.replace(probe, interfaces=(device,)))
        nic, place = g.interfaces[0]
        return _vif_sxpr(nic, place, g.hvm, fmt, wrap=False)
    assert kind == "vfb" and isinstance(device, Graphics)
    g = sp.xen_guest(dataclasses.replace(probe, graphics=(device,)))
    return f"(vfb {_vfb_body(device, g)})"
