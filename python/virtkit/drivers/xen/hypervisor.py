"""The hypervisor backend of the Xen driver: hypercalls through privcmd.

:class:`HypervisorBackend` serves, straight from Xen (``virtkit._core.XenHypervisor``,
the Rust core in ``rust/src/hypercall/``), what libvirt 0.2.2's hypervisor
driver served: the reads and the fast operations on *running* domains — list,
info, state, pause, unpause, destroy, maximum memory, vCPU pinning and vCPU
info — plus the host's facts and Xen's version. One hypercall lists every
domain with its info (:meth:`HypervisorBackend.all_domain_info`, the polling
path); one reads or changes one domain; the GIL is released during each.

What Xen does not know is not served here: names (they live in xenstore),
configurations, inactive domains, consoles. Look-ups return a
:class:`~virtkit.drivers.interface.DomainRef`, which needs a name, so the
backend takes a ``names`` callable (domain id -> name, e.g. the xenstore
backend's read of ``/local/domain/ID/name``); without it, look-ups answer
NO_SUPPORT. Operations on a domain take its id from the reference and check
that Xen's domain with that id still has the reference's UUID (an id whose
domain went away is never taken for another). A reference without an id
(an inactive domain) gets NoDomainError: :meth:`serves` tells the driver
beforehand.

Errors: a domain Xen does not have is NoDomainError; any other refusal is
:class:`~virtkit.errors.XenCallError` (``errno`` is Xen's); opening on a host
that is not a Xen dom0 is VirtSystemError (ENOENT, or EACCES without root),
and on a Xen whose interface versions are not in the core's table
XenCallError with errno EACCES — the driver then goes on without this
backend (xen-protocols.md section 3; rust/src/hypercall/versions.rs).
"""

from __future__ import annotations

import errno as errno_codes
import os
import select
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from virtkit._core import XenDomainInfo, XenHypervisor, XenVcpuInfo
from virtkit.domain import DomainInfo, DomainState, VcpuInfo, VcpuState
from virtkit.drivers.interface import DomainRef
from virtkit.drivers.xen.backend import XenBackend
from virtkit.errors import (
    ErrorDomain,
    InvalidArgumentError,
    NoDomainError,
    NoSupportError,
    XenCallError,
)
from virtkit.uuid import format_uuid

if TYPE_CHECKING:
    from virtkit.connection import NodeInfo
    from virtkit.drivers.xen.xenstore import XenstoreClient

__all__ = ["HypervisorBackend", "DomainSnapshot", "NameSource", "XenstoreNames",
           "domain_state", "open_hypervisor"]

#: Domain id -> name (None when the id has no name, e.g. a domain going away).
#: A source may also have ``many(ids) -> list[str | None]`` (one round for a list).
NameSource = Callable[[int], "str | None"]


class XenstoreNames:
    """Domain names from xenstore (``/local/domain/ID/name``) over one connection
    of ours, kept between calls while nothing under ``/local/domain`` changes.

    A watch on ``/local/domain`` tells of every change there (a rename, a
    domain built or torn down); before answering, the events that xenstored
    has sent are taken off the socket (a zero-timeout ``select``, no request)
    and any of them drops the kept names. So a listing costs no xenstore round
    trip while the set of domains stays the same (a round is milliseconds in
    a dom0, a hypercall a tenth of one), and one round (pipelined reads of the
    names not kept) otherwise. ``many`` reads a list; calling the object reads one.
    A listing made while xenstored is still sending the event of a change that
    another client has just made (microseconds) may show the name from before.
    The socket polled is the client's (:meth:`XenstoreClient.fileno`); with a
    client that has none, nothing is kept.
    """

    TOKEN = "virtkit-hypervisor-names"

    def __init__(self, client: XenstoreClient) -> None:
        self.client = client
        self._names: dict[int, str] = {}
        self._lock = threading.Lock()
        # Without a socket to poll (another client class), nothing is kept.
        fileno = getattr(client, "fileno", None)
        self._poll: select.poll | None = None
        if fileno is not None:
            self._poll = select.poll()
            self._poll.register(fileno(), select.POLLIN)
            client.watch("/local/domain", self.TOKEN)  # fires once at once: starts empty

    def __call__(self, domid: int) -> str | None:
        return self.many([domid])[0]

    def _changed(self) -> bool:
        """Whether xenstored told of a change under /local/domain since the last call."""
        poll = self._poll
        if poll is None:
            return True
        client = self.client
        changed = False
        # Frames on the socket (a request's reader takes them off otherwise)...
        while poll.poll(0):
            changed |= client.read_watch(timeout=1.0) is not None
        # ... and events that a reply's reader filed already.
        while client.pending_events():
            changed |= client.read_watch(timeout=0) is not None
        return changed

    def many(self, ids: list[int]) -> list[str | None]:
        with self._lock:
            names = self._names
            if self._changed():
                names.clear()
            missing = [i for i in ids if i not in names]
            if missing:
                values = self.client.read_many([f"/local/domain/{i}/name" for i in missing])
                for i, v in zip(missing, values):
                    if v is not None:  # a domain without a name yet is asked again
                        names[i] = v.decode("utf-8", "replace")
            return [names.get(i) for i in ids]

    def close(self) -> None:
        self.client.close()


def open_hypervisor() -> HypervisorBackend:
    """The driver's hook (``driver._open_hypervisor``): privcmd opened, Xen's
    interface versions detected, names from xenstore.

    Raises VirtSystemError when this is not a Xen dom0 or the caller is not
    root, XenCallError (errno EACCES) when Xen speaks no interface version of
    the core's table, ConnectionFailedError when xenstored does not answer;
    the driver then serves through xenstore and ``xl`` alone.
    """
    from virtkit.drivers.xen.xenstore import XenstoreClient

    hypervisor = XenHypervisor.open()
    try:
        names = XenstoreNames(XenstoreClient())
    except BaseException:
        hypervisor.close()
        raise
    return HypervisorBackend(hypervisor, names)


class DomainSnapshot(NamedTuple):
    """One running domain as a single getdomaininfolist call saw it."""

    id: int
    uuid: bytes
    info: DomainInfo
    #: An HVM or PVH guest (Xen's hvm_guest flag).
    hvm: bool


#: The core's state numbers (libvirt's) as DomainState, "no state" as running.
_STATES = tuple(DomainState.RUNNING if s == DomainState.NOSTATE else s for s in DomainState)


def domain_state(info: XenDomainInfo) -> DomainState:
    """libvirt's state for Xen's flags (xen-protocols.md 3.3): crashed, dying
    (shutting down), shut down (shut off until destroyed), paused, blocked,
    running. A runnable domain that is neither running nor blocked right now
    is reported as running (libvirt said "no state", which the public layer
    would take for inactive)."""
    state = info.state
    return _STATES[state] if 0 <= state < len(_STATES) else DomainState(state)


#: XEN_DOMINF_dying: the domain is being destroyed.
_DOMINF_DYING = 1 << 0


def _gone(info: XenDomainInfo) -> bool:
    """Whether a domain Xen still lists is on its way out: dying (also when it
    had crashed, which domain_state reports first) or shutting down."""
    return bool(info.flags & _DOMINF_DYING) or domain_state(info) == DomainState.SHUTDOWN


def _info(info: XenDomainInfo) -> DomainInfo:
    return DomainInfo(domain_state(info), info.max_memory_kib, info.memory_kib,
                      info.online_vcpus, info.cpu_time_ns)


class HypervisorBackend(XenBackend):
    """Running domains and the host, through hypercalls (see the module docstring)."""

    name = "hypervisor"
    #: Xen knows running domains only: the driver routes inactive ones past it.
    live_only: ClassVar[bool] = True

    def __init__(self, hypervisor: XenHypervisor, names: NameSource | None = None) -> None:
        self.hypervisor = hypervisor
        self.names = names

    @classmethod
    def open(cls, names: NameSource | None = None) -> HypervisorBackend:
        """Open privcmd and detect Xen's interface versions.

        Raises VirtSystemError when this is not a Xen dom0 (errno ENOENT) or
        the caller is not root (EACCES); XenCallError when Xen refuses every
        interface version virtkit knows (errno EACCES) or the probes fail.
        """
        return cls(XenHypervisor.open(), names)

    def close(self) -> None:
        self.hypervisor.close()
        close_names = getattr(self.names, "close", None)
        if close_names is not None:
            close_names()

    # --- plumbing -------------------------------------------------------------------

    @staticmethod
    def serves(dom: DomainRef) -> bool:
        """Whether this backend can answer for ``dom``: it is running (has an id)."""
        return dom.id >= 0

    @contextmanager
    def _about(self, dom: DomainRef | int) -> Iterator[None]:
        """Xen's ESRCH (no such domain) as NoDomainError."""
        try:
            yield
        except XenCallError as e:
            if e.errno == errno_codes.ESRCH:
                what = (f"domain {dom}" if isinstance(dom, int)
                        else f"domain '{dom.name}' (id {dom.id})")
                raise NoDomainError(f"domain not found: Xen has no {what}",
                                    domain=ErrorDomain.XEN) from None
            raise

    def _live(self, dom: DomainRef) -> XenDomainInfo:
        """Xen's record of ``dom``: same id and same UUID, or NoDomainError."""
        if dom.id < 0:
            raise NoDomainError(f"domain '{dom.name}' is not running: the hypervisor knows "
                                f"running domains only", domain=ErrorDomain.XEN)
        with self._about(dom):
            info = self.hypervisor.domain_info(dom.id)
        if info.uuid != dom.uuid:
            raise NoDomainError(
                f"domain not found: domain '{dom.name}' ({format_uuid(dom.uuid)}) no longer "
                f"runs as id {dom.id}", domain=ErrorDomain.XEN)
        return info

    def _name(self, domid: int) -> str:
        if self.names is None:
            raise NoSupportError("this function is not supported by the connection driver: the "
                                 "hypervisor backend knows domain ids, not names (no name source)",
                                 domain=ErrorDomain.XEN)
        name = self.names(domid)
        if name is None:
            raise NoDomainError(f"domain not found: domain {domid} has no name (going away?)",
                                domain=ErrorDomain.XEN)
        return name

    # --- batch ---------------------------------------------------------------------

    def all_domain_info(self) -> list[DomainSnapshot]:
        """Every running domain with its info, ordered by id, from one hypercall
        (sysctl getdomaininfolist)."""
        return [DomainSnapshot(d.domid, d.uuid, _info(d), d.hvm)
                for d in self.hypervisor.domain_list()]

    def all_domain_stats(self) -> dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]]:
        """Info and vCPUs of every running domain that has a name: one
        getdomaininfolist, the names (kept, see :class:`XenstoreNames`), one
        physinfo, then per domain its vCPUs (getvcpuinfo and affinity: one
        hypercall per vCPU and per map, in the core). A domain gone between the
        list and its vCPUs is left out. Keys are the references
        :meth:`list_all_domains` gives."""
        doms = self.hypervisor.domain_list()
        names = self._names_of([d.domid for d in doms])
        ncpus = self._host_cpus()
        out: dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]] = {}
        vcpu_infos = self.hypervisor.vcpu_infos
        for d, name in zip(doms, names):
            if name is None:
                continue
            try:
                vcpus = vcpu_infos(d.domid)
            except XenCallError as e:
                if e.errno == errno_codes.ESRCH:
                    continue
                raise
            out[DomainRef(name, d.uuid, d.domid)] = (_info(d), _vcpus(vcpus, ncpus))
        return out

    def info_now(self, dom: DomainRef) -> DomainInfo | None:
        """``dom``'s info from one getdomaininfo, when Xen's domain with its id
        still has its UUID and is not on its way out (dying, shutting down);
        None otherwise (the driver then brings the reference up to date
        through :meth:`current` first). The driver's fast path for
        ``dom.info()``: every call asks Xen (a caller wanting every domain's
        info at once has :meth:`all_domain_stats`, one getdomaininfolist)."""
        try:
            info = self.hypervisor.domain_info(dom.id)
        except XenCallError:
            return None
        if info.uuid != dom.uuid:
            return None
        state = info.state
        st = _STATES[state] if 0 <= state < len(_STATES) else DomainState(state)
        if st is DomainState.SHUTDOWN or info.flags & _DOMINF_DYING:
            return None  # on its way out: as current() sees it (_gone)
        return DomainInfo(st, info.max_memory_kib, info.memory_kib, info.online_vcpus,
                          info.cpu_time_ns)

    # --- connection and node --------------------------------------------------------

    def get_type(self) -> str:
        return "Xen"

    def get_version(self) -> int:
        from virtkit.drivers.xen.spellings import version_number

        return version_number(*self.hypervisor.xen_version())

    def get_node_info(self) -> NodeInfo:
        from virtkit.connection import NodeInfo

        p = self.hypervisor.physinfo()
        nodes = max(1, p.nr_nodes)
        cores = max(1, p.cores_per_socket)
        threads = max(1, p.threads_per_core)
        sockets = max(1, p.nr_cpus // (nodes * cores * threads))
        return NodeInfo(os.uname().machine, p.total_kib, p.nr_cpus, p.cpu_khz // 1000,
                        nodes, sockets, cores, threads)

    # --- listing and look-up --------------------------------------------------------

    def list_domain_ids(self) -> list[int]:
        return [d.domid for d in self.hypervisor.domain_list()]

    def list_all_domains(self) -> list[DomainRef]:
        """Every running domain, by id: one hypercall, then the names (one round of
        xenstore reads with a name source that has ``many``). A domain without a
        name (being built or torn down) is left out."""
        doms = self.hypervisor.domain_list()
        names = self._names_of([d.domid for d in doms])
        return [DomainRef(n, d.uuid, d.domid) for d, n in zip(doms, names) if n is not None]

    def _names_of(self, ids: list[int]) -> list[str | None]:
        """The names of these domains (None for one without a name yet): one
        call with a name source that has ``many``."""
        names = self.names
        if names is None:
            self._name(0)  # NoSupportError, as for any look-up
            raise AssertionError("unreachable")
        many = getattr(names, "many", None)
        return many(ids) if many is not None else [names(i) for i in ids]

    def lookup_domain_by_id(self, id: int) -> DomainRef:
        if not 0 <= id < 0x7FF0:
            raise NoDomainError(f"domain not found: no domain with id {id}", domain=ErrorDomain.XEN)
        with self._about(id):
            info = self.hypervisor.domain_info(id)
        return DomainRef(self._name(id), info.uuid, id)

    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        for d in self.hypervisor.domain_list():
            if d.uuid == uuid:
                return DomainRef(self._name(d.domid), uuid, d.domid)
        raise NoDomainError(f"domain not found: no running domain with UUID {format_uuid(uuid)}",
                            domain=ErrorDomain.XEN)

    def current(self, dom: DomainRef) -> DomainRef:
        """``dom`` as it is now (the driver's hook, called before every domain
        operation): the same reference while Xen's domain with its id still has
        its UUID and xenstore its name, else the live domain with its UUID (a
        reboot or a restore gave it a new id; a rename a new name), else the
        reference with id -1 (not running). A dying domain counts as gone. One
        hypercall when the id still holds (names are kept, see
        :class:`XenstoreNames`), two otherwise."""
        if dom.id >= 0:
            try:
                info = self.hypervisor.domain_info(dom.id)
            except XenCallError as e:
                if e.errno != errno_codes.ESRCH:
                    raise
            else:
                if info.uuid == dom.uuid and not _gone(info):
                    name = self.names(dom.id) if self.names is not None else None
                    return dom if name is None or name == dom.name else \
                        DomainRef(name, dom.uuid, dom.id)
        found = [d for d in self.hypervisor.domain_list()
                 if d.uuid == dom.uuid and not _gone(d)]
        if not found:
            return DomainRef(dom.name, dom.uuid, -1)
        domid = found[-1].domid
        name = self.names(domid) if self.names is not None else None
        return DomainRef(name or dom.name, dom.uuid, domid)

    # --- one domain -----------------------------------------------------------------

    def domain_get_state(self, dom: DomainRef) -> tuple[DomainState, int]:
        return domain_state(self._live(dom)), 0

    def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        return _info(self._live(dom))

    def domain_get_os_type(self, dom: DomainRef) -> str:
        return "hvm" if self._live(dom).hvm else "linux"

    def domain_get_max_memory(self, dom: DomainRef) -> int:
        return self._live(dom).max_memory_kib

    def domain_set_max_memory(self, dom: DomainRef, kib: int) -> None:
        """Xen's limit itself, in KiB (domctl max_mem), as libvirt 0.2.2 set it
        (``xl mem-max`` adds 1 MiB of slack on top; this does not)."""
        self._live(dom)
        with self._about(dom):
            self.hypervisor.set_max_mem(dom.id, kib)

    def domain_suspend(self, dom: DomainRef) -> None:
        self._live(dom)
        with self._about(dom):
            self.hypervisor.pause(dom.id)

    def domain_resume(self, dom: DomainRef) -> None:
        self._live(dom)
        with self._about(dom):
            self.hypervisor.unpause(dom.id)

    def domain_destroy(self, dom: DomainRef) -> None:
        """Xen destroys the domain at once (domctl destroydomain). The
        toolstack's side (xenstore entries, backend devices) is xl's to clear."""
        self._live(dom)
        with self._about(dom):
            self.hypervisor.destroy(dom.id)

    def _host_cpus(self) -> int:
        p = self.hypervisor.physinfo()
        return max(p.nr_cpus, p.max_cpu_id + 1)

    def domain_pin_vcpu(self, dom: DomainRef, vcpu: int, cpumap: tuple[bool, ...]) -> None:
        info = self._live(dom)
        if not 0 <= vcpu < info.vcpus:
            raise InvalidArgumentError(f"vCPU {vcpu} does not exist: domain '{dom.name}' has "
                                       f"{info.vcpus}", domain=ErrorDomain.XEN)
        ncpus = self._host_cpus()
        cpus = [i for i, on in enumerate(cpumap) if on]
        beyond = [c for c in cpus if c >= ncpus]
        if beyond or not cpus:
            raise InvalidArgumentError(
                f"cannot pin vCPU {vcpu} of domain '{dom.name}': "
                + (f"CPU {beyond[0]} does not exist (the host has {ncpus})" if beyond
                   else "no CPU given"), domain=ErrorDomain.XEN)
        with self._about(dom):
            self.hypervisor.set_vcpu_affinity(dom.id, vcpu, cpus)

    def domain_get_vcpus(self, dom: DomainRef) -> list[VcpuInfo]:
        self._live(dom)
        ncpus = self._host_cpus()
        with self._about(dom):
            vcpus = self.hypervisor.vcpu_infos(dom.id)
        return _vcpus(vcpus, ncpus)


def _vcpus(vcpus: list[XenVcpuInfo], ncpus: int) -> list[VcpuInfo]:
    """virtkit's VcpuInfo of the core's records, affinity over ``ncpus`` host CPUs."""
    out = []
    for v in vcpus:
        state = (VcpuState.OFFLINE if not v.online else VcpuState.BLOCKED if v.blocked
                 else VcpuState.RUNNING)
        allowed = set(v.affinity)
        out.append(VcpuInfo(v.vcpu, state, v.cpu_time_ns, v.cpu if v.online else -1,
                            tuple(i in allowed for i in range(ncpus))))
    return out
