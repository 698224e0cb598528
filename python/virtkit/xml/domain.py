"""Domain XML: the typed model (and, below it, parsing and formatting).

The model covers what libvirt 0.2.2's documentation shows for Xen (PV and
HVM), KVM and QEMU domains, plus the spellings today's libvirt writes for the
same things. Models are frozen dataclasses: compare them with ``==``, change
them with :func:`dataclasses.replace`. Sequences are tuples.

Units: memory in KiB. UUIDs as 16 raw bytes. Elements the model does not
cover are kept verbatim in ``extra`` (serialized XML strings) and written
back unchanged, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from virtkit import _lazy_re as lazy_re
from virtkit.errors import InvalidUUIDError
from virtkit.uuid import format_uuid, parse_uuid
from virtkit.xml import _document


class LifecycleAction(str, Enum):
    """What happens when a domain powers off, reboots or crashes (0.2.2 docs)."""

    DESTROY = "destroy"
    RESTART = "restart"
    PRESERVE = "preserve"
    RENAME_RESTART = "rename-restart"
    #: Write a core dump first, then destroy or restart (xend 3.1 and later,
    #: today's libvirt for ``on_crash``).
    COREDUMP_DESTROY = "coredump-destroy"
    COREDUMP_RESTART = "coredump-restart"


@dataclass(frozen=True)
class OSConfig:
    """``<os>``: how the guest boots.

    ``type`` is ``linux`` (Xen PV; today's libvirt spells it ``xen``, kept as
    written) or ``hvm``. PV guests use kernel,
    initrd, cmdline and root; HVM guests a loader and boot devices; QEMU/KVM
    guests may also boot a kernel directly.
    """

    type: str = "hvm"
    arch: str | None = None
    machine: str | None = None
    loader: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    root: str | None = None
    #: Boot devices in order: ``fd``, ``hd``, ``cdrom``, ``network``.
    boot: tuple[str, ...] = ()
    #: ``<loader type readonly secure>`` (today's libvirt): ``rom`` or
    #: ``pflash``, and whether the firmware image is read-only / secure-boot.
    loader_type: str | None = None
    loader_readonly: bool | None = None
    loader_secure: bool | None = None
    #: ``<os firmware>``: ``bios`` or ``efi`` (automatic firmware selection).
    firmware: str | None = None
    #: Unmodelled children today's libvirt writes (``<nvram>``, ``<bootmenu>``,
    #: ``<smbios>``, ``<bios>``, ``<firmware>``...), verbatim.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Disk:
    """``<disk>``: a block device of the guest."""

    #: ``file`` or ``block``.
    type: str = "file"
    #: ``disk``, ``cdrom`` or ``floppy``.
    device: str = "disk"
    #: Path of the file (``<source file>``) or device (``<source dev>``); None
    #: for a CD-ROM without media.
    source: str | None = None
    #: Device name in the guest: ``hda``, ``vda``, ``xvda``, ``sda1``, ``fda``...
    target_dev: str = ""
    #: ``ide``, ``virtio``, ``xen``, ``scsi``, ``fdc``, ``usb`` or None (derived from the name).
    target_bus: str | None = None
    #: ``<driver name type>``: e.g. ``qemu``/``qcow2``, ``tap``/``aio``, ``phy``, ``file``.
    driver_name: str | None = None
    driver_type: str | None = None
    readonly: bool = False
    shareable: bool = False
    #: ``<driver cache io discard>`` (today's libvirt): host cache mode
    #: (``none``, ``writeback``...), I/O mode (``native``, ``threads``,
    #: ``io_uring``), and ``unmap``/``ignore`` for discard requests.
    driver_cache: str | None = None
    driver_io: str | None = None
    driver_discard: str | None = None
    #: Unmodelled children today's libvirt writes (``<address>``, ``<alias>``,
    #: ``<boot order>``, ``<serial>``...), verbatim.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Interface:
    """``<interface>``: a network card of the guest.

    ``type`` is one of ``bridge``, ``network``, ``user``, ``ethernet``,
    ``mcast``, ``server``, ``client``. ``source`` names the bridge or the
    network (for ``ethernet``, Xen's routed networking: the host device of
    ``<source dev>``); ``source_address``/``source_port`` are for
    mcast/server/client.
    """

    type: str = "user"
    mac: str | None = None
    source: str | None = None
    source_address: str | None = None
    source_port: int | None = None
    ip_address: str | None = None
    script: str | None = None
    target_dev: str | None = None
    #: ``<model type>``: ``virtio``, ``e1000``, ``rtl8139``, ``netfront``...
    model: str | None = None
    #: A running guest's ``network`` interface: the bridge its tap is plugged into
    #: (``<source network='NAME' bridge='virbr0'/>``, as libvirt shows it live).
    source_bridge: str | None = None
    #: Unmodelled children today's libvirt writes (``<address>``, ``<alias>``,
    #: ``<driver>``, ``<link>``...), verbatim.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class CharDevice:
    """A serial port, parallel port or console.

    ``kind`` is ``serial``, ``parallel`` or ``console``. ``type`` is the host
    side: ``pty``, ``file``, ``pipe``, ``null``, ``stdio``, ``vc``, ``tcp``,
    ``udp``, ``unix``, ``dev``. 0.2.2's ``<console tty='/dev/pts/5'/>`` is a
    console of type ``pty`` with ``tty`` set.
    """

    kind: str = "serial"
    type: str = "pty"
    #: Path for pty/file/pipe/unix/dev.
    source_path: str | None = None
    #: For tcp/udp: host and service (port); ``source_mode`` is ``bind`` or ``connect``.
    source_host: str | None = None
    source_service: str | None = None
    source_mode: str | None = None
    #: For udp: the second (connect) end.
    connect_host: str | None = None
    connect_service: str | None = None
    #: ``raw`` or ``telnet`` for tcp.
    protocol: str | None = None
    target_port: int | None = None
    #: For consoles: ``serial``, ``xen``, ``virtio``...
    target_type: str | None = None
    #: The live pty (0.2.2's ``tty`` attribute).
    tty: str | None = None
    #: ``<target><model name/></target>``: the emulated device
    #: (``isa-serial``, ``pci-serial``...), today's libvirt.
    target_model: str | None = None
    #: Unmodelled children (``<alias>``, ``<address>``, ``<log>``), verbatim.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Graphics:
    """``<graphics>``: ``vnc`` (with port, -1 meaning automatic) or ``sdl``."""

    type: str = "vnc"
    port: int | None = None
    autoport: bool | None = None
    listen: str | None = None
    keymap: str | None = None
    passwd: str | None = None
    #: For sdl.
    display: str | None = None
    xauth: str | None = None
    #: Unmodelled children (``<alias>``, ``<gl>``, ``<image>``...), verbatim.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Input:
    """``<input type='mouse|tablet|keyboard' bus='ps2|usb|xen'/>``."""

    type: str = "mouse"
    bus: str | None = None
    #: Unmodelled children (``<alias>``, ``<address>``), verbatim.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sound:
    """``<sound model='sb16|es1370|pcspk|ac97|...'/>``."""

    model: str = "es1370"
    #: Unmodelled children (``<alias>``, ``<address>``, ``<codec>``), verbatim.
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class VcpuPin:
    """One vCPU's pinning: ``cpuset`` is libvirt's CPU list syntax (``0-2,^1,4``)."""

    vcpu: int
    cpuset: str


@dataclass(frozen=True)
class ClockTimer:
    """``<clock><timer name tickpolicy .../></clock>`` (today's libvirt)."""

    #: ``platform``, ``pit``, ``rtc``, ``hpet``, ``tsc``, ``kvmclock``, ``hypervclock``, ``armvtimer``.
    name: str
    #: ``delay``, ``catchup``, ``merge`` or ``discard``.
    tickpolicy: str | None = None
    #: ``present='yes|no'``.
    present: bool | None = None
    #: ``boot``, ``guest``, ``wall`` or ``realtime``.
    track: str | None = None
    frequency: int | None = None
    #: ``auto``, ``native``, ``emulate``, ``paravirt`` or ``smpsafe``.
    mode: str | None = None


@dataclass(frozen=True)
class DomainConfig:
    """A whole ``<domain>`` document."""

    name: str
    #: Hypervisor: ``xen``, ``kvm``, ``qemu``, ``kqemu``, ``test``.
    type: str = "test"
    #: 16 raw bytes; None until defined (the driver then generates one).
    uuid: bytes | None = None
    #: Runtime id (``id`` attribute); None or -1 for an inactive domain.
    id: int | None = None
    #: Maximum memory, KiB.
    memory: int = 0
    #: Current memory, KiB; None means equal to ``memory``.
    current_memory: int | None = None
    #: Maximum vCPUs.
    vcpus: int = 1
    #: vCPUs online (``<vcpu current>``); None means all.
    vcpus_current: int | None = None
    #: ``<vcpu cpuset>``: default placement of all vCPUs.
    cpuset: str | None = None
    #: Per-vCPU pinning (``<cputune><vcpupin/>``).
    vcpu_pins: tuple[VcpuPin, ...] = ()
    os: OSConfig = field(default_factory=OSConfig)
    #: Xen PV bootloader (pygrub) and its arguments.
    bootloader: str | None = None
    bootloader_args: str | None = None
    #: ``<features>`` children, in order: ``pae``, ``acpi``, ``apic``...
    features: tuple[str, ...] = ()
    #: ``<clock offset>``: ``utc`` or ``localtime``; None when absent.
    clock_offset: str | None = None
    on_poweroff: LifecycleAction | None = None
    on_reboot: LifecycleAction | None = None
    on_crash: LifecycleAction | None = None
    #: ``<devices><emulator>``.
    emulator: str | None = None
    disks: tuple[Disk, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    #: Serial ports, parallel ports and consoles, in document order.
    chardevs: tuple[CharDevice, ...] = ()
    graphics: tuple[Graphics, ...] = ()
    inputs: tuple[Input, ...] = ()
    sounds: tuple[Sound, ...] = ()
    #: ``<description>``.
    description: str | None = None
    #: Unmodelled child elements of ``<domain>``, verbatim.
    extra: tuple[str, ...] = ()
    #: Unmodelled child elements of ``<devices>``, verbatim.
    extra_devices: tuple[str, ...] = ()
    #: ``<features>`` children that carry attributes or children (today's
    #: libvirt: ``<vmport state='off'/>``, ``<hyperv>...``), verbatim; empty
    #: ones are names in ``features``.
    features_extra: tuple[str, ...] = ()
    #: ``<clock adjustment>``: ``reset`` or seconds (Xen's XM files).
    clock_adjustment: str | None = None
    #: ``<clock><timer/></clock>``.
    clock_timers: tuple[ClockTimer, ...] = ()
    #: ``<vcpu placement>``: ``static`` or ``auto`` (today's libvirt).
    vcpu_placement: str | None = None

    @property
    def current_memory_kib(self) -> int:
        """Current memory, KiB (``memory`` when not set separately)."""
        return self.memory if self.current_memory is None else self.current_memory

    @property
    def online_vcpus(self) -> int:
        """vCPUs online (``vcpus`` when not set separately)."""
        return self.vcpus if self.vcpus_current is None else self.vcpus_current


#: A device that can be hot-plugged (``attach_device``/``detach_device``).
Device = Disk | Interface | CharDevice | Graphics | Input | Sound


# ======================================================================
# Parsing and formatting
# ======================================================================

__all__ = [
    "LifecycleAction",
    "OSConfig",
    "Disk",
    "Interface",
    "CharDevice",
    "Graphics",
    "Input",
    "Sound",
    "VcpuPin",
    "ClockTimer",
    "DomainConfig",
    "Device",
    "parse_domain",
    "format_domain",
    "parse_device",
    "format_device",
    "memory_to_kib",
]

#: Bytes per unit of ``<memory unit>`` (libvirt's spellings; K/M/G/T are powers of 1024).
MEMORY_UNITS: dict[str, int] = {
    "b": 1, "byte": 1, "bytes": 1,
    "KB": 10**3, "k": 2**10, "K": 2**10, "KiB": 2**10,
    "MB": 10**6, "m": 2**20, "M": 2**20, "MiB": 2**20,
    "GB": 10**9, "g": 2**30, "G": 2**30, "GiB": 2**30,
    "TB": 10**12, "t": 2**40, "T": 2**40, "TiB": 2**40,
}
_MAX_KIB = 2**64 - 1

_MAC = lazy_re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\Z")
_LIFECYCLE = {a.value: a for a in LifecycleAction}


def memory_to_kib(value: int, unit: str | None = None) -> int:
    """``value`` in ``unit`` (default KiB) as KiB, rounded up; :class:`ValueError` if unknown/too large."""
    if unit is None or unit == "KiB" or unit == "k" or unit == "K":
        kib = value
    else:
        try:
            scale = MEMORY_UNITS[unit]
        except KeyError:
            raise ValueError(f"unknown memory unit {unit!r}") from None
        kib = -(-value * scale // 1024)
    if kib > _MAX_KIB:
        raise ValueError(f"memory size {value} {unit or 'KiB'} is too large")
    return kib


def parse_domain(text: str | bytes) -> DomainConfig:
    """Parse a ``<domain>`` document (libvirt 0.2.2's domain XML format, or today's).

    The document is validated against ``schemas/domain.rng`` first. Memory is
    converted to KiB whatever its unit; the UUID may use any spelling libvirt
    accepted. Unmodelled elements at the extension points are kept verbatim
    (``extra``, ``extra_devices``, each device's ``extra``,
    ``features_extra``).

    Raises :class:`virtkit.errors.XMLError` for malformed XML or values the
    model cannot hold (a bad UUID, an impossible size), and
    :class:`virtkit.errors.XMLSchemaError` for a document the schema refuses;
    both name the line and the element.
    """
    return _domain(_document.read_document(text, "domain"), "domain")


def parse_device(text: str | bytes) -> Device:
    """Parse one device element (``<disk>``, ``<interface>``, ``<serial>``,
    ``<parallel>``, ``<console>``, ``<graphics>``, ``<input>``, ``<sound>``), as
    given to hot-plug; validated against ``schemas/device.rng``.

    Raises like :func:`parse_domain`.
    """
    el = _document.read_document(text, "device")
    return _device(el, "device")


def format_domain(cfg: DomainConfig) -> str:
    """The canonical XML of ``cfg``: fixed element and attribute order, two-space
    indentation, single quotes, memory in KiB (``unit='KiB'``), canonical UUID.

    ``parse_domain(format_domain(cfg)) == cfg`` for every valid model.
    """
    out: list[str] = []
    _write_domain(out, cfg, "")
    out.append("")
    return "\n".join(out)


def format_device(dev: Device) -> str:
    """The canonical XML of one device, as :func:`format_domain` writes it inside ``<devices>``."""
    out: list[str] = []
    _write_device(out, dev, "")
    out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------ reading

_Element = Any


_new_domain = _document.constructor(DomainConfig)
_new_os = _document.constructor(OSConfig)
_new_disk = _document.constructor(Disk)
_new_interface = _document.constructor(Interface)
_new_chardev = _document.constructor(CharDevice)
_new_graphics = _document.constructor(Graphics)
_new_input = _document.constructor(Input)
_new_sound = _document.constructor(Sound)
_new_timer = _document.constructor(ClockTimer)
_new_pin = _document.constructor(VcpuPin)


def _int(el: _Element, value: str, kind: str, low: int | None = None, high: int | None = None) -> int:
    try:
        n = int(value)
    except ValueError:
        raise _document.fail(kind, el, f"{value!r} is not an integer", schema_error=True) from None
    if (low is not None and n < low) or (high is not None and n > high):
        limits = f"at least {low}" if high is None else f"between {low} and {high}"
        raise _document.fail(kind, el, f"{n} is out of range (must be {limits})", schema_error=True)
    return n


def _kib(el: _Element, kind: str) -> int:
    value = _int(el, (el.text or "").strip(), kind)
    try:
        return memory_to_kib(value, el.get("unit"))
    except ValueError as e:
        raise _document.fail(kind, el, str(e)) from None


def _uuid(el: _Element, kind: str) -> bytes:
    try:
        return parse_uuid(el.text or "")
    except InvalidUUIDError as e:
        raise _document.fail(kind, el, str(e), schema_error=True) from None


def _check_mac(el: _Element, value: str, kind: str) -> str:
    if _MAC.match(value) is None:
        raise _document.fail(
            kind, el, f"{value!r} is not a MAC address (six hex pairs separated by ':')", schema_error=True
        )
    return value


def _extras(el: _Element) -> tuple[str, ...]:
    if len(el) == 0:
        return ()
    return tuple([_document.verbatim(c) for c in el])


def _domain(root: _Element, kind: str) -> DomainConfig:
    verbatim = _document.verbatim
    f: dict[str, Any] = {}
    extra: list[str] = []
    os = None
    for child in root:
        tag = child.tag
        if tag == "devices":
            _devices(child, f, kind)
        elif tag == "name":
            name = child.text
            if not name:
                raise _document.fail(kind, child, "the name must not be empty", schema_error=True)
            f["name"] = name
        elif tag == "uuid":
            f["uuid"] = _uuid(child, kind)
        elif tag == "memory":
            f["memory"] = _kib(child, kind)
        elif tag == "currentMemory":
            f["current_memory"] = _kib(child, kind)
        elif tag == "vcpu":
            f["vcpus"] = _int(child, (child.text or "").strip(), kind, 1)
            if len(child.attrib):
                current = child.get("current")
                if current is not None:
                    f["vcpus_current"] = _int(child, current, kind, 1)
                f["cpuset"] = child.get("cpuset")
                f["vcpu_placement"] = child.get("placement")
        elif tag == "os":
            os = _os(child)
        elif tag == "on_poweroff" or tag == "on_reboot" or tag == "on_crash":
            f[tag] = _LIFECYCLE[(child.text or "").strip()]
        elif tag == "features":
            names: list[str] = []
            complex_: list[str] = []
            for feat in child:
                if len(feat.attrib) or len(feat) or (feat.text and feat.text.strip()):
                    complex_.append(verbatim(feat))
                else:
                    names.append(feat.tag)
            f["features"] = tuple(names)
            f["features_extra"] = tuple(complex_)
        elif tag == "clock":
            f["clock_offset"] = child.get("offset")
            f["clock_adjustment"] = child.get("adjustment")
            if len(child):
                f["clock_timers"] = tuple([_timer(t, kind) for t in child])
        elif tag == "bootloader":
            f["bootloader"] = child.text or ""
        elif tag == "bootloader_args":
            f["bootloader_args"] = child.text or ""
        elif tag == "description":
            f["description"] = child.text or ""
        elif tag == "cputune":
            f["vcpu_pins"] = tuple([
                _new_pin(vcpu=_int(pin, pin.get("vcpu"), kind), cpuset=pin.get("cpuset")) for pin in child
            ])
        else:
            extra.append(verbatim(child))
    # Without <os>, only a bootloader (pygrub) was given: a Xen paravirtualized guest.
    f["os"] = os if os is not None else _new_os(type="linux")
    f["type"] = root.get("type") or "xen"
    dom_id = root.get("id")
    if dom_id is not None:
        f["id"] = _int(root, dom_id, kind, -1)
    if extra:
        f["extra"] = tuple(extra)
    return _new_domain(**f)


def _devices(el: _Element, f: dict[str, Any], kind: str) -> None:
    disks: list[Disk] = []
    interfaces: list[Interface] = []
    chardevs: list[CharDevice] = []
    graphics: list[Graphics] = []
    inputs: list[Input] = []
    sounds: list[Sound] = []
    extra: list[str] = []
    for dev in el:
        tag = dev.tag
        if tag == "disk":
            disks.append(_disk(dev))
        elif tag == "interface":
            interfaces.append(_interface(dev, kind))
        elif tag == "serial" or tag == "console" or tag == "parallel":
            chardevs.append(_chardev(dev, kind))
        elif tag == "graphics":
            graphics.append(_graphics(dev, kind))
        elif tag == "input":
            inputs.append(_new_input(type=dev.get("type"), bus=dev.get("bus"), extra=_extras(dev)))
        elif tag == "sound":
            sounds.append(_new_sound(model=dev.get("model"), extra=_extras(dev)))
        elif tag == "emulator":
            f["emulator"] = dev.text or ""
        else:
            extra.append(_document.verbatim(dev))
    f["disks"] = tuple(disks)
    f["interfaces"] = tuple(interfaces)
    f["chardevs"] = tuple(chardevs)
    f["graphics"] = tuple(graphics)
    f["inputs"] = tuple(inputs)
    f["sounds"] = tuple(sounds)
    f["extra_devices"] = tuple(extra)


def _os(el: _Element) -> OSConfig:
    f: dict[str, Any] = {}
    boot: list[str] = []
    extra: list[str] = []
    for c in el:
        tag = c.tag
        if tag == "type":
            f["type"] = (c.text or "").strip()
            if len(c.attrib):
                f["arch"] = c.get("arch")
                f["machine"] = c.get("machine")
        elif tag == "boot":
            boot.append(c.get("dev"))
        elif tag in _OS_TEXT:
            # loader, kernel, initrd, cmdline, root: text kept as written.
            f[tag] = c.text or ""
            if tag == "loader" and len(c.attrib):
                f["loader_type"] = c.get("type")
                readonly = c.get("readonly")
                secure = c.get("secure")
                f["loader_readonly"] = None if readonly is None else readonly == "yes"
                f["loader_secure"] = None if secure is None else secure == "yes"
        else:
            extra.append(_document.verbatim(c))
    if boot:
        f["boot"] = tuple(boot)
    if extra:
        f["extra"] = tuple(extra)
    firmware = el.get("firmware")
    if firmware is not None:
        f["firmware"] = firmware
    return _new_os(**f)


_OS_TEXT = frozenset(("loader", "kernel", "initrd", "cmdline", "root"))


def _timer(el: _Element, kind: str) -> ClockTimer:
    present = el.get("present")
    frequency = el.get("frequency")
    return _new_timer(
        name=el.get("name"),
        tickpolicy=el.get("tickpolicy"),
        present=None if present is None else present == "yes",
        track=el.get("track"),
        frequency=None if frequency is None else _int(el, frequency, kind),
        mode=el.get("mode"),
    )


def _device(el: _Element, kind: str) -> Device:
    tag = el.tag
    if tag == "disk":
        return _disk(el)
    if tag == "interface":
        return _interface(el, kind)
    if tag == "graphics":
        return _graphics(el, kind)
    if tag == "input":
        return _new_input(type=el.get("type"), bus=el.get("bus"), extra=_extras(el))
    if tag == "sound":
        return _new_sound(model=el.get("model"), extra=_extras(el))
    return _chardev(el, kind)


def _disk(el: _Element) -> Disk:
    disk_type = el.get("type")
    f: dict[str, Any] = {"type": disk_type, "device": el.get("device") or "disk"}
    extra: list[str] = []
    for c in el:
        tag = c.tag
        if tag == "source":
            f["source"] = c.get("file") if disk_type == "file" else c.get("dev")
        elif tag == "target":
            f["target_dev"] = c.get("dev")
            f["target_bus"] = c.get("bus")
        elif tag == "driver":
            n = len(c.attrib)
            name = c.get("name")
            f["driver_name"] = name
            typ = c.get("type")
            f["driver_type"] = typ
            if n > (name is not None) + (typ is not None):
                f["driver_cache"] = c.get("cache")
                f["driver_io"] = c.get("io")
                f["driver_discard"] = c.get("discard")
        elif tag == "readonly":
            f["readonly"] = True
        elif tag == "shareable":
            f["shareable"] = True
        else:
            extra.append(_document.verbatim(c))
    if extra:
        f["extra"] = tuple(extra)
    return _new_disk(**f)


def _interface(el: _Element, kind: str) -> Interface:
    if_type = el.get("type")
    f: dict[str, Any] = {"type": if_type}
    extra: list[str] = []
    for c in el:
        tag = c.tag
        if tag == "source":
            if if_type == "bridge":
                f["source"] = c.get("bridge") or c.get("dev")
            elif if_type == "network":
                f["source"] = c.get("network") or c.get("name")
                f["source_bridge"] = c.get("bridge")
            elif if_type == "ethernet":
                f["source"] = c.get("dev")
            else:
                f["source_address"] = c.get("address")
                f["source_port"] = _int(c, c.get("port"), kind)
        elif tag == "mac":
            f["mac"] = _check_mac(c, c.get("address"), kind)
        elif tag == "target":
            f["target_dev"] = c.get("dev")
        elif tag == "script":
            f["script"] = c.get("path")
        elif tag == "model":
            f["model"] = c.get("type")
        elif tag == "ip":
            f["ip_address"] = c.get("address")
        else:
            extra.append(_document.verbatim(c))
    if extra:
        f["extra"] = tuple(extra)
    return _new_interface(**f)


def _chardev(el: _Element, kind: str) -> CharDevice:
    dev_type = el.get("type") or "pty"
    f: dict[str, Any] = {"kind": el.tag, "type": dev_type, "tty": el.get("tty")}
    wiremode = None
    extra: list[str] = []
    for c in el:
        tag = c.tag
        if tag == "target":
            f["target_type"] = c.get("type")
            port = c.get("port")
            if port is not None:
                f["target_port"] = _int(c, port, kind)
            for model in c:
                f["target_model"] = model.get("name")
        elif tag == "source":
            mode = c.get("mode")
            if dev_type == "udp" and mode != "bind":
                # udp: the end it sends to; <source mode='bind'> is the local end.
                f["connect_host"] = c.get("host")
                f["connect_service"] = c.get("service")
                continue
            f["source_mode"] = mode
            f["source_path"] = c.get("path")
            f["source_host"] = c.get("host")
            f["source_service"] = c.get("service")
            wiremode = c.get("wiremode")
        elif tag == "protocol":
            f["protocol"] = c.get("type")
        else:
            extra.append(_document.verbatim(c))
    if wiremode is not None and "protocol" not in f:
        f["protocol"] = wiremode
    if extra:
        f["extra"] = tuple(extra)
    return _new_chardev(**f)


def _graphics(el: _Element, kind: str) -> Graphics:
    f: dict[str, Any] = {}
    for name, value in el.items():
        if name == "port":
            f["port"] = _int(el, value, kind, -1, 65535)
        elif name == "autoport":
            f["autoport"] = value == "yes"
        else:
            # type, listen, keymap, passwd, display, xauth
            f[name] = value
    extra: list[str] = []
    for c in el:
        if c.tag == "listen":
            if "listen" not in f and c.get("address") is not None:
                f["listen"] = c.get("address")
        else:
            extra.append(_document.verbatim(c))
    if extra:
        f["extra"] = tuple(extra)
    return _new_graphics(**f)


# ------------------------------------------------------------------ writing

_attrs = _document.attrs
_leaf = _document.leaf
_esc = _document.text


def _write_domain(out: list[str], cfg: DomainConfig, ind: str) -> None:
    i1 = ind + "  "
    i2 = i1 + "  "
    out.append(f"{ind}<domain{_attrs(('type', cfg.type), ('id', cfg.id))}>")
    out.append(_leaf(i1, "name", cfg.name))
    if cfg.uuid is not None:
        out.append(f"{i1}<uuid>{format_uuid(cfg.uuid)}</uuid>")
    if cfg.description is not None:
        out.append(_leaf(i1, "description", cfg.description))
    out.append(f"{i1}<memory unit='KiB'>{cfg.memory}</memory>")
    if cfg.current_memory is not None:
        out.append(f"{i1}<currentMemory unit='KiB'>{cfg.current_memory}</currentMemory>")
    vcpu_attrs = _attrs(("placement", cfg.vcpu_placement), ("cpuset", cfg.cpuset), ("current", cfg.vcpus_current))
    out.append(f"{i1}<vcpu{vcpu_attrs}>{cfg.vcpus}</vcpu>")
    if cfg.vcpu_pins:
        out.append(f"{i1}<cputune>")
        for pin in cfg.vcpu_pins:
            out.append(f"{i2}<vcpupin{_attrs(('vcpu', pin.vcpu), ('cpuset', pin.cpuset))}/>")
        out.append(f"{i1}</cputune>")
    if cfg.bootloader is not None:
        out.append(_leaf(i1, "bootloader", cfg.bootloader))
    if cfg.bootloader_args is not None:
        out.append(_leaf(i1, "bootloader_args", cfg.bootloader_args))
    _write_os(out, cfg.os, i1)
    if cfg.features or cfg.features_extra:
        out.append(f"{i1}<features>")
        for f in cfg.features:
            out.append(f"{i2}<{f}/>")
        for fx in cfg.features_extra:
            out.append(i2 + fx)
        out.append(f"{i1}</features>")
    if cfg.clock_offset is not None:
        clock_attrs = _attrs(("offset", cfg.clock_offset), ("adjustment", cfg.clock_adjustment))
        if cfg.clock_timers:
            out.append(f"{i1}<clock{clock_attrs}>")
            for t in cfg.clock_timers:
                timer_attrs = _attrs(
                    ("name", t.name), ("track", t.track), ("tickpolicy", t.tickpolicy),
                    ("frequency", t.frequency), ("mode", t.mode), ("present", t.present),
                )
                out.append(f"{i2}<timer{timer_attrs}/>")
            out.append(f"{i1}</clock>")
        else:
            out.append(f"{i1}<clock{clock_attrs}/>")
    for tag, action in (("on_poweroff", cfg.on_poweroff), ("on_reboot", cfg.on_reboot), ("on_crash", cfg.on_crash)):
        if action is not None:
            out.append(f"{i1}<{tag}>{LifecycleAction(action).value}</{tag}>")
    if (cfg.emulator is None and not cfg.disks and not cfg.interfaces and not cfg.chardevs
            and not cfg.graphics and not cfg.inputs and not cfg.sounds and not cfg.extra_devices):
        out.append(f"{i1}<devices/>")
    else:
        out.append(f"{i1}<devices>")
        if cfg.emulator is not None:
            out.append(_leaf(i2, "emulator", cfg.emulator))
        for disk in cfg.disks:
            _write_disk(out, disk, i2)
        for iface in cfg.interfaces:
            _write_interface(out, iface, i2)
        for chardev in cfg.chardevs:
            _write_chardev(out, chardev, i2)
        for inp in cfg.inputs:
            _write_simple(out, i2, "input", _attrs(("type", inp.type), ("bus", inp.bus)), inp.extra)
        for g in cfg.graphics:
            _write_graphics(out, g, i2)
        for snd in cfg.sounds:
            _write_simple(out, i2, "sound", _attrs(("model", snd.model)), snd.extra)
        for x in cfg.extra_devices:
            out.append(i2 + x)
        out.append(f"{i1}</devices>")
    for x in cfg.extra:
        out.append(i1 + x)
    out.append(f"{ind}</domain>")


def _write_os(out: list[str], os: OSConfig, ind: str) -> None:
    i1 = ind + "  "
    out.append(f"{ind}<os{_attrs(('firmware', os.firmware))}>")
    out.append(f"{i1}<type{_attrs(('arch', os.arch), ('machine', os.machine))}>{_esc(os.type)}</type>")
    if os.loader is not None:
        loader_attrs = _attrs(("readonly", os.loader_readonly), ("secure", os.loader_secure), ("type", os.loader_type))
        if os.loader:
            out.append(f"{i1}<loader{loader_attrs}>{_esc(os.loader)}</loader>")
        else:
            out.append(f"{i1}<loader{loader_attrs}/>")
    for tag, value in (("kernel", os.kernel), ("initrd", os.initrd), ("cmdline", os.cmdline), ("root", os.root)):
        if value is not None:
            out.append(_leaf(i1, tag, value))
    for dev in os.boot:
        out.append(f"{i1}<boot dev='{_document.attr(dev)}'/>")
    for x in os.extra:
        out.append(i1 + x)
    out.append(f"{ind}</os>")


def _write_simple(out: list[str], ind: str, tag: str, attrs: str, extra: tuple[str, ...]) -> None:
    if not extra:
        out.append(f"{ind}<{tag}{attrs}/>")
        return
    out.append(f"{ind}<{tag}{attrs}>")
    i1 = ind + "  "
    for x in extra:
        out.append(i1 + x)
    out.append(f"{ind}</{tag}>")


def _write_device(out: list[str], dev: Device, ind: str) -> None:
    if isinstance(dev, Disk):
        _write_disk(out, dev, ind)
    elif isinstance(dev, Interface):
        _write_interface(out, dev, ind)
    elif isinstance(dev, CharDevice):
        _write_chardev(out, dev, ind)
    elif isinstance(dev, Graphics):
        _write_graphics(out, dev, ind)
    elif isinstance(dev, Input):
        _write_simple(out, ind, "input", _attrs(("type", dev.type), ("bus", dev.bus)), dev.extra)
    elif isinstance(dev, Sound):
        _write_simple(out, ind, "sound", _attrs(("model", dev.model)), dev.extra)
    else:
        raise TypeError(f"not a device model: {type(dev).__name__}")


def _write_disk(out: list[str], d: Disk, ind: str) -> None:
    i1 = ind + "  "
    out.append(f"{ind}<disk{_attrs(('type', d.type), ('device', d.device))}>")
    if d.driver_name is not None or d.driver_type is not None or d.driver_cache is not None \
            or d.driver_io is not None or d.driver_discard is not None:
        driver_attrs = _attrs(
            ("name", d.driver_name), ("type", d.driver_type), ("cache", d.driver_cache),
            ("io", d.driver_io), ("discard", d.driver_discard),
        )
        out.append(f"{i1}<driver{driver_attrs}/>")
    if d.source is not None:
        out.append(f"{i1}<source{_attrs(('dev' if d.type == 'block' else 'file', d.source))}/>")
    out.append(f"{i1}<target{_attrs(('dev', d.target_dev), ('bus', d.target_bus))}/>")
    if d.readonly:
        out.append(f"{i1}<readonly/>")
    if d.shareable:
        out.append(f"{i1}<shareable/>")
    for x in d.extra:
        out.append(i1 + x)
    out.append(f"{ind}</disk>")


_SOURCE_ATTR = {"bridge": "bridge", "network": "network", "ethernet": "dev"}


def _write_interface(out: list[str], n: Interface, ind: str) -> None:
    i1 = ind + "  "
    body: list[str] = []
    if n.mac is not None:
        body.append(f"{i1}<mac address='{_document.attr(n.mac)}'/>")
    source_attr = _SOURCE_ATTR.get(n.type)
    if source_attr is not None:
        if n.source is not None:
            bridge = n.source_bridge if n.type == "network" else None
            body.append(f"{i1}<source{_attrs((source_attr, n.source), ('bridge', bridge))}/>")
    elif n.source_address is not None or n.source_port is not None:
        body.append(f"{i1}<source{_attrs(('address', n.source_address), ('port', n.source_port))}/>")
    if n.ip_address is not None:
        body.append(f"{i1}<ip address='{_document.attr(n.ip_address)}'/>")
    if n.script is not None:
        body.append(f"{i1}<script path='{_document.attr(n.script)}'/>")
    if n.target_dev is not None:
        body.append(f"{i1}<target dev='{_document.attr(n.target_dev)}'/>")
    if n.model is not None:
        body.append(f"{i1}<model type='{_document.attr(n.model)}'/>")
    for x in n.extra:
        body.append(i1 + x)
    if body:
        out.append(f"{ind}<interface type='{_document.attr(n.type)}'>")
        out.extend(body)
        out.append(f"{ind}</interface>")
    else:
        out.append(f"{ind}<interface type='{_document.attr(n.type)}'/>")


def _write_chardev(out: list[str], c: CharDevice, ind: str) -> None:
    i1 = ind + "  "
    body: list[str] = []
    mode = c.source_mode
    if c.type == "udp" and mode is None and (c.source_host is not None or c.source_service is not None):
        mode = "bind"
    if mode is not None or c.source_path is not None or c.source_host is not None or c.source_service is not None:
        source_attrs = _attrs(("mode", mode), ("path", c.source_path), ("host", c.source_host),
                              ("service", c.source_service))
        body.append(f"{i1}<source{source_attrs}/>")
    if c.connect_host is not None or c.connect_service is not None:
        connect_attrs = _attrs(("mode", "connect"), ("host", c.connect_host), ("service", c.connect_service))
        body.append(f"{i1}<source{connect_attrs}/>")
    if c.protocol is not None:
        body.append(f"{i1}<protocol type='{_document.attr(c.protocol)}'/>")
    if c.target_type is not None or c.target_port is not None or c.target_model is not None:
        target_attrs = _attrs(("type", c.target_type), ("port", c.target_port))
        if c.target_model is not None:
            body.append(f"{i1}<target{target_attrs}>")
            body.append(f"{i1}  <model name='{_document.attr(c.target_model)}'/>")
            body.append(f"{i1}</target>")
        else:
            body.append(f"{i1}<target{target_attrs}/>")
    for x in c.extra:
        body.append(i1 + x)
    head = f"{ind}<{c.kind}{_attrs(('type', c.type), ('tty', c.tty))}"
    if body:
        out.append(head + ">")
        out.extend(body)
        out.append(f"{ind}</{c.kind}>")
    else:
        out.append(head + "/>")


def _write_graphics(out: list[str], g: Graphics, ind: str) -> None:
    i1 = ind + "  "
    if g.type == "sdl":
        attrs = _attrs(("type", g.type), ("display", g.display), ("xauth", g.xauth))
        body = []
    else:
        attrs = _attrs(
            ("type", g.type), ("port", g.port), ("autoport", g.autoport), ("listen", g.listen),
            ("keymap", g.keymap), ("passwd", g.passwd),
        )
        body = [] if g.listen is None else [f"{i1}<listen type='address' address='{_document.attr(g.listen)}'/>"]
    for x in g.extra:
        body.append(i1 + x)
    if body:
        out.append(f"{ind}<graphics{attrs}>")
        out.extend(body)
        out.append(f"{ind}</graphics>")
    else:
        out.append(f"{ind}<graphics{attrs}/>")
