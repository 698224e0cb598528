"""virtkitd's procedures: libvirt's remote protocol mapped onto the driver contract.

:data:`ROUTES` is the one table: for each procedure the contract operation it
performs, how the wire arguments become the operation's arguments and how
its result becomes the wire reply. Every call goes through a per-client,
server-side :class:`virtkit.Connection` on the shared backend
(``Connection._call`` / ``_call_on``), so the daemon applies exactly the
library's checks (read-only, object state, argument validation) before the
backend sees anything. Procedures without a row have no handler method, and
the server answers them NO_SUPPORT by itself.

A few rows go through the public :class:`virtkit.Domain` methods instead of
``_call_on`` because those methods check more (memory against its maximum,
CPU maps against the host, device XML); a few combine several operations
(``connect_list_all_domains`` filters by state, persistence and autostart);
a few answer without the backend what virsh asks but virtkit does not have
(security labels, managed save, snapshots, messages).

Threading: a row whose operations are all in the backend's
``fast_operations`` runs inline on the event loop; any other row runs in the
daemon's thread pool (``loop.run_in_executor``), so a slow operation never
stalls other clients. Serializing operations on one object is the backend's
job (see :class:`~virtkit.drivers.interface.Driver`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from virtkit.connection import LIB_VERSION, Connection
from virtkit.daemon.backends import BackendPool
from virtkit.domain import Domain, DomainState
from virtkit.drivers.interface import DomainRef, NetworkRef
from virtkit.drivers.remote.protocol import (
    CPUMAPS_MAX,
    DOMAIN_INTERFACE_MAX,
    DOMAIN_IP_ADDR_MAX,
    DOMAIN_LIST_MAX,
    NETWORK_DHCP_LEASES_MAX,
    NETWORK_LIST_MAX,
    VCPUINFO_MAX,
)
from virtkit.drivers.remote.server import ClientConnection
from virtkit.errors import InvalidArgumentError, OperationDeniedError, OperationInvalidError

__all__ = ["Route", "ROUTES", "Handler", "Session"]

log = logging.getLogger(__name__)

Args = dict[str, Any]

# --- libvirt's flag values used below (virDomain*Flags, virConnectList*Flags) --------------

XML_SECURE, XML_INACTIVE, XML_UPDATE_CPU, XML_MIGRATABLE = 1, 2, 4, 8
NET_XML_INACTIVE = 1
AFFECT_CURRENT, AFFECT_LIVE, AFFECT_CONFIG = 0, 1, 2
VCPU_MAXIMUM, VCPU_GUEST, VCPU_HOTPLUGGABLE = 4, 8, 16
DESTROY_GRACEFUL = 1
SHUTDOWN_METHODS = 1 | 2 | 4 | 8 | 16  # ACPI, guest agent, initctl, signal, paravirt
UNDEFINE_ALL = 1 | 2 | 4 | 8 | 16 | 32 | 64  # managed save, snapshots, NVRAM, ..., TPM
CORE_DUMP_LIVE, CORE_DUMP_BYPASS_CACHE = 2, 4
DEFINE_VALIDATE = 1

LIST_ACTIVE, LIST_INACTIVE, LIST_PERSISTENT, LIST_TRANSIENT = 1, 2, 4, 8
LIST_RUNNING, LIST_PAUSED, LIST_SHUTOFF, LIST_OTHER = 16, 32, 64, 128
LIST_MANAGEDSAVE, LIST_NO_MANAGEDSAVE = 256, 512
LIST_AUTOSTART, LIST_NO_AUTOSTART = 1024, 2048
LIST_HAS_SNAPSHOT, LIST_NO_SNAPSHOT = 4096, 8192
LIST_HAS_CHECKPOINT, LIST_NO_CHECKPOINT = 16384, 32768
LIST_ALL_FLAGS = (1 << 16) - 1

NET_LIST_INACTIVE, NET_LIST_ACTIVE, NET_LIST_PERSISTENT, NET_LIST_TRANSIENT = 1, 2, 4, 8
NET_LIST_AUTOSTART, NET_LIST_NO_AUTOSTART = 16, 32
NET_LIST_ALL_FLAGS = 63

_INACTIVE_STATES = (DomainState.NOSTATE, DomainState.SHUTOFF)


@dataclass(slots=True)
class Session:
    """One client's server-side view: its Connection on the backend and the URI it opened."""

    conn: Connection
    uri: str


# --- conversions ----------------------------------------------------------------------------

def _dom(args: Args) -> DomainRef:
    d = args["dom"]
    return DomainRef(d["name"], d["uuid"], d["id"])


def _net(args: Args) -> NetworkRef:
    n = args["net"]
    return NetworkRef(n["name"], n["uuid"])


def _wire_dom(ref: DomainRef) -> dict[str, Any]:
    return {"name": ref.name, "uuid": ref.uuid, "id": ref.id}


def _wire_net(ref: NetworkRef) -> dict[str, Any]:
    return {"name": ref.name, "uuid": ref.uuid}


def _check_flags(args: Args, allowed: int, name: str) -> int:
    """``args["flags"]``; InvalidArgumentError for bits the procedure does not know (as
    libvirt's virCheckFlags words it)."""
    flags: int = args["flags"]
    if flags & ~allowed:
        raise InvalidArgumentError(f"unsupported flags (0x{flags & ~allowed:x}) in function {name}")
    return flags


def _max_count(value: int, limit: int, what: str) -> int:
    if value < 0 or value > limit:
        raise InvalidArgumentError(f"{what} {value} is outside 0..{limit}")
    return value


def _cpumap_bits(cpumap: tuple[bool, ...], maplen: int) -> bytes:
    """libvirt's CPU bitmap: CPU n is bit n % 8 of byte n // 8, ``maplen`` bytes."""
    out = bytearray(maplen)
    for cpu, on in enumerate(cpumap[: maplen * 8]):
        if on:
            out[cpu >> 3] |= 1 << (cpu & 7)
    return bytes(out)


def _cpus_in(bitmap: bytes) -> list[int]:
    return [i for i in range(len(bitmap) * 8) if bitmap[i >> 3] & (1 << (i & 7))]


# --- the table ------------------------------------------------------------------------------

#: ``call(session, wire args) -> wire reply`` for rows that do more than one plain operation.
Call = Callable[[Session, Args], Any]


@dataclass(frozen=True, slots=True)
class Route:
    """How one procedure is answered."""

    #: The contract operation performed (None: answered without the backend).
    op: str | None
    #: Wire arguments -> the operation's arguments (a reference first for object operations).
    args: Callable[[Session, Args], tuple[Any, ...]] | None = None
    #: The operation's result -> the wire reply (gets the wire arguments too).
    ret: Callable[[Any, Args], Any] | None = None
    #: Replaces the plain ``_call``/``_call_on`` of ``op`` (composite or public-method rows).
    call: Call | None = None
    #: Other operations the row may use (with ``op``, they decide inline vs thread).
    also: tuple[str, ...] = ()

    @property
    def operations(self) -> frozenset[str]:
        """Every contract operation the row may call."""
        return frozenset(((self.op,) if self.op else ()) + self.also)


def _none(s: Session, a: Args) -> tuple[Any, ...]:
    return ()


def _d(s: Session, a: Args) -> tuple[Any, ...]:
    return (_dom(a),)


def _n(s: Session, a: Args) -> tuple[Any, ...]:
    return (_net(a),)


def _void(r: Any, a: Args) -> None:
    return None


def _key(name: str, conv: Callable[[Any], Any] = lambda v: v) -> Callable[[Any, Args], Any]:
    return lambda r, a: {name: conv(r)}


def _dom_ret(r: DomainRef, a: Args) -> dict[str, Any]:
    return {"dom": _wire_dom(r)}


def _net_ret(r: NetworkRef, a: Args) -> dict[str, Any]:
    return {"net": _wire_net(r)}


def _info_ret(info: Any, a: Args) -> dict[str, Any]:
    state, max_mem, memory, nr_virt_cpu, cpu_time = info
    return {"state": state, "max_mem": max_mem, "memory": memory, "nr_virt_cpu": nr_virt_cpu,
            "cpu_time": cpu_time}


def _node_ret(n: Any, a: Args) -> dict[str, Any]:
    return {"model": n.model[:31], "memory": n.memory, "cpus": n.cpus, "mhz": n.mhz,
            "nodes": n.nodes, "sockets": n.sockets, "cores": n.cores, "threads": n.threads}


def _caps_ret(caps: Any, a: Args) -> dict[str, Any]:
    from virtkit.xml.capabilities import format_capabilities

    return {"capabilities": format_capabilities(caps)}


def _domain_xml_ret(cfg: Any, a: Args) -> dict[str, Any]:
    from virtkit.xml.domain import format_domain

    return {"xml": format_domain(cfg)}


def _network_xml_ret(cfg: Any, a: Args) -> dict[str, Any]:
    from virtkit.xml.network import format_network

    return {"xml": format_network(cfg)}


def _list_limit(key: str, arg: str, limit: int) -> Callable[[Any, Args], Any]:
    """A list cut to the length the caller asked for (``maxids``, ``maxnames``)."""
    def ret(items: list[Any], a: Args) -> dict[str, Any]:
        return {key: items[: _max_count(a[arg], limit, arg)]}
    return ret


def _count(key: str = "num") -> Callable[[Any, Args], Any]:
    return lambda items, a: {key: len(items)}


def _domain_xml_arg(s: Session, a: Args) -> tuple[Any, ...]:
    return (s.conn._domain_xml(a["xml"]),)


def _domain_xml_flags_arg(s: Session, a: Args) -> tuple[Any, ...]:
    _check_flags(a, DEFINE_VALIDATE, "virDomainDefineXMLFlags")
    return (s.conn._domain_xml(a["xml"]),)


def _create_xml_arg(s: Session, a: Args) -> tuple[Any, ...]:
    _check_flags(a, 0, "virDomainCreateXML")
    return (s.conn._domain_xml(a["xml_desc"]),)


def _network_xml_arg(s: Session, a: Args) -> tuple[Any, ...]:
    return (s.conn._network_xml(a["xml"]),)


def _network_xml_flags_arg(s: Session, a: Args) -> tuple[Any, ...]:
    _check_flags(a, DEFINE_VALIDATE, "virNetworkXMLFlags")
    return (s.conn._network_xml(a["xml"]),)


def _path(s: Session, path: str) -> str:
    if not os.path.isabs(path):
        raise InvalidArgumentError(f"the daemon needs an absolute path, not {path!r}")
    return s.conn._path_arg(path)


def _flags_then(allowed: int, name: str, conv: Callable[[Session, Args], tuple[Any, ...]] = _d
                ) -> Callable[[Session, Args], tuple[Any, ...]]:
    def args(s: Session, a: Args) -> tuple[Any, ...]:
        _check_flags(a, allowed, name)
        return conv(s, a)
    return args


def _xml_desc_args(s: Session, a: Args) -> tuple[Any, ...]:
    flags = _check_flags(a, XML_SECURE | XML_INACTIVE | XML_UPDATE_CPU | XML_MIGRATABLE,
                         "virDomainGetXMLDesc")
    if flags & XML_SECURE and s.conn.read_only:
        raise OperationDeniedError(
            "operation forbidden: virDomainGetXMLDesc with secure flag on a read-only "
            "connection")
    return (_dom(a), bool(flags & XML_INACTIVE))


def _net_xml_desc_args(s: Session, a: Args) -> tuple[Any, ...]:
    flags = _check_flags(a, NET_XML_INACTIVE, "virNetworkGetXMLDesc")
    return (_net(a), bool(flags & NET_XML_INACTIVE))


# Rows that go through a public object method (it checks more than _call_on).

def _public_domain(s: Session, a: Args) -> Domain:
    return Domain(s.conn, _dom(a))


def _set_memory(s: Session, a: Args) -> None:
    _public_domain(s, a).set_memory(a["memory"])


def _set_memory_flags(s: Session, a: Args) -> None:
    _affect_current(s, a, "virDomainSetMemoryFlags")
    _set_memory(s, a)


def _set_max_memory(s: Session, a: Args) -> None:
    _public_domain(s, a).set_max_memory(a["memory"])


def _set_vcpus(s: Session, a: Args) -> None:
    _public_domain(s, a).set_vcpus(a["nvcpus"])


def _set_vcpus_flags(s: Session, a: Args) -> None:
    if a["flags"] & VCPU_MAXIMUM:
        raise InvalidArgumentError("changing the maximum vCPU count is not supported yet")
    _affect_current(s, a, "virDomainSetVcpusFlags")
    _set_vcpus(s, a)


def _pin_vcpu(s: Session, a: Args) -> None:
    dom = _public_domain(s, a)
    ncpus = s.conn.get_node_info().cpus
    cpus = _cpus_in(a["cpumap"])
    if any(cpu >= ncpus for cpu in cpus):
        raise InvalidArgumentError(
            f"CPU {max(cpus)} in the CPU map does not exist (this host has CPUs 0-{ncpus - 1})")
    if not cpus:
        raise InvalidArgumentError("the CPU map selects no CPU")
    dom.pin_vcpu(a["vcpu"], cpus)


def _pin_vcpu_flags(s: Session, a: Args) -> None:
    _affect_current(s, a, "virDomainPinVcpuFlags")
    _pin_vcpu(s, a)


def _affect_current(s: Session, a: Args, name: str) -> None:
    """Accept LIVE on an active and CONFIG on an inactive domain: what the contract's
    "current" does; refuse the combinations it cannot do."""
    flags = _check_flags(a, AFFECT_LIVE | AFFECT_CONFIG, name)
    if flags == AFFECT_CURRENT:
        return
    state = s.conn._call_on("domain_get_state", _dom(a))[0]
    active = state not in _INACTIVE_STATES
    if flags == (AFFECT_LIVE if active else AFFECT_CONFIG):
        return
    if flags & AFFECT_LIVE and not active:
        raise OperationInvalidError(f"domain '{_dom(a).name}' is not running")
    raise InvalidArgumentError(
        f"{name}: changing the {'live state and ' if active else ''}persistent configuration "
        f"{'together ' if active else ''}is not supported yet; use the current state")


def _attach(s: Session, a: Args) -> None:
    _public_domain(s, a).attach_device(a["xml"])


def _attach_flags(s: Session, a: Args) -> None:
    _affect_current(s, a, "virDomainAttachDeviceFlags")
    _attach(s, a)


def _detach(s: Session, a: Args) -> None:
    _public_domain(s, a).detach_device(a["xml"])


def _detach_flags(s: Session, a: Args) -> None:
    _affect_current(s, a, "virDomainDetachDeviceFlags")
    _detach(s, a)


def _get_vcpus(s: Session, a: Args) -> dict[str, Any]:
    maxinfo = _max_count(a["maxinfo"], VCPUINFO_MAX, "maxinfo")
    maplen = _max_count(a["maplen"], CPUMAPS_MAX, "maplen")
    if maxinfo * maplen > CPUMAPS_MAX:
        raise InvalidArgumentError(f"maxinfo * maplen exceeds {CPUMAPS_MAX}")
    vcpus = s.conn._call_on("domain_get_vcpus", _dom(a))[:maxinfo]
    info = [{"number": v.number, "state": int(v.state), "cpu_time": v.cpu_time, "cpu": v.cpu}
            for v in vcpus]
    return {"info": info, "cpumaps": b"".join(_cpumap_bits(v.affinity, maplen) for v in vcpus)}


def _vcpus_flags(s: Session, a: Args) -> dict[str, Any]:
    flags = _check_flags(a, AFFECT_LIVE | AFFECT_CONFIG | VCPU_MAXIMUM | VCPU_GUEST,
                         "virDomainGetVcpusFlags")
    if flags & VCPU_GUEST:
        raise InvalidArgumentError("no guest agent: cannot ask the guest for its vCPUs")
    cfg = s.conn._call_on("domain_get_config", _dom(a), bool(flags & AFFECT_CONFIG))
    return {"num": cfg.vcpus if flags & VCPU_MAXIMUM else cfg.online_vcpus}


def _max_vcpus(s: Session, a: Args) -> dict[str, Any]:
    cfg = s.conn._call_on("domain_get_config", _dom(a), False)
    return {"num": cfg.vcpus}


def _create_with_flags(s: Session, a: Args) -> dict[str, Any]:
    _check_flags(a, 0, "virDomainCreateWithFlags")
    return {"dom": _wire_dom(s.conn._call_on("domain_start", _dom(a)))}


def _restore(s: Session, a: Args) -> None:
    s.conn._call("restore_domain", _path(s, a["from"]))


def _save(s: Session, a: Args) -> None:
    s.conn._call_on("domain_save", _dom(a), _path(s, a["to"]))


def _core_dump(s: Session, a: Args) -> None:
    _check_flags(a, CORE_DUMP_LIVE | CORE_DUMP_BYPASS_CACHE, "virDomainCoreDump")
    s.conn._call_on("domain_core_dump", _dom(a), _path(s, a["to"]))


def _interface_addresses(s: Session, a: Args) -> dict[str, Any]:
    _check_flags(a, 0, "virDomainInterfaceAddresses")
    ifaces = _public_domain(s, a).interface_addresses(a["source"])
    if len(ifaces) > DOMAIN_INTERFACE_MAX:
        raise InvalidArgumentError(f"too many interfaces to report ({len(ifaces)})")
    return {"ifaces": [{"name": i.name, "hwaddr": i.hwaddr,
                        "addrs": [{"type": int(x.type), "addr": x.addr, "prefix": x.prefix}
                                  for x in i.addrs[:DOMAIN_IP_ADDR_MAX]]}
                       for i in ifaces]}


def _dhcp_leases(s: Session, a: Args) -> dict[str, Any]:
    from virtkit.network import Network

    _check_flags(a, 0, "virNetworkGetDHCPLeases")
    leases = Network(s.conn, _net(a)).dhcp_leases(a["mac"])
    if len(leases) > NETWORK_DHCP_LEASES_MAX:
        raise InvalidArgumentError(f"too many leases to report ({len(leases)})")
    wire = [{"iface": x.iface, "expirytime": x.expiry_time, "type": int(x.type), "mac": x.mac,
             "iaid": x.iaid, "ipaddr": x.ipaddr, "prefix": x.prefix, "hostname": x.hostname,
             "clientid": x.client_id} for x in leases]
    # need_results 0: the count only, as libvirt's daemon answers.
    return {"leases": wire if a["need_results"] else [], "ret": len(wire)}


def _exists(s: Session, a: Args) -> DomainRef:
    """The domain named by the arguments, or NoDomainError."""
    return s.conn._call("lookup_domain_by_uuid", a["dom"]["uuid"])  # type: ignore[no-any-return]


def _answer(value: dict[str, Any], flags: int = -1, name: str = "") -> Call:
    """A row answering ``value`` once the domain exists (features virtkit does not have)."""
    def call(s: Session, a: Args) -> dict[str, Any]:
        if flags >= 0:
            _check_flags(a, flags, name)
        _exists(s, a)
        return dict(value)
    return call


def _list_all_domains(s: Session, a: Args) -> dict[str, Any]:
    flags = _check_flags(a, LIST_ALL_FLAGS, "virConnectListAllDomains")
    conn = s.conn
    out = []
    for ref in conn._call("list_all_domains"):
        active = ref.id != -1
        if flags & (LIST_ACTIVE | LIST_INACTIVE) and not (
                flags & (LIST_ACTIVE if active else LIST_INACTIVE)):
            continue
        if flags & (LIST_PERSISTENT | LIST_TRANSIENT):
            persistent = conn._call_on("domain_is_persistent", ref)
            if not flags & (LIST_PERSISTENT if persistent else LIST_TRANSIENT):
                continue
        if flags & (LIST_RUNNING | LIST_PAUSED | LIST_SHUTOFF | LIST_OTHER):
            state = conn._call_on("domain_get_state", ref)[0]
            bit = (LIST_RUNNING if state == DomainState.RUNNING else
                   LIST_PAUSED if state == DomainState.PAUSED else
                   LIST_SHUTOFF if state == DomainState.SHUTOFF else LIST_OTHER)
            if not flags & bit:
                continue
        if flags & (LIST_AUTOSTART | LIST_NO_AUTOSTART):
            autostart = conn._call_on("domain_get_autostart", ref)
            if not flags & (LIST_AUTOSTART if autostart else LIST_NO_AUTOSTART):
                continue
        # No managed save, snapshot or checkpoint exists in virtkit.
        if flags & (LIST_MANAGEDSAVE | LIST_NO_MANAGEDSAVE) and not flags & LIST_NO_MANAGEDSAVE:
            continue
        if flags & (LIST_HAS_SNAPSHOT | LIST_NO_SNAPSHOT) and not flags & LIST_NO_SNAPSHOT:
            continue
        if (flags & (LIST_HAS_CHECKPOINT | LIST_NO_CHECKPOINT)
                and not flags & LIST_NO_CHECKPOINT):
            continue
        out.append(_wire_dom(ref))
    if len(out) > DOMAIN_LIST_MAX:
        raise InvalidArgumentError(f"too many domains to list ({len(out)} > {DOMAIN_LIST_MAX})")
    return {"domains": out if a["need_results"] else [], "ret": len(out)}


def _list_all_networks(s: Session, a: Args) -> dict[str, Any]:
    flags = _check_flags(a, NET_LIST_ALL_FLAGS, "virConnectListAllNetworks")
    conn = s.conn
    names = ([(n, True) for n in conn._call("list_network_names")]
             + [(n, False) for n in conn._call("list_defined_network_names")])
    out = []
    for name, active in sorted(names):
        if flags & (NET_LIST_ACTIVE | NET_LIST_INACTIVE) and not (
                flags & (NET_LIST_ACTIVE if active else NET_LIST_INACTIVE)):
            continue
        try:
            ref = conn._call("lookup_network_by_name", name)
        except LookupError:  # gone meanwhile
            continue
        if flags & (NET_LIST_PERSISTENT | NET_LIST_TRANSIENT):
            persistent = conn._call_on("network_is_persistent", ref)
            if not flags & (NET_LIST_PERSISTENT if persistent else NET_LIST_TRANSIENT):
                continue
        if flags & (NET_LIST_AUTOSTART | NET_LIST_NO_AUTOSTART):
            autostart = conn._call_on("network_get_autostart", ref)
            if not flags & (NET_LIST_AUTOSTART if autostart else NET_LIST_NO_AUTOSTART):
                continue
        out.append(_wire_net(ref))
    if len(out) > NETWORK_LIST_MAX:
        raise InvalidArgumentError(f"too many networks to list ({len(out)} > {NETWORK_LIST_MAX})")
    return {"nets": out if a["need_results"] else [], "ret": len(out)}


def _lookup(key: str) -> Callable[[Session, Args], tuple[Any, ...]]:
    return lambda s, a: (a[key],)


_R = Route
_LOOKUP_ONLY = ("lookup_domain_by_uuid",)

#: Procedure name -> how the daemon answers it. Procedures not here answer NO_SUPPORT.
ROUTES: dict[str, Route] = {
    # connection and node
    "connect_get_type": _R("get_type", _none, _key("type")),
    "connect_get_version": _R("get_version", _none, _key("hv_ver")),
    "connect_get_hostname": _R("get_hostname", _none, _key("hostname")),
    "connect_get_max_vcpus": _R("get_max_vcpus", _lookup("type"), _key("max_vcpus")),
    "node_get_info": _R("get_node_info", _none, _node_ret),
    "connect_get_capabilities": _R("get_capabilities", _none, _caps_ret),
    "connect_get_uri": _R(None, call=lambda s, a: {"uri": s.uri}),
    "connect_is_secure": _R(None, call=lambda s, a: {"secure": 1}),
    "connect_get_lib_version": _R(None, call=lambda s, a: {"lib_ver": LIB_VERSION}),
    "node_get_security_model": _R(None, call=lambda s, a: {"model": "", "doi": ""}),
    # domains: lists and look-ups
    "connect_list_domains": _R("list_domain_ids", _none, _list_limit("ids", "maxids", DOMAIN_LIST_MAX)),
    "connect_num_of_domains": _R("list_domain_ids", _none, _count()),
    "connect_list_defined_domains": _R("list_defined_domain_names", _none,
                                       _list_limit("names", "maxnames", DOMAIN_LIST_MAX)),
    "connect_num_of_defined_domains": _R("list_defined_domain_names", _none, _count()),
    "connect_list_all_domains": _R("list_all_domains", call=_list_all_domains,
                                   also=("domain_is_persistent", "domain_get_state",
                                         "domain_get_autostart")),
    "domain_lookup_by_id": _R("lookup_domain_by_id", _lookup("id"), _dom_ret),
    "domain_lookup_by_name": _R("lookup_domain_by_name", _lookup("name"), _dom_ret),
    "domain_lookup_by_uuid": _R("lookup_domain_by_uuid", _lookup("uuid"), _dom_ret),
    # domains: creation
    "domain_create_xml": _R("create_domain", _create_xml_arg, _dom_ret),
    "domain_define_xml": _R("define_domain", _domain_xml_arg, _dom_ret),
    "domain_define_xml_flags": _R("define_domain", _domain_xml_flags_arg, _dom_ret),
    "domain_restore": _R("restore_domain", call=_restore),
    # one domain: queries
    "domain_get_info": _R("domain_get_info", _d, _info_ret),
    "domain_get_state": _R("domain_get_state", _flags_then(0, "virDomainGetState"),
                           lambda r, a: {"state": int(r[0]), "reason": int(r[1])}),
    "domain_is_active": _R("domain_get_state", _d,
                           lambda r, a: {"active": int(r[0] not in _INACTIVE_STATES)}),
    "domain_is_persistent": _R("domain_is_persistent", _d, _key("persistent", int)),
    "domain_is_updated": _R("lookup_domain_by_uuid", call=_answer({"updated": 0})),
    "domain_get_os_type": _R("domain_get_os_type", _d, _key("type")),
    "domain_get_max_memory": _R("domain_get_max_memory", _d, _key("memory")),
    "domain_get_max_vcpus": _R("domain_get_config", call=_max_vcpus),
    "domain_get_vcpus_flags": _R("domain_get_config", call=_vcpus_flags),
    "domain_get_vcpus": _R("domain_get_vcpus", call=_get_vcpus),
    "domain_get_xml_desc": _R("domain_get_config", _xml_desc_args, _domain_xml_ret),
    "domain_get_autostart": _R("domain_get_autostart", _d, _key("autostart", int)),
    "domain_get_security_label": _R("lookup_domain_by_uuid",
                                    call=_answer({"label": "", "enforcing": 0})),
    "domain_has_managed_save_image": _R("lookup_domain_by_uuid", call=_answer(
        {"result": 0}, 0, "virDomainHasManagedSaveImage")),
    "domain_snapshot_num": _R("lookup_domain_by_uuid", call=_answer(
        {"num": 0}, (1 << 11) - 1, "virDomainSnapshotNum")),
    "domain_get_messages": _R("lookup_domain_by_uuid", call=_answer(
        {"msgs": []}, 1 | 2, "virDomainGetMessages")),
    # one domain: life cycle
    "domain_create": _R("domain_start", _d, _void),
    "domain_create_with_flags": _R("domain_start", call=_create_with_flags),
    "domain_suspend": _R("domain_suspend", _d, _void),
    "domain_resume": _R("domain_resume", _d, _void),
    "domain_shutdown": _R("domain_shutdown", _d, _void),
    "domain_shutdown_flags": _R("domain_shutdown",
                                _flags_then(SHUTDOWN_METHODS, "virDomainShutdownFlags"), _void),
    "domain_reboot": _R("domain_reboot", _flags_then(SHUTDOWN_METHODS, "virDomainReboot"),
                        _void),
    "domain_destroy": _R("domain_destroy", _d, _void),
    "domain_destroy_flags": _R("domain_destroy",
                               _flags_then(DESTROY_GRACEFUL, "virDomainDestroyFlags"), _void),
    "domain_undefine": _R("domain_undefine", _d, _void),
    "domain_undefine_flags": _R("domain_undefine",
                                _flags_then(UNDEFINE_ALL, "virDomainUndefineFlags"), _void),
    "domain_save": _R("domain_save", call=_save),
    "domain_core_dump": _R("domain_core_dump", call=_core_dump),
    "domain_set_autostart": _R("domain_set_autostart",
                               lambda s, a: (_dom(a), bool(a["autostart"])), _void),
    # one domain: resources and devices (public methods: they check more)
    "domain_set_max_memory": _R("domain_set_max_memory", call=_set_max_memory),
    "domain_set_memory": _R("domain_set_memory", call=_set_memory,
                            also=("domain_get_max_memory",)),
    "domain_set_memory_flags": _R("domain_set_memory", call=_set_memory_flags,
                                  also=("domain_get_max_memory", "domain_get_state")),
    "domain_set_vcpus": _R("domain_set_vcpus", call=_set_vcpus),
    "domain_set_vcpus_flags": _R("domain_set_vcpus", call=_set_vcpus_flags,
                                 also=("domain_get_state",)),
    "domain_pin_vcpu": _R("domain_pin_vcpu", call=_pin_vcpu, also=("get_node_info",)),
    "domain_pin_vcpu_flags": _R("domain_pin_vcpu", call=_pin_vcpu_flags,
                                also=("get_node_info", "domain_get_state")),
    "domain_attach_device": _R("domain_attach_device", call=_attach),
    "domain_attach_device_flags": _R("domain_attach_device", call=_attach_flags,
                                     also=("domain_get_state",)),
    "domain_detach_device": _R("domain_detach_device", call=_detach),
    "domain_detach_device_flags": _R("domain_detach_device", call=_detach_flags,
                                     also=("domain_get_state",)),
    "domain_interface_addresses": _R("domain_interface_addresses", call=_interface_addresses),
    # networks
    "connect_list_networks": _R("list_network_names", _none,
                                _list_limit("names", "maxnames", NETWORK_LIST_MAX)),
    "connect_num_of_networks": _R("list_network_names", _none, _count()),
    "connect_list_defined_networks": _R("list_defined_network_names", _none,
                                        _list_limit("names", "maxnames", NETWORK_LIST_MAX)),
    "connect_num_of_defined_networks": _R("list_defined_network_names", _none, _count()),
    "connect_list_all_networks": _R("list_network_names", call=_list_all_networks,
                                    also=("list_defined_network_names",
                                          "lookup_network_by_name", "network_is_persistent",
                                          "network_get_autostart")),
    "network_lookup_by_name": _R("lookup_network_by_name", _lookup("name"), _net_ret),
    "network_lookup_by_uuid": _R("lookup_network_by_uuid", _lookup("uuid"), _net_ret),
    "network_create_xml": _R("create_network", _network_xml_arg, _net_ret),
    "network_create_xml_flags": _R("create_network", _network_xml_flags_arg, _net_ret),
    "network_define_xml": _R("define_network", _network_xml_arg, _net_ret),
    "network_define_xml_flags": _R("define_network", _network_xml_flags_arg, _net_ret),
    "network_create": _R("network_start", _n, _void),
    "network_destroy": _R("network_destroy", _n, _void),
    "network_undefine": _R("network_undefine", _n, _void),
    "network_get_xml_desc": _R("network_get_config", _net_xml_desc_args, _network_xml_ret),
    "network_get_bridge_name": _R("network_get_bridge_name", _n, _key("name")),
    "network_get_autostart": _R("network_get_autostart", _n, _key("autostart", int)),
    "network_set_autostart": _R("network_set_autostart",
                                lambda s, a: (_net(a), bool(a["autostart"])), _void),
    "network_is_active": _R("network_is_active", _n, _key("active", int)),
    "network_is_persistent": _R("network_is_persistent", _n, _key("persistent", int)),
    "network_get_dhcp_leases": _R("network_get_dhcp_leases", call=_dhcp_leases),
}

_OBJECT_OPS_PREFIXES = ("domain_", "network_")


def _runner(name: str, route: Route) -> Callable[[Session, Args], Any]:
    """The synchronous function answering ``name`` for a session."""
    if route.call is not None:
        return route.call
    op = route.op
    assert op is not None and route.args is not None and route.ret is not None
    conv, ret = route.args, route.ret
    if op.startswith(_OBJECT_OPS_PREFIXES):
        def run_on(s: Session, a: Args) -> Any:
            return ret(s.conn._call_on(op, *conv(s, a)), a)
        return run_on

    def run(s: Session, a: Args) -> Any:
        return ret(s.conn._call(op, *conv(s, a)), a)
    return run


# --- the handler ----------------------------------------------------------------------------

_SESSION = "virtkit.session"


class Handler:
    """The RemoteServer handler of virtkitd: one method per row of :data:`ROUTES`.

    Methods are made per instance: a plain function (inline on the loop) when
    every operation of the row is in the backend's ``fast_operations``, a
    coroutine running the row in ``executor`` otherwise.
    """

    def __init__(self, pool: BackendPool, executor: Executor) -> None:
        self.pool = pool
        self.executor = executor
        fast = pool.cls.fast_operations
        #: Procedure -> True when it runs inline on the event loop.
        self.inline: dict[str, bool] = {}
        for name, route in ROUTES.items():
            inline = route.operations <= fast
            self.inline[name] = inline
            setattr(self, name, self._method(_runner(name, route), inline))
        if "domain_get_info" in fast:
            self.domain_get_info = self._fast_domain_get_info

    def _method(self, run: Callable[[Session, Args], Any], inline: bool
                ) -> Callable[[ClientConnection, Args], Any]:
        if inline:
            def method(client: ClientConnection, args: Args) -> Any:
                return run(client.data[_SESSION], args)
            return method
        executor = self.executor

        async def threaded(client: ClientConnection, args: Args) -> Any:
            session = client.data[_SESSION]
            return await asyncio.get_running_loop().run_in_executor(executor, run, session, args)
        return threaded

    def _fast_domain_get_info(self, client: ClientConnection, args: Args) -> dict[str, Any]:
        """The hottest call, without the generic row machinery (same checks: none apply
        to info but the closed-connection one, which ``_call_on`` makes)."""
        d = args["dom"]
        state, max_mem, memory, nr_virt_cpu, cpu_time = client.data[_SESSION].conn._call_on(
            "domain_get_info", DomainRef(d["name"], d["uuid"], d["id"]))
        return {"state": state, "max_mem": max_mem, "memory": memory,
                "nr_virt_cpu": nr_virt_cpu, "cpu_time": cpu_time}

    # -- connection life -------------------------------------------------------------------

    async def connect_open(self, client: ClientConnection, args: Args) -> None:
        """Map the URI to a backend (opening it in a thread the first time) and give the
        client its server-side Connection, read-only as the socket or open flags say."""
        pool = self.pool
        uri = pool.resolve(args["name"])
        backend = pool.cached(uri)
        if backend is None:
            backend = await asyncio.get_running_loop().run_in_executor(
                self.executor, pool.open, uri)
        client.data[_SESSION] = Session(Connection(backend, uri, client.readonly),
                                        args["name"] or pool.daemon_uri)
        log.debug("client %d opened %s (%s)", client.id, uri.raw,
                  "read-only" if client.readonly else "read-write")

    def connect_close(self, client: ClientConnection, args: None) -> None:
        # Never Connection.close(): that would close the backend all clients share.
        client.data.pop(_SESSION, None)

    def client_disconnected(self, client: ClientConnection) -> None:
        client.data.pop(_SESSION, None)
