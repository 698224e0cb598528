"""Connections: the entry point of the public API.

``virtkit.open(uri)`` / ``virtkit.open_read_only(uri)`` return a
:class:`Connection`; through it you reach the node, domains and networks.
A connection is a context manager: leaving the ``with`` block closes it.

The public layer checks arguments, read-only mode and object state once,
here, then dispatches to the driver (see :mod:`virtkit.drivers.interface`).
Every error it raises is a :class:`~virtkit.errors.VirtError`, recorded as
the last error (per thread and per connection) and passed to the error
handler, if any.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from virtkit import errors
from virtkit.drivers.interface import OPERATIONS, DomainRef, Needs, NetworkRef
from virtkit.errors import (
    InvalidArgumentError,
    InvalidConnectionError,
    NoDomainError,
    NoSupportError,
    OperationDeniedError,
    OperationInvalidError,
    VirtError,
)
from virtkit.uri import URI, default_uri, parse_uri

if TYPE_CHECKING:
    from virtkit.domain import Domain, DomainStats
    from virtkit.drivers.interface import Driver
    from virtkit.network import Network

__all__ = ["Connection", "NodeInfo", "open", "open_read_only", "LIB_VERSION"]

#: This library's version in libvirt's numbering (major * 1,000,000 + minor * 1,000 + micro).
LIB_VERSION = 1_000  # 0.1.0


class NodeInfo(NamedTuple):
    """The node (host): as libvirt's ``virNodeInfo``."""

    #: CPU model, e.g. ``x86_64`` or ``i686``.
    model: str
    #: Memory, KiB.
    memory: int
    #: Active CPUs.
    cpus: int
    #: Expected CPU frequency, MHz.
    mhz: int
    #: NUMA cells.
    nodes: int
    #: CPU sockets per NUMA cell.
    sockets: int
    #: Cores per socket.
    cores: int
    #: Threads per core.
    threads: int


def open(uri: str | None = None) -> Connection:  # noqa: A001 - the libvirt name
    """Open a read-write connection to ``uri`` (see :mod:`virtkit.uri`).

    With no URI: ``VIRTKIT_DEFAULT_URI``, then ``LIBVIRT_DEFAULT_URI``, then
    the best local driver (``test:///default`` for now). Raises
    InvalidURIError for a malformed URI and ConnectionFailedError when no
    driver handles it or it cannot be opened.
    """
    return _open(uri, read_only=False)


def open_read_only(uri: str | None = None) -> Connection:
    """Open a read-only connection: every mutating call raises OperationDeniedError."""
    return _open(uri, read_only=True)


def _open(uri: str | None, read_only: bool) -> Connection:
    from virtkit.drivers import driver_class

    try:
        parsed = parse_uri(uri if uri is not None else default_uri())
        driver = driver_class(parsed).open(parsed, read_only)
    except VirtError as e:
        errors.report(e)
        raise
    return Connection(driver, parsed, read_only)


_STATE_NAMES = {0: "no state", 1: "running", 2: "blocked", 3: "paused", 4: "shutting down",
                5: "shut off", 6: "crashed", 7: "suspended by power management"}


class Connection:
    """An open connection to one hypervisor through one driver."""

    __slots__ = ("_driver", "_uri", "_read_only", "_closed", "_last_error", "_handler",
                 "_state_checks", "__weakref__")

    def __init__(self, driver: Driver, uri: URI, read_only: bool) -> None:
        self._driver = driver
        self._uri = uri
        self._read_only = read_only
        self._closed = False
        self._last_error: VirtError | None = None
        self._handler: errors.ErrorHandler | None = None
        self._state_checks = not driver.checks_state_itself

    # --- plumbing ------------------------------------------------------------------

    def _fail(self, error: VirtError) -> VirtError:
        """Record ``error`` and hand it back for raising."""
        self._last_error = error
        errors.report(error, self._handler)
        return error

    def _call(self, op: str, *args: Any) -> Any:
        """Dispatch a connection-level operation after the read-only check."""
        if self._closed:
            raise self._fail(InvalidConnectionError("the connection is closed"))
        if self._read_only and OPERATIONS[op].mutating:
            raise self._fail(OperationDeniedError(
                f"operation forbidden: read-only connection refuses {op}"))
        try:
            return getattr(self._driver, op)(*args)
        except VirtError as e:
            raise self._fail(e) from None

    def _call_on(self, op: str, obj: DomainRef | NetworkRef, *args: Any) -> Any:
        """Dispatch a domain or network operation after read-only and state checks."""
        if self._closed:
            raise self._fail(InvalidConnectionError("the connection is closed"))
        spec = OPERATIONS[op]
        if self._read_only and spec.mutating:
            raise self._fail(OperationDeniedError(
                f"operation forbidden: read-only connection refuses {op}"))
        driver = self._driver
        try:
            if spec.needs is not Needs.ANY and self._state_checks:
                self._check_state(spec.needs, op, obj)
            return getattr(driver, op)(obj, *args)
        except VirtError as e:
            raise self._fail(e) from None

    def _check_state(self, needs: Needs, op: str, obj: DomainRef | NetworkRef) -> None:
        driver = self._driver
        what = "domain" if isinstance(obj, DomainRef) else "network"
        if needs is Needs.PERSISTENT:
            persistent = (driver.domain_is_persistent(obj) if isinstance(obj, DomainRef)
                          else driver.network_is_persistent(obj))
            if not persistent:
                raise OperationInvalidError(
                    f"{what} '{obj.name}' is transient (not defined): cannot {_verb(op)}")
            return
        if isinstance(obj, NetworkRef):
            active = driver.network_is_active(obj)
            if needs is Needs.ACTIVE and not active:
                raise OperationInvalidError(f"network '{obj.name}' is not active")
            if needs is Needs.INACTIVE and active:
                raise OperationInvalidError(f"network '{obj.name}' is already active")
            return
        state = int(driver.domain_get_state(obj)[0])
        name = _STATE_NAMES.get(state, str(state))
        active = state not in (5, 0)  # shut off, no state (inactive)
        if needs is Needs.ACTIVE and not active:
            raise OperationInvalidError(f"domain '{obj.name}' is not running (state: {name})")
        if needs is Needs.INACTIVE and active:
            raise OperationInvalidError(f"domain '{obj.name}' is already active (state: {name})")
        if needs is Needs.RUNNING and state not in (1, 2):
            raise OperationInvalidError(
                f"domain '{obj.name}' is not running (state: {name}): cannot {_verb(op)}")
        if needs is Needs.PAUSED and state != 3:
            raise OperationInvalidError(f"domain '{obj.name}' is not paused (state: {name})")

    def _domain(self, ref: DomainRef) -> Domain:
        from virtkit.domain import Domain

        return Domain(self, ref)

    def _network(self, ref: NetworkRef) -> Network:
        from virtkit.network import Network

        return Network(self, ref)

    # --- the connection itself ---------------------------------------------------------

    @property
    def uri(self) -> str:
        """The URI this connection was opened with."""
        return self._uri.raw

    @property
    def read_only(self) -> bool:
        """True for a connection opened with :func:`open_read_only`."""
        return self._read_only

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def driver_name(self) -> str:
        """The name of the driver behind this connection."""
        return self._driver.name

    def close(self) -> None:
        """Close the connection (idempotent). Objects obtained from it become unusable."""
        if not self._closed:
            self._closed = True
            self._driver.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("read-only" if self._read_only else "read-write")
        return f"<virtkit.Connection {self._uri.raw!r} {state}>"

    def get_last_error(self) -> VirtError | None:
        """The last error raised on this connection, or None."""
        return self._last_error

    def reset_last_error(self) -> None:
        """Forget this connection's last error."""
        self._last_error = None

    def register_error_handler(self, handler: Callable[[VirtError], None] | None) -> None:
        """Call ``handler(error)`` for each error on this connection (None removes it)."""
        self._handler = handler

    # --- hypervisor and node --------------------------------------------------------------

    def get_type(self) -> str:
        """The hypervisor's name: ``Test``, ``QEMU``, ``Xen``."""
        return self._call("get_type")  # type: ignore[no-any-return]

    def get_version(self) -> int:
        """The hypervisor's version, major * 1,000,000 + minor * 1,000 + release."""
        return self._call("get_version")  # type: ignore[no-any-return]

    def get_lib_version(self) -> int:
        """virtkit's version in the same numbering."""
        return LIB_VERSION

    def get_hostname(self) -> str:
        """The host's name."""
        return self._call("get_hostname")  # type: ignore[no-any-return]

    def get_max_vcpus(self, type: str | None = None) -> int:
        """The most vCPUs a guest of domain type ``type`` may have."""
        return self._call("get_max_vcpus", type)  # type: ignore[no-any-return]

    def get_node_info(self) -> NodeInfo:
        """The node's CPU model, memory (KiB), CPUs, MHz, NUMA cells, sockets, cores, threads."""
        return self._call("get_node_info")  # type: ignore[no-any-return]

    def get_capabilities(self) -> str:
        """The capabilities XML document (host CPU and the guests the hypervisor can run)."""
        from virtkit.xml.capabilities import format_capabilities

        return format_capabilities(self._call("get_capabilities"))

    # --- domains -------------------------------------------------------------------------

    def list_domain_ids(self) -> list[int]:
        """Ids of the active domains."""
        return self._call("list_domain_ids")  # type: ignore[no-any-return]

    def num_of_domains(self) -> int:
        """Number of active domains."""
        return len(self._call("list_domain_ids"))

    def list_defined_domains(self) -> list[str]:
        """Names of the defined domains that are not running."""
        return self._call("list_defined_domain_names")  # type: ignore[no-any-return]

    def num_of_defined_domains(self) -> int:
        """Number of defined domains that are not running."""
        return len(self._call("list_defined_domain_names"))

    def list_all_domains(self) -> list[Domain]:
        """Every domain, active ones first (by id), then inactive ones (by name)."""
        from virtkit.domain import Domain

        refs = self._call("list_all_domains")
        return [Domain(self, ref) for ref in refs]

    def all_domain_stats(self) -> list[DomainStats]:
        """Every domain with its info and vCPUs, in :meth:`list_all_domains`'
        order (libvirt's ``virConnectGetAllDomainStats`` for the state, CPU,
        memory and vCPU groups), taken together: drivers that can do it in one
        pass do (Xen: one getdomaininfolist plus the vCPUs by hypercall; QEMU:
        one read of ``/proc`` for every process); for the others it is
        :meth:`list_all_domains`, then each domain's ``info()`` and, when it
        is running, ``vcpus()`` (a domain that goes away meanwhile is left
        out). The vCPU list of a domain that is not running is empty."""
        from virtkit.domain import Domain, DomainState, DomainStats

        if self._closed:
            raise self._fail(InvalidConnectionError("the connection is closed"))
        driver = self._driver
        batch = getattr(driver, "all_domain_stats", None)
        try:
            if batch is not None:
                try:
                    stats = batch()
                except NoSupportError:
                    pass  # not for this connection (e.g. Xen through xend): one by one
                else:
                    return [DomainStats(Domain(self, ref), info, vcpus)
                            for ref, (info, vcpus) in stats.items()]
            out = []
            for ref in driver.list_all_domains():
                try:
                    info = driver.domain_get_info(ref)
                    vcpus = [] if info.state in (DomainState.SHUTOFF, DomainState.NOSTATE) \
                        else driver.domain_get_vcpus(ref)
                except NoDomainError:
                    continue
                except OperationInvalidError:
                    vcpus = []  # it stopped between the two reads
                out.append(DomainStats(Domain(self, ref), info, vcpus))
            return out
        except VirtError as e:
            raise self._fail(e) from None

    def lookup_domain_by_id(self, id: int) -> Domain:
        """The active domain with this id; NoDomainError when there is none."""
        if not isinstance(id, int) or isinstance(id, bool) or id < 0:
            raise self._fail(InvalidArgumentError(f"domain id must be a non-negative integer, not {id!r}"))
        return self._domain(self._call("lookup_domain_by_id", id))

    def lookup_domain_by_name(self, name: str) -> Domain:
        """The domain with this name; NoDomainError when there is none."""
        if not isinstance(name, str) or not name:
            raise self._fail(InvalidArgumentError(f"domain name must be a non-empty string, not {name!r}"))
        return self._domain(self._call("lookup_domain_by_name", name))

    def lookup_domain_by_uuid(self, uuid: bytes | str) -> Domain:
        """The domain with this UUID (16 raw bytes or any accepted spelling)."""
        return self._domain(self._call("lookup_domain_by_uuid", self._uuid_arg(uuid)))

    def lookup_domain_by_uuid_string(self, uuid: str) -> Domain:
        """The domain with this UUID string (any spelling libvirt accepted)."""
        if not isinstance(uuid, str):
            raise self._fail(InvalidArgumentError(f"UUID string expected, not {type(uuid).__name__}"))
        return self.lookup_domain_by_uuid(uuid)

    def lookup_domain(self, ident: str | int) -> Domain:
        """Find a domain as virsh does: by id (a number), then UUID, then name."""
        if isinstance(ident, int) and not isinstance(ident, bool):
            return self.lookup_domain_by_id(ident)
        if not isinstance(ident, str) or not ident:
            raise self._fail(InvalidArgumentError(f"domain name, id or UUID expected, not {ident!r}"))
        if ident.isdigit():
            try:
                return self._domain(self._call("lookup_domain_by_id", int(ident)))
            except NoDomainError:
                pass
        if len(ident) >= 32:
            from virtkit.uuid import parse_uuid

            try:
                raw = parse_uuid(ident)
            except VirtError:
                pass
            else:
                try:
                    return self._domain(self._call("lookup_domain_by_uuid", raw))
                except NoDomainError:
                    pass
        return self.lookup_domain_by_name(ident)

    def create_domain(self, xml: str) -> Domain:
        """Create and start a transient domain from XML (libvirt's createLinux/createXML)."""
        return self._domain(self._call("create_domain", self._domain_xml(xml)))

    def define_domain(self, xml: str) -> Domain:
        """Define a persistent domain from XML (or update an existing definition)."""
        return self._domain(self._call("define_domain", self._domain_xml(xml)))

    def restore_domain(self, path: str | os.PathLike[str]) -> Domain:
        """Restore a domain saved with :meth:`Domain.save`; it comes back running."""
        return self._domain(self._call("restore_domain", self._path_arg(path)))

    # --- networks ------------------------------------------------------------------------

    def list_networks(self) -> list[str]:
        """Names of the active networks."""
        return self._call("list_network_names")  # type: ignore[no-any-return]

    def num_of_networks(self) -> int:
        """Number of active networks."""
        return len(self._call("list_network_names"))

    def list_defined_networks(self) -> list[str]:
        """Names of the defined networks that are not active."""
        return self._call("list_defined_network_names")  # type: ignore[no-any-return]

    def num_of_defined_networks(self) -> int:
        """Number of defined networks that are not active."""
        return len(self._call("list_defined_network_names"))

    def lookup_network_by_name(self, name: str) -> Network:
        """The network with this name; NoNetworkError when there is none."""
        if not isinstance(name, str) or not name:
            raise self._fail(InvalidArgumentError(f"network name must be a non-empty string, not {name!r}"))
        return self._network(self._call("lookup_network_by_name", name))

    def lookup_network_by_uuid(self, uuid: bytes | str) -> Network:
        """The network with this UUID (16 raw bytes or any accepted spelling)."""
        return self._network(self._call("lookup_network_by_uuid", self._uuid_arg(uuid)))

    def lookup_network_by_uuid_string(self, uuid: str) -> Network:
        """The network with this UUID string."""
        if not isinstance(uuid, str):
            raise self._fail(InvalidArgumentError(f"UUID string expected, not {type(uuid).__name__}"))
        return self.lookup_network_by_uuid(uuid)

    def lookup_network(self, ident: str) -> Network:
        """Find a network as virsh does: by UUID, then by name."""
        if isinstance(ident, str) and len(ident) >= 32:
            from virtkit.uuid import parse_uuid

            try:
                raw = parse_uuid(ident)
            except VirtError:
                pass
            else:
                try:
                    return self._network(self._call("lookup_network_by_uuid", raw))
                except VirtError:
                    pass
        return self.lookup_network_by_name(ident)

    def create_network(self, xml: str) -> Network:
        """Create and start a transient network from XML."""
        return self._network(self._call("create_network", self._network_xml(xml)))

    def define_network(self, xml: str) -> Network:
        """Define a persistent network from XML (or update an existing definition)."""
        return self._network(self._call("define_network", self._network_xml(xml)))

    # --- argument conversion (validated once, here) -------------------------------------------

    def _uuid_arg(self, uuid: bytes | str) -> bytes:
        from virtkit.uuid import parse_uuid

        try:
            if isinstance(uuid, (bytes, bytearray, memoryview)):
                raw = bytes(uuid)
                if len(raw) != 16:
                    raise errors.InvalidUUIDError(
                        f"invalid UUID: raw form must be exactly 16 bytes, got {len(raw)}")
                return raw
            if isinstance(uuid, str):
                return parse_uuid(uuid)
            raise InvalidArgumentError(f"UUID must be bytes or str, not {type(uuid).__name__}")
        except VirtError as e:
            raise self._fail(e) from None

    def _path_arg(self, path: str | os.PathLike[str]) -> str:
        try:
            text = os.fspath(path)
        except TypeError:
            raise self._fail(InvalidArgumentError(f"a file path is expected, not {path!r}")) from None
        if not text:
            raise self._fail(InvalidArgumentError("empty file path"))
        return os.path.abspath(text)

    def _domain_xml(self, xml: str) -> Any:
        from virtkit.xml.domain import parse_domain

        self._check_open_and_writable()
        try:
            return parse_domain(self._xml_arg(xml))
        except VirtError as e:
            raise self._fail(e) from None

    def _network_xml(self, xml: str) -> Any:
        from virtkit.xml.network import parse_network

        self._check_open_and_writable()
        try:
            return parse_network(self._xml_arg(xml))
        except VirtError as e:
            raise self._fail(e) from None

    def _xml_arg(self, xml: str | bytes) -> str | bytes:
        if not isinstance(xml, (str, bytes)):
            raise InvalidArgumentError(f"an XML document is expected, not {type(xml).__name__}")
        return xml

    def _check_open_and_writable(self) -> None:
        if self._closed:
            raise self._fail(InvalidConnectionError("the connection is closed"))
        if self._read_only:
            raise self._fail(OperationDeniedError("operation forbidden: read-only connection"))


def _verb(op: str) -> str:
    return op.split("_", 1)[1].replace("_", " ") if "_" in op else op
