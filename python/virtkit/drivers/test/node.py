"""The state of one test node: domains and networks with their state machines."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field

from virtkit.domain import DomainState
from virtkit.drivers.interface import DomainRef, NetworkRef
from virtkit.errors import DomainExistsError, NetworkExistsError, NoDomainError, NoNetworkError
from virtkit.uuid import format_uuid, generate_uuid_bytes
from virtkit.xml.domain import DomainConfig
from virtkit.xml.network import NetworkConfig


@dataclass
class TestDomain:
    """One domain of a test node."""

    #: The definition (what the next start uses); for a transient domain, its config.
    config: DomainConfig
    persistent: bool
    state: DomainState = DomainState.SHUTOFF
    id: int = -1
    #: The live configuration while active.
    live: DomainConfig | None = None
    autostart: bool = False
    #: CPU time accumulated before ``running_since``, ns.
    cpu_time: int = 0
    running_since: float | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def uuid(self) -> bytes:
        assert self.config.uuid is not None
        return self.config.uuid

    @property
    def active(self) -> bool:
        return self.state not in (DomainState.SHUTOFF, DomainState.NOSTATE)

    @property
    def current(self) -> DomainConfig:
        """The configuration in force: live while active, else the definition."""
        return self.live if self.live is not None else self.config

    def ref(self) -> DomainRef:
        return DomainRef(self.config.name, self.uuid, self.id)

    def cpu_time_now(self) -> int:
        if self.running_since is None:
            return self.cpu_time
        elapsed = time.monotonic() - self.running_since
        return self.cpu_time + int(elapsed * 1e9 * max(1, self.current.online_vcpus) * 0.01)

    def start_clock(self) -> None:
        if self.running_since is None:
            self.running_since = time.monotonic()

    def stop_clock(self) -> None:
        self.cpu_time = self.cpu_time_now()
        self.running_since = None


@dataclass
class TestNetwork:
    """One network of a test node."""

    config: NetworkConfig
    persistent: bool
    active: bool = False
    autostart: bool = False
    #: The bridge chosen when started (the config's, or a free virbrN).
    bridge: str | None = None

    def ref(self) -> NetworkRef:
        assert self.config.uuid is not None
        return NetworkRef(self.config.name, self.config.uuid)


@dataclass
class NodeFacts:
    model: str = "i686"
    memory: int = 3 * 1024 * 1024
    cpus: int = 16
    mhz: int = 1400
    nodes: int = 2
    sockets: int = 2
    cores: int = 2
    threads: int = 2


@dataclass
class TestNode:
    """A whole fake host. All access goes through ``lock``."""

    facts: NodeFacts = field(default_factory=NodeFacts)
    domains: dict[bytes, TestDomain] = field(default_factory=dict)
    by_name: dict[str, bytes] = field(default_factory=dict)
    by_id: dict[int, bytes] = field(default_factory=dict)
    networks: dict[bytes, TestNetwork] = field(default_factory=dict)
    net_by_name: dict[str, bytes] = field(default_factory=dict)
    next_id: int = 1
    lock: threading.RLock = field(default_factory=threading.RLock)

    # --- domains ---------------------------------------------------------------------

    def domain(self, uuid: bytes) -> TestDomain:
        dom = self.domains.get(uuid)
        if dom is None:
            raise NoDomainError(f"Domain not found: no domain with matching uuid '{format_uuid(uuid)}'")
        return dom

    def find_by_name(self, name: str) -> TestDomain:
        uuid = self.by_name.get(name)
        if uuid is None:
            raise NoDomainError(f"Domain not found: no domain with matching name '{name}'")
        return self.domains[uuid]

    def find_by_id(self, id: int) -> TestDomain:
        uuid = self.by_id.get(id)
        if uuid is None:
            raise NoDomainError(f"Domain not found: no domain with matching id {id}")
        return self.domains[uuid]

    def admit(self, config: DomainConfig, *, persistent: bool) -> TestDomain:
        """Find the domain ``config`` refers to, or add it; refuse name/UUID clashes."""
        existing = self.domains.get(config.uuid) if config.uuid is not None else None
        named = self.by_name.get(config.name)
        if named is not None and (config.uuid is None or named != config.uuid):
            other = format_uuid(named)
            raise DomainExistsError(
                f"domain '{config.name}' already exists with uuid {other}")
        if existing is not None:
            if existing.name != config.name:
                raise DomainExistsError(
                    f"domain '{existing.name}' already exists with uuid {format_uuid(existing.uuid)}")
            return existing
        if config.uuid is None:
            config = dataclasses.replace(config, uuid=generate_uuid_bytes())
        dom = TestDomain(config=dataclasses.replace(config, id=None), persistent=persistent)
        self.domains[dom.uuid] = dom
        self.by_name[dom.name] = dom.uuid
        return dom

    def start(self, dom: TestDomain, config: DomainConfig | None = None) -> None:
        """Make ``dom`` running with ``config`` (its definition by default)."""
        dom.id = self.next_id
        self.next_id += 1
        self.by_id[dom.id] = dom.uuid
        dom.live = dataclasses.replace(config or dom.config, id=dom.id)
        dom.state = DomainState.RUNNING
        dom.start_clock()

    def stop(self, dom: TestDomain) -> None:
        """Shut ``dom`` off; a transient domain disappears."""
        dom.stop_clock()
        self.by_id.pop(dom.id, None)
        dom.id = -1
        dom.live = None
        dom.state = DomainState.SHUTOFF
        if not dom.persistent:
            self.forget(dom)

    def forget(self, dom: TestDomain) -> None:
        self.domains.pop(dom.uuid, None)
        self.by_name.pop(dom.name, None)
        self.by_id.pop(dom.id, None)

    # --- networks --------------------------------------------------------------------

    def network(self, uuid: bytes) -> TestNetwork:
        net = self.networks.get(uuid)
        if net is None:
            raise NoNetworkError(f"Network not found: no network with matching uuid '{format_uuid(uuid)}'")
        return net

    def find_network(self, name: str) -> TestNetwork:
        uuid = self.net_by_name.get(name)
        if uuid is None:
            raise NoNetworkError(f"Network not found: no network with matching name '{name}'")
        return self.networks[uuid]

    def admit_network(self, config: NetworkConfig, *, persistent: bool) -> TestNetwork:
        existing = self.networks.get(config.uuid) if config.uuid is not None else None
        named = self.net_by_name.get(config.name)
        if named is not None and (config.uuid is None or named != config.uuid):
            raise NetworkExistsError(
                f"network '{config.name}' already exists with uuid {format_uuid(named)}")
        if existing is not None:
            if existing.config.name != config.name:
                raise NetworkExistsError(
                    f"network '{existing.config.name}' already exists with uuid "
                    f"{format_uuid(config.uuid or b'')}")
            return existing
        if config.uuid is None:
            config = dataclasses.replace(config, uuid=generate_uuid_bytes())
        net = TestNetwork(config=config, persistent=persistent)
        assert config.uuid is not None
        self.networks[config.uuid] = net
        self.net_by_name[config.name] = config.uuid
        return net

    def start_network(self, net: TestNetwork) -> None:
        net.bridge = net.config.bridge or self._free_bridge()
        net.active = True

    def stop_network(self, net: TestNetwork) -> None:
        net.active = False
        net.bridge = None
        if not net.persistent:
            self.forget_network(net)

    def forget_network(self, net: TestNetwork) -> None:
        assert net.config.uuid is not None
        self.networks.pop(net.config.uuid, None)
        self.net_by_name.pop(net.config.name, None)

    def _free_bridge(self) -> str:
        used = {n.bridge for n in self.networks.values() if n.active}
        used |= {n.config.bridge for n in self.networks.values()}
        i = 0
        while f"virbr{i}" in used:
            i += 1
        return f"virbr{i}"
