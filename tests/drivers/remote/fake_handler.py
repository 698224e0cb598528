"""A small in-memory handler for RemoteServer: one running domain, one active network.

Enough of a hypervisor for stock ``virsh`` to list, inspect, define, start,
stop and undefine domains and to list networks; it also sends lifecycle
events to clients that registered for them. Not a driver: no XML validation,
no real guests.
"""

from __future__ import annotations

import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from virtkit.drivers.remote.server import ClientConnection
from virtkit.errors import (
    DomainExistsError,
    InvalidArgumentError,
    NoDomainError,
    NoNetworkError,
    OperationInvalidError,
    XMLError,
)

# libvirt's numbers (virDomainState, reasons, list flags, lifecycle events)
RUNNING, PAUSED, SHUTOFF = 1, 3, 5
LIST_ACTIVE, LIST_INACTIVE, LIST_PERSISTENT, LIST_TRANSIENT = 1, 2, 4, 8
LIST_AUTOSTART, LIST_NO_AUTOSTART = 1024, 2048
NET_LIST_INACTIVE, NET_LIST_ACTIVE = 1, 2
NET_LIST_PERSISTENT, NET_LIST_TRANSIENT = 4, 8
NET_LIST_AUTOSTART, NET_LIST_NO_AUTOSTART = 16, 32
EVENT_DEFINED, EVENT_UNDEFINED, EVENT_STARTED, EVENT_SUSPENDED = 0, 1, 2, 3
EVENT_RESUMED, EVENT_STOPPED = 4, 5
EVENT_ID_LIFECYCLE = 0

DOMAIN_XML = """<domain type='qemu'{id}>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>{max_mem}</memory>
  <currentMemory unit='KiB'>{memory}</currentMemory>
  <vcpu placement='static'>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
</domain>
"""

NETWORK_XML = """<network>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <bridge name='{bridge}'/>
</network>
"""

CAPABILITIES_XML = """<capabilities>
  <host>
    <uuid>00000000-0000-0000-0000-000000000001</uuid>
    <cpu>
      <arch>x86_64</arch>
    </cpu>
  </host>
  <guest>
    <os_type>hvm</os_type>
    <arch name='x86_64'>
      <wordsize>64</wordsize>
      <domain type='qemu'/>
    </arch>
  </guest>
</capabilities>
"""


@dataclass
class FakeDomain:
    name: str
    uuid: bytes
    id: int = -1
    state: int = SHUTOFF
    reason: int = 0
    max_mem: int = 1048576
    memory: int = 524288
    vcpus: int = 2
    cpu_time: int = 0
    persistent: bool = True
    autostart: bool = False

    def ref(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid, "id": self.id}

    def xml(self) -> str:
        return DOMAIN_XML.format(
            id=f" id='{self.id}'" if self.id >= 0 else "", name=self.name,
            uuid=uuidlib.UUID(bytes=self.uuid), max_mem=self.max_mem, memory=self.memory,
            vcpus=self.vcpus)


@dataclass
class FakeNetwork:
    name: str
    uuid: bytes
    bridge: str
    active: bool = True
    persistent: bool = True
    autostart: bool = True

    def ref(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid}


class FakeHandler:
    """Implements the procedures virsh needs for the everyday commands."""

    hv_type = "QEMU"
    hv_version = 7_002_000  # 7.2.0
    lib_version = 9_000_000  # 9.0.0

    def __init__(self) -> None:
        fv0 = FakeDomain("fv0", uuidlib.UUID("4dea22b3-1d52-d8f3-2516-782e98ab3fa0").bytes,
                         id=1, state=RUNNING, reason=1, cpu_time=12_500_000_000)
        self.domains: dict[str, FakeDomain] = {fv0.name: fv0}
        net = FakeNetwork("default", uuidlib.UUID("5c2b9b6e-3a4c-4b8e-9d0e-1f2a3b4c5d6e").bytes,
                          "virbr0")
        self.networks: dict[str, FakeNetwork] = {net.name: net}
        self.next_id = 2

    # -- connection ----------------------------------------------------------------------------

    def connect_open(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        name = args["name"]
        if name not in (None, "", "qemu:///session", "qemu:///system", "test:///default"):
            raise InvalidArgumentError(f"unsupported URI {name!r}")

    def connect_get_uri(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"uri": conn.uri or "qemu:///session"}

    def connect_get_type(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"type": self.hv_type}

    def connect_get_version(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"hv_ver": self.hv_version}

    def connect_get_lib_version(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"lib_ver": self.lib_version}

    def connect_get_hostname(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"hostname": "fakehost"}

    def connect_get_max_vcpus(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        return {"max_vcpus": 16}

    def connect_is_secure(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"secure": 1}

    def node_get_info(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"model": "x86_64", "memory": 16 * 1024 * 1024, "cpus": 8, "mhz": 2400,
                "nodes": 1, "sockets": 1, "cores": 4, "threads": 2}

    def connect_get_capabilities(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"capabilities": CAPABILITIES_XML}

    def node_get_security_model(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"model": "none", "doi": "0"}

    # -- events --------------------------------------------------------------------------------

    def connect_domain_event_callback_register_any(self, conn: ClientConnection,
                                                   args: dict[str, Any]) -> dict[str, Any]:
        callbacks = conn.data.setdefault("domain_callbacks", {})
        callback_id = len(callbacks) + 1
        callbacks[callback_id] = args["event_id"]
        return {"callback_id": callback_id}

    def connect_domain_event_callback_deregister_any(self, conn: ClientConnection,
                                                     args: dict[str, Any]) -> None:
        conn.data.get("domain_callbacks", {}).pop(args["callback_id"], None)

    def _lifecycle(self, conn: ClientConnection, dom: FakeDomain, event: int,
                   detail: int) -> None:
        for client in conn.server.connections:
            for callback_id, event_id in client.data.get("domain_callbacks", {}).items():
                if event_id == EVENT_ID_LIFECYCLE:
                    client.send_event("domain_event_callback_lifecycle", {
                        "callback_id": callback_id,
                        "msg": {"dom": dom.ref(), "event": event, "detail": detail}})

    # -- domains -------------------------------------------------------------------------------

    def _dom(self, ref: dict[str, Any]) -> FakeDomain:
        for dom in self.domains.values():
            if dom.uuid == ref["uuid"]:
                return dom
        raise NoDomainError(f"Domain not found: no domain with matching uuid "
                            f"'{uuidlib.UUID(bytes=ref['uuid'])}' ({ref['name']})")

    def connect_list_all_domains(self, conn: ClientConnection, args: dict[str, Any]
                                 ) -> dict[str, Any]:
        flags = args["flags"]
        doms = []
        for dom in sorted(self.domains.values(), key=lambda d: (d.id < 0, d.id, d.name)):
            active = dom.id >= 0
            if flags & (LIST_ACTIVE | LIST_INACTIVE) and not (
                    (flags & LIST_ACTIVE and active) or (flags & LIST_INACTIVE and not active)):
                continue
            if flags & (LIST_PERSISTENT | LIST_TRANSIENT) and not (
                    (flags & LIST_PERSISTENT and dom.persistent)
                    or (flags & LIST_TRANSIENT and not dom.persistent)):
                continue
            if flags & (LIST_AUTOSTART | LIST_NO_AUTOSTART) and not (
                    (flags & LIST_AUTOSTART and dom.autostart)
                    or (flags & LIST_NO_AUTOSTART and not dom.autostart)):
                continue
            doms.append(dom.ref())
        return {"domains": doms if args["need_results"] else [], "ret": len(doms)}

    def connect_num_of_domains(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"num": sum(d.id >= 0 for d in self.domains.values())}

    def connect_list_domains(self, conn: ClientConnection, args: dict[str, Any]
                             ) -> dict[str, Any]:
        ids = sorted(d.id for d in self.domains.values() if d.id >= 0)
        return {"ids": ids[:args["maxids"]]}

    def connect_num_of_defined_domains(self, conn: ClientConnection, args: None
                                       ) -> dict[str, Any]:
        return {"num": sum(d.id < 0 for d in self.domains.values())}

    def connect_list_defined_domains(self, conn: ClientConnection, args: dict[str, Any]
                                     ) -> dict[str, Any]:
        names = sorted(d.name for d in self.domains.values() if d.id < 0)
        return {"names": names[:args["maxnames"]]}

    def domain_lookup_by_name(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        dom = self.domains.get(args["name"])
        if dom is None:
            raise NoDomainError(
                f"Domain not found: no domain with matching name '{args['name']}'")
        return {"dom": dom.ref()}

    def domain_lookup_by_id(self, conn: ClientConnection, args: dict[str, Any]
                            ) -> dict[str, Any]:
        for dom in self.domains.values():
            if dom.id >= 0 and dom.id == args["id"]:
                return {"dom": dom.ref()}
        raise NoDomainError(f"Domain not found: no domain with matching id {args['id']}")

    def domain_lookup_by_uuid(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        for dom in self.domains.values():
            if dom.uuid == args["uuid"]:
                return {"dom": dom.ref()}
        raise NoDomainError(f"Domain not found: no domain with matching uuid "
                            f"'{uuidlib.UUID(bytes=args['uuid'])}'")

    def domain_get_info(self, conn: ClientConnection, args: dict[str, Any]) -> dict[str, Any]:
        dom = self._dom(args["dom"])
        return {"state": dom.state, "max_mem": dom.max_mem, "memory": dom.memory,
                "nr_virt_cpu": dom.vcpus, "cpu_time": dom.cpu_time if dom.id >= 0 else 0}

    def domain_get_state(self, conn: ClientConnection, args: dict[str, Any]
                         ) -> dict[str, Any]:
        dom = self._dom(args["dom"])
        return {"state": dom.state, "reason": dom.reason}

    def domain_get_xml_desc(self, conn: ClientConnection, args: dict[str, Any]
                            ) -> dict[str, Any]:
        return {"xml": self._dom(args["dom"]).xml()}

    def domain_get_os_type(self, conn: ClientConnection, args: dict[str, Any]
                           ) -> dict[str, Any]:
        self._dom(args["dom"])
        return {"type": "hvm"}

    def domain_get_max_memory(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        return {"memory": self._dom(args["dom"]).max_mem}

    def domain_get_autostart(self, conn: ClientConnection, args: dict[str, Any]
                             ) -> dict[str, Any]:
        return {"autostart": int(self._dom(args["dom"]).autostart)}

    def domain_set_autostart(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        self._dom(args["dom"]).autostart = bool(args["autostart"])

    def domain_is_active(self, conn: ClientConnection, args: dict[str, Any]
                         ) -> dict[str, Any]:
        return {"active": int(self._dom(args["dom"]).id >= 0)}

    def domain_is_persistent(self, conn: ClientConnection, args: dict[str, Any]
                             ) -> dict[str, Any]:
        return {"persistent": int(self._dom(args["dom"]).persistent)}

    def domain_is_updated(self, conn: ClientConnection, args: dict[str, Any]
                          ) -> dict[str, Any]:
        self._dom(args["dom"])
        return {"updated": 0}

    def domain_has_managed_save_image(self, conn: ClientConnection, args: dict[str, Any]
                                      ) -> dict[str, Any]:
        self._dom(args["dom"])
        return {"result": 0}

    def domain_get_security_label(self, conn: ClientConnection, args: dict[str, Any]
                                  ) -> dict[str, Any]:
        self._dom(args["dom"])
        return {"label": "", "enforcing": 0}

    def domain_define_xml_flags(self, conn: ClientConnection, args: dict[str, Any]
                                ) -> dict[str, Any]:
        return self.domain_define_xml(conn, args)

    def domain_define_xml(self, conn: ClientConnection, args: dict[str, Any]) -> dict[str, Any]:
        try:
            root = ET.fromstring(args["xml"])
        except ET.ParseError as exc:
            raise XMLError(f"XML error: {exc}") from None
        name = root.findtext("name")
        if not name:
            raise XMLError("XML error: missing domain name")
        text_uuid = root.findtext("uuid")
        raw_uuid = uuidlib.UUID(text_uuid).bytes if text_uuid else uuidlib.uuid4().bytes
        for other in self.domains.values():
            if other.uuid == raw_uuid and other.name != name:
                raise DomainExistsError(
                    f"operation failed: domain '{other.name}' already exists with uuid "
                    f"{uuidlib.UUID(bytes=raw_uuid)}")
        memory = int(root.findtext("memory") or 524288)
        vcpus = int(root.findtext("vcpu") or 1)
        dom = self.domains.get(name)
        if dom is None:
            dom = self.domains[name] = FakeDomain(name, raw_uuid, max_mem=memory,
                                                  memory=memory, vcpus=vcpus)
        else:
            dom.max_mem, dom.vcpus, dom.persistent = memory, vcpus, True
        self._lifecycle(conn, dom, EVENT_DEFINED, 0)
        return {"dom": dom.ref()}

    def domain_create_with_flags(self, conn: ClientConnection, args: dict[str, Any]
                                 ) -> dict[str, Any]:
        self.domain_create(conn, args)
        return {"dom": self._dom(args["dom"]).ref()}

    def domain_create(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        dom = self._dom(args["dom"])
        if dom.id >= 0:
            raise OperationInvalidError("Requested operation is not valid: domain is already "
                                        "running")
        dom.id, self.next_id = self.next_id, self.next_id + 1
        dom.state, dom.reason = RUNNING, 1
        self._lifecycle(conn, dom, EVENT_STARTED, 0)

    def _stop(self, conn: ClientConnection, dom: FakeDomain, reason: int) -> None:
        if dom.id < 0:
            raise OperationInvalidError("Requested operation is not valid: domain is not "
                                        "running")
        dom.id, dom.state, dom.reason = -1, SHUTOFF, reason
        self._lifecycle(conn, dom, EVENT_STOPPED, 0)
        if not dom.persistent:
            del self.domains[dom.name]

    def domain_shutdown(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        self._stop(conn, self._dom(args["dom"]), 1)

    def domain_shutdown_flags(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        self.domain_shutdown(conn, args)

    def domain_destroy(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        self._stop(conn, self._dom(args["dom"]), 2)

    def domain_destroy_flags(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        self.domain_destroy(conn, args)

    def domain_suspend(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        dom = self._dom(args["dom"])
        if dom.id < 0:
            raise OperationInvalidError("Requested operation is not valid: domain is not "
                                        "running")
        dom.state, dom.reason = PAUSED, 1
        self._lifecycle(conn, dom, EVENT_SUSPENDED, 0)

    def domain_resume(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        dom = self._dom(args["dom"])
        if dom.state != PAUSED:
            raise OperationInvalidError("Requested operation is not valid: domain is not "
                                        "paused")
        dom.state, dom.reason = RUNNING, 3
        self._lifecycle(conn, dom, EVENT_RESUMED, 0)

    def domain_undefine(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        dom = self._dom(args["dom"])
        if dom.id >= 0:
            dom.persistent = False
        else:
            del self.domains[dom.name]
        self._lifecycle(conn, dom, EVENT_UNDEFINED, 0)

    def domain_undefine_flags(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        self.domain_undefine(conn, args)

    # -- networks ------------------------------------------------------------------------------

    def _net(self, ref: dict[str, Any]) -> FakeNetwork:
        for net in self.networks.values():
            if net.uuid == ref["uuid"]:
                return net
        raise NoNetworkError(f"Network not found: no network with matching uuid "
                             f"'{uuidlib.UUID(bytes=ref['uuid'])}' ({ref['name']})")

    def connect_list_all_networks(self, conn: ClientConnection, args: dict[str, Any]
                                  ) -> dict[str, Any]:
        flags = args["flags"]
        nets = []
        for net in sorted(self.networks.values(), key=lambda n: n.name):
            if flags & (NET_LIST_ACTIVE | NET_LIST_INACTIVE) and not (
                    (flags & NET_LIST_ACTIVE and net.active)
                    or (flags & NET_LIST_INACTIVE and not net.active)):
                continue
            if flags & (NET_LIST_PERSISTENT | NET_LIST_TRANSIENT) and not (
                    (flags & NET_LIST_PERSISTENT and net.persistent)
                    or (flags & NET_LIST_TRANSIENT and not net.persistent)):
                continue
            if flags & (NET_LIST_AUTOSTART | NET_LIST_NO_AUTOSTART) and not (
                    (flags & NET_LIST_AUTOSTART and net.autostart)
                    or (flags & NET_LIST_NO_AUTOSTART and not net.autostart)):
                continue
            nets.append(net.ref())
        return {"nets": nets if args["need_results"] else [], "ret": len(nets)}

    def connect_num_of_networks(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"num": sum(n.active for n in self.networks.values())}

    def connect_list_networks(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        return {"names": sorted(n.name for n in self.networks.values() if n.active)}

    def connect_num_of_defined_networks(self, conn: ClientConnection, args: None
                                        ) -> dict[str, Any]:
        return {"num": sum(not n.active for n in self.networks.values())}

    def connect_list_defined_networks(self, conn: ClientConnection, args: dict[str, Any]
                                      ) -> dict[str, Any]:
        return {"names": sorted(n.name for n in self.networks.values() if not n.active)}

    def network_lookup_by_name(self, conn: ClientConnection, args: dict[str, Any]
                               ) -> dict[str, Any]:
        net = self.networks.get(args["name"])
        if net is None:
            raise NoNetworkError(
                f"Network not found: no network with matching name '{args['name']}'")
        return {"net": net.ref()}

    def network_lookup_by_uuid(self, conn: ClientConnection, args: dict[str, Any]
                               ) -> dict[str, Any]:
        for net in self.networks.values():
            if net.uuid == args["uuid"]:
                return {"net": net.ref()}
        raise NoNetworkError("Network not found: no network with matching uuid")

    def network_get_xml_desc(self, conn: ClientConnection, args: dict[str, Any]
                             ) -> dict[str, Any]:
        net = self._net(args["net"])
        return {"xml": NETWORK_XML.format(name=net.name, uuid=uuidlib.UUID(bytes=net.uuid),
                                          bridge=net.bridge)}

    def network_get_bridge_name(self, conn: ClientConnection, args: dict[str, Any]
                                ) -> dict[str, Any]:
        return {"name": self._net(args["net"]).bridge}

    def network_get_autostart(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        return {"autostart": int(self._net(args["net"]).autostart)}

    def network_is_active(self, conn: ClientConnection, args: dict[str, Any]
                          ) -> dict[str, Any]:
        return {"active": int(self._net(args["net"]).active)}

    def network_is_persistent(self, conn: ClientConnection, args: dict[str, Any]
                              ) -> dict[str, Any]:
        return {"persistent": int(self._net(args["net"]).persistent)}
