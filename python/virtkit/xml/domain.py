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


class LifecycleAction(str, Enum):
    """What happens when a domain powers off, reboots or crashes (0.2.2 docs)."""

    DESTROY = "destroy"
    RESTART = "restart"
    PRESERVE = "preserve"
    RENAME_RESTART = "rename-restart"


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


@dataclass(frozen=True)
class Interface:
    """``<interface>``: a network card of the guest.

    ``type`` is one of ``bridge``, ``network``, ``user``, ``ethernet``,
    ``mcast``, ``server``, ``client``. ``source`` names the bridge or the
    network; ``source_address``/``source_port`` are for mcast/server/client.
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


@dataclass(frozen=True)
class Input:
    """``<input type='mouse|tablet|keyboard' bus='ps2|usb|xen'/>``."""

    type: str = "mouse"
    bus: str | None = None


@dataclass(frozen=True)
class Sound:
    """``<sound model='sb16|es1370|pcspk|ac97|...'/>``."""

    model: str = "es1370"


@dataclass(frozen=True)
class VcpuPin:
    """One vCPU's pinning: ``cpuset`` is libvirt's CPU list syntax (``0-2,^1,4``)."""

    vcpu: int
    cpuset: str


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
