"""The test driver: every operation of the contract, on a :class:`TestNode`."""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import TYPE_CHECKING

from virtkit._files import write_atomically
from virtkit.connection import NodeInfo
from virtkit.domain import DomainInfo, DomainState, VcpuInfo, VcpuState
from virtkit.drivers.edit import attach_device, detach_device, with_pin
from virtkit.drivers.interface import DomainRef, Driver, NetworkRef
from virtkit.drivers.test.node import NodeFacts, TestDomain, TestNetwork, TestNode
from virtkit.errors import (
    ConnectionFailedError,
    DomainExistsError,
    InvalidArgumentError,
    NoSupportError,
    OperationFailedError,
    OperationInvalidError,
    SaveFileError,
    VirtError,
    VirtSystemError,
)
from virtkit.uri import URI
from virtkit.xml.capabilities import Capabilities, GuestCaps, GuestDomain
from virtkit.xml.domain import (
    Device,
    Disk,
    DomainConfig,
    Interface,
    LifecycleAction,
    OSConfig,
    VcpuPin,
)
from virtkit.xml.network import DHCPRange, IPConfig, NetworkConfig

if TYPE_CHECKING:
    from virtkit.domain import DomainInterface
    from virtkit.network import DHCPLease

MAX_VCPUS = 32
SAVE_MAGIC = b"VirtkitTestSave 1\n"
CORE_MAGIC = b"VirtkitTestCore 1\n"

_default_node: TestNode | None = None
_default_lock = threading.Lock()


def default_node() -> TestNode:
    """The node of ``test:///default``, created once per process."""
    global _default_node
    with _default_lock:
        if _default_node is None:
            _default_node = _build_default_node()
        return _default_node


def _build_default_node() -> TestNode:
    from virtkit.uuid import parse_uuid

    node = TestNode(facts=NodeFacts())
    dom = DomainConfig(
        name="test",
        type="test",
        uuid=parse_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f"),
        memory=8 * 1024 * 1024,
        current_memory=2 * 1024 * 1024,
        vcpus=2,
        os=OSConfig(type="hvm", arch="i686", boot=("hd",)),
        clock_offset="utc",
        on_poweroff=LifecycleAction.DESTROY,
        on_reboot=LifecycleAction.RESTART,
        on_crash=LifecycleAction.DESTROY,
        disks=(Disk(type="file", device="disk", source="/guest/diskimage1",
                    target_dev="vda", target_bus="virtio"),),
        interfaces=(Interface(type="network", mac="aa:bb:cc:dd:ee:ff", source="default",
                              target_dev="testnet0"),),
    )
    node.start(node.admit(dom, persistent=True))
    net = NetworkConfig(
        name="default",
        uuid=parse_uuid("dd8fe884-6c02-601e-7551-cca97df1c5df"),
        forward_mode="nat",
        bridge="virbr0",
        stp=True,
        delay=0,
        ips=(IPConfig(address="192.168.122.1", prefix=24,
                      dhcp_ranges=(DHCPRange("192.168.122.2", "192.168.122.254"),)),),
    )
    node.start_network(node.admit_network(net, persistent=True))
    return node


def load_node_file(path: str) -> TestNode:
    """A fresh node from a node file; its domains and networks start active."""
    from pathlib import Path

    from virtkit.xml.node import parse_node

    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise ConnectionFailedError(f"cannot read test node file '{path}': {e.strerror}") from None
    config = parse_node(text, Path(path).parent)
    defaults = NodeFacts()
    facts = NodeFacts(
        model=config.cpu_model or defaults.model,
        memory=config.memory or defaults.memory,
        cpus=config.cpus or defaults.cpus,
        mhz=config.cpu_mhz or defaults.mhz,
        nodes=config.nodes or defaults.nodes,
        sockets=config.sockets or defaults.sockets,
        cores=config.cores or defaults.cores,
        threads=config.threads or defaults.threads,
    )
    node = TestNode(facts=facts)
    for dom_config in config.domains:
        node.start(node.admit(dom_config, persistent=True))
    for net_config in config.networks:
        node.start_network(node.admit_network(net_config, persistent=True))
    return node


class TestDriver(Driver):
    """The built-in, in-memory hypervisor (see the package docstring)."""

    name = "Test"
    schemes = ("test",)
    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, uri: URI, read_only: bool, node: TestNode) -> None:
        super().__init__(uri, read_only)
        self.node = node

    @classmethod
    def open(cls, uri: URI, read_only: bool) -> TestDriver:
        if uri.host or uri.transport:
            raise ConnectionFailedError(
                f"test:// URIs name no host or transport: {uri.raw!r} "
                "(use test:///default or test:///ABSOLUTE/PATH.xml)")
        if uri.path in ("/default", ""):
            return cls(uri, read_only, default_node())
        if not uri.path.startswith("/"):
            raise ConnectionFailedError(f"test node file must be an absolute path: {uri.raw!r}")
        return cls(uri, read_only, load_node_file(uri.path))

    # --- connection and node ---------------------------------------------------------

    def get_type(self) -> str:
        return "Test"

    def get_version(self) -> int:
        return 2

    def get_hostname(self) -> str:
        return os.uname().nodename

    def get_max_vcpus(self, type: str | None) -> int:
        return MAX_VCPUS

    def get_node_info(self) -> NodeInfo:
        f = self.node.facts
        return NodeInfo(f.model, f.memory, f.cpus, f.mhz, f.nodes, f.sockets, f.cores, f.threads)

    def get_capabilities(self) -> Capabilities:
        arch = self.node.facts.model
        wordsize = 64 if arch in ("x86_64", "aarch64", "ppc64", "s390x") else 32
        return Capabilities(
            host_arch=arch,
            host_features=("pae", "nonpae"),
            guests=(
                GuestCaps(os_type="hvm", arch=arch, wordsize=wordsize,
                          domains=(GuestDomain("test"),), features=("pae", "nonpae")),
                GuestCaps(os_type="xen", arch=arch, wordsize=wordsize,
                          domains=(GuestDomain("test"),), features=("pae", "nonpae")),
            ),
        )

    # --- domains: listing, look-up, creation ----------------------------------------------

    def list_domain_ids(self) -> list[int]:
        with self.node.lock:
            return sorted(self.node.by_id)

    def list_defined_domain_names(self) -> list[str]:
        with self.node.lock:
            return sorted(d.name for d in self.node.domains.values() if not d.active)

    def list_all_domains(self) -> list[DomainRef]:
        with self.node.lock:
            doms = self.node.domains.values()
            active = sorted((d for d in doms if d.active), key=lambda d: d.id)
            inactive = sorted((d for d in doms if not d.active), key=lambda d: d.name)
            return [d.ref() for d in active + inactive]

    def lookup_domain_by_id(self, id: int) -> DomainRef:
        with self.node.lock:
            return self.node.find_by_id(id).ref()

    def lookup_domain_by_name(self, name: str) -> DomainRef:
        with self.node.lock:
            return self.node.find_by_name(name).ref()

    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        with self.node.lock:
            return self.node.domain(uuid).ref()

    def create_domain(self, config: DomainConfig) -> DomainRef:
        self._check_config(config)
        with self.node.lock:
            dom = self.node.admit(config, persistent=False)
            if dom.active:
                raise DomainExistsError(f"domain '{dom.name}' is already active")
            self.node.start(dom, dataclasses.replace(config, uuid=dom.uuid))
            return dom.ref()

    def define_domain(self, config: DomainConfig) -> DomainRef:
        self._check_config(config)
        with self.node.lock:
            dom = self.node.admit(config, persistent=True)
            dom.config = dataclasses.replace(config, uuid=dom.uuid, id=None)
            dom.persistent = True
            return dom.ref()

    def restore_domain(self, path: str) -> DomainRef:
        from virtkit.xml.domain import parse_domain

        header, xml = _read_save_file(path)
        try:
            config = parse_domain(xml)
        except VirtError as e:
            raise SaveFileError(f"save file '{path}' holds an invalid domain: {e}") from None
        with self.node.lock:
            dom = self.node.admit(config, persistent=False)
            if dom.active:
                raise DomainExistsError(f"domain '{dom.name}' is already active")
            self.node.start(dom, config)
            cpu_time = header.get("cpu_time", 0)
            dom.cpu_time = int(cpu_time) if isinstance(cpu_time, (int, float)) else 0
            if header.get("state") == int(DomainState.PAUSED):
                dom.stop_clock()
                dom.state = DomainState.PAUSED
            return dom.ref()

    def _check_config(self, config: DomainConfig) -> None:
        if config.type not in ("test",):
            raise InvalidArgumentError(
                f"the test driver runs domains of type 'test', not '{config.type}'")
        if config.memory <= 0:
            raise InvalidArgumentError("domain memory must be positive")
        if config.current_memory is not None and config.current_memory > config.memory:
            raise InvalidArgumentError(
                f"current memory {config.current_memory} KiB exceeds maximum {config.memory} KiB")
        if not 1 <= config.vcpus <= MAX_VCPUS:
            raise InvalidArgumentError(f"vCPU count {config.vcpus} is not in 1..{MAX_VCPUS}")

    # --- one domain ------------------------------------------------------------------

    def _dom(self, ref: DomainRef) -> TestDomain:
        return self.node.domain(ref.uuid)

    def domain_get_state(self, dom: DomainRef) -> tuple[DomainState, int]:
        with self.node.lock:
            return self._dom(dom).state, 0

    def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        with self.node.lock:
            d = self._dom(dom)
            c = d.current
            return DomainInfo(d.state, c.memory, c.current_memory_kib, c.online_vcpus, d.cpu_time_now())

    def domain_get_os_type(self, dom: DomainRef) -> str:
        with self.node.lock:
            return self._dom(dom).current.os.type

    def domain_get_max_memory(self, dom: DomainRef) -> int:
        with self.node.lock:
            return self._dom(dom).current.memory

    def domain_set_max_memory(self, dom: DomainRef, kib: int) -> None:
        with self.node.lock:
            d = self._dom(dom)
            d.config = _with_max_memory(d.config, kib)
            if d.live is not None:
                d.live = _with_max_memory(d.live, kib)

    def domain_set_memory(self, dom: DomainRef, kib: int) -> None:
        with self.node.lock:
            d = self._dom(dom)
            target = d.current
            if kib > target.memory:
                raise InvalidArgumentError(
                    f"cannot set memory to {kib} KiB: above the maximum of {target.memory} KiB")
            if d.live is not None:
                d.live = dataclasses.replace(d.live, current_memory=kib)
            else:
                d.config = dataclasses.replace(d.config, current_memory=kib)

    def domain_set_vcpus(self, dom: DomainRef, count: int) -> None:
        if count > MAX_VCPUS:
            raise InvalidArgumentError(f"cannot set {count} vCPUs: the maximum is {MAX_VCPUS}")
        with self.node.lock:
            d = self._dom(dom)
            if d.live is not None:
                d.live = _with_vcpus(d.live, count)
            else:
                d.config = _with_vcpus(d.config, count)

    def domain_pin_vcpu(self, dom: DomainRef, vcpu: int, cpumap: tuple[bool, ...]) -> None:
        from virtkit.cpuset import format_cpulist

        with self.node.lock:
            d = self._dom(dom)
            if vcpu >= d.current.online_vcpus:
                raise InvalidArgumentError(
                    f"vCPU {vcpu} does not exist: domain '{d.name}' has {d.current.online_vcpus}")
            pin = VcpuPin(vcpu, format_cpulist(cpumap))
            # Remembered in the live state and in the definition (the next start keeps it).
            if d.live is not None:
                d.live = with_pin(d.live, pin)
            if d.persistent or d.live is None:
                d.config = with_pin(d.config, pin)

    def domain_get_vcpus(self, dom: DomainRef) -> list[VcpuInfo]:
        from virtkit.cpuset import parse_cpulist

        with self.node.lock:
            d = self._dom(dom)
            c = d.current
            ncpus = self.node.facts.cpus
            count = c.online_vcpus
            pins = {p.vcpu: p.cpuset for p in c.vcpu_pins}
            default = parse_cpulist(c.cpuset, ncpus) if c.cpuset else (True,) * ncpus
            each = d.cpu_time_now() // max(1, count)
            state = VcpuState.RUNNING if d.state == DomainState.RUNNING else VcpuState.BLOCKED
            out = []
            for n in range(count):
                affinity = parse_cpulist(pins[n], ncpus) if n in pins else default
                cpu = affinity.index(True) if True in affinity else -1
                out.append(VcpuInfo(n, state, each, cpu, affinity))
            return out

    def domain_get_config(self, dom: DomainRef, inactive: bool) -> DomainConfig:
        with self.node.lock:
            d = self._dom(dom)
            if inactive or d.live is None:
                return dataclasses.replace(d.config, id=None) if d.persistent else d.current
            return d.live

    def domain_start(self, dom: DomainRef) -> DomainRef:
        with self.node.lock:
            d = self._dom(dom)
            self.node.start(d)
            return d.ref()

    def domain_suspend(self, dom: DomainRef) -> None:
        with self.node.lock:
            d = self._dom(dom)
            d.stop_clock()
            d.state = DomainState.PAUSED

    def domain_resume(self, dom: DomainRef) -> None:
        with self.node.lock:
            d = self._dom(dom)
            d.state = DomainState.RUNNING
            d.start_clock()

    def domain_shutdown(self, dom: DomainRef) -> None:
        with self.node.lock:
            d = self._dom(dom)
            if d.current.on_poweroff in (LifecycleAction.RESTART, LifecycleAction.RENAME_RESTART):
                self._restart(d)
            else:
                self.node.stop(d)

    def domain_reboot(self, dom: DomainRef) -> None:
        with self.node.lock:
            d = self._dom(dom)
            if d.current.on_reboot == LifecycleAction.DESTROY:
                self.node.stop(d)
            else:
                self._restart(d)

    def _restart(self, d: TestDomain) -> None:
        """A guest reboot: the domain keeps running, with the same id and live config."""
        d.state = DomainState.RUNNING
        d.start_clock()

    def domain_destroy(self, dom: DomainRef) -> None:
        with self.node.lock:
            self.node.stop(self._dom(dom))

    def domain_undefine(self, dom: DomainRef) -> None:
        with self.node.lock:
            d = self._dom(dom)
            if d.active:
                d.persistent = False
                d.autostart = False
            else:
                self.node.forget(d)

    def domain_save(self, dom: DomainRef, path: str) -> None:
        import json

        from virtkit.xml.domain import format_domain

        with self.node.lock:
            d = self._dom(dom)
            header = {"name": d.name, "state": int(d.state), "cpu_time": d.cpu_time_now()}
            xml = format_domain(dataclasses.replace(d.current, id=None)).encode()
            write_atomically(path, SAVE_MAGIC + json.dumps(header).encode() + b"\n" + xml, mode=0o666)
            self.node.stop(d)

    def domain_core_dump(self, dom: DomainRef, path: str) -> None:
        with self.node.lock:
            d = self._dom(dom)
            c = d.current
            body = (f"name={d.name}\nuuid={d.uuid.hex()}\nmemory_kib={c.current_memory_kib}\n"
                    f"vcpus={c.online_vcpus}\ncpu_time_ns={d.cpu_time_now()}\n").encode()
            write_atomically(path, CORE_MAGIC + body, mode=0o666)

    def domain_get_autostart(self, dom: DomainRef) -> bool:
        with self.node.lock:
            return self._dom(dom).autostart

    def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        with self.node.lock:
            self._dom(dom).autostart = autostart

    def domain_is_persistent(self, dom: DomainRef) -> bool:
        with self.node.lock:
            return self._dom(dom).persistent

    def domain_get_console_path(self, dom: DomainRef) -> str:
        # Test domains run no guest: their console is whatever pty their XML
        # names (a test can hold the other end). The path is only a string: the
        # client opens it with its own rights, so naming one grants nothing.
        with self.node.lock:
            d = self._dom(dom)
            for dev in d.current.chardevs:
                if dev.type == "pty" and (dev.tty or dev.source_path):
                    return dev.tty or dev.source_path or ""
            raise OperationInvalidError(f"domain '{d.name}' has no serial console")

    def domain_attach_device(self, dom: DomainRef, device: Device) -> None:
        with self.node.lock:
            d = self._dom(dom)
            if d.live is not None:
                d.live = attach_device(d.live, device)
            else:
                d.config = attach_device(d.config, device)

    def domain_detach_device(self, dom: DomainRef, device: Device) -> None:
        with self.node.lock:
            d = self._dom(dom)
            if d.live is not None:
                d.live = detach_device(d.live, device)
            else:
                d.config = detach_device(d.config, device)

    def domain_interface_addresses(self, dom: DomainRef, source: int) -> list[DomainInterface]:
        """From the fake leases (see :func:`_fake_lease`) of the domain's interfaces on
        active networks; only the ``LEASE`` source."""
        from virtkit.domain import DomainInterface, InterfaceAddress, InterfaceAddressSource

        if source != InterfaceAddressSource.LEASE:
            raise NoSupportError(f"the test driver knows interface addresses from DHCP leases "
                                 f"only, not from source {source}")
        out: list[DomainInterface] = []
        with self.node.lock:
            d = self._dom(dom)
            for i, iface in enumerate(d.current.interfaces):
                if iface.type != "network" or iface.source is None:
                    continue
                uuid = self.node.net_by_name.get(iface.source)
                net = self.node.networks.get(uuid) if uuid is not None else None
                lease = _fake_lease(net, d, iface) if net is not None and net.active else None
                if lease is not None:
                    out.append(DomainInterface(iface.target_dev or f"vnet{i}", iface.mac,
                                               (InterfaceAddress(int(lease.type), lease.ipaddr,
                                                                 lease.prefix),)))
        return out

    # --- networks --------------------------------------------------------------------

    def _net(self, ref: NetworkRef) -> TestNetwork:
        return self.node.network(ref.uuid)

    def list_network_names(self) -> list[str]:
        with self.node.lock:
            return sorted(n.config.name for n in self.node.networks.values() if n.active)

    def list_defined_network_names(self) -> list[str]:
        with self.node.lock:
            return sorted(n.config.name for n in self.node.networks.values() if not n.active)

    def lookup_network_by_name(self, name: str) -> NetworkRef:
        with self.node.lock:
            return self.node.find_network(name).ref()

    def lookup_network_by_uuid(self, uuid: bytes) -> NetworkRef:
        with self.node.lock:
            return self.node.network(uuid).ref()

    def create_network(self, config: NetworkConfig) -> NetworkRef:
        with self.node.lock:
            net = self.node.admit_network(config, persistent=False)
            if net.active:
                raise OperationFailedError(f"network '{net.config.name}' is already active")
            self.node.start_network(net)
            return net.ref()

    def define_network(self, config: NetworkConfig) -> NetworkRef:
        with self.node.lock:
            net = self.node.admit_network(config, persistent=True)
            net.config = dataclasses.replace(config, uuid=net.config.uuid)
            net.persistent = True
            return net.ref()

    def network_is_active(self, net: NetworkRef) -> bool:
        with self.node.lock:
            return self._net(net).active

    def network_is_persistent(self, net: NetworkRef) -> bool:
        with self.node.lock:
            return self._net(net).persistent

    def network_get_config(self, net: NetworkRef, inactive: bool) -> NetworkConfig:
        with self.node.lock:
            n = self._net(net)
            if n.active and not inactive:
                return dataclasses.replace(n.config, bridge=n.bridge)
            return n.config

    def network_get_bridge_name(self, net: NetworkRef) -> str:
        with self.node.lock:
            n = self._net(net)
            name = n.bridge or n.config.bridge
            if not name:
                raise OperationFailedError(f"network '{n.config.name}' has no bridge until it is started")
            return name

    def network_start(self, net: NetworkRef) -> None:
        with self.node.lock:
            self.node.start_network(self._net(net))

    def network_destroy(self, net: NetworkRef) -> None:
        with self.node.lock:
            self.node.stop_network(self._net(net))

    def network_undefine(self, net: NetworkRef) -> None:
        with self.node.lock:
            n = self._net(net)
            if n.active:
                n.persistent = False
                n.autostart = False
            else:
                self.node.forget_network(n)

    def network_get_autostart(self, net: NetworkRef) -> bool:
        with self.node.lock:
            return self._net(net).autostart

    def network_set_autostart(self, net: NetworkRef, autostart: bool) -> None:
        with self.node.lock:
            self._net(net).autostart = autostart

    def network_get_dhcp_leases(self, net: NetworkRef, mac: str | None) -> list[DHCPLease]:
        """One fake lease per interface of a running domain on this network (see
        :func:`_fake_lease`), domains by id."""
        with self.node.lock:
            n = self._net(net)
            leases = []
            for d in sorted((d for d in self.node.domains.values() if d.active),
                            key=lambda d: d.id):
                for iface in d.current.interfaces:
                    if iface.type == "network" and iface.source == n.config.name:
                        lease = _fake_lease(n, d, iface)
                        if lease is not None and (mac is None or lease.mac == mac):
                            leases.append(lease)
            return leases


# --- helpers --------------------------------------------------------------------------------

def _fake_lease(net: TestNetwork, dom: TestDomain, iface: Interface) -> DHCPLease | None:
    """The test driver's lease for ``iface`` of running ``dom`` on active ``net``.

    Deterministic, so that tests and golden files can rely on it: the address is
    in the first DHCP range of the network, at offset (the MAC as a number) modulo
    the range's size; the hostname is the domain's name; the lease never expires
    (expiry time 0, as dnsmasq writes an infinite lease). No lease without a MAC
    or without a DHCP range. Two MACs may map to one address: it is a fake.
    """
    import ipaddress

    from virtkit.network import DHCPLease, IPAddrType

    if iface.mac is None:
        return None
    for ip in net.config.ips:
        if not ip.dhcp_ranges:
            continue
        start = ipaddress.ip_address(ip.dhcp_ranges[0].start)
        size = int(ipaddress.ip_address(ip.dhcp_ranges[0].end)) - int(start) + 1
        if size <= 0:
            continue
        mac = iface.mac.lower()
        address = start + int(mac.replace(":", ""), 16) % size
        v6 = address.version == 6
        return DHCPLease(iface=net.bridge or net.config.bridge or "", expiry_time=0,
                         type=IPAddrType.IPV6 if v6 else IPAddrType.IPV4,
                         mac=None if v6 else mac, iaid=mac.replace(":", "") if v6 else None,
                         ipaddr=str(address), prefix=ip.prefix, hostname=dom.name,
                         client_id=None)
    return None


def _with_max_memory(c: DomainConfig, kib: int) -> DomainConfig:
    current = min(c.current_memory_kib, kib)
    return dataclasses.replace(c, memory=kib, current_memory=None if current == kib else current)


def _with_vcpus(c: DomainConfig, count: int) -> DomainConfig:
    pins = tuple(p for p in c.vcpu_pins if p.vcpu < count)
    return dataclasses.replace(c, vcpus=count, vcpus_current=None, vcpu_pins=pins)


def _read_save_file(path: str) -> tuple[dict[str, object], bytes]:
    import json

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise VirtSystemError(f"cannot read save file '{path}': {e.strerror}", errno=e.errno) from None
    if not data.startswith(SAVE_MAGIC):
        raise SaveFileError(f"'{path}' is not a test-driver save file (bad magic)")
    header_line, sep, xml = data[len(SAVE_MAGIC):].partition(b"\n")
    try:
        header = json.loads(header_line) if sep else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or not xml.rstrip().endswith(b"</domain>"):
        raise SaveFileError(f"save file '{path}' is truncated or corrupt")
    return header, xml
