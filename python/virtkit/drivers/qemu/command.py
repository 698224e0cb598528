"""A domain configuration as a QEMU command line.

:func:`build_command` turns a :class:`~virtkit.xml.domain.DomainConfig` (type
``qemu`` or ``kvm``; libvirt 0.2.2's "KVM domain", "QEmu domain" and "Networking
options for QEmu and KVM" documents, plus today's spellings) into the argument
list of a QEMU 7.2 (or later) x86 system emulator. It is a pure function: it
reads no file, probes nothing and starts nothing. What only exists at run time
(the QMP socket path, tap file descriptors, a VNC display the daemon chose) comes
in a :class:`CommandContext`. Checking that the emulator exists, that the
machine type is one it knows and that KVM is usable is the job of
:mod:`virtkit.drivers.qemu.capabilities` before this is called.

Every error is a :class:`~virtkit.errors.VirtError` in domain ``QEMU``: code
``CONFIG_UNSUPPORTED`` for a valid configuration QEMU cannot run here (a Xen
paravirtualized guest, an unknown disk bus...), ``XML_ERROR``
(:class:`~virtkit.errors.XMLError`) for a self-contradictory one (two disks
named ``hda``), and ``NO_SUPPORT`` (:class:`~virtkit.errors.NoSupportError`)
for a tap-based interface when the networking layer supplied no tap.

The machine QEMU gets
---------------------
- ``-no-user-config -nodefaults``: only the devices listed here exist.
- ``-S`` (unless ``start_paused`` is off): the daemon sets the VNC password
  and the balloon target over QMP, then sends ``cont``.
- QMP on a UNIX socket: ``-chardev socket,id=charmonitor,...`` and
  ``-mon chardev=charmonitor,mode=control``.
- ``-machine TYPE,accel=tcg|kvm,acpi=on|off``: type ``qemu`` is TCG, type
  ``kvm`` is KVM. ACPI is on only when ``<features><acpi/>`` says so, as libvirt
  0.2.2 did (``-no-acpi`` is deprecated; the machine property replaces it).
  ``<pae/>`` and ``<apic/>`` need nothing: QEMU's x86 CPU models have both.
- ``-m size=NNNk`` from ``<memory>`` (the maximum). A virtio balloon device is
  added by default (not on ``isapc``, which has no PCI; ``<memballoon
  model='none'/>`` removes it) and the daemon deflates the guest to
  ``<currentMemory>`` before the first ``cont``: a balloon can only hand back
  memory below ``-m``, so raising the maximum needs a restart. There is no
  ``maxmem``/DIMM slot: memory hot-plug needs guest-side support and is not
  modelled.
- ``-smp cpus=CURRENT,maxcpus=MAX,sockets=MAX,cores=1,threads=1``: one socket
  per vCPU, so vCPUs ``CURRENT``..``MAX`` can be hot-plugged later. No ``-cpu``
  (QEMU's default model, as 0.2.2 did), except ``qemu32`` for an ``i686``
  guest run by ``qemu-system-x86_64``. ``<vcpu cpuset>`` and pinning are applied
  by the daemon to QEMU's threads, not on the command line.
- Boot order: every bootable device gets a ``bootindex`` (a per-device
  ``<boot order='N'/>``, or the position of the first ``<boot dev>`` naming
  its class: ``hd`` the first hard disk, ``cdrom`` the first CD-ROM, ``fd``
  the first floppy, ``network`` the first interface; default ``hd``). Unlike
  ``-boot order=cdn``, ``bootindex`` tells virtio disks and NICs apart and
  works the same on every machine and firmware. No ``-boot strict=on``:
  firmware may still fall back to other devices, as the old drive letters did.
  With ``<kernel>``, QEMU boots the kernel and boot devices are ignored.
- Lifecycle (see :class:`Lifecycle`): ``-action shutdown=pause`` always, so a
  guest power-off stops the vCPUs and QEMU stays alive; the daemon sees the
  ``SHUTDOWN`` event and applies ``<on_poweroff>`` (destroy: ``quit``;
  restart: ``system_reset`` + ``cont``; preserve: leave it paused).
  ``reboot=reset`` for ``<on_reboot>restart`` (the default), else
  ``reboot=shutdown`` so a reboot arrives as a ``SHUTDOWN`` event with reason
  ``guest-reset``. ``panic=pause``, and with ``<on_crash>`` (or ``<panic>``) a
  ``pvpanic`` device so the guest can report a crash (``GUEST_PANICKED``).
  ``rename-restart`` and the ``coredump-*`` actions of ``<on_crash>`` are the
  daemon's business too (:mod:`virtkit.drivers.qemu.lifecycle`).
- Restore: :attr:`CommandContext.incoming` adds ``-incoming`` and
  :attr:`CommandContext.pci_slots` pins devices to the PCI slots the saved QEMU
  had (``addr=``), so the migration stream finds the same machine.

Devices
-------
- Disks: ``-blockdev`` (a protocol node ``<dev>-storage`` and a format node
  ``<dev>-format``, named after the target so hot-plug can address them) and
  ``-device`` with id ``disk-<dev>``. ``hdX`` is IDE (``pc``: two buses of two
  units; ``q35``: the six AHCI ports), ``sata`` is AHCI, ``sdX`` SCSI on one
  ``virtio-scsi-pci`` controller, ``vdX`` ``virtio-blk-pci``, ``fdX`` the floppy
  controller, ``usb`` ``usb-storage``. Formats: ``raw`` (default), ``qcow2``
  and the other image formats QEMU opens itself. CD-ROMs are read-only and
  may be empty. ``<readonly/>`` hard disks on IDE/SATA are refused (QEMU's
  ``ide-hd`` cannot be read-only). ``<shareable/>`` sets ``share-rw=on`` and
  needs a raw image; it does not force ``cache=none``, since the page cache is
  coherent between guests of one host (and O_DIRECT fails on tmpfs). ``<driver
  cache io discard>`` map to ``cache.direct``/``cache.no-flush``/``write-cache``,
  ``aio`` and ``discard`` as libvirt maps them.
- Interfaces: ``-netdev`` id ``hostnetN`` + ``-device`` id ``netN`` (or the
  ``<alias name>`` the live XML gives it, see :func:`interface_ids`) with the
  MAC (required: call :func:`~virtkit.drivers.qemu.mac.fill_missing_macs`
  when defining the domain). ``user`` is SLIRP; ``mcast``, ``server`` and
  ``client`` are ``-netdev socket`` (``mcast=``, ``listen=``, ``connect=``);
  ``network``, ``bridge`` and ``ethernet`` are ``-netdev tap`` with an fd or an
  ifname from :attr:`CommandContext.taps` (QEMU never runs the ifup script:
  ``script=no``; the networking layer creates the tap, honouring ``<target
  dev>`` and ``<script>``, and sets it up). The default model is
  ``e1000``: 0.2.2-era XML has no ``<model>``, and every guest of that era and
  since has a driver for it, while virtio needs guest drivers (write
  ``<model type='virtio'/>`` for them). ``isapc`` defaults to ``ne2k_isa``.
- Serial ports, parallel ports, consoles: ``-chardev`` (ids ``charserialN``,
  ``charparallelN``, ``charconsoleN``) + ``isa-serial``/``pci-serial``,
  ``isa-parallel`` or ``virtconsole``. A console of target type ``serial`` is
  the serial port with its number when one exists (today's libvirt writes
  both), else it becomes that serial port (0.2.2's ``<console tty=.../>``).
  The daemon learns a pty's path from QMP ``query-chardev`` (label = chardev id).
  Host sides: pty, vc, null, file, pipe, tcp (``server=on,wait=off`` when
  bound, ``telnet=on``), udp, unix, dev; ``stdio`` only when
  :attr:`CommandContext.allow_stdio` (a daemon-run QEMU's stdio is the
  daemon's log, not a terminal).
- Graphics: ``vnc`` becomes ``-vnc LISTEN:DISPLAY`` (listen default
  127.0.0.1; a fixed port P is display P-5900); an automatic port is
  ``LISTEN:0,to=99``, which makes QEMU 7.2 take the first free display from
  0 up (race-free; the daemon reads the port with ``query-vnc``), unless the
  context carries a display the daemon chose. A password is never on the
  command line: ``password=on``, then QMP ``set_password``. ``keymap`` is
  ``-k``. ``sdl`` is ``-display sdl`` with DISPLAY/XAUTHORITY from
  :func:`command_environment`; without graphics, ``-display none``. A VGA
  device comes with graphics (``<video><model>`` picks another).
- Inputs: PS/2 mouse and keyboard are part of the PC and need nothing;
  USB mouse/tablet/keyboard (a ``piix3-usb-uhci`` controller on ``pc``,
  ``qemu-xhci`` on ``q35``); virtio ones.
- Sound: ``-audiodev none`` (the guest sees the card, the host plays
  nothing) + the card: ``sb16``, ``es1370``, ``ac97``, ``ich6``/``ich9``
  (HDA controller + duplex codec), ``pcspk``, ``usb``; ``ich7`` does not exist
  in QEMU and is refused.

Unmodelled device elements: ``<video>``, ``<memballoon>``, ``<rng>``
(virtio) and ``<panic>`` are read; ``<controller>`` and ``<audio>`` are
ignored (the driver chooses its controllers and audio back end); any other
device is refused, so a guest never silently lacks a device its XML asks
for. Inside a device, ``<boot order>`` is read and the rest (``<address>``,
``<alias>``...) is ignored: PCI slots follow device order.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from virtkit.errors import ErrorCode, ErrorDomain, NoSupportError, VirtError, XMLError
from virtkit.uuid import format_uuid
from virtkit.xml._document import parse_fragment
from virtkit.xml.domain import (
    CharDevice,
    Disk,
    DomainConfig,
    Graphics,
    Input,
    Interface,
    LifecycleAction,
    Sound,
)

__all__ = [
    "Tap",
    "CommandContext",
    "DiskNames",
    "Lifecycle",
    "build_command",
    "command_environment",
    "disk_names",
    "interface_names",
    "interface_ids",
    "device_alias",
    "DeviceParts",
    "device_parts",
    "lifecycle",
    "keyval",
    "MONITOR_CHARDEV_ID",
    "AUDIODEV_ID",
]

#: The QMP monitor's chardev id.
MONITOR_CHARDEV_ID = "charmonitor"
#: The one audio back end every sound card plays into.
AUDIODEV_ID = "audio0"

Props = dict[str, Any]


# ====================================================================== context


@dataclass(frozen=True)
class Tap:
    """A tap device the networking layer prepared for one interface.

    ``fd`` is an open tap file descriptor QEMU inherits (preferred: QEMU then
    needs no privilege); ``ifname`` names an existing, configured tap device
    QEMU opens itself.
    """

    fd: int | None = None
    ifname: str | None = None


_NO_TAPS: Mapping[int, Tap] = MappingProxyType({})
_NO_SLOTS: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True)
class CommandContext:
    """Runtime values for :func:`build_command`."""

    #: Path of the QMP UNIX socket QEMU listens on.
    qmp_socket: str
    #: A listening socket the daemon already bound to :attr:`qmp_socket`, passed to
    #: QEMU (``fd=N``): the daemon can connect the moment QEMU starts, without
    #: waiting for the socket file to appear, and QEMU needs no write access to
    #: the directory.
    qmp_fd: int | None = None
    #: The emulator when the config names none (the discovered default for the arch).
    emulator: str | None = None
    #: The machine type when the config names none (the emulator's default).
    machine: str | None = None
    #: ``-pidfile`` path, if any.
    pidfile: str | None = None
    #: Start with the vCPUs stopped (``-S``); the daemon sends ``cont``.
    start_paused: bool = True
    #: The VNC display the daemon reserved for an automatic port; None lets
    #: QEMU take the first free display (see :attr:`vnc_display_range`).
    vnc_display: int | None = None
    #: How many displays above 0 QEMU may try for an automatic VNC port.
    vnc_display_range: int = 99
    #: Tap devices for ``network``/``bridge``/``ethernet`` interfaces, by the
    #: interface's index in ``config.interfaces``.
    taps: Mapping[int, Tap] = field(default_factory=lambda: _NO_TAPS)
    #: Allow ``stdio`` character devices (only for a QEMU run in the foreground).
    allow_stdio: bool = False
    #: ``-sandbox on,...``: QEMU's seccomp filter (no spawning, no privilege changes).
    sandbox: bool = True
    #: ``-incoming VALUE``: wait for a migration stream instead of booting (restore
    #: passes ``defer`` and starts it with QMP ``migrate-incoming``).
    incoming: str | None = None
    #: PCI slots on the root bus by QEMU device id (``disk-vda``, ``net0``,
    #: ``balloon0``...): a restore must recreate the layout the saved QEMU had,
    #: hot-plugged devices included, so every device listed here gets ``addr=``.
    pci_slots: Mapping[str, int] = field(default_factory=lambda: _NO_SLOTS)


# ====================================================================== names


@dataclass(frozen=True)
class DiskNames:
    """The QEMU names of one disk: device id and block node names."""

    device_id: str
    format_node: str
    storage_node: str


def disk_names(target_dev: str) -> DiskNames:
    """Names of the disk with target ``target_dev`` (stable: hot-plug uses them)."""
    return DiskNames(f"disk-{target_dev}", f"{target_dev}-format", f"{target_dev}-storage")


def interface_names(index: int) -> tuple[str, str]:
    """``(netdev id, device id)`` of the interface at ``index``."""
    return f"hostnet{index}", f"net{index}"


def device_alias(extra: tuple[str, ...]) -> str | None:
    """The ``<alias name>`` among a device's unmodelled children, if any."""
    for text in extra:
        if text.startswith("<alias"):
            el = parse_fragment(text)
            if el.tag == "alias" and el.get("name"):
                return str(el.get("name"))
    return None


def interface_ids(config: DomainConfig) -> list[tuple[str, str]]:
    """``(netdev id, device id)`` of each interface of ``config``, in order.

    An interface whose live XML carries ``<alias name='netN'/>`` keeps that id
    (the daemon writes the alias when it starts or hot-plugs the NIC, so a NIC
    keeps its QEMU id when one before it is detached, and after a restore); the
    others get ``hostnetI``/``netI`` from their index, skipping ids taken.
    """
    aliases = [device_alias(i.extra) for i in config.interfaces]
    taken = {a for a in aliases if a is not None}
    out: list[tuple[str, str]] = []
    for index, alias in enumerate(aliases):
        if alias is None:
            n = index
            while f"net{n}" in taken:
                n += 1
            alias = f"net{n}"
            taken.add(alias)
        out.append((f"host{alias}", alias))
    return out


def keyval(props: Mapping[str, Any], implied: str | None = None) -> str:
    """QEMU's ``key=value,...`` syntax for ``props``.

    Booleans become ``on``/``off``; commas inside values are doubled. The value
    of ``implied`` (e.g. ``driver`` for ``-device``) comes first, without its key.
    """
    parts: list[str] = []
    for key, value in props.items():
        if isinstance(value, bool):
            text = "on" if value else "off"
        else:
            text = str(value).replace(",", ",,")
        parts.append(text if key == implied else f"{key}={text}")
    if implied is not None and implied in props:
        i = list(props).index(implied)
        parts.insert(0, parts.pop(i))
    return ",".join(parts)


# ====================================================================== lifecycle


@dataclass(frozen=True)
class Lifecycle:
    """What to do on guest power-off, reboot and crash, with defaults filled in.

    The daemon applies these when QEMU reports ``SHUTDOWN`` (reason
    ``guest-shutdown`` or, with ``reboot=shutdown``, ``guest-reset``) or
    ``GUEST_PANICKED``; :attr:`qemu_action` is what QEMU itself is told.
    """

    on_poweroff: LifecycleAction
    on_reboot: LifecycleAction
    on_crash: LifecycleAction

    @property
    def qemu_action(self) -> str:
        """The ``-action`` argument: QEMU resets on reboot only for ``restart``."""
        reboot = "reset" if self.on_reboot is LifecycleAction.RESTART else "shutdown"
        return f"reboot={reboot},shutdown=pause,panic=pause"


_COREDUMP_ACTIONS = frozenset((LifecycleAction.COREDUMP_DESTROY, LifecycleAction.COREDUMP_RESTART))


def lifecycle(config: DomainConfig) -> Lifecycle:
    """The lifecycle actions of ``config`` (libvirt's defaults: destroy, restart, destroy).

    Every 0.2.2 action is accepted for every event (``rename-restart`` keeps the
    stopped QEMU under a new name, see :mod:`virtkit.drivers.qemu.lifecycle`);
    ``coredump-destroy`` and ``coredump-restart`` only for ``<on_crash>``
    (VirtError CONFIG_UNSUPPORTED otherwise: a power-off leaves nothing to dump).
    """
    actions = []
    for what, action, default in (("on_poweroff", config.on_poweroff, LifecycleAction.DESTROY),
                                  ("on_reboot", config.on_reboot, LifecycleAction.RESTART),
                                  ("on_crash", config.on_crash, LifecycleAction.DESTROY)):
        action = default if action is None else LifecycleAction(action)
        if action in _COREDUMP_ACTIONS and what != "on_crash":
            raise _unsupported(f"<{what}>{action.value}</{what}>: core dump actions are for "
                               "<on_crash> only")
        actions.append(action)
    return Lifecycle(*actions)


# ====================================================================== errors


def _unsupported(message: str) -> VirtError:
    return VirtError(message, code=ErrorCode.CONFIG_UNSUPPORTED, domain=ErrorDomain.QEMU)


def _invalid(message: str) -> XMLError:
    return XMLError(message, domain=ErrorDomain.QEMU)


# ====================================================================== machines


@dataclass(frozen=True)
class _Family:
    name: str
    pci: bool
    ide_buses: int
    ide_units: int
    builtin_fdc: bool
    builtin_ahci: bool
    acpi: bool
    usb_controller: str | None
    default_nic: str
    vga: str


_I440FX = _Family("i440fx", True, 2, 2, True, False, True, "piix3-usb-uhci", "e1000", "VGA")
_Q35 = _Family("q35", True, 6, 1, False, True, True, "qemu-xhci", "e1000", "VGA")
_ISAPC = _Family("isapc", False, 2, 2, True, False, False, None, "ne2k_isa", "isa-vga")

_X86_ARCHES = frozenset(("i686", "x86_64"))


def _family(machine: str) -> _Family:
    if machine == "q35" or machine.startswith("pc-q35"):
        return _Q35
    if machine == "pc" or machine.startswith("pc-i440fx") or re.fullmatch(r"pc-\d+\.\d+", machine):
        return _I440FX
    if machine == "isapc":
        return _ISAPC
    raise _unsupported(f"machine type {machine!r} is not supported by virtkit's QEMU driver "
                       "(x86: pc, q35, isapc and their versioned names)")


# ====================================================================== tables

_NIC_MODELS = {
    "virtio": "virtio-net-pci", "e1000": "e1000", "e1000e": "e1000e", "rtl8139": "rtl8139",
    "ne2k_pci": "ne2k_pci", "ne2k_isa": "ne2k_isa", "pcnet": "pcnet", "i82551": "i82551",
    "i82557b": "i82557b", "i82559er": "i82559er", "vmxnet3": "vmxnet3",
}
_ISA_NICS = frozenset(("ne2k_isa",))

_IMAGE_FORMATS = frozenset(("raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vpc", "vhdx"))

# cache mode -> (cache.direct, cache.no-flush, write-cache), as libvirt maps them.
_CACHE_MODES = {
    "none": (True, False, True),
    "writeback": (False, False, True),
    "writethrough": (False, False, False),
    "directsync": (True, False, False),
    "unsafe": (False, True, True),
}
_AIO_MODES = frozenset(("native", "threads", "io_uring"))

_BUS_BY_PREFIX = (("xvd", "xen"), ("hd", "ide"), ("sd", "scsi"), ("vd", "virtio"),
                  ("fd", "fdc"), ("ub", "usb"))

# sound model -> (QEMU device, needs PCI); "hda" models also get a codec.
_SOUND_MODELS = {
    "sb16": ("sb16", False), "es1370": ("ES1370", True), "ac97": ("AC97", True),
    "ich6": ("intel-hda", True), "ich9": ("ich9-intel-hda", True), "usb": ("usb-audio", False),
    "adlib": ("adlib", False), "gus": ("gus", False), "cs4231a": ("cs4231a", False),
}
_HDA_MODELS = frozenset(("ich6", "ich9"))

_VIDEO_MODELS = {"vga": "VGA", "std": "VGA", "cirrus": "cirrus-vga", "virtio": "virtio-vga",
                 "qxl": "qxl-vga", "bochs": "bochs-display", "none": None}

_INPUT_DEVICES = {
    ("mouse", "usb"): "usb-mouse", ("tablet", "usb"): "usb-tablet", ("keyboard", "usb"): "usb-kbd",
    ("mouse", "virtio"): "virtio-mouse-pci", ("tablet", "virtio"): "virtio-tablet-pci",
    ("keyboard", "virtio"): "virtio-keyboard-pci",
}

#: Device elements that configure what virtkit chooses itself: ignored.
_IGNORED_DEVICES = frozenset(("controller", "audio"))

_TARGET = re.compile(r"(xvd|hd|sd|vd|fd|ub)([a-z]+)\Z")
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\Z")


def _disk_index(target_dev: str) -> tuple[str, int]:
    """``('hd', 2)`` for ``hdc``: the name's prefix and its letters as a number (a=0, aa=26)."""
    m = _TARGET.match(target_dev)
    if m is None:
        raise _invalid(f"disk target {target_dev!r} is not a whole-disk name QEMU can place "
                       "(hdX, sdX, vdX, fdX...)")
    index = 0
    for ch in m.group(2):
        index = index * 26 + (ord(ch) - ord("a") + 1)
    return m.group(1), index - 1


# ====================================================================== the builder


def build_command(config: DomainConfig, ctx: CommandContext) -> list[str]:
    """The QEMU argument list (emulator first) that runs ``config``.

    See the module docstring for what each part of the configuration becomes.
    Raises VirtError (CONFIG_UNSUPPORTED) for a configuration QEMU cannot run,
    XMLError for a self-contradictory one, NoSupportError for a tap-based
    interface without a tap in ``ctx.taps``.
    """
    return _Builder(config, ctx).build()


@dataclass(frozen=True)
class DeviceParts:
    """What hot-plugging one disk or interface takes, as QMP arguments.

    ``backends`` go first (``blockdev-add`` for each block node, storage node
    first; or one ``netdev_add``), then ``device`` (``device_add``). Dotted
    option names are nested (``cache.direct`` -> ``{"cache": {"direct": ...}}``),
    as QMP wants them. ``controllers`` names the controllers the device sits on
    (``scsi``, ``usb``...): the running QEMU must already have them.
    """

    backends: tuple[dict[str, Any], ...]
    device: dict[str, Any]
    controllers: frozenset[str]


def device_parts(config: DomainConfig, device: Disk | Interface, ctx: CommandContext) -> DeviceParts:
    """The QMP arguments that add ``device`` to a QEMU running ``config``.

    ``config`` is the live configuration with ``device`` already in it (so ids
    and checks see the whole machine). The device gets no ``bootindex``: a
    hot-plugged device is not in the firmware's boot order. Raises what
    :func:`build_command` raises for a device it cannot place.
    """
    b = _Builder(config, ctx)
    b.machine = config.os.machine or ctx.machine or "pc"
    b.family = _family(b.machine)
    if isinstance(device, Disk):
        index = next(i for i, d in enumerate(config.disks) if d.target_dev == device.target_dev)
        blockdevs, dev = b.disk_parts(index, device)
        backends = tuple(_nested(node) for node in blockdevs)
    else:
        index = config.interfaces.index(device)
        netdev, dev = b.interface_parts(index, device, set(), interface_ids(config)[index])
        backends = (dict(netdev),)
    dev.pop("bootindex", None)
    return DeviceParts(backends, dict(dev), frozenset(b.controllers))


def _nested(props: Props) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in props.items():
        *path, last = key.split(".")
        where = out
        for part in path:
            where = where.setdefault(part, {})
        where[last] = value
    return out


def command_environment(config: DomainConfig) -> dict[str, str]:
    """Environment variables QEMU needs for ``config`` (DISPLAY/XAUTHORITY for SDL)."""
    env: dict[str, str] = {}
    for g in config.graphics:
        if g.type == "sdl":
            if g.display is not None:
                env["DISPLAY"] = g.display
            if g.xauth is not None:
                env["XAUTHORITY"] = g.xauth
    return env


@dataclass
class _Extras:
    video: str | None = None
    video_given: bool = False
    balloon: bool | None = None
    rng_sources: list[str] = field(default_factory=list)
    panic: bool = False


class _Builder:
    def __init__(self, config: DomainConfig, ctx: CommandContext) -> None:
        self.config = config
        self.ctx = ctx
        self.args: list[str] = []
        self.machine = ""
        self.family = _I440FX
        self.boot: dict[tuple[str, int], int] = {}  # ("disk"|"net", index) -> bootindex
        self.controllers: set[str] = set()
        self.controller_args: list[str] = []
        self.fdc_boot: dict[int, int] = {}  # floppy unit -> bootindex

    # ------------------------------------------------------------ helpers

    def add(self, *args: str) -> None:
        self.args.extend(args)

    def device(self, props: Props) -> None:
        self.args += ["-device", keyval(self.placed(props), "driver")]

    def placed(self, props: Props) -> Props:
        """``props`` with the PCI slot :attr:`CommandContext.pci_slots` gives its id."""
        slot = self.ctx.pci_slots.get(str(props.get("id")))
        if slot is None or "bus" in props:
            return props
        return {**props, "addr": f"0x{slot:x}"}

    def need_pci(self, what: str) -> None:
        if not self.family.pci:
            raise _unsupported(f"{what} needs a PCI bus, which machine type {self.machine!r} lacks")

    def controller(self, name: str, props: Props) -> None:
        """Add a controller once, before the devices that use it."""
        if name not in self.controllers:
            self.controllers.add(name)
            self.controller_args += ["-device", keyval(self.placed(props), "driver")]

    def usb(self, what: str) -> str:
        ctrl = self.family.usb_controller
        if ctrl is None:
            raise _unsupported(f"{what} needs USB, which machine type {self.machine!r} lacks")
        self.controller("usb", {"driver": ctrl, "id": "usb"})
        return "usb.0"

    # ------------------------------------------------------------ top level

    def build(self) -> list[str]:
        cfg = self.config
        self.check_domain()
        life = lifecycle(cfg)
        extras = self.read_extra_devices()
        self.machine = cfg.os.machine or self.ctx.machine or "pc"
        self.family = _family(self.machine)
        self.plan_boot()

        self.add("")  # the emulator, checked last: configuration errors say more
        self.add("-name", f"guest={cfg.name.replace(',', ',,')},debug-threads=on")
        if self.ctx.start_paused:
            self.add("-S")
        if cfg.uuid is not None:
            self.add("-uuid", format_uuid(cfg.uuid))
        self.add("-no-user-config", "-nodefaults", "-msg", "timestamp=on")
        where: Props = ({"fd": self.ctx.qmp_fd} if self.ctx.qmp_fd is not None
                        else {"path": self.ctx.qmp_socket})
        self.add("-chardev", keyval({"backend": "socket", "id": MONITOR_CHARDEV_ID, **where,
                                     "server": True, "wait": False}, "backend"))
        self.add("-mon", f"chardev={MONITOR_CHARDEV_ID},id=monitor,mode=control")
        if self.ctx.pidfile:
            self.add("-pidfile", self.ctx.pidfile)
        self.add("-machine", keyval(self.machine_props()))
        if self.ctx.sandbox:
            self.add("-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")
        self.memory_and_cpus(extras)
        emulator_name = (cfg.emulator or self.ctx.emulator or "").rsplit("/", 1)[-1]
        if cfg.os.arch == "i686" and "x86_64" in emulator_name:
            self.add("-cpu", "qemu32")  # a 32-bit guest on the 64-bit binary: no long mode
        self.add("-rtc", f"base={cfg.clock_offset or 'utc'}")
        self.add("-action", life.qemu_action)
        self.firmware_and_kernel()
        self.graphics(extras)

        body: list[str] = []
        saved, self.args = self.args, body
        self.disks()
        self.interfaces()
        self.chardevs()
        self.inputs()
        self.sounds()
        self.args = saved
        if self.fdc_boot and self.family.builtin_fdc:
            for unit, index in sorted(self.fdc_boot.items()):
                self.add("-global", f"isa-fdc.bootindex{'AB'[unit]}={index}")
        self.args += self.controller_args + body

        self.misc_devices(extras, cfg.on_crash is not None)
        if self.ctx.incoming is not None:
            self.add("-incoming", self.ctx.incoming)
        emulator = cfg.emulator or self.ctx.emulator
        if not emulator:
            raise _unsupported("no emulator: the configuration names none and no QEMU binary "
                               f"was found for architecture {cfg.os.arch or 'x86_64'}")
        self.args[0] = emulator
        return self.args

    def check_domain(self) -> None:
        cfg = self.config
        if cfg.type == "kqemu":
            raise _unsupported("domain type 'kqemu' is gone (QEMU dropped kqemu in 0.12); "
                               "use 'qemu' (TCG) or 'kvm'")
        if cfg.type not in ("qemu", "kvm"):
            raise _unsupported(f"domain type {cfg.type!r} cannot run under QEMU (use 'qemu' or 'kvm')")
        if cfg.bootloader is not None:
            raise _unsupported("<bootloader> (pygrub) is for Xen paravirtualized guests; a QEMU guest "
                               "boots from its disks or from <os><kernel>")
        if cfg.os.type != "hvm":
            raise _unsupported(f"os type {cfg.os.type!r} is a Xen paravirtualized guest; QEMU runs "
                               "fully virtualized guests (os type 'hvm')")
        arch = cfg.os.arch
        if arch is not None and arch not in _X86_ARCHES:
            raise _unsupported(f"architecture {arch!r} is not supported by virtkit's QEMU driver yet "
                               "(x86_64 and i686 are)")
        if cfg.os.firmware == "efi" or cfg.os.loader_type == "pflash":
            raise _unsupported("UEFI firmware (pflash) is not supported by virtkit's QEMU driver yet")
        loader = cfg.os.loader
        if loader and ("/xen/" in loader or loader.endswith("hvmloader")):
            raise _unsupported(f"loader {loader!r} is Xen's HVM firmware; QEMU brings its own BIOS")
        if cfg.memory <= 0:
            raise _unsupported("the domain has no memory (<memory> must be positive)")
        if cfg.current_memory_kib > cfg.memory:
            raise _invalid(f"<currentMemory> ({cfg.current_memory_kib} KiB) exceeds <memory> "
                           f"({cfg.memory} KiB)")
        if cfg.vcpus < 1 or not 1 <= cfg.online_vcpus <= cfg.vcpus:
            raise _invalid(f"{cfg.online_vcpus} vCPUs online out of {cfg.vcpus}: the current count "
                           "must be between 1 and the maximum")

    def machine_props(self) -> Props:
        cfg = self.config
        props: Props = {"type": self.machine, "accel": "kvm" if cfg.type == "kvm" else "tcg"}
        acpi = "acpi" in cfg.features
        if self.family.acpi:
            props["acpi"] = acpi
        elif acpi:
            raise _unsupported(f"machine type {self.machine!r} has no ACPI")
        if any(s.model == "pcspk" for s in cfg.sounds):
            props["pcspk-audiodev"] = AUDIODEV_ID
        return props

    def memory_and_cpus(self, extras: _Extras) -> None:
        cfg = self.config
        self.add("-m", f"size={cfg.memory}k")
        if cfg.current_memory_kib < cfg.memory and not self.balloon(extras):
            raise _unsupported(f"<currentMemory> below <memory> needs a balloon device, which this "
                               f"guest does not have (machine {self.machine!r} or <memballoon model='none'>)")
        n = cfg.vcpus
        self.add("-smp", f"cpus={cfg.online_vcpus},maxcpus={n},sockets={n},cores=1,threads=1")

    def balloon(self, extras: _Extras) -> bool:
        if extras.balloon is None:
            return self.family.pci
        return extras.balloon

    def firmware_and_kernel(self) -> None:
        os_ = self.config.os
        if os_.loader:
            self.add("-bios", os_.loader)
        if os_.kernel:
            self.add("-kernel", os_.kernel)
            if os_.initrd:
                self.add("-initrd", os_.initrd)
            cmdline = os_.cmdline or ""
            if os_.root:
                cmdline = f"root={os_.root} {cmdline}".strip()
            if cmdline:
                self.add("-append", cmdline)
        elif os_.initrd or os_.cmdline:
            raise _invalid("<initrd> and <cmdline> need a <kernel>")

    # ------------------------------------------------------------ extra devices

    def read_extra_devices(self) -> _Extras:
        extras = _Extras()
        for text in self.config.extra_devices:
            el = parse_fragment(text)
            tag = el.tag
            if tag == "video":
                if extras.video_given:
                    raise _unsupported("more than one <video> device is not supported")
                model_el = el.find("model")
                model = "vga" if model_el is None else (model_el.get("type") or "vga")
                if model not in _VIDEO_MODELS:
                    raise _unsupported(f"video model {model!r} is not supported "
                                       f"(known: {', '.join(sorted(_VIDEO_MODELS))})")
                extras.video, extras.video_given = _VIDEO_MODELS[model], True
            elif tag == "memballoon":
                model = el.get("model") or "virtio"
                if model not in ("virtio", "none"):
                    raise _unsupported(f"memballoon model {model!r} is not supported (virtio or none)")
                extras.balloon = model == "virtio"
            elif tag == "rng":
                if (el.get("model") or "virtio") != "virtio":
                    raise _unsupported("only virtio random number generators are supported")
                backend = el.find("backend")
                if backend is not None and (backend.get("model") or "random") != "random":
                    raise _unsupported("only <backend model='random'> is supported for <rng>")
                path = (backend.text or "").strip() if backend is not None else ""
                extras.rng_sources.append(path or "/dev/urandom")
            elif tag == "panic":
                model = el.get("model") or "isa"
                if model != "isa":
                    raise _unsupported(f"panic device model {model!r} is not supported (isa)")
                extras.panic = True
            elif tag in _IGNORED_DEVICES:
                continue
            else:
                raise _unsupported(f"device <{tag}> is not supported by virtkit's QEMU driver yet")
        return extras

    def misc_devices(self, extras: _Extras, on_crash: bool) -> None:
        if self.balloon(extras):
            self.need_pci("the memory balloon")
            self.device({"driver": "virtio-balloon-pci", "id": "balloon0"})
        for i, path in enumerate(extras.rng_sources):
            self.need_pci("a virtio random number generator")
            self.add("-object", keyval({"qom-type": "rng-random", "id": f"objrng{i}", "filename": path},
                                       "qom-type"))
            self.device({"driver": "virtio-rng-pci", "rng": f"objrng{i}", "id": f"rng{i}"})
        if on_crash or extras.panic:
            self.device({"driver": "pvpanic", "id": "panic0"})

    # ------------------------------------------------------------ boot order

    def plan_boot(self) -> None:
        cfg = self.config
        per_device: dict[tuple[str, int], int] = {}
        extras: list[tuple[tuple[str, int], tuple[str, ...]]] = [
            *((("disk", i), d.extra) for i, d in enumerate(cfg.disks)),
            *((("net", i), n.extra) for i, n in enumerate(cfg.interfaces)),
        ]
        for key, extra in extras:
            order = _boot_order(extra)
            if order is not None:
                per_device[key] = order
        if per_device:
            if cfg.os.boot:
                raise _invalid("per-device <boot order> cannot be combined with <os><boot dev>")
            orders = list(per_device.values())
            if len(set(orders)) != len(orders):
                raise _invalid("two devices have the same <boot order>")
            self.boot = per_device
            return
        if cfg.os.kernel:
            return
        index = 0
        for dev in dict.fromkeys(cfg.os.boot or ("hd",)):
            target: tuple[str, int] | None = None
            if dev == "network":
                target = ("net", 0) if cfg.interfaces else None
            else:
                want = {"hd": "disk", "cdrom": "cdrom", "fd": "floppy"}.get(dev)
                if want is None:
                    raise _unsupported(f"boot device {dev!r} is unknown (fd, hd, cdrom, network)")
                for i, disk in enumerate(cfg.disks):
                    if disk.device == want:
                        target = ("disk", i)
                        break
            if target is not None:
                index += 1
                self.boot[target] = index

    # ------------------------------------------------------------ disks

    def disks(self) -> None:
        for i, disk in enumerate(self.config.disks):
            order = self.boot.get(("disk", i))
            if order is not None and disk.device == "floppy":
                _, unit = _disk_index(disk.target_dev)
                if unit <= 1:
                    self.fdc_boot[unit] = order
        seen: set[str] = set()
        for i, disk in enumerate(self.config.disks):
            if disk.target_dev in seen:
                raise _invalid(f"two disks have target {disk.target_dev!r}")
            seen.add(disk.target_dev)
            blockdevs, dev = self.disk_parts(i, disk)
            for node in blockdevs:
                self.add("-blockdev", keyval(node))
            self.device(dev)

    def disk_parts(self, i: int, disk: Disk) -> tuple[list[Props], Props]:
        """The ``-blockdev`` nodes (storage, then format) and ``-device`` properties
        of disk ``i``."""
        prefix, index = _disk_index(disk.target_dev)
        bus = disk.target_bus or dict(_BUS_BY_PREFIX)[prefix]
        names = disk_names(disk.target_dev)
        where = f"disk {disk.target_dev!r}"
        if disk.device not in ("disk", "cdrom", "floppy"):
            raise _unsupported(f"{where}: device kind {disk.device!r} is unknown")
        if bus == "xen":
            raise _unsupported(f"{where}: bus 'xen' (xvdX) is for Xen guests; use virtio (vdX) or ide (hdX)")
        if (disk.device == "floppy") != (bus == "fdc"):
            raise _unsupported(f"{where}: floppies go on the fdc bus (fda, fdb), and only floppies do")
        if disk.driver_name not in (None, "qemu"):
            raise _unsupported(f"{where}: driver {disk.driver_name!r} is a Xen back end; QEMU's is 'qemu'")
        fmt = disk.driver_type or "raw"
        if fmt not in _IMAGE_FORMATS:
            raise _unsupported(f"{where}: image format {fmt!r} is not supported "
                               f"(known: {', '.join(sorted(_IMAGE_FORMATS))})")
        if disk.type not in ("file", "block"):
            raise _unsupported(f"{where}: source type {disk.type!r} is not supported (file or block)")
        readonly = disk.readonly or disk.device == "cdrom"
        if disk.shareable and fmt != "raw":
            raise _unsupported(f"{where}: a shareable disk must be a raw image, not {fmt}")
        if disk.source is None and disk.device == "disk":
            raise _invalid(f"{where}: a hard disk needs a <source>")

        cache = None
        if disk.driver_cache not in (None, "default"):
            if disk.driver_cache not in _CACHE_MODES:
                raise _unsupported(f"{where}: cache mode {disk.driver_cache!r} is unknown")
            cache = _CACHE_MODES[disk.driver_cache]
        if disk.driver_io is not None:
            if disk.driver_io not in _AIO_MODES:
                raise _unsupported(f"{where}: I/O mode {disk.driver_io!r} is unknown")
            if disk.driver_io == "native" and not (cache and cache[0]):
                raise _unsupported(f"{where}: io='native' needs cache='none' or 'directsync'")
        if disk.driver_discard not in (None, "unmap", "ignore"):
            raise _unsupported(f"{where}: discard mode {disk.driver_discard!r} is unknown")

        # Where the device goes.
        dev: Props
        if bus in ("ide", "sata"):
            if disk.readonly and disk.device == "disk":
                raise _unsupported(f"{where}: QEMU's IDE/SATA hard disks cannot be read-only "
                                   "(use virtio or scsi, or a cdrom)")
            dev = {"driver": "ide-cd" if disk.device == "cdrom" else "ide-hd"}
            dev.update(self.ide_slot(bus, index, where))
        elif bus == "scsi":
            if index > 255:
                raise _unsupported(f"{where}: SCSI targets go up to sdiv")
            self.need_pci("SCSI")
            self.controller("scsi", {"driver": "virtio-scsi-pci", "id": "scsi0"})
            dev = {"driver": "scsi-cd" if disk.device == "cdrom" else "scsi-hd",
                   "bus": "scsi0.0", "channel": 0, "scsi-id": index, "lun": 0}
        elif bus == "virtio":
            if disk.device != "disk":
                raise _unsupported(f"{where}: a virtio block device cannot be a {disk.device}")
            self.need_pci("virtio disks")
            dev = {"driver": "virtio-blk-pci"}
        elif bus == "fdc":
            if index > 1:
                raise _unsupported(f"{where}: the floppy controller has two drives (fda, fdb)")
            if not self.family.builtin_fdc:
                fdc: Props = {"driver": "isa-fdc", "id": "fdc0"}
                for unit, order in sorted(self.fdc_boot.items()):
                    fdc[f"bootindex{'AB'[unit]}"] = order
                self.controller("fdc", fdc)
            dev = {"driver": "floppy", "unit": index}
        elif bus == "usb":
            if disk.device != "disk":
                raise _unsupported(f"{where}: USB storage here is for hard disks only")
            dev = {"driver": "usb-storage", "bus": self.usb(where)}
        else:
            raise _unsupported(f"{where}: bus {bus!r} is not supported (ide, sata, scsi, virtio, fdc, usb)")

        blockdevs: list[Props] = []
        if disk.source is not None:
            if disk.type == "file":
                proto = "file"
            else:
                proto = "host_cdrom" if disk.device == "cdrom" else "host_device"
            storage: Props = {"driver": proto, "filename": disk.source, "node-name": names.storage_node}
            fmt_node: Props = {"driver": fmt, "file": names.storage_node, "node-name": names.format_node}
            for node in (storage, fmt_node):
                if readonly:
                    node["read-only"] = True
                if cache is not None:
                    node["cache.direct"] = cache[0]
                    node["cache.no-flush"] = cache[1]
                if disk.driver_discard is not None:
                    node["discard"] = disk.driver_discard
            if disk.driver_io is not None:
                storage["aio"] = disk.driver_io
            blockdevs += [storage, fmt_node]
            dev["drive"] = names.format_node
        dev["id"] = names.device_id
        boot = self.boot.get(("disk", i))
        if boot is not None and bus != "fdc":  # floppies boot through their controller
            dev["bootindex"] = boot
        if disk.shareable:
            dev["share-rw"] = True
        if cache is not None and disk.device != "floppy":
            dev["write-cache"] = cache[2]
        return blockdevs, dev

    def ide_slot(self, bus: str, index: int, where: str) -> Props:
        fam = self.family
        if bus == "sata" and not fam.builtin_ahci:
            self.need_pci("SATA")
            self.controller("sata", {"driver": "ich9-ahci", "id": "sata0"})
            if index >= 6:
                raise _unsupported(f"{where}: the SATA controller has six ports")
            return {"bus": f"sata0.{index}"}
        if bus == "sata" and fam is not _Q35:
            raise _unsupported(f"{where}: machine type {self.machine!r} has no SATA")
        slots = fam.ide_buses * fam.ide_units
        if index >= slots:
            last = chr(ord("a") + slots - 1)
            raise _unsupported(f"{where}: machine type {self.machine!r} has {slots} IDE/SATA slots "
                               f"(hda to hd{last})")
        return {"bus": f"ide.{index // fam.ide_units}", "unit": index % fam.ide_units}

    # ------------------------------------------------------------ interfaces

    def interfaces(self) -> None:
        macs: set[str] = set()
        ids = interface_ids(self.config)
        if len(set(ids)) != len(ids):
            raise _invalid("two interfaces have the same <alias name>")
        for i, iface in enumerate(self.config.interfaces):
            netdev, dev = self.interface_parts(i, iface, macs, ids[i])
            self.add("-netdev", keyval(netdev, "type"))
            self.device(dev)

    def interface_parts(self, i: int, iface: Interface, macs: set[str],
                        ids: tuple[str, str]) -> tuple[Props, Props]:
        """The ``-netdev`` and ``-device`` properties of interface ``i``."""
        netdev_id, device_id = ids
        where = f"interface {i} (type {iface.type!r})"
        netdev: Props = {"type": "", "id": netdev_id}
        t = iface.type
        if t == "user":
            netdev["type"] = "user"
        elif t in ("mcast", "server", "client"):
            netdev["type"] = "socket"
            if iface.source_port is None:
                raise _invalid(f"{where}: <source port> is required")
            addr = iface.source_address
            if t == "mcast":
                if addr is None or not _is_multicast(addr):
                    raise _invalid(f"{where}: <source address> must be a multicast address, not {addr!r}")
                netdev["mcast"] = _hostport(addr, iface.source_port)
            elif t == "server":
                netdev["listen"] = _hostport(addr or "", iface.source_port)
            else:
                if not addr:
                    raise _invalid(f"{where}: <source address> (the server to connect to) is required")
                netdev["connect"] = _hostport(addr, iface.source_port)
        elif t in ("network", "bridge", "ethernet"):
            tap = self.ctx.taps.get(i)
            if tap is None or (tap.fd is None and not tap.ifname):
                raise NoSupportError(
                    f"{where} needs a tap device set up by virtkit's networking layer, and none was "
                    "supplied (host networking for QEMU guests is not available yet)",
                    domain=ErrorDomain.QEMU)
            netdev["type"] = "tap"
            if tap.fd is not None:
                netdev["fd"] = tap.fd
            else:
                netdev.update({"ifname": tap.ifname, "script": "no", "downscript": "no"})
        else:
            raise _unsupported(f"{where}: interface type {t!r} is not supported")

        if iface.mac is None:
            raise VirtError(f"{where} has no MAC address: fill_missing_macs() must run when the "
                            "domain is defined", domain=ErrorDomain.QEMU)
        if _MAC.match(iface.mac) is None:
            raise _invalid(f"{where}: {iface.mac!r} is not a MAC address")
        mac = iface.mac.lower()
        if int(mac[:2], 16) & 1:
            raise _invalid(f"{where}: {iface.mac} is a multicast MAC address; a NIC needs a unicast one")
        if mac in macs:
            raise _invalid(f"{where}: MAC address {mac} is used twice")
        macs.add(mac)
        model = iface.model or self.family.default_nic
        if model == "netfront":
            raise _unsupported(f"{where}: model 'netfront' is Xen's paravirtualized NIC")
        qdev = _NIC_MODELS.get(model)
        if qdev is None:
            raise _unsupported(f"{where}: NIC model {model!r} is not supported "
                               f"(known: {', '.join(sorted(_NIC_MODELS))})")
        if qdev not in _ISA_NICS:
            self.need_pci(f"NIC model {model!r}")
        dev: Props = {"driver": qdev, "netdev": netdev_id, "id": device_id, "mac": mac}
        boot = self.boot.get(("net", i))
        if boot is not None:
            if qdev in _ISA_NICS:
                raise _unsupported(f"{where}: an ISA NIC cannot boot from the network")
            dev["bootindex"] = boot
        return netdev, dev

    # ------------------------------------------------------------ character devices

    def chardevs(self) -> None:
        cfg = self.config
        serials: list[tuple[int, CharDevice]] = []
        parallels: list[tuple[int, CharDevice]] = []
        consoles: list[CharDevice] = []
        next_serial = next_parallel = 0
        for c in cfg.chardevs:
            if c.kind == "serial":
                port = c.target_port if c.target_port is not None else next_serial
                serials.append((port, c))
                next_serial = port + 1
            elif c.kind == "parallel":
                port = c.target_port if c.target_port is not None else next_parallel
                parallels.append((port, c))
                next_parallel = port + 1
            elif c.kind == "console":
                consoles.append(c)
            else:
                raise _unsupported(f"character device kind {c.kind!r} is unknown")
        virtio_consoles: list[CharDevice] = []
        for c in consoles:
            target = c.target_type or "serial"
            if target == "serial":
                port = c.target_port or 0
                if not any(p == port for p, _ in serials):
                    serials.append((port, c))
            elif target == "virtio":
                virtio_consoles.append(c)
            else:
                raise _unsupported(f"console target type {target!r} is not supported (serial, virtio)")
        for kind, ports, limit in (("serial", serials, 4), ("parallel", parallels, 3)):
            used = [p for p, _ in ports]
            if len(set(used)) != len(used):
                raise _invalid(f"two {kind} ports have the same number")
            for port, c in sorted(ports, key=lambda pc: pc[0]):
                chr_id = f"char{kind}{port}"
                self.add("-chardev", self.chardev_backend(chr_id, c, kind))
                model = c.target_model or (c.target_type if c.kind == "serial" else None) \
                    or f"isa-{kind}"
                if kind == "serial" and model == "pci-serial":
                    self.need_pci("pci-serial")
                    self.device({"driver": "pci-serial", "chardev": chr_id, "id": f"serial{port}"})
                    continue
                if model != f"isa-{kind}":
                    raise _unsupported(f"{kind} port model {model!r} is not supported")
                if port >= limit:
                    raise _unsupported(f"{kind} port {port} does not exist (ISA has {limit})")
                self.device({"driver": model, "chardev": chr_id, "id": f"{kind}{port}", "index": port})
        for i, c in enumerate(virtio_consoles):
            self.need_pci("a virtio console")
            self.controller("virtio-serial", {"driver": "virtio-serial-pci", "id": "virtio-serial0"})
            chr_id = f"charconsole{i}"
            self.add("-chardev", self.chardev_backend(chr_id, c, "console"))
            self.device({"driver": "virtconsole", "chardev": chr_id, "id": f"console{i}"})

    def chardev_backend(self, chr_id: str, c: CharDevice, kind: str) -> str:
        where = f"{c.kind} of type {c.type!r}"
        props: Props = {"backend": c.type, "id": chr_id}
        t = c.type
        if t in ("pty", "vc", "null"):
            pass
        elif t in ("file", "pipe"):
            props["path"] = _required(c.source_path, f"{where}: <source path>")
        elif t == "dev":
            props["backend"] = "parallel" if kind == "parallel" else "serial"
            props["path"] = _required(c.source_path, f"{where}: <source path>")
        elif t == "stdio":
            if not self.ctx.allow_stdio:
                raise _unsupported(f"{where}: a daemon-run guest has no terminal; use pty (virtkit "
                                   "console), file or a socket instead")
            props["signal"] = False
        elif t == "unix":
            props["backend"] = "socket"
            props["path"] = _required(c.source_path, f"{where}: <source path>")
            if c.source_mode == "bind":
                props.update(server=True, wait=False)
        elif t == "tcp":
            props["backend"] = "socket"
            bind = c.source_mode == "bind"
            if not bind and not c.source_host:
                raise _invalid(f"{where}: <source host> (where to connect) is required")
            props["host"] = c.source_host or ""
            props["port"] = _required(c.source_service, f"{where}: <source service>")
            if bind:
                props.update(server=True, wait=False)
            if c.protocol == "telnet":
                props["telnet"] = True
            elif c.protocol not in (None, "raw"):
                raise _unsupported(f"{where}: protocol {c.protocol!r} is not supported (raw, telnet)")
        elif t == "udp":
            props["host"] = c.connect_host or "127.0.0.1"
            props["port"] = _required(c.connect_service, f"{where}: the connect <source service>")
            if c.source_host:
                props["localaddr"] = c.source_host
            if c.source_service:
                props["localport"] = c.source_service
        else:
            raise _unsupported(f"{where}: host side {t!r} is not supported")
        return keyval(props, "backend")

    # ------------------------------------------------------------ graphics, inputs, sound

    def graphics(self, extras: _Extras) -> None:
        vnc: list[Graphics] = [g for g in self.config.graphics if g.type == "vnc"]
        sdl = [g for g in self.config.graphics if g.type == "sdl"]
        for g in self.config.graphics:
            if g.type not in ("vnc", "sdl"):
                raise _unsupported(f"graphics type {g.type!r} is not supported (vnc, sdl)")
        if len(vnc) > 1 or len(sdl) > 1:
            raise _unsupported("at most one VNC and one SDL display are supported")
        self.add("-display", "sdl" if sdl else "none")
        if vnc:
            self.add("-vnc", self.vnc_arg(vnc[0]))
            if vnc[0].keymap:
                self.add("-k", vnc[0].keymap)
        video = extras.video if extras.video_given else (self.family.vga if self.config.graphics else None)
        if video is not None:
            if self.family is _ISAPC and video == "VGA":
                video = "isa-vga"
            if video != "isa-vga":
                self.need_pci(f"video device {video!r}")
            self.device({"driver": video, "id": "video0"})

    def vnc_arg(self, g: Graphics) -> str:
        listen = g.listen or "127.0.0.1"
        if ":" in listen and not listen.startswith("["):
            listen = f"[{listen}]"
        auto = g.autoport is True or g.port is None or g.port == -1
        if auto:
            if self.ctx.vnc_display is not None:
                arg = f"{listen}:{self.ctx.vnc_display}"
            else:
                arg = f"{listen}:0,to={self.ctx.vnc_display_range}"
        else:
            assert g.port is not None
            if g.port < 5900:
                raise _unsupported(f"VNC port {g.port}: QEMU's VNC ports are 5900 + display number")
            arg = f"{listen}:{g.port - 5900}"
        if g.passwd is not None:
            arg += ",password=on"
        return arg

    def inputs(self) -> None:
        for i, inp in enumerate(self.config.inputs):
            self.input(i, inp)

    def input(self, i: int, inp: Input) -> None:
        bus = inp.bus or ("usb" if inp.type == "tablet" else "ps2")
        if inp.type not in ("mouse", "tablet", "keyboard"):
            raise _unsupported(f"input type {inp.type!r} is unknown")
        if bus == "ps2":
            if inp.type == "tablet":
                raise _unsupported("there is no PS/2 tablet; use bus 'usb'")
            return  # the PC's i8042 controller provides both
        qdev = _INPUT_DEVICES.get((inp.type, bus))
        if qdev is None:
            raise _unsupported(f"input bus {bus!r} is not supported (ps2, usb, virtio)")
        props: Props = {"driver": qdev, "id": f"input{i}"}
        if bus == "usb":
            props["bus"] = self.usb(f"a USB {inp.type}")
        else:
            self.need_pci(f"a virtio {inp.type}")
        self.device(props)

    def sounds(self) -> None:
        if not self.config.sounds:
            return
        self.add("-audiodev", f"none,id={AUDIODEV_ID}")
        for i, snd in enumerate(self.config.sounds):
            self.sound(i, snd)

    def sound(self, i: int, snd: Sound) -> None:
        if snd.model == "pcspk":
            return  # the machine's speaker, wired to the audio back end by -machine
        if snd.model == "ich7":
            raise _unsupported("sound model 'ich7' does not exist in QEMU (use ich6 or ich9)")
        entry = _SOUND_MODELS.get(snd.model)
        if entry is None:
            raise _unsupported(f"sound model {snd.model!r} is not supported "
                               f"(known: {', '.join(sorted([*_SOUND_MODELS, 'pcspk']))})")
        qdev, pci = entry
        if pci:
            self.need_pci(f"sound model {snd.model!r}")
        sound_id = f"sound{i}"
        props: Props = {"driver": qdev, "id": sound_id}
        if snd.model in _HDA_MODELS:
            self.device(props)
            self.device({"driver": "hda-duplex", "id": f"{sound_id}-codec0", "bus": f"{sound_id}.0",
                         "cad": 0, "audiodev": AUDIODEV_ID})
            return
        if snd.model == "usb":
            props["bus"] = self.usb("a USB sound card")
        props["audiodev"] = AUDIODEV_ID
        self.device(props)


# ====================================================================== small helpers


def _boot_order(extra: tuple[str, ...]) -> int | None:
    for text in extra:
        if text.startswith("<boot"):
            el = parse_fragment(text)
            if el.tag == "boot" and el.get("order") is not None:
                try:
                    order = int(el.get("order"))
                except ValueError:
                    raise _invalid(f"<boot order={el.get('order')!r}> is not a number") from None
                if order < 1:
                    raise _invalid("<boot order> starts at 1")
                return order
    return None


def _required(value: str | None, what: str) -> str:
    if not value:
        raise _invalid(f"{what} is required")
    return value


def _is_multicast(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_multicast
    except ValueError:
        return False


def _hostport(host: str, port: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"
