"""The remote driver: every contract operation as a call of libvirt's remote protocol.

It is the library's side of ``virtkitd`` (and works against a real
libvirtd for what both speak). URIs it handles (see :func:`endpoint`):

=======================================  ===========================================  =============
URI                                      socket                                       daemon opens
=======================================  ===========================================  =============
``DRIVER+unix:///PATH?socket=SOCK``      ``SOCK``                                     ``DRIVER:///PATH``
``qemu:///session``                      the session daemon's (started when absent)   ``qemu:///session``
``qemu:///system``                       ``/run/virtkit/virtkit-sock``                ``qemu:///system``
``qemu+unix:///session`` (no socket)     as ``qemu:///session``                       ``qemu:///session``
=======================================  ===========================================  =============

A ``name=URI`` parameter overrides the URI sent to the daemon, as libvirt's.
Domain references travel as ``{"name", "uuid", "id"}``, configurations as XML
text made and read by :mod:`virtkit.xml`. The daemon runs the public layer's
checks itself, so :attr:`RemoteDriver.checks_state_itself` is True and the
client skips its state look-ups.

The byte stream is chosen by the URI's transport in :data:`TRANSPORTS`
(``unix`` only for now); everything else here is independent of it, so TCP,
TLS and SSH are one connector function each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from virtkit.connection import NodeInfo
from virtkit.domain import DomainInfo, DomainState, VcpuInfo, VcpuState
from virtkit.drivers.interface import DomainRef, Driver, NetworkRef
from virtkit.drivers.remote.client import RemoteClient
from virtkit.errors import (
    ConnectionFailedError,
    ErrorCode,
    OperationInvalidError,
    RPCError,
    SaveFileError,
    VirtError,
    VirtSystemError,
    XMLError,
    XMLSchemaError,
)
from virtkit.uri import URI
from virtkit.xml.capabilities import Capabilities, parse_capabilities
from virtkit.xml.domain import Device, DomainConfig, format_device, format_domain, parse_domain
from virtkit.xml.network import NetworkConfig, format_network, parse_network

if TYPE_CHECKING:
    from virtkit.daemon.paths import DaemonPaths
    from virtkit.domain import DomainInterface
    from virtkit.network import DHCPLease

__all__ = ["RemoteDriver", "Endpoint", "endpoint", "TRANSPORTS", "CONNECT_TIMEOUT"]

#: Seconds to wait for the daemon to accept the connection.
CONNECT_TIMEOUT = 30.0

#: URI parameters for the client side only, never sent to the daemon (libvirt's list).
_CLIENT_PARAMS = frozenset({"name", "command", "socket", "auth", "netcat", "keyfile", "sshauth",
                            "no_verify", "no_tty", "pkipath", "known_hosts",
                            "known_hosts_verify", "mode", "proxy", "tls_priority"})

# libvirt's flag values this driver sends.
_LIST_ACTIVE, _LIST_INACTIVE = 1, 2
_NET_LIST_INACTIVE, _NET_LIST_ACTIVE = 1, 2
_XML_INACTIVE = 2
_NET_XML_INACTIVE = 1


class Endpoint:
    """Where to connect and what to open there."""

    __slots__ = ("transport", "socket", "daemon_uri", "autostart")

    def __init__(self, transport: str, socket: str, daemon_uri: str,
                 autostart: DaemonPaths | None) -> None:
        self.transport = transport
        self.socket = socket
        self.daemon_uri = daemon_uri
        #: The session daemon's paths when it may be started on demand, else None.
        self.autostart = autostart

    def __repr__(self) -> str:
        return (f"Endpoint({self.transport!r}, {self.socket!r}, {self.daemon_uri!r}, "
                f"autostart={self.autostart is not None})")


def _daemon_uri(uri: URI) -> str:
    explicit = uri.param("name")
    if explicit:
        return explicit
    from urllib.parse import urlencode

    query = urlencode([(k, v) for k, v in uri.params if k not in _CLIENT_PARAMS])
    return f"{uri.driver}://{uri.path or '/'}" + (f"?{query}" if query else "")


def endpoint(uri: URI) -> Endpoint:
    """The transport, socket and daemon-side URI for ``uri``; ConnectionFailedError when
    the URI names something this driver cannot reach."""
    from virtkit.daemon.paths import session_paths, system_paths

    transport = uri.transport or "unix"
    if transport not in TRANSPORTS:
        raise ConnectionFailedError(
            f"the {transport!r} transport is not supported yet ({uri.raw!r}); "
            f"use {uri.driver}+unix:///...?socket=PATH on this host")
    if uri.host:
        raise ConnectionFailedError(
            f"a unix transport reaches this host only: no host part allowed in {uri.raw!r}")
    session = uri.driver == "qemu" and uri.path.rstrip("/") == "/session"
    if uri.transport is None and uri.driver == "qemu" and not session and \
            uri.path.rstrip("/") != "/system":
        raise ConnectionFailedError(
            f"qemu URIs are qemu:///session or qemu:///system, not {uri.raw!r}")
    paths = session_paths() if session else system_paths()
    socket = uri.param("socket")
    return Endpoint(transport, socket or str(paths.socket), _daemon_uri(uri),
                    paths if session and not socket else None)


def _connect_unix(point: Endpoint, timeout: float) -> RemoteClient:
    if point.autostart is not None:
        from virtkit.daemon.launcher import ensure_session_daemon

        ensure_session_daemon(point.autostart)
    return RemoteClient.connect_unix(point.socket, timeout=timeout)


#: Transport name -> connector: ``(endpoint, timeout) -> RemoteClient`` (not yet opened).
TRANSPORTS: dict[str, Callable[[Endpoint, float], RemoteClient]] = {
    "unix": _connect_unix,
}

# --- errors ---------------------------------------------------------------------------------

#: Codes RemoteClient reports as a plain VirtError that virtkit has a class for.
_MORE_CLASSES: dict[int, type[VirtError]] = {
    ErrorCode.READ_FAILED: SaveFileError,
    ErrorCode.XML_ERROR: XMLError,
    ErrorCode.XML_INVALID_SCHEMA: XMLSchemaError,
}


def _refine(exc: VirtError) -> VirtError:
    """The daemon's error as the most specific virtkit class its code has."""
    if type(exc) is not VirtError:
        return exc
    fields: dict[str, Any] = dict(code=exc.code, domain=exc.domain, level=exc.level,
                                  str1=exc.str1, str2=exc.str2, str3=exc.str3)
    if exc.code == ErrorCode.SYSTEM_ERROR:
        return VirtSystemError(exc.message, errno=exc.int1 if exc.int1 >= 0 else None,
                               **fields)
    cls = _MORE_CLASSES.get(exc.code)
    if cls is None:
        return exc
    return cls(exc.message, int1=exc.int1, int2=exc.int2, **fields)


#: State number -> DomainState, without the enum's call machinery on the info path.
_STATES: dict[int, DomainState] = {int(s): s for s in DomainState}


def _state(number: int) -> DomainState:
    state = _STATES.get(number)
    return state if state is not None else DomainState(number)


def _wire(ref: DomainRef) -> dict[str, Any]:
    return {"name": ref[0], "uuid": ref[1], "id": ref[2]}


def _wire_net(ref: NetworkRef) -> dict[str, Any]:
    return {"name": ref[0], "uuid": ref[1]}


def _ref(d: dict[str, Any]) -> DomainRef:
    return DomainRef(d["name"], d["uuid"], d["id"])


def _net_ref(n: dict[str, Any]) -> NetworkRef:
    return NetworkRef(n["name"], n["uuid"])


class RemoteDriver(Driver):
    """A connection to a daemon speaking libvirt's remote protocol (virtkitd, libvirtd)."""

    name = "remote"
    schemes: ClassVar[tuple[str, ...]] = ()
    checks_state_itself = True

    def __init__(self, uri: URI, read_only: bool, client: RemoteClient,
                 daemon_uri: str) -> None:
        super().__init__(uri, read_only)
        self.client = client
        #: The URI the daemon opened for us.
        self.daemon_uri = daemon_uri
        self._ncpus: int | None = None

    @classmethod
    def open(cls, uri: URI, read_only: bool) -> RemoteDriver:
        point = endpoint(uri)
        try:
            client = TRANSPORTS[point.transport](point, CONNECT_TIMEOUT)
        except RPCError as exc:
            hint = (" (is 'virtkitd --system' running?)"
                    if point.daemon_uri == "qemu:///system" and uri.param("socket") is None
                    else "")
            raise ConnectionFailedError(
                f"cannot connect to the daemon for {uri.raw!r}: {exc}{hint}") from None
        try:
            client.open(point.daemon_uri, readonly=read_only)
        except VirtError as exc:
            client.close()
            if isinstance(exc, ConnectionFailedError):
                raise
            raise ConnectionFailedError(
                f"the daemon refused to open {point.daemon_uri!r}: {exc}") from None
        return cls(uri, read_only, client, point.daemon_uri)

    def close(self) -> None:
        self.client.close()

    def _call(self, name: str, args: Any = None) -> Any:
        try:
            return self.client.call(name, args)
        except VirtError as exc:
            raise _refine(exc) from None

    # --- connection and node ---------------------------------------------------------------

    def get_type(self) -> str:
        return self._call("connect_get_type")["type"]  # type: ignore[no-any-return]

    def get_version(self) -> int:
        return self._call("connect_get_version")["hv_ver"]  # type: ignore[no-any-return]

    def get_hostname(self) -> str:
        return self._call("connect_get_hostname")["hostname"]  # type: ignore[no-any-return]

    def get_max_vcpus(self, type: str | None) -> int:
        return self._call("connect_get_max_vcpus", {"type": type})["max_vcpus"]  # type: ignore[no-any-return]

    def get_node_info(self) -> NodeInfo:
        n = self._call("node_get_info")
        self._ncpus = n["cpus"]
        return NodeInfo(n["model"], n["memory"], n["cpus"], n["mhz"], n["nodes"], n["sockets"],
                        n["cores"], n["threads"])

    def get_capabilities(self) -> Capabilities:
        return parse_capabilities(self._call("connect_get_capabilities")["capabilities"])

    # --- domains: listing, look-up, creation -----------------------------------------------

    def _list_domains(self, flags: int) -> list[DomainRef]:
        ret = self._call("connect_list_all_domains", {"need_results": 1, "flags": flags})
        return [_ref(d) for d in ret["domains"]]

    def list_domain_ids(self) -> list[int]:
        return sorted(r.id for r in self._list_domains(_LIST_ACTIVE))

    def list_defined_domain_names(self) -> list[str]:
        return sorted(r.name for r in self._list_domains(_LIST_INACTIVE))

    def list_all_domains(self) -> list[DomainRef]:
        refs = self._list_domains(0)
        active = sorted((r for r in refs if r.id != -1), key=lambda r: r.id)
        inactive = sorted((r for r in refs if r.id == -1), key=lambda r: r.name)
        return active + inactive

    def lookup_domain_by_id(self, id: int) -> DomainRef:
        return _ref(self._call("domain_lookup_by_id", {"id": id})["dom"])

    def lookup_domain_by_name(self, name: str) -> DomainRef:
        return _ref(self._call("domain_lookup_by_name", {"name": name})["dom"])

    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        return _ref(self._call("domain_lookup_by_uuid", {"uuid": uuid})["dom"])

    def create_domain(self, config: DomainConfig) -> DomainRef:
        ret = self._call("domain_create_xml", {"xml_desc": format_domain(config), "flags": 0})
        return _ref(ret["dom"])

    def define_domain(self, config: DomainConfig) -> DomainRef:
        return _ref(self._call("domain_define_xml", {"xml": format_domain(config)})["dom"])

    def restore_domain(self, path: str) -> DomainRef:
        # The protocol's restore returns nothing: the restored domain is the one that
        # became active (the newest, should another client start one meanwhile).
        before = {r.uuid for r in self._list_domains(_LIST_ACTIVE)}
        self._call("domain_restore", {"from": path})
        new = [r for r in self._list_domains(_LIST_ACTIVE) if r.uuid not in before]
        if not new:
            raise VirtError(f"the daemon restored '{path}' but no new domain is active")
        return max(new, key=lambda r: r.id)

    # --- one domain --------------------------------------------------------------------------

    def domain_get_state(self, dom: DomainRef) -> tuple[DomainState, int]:
        ret = self._call("domain_get_state", {"dom": _wire(dom), "flags": 0})
        return _state(ret["state"]), ret["reason"]

    def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        try:
            i = self.client.call("domain_get_info", {"dom": _wire(dom)})
        except VirtError as exc:
            raise _refine(exc) from None
        return DomainInfo(_state(i["state"]), i["max_mem"], i["memory"], i["nr_virt_cpu"],
                          i["cpu_time"])

    def domain_get_os_type(self, dom: DomainRef) -> str:
        return self._call("domain_get_os_type", {"dom": _wire(dom)})["type"]  # type: ignore[no-any-return]

    def domain_get_max_memory(self, dom: DomainRef) -> int:
        return self._call("domain_get_max_memory", {"dom": _wire(dom)})["memory"]  # type: ignore[no-any-return]

    def domain_set_max_memory(self, dom: DomainRef, kib: int) -> None:
        self._call("domain_set_max_memory", {"dom": _wire(dom), "memory": kib})

    def domain_set_memory(self, dom: DomainRef, kib: int) -> None:
        self._call("domain_set_memory", {"dom": _wire(dom), "memory": kib})

    def domain_set_vcpus(self, dom: DomainRef, count: int) -> None:
        self._call("domain_set_vcpus", {"dom": _wire(dom), "nvcpus": count})

    def domain_pin_vcpu(self, dom: DomainRef, vcpu: int, cpumap: tuple[bool, ...]) -> None:
        bitmap = bytearray((len(cpumap) + 7) // 8)
        for cpu, on in enumerate(cpumap):
            if on:
                bitmap[cpu >> 3] |= 1 << (cpu & 7)
        self._call("domain_pin_vcpu", {"dom": _wire(dom), "vcpu": vcpu, "cpumap": bytes(bitmap)})

    def domain_get_vcpus(self, dom: DomainRef) -> list[VcpuInfo]:
        ncpus = self._ncpus if self._ncpus is not None else self.get_node_info().cpus
        count = self.domain_get_info(dom).nr_virt_cpu
        maplen = (ncpus + 7) // 8
        ret = self._call("domain_get_vcpus", {"dom": _wire(dom), "maxinfo": count,
                                              "maplen": maplen})
        maps: bytes = ret["cpumaps"]
        out = []
        for n, v in enumerate(ret["info"]):
            row = maps[n * maplen:(n + 1) * maplen]
            affinity = tuple(bool(row[i >> 3] & (1 << (i & 7))) if (i >> 3) < len(row) else False
                             for i in range(ncpus))
            out.append(VcpuInfo(v["number"], VcpuState(v["state"]), v["cpu_time"], v["cpu"],
                                affinity))
        return out

    def domain_get_config(self, dom: DomainRef, inactive: bool) -> DomainConfig:
        ret = self._call("domain_get_xml_desc", {"dom": _wire(dom),
                                                 "flags": _XML_INACTIVE if inactive else 0})
        return parse_domain(ret["xml"])

    def domain_start(self, dom: DomainRef) -> DomainRef:
        return _ref(self._call("domain_create_with_flags", {"dom": _wire(dom), "flags": 0})["dom"])

    def domain_suspend(self, dom: DomainRef) -> None:
        self._call("domain_suspend", {"dom": _wire(dom)})

    def domain_resume(self, dom: DomainRef) -> None:
        self._call("domain_resume", {"dom": _wire(dom)})

    def domain_shutdown(self, dom: DomainRef) -> None:
        self._call("domain_shutdown", {"dom": _wire(dom)})

    def domain_reboot(self, dom: DomainRef) -> None:
        self._call("domain_reboot", {"dom": _wire(dom), "flags": 0})

    def domain_destroy(self, dom: DomainRef) -> None:
        self._call("domain_destroy", {"dom": _wire(dom)})

    def domain_undefine(self, dom: DomainRef) -> None:
        self._call("domain_undefine", {"dom": _wire(dom)})

    def domain_save(self, dom: DomainRef, path: str) -> None:
        self._call("domain_save", {"dom": _wire(dom), "to": path})

    def domain_core_dump(self, dom: DomainRef, path: str) -> None:
        self._call("domain_core_dump", {"dom": _wire(dom), "to": path, "flags": 0})

    def domain_get_autostart(self, dom: DomainRef) -> bool:
        return bool(self._call("domain_get_autostart", {"dom": _wire(dom)})["autostart"])

    def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        self._call("domain_set_autostart", {"dom": _wire(dom), "autostart": int(autostart)})

    def domain_is_persistent(self, dom: DomainRef) -> bool:
        return bool(self._call("domain_is_persistent", {"dom": _wire(dom)})["persistent"])

    def domain_get_console_path(self, dom: DomainRef) -> str:
        # No procedure carries it (libvirt streams consoles): the pty is in the live XML,
        # and this operation's state check is ours, since the daemon does not see it.
        state = self.domain_get_state(dom)[0]
        if state in (DomainState.SHUTOFF, DomainState.NOSTATE):
            raise OperationInvalidError(
                f"domain '{dom.name}' is not running (state: {state.label})")
        for dev in self.domain_get_config(dom, False).chardevs:
            if dev.type == "pty" and (dev.tty or dev.source_path):
                return dev.tty or dev.source_path or ""
        raise OperationInvalidError(f"domain '{dom.name}' has no serial console")

    def domain_attach_device(self, dom: DomainRef, device: Device) -> None:
        self._call("domain_attach_device", {"dom": _wire(dom), "xml": format_device(device)})

    def domain_detach_device(self, dom: DomainRef, device: Device) -> None:
        self._call("domain_detach_device", {"dom": _wire(dom), "xml": format_device(device)})

    def domain_interface_addresses(self, dom: DomainRef, source: int) -> list[DomainInterface]:
        from virtkit.domain import DomainInterface, InterfaceAddress

        ret = self._call("domain_interface_addresses", {"dom": _wire(dom), "source": source,
                                                        "flags": 0})
        return [DomainInterface(i["name"], i["hwaddr"],
                                tuple(InterfaceAddress(a["type"], a["addr"], a["prefix"])
                                      for a in i["addrs"]))
                for i in ret["ifaces"]]

    # --- networks ----------------------------------------------------------------------------

    def _list_networks(self, flags: int) -> list[str]:
        ret = self._call("connect_list_all_networks", {"need_results": 1, "flags": flags})
        return sorted(n["name"] for n in ret["nets"])

    def list_network_names(self) -> list[str]:
        return self._list_networks(_NET_LIST_ACTIVE)

    def list_defined_network_names(self) -> list[str]:
        return self._list_networks(_NET_LIST_INACTIVE)

    def lookup_network_by_name(self, name: str) -> NetworkRef:
        return _net_ref(self._call("network_lookup_by_name", {"name": name})["net"])

    def lookup_network_by_uuid(self, uuid: bytes) -> NetworkRef:
        return _net_ref(self._call("network_lookup_by_uuid", {"uuid": uuid})["net"])

    def create_network(self, config: NetworkConfig) -> NetworkRef:
        return _net_ref(self._call("network_create_xml", {"xml": format_network(config)})["net"])

    def define_network(self, config: NetworkConfig) -> NetworkRef:
        return _net_ref(self._call("network_define_xml", {"xml": format_network(config)})["net"])

    def network_is_active(self, net: NetworkRef) -> bool:
        return bool(self._call("network_is_active", {"net": _wire_net(net)})["active"])

    def network_is_persistent(self, net: NetworkRef) -> bool:
        return bool(self._call("network_is_persistent", {"net": _wire_net(net)})["persistent"])

    def network_get_config(self, net: NetworkRef, inactive: bool) -> NetworkConfig:
        ret = self._call("network_get_xml_desc", {"net": _wire_net(net),
                                                  "flags": _NET_XML_INACTIVE if inactive else 0})
        return parse_network(ret["xml"])

    def network_get_bridge_name(self, net: NetworkRef) -> str:
        return self._call("network_get_bridge_name", {"net": _wire_net(net)})["name"]  # type: ignore[no-any-return]

    def network_start(self, net: NetworkRef) -> None:
        self._call("network_create", {"net": _wire_net(net)})

    def network_destroy(self, net: NetworkRef) -> None:
        self._call("network_destroy", {"net": _wire_net(net)})

    def network_undefine(self, net: NetworkRef) -> None:
        self._call("network_undefine", {"net": _wire_net(net)})

    def network_get_autostart(self, net: NetworkRef) -> bool:
        return bool(self._call("network_get_autostart", {"net": _wire_net(net)})["autostart"])

    def network_set_autostart(self, net: NetworkRef, autostart: bool) -> None:
        self._call("network_set_autostart", {"net": _wire_net(net), "autostart": int(autostart)})

    def network_get_dhcp_leases(self, net: NetworkRef, mac: str | None) -> list[DHCPLease]:
        from virtkit.network import DHCPLease, IPAddrType

        ret = self._call("network_get_dhcp_leases", {"net": _wire_net(net), "mac": mac,
                                                     "need_results": 1, "flags": 0})
        return [DHCPLease(x["iface"], x["expirytime"], IPAddrType(x["type"]), x["mac"],
                          x["iaid"], x["ipaddr"], x["prefix"], x["hostname"], x["clientid"])
                for x in ret["leases"]]
