"""The network manager: virtual networks made real, with the driver contract's operations.

:class:`NetworkManager` owns every virtual network of one daemon: their
definitions and autostart marks (``config_dir``), their run-time state
(``state_dir``), and what an active network is on the host: a bridge
(:mod:`~virtkit.net.bridge`), a firewall table (:mod:`~virtkit.net.nftables`),
a dnsmasq (:mod:`~virtkit.net.dnsmasq`) and IP forwarding
(:mod:`~virtkit.net.sysctl`). It works in the network namespace of the
process that runs it (``virtkitd`` on the host, or inside a namespace: the
tests run it in one).

Its methods named like the contract's network operations
(``list_network_names``, ``network_start(net: NetworkRef)``...) take and
return the contract's types with the test driver's semantics, so a driver
forwards them one to one: :class:`virtkit.net.backend.NetworkBackend` is that
forwarding, as a mixin. The public layer has already checked read-only mode
and object state (habit 4); the manager still refuses what would corrupt its
own tables.

Life cycle of a network
-----------------------
- define: the document is checked (:func:`~virtkit.net.validate.check_config`),
  given a UUID, a bridge name (the lowest free ``virbrN``, as libvirt assigns
  it at define time) and a bridge MAC (``52:54:00:…``) when it names none,
  and saved atomically as ``NAME.xml``. Redefining an active network changes
  what its next start uses; the running one is left alone.
- start: everything is checked first: the document again, the bridge name
  free, no route or address overlapping the subnets, nft and (with an
  address) dnsmasq present. Then the status file is written (``starting``),
  the bridge is made, addressed and brought up, dnsmasq launched, the
  nftables table added and forwarding enabled (nat and route) while dnsmasq
  starts up, then dnsmasq awaited; the status file becomes ``active``. If any step fails, everything done so far is undone
  in reverse and the status file removed; the error names the step.
- destroy: status ``stopping``, dnsmasq signalled, table deleted, bridge
  deleted, dnsmasq's exit awaited (it overlaps the rest), status file removed. A transient network disappears.
- undefine: the definition and autostart mark go; an active network keeps
  running, transient.
- create: a transient network, defined and started in one call (or, for a
  defined inactive network of that name and UUID, a start with this document).
  A document naming an existing network must carry its UUID (define and
  create), as with libvirt, which gives a document without one a new UUID.

Crash recovery: :meth:`NetworkManager.open` reads every status file. A
network recorded ``active`` whose bridge (recognised by its alias, see
:func:`virtkit.net.bridge.owner_alias`) and table still exist is adopted:
its dnsmasq is adopted too when it still runs, or started again (on the same
lease file). Anything else (``starting``, ``stopping``, or a piece missing)
is cleaned up: dnsmasq stopped, table and bridge deleted, status removed.

dnsmasq supervision: each network's dnsmasq is watched (pidfd); when it dies
while its network is up, it is started again on the same lease file, so
every lease survives. More than :data:`MAX_RESTARTS` deaths within
:data:`RESTART_WINDOW` seconds stop the restarts (logged as an error).

Default network: on the first start of a system daemon with no networks,
``default`` is defined and marked autostart, as libvirt ships it: NAT,
``virbr0``, 192.168.122.0/24 with DHCP .2-.254, or the next 192.168.N.0/24
that no route or address covers. Unlike libvirt's, its bridge runs without
STP: the kernel holds every new port of an STP bridge for twice the forward
delay, at least 4 s, so a guest that boots faster than that lost its first
DHCP requests; the bridge's ports are the guests' taps, which make no loop
unless a guest bridges two of its own NICs.

Threads: the contract's read operations take a short table lock only
(:data:`~virtkit.net.backend.NETWORK_FAST_OPERATIONS`); every mutating
operation, and the dnsmasq supervisor's restarts, run under one life-cycle
lock, so starts and stops never interleave (they are rare, and this keeps
bridge names and subnets from being claimed twice).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from virtkit.drivers.interface import NetworkRef
from virtkit.errors import (
    ErrorDomain,
    NetworkExistsError,
    NoNetworkError,
    OperationFailedError,
    OperationInvalidError,
    VirtError,
)
from virtkit.net import bridge as _bridge
from virtkit.net import dnsmasq as _dnsmasq
from virtkit.net import nftables as _nft
from virtkit.net import sysctl, validate
from virtkit.net.store import NetworkStatus, NetworkStore
from virtkit.net.tap import Tap
from virtkit.uuid import format_uuid, generate_uuid_bytes, parse_uuid
from virtkit.xml.network import DHCPRange, IPConfig, NetworkConfig, format_network

if TYPE_CHECKING:
    from virtkit.network import DHCPLease

__all__ = ["NetworkManager", "MAX_RESTARTS", "RESTART_WINDOW"]

log = logging.getLogger("virtkit.net")

#: dnsmasq restarts allowed within :data:`RESTART_WINDOW` seconds.
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


@dataclass
class _Network:
    """One network the manager knows."""

    #: The definition (what the next start uses); a transient network's document.
    config: NetworkConfig
    persistent: bool
    autostart: bool = False
    #: The live configuration while active (bridge filled in).
    live: NetworkConfig | None = None
    status: NetworkStatus | None = None
    dnsmasq: _dnsmasq.DnsmasqProcess | None = None
    restarts: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def uuid(self) -> bytes:
        assert self.config.uuid is not None
        return self.config.uuid

    @property
    def active(self) -> bool:
        return self.live is not None

    def ref(self) -> NetworkRef:
        return NetworkRef(self.name, self.uuid)


def _random_mac() -> str:
    tail = os.urandom(3)
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)


class NetworkManager:
    """Every virtual network of one daemon (see the module docstring).

    Construct with :meth:`open`. ``dnsmasq`` and ``nft`` name the programs
    (default: found on PATH when a network starts).
    """

    def __init__(self, config_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str], *,
                 dnsmasq: str | None = None, nft: str | None = None) -> None:
        self.store = NetworkStore(config_dir, state_dir)
        self.dnsmasq_program = dnsmasq
        self.nft_program = nft
        self._nets: dict[bytes, _Network] = {}
        self._by_name: dict[str, bytes] = {}
        #: Guards the tables above (held briefly).
        self._lock = threading.RLock()
        #: Serializes every mutating operation and dnsmasq restarts.
        self._op_lock = threading.RLock()
        self._supervisor = _dnsmasq.Supervisor()
        self._closed = False
        #: Seconds spent in each step of the last start or destroy (for benchmarks/logs).
        self.last_timings: dict[str, float] = {}
        #: Messages about files and objects the last :meth:`open` could not use.
        self.problems: list[str] = []

    # --- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, config_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str], *,
             system: bool = False, autostart: bool = True, dnsmasq: str | None = None,
             nft: str | None = None) -> NetworkManager:
        """Load the definitions, adopt or clean up what a previous run left, then
        (``system``) define the default network on first start and (``autostart``)
        start the networks marked for autostart. Autostart failures are logged and
        kept in :attr:`problems`, not raised.
        """
        mgr = cls(config_dir, state_dir, dnsmasq=dnsmasq, nft=nft)
        mgr.store.create()
        with mgr._op_lock:
            mgr._load()
            mgr._recover()
            if system:
                mgr._ensure_default()
        if autostart:
            mgr.autostart()
        return mgr

    def close(self, *, stop_networks: bool = False) -> None:
        """Stop supervising. Networks stay up for the next manager to adopt, unless
        ``stop_networks`` (then every active network is destroyed first)."""
        if self._closed:
            return
        if stop_networks:
            for name in self.list_network_names():
                try:
                    self.network_destroy(self.lookup_network_by_name(name))
                except VirtError as e:
                    log.error("cannot stop network '%s': %s", name, e)
        with self._op_lock:
            self._closed = True
            self._supervisor.close()
            with self._lock:
                for net in self._nets.values():
                    if net.dnsmasq is not None:
                        net.dnsmasq.close()

    def _load(self) -> None:
        configs, problems = self.store.load_configs()
        self.problems.extend(problems)
        for cfg in configs:
            if cfg.uuid is None or cfg.uuid in self._nets or cfg.name in self._by_name:
                self.problems.append(f"ignoring the saved definition of '{cfg.name}': "
                                     "no UUID, or a name or UUID used twice")
                continue
            net = _Network(config=cfg, persistent=True, autostart=self.store.autostart(cfg.name))
            self._add(net)
        for p in problems:
            log.warning("%s", p)

    def _add(self, net: _Network) -> None:
        with self._lock:
            self._nets[net.uuid] = net
            self._by_name[net.name] = net.uuid

    def _forget(self, net: _Network) -> None:
        with self._lock:
            self._nets.pop(net.uuid, None)
            self._by_name.pop(net.name, None)

    # --- look-ups (fast) -----------------------------------------------------------------

    def _get(self, ref: NetworkRef) -> _Network:
        with self._lock:
            net = self._nets.get(ref.uuid)
        if net is None:
            raise NoNetworkError(
                f"Network not found: no network with matching uuid '{format_uuid(ref.uuid)}'")
        return net

    def list_network_names(self) -> list[str]:
        """Names of the active networks."""
        with self._lock:
            return sorted(n.name for n in self._nets.values() if n.active)

    def list_defined_network_names(self) -> list[str]:
        """Names of the defined, inactive networks."""
        with self._lock:
            return sorted(n.name for n in self._nets.values() if not n.active)

    def lookup_network_by_name(self, name: str) -> NetworkRef:
        """Raise NoNetworkError when absent."""
        with self._lock:
            uuid = self._by_name.get(name)
            if uuid is None:
                raise NoNetworkError(f"Network not found: no network with matching name '{name}'")
            return self._nets[uuid].ref()

    def lookup_network_by_uuid(self, uuid: bytes) -> NetworkRef:
        """Raise NoNetworkError when absent."""
        return self._get(NetworkRef("", uuid)).ref()

    def network_is_active(self, net: NetworkRef) -> bool:
        with self._lock:
            return self._get(net).active

    def network_is_persistent(self, net: NetworkRef) -> bool:
        with self._lock:
            return self._get(net).persistent

    def network_get_config(self, net: NetworkRef, inactive: bool) -> NetworkConfig:
        """The live configuration (bridge in use), or with ``inactive`` the definition."""
        with self._lock:
            n = self._get(net)
            if n.live is not None and (not inactive or not n.persistent):
                return n.live
            return n.config

    def network_get_bridge_name(self, net: NetworkRef) -> str:
        with self._lock:
            n = self._get(net)
            name = (n.live or n.config).bridge
            if not name:
                raise OperationFailedError(f"network '{n.name}' has no bridge",
                                           domain=ErrorDomain.NETWORK)
            return name

    def network_get_autostart(self, net: NetworkRef) -> bool:
        with self._lock:
            return self._get(net).autostart

    # --- definitions ---------------------------------------------------------------------

    def _match(self, cfg: NetworkConfig) -> _Network | None:
        """The known network ``cfg`` refers to (by UUID or name); NetworkExistsError on a clash."""
        with self._lock:
            named = self._by_name.get(cfg.name)
            # As libvirt: a document without a UUID gets a new one, so it cannot
            # name an existing network (redefinitions carry the network's UUID).
            if named is not None and (cfg.uuid is None or named != cfg.uuid):
                raise NetworkExistsError(
                    f"network '{cfg.name}' already exists with uuid {format_uuid(named)}")
            if cfg.uuid is not None and cfg.uuid in self._nets:
                existing = self._nets[cfg.uuid]
                if existing.name != cfg.name:
                    raise NetworkExistsError(
                        f"network '{existing.name}' already exists with uuid "
                        f"{format_uuid(cfg.uuid)}")
                return existing
            return self._nets.get(named) if named is not None else None

    def _complete(self, cfg: NetworkConfig, existing: _Network | None) -> NetworkConfig:
        """``cfg`` with a UUID, bridge name and MAC (kept from ``existing``, or new)."""
        prior = existing.config if existing is not None else None
        uuid = cfg.uuid or (existing.uuid if existing is not None else generate_uuid_bytes())
        bridge = cfg.bridge or (prior.bridge if prior is not None else None)
        with self._lock:
            for other in self._nets.values():
                if other is existing:
                    continue
                used = {other.config.bridge, other.live.bridge if other.live else None}
                if bridge is not None and bridge in used:
                    raise OperationFailedError(
                        f"bridge name '{bridge}' is already used by network '{other.name}'",
                        domain=ErrorDomain.NETWORK)
            if bridge is None:
                taken = {b for n in self._nets.values()
                         for b in (n.config.bridge, n.live.bridge if n.live else None) if b}
                bridge = _bridge.free_bridge_name(taken)
        mac = cfg.mac or (prior.mac if prior is not None else None) or _random_mac()
        return dataclasses.replace(cfg, uuid=uuid, bridge=bridge, mac=mac)

    def define_network(self, config: NetworkConfig) -> NetworkRef:
        """Define (or redefine) a persistent network; saved atomically as NAME.xml."""
        validate.check_config(config)
        with self._op_lock:
            existing = self._match(config)
            cfg = self._complete(config, existing)
            self.store.save_config(cfg)
            if existing is None:
                net = _Network(config=cfg, persistent=True)
                self._add(net)
                return net.ref()
            with self._lock:
                existing.config = cfg
                existing.persistent = True
            return existing.ref()

    def network_undefine(self, net: NetworkRef) -> None:
        """Forget a defined network; an active one keeps running, transient."""
        with self._op_lock:
            n = self._get(net)
            if not n.persistent:
                raise OperationInvalidError(f"cannot undefine transient network '{n.name}'")
            self.store.remove_config(n.name)
            with self._lock:
                n.persistent = False
                n.autostart = False
                if n.live is not None:
                    n.config = n.live
                else:
                    self._forget(n)

    def network_set_autostart(self, net: NetworkRef, autostart: bool) -> None:
        with self._op_lock:
            n = self._get(net)
            if not n.persistent:
                raise OperationInvalidError(f"cannot set autostart for transient network '{n.name}'")
            self.store.set_autostart(n.name, autostart)
            with self._lock:
                n.autostart = autostart

    # --- start ---------------------------------------------------------------------------

    def create_network(self, config: NetworkConfig) -> NetworkRef:
        """Create and start a transient network (or start an inactive defined one with
        this document)."""
        validate.check_config(config)
        with self._op_lock:
            existing = self._match(config)
            if existing is not None and existing.active:
                raise OperationFailedError(f"network '{existing.name}' is already active",
                                           domain=ErrorDomain.NETWORK)
            cfg = self._complete(config, existing)
            if existing is not None:
                self._start(existing, cfg)
                return existing.ref()
            net = _Network(config=cfg, persistent=False)
            self._add(net)
            try:
                self._start(net, cfg)
            except BaseException:
                self._forget(net)
                raise
            return net.ref()

    def network_start(self, net: NetworkRef) -> None:
        """Bring a defined network up; on failure nothing is left behind."""
        with self._op_lock:
            n = self._get(net)
            if n.active:
                raise OperationInvalidError(f"network '{n.name}' is already active")
            self._start(n, n.config)

    def _start(self, net: _Network, cfg: NetworkConfig) -> None:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()

        def lap(step: str) -> None:
            nonlocal t0
            now = time.perf_counter()
            timings[step] = timings.get(step, 0.0) + now - t0
            t0 = now

        validate.check_config(cfg)
        assert cfg.bridge is not None and cfg.uuid is not None
        bridge = cfg.bridge
        with self._lock:
            for other in self._nets.values():
                if other is not net and other.live is not None and other.live.bridge == bridge:
                    raise OperationFailedError(
                        f"cannot start network '{cfg.name}': bridge '{bridge}' is used by "
                        f"active network '{other.name}'", domain=ErrorDomain.NETWORK)
        nft = _nft.program_needed(self.nft_program)
        dnsmasq = (_dnsmasq.find_dnsmasq(self.dnsmasq_program)
                   if _dnsmasq.needs_dnsmasq(cfg) else None)
        lap("check programs")
        validate.check_host(cfg, bridge)
        lap("check host (netlink)")
        files = _dnsmasq.DnsmasqFiles(self.store.state_dir, cfg.name)
        status = NetworkStatus(name=cfg.name, uuid=format_uuid(cfg.uuid), state="starting",
                               bridge=bridge, live_xml=format_network(cfg),
                               table=_nft.table_name(bridge))
        self.store.save_status(status)
        lap("status file")
        proc: _dnsmasq.DnsmasqProcess | None = None
        step = "create the bridge"
        try:
            addresses = [(ip.address, ip.prefix) for ip in cfg.ips]
            _bridge.create_bridge(bridge, alias=_bridge.owner_alias(status.uuid),
                                  stp=cfg.stp if cfg.stp is not None else True,
                                  delay=cfg.delay or 0, mac=cfg.mac, addresses=addresses)
            lap("bridge (netlink)")
            if dnsmasq is not None:
                # dnsmasq starts up while the firewall is written; wait_ready below.
                step = "start dnsmasq"
                _dnsmasq.write_files(cfg, bridge, files)
                proc = _dnsmasq.launch(dnsmasq, files)
                lap("dnsmasq (launch)")
            step = "add the firewall table"
            _nft.apply(cfg, bridge, nft=nft)
            lap("nftables")
            if cfg.forward_mode in ("nat", "route"):
                step = "enable IP forwarding"
                v6 = any(":" in ip.address for ip in cfg.ips)
                sysctl.enable_forwarding(ipv4=True, ipv6=v6)
                lap("sysctl")
            if proc is not None:
                step = "start dnsmasq"
                _dnsmasq.wait_ready(proc)
                lap("dnsmasq (wait until ready)")
            status.state = "active"
            status.dnsmasq_pid = proc.pid if proc is not None else None
            self.store.save_status(status)
            lap("status file")
        except BaseException as exc:
            errors = self._teardown(status, proc, files)
            for e in errors:
                log.error("while undoing the failed start of '%s': %s", cfg.name, e)
            if isinstance(exc, VirtError):
                if not exc.message.startswith(f"cannot start network '{cfg.name}'"):
                    exc.message = f"cannot start network '{cfg.name}' ({step}): {exc.message}"
                    exc.args = (exc.message,)
                raise
            if isinstance(exc, Exception):
                raise OperationFailedError(f"cannot start network '{cfg.name}' ({step}): {exc}",
                                           domain=ErrorDomain.NETWORK) from exc
            raise
        with self._lock:
            net.live = cfg
            net.status = status
            net.dnsmasq = proc
            net.restarts = []
        if proc is not None:
            self._supervisor.watch(proc, self._on_dnsmasq_exit)
        self.last_timings = timings
        log.info("network '%s' started on bridge %s", cfg.name, bridge)

    # --- stop ----------------------------------------------------------------------------

    def network_destroy(self, net: NetworkRef) -> None:
        """Take the network down (a transient one disappears)."""
        with self._op_lock:
            n = self._get(net)
            if n.live is None or n.status is None:
                raise OperationInvalidError(f"network '{n.name}' is not active")
            t0 = time.perf_counter()
            status = n.status
            status.state = "stopping"
            self.store.save_status(status)
            proc = n.dnsmasq
            if proc is not None:
                self._supervisor.unwatch(proc)
            timings: dict[str, float] = {"status file": time.perf_counter() - t0}
            errors = self._teardown(status, proc,
                                    _dnsmasq.DnsmasqFiles(self.store.state_dir, n.name), timings)
            with self._lock:
                n.live = None
                n.status = None
                n.dnsmasq = None
                if not n.persistent:
                    self._forget(n)
            self.last_timings = timings
            if errors:
                raise OperationFailedError(
                    f"network '{n.name}' is stopped, but not all of it could be removed: "
                    + "; ".join(str(e) for e in errors), domain=ErrorDomain.NETWORK)
            log.info("network '%s' stopped", n.name)

    def _teardown(self, status: NetworkStatus, proc: _dnsmasq.DnsmasqProcess | None,
                  files: _dnsmasq.DnsmasqFiles, timings: dict[str, float] | None = None, *,
                  bridge_must_be_ours: bool = False) -> list[VirtError]:
        """Undo a (possibly partial) start: dnsmasq, table, bridge, status file. Every
        step is tried; the errors are returned. The status file stays when one failed,
        so the next open tries again."""
        errors: list[VirtError] = []
        t = {} if timings is None else timings
        t0 = time.perf_counter()
        if proc is not None:
            proc.terminate()  # it exits while the table and bridge go; waited for below
        t["dnsmasq (signal)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if status.table is not None:
            try:
                _nft.remove(status.table, nft=self.nft_program)
            except VirtError as e:
                errors.append(e)
            except OSError as e:  # nft missing
                errors.append(OperationFailedError(f"cannot delete table {status.table}: {e}"))
        t["nftables"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            if not bridge_must_be_ours or _bridge.is_ours(status.bridge,
                                                         _bridge.owner_alias(status.uuid)):
                _bridge.delete_bridge(status.bridge)
        except VirtError as e:
            errors.append(e)
        t["bridge (netlink)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if proc is not None:
            proc.stop()
            proc.close()
        files.remove_runtime()
        t["dnsmasq (wait for exit)"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        if not errors:
            try:
                self.store.remove_status(status.name)
            except VirtError as e:
                errors.append(e)
        t["status file"] = t.get("status file", 0.0) + time.perf_counter() - t0
        return errors

    # --- crash recovery ------------------------------------------------------------------

    def _recover(self) -> None:
        first = len(self.problems)
        statuses, bad = self.store.load_statuses()
        for p in bad:
            self.problems.append(f"removing unreadable status file '{p}'")
            p.unlink(missing_ok=True)
        tables: set[str] | None = None
        for status in statuses:
            files = _dnsmasq.DnsmasqFiles(self.store.state_dir, status.name)
            proc = _dnsmasq.adopt(status.dnsmasq_pid, files) if status.dnsmasq_pid else None
            try:
                live = status.live_config()
                if tables is None:
                    tables = set(_nft.list_tables(nft=self.nft_program))
                ours = _bridge.is_ours(status.bridge, _bridge.owner_alias(status.uuid))
                whole = (status.state == "active" and ours
                         and (status.table is None or status.table in tables))
            except (VirtError, OSError) as e:
                self.problems.append(f"network '{status.name}': cannot inspect what is left "
                                     f"of it ({e}); cleaning up")
                live, whole = None, False
            if whole and live is not None and self._adopt(status, live, proc, files):
                continue
            why = ("it was being started or stopped" if status.state != "active"
                   else "parts of it are gone")
            self.problems.append(f"network '{status.name}': {why}; removing what is left")
            for err in self._teardown(status, proc, files, bridge_must_be_ours=True):
                self.problems.append(f"network '{status.name}': {err}")
        for message in self.problems[first:]:
            log.warning("%s", message)

    def _adopt(self, status: NetworkStatus, live: NetworkConfig,
               proc: _dnsmasq.DnsmasqProcess | None, files: _dnsmasq.DnsmasqFiles) -> bool:
        uuid = parse_uuid(status.uuid)
        with self._lock:
            net = self._nets.get(uuid)
            if net is None and status.name in self._by_name:
                return False  # the name now belongs to another definition
            if net is None:
                net = _Network(config=live, persistent=False)
                self._add(net)
        if _dnsmasq.needs_dnsmasq(live) and proc is None:
            try:
                proc = _dnsmasq.spawn(_dnsmasq.find_dnsmasq(self.dnsmasq_program), files)
            except VirtError as e:
                self.problems.append(f"network '{status.name}': adopted, but dnsmasq "
                                     f"could not be restarted: {e}")
            else:
                status.dnsmasq_pid = proc.pid
                self.store.save_status(status)
        with self._lock:
            net.live = live
            net.status = status
            net.dnsmasq = proc
        if proc is not None:
            self._supervisor.watch(proc, self._on_dnsmasq_exit)
        log.info("adopted active network '%s' (bridge %s)", status.name, status.bridge)
        return True

    # --- dnsmasq supervision -------------------------------------------------------------

    def _on_dnsmasq_exit(self, proc: _dnsmasq.DnsmasqProcess) -> None:
        with self._op_lock:
            if self._closed:
                return
            with self._lock:
                net = next((n for n in self._nets.values() if n.dnsmasq is proc), None)
            if net is None or net.live is None or net.status is None:
                return
            proc.close()
            now = time.monotonic()
            net.restarts = [t for t in net.restarts if now - t < RESTART_WINDOW] + [now]
            if len(net.restarts) > MAX_RESTARTS:
                log.error("dnsmasq of network '%s' died %d times in %g s; not restarting it",
                          net.name, len(net.restarts), RESTART_WINDOW)
                net.dnsmasq = None
                return
            log.warning("dnsmasq of network '%s' (pid %d) exited; restarting it",
                        net.name, proc.pid)
            files = _dnsmasq.DnsmasqFiles(self.store.state_dir, net.name)
            try:
                new = _dnsmasq.spawn(_dnsmasq.find_dnsmasq(self.dnsmasq_program), files)
            except VirtError as e:
                log.error("cannot restart dnsmasq of network '%s': %s", net.name, e)
                net.dnsmasq = None
                return
            net.dnsmasq = new
            net.status.dnsmasq_pid = new.pid
            self.store.save_status(net.status)
            self._supervisor.watch(new, self._on_dnsmasq_exit)

    # --- autostart and the default network -----------------------------------------------

    def autostart(self) -> list[str]:
        """Start every defined network marked for autostart that is not active; return the
        names started. Failures are logged and added to :attr:`problems`."""
        started: list[str] = []
        with self._lock:
            wanted = sorted((n.name, n.ref()) for n in self._nets.values()
                            if n.persistent and n.autostart and not n.active)
        for name, ref in wanted:
            try:
                self.network_start(ref)
                started.append(name)
            except VirtError as e:
                self.problems.append(f"autostart of network '{name}' failed: {e}")
                log.error("autostart of network '%s' failed: %s", name, e)
        return started

    def _ensure_default(self) -> None:
        mark = self.store.initialized_mark
        if mark.exists():
            return
        with self._lock:
            empty = not self._nets
        if empty:
            cfg = default_network()
            ref = self.define_network(cfg)
            self.network_set_autostart(ref, True)
            log.info("defined the default network on %s", cfg.ips[0].address)
        try:
            mark.write_bytes(b"")
        except OSError as e:
            self.problems.append(f"cannot write '{mark}': {e.strerror}")

    # --- beyond the contract: leases and taps ---------------------------------------------

    def dhcp_leases(self, net: NetworkRef) -> list[_dnsmasq.Lease]:
        """The DHCP leases dnsmasq has handed out on an active network (``net-dhcp-leases``)."""
        with self._lock:
            n = self._get(net)
            if n.live is None:
                raise OperationInvalidError(f"network '{n.name}' is not active")
        path = _dnsmasq.DnsmasqFiles(self.store.state_dir, n.name).leases
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        now = int(time.time())
        return [lease for lease in _dnsmasq.parse_leases(text)
                if lease.expiry == 0 or lease.expiry > now]

    def network_get_dhcp_leases(self, net: NetworkRef, mac: str | None) -> list[DHCPLease]:
        """The contract's form of :meth:`dhcp_leases`: the bridge as ``iface``, the prefix
        of the subnet the address is in, only ``mac``'s (lower case) when given."""
        import ipaddress

        from virtkit.network import DHCPLease, IPAddrType

        with self._lock:
            n = self._get(net)
            live = n.live
        leases = self.dhcp_leases(net)
        if live is None:
            return []
        subnets = [ipaddress.ip_interface(f"{ip.address}/{ip.prefix}").network for ip in live.ips]
        out: list[DHCPLease] = []
        for lease in leases:
            if mac is not None and lease.mac != mac:
                continue
            try:
                address = ipaddress.ip_address(lease.ip)
            except ValueError:
                continue
            prefix = next((s.prefixlen for s in subnets if address in s),
                          32 if address.version == 4 else 128)
            out.append(DHCPLease(
                iface=live.bridge or "", expiry_time=lease.expiry,
                type=IPAddrType.IPV6 if address.version == 6 else IPAddrType.IPV4,
                mac=lease.mac, iaid=lease.iaid, ipaddr=lease.ip, prefix=prefix,
                hostname=lease.hostname, client_id=lease.client_id))
        return out

    def dnsmasq_pid(self, net: NetworkRef) -> int | None:
        """The pid of the network's dnsmasq, or None."""
        with self._lock:
            proc = self._get(net).dnsmasq
            return proc.pid if proc is not None else None

    def create_tap(self, network: str, *, owner_uid: int, owner_gid: int | None = None,
                   mac: str | None = None, name: str | None = None) -> Tap:
        """A tap for a guest on active network ``network`` (see :func:`virtkit.net.tap.create_tap`)."""
        from virtkit.net.tap import create_tap

        with self._lock:
            uuid = self._by_name.get(network)
            net = self._nets.get(uuid) if uuid is not None else None
            if net is None:
                raise NoNetworkError(f"Network not found: no network with matching name '{network}'")
            if net.live is None or net.live.bridge is None:
                raise OperationInvalidError(f"network '{network}' is not active")
            bridge = net.live.bridge
        return create_tap(bridge, name, owner_uid=owner_uid, owner_gid=owner_gid, mac=mac)

    @staticmethod
    def delete_tap(name: str) -> bool:
        """Remove a guest's tap (False when it was already gone)."""
        from virtkit.net.tap import delete_tap

        return delete_tap(name)

    def __enter__(self) -> NetworkManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_network(route_overlap: Callable[[list[validate.Subnet]], str | None] | None = None
                    ) -> NetworkConfig:
    """libvirt's ``default`` network, on 192.168.122.0/24 or the next 192.168.N.0/24 that no
    route or address of the namespace covers."""
    import ipaddress

    overlap = route_overlap or validate.route_overlap
    third = 122
    for n in list(range(122, 255)) + list(range(0, 122)):
        if overlap([ipaddress.ip_network(f"192.168.{n}.0/24")]) is None:
            third = n
            break
    return NetworkConfig(
        name="default",
        uuid=generate_uuid_bytes(),
        forward_mode="nat",
        bridge="virbr0",
        stp=False,
        delay=0,
        mac=_random_mac(),
        ips=(IPConfig(address=f"192.168.{third}.1", prefix=24,
                      dhcp_ranges=(DHCPRange(f"192.168.{third}.2", f"192.168.{third}.254"),)),),
    )
