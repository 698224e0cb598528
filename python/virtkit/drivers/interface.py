"""The one driver contract.

Every hypervisor driver subclasses :class:`Driver` and overrides the
operations it implements; every other operation answers with a uniform
:class:`~virtkit.errors.NoSupportError` naming the driver and the operation
(libvirt's table of operations, with NULL entries meaning "not supported").

The public layer (:mod:`virtkit.connection`, :mod:`virtkit.domain`,
:mod:`virtkit.network`) checks arguments, read-only mode and object state
once, using the metadata recorded here by :func:`operation`, then dispatches.
Drivers therefore do not re-check public arguments or states (STYLE habit 4);
they see typed models, never raw XML (habit 2).

Objects are referred to by small frozen references (:class:`DomainRef`,
:class:`NetworkRef`); a driver finds its object by UUID.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, ClassVar, NamedTuple, TypeVar

from virtkit.errors import NoSupportError

if TYPE_CHECKING:
    from virtkit.connection import NodeInfo
    from virtkit.domain import DomainInfo, DomainInterface, DomainState, VcpuInfo
    from virtkit.uri import URI
    from virtkit.xml.capabilities import Capabilities
    from virtkit.xml.domain import DomainConfig, Device
    from virtkit.network import DHCPLease
    from virtkit.xml.network import NetworkConfig

__all__ = [
    "Driver",
    "DomainRef",
    "NetworkRef",
    "Needs",
    "OperationSpec",
    "OPERATIONS",
    "operation",
]


class DomainRef(NamedTuple):
    """A domain as a driver reports it: name, 16-byte UUID, id (-1 when inactive)."""

    name: str
    uuid: bytes
    id: int


class NetworkRef(NamedTuple):
    """A network as a driver reports it: name and 16-byte UUID."""

    name: str
    uuid: bytes


class Needs(Enum):
    """The state a domain or network must be in for an operation."""

    ANY = "any"
    #: Running, blocked or paused (has an id).
    ACTIVE = "active"
    #: Shut off (no id).
    INACTIVE = "inactive"
    #: Running or blocked (not paused).
    RUNNING = "running"
    PAUSED = "paused"
    #: Defined (persistent), whatever its state.
    PERSISTENT = "persistent"


@dataclass(frozen=True)
class OperationSpec:
    """What the public layer needs to know about an operation."""

    name: str
    #: Refused on read-only connections.
    mutating: bool
    #: ``connection``, ``domain`` or ``network``: what its first argument is.
    target: str
    #: Required state of the domain/network (checked by the public layer).
    needs: Needs = Needs.ANY


#: Every operation of the contract, by name.
OPERATIONS: dict[str, OperationSpec] = {}

F = TypeVar("F", bound=Callable[..., object])


def operation(*, mutating: bool = False, needs: Needs = Needs.ANY) -> Callable[[F], F]:
    """Declare a contract operation; its base implementation raises NO_SUPPORT."""

    def declare(fn: F) -> F:
        name = fn.__name__
        target = ("domain" if name.startswith("domain_") else
                  "network" if name.startswith("network_") else "connection")
        OPERATIONS[name] = OperationSpec(name, mutating, target, needs)

        def unsupported(self: Driver, *args: object, **kwargs: object) -> object:
            raise NoSupportError(
                f"this function is not supported by the connection driver: "
                f"{self.name} driver does not implement {name}")

        # Name, docstring and (through __wrapped__) the signature of the declaration.
        functools.update_wrapper(unsupported, fn)
        unsupported.__virtkit_operation__ = True  # type: ignore[attr-defined]
        return unsupported  # type: ignore[return-value]

    return declare


class Driver:
    """Base class of every driver; see the module docstring.

    A driver instance is one open connection. ``open`` is a classmethod
    that receives the parsed URI and the read-only flag.

    Serving from a daemon (``virtkitd``): a daemon backend is a driver
    instance shared by every client of the daemon, called from the daemon's
    event-loop thread for its :attr:`fast_operations` and from worker threads
    for everything else. Such a driver therefore serializes per object: two
    mutating operations on the same domain (or network) never interleave,
    while operations on different objects may run concurrently (e.g. a lock
    per domain, plus a short lock around the tables that name them). An
    operation that waits (a guest booting, a monitor reply) must not be in
    :attr:`fast_operations`.
    """

    #: Short name used in messages ("test", "QEMU", "Xen", "remote").
    name: ClassVar[str] = "abstract"
    #: URI driver names this driver accepts (``test``, ``qemu``...).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: True when the driver checks object states itself (a remote driver,
    #: whose server runs the public layer): the client then skips the
    #: state look-up before each call.
    checks_state_itself: ClassVar[bool] = False
    #: Optional: operations quick enough to run on a daemon's event-loop
    #: thread (in-memory look-ups, lists, info, state: no I/O, no waiting,
    #: at most a short lock). ``virtkitd`` runs these inline and every other
    #: operation in a worker thread, so a slow operation never stalls other
    #: clients. Empty (the default) means every operation runs in a thread.
    fast_operations: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, uri: URI, read_only: bool) -> None:
        self.uri = uri
        self.read_only = read_only

    @classmethod
    def open(cls, uri: URI, read_only: bool) -> Driver:
        """Open a connection for ``uri``; raise ConnectionFailedError when impossible."""
        return cls(uri, read_only)

    def close(self) -> None:
        """Release the connection's resources. Called once."""

    @classmethod
    def supported_operations(cls) -> frozenset[str]:
        """Names of the contract operations this driver implements."""
        return frozenset(
            name for name in OPERATIONS
            if not getattr(getattr(cls, name), "__virtkit_operation__", False)
        )

    # --- connection and node -------------------------------------------------------

    @operation()
    def get_type(self) -> str:
        """The hypervisor's name (``Test``, ``QEMU``, ``Xen``)."""
        raise AssertionError

    @operation()
    def get_version(self) -> int:
        """The hypervisor's version as major * 1,000,000 + minor * 1,000 + release."""
        raise AssertionError

    @operation()
    def get_hostname(self) -> str:
        """The host's name."""
        raise AssertionError

    @operation()
    def get_max_vcpus(self, type: str | None) -> int:
        """The most vCPUs a guest of ``type`` may have."""
        raise AssertionError

    @operation()
    def get_node_info(self) -> NodeInfo:
        """CPU model, memory, CPUs, MHz, NUMA nodes, sockets, cores, threads."""
        raise AssertionError

    @operation()
    def get_capabilities(self) -> Capabilities:
        """What the host and hypervisor can run."""
        raise AssertionError

    # --- domains: listing, look-up, creation ----------------------------------------

    @operation()
    def list_domain_ids(self) -> list[int]:
        """Ids of the active domains."""
        raise AssertionError

    @operation()
    def list_defined_domain_names(self) -> list[str]:
        """Names of the defined, inactive domains."""
        raise AssertionError

    @operation()
    def list_all_domains(self) -> list[DomainRef]:
        """Every domain, active and inactive."""
        raise AssertionError

    @operation()
    def lookup_domain_by_id(self, id: int) -> DomainRef:
        """Raise NoDomainError when absent."""
        raise AssertionError

    @operation()
    def lookup_domain_by_name(self, name: str) -> DomainRef:
        """Raise NoDomainError when absent."""
        raise AssertionError

    @operation()
    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        """Raise NoDomainError when absent."""
        raise AssertionError

    @operation(mutating=True)
    def create_domain(self, config: DomainConfig) -> DomainRef:
        """Create and start a transient domain."""
        raise AssertionError

    @operation(mutating=True)
    def define_domain(self, config: DomainConfig) -> DomainRef:
        """Define (or redefine) a persistent domain."""
        raise AssertionError

    @operation(mutating=True)
    def restore_domain(self, path: str) -> DomainRef:
        """Bring back a domain saved to ``path``, running."""
        raise AssertionError

    # --- one domain ------------------------------------------------------------------

    @operation()
    def domain_get_state(self, dom: DomainRef) -> tuple[DomainState, int]:
        """State and reason code."""
        raise AssertionError

    @operation()
    def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        """State, max memory, memory (KiB), vCPUs, CPU time (ns)."""
        raise AssertionError

    @operation()
    def domain_get_os_type(self, dom: DomainRef) -> str:
        """``linux``, ``hvm``..."""
        raise AssertionError

    @operation()
    def domain_get_max_memory(self, dom: DomainRef) -> int:
        """KiB."""
        raise AssertionError

    @operation(mutating=True)
    def domain_set_max_memory(self, dom: DomainRef, kib: int) -> None:
        """Change the maximum memory (KiB)."""
        raise AssertionError

    @operation(mutating=True)
    def domain_set_memory(self, dom: DomainRef, kib: int) -> None:
        """Change the current memory (KiB); the public layer has checked it against the maximum."""
        raise AssertionError

    @operation(mutating=True)
    def domain_set_vcpus(self, dom: DomainRef, count: int) -> None:
        """Change the number of vCPUs."""
        raise AssertionError

    @operation(mutating=True)
    def domain_pin_vcpu(self, dom: DomainRef, vcpu: int, cpumap: tuple[bool, ...]) -> None:
        """Restrict vCPU ``vcpu`` to the host CPUs set in ``cpumap``."""
        raise AssertionError

    @operation(needs=Needs.ACTIVE)
    def domain_get_vcpus(self, dom: DomainRef) -> list[VcpuInfo]:
        """Per vCPU: number, state, CPU time, current CPU, affinity."""
        raise AssertionError

    @operation()
    def domain_get_config(self, dom: DomainRef, inactive: bool) -> DomainConfig:
        """The domain's configuration: live (with id and runtime details) or, with
        ``inactive``, the one the next start uses."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.INACTIVE)
    def domain_start(self, dom: DomainRef) -> DomainRef:
        """Start a defined domain; returns the reference with its new id."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.RUNNING)
    def domain_suspend(self, dom: DomainRef) -> None:
        """Pause all vCPUs."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.PAUSED)
    def domain_resume(self, dom: DomainRef) -> None:
        """Resume a paused domain."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.RUNNING)
    def domain_shutdown(self, dom: DomainRef) -> None:
        """Ask the guest to power off."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.RUNNING)
    def domain_reboot(self, dom: DomainRef) -> None:
        """Ask the guest to reboot."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.ACTIVE)
    def domain_destroy(self, dom: DomainRef) -> None:
        """Stop the domain at once."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.PERSISTENT)
    def domain_undefine(self, dom: DomainRef) -> None:
        """Forget a defined domain (a running one becomes transient)."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.ACTIVE)
    def domain_save(self, dom: DomainRef, path: str) -> None:
        """Save memory and device state to ``path`` and stop the domain."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.ACTIVE)
    def domain_core_dump(self, dom: DomainRef, path: str) -> None:
        """Write the guest's memory to ``path``."""
        raise AssertionError

    @operation()
    def domain_get_autostart(self, dom: DomainRef) -> bool:
        """Whether the domain starts with the host/daemon."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.PERSISTENT)
    def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        """Mark or unmark the domain for autostart."""
        raise AssertionError

    @operation()
    def domain_is_persistent(self, dom: DomainRef) -> bool:
        """Whether the domain is defined (has a saved configuration)."""
        raise AssertionError

    @operation(needs=Needs.ACTIVE)
    def domain_get_console_path(self, dom: DomainRef) -> str:
        """Path of the running domain's serial console (a pty); OperationInvalidError
        when the domain has none."""
        raise AssertionError

    @operation(mutating=True)
    def domain_attach_device(self, dom: DomainRef, device: Device) -> None:
        """Add a device (live on an active domain, to the config of an inactive one)."""
        raise AssertionError

    @operation(mutating=True)
    def domain_detach_device(self, dom: DomainRef, device: Device) -> None:
        """Remove a device matching ``device``."""
        raise AssertionError

    @operation(needs=Needs.ACTIVE)
    def domain_interface_addresses(self, dom: DomainRef, source: int) -> list[DomainInterface]:
        """The IP addresses of the running domain's interfaces as ``source`` knows them
        (:class:`~virtkit.domain.InterfaceAddressSource`; ``LEASE``: the DHCP leases of
        the networks they are on). Interfaces ``source`` knows no address of are left
        out; an unsupported source raises NoSupportError."""
        raise AssertionError

    # --- networks --------------------------------------------------------------------

    @operation()
    def list_network_names(self) -> list[str]:
        """Names of the active networks."""
        raise AssertionError

    @operation()
    def list_defined_network_names(self) -> list[str]:
        """Names of the defined, inactive networks."""
        raise AssertionError

    @operation()
    def lookup_network_by_name(self, name: str) -> NetworkRef:
        """Raise NoNetworkError when absent."""
        raise AssertionError

    @operation()
    def lookup_network_by_uuid(self, uuid: bytes) -> NetworkRef:
        """Raise NoNetworkError when absent."""
        raise AssertionError

    @operation(mutating=True)
    def create_network(self, config: NetworkConfig) -> NetworkRef:
        """Create and start a transient network."""
        raise AssertionError

    @operation(mutating=True)
    def define_network(self, config: NetworkConfig) -> NetworkRef:
        """Define (or redefine) a persistent network."""
        raise AssertionError

    @operation()
    def network_is_active(self, net: NetworkRef) -> bool:
        """Whether the network is up."""
        raise AssertionError

    @operation()
    def network_is_persistent(self, net: NetworkRef) -> bool:
        """Whether the network is defined."""
        raise AssertionError

    @operation()
    def network_get_config(self, net: NetworkRef, inactive: bool) -> NetworkConfig:
        """Live configuration (with the bridge actually used) or the defined one."""
        raise AssertionError

    @operation()
    def network_get_bridge_name(self, net: NetworkRef) -> str:
        """The bridge device of the network."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.INACTIVE)
    def network_start(self, net: NetworkRef) -> None:
        """Bring a defined network up."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.ACTIVE)
    def network_destroy(self, net: NetworkRef) -> None:
        """Take the network down."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.PERSISTENT)
    def network_undefine(self, net: NetworkRef) -> None:
        """Forget a defined network (an active one stays up, transient)."""
        raise AssertionError

    @operation()
    def network_get_autostart(self, net: NetworkRef) -> bool:
        """Whether the network starts with the host/daemon."""
        raise AssertionError

    @operation(mutating=True, needs=Needs.PERSISTENT)
    def network_set_autostart(self, net: NetworkRef, autostart: bool) -> None:
        """Mark or unmark the network for autostart."""
        raise AssertionError

    @operation(needs=Needs.ACTIVE)
    def network_get_dhcp_leases(self, net: NetworkRef, mac: str | None) -> list[DHCPLease]:
        """The leases the network's DHCP server has handed out and that have not
        expired, only those of ``mac`` (lower case) when given."""
        raise AssertionError
