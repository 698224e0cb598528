"""Domains (virtual machines), as the public API presents them.

A :class:`Domain` is a handle obtained from a :class:`~virtkit.Connection`
(look-up, listing, create, define, restore). Its methods follow libvirt
0.2.2's domain API with Python names. States and numbers keep libvirt's
values (:class:`DomainState` 0-7) so scripts can compare numbers; memory is
in KiB and CPU time in nanoseconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

from virtkit._handle import Handle
from virtkit.errors import InvalidArgumentError, VirtError

if TYPE_CHECKING:
    from virtkit.drivers.interface import DomainRef

__all__ = ["Domain", "DomainState", "DomainInfo", "DomainStats", "VcpuState", "VcpuInfo",
           "InterfaceAddressSource", "InterfaceAddress", "DomainInterface"]


class DomainState(IntEnum):
    """libvirt's ``virDomainState`` values."""

    NOSTATE = 0
    RUNNING = 1
    BLOCKED = 2
    PAUSED = 3
    SHUTDOWN = 4
    SHUTOFF = 5
    CRASHED = 6
    PMSUSPENDED = 7

    @property
    def label(self) -> str:
        """The words virsh prints for this state (``running``, ``shut off``...)."""
        return _STATE_LABELS[self]


_STATE_LABELS = {
    DomainState.NOSTATE: "no state",
    DomainState.RUNNING: "running",
    DomainState.BLOCKED: "idle",
    DomainState.PAUSED: "paused",
    DomainState.SHUTDOWN: "in shutdown",
    DomainState.SHUTOFF: "shut off",
    DomainState.CRASHED: "crashed",
    DomainState.PMSUSPENDED: "pmsuspended",
}


class DomainInfo(NamedTuple):
    """libvirt's ``virDomainInfo``."""

    state: DomainState
    #: Maximum memory, KiB.
    max_memory: int
    #: Current memory, KiB.
    memory: int
    #: Number of vCPUs.
    nr_virt_cpu: int
    #: CPU time used, nanoseconds.
    cpu_time: int


class VcpuState(IntEnum):
    """libvirt's ``virVcpuState``."""

    OFFLINE = 0
    RUNNING = 1
    BLOCKED = 2


class VcpuInfo(NamedTuple):
    """One vCPU: libvirt's ``virVcpuInfo`` plus its affinity map."""

    number: int
    state: VcpuState
    #: CPU time used, nanoseconds.
    cpu_time: int
    #: Host CPU it runs on (-1 when not running).
    cpu: int
    #: One boolean per host CPU: where the vCPU may run.
    affinity: tuple[bool, ...]


class DomainStats(NamedTuple):
    """One domain's statistics from :meth:`virtkit.Connection.all_domain_stats`."""

    domain: Domain
    info: DomainInfo
    #: Its vCPUs (empty for a domain that is not running).
    vcpus: list[VcpuInfo]


class InterfaceAddressSource(IntEnum):
    """Where :meth:`Domain.interface_addresses` looks (libvirt's
    ``virDomainInterfaceAddressesSource``)."""

    #: The DHCP leases of the virtual networks the interfaces are on.
    LEASE = 0
    #: A guest agent inside the domain (not supported by virtkit's drivers).
    AGENT = 1
    #: The host's ARP table (not supported by virtkit's drivers).
    ARP = 2


class InterfaceAddress(NamedTuple):
    """One address of a domain's interface (libvirt's ``virDomainIPAddress``)."""

    #: :class:`virtkit.network.IPAddrType` value: 0 IPv4, 1 IPv6.
    type: int
    addr: str
    prefix: int


class DomainInterface(NamedTuple):
    """A domain's interface and its addresses (libvirt's ``virDomainInterface``)."""

    #: The host-side device (``vnet0``).
    name: str
    #: The guest's MAC.
    hwaddr: str | None
    addrs: tuple[InterfaceAddress, ...]


class Domain(Handle["DomainRef"]):
    """A domain of a connection. Obtain it from the connection, don't build it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<virtkit.Domain {self._ref.name!r} id={self._ref.id}>"

    # --- identity: connection, name, uuid, uuid_string (Handle) ------------------------

    @property
    def id(self) -> int:
        """The runtime id, or -1 when the domain is not running (asks the driver)."""
        self._refresh()
        return self._ref.id

    def _refresh(self) -> None:
        self._ref = self._conn._call("lookup_domain_by_uuid", self._ref.uuid)

    def _op(self, op: str, *args: object) -> object:
        return self._conn._call_on(op, self._ref, *args)

    # --- queries --------------------------------------------------------------------------

    def os_type(self) -> str:
        """The guest OS type: ``linux`` (Xen PV), ``hvm``..."""
        return self._op("domain_get_os_type")  # type: ignore[return-value]

    def info(self) -> DomainInfo:
        """State, max memory and memory (KiB), vCPUs, CPU time (ns)."""
        return self._op("domain_get_info")  # type: ignore[return-value]

    def state(self) -> DomainState:
        """The current state."""
        return self._op("domain_get_state")[0]  # type: ignore[index,no-any-return]

    def is_active(self) -> bool:
        """True when the domain is running, blocked, paused or shutting down."""
        return self.state() not in (DomainState.SHUTOFF, DomainState.NOSTATE)

    def is_persistent(self) -> bool:
        """True when the domain is defined (survives being stopped)."""
        return self._op("domain_is_persistent")  # type: ignore[return-value]

    def max_memory(self) -> int:
        """Maximum memory, KiB."""
        return self._op("domain_get_max_memory")  # type: ignore[return-value]

    def vcpus(self) -> list[VcpuInfo]:
        """Per vCPU: number, state, CPU time, current host CPU, affinity.
        Raises OperationInvalidError on an inactive domain."""
        return self._op("domain_get_vcpus")  # type: ignore[return-value]

    def console_path(self) -> str:
        """The path of the running domain's serial console (a pty), for
        ``virtkit console``; OperationInvalidError when it has none."""
        return self._op("domain_get_console_path")  # type: ignore[return-value]

    def xml_desc(self, inactive: bool = False) -> str:
        """The domain's XML: live, or with ``inactive`` the definition the next start uses."""
        from virtkit.xml.domain import format_domain

        return format_domain(self._op("domain_get_config", bool(inactive)))  # type: ignore[arg-type]

    @property
    def autostart(self) -> bool:
        """Whether the domain starts with the host; assign to change it."""
        return self.get_autostart()

    @autostart.setter
    def autostart(self, value: bool) -> None:
        self.set_autostart(value)

    def get_autostart(self) -> bool:
        """Whether the domain starts with the host."""
        return self._op("domain_get_autostart")  # type: ignore[return-value]

    def set_autostart(self, autostart: bool) -> None:
        """Mark the (defined) domain to start, or not, with the host."""
        self._op("domain_set_autostart", bool(autostart))

    # --- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start a defined, shut-off domain (libvirt's ``virDomainCreate``)."""
        self._ref = self._op("domain_start")  # type: ignore[assignment]

    create = start

    def suspend(self) -> None:
        """Pause a running domain."""
        self._op("domain_suspend")

    def resume(self) -> None:
        """Resume a paused domain."""
        self._op("domain_resume")

    def shutdown(self) -> None:
        """Ask the guest to power off (it may take time or be ignored)."""
        self._op("domain_shutdown")

    def reboot(self) -> None:
        """Ask the guest to reboot."""
        self._op("domain_reboot")

    def destroy(self) -> None:
        """Stop the domain at once. A transient domain disappears."""
        self._op("domain_destroy")

    def undefine(self) -> None:
        """Forget the domain's definition; a running domain goes on as transient."""
        self._op("domain_undefine")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save memory and device state to ``path``; the domain stops.
        Bring it back with :meth:`Connection.restore_domain`."""
        self._op("domain_save", self._conn._path_arg(path))

    def core_dump(self, path: str | os.PathLike[str]) -> None:
        """Write the guest's memory to ``path``; the domain keeps its state."""
        self._op("domain_core_dump", self._conn._path_arg(path))

    # --- resources -------------------------------------------------------------------------

    def set_max_memory(self, kib: int) -> None:
        """Set the maximum memory, KiB."""
        self._op("domain_set_max_memory", self._positive("memory", kib))

    def set_memory(self, kib: int) -> None:
        """Set the current memory, KiB; it may not exceed the maximum."""
        kib = self._positive("memory", kib)
        if self._conn._state_checks:
            maximum = self.max_memory()
            if kib > maximum:
                raise self._conn._fail(InvalidArgumentError(
                    f"cannot set memory of domain '{self.name}' to {kib} KiB: "
                    f"above its maximum of {maximum} KiB"))
        self._op("domain_set_memory", kib)

    def set_vcpus(self, count: int) -> None:
        """Set the number of vCPUs."""
        self._op("domain_set_vcpus", self._positive("vCPU count", count))

    def pin_vcpu(self, vcpu: int, cpumap: str | Iterable[bool] | Iterable[int]) -> None:
        """Restrict vCPU ``vcpu`` to some host CPUs.

        ``cpumap`` is a CPU list (``"0-2,^1"``), a sequence of booleans (one per
        host CPU, as libvirt-python takes it) or a sequence of CPU numbers.
        """
        from virtkit.cpuset import cpumap_from

        if not isinstance(vcpu, int) or isinstance(vcpu, bool) or vcpu < 0:
            raise self._conn._fail(InvalidArgumentError(f"vCPU number must be >= 0, not {vcpu!r}"))
        try:
            ncpus = self._conn.get_node_info().cpus
            cpus = cpumap_from(cpumap, ncpus)
        except VirtError as e:
            raise self._conn._fail(e) from None
        self._op("domain_pin_vcpu", vcpu, cpus)

    def interface_addresses(self, source: InterfaceAddressSource | int = InterfaceAddressSource.LEASE
                            ) -> list[DomainInterface]:
        """The IP addresses of the running domain's interfaces (libvirt's
        ``virDomainInterfaceAddresses``, virsh's ``domifaddr``), by default from the
        DHCP leases of the networks they are on. Interfaces with no known address
        are left out. Raises OperationInvalidError when the domain is not running,
        InvalidArgumentError for an unknown source, NoSupportError for a source the
        driver cannot ask."""
        try:
            src = InterfaceAddressSource(source)
        except ValueError:
            raise self._conn._fail(InvalidArgumentError(
                f"unknown interface address source {source!r} (0 lease, 1 agent, 2 arp)")) from None
        return self._op("domain_interface_addresses", int(src))  # type: ignore[return-value]

    # --- devices -----------------------------------------------------------------------------

    def attach_device(self, xml: str) -> None:
        """Add the device described by ``xml`` (a ``<disk>``, ``<interface>``...)."""
        self._op("domain_attach_device", self._device(xml))

    def detach_device(self, xml: str) -> None:
        """Remove the device described by ``xml``."""
        self._op("domain_detach_device", self._device(xml))

    def _device(self, xml: str) -> object:
        from virtkit.xml.domain import parse_device

        self._conn._check_open_and_writable()
        try:
            return parse_device(self._conn._xml_arg(xml))
        except VirtError as e:
            raise self._conn._fail(e) from None

    def _positive(self, what: str, value: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self._conn._fail(InvalidArgumentError(f"{what} must be a positive integer, not {value!r}"))
        return value
