"""The QEMU driver: real guests under QEMU (TCG or KVM), served by ``virtkitd``.

The library never runs this driver in a client process: ``qemu:///session``
and ``qemu:///system`` reach it through the daemon (the remote driver), and
the daemon opens one :class:`QemuDriver` per URI and shares it between its
clients.

Opening
-------
:meth:`QemuDriver.open` (what ``virtkitd --driver qemu`` calls with
``qemu:///session`` or ``qemu:///system``) takes its directories from
:mod:`virtkit.daemon.paths`: the session's XDG directories (``XDG_CONFIG_HOME``,
``XDG_DATA_HOME``, ``XDG_RUNTIME_DIR``) or the system daemon's ``/etc/virtkit``,
``/var/lib/virtkit`` and ``/run/virtkit``. A daemon told other directories
(``--config-dir``, ``--state-dir``, ``--socket-dir``) calls
:meth:`QemuDriver.open_with_paths` instead. The driver works in a ``qemu/``
subdirectory of each (:mod:`virtkit.drivers.qemu.status` says what goes where).

At open the driver discovers QEMU (:mod:`~virtkit.drivers.qemu.capabilities`),
loads the saved definitions, then **adopts** every QEMU a previous daemon left
running: for each status file, the pid must still be the same process (same
start time, same ``-uuid``); then it reconnects to QMP, keeps the domain's id,
reads its state with ``query-status`` and applies a power-off that happened
meanwhile. A status file whose QEMU is gone is removed: the domain is shut
off (a transient one is forgotten). New ids continue above the highest adopted
one. Last, defined domains marked for autostart that are not running start.

Threads
-------
The driver owns one asyncio event loop in a background thread
(``virtkit-qemu``), started at open and stopped by :meth:`close`. It runs
every QMP client (:mod:`~virtkit.drivers.qemu.monitor`, one per domain) and
watches every QEMU with a pidfd (``loop.add_reader``), so the exit of a QEMU is
handled the moment it happens: our own children are reaped there
(``Popen.poll``), adopted ones belong to their new parent.

Contract methods are called from the daemon's threads. Slow ones send
coroutines to the loop (``run_coroutine_threadsafe(...).result(timeout)``).
The operations in :attr:`QemuDriver.fast_operations` read in-memory state
under the table lock (``_lock``, held for a few dictionary look-ups) and
never touch the loop; ``domain_get_info`` and ``domain_get_vcpus`` read
``/proc`` through one :func:`virtkit._core.poll_processes` call.

Serialization: each domain has an operation lock. Every mutating operation
on a domain (start, stop, suspend, define of an existing domain...) holds it
for its whole duration, so two never interleave on one domain, while
operations on different domains run concurrently. The loop never takes an
operation lock (an operation holding one waits for the loop), and event
handlers change a domain's run state without it.

Life cycle
----------
- start: QEMU runs with ``-S`` (vCPUs stopped), as the daemon's child in a
  session of its own, its QMP socket already listening (bound here, passed as
  a descriptor). The driver connects, learns the ptys (``query-chardev``) and
  the VNC port (``query-vnc``), sets the VNC password, applies vCPU pinning
  (``query-cpus-fast`` gives the threads), deflates the balloon to
  ``<currentMemory>``, then sends ``cont``. A status file written before and
  after this lets a restarted driver find the QEMU.
- suspend / resume: QMP ``stop`` / ``cont``.
- shutdown: QMP ``system_powerdown`` (the ACPI power button); it returns at
  once, as libvirt's does. QEMU runs with ``-action shutdown=pause``, so when
  the guest powers off QEMU stays alive and reports ``SHUTDOWN``; the driver
  applies ``<on_poweroff>``: destroy (the default) -> QMP ``quit``, restart
  -> ``system_reset`` + ``cont``, preserve -> left paused.
- reboot: libvirt's "fake reboot": ``system_powerdown`` with a mark, and the
  ``SHUTDOWN`` that follows becomes ``system_reset`` + ``cont`` (unless
  ``<on_reboot>`` is destroy or preserve). The guest shuts down cleanly and
  boots again in the same QEMU; a guest that ignores the power button does
  not reboot (as with libvirt's ACPI method).
- destroy: SIGTERM, SIGKILL after :data:`DESTROY_GRACE` seconds; returns
  when the pidfd says the process is gone.
- a guest crash (``GUEST_PANICKED``, with a pvpanic device) applies
  ``<on_crash>`` the same way. ``rename-restart`` (any event) and the
  ``coredump-*`` actions of a crash are :mod:`~virtkit.drivers.qemu.lifecycle`'s.

The domain is shut off when its QEMU process has exited, never before: the
runtime files (status, monitor socket, pidfile) are removed first, then the
domain leaves the list of active domains (a transient one disappears).

The rest of the 0.2.2 API, each in a module of its own:

- save and restore (QEMU migration to and from a file, behind a header of
  ours) and core dumps (``dump-guest-memory``): :mod:`~virtkit.drivers.qemu.save`
  and the file format :mod:`~virtkit.drivers.qemu.savefile`;
- disks and NICs attached to and detached from a running guest:
  :mod:`~virtkit.drivers.qemu.hotplug` (an inactive domain's definition is
  edited here);
- vCPUs added and removed while the guest runs: :mod:`~virtkit.drivers.qemu.vcpus`;
- memory: a virtio balloon by default; ``domain_set_memory`` moves its target
  live (QMP ``balloon``), the maximum changes only while shut off;
- vCPU pinning: the thread of each vCPU (``query-cpus-fast``) gets its
  affinity from :func:`virtkit._core.set_thread_affinity`, remembered in the
  definition and applied again at each start;
- autostart: marks in ``autostart/``, honoured when the driver opens.

Networks
--------
With ``qemu:///system`` the driver also serves the host's virtual networks:
:class:`~virtkit.net.backend.NetworkBackend` forwards the contract's network
operations to a :class:`~virtkit.net.manager.NetworkManager` opened on
``network/`` beside the driver's directories, before any domain starts (so
autostarted networks are up before autostarted domains). A guest's
``network``, ``bridge`` and ``ethernet`` interfaces get tap devices made
before QEMU starts and removed once it has exited
(:mod:`~virtkit.drivers.qemu.networking`); ``qemu:///session`` has no networks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from virtkit import _core
from virtkit.connection import NodeInfo
from virtkit.domain import DomainInfo, DomainState, VcpuInfo, VcpuState
from virtkit.drivers.edit import attach_device, detach_device, with_pin
from virtkit.drivers.interface import DomainRef, Driver
from virtkit.drivers.qemu import capabilities as qcaps
from virtkit.drivers.qemu import host, networking
from virtkit.drivers.qemu import hotplug
from virtkit.drivers.qemu import lifecycle as qlife
from virtkit.drivers.qemu import save as qsave
from virtkit.drivers.qemu import vcpus as qvcpus
from virtkit.drivers.qemu.command import (
    CommandContext,
    Lifecycle,
    Tap,
    build_command,
    command_environment,
    lifecycle,
)
from virtkit.drivers.qemu.mac import fill_missing_macs
from virtkit.drivers.qemu.monitor import Monitor
from virtkit.drivers.qemu.process import (
    identify,
    listen_monitor,
    log_tail,
    open_pidfd,
    spawn,
    start_time_ns,
)
from virtkit.drivers.qemu.status import (
    ConfigStore,
    DomainStatus,
    DriverDirs,
    remove_stale_temporaries,
)
from virtkit.errors import (
    ConnectionFailedError,
    DomainExistsError,
    ErrorDomain,
    InvalidArgumentError,
    NoDomainError,
    NoSupportError,
    OperationFailedError,
    OperationInvalidError,
    VirtError,
)
from virtkit.net.backend import NETWORK_FAST_OPERATIONS, NetworkBackend
from virtkit.uri import URI, parse_uri
from virtkit.uuid import format_uuid, generate_uuid_bytes, parse_uuid
from virtkit.xml.capabilities import Capabilities
from virtkit.xml.domain import (
    Device,
    DomainConfig,
    LifecycleAction,
    VcpuPin,
    format_domain,
)

if TYPE_CHECKING:
    from virtkit.domain import DomainInterface
    from virtkit.net.manager import NetworkManager

__all__ = ["QemuDriver", "MAX_VCPUS", "START_TIMEOUT", "DESTROY_GRACE"]

log = logging.getLogger(__name__)

#: The most vCPUs a guest may have (QEMU's ``pc`` machine allows 255).
MAX_VCPUS = 255
#: Seconds QEMU may take from exec to answering on QMP (large images, busy host).
START_TIMEOUT = 60.0
#: Seconds between SIGTERM and SIGKILL when destroying a domain.
DESTROY_GRACE = 5.0
#: Seconds a QMP command or a wait for the loop may take before the call fails.
MONITOR_TIMEOUT = 30.0
#: Seconds to wait for QEMU to exit after QMP ``quit`` before SIGKILL.
QUIT_GRACE = 5.0

_T = TypeVar("_T")
_VCPU_THREAD = re.compile(r"CPU (\d+)/")
_TAP_TYPES = frozenset(("network", "bridge", "ethernet"))
_INACTIVE = (DomainState.SHUTOFF, DomainState.NOSTATE)
#: QMP ``query-status`` run states that mean "paused" for virtkit.
_PAUSED_STATUSES = frozenset(("paused", "debug", "io-error", "watchdog", "restore-vm",
                              "save-vm", "finish-migrate", "postmigrate", "colo",
                              "suspended", "inmigrate"))


def _qemu_error(message: str) -> OperationFailedError:
    return OperationFailedError(message, domain=ErrorDomain.QEMU)


# ====================================================================== domains


class _Run:
    """One running QEMU of a domain."""

    def __init__(self, *, id: int, pid: int, pidfd: int, popen: subprocess.Popen[bytes] | None,
                 started_ns: int, monitor_path: Path, live: DomainConfig, emulator: str,
                 life: Lifecycle, qemu_uuid: bytes | None = None) -> None:
        self.id = id
        self.pid = pid
        self.pidfd = pidfd
        self.popen = popen
        self.started_ns = started_ns
        self.monitor_path = monitor_path
        self.live = live
        self.emulator = emulator
        self.life = life
        self.state = DomainState.PAUSED
        self.monitor: Monitor | None = None
        self.console: str | None = None
        self.vcpu_tids: dict[int, int] = {}
        #: A reboot asked for: the next guest SHUTDOWN resets instead.
        self.fake_reboot = False
        #: Set (on the loop) once the process is gone and the domain shut off.
        self.gone = threading.Event()
        self.waiters: list[asyncio.Future[None]] = []
        #: Called (on the loop) with each QMP event's name and data before the driver
        #: handles it; one that returns True is removed (save.wait_event adds them).
        self.watchers: list[Callable[[str, Mapping[str, Any]], bool]] = []
        #: The ``-uuid`` QEMU runs with: the domain's, unless the domain was renamed
        #: under it (rename-restart keeps the old QEMU under a new name and UUID).
        self.qemu_uuid = qemu_uuid if qemu_uuid is not None else live.uuid

    def status(self, name: str) -> DomainStatus:
        uuid = self.qemu_uuid
        assert uuid is not None
        return DomainStatus(name=name, uuid=format_uuid(uuid), id=self.id, pid=self.pid,
                            start_time_ns=self.started_ns, monitor=str(self.monitor_path),
                            live_xml=format_domain(self.live), emulator=self.emulator)


class _Domain:
    """A domain the driver knows: its definition and, while it runs, its QEMU."""

    def __init__(self, config: DomainConfig, persistent: bool, autostart: bool = False) -> None:
        assert config.uuid is not None
        self.uuid: bytes = config.uuid
        self.name = config.name
        #: The definition (what the next start uses); for a transient domain, the
        #: configuration it was started with.
        self.config = dataclasses.replace(config, id=None)
        self.persistent = persistent
        self.autostart = autostart
        self.run: _Run | None = None
        #: Serializes mutating operations on this domain (see the module docstring).
        self.oplock = threading.Lock()
        #: False once the driver forgot the domain (undefined or transient and stopped).
        self.known = True

    def ref(self) -> DomainRef:
        run = self.run
        return DomainRef(self.name, self.uuid, run.id if run is not None else -1)

    @property
    def current(self) -> DomainConfig:
        run = self.run
        return run.live if run is not None else self.config


# ====================================================================== the driver


class QemuDriver(NetworkBackend, Driver):
    """QEMU/KVM guests on this host (see the module docstring); with ``qemu:///system``,
    its virtual networks too (:mod:`~virtkit.drivers.qemu.networking`)."""

    name = "QEMU"
    schemes = ("qemu",)
    fast_operations: ClassVar[frozenset[str]] = frozenset({
        "get_type", "get_version", "get_hostname", "get_max_vcpus", "get_node_info",
        "get_capabilities",
        "list_domain_ids", "list_defined_domain_names", "list_all_domains",
        "lookup_domain_by_id", "lookup_domain_by_name", "lookup_domain_by_uuid",
        "domain_get_state", "domain_get_info", "domain_get_os_type", "domain_get_max_memory",
        "domain_get_vcpus", "domain_get_config", "domain_get_autostart",
        "domain_is_persistent", "domain_get_console_path",
    }) | NETWORK_FAST_OPERATIONS

    def __init__(self, uri: URI, read_only: bool, dirs: DriverDirs) -> None:
        super().__init__(uri, read_only)
        self.dirs = dirs
        self.store = ConfigStore(dirs)
        self._lock = threading.Lock()
        self._domains: dict[bytes, _Domain] = {}
        self._by_name: dict[str, bytes] = {}
        self._by_id: dict[int, bytes] = {}
        self._next_id = 1
        self._caps: qcaps.QemuCapabilities | None = None
        self._host_cpus = 1
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="virtkit-qemu", daemon=True)
        self._closed = False
        #: Threads the driver started for lifecycle actions (lifecycle.rename_restart).
        self._chores: list[threading.Thread] = []
        #: The network manager (qemu:///system); None in a session (see _open_networks).
        self._net_manager: NetworkManager | None = None
        self.networks = cast("NetworkManager", networking.SessionNetworks())

    # --- opening and closing -------------------------------------------------------------

    @classmethod
    def open(cls, uri: URI, read_only: bool) -> QemuDriver:
        """Open ``qemu:///session`` or ``qemu:///system`` with the daemon's default
        directories (see the module docstring)."""
        from virtkit.daemon.paths import session_paths, system_paths

        mode = _mode(uri)
        paths = system_paths() if mode == "system" else session_paths()
        return cls.open_with_paths(uri, paths.config_dir, paths.state_dir, paths.socket_dir,
                                   read_only=read_only)

    @classmethod
    def open_with_paths(cls, uri: URI | str, config_dir: str | os.PathLike[str],
                        state_dir: str | os.PathLike[str], runtime_dir: str | os.PathLike[str],
                        *, read_only: bool = False) -> QemuDriver:
        """Open with explicit directories: the daemon's configuration, state and
        runtime (socket) directories; the driver uses a ``qemu/`` subdirectory of each.

        Raises ConnectionFailedError for a URI other than ``qemu:///session`` or
        ``qemu:///system``, or ``qemu:///system`` opened by a user other than root.
        """
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        mode = _mode(parsed)
        if mode == "system" and os.geteuid() != 0:
            raise ConnectionFailedError("qemu:///system is served by root's virtkitd; "
                                        "use qemu:///session for your own guests")
        driver = cls(parsed, read_only, DriverDirs.under(config_dir, state_dir, runtime_dir))
        try:
            driver._open()
        except BaseException:
            driver.close()
            raise
        return driver

    def _open(self) -> None:
        self.dirs.create()
        remove_stale_temporaries(self.dirs.runtime)
        self._open_networks()
        self._caps = qcaps.discover()
        cpus = host.online_cpus()
        self._host_cpus = (max(cpus) + 1) if cpus else 1
        for config in self.store.load_all():
            d = _Domain(config, persistent=True, autostart=self.store.autostart(config.name))
            if d.uuid in self._domains or d.name in self._by_name:
                log.warning("ignoring definition of domain %r: its UUID is taken", d.name)
                continue
            self._domains[d.uuid] = d
            self._by_name[d.name] = d.uuid
        self._thread.start()
        self._adopt_all()
        for d in list(self._domains.values()):
            if d.autostart and d.run is None:
                try:
                    with d.oplock:
                        self._start(d, d.config)
                except VirtError as e:
                    log.warning("cannot autostart domain %r: %s", d.name, e)

    def _open_networks(self) -> None:
        """qemu:///system: open the network manager on ``network/`` beside the driver's
        ``qemu/`` directories (definitions in the configuration directory, status and
        dnsmasq files in the runtime one); it adopts what a previous daemon left,
        defines ``default`` on the first start and autostarts networks, before any
        domain starts. A session has no networks (networking.SessionNetworks)."""
        if _mode(self.uri) != "system":
            return
        from virtkit.net.manager import NetworkManager

        self._net_manager = NetworkManager.open(self.dirs.config.parent / "network",
                                                self.dirs.runtime.parent / "network",
                                                system=True)
        self.networks = self._net_manager

    def close(self) -> None:
        """Stop watching guests and disconnect from their monitors; guests keep running
        (and networks stay up, for the next daemon to adopt)."""
        if self._closed:
            return
        self._closed = True
        for chore in list(self._chores):  # rename-restarts under way need the loop
            chore.join()
        if self._thread.is_alive():
            try:
                self._call(self._detach_all(), MONITOR_TIMEOUT)
            except VirtError as e:
                log.warning("closing the QEMU driver: %s", e)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()
        self.networks.close()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _detach_all(self) -> None:
        with self._lock:
            runs = [d.run for d in self._domains.values() if d.run is not None]
        for run in runs:
            self._unwatch(run)
            if run.monitor is not None:
                await run.monitor.close()

    def _call(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        """Run ``coro`` on the loop from another thread and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise _qemu_error(f"no answer from QEMU within {timeout:g} s") from None

    # --- adoption ---------------------------------------------------------------------------

    def _adopt_all(self) -> None:
        for path in sorted(self.dirs.runtime.glob("*.status")):
            try:
                status = DomainStatus.loads(path.read_bytes())
                live = status.live_config()
            except (OSError, ValueError, VirtError) as e:
                log.warning("ignoring status file %s: %s", path, e)
                continue
            try:
                self._adopt(status, live)
            except VirtError as e:
                log.warning("cannot adopt domain %r (pid %d): %s", status.name, status.pid, e)

    def _adopt(self, status: DomainStatus, live: DomainConfig) -> None:
        uuid = live.uuid
        assert uuid is not None
        d = self._domains.get(uuid)
        if not identify(status.pid, status.start_time_ns, status.uuid):
            log.info("domain %r (pid %d) stopped while the daemon was away", status.name,
                     status.pid)
            networking.remove_taps(live)
            self._remove_runtime_files(status.name, Path(status.monitor))
            return
        if d is None:
            if status.name in self._by_name:
                raise OperationFailedError(f"a defined domain is already named {status.name!r}")
            d = _Domain(live, persistent=False)
            self._domains[d.uuid] = d
            self._by_name[d.name] = d.uuid
        pidfd = open_pidfd(status.pid)
        if pidfd is None:
            networking.remove_taps(live)
            self._remove_runtime_files(status.name, Path(status.monitor))
            if not d.persistent:
                self._forget(d)
            return
        run = _Run(id=status.id, pid=status.pid, pidfd=pidfd, popen=None,
                   started_ns=status.start_time_ns, monitor_path=Path(status.monitor), live=live,
                   emulator=status.emulator, life=lifecycle(live),
                   qemu_uuid=parse_uuid(status.uuid))
        with self._lock:
            d.run = run
            self._by_id[run.id] = d.uuid
            self._next_id = max(self._next_id, run.id + 1)
        try:
            self._call(self._reattach(d, run), MONITOR_TIMEOUT)
        except VirtError:
            # Unmanageable without its monitor: stop it, as libvirt does.
            self._call(self._kill(run), DESTROY_GRACE + MONITOR_TIMEOUT)
            raise

    async def _reattach(self, d: _Domain, run: _Run) -> None:
        self._watch(d, run)
        monitor = Monitor(d.name, lambda ev: self._on_event(d, run, ev))
        run.monitor = monitor
        await monitor.connect(str(run.monitor_path))
        await self._learn_vcpus(run)
        run.console = _console_path(run.live)
        status = await monitor.execute("query-status")
        what = status.get("status") if isinstance(status, dict) else None
        if what == "running":
            run.state = DomainState.RUNNING
        elif what == "shutdown":
            run.state = DomainState.PAUSED
            self._apply(d, run, run.life.on_poweroff, crashed=False)
        elif what == "guest-panicked":
            run.state = DomainState.CRASHED
            self._apply(d, run, run.life.on_crash, crashed=True)
        elif what == "prelaunch":
            # The previous daemon died while starting it: finish nothing, stop it.
            raise _qemu_error("it was still being started")
        else:
            run.state = DomainState.PAUSED

    # --- process watching (loop thread) -----------------------------------------------------

    def _watch(self, d: _Domain, run: _Run) -> None:
        self._loop.add_reader(run.pidfd, self._on_exit, d, run)

    def _unwatch(self, run: _Run) -> None:
        if run.pidfd >= 0:
            self._loop.remove_reader(run.pidfd)
            os.close(run.pidfd)
            run.pidfd = -1

    def _on_exit(self, d: _Domain, run: _Run) -> None:
        """The QEMU of ``run`` has exited: reap it, clean up, shut the domain off."""
        self._unwatch(run)
        if run.popen is not None:
            run.popen.poll()
        if run.monitor is not None:
            self._loop.create_task(run.monitor.close())
        networking.remove_taps(run.live)  # before the status file that names them
        self._remove_runtime_files(d.name, run.monitor_path)
        qlife.after_exit(self, run)
        with self._lock:
            if d.run is run:
                d.run = None
            if self._by_id.get(run.id) == d.uuid:
                del self._by_id[run.id]
            if not d.persistent and d.run is None:
                self._forget(d)
        run.state = DomainState.SHUTOFF
        run.gone.set()
        for waiter in run.waiters:
            if not waiter.done():
                waiter.set_result(None)
        run.waiters.clear()

    def _exit_future(self, run: _Run) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self._loop.create_future()
        if run.gone.is_set():
            future.set_result(None)
        else:
            run.waiters.append(future)
        return future

    def _signal(self, run: _Run, sig: int) -> None:
        if run.pidfd >= 0:
            try:
                signal.pidfd_send_signal(run.pidfd, sig)
            except ProcessLookupError:
                pass

    async def _kill(self, run: _Run) -> None:
        """SIGTERM, SIGKILL after the grace period; return once the process is gone."""
        exited = self._exit_future(run)
        if exited.done():
            return
        if run.qemu_uuid != run.live.uuid:
            # Kept by rename-restart (disks already released): a clean exit would
            # remove the QMP socket and pidfile paths it was started with, which now
            # belong to the domain restarted in its place.
            self._signal(run, signal.SIGKILL)
            await exited
            return
        self._signal(run, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(exited), DESTROY_GRACE)
        except asyncio.TimeoutError:
            log.warning("QEMU pid %d ignored SIGTERM for %g s: SIGKILL", run.pid, DESTROY_GRACE)
            self._signal(run, signal.SIGKILL)
            await exited

    async def _quit(self, run: _Run) -> None:
        """Stop QEMU cleanly (QMP ``quit``), killing it if that fails."""
        exited = self._exit_future(run)
        if exited.done():
            return
        try:
            if run.monitor is None:
                raise _qemu_error("no monitor")
            await run.monitor.execute("quit")
            await asyncio.wait_for(asyncio.shield(exited), QUIT_GRACE)
        except (VirtError, asyncio.TimeoutError):
            if not exited.done():
                await self._kill(run)

    async def _reset(self, run: _Run) -> None:
        """Restart the guest in the same QEMU (``system_reset`` + ``cont``)."""
        monitor = run.monitor
        if monitor is None:
            return
        try:
            await monitor.execute("system_reset")
            await monitor.execute("cont")
        except VirtError as e:
            log.warning("cannot restart the guest of QEMU pid %d: %s", run.pid, e)

    # --- QMP events (loop thread) ---------------------------------------------------------

    def _on_event(self, d: _Domain, run: _Run, event: Mapping[str, Any]) -> None:
        if run.gone.is_set():
            return
        name = event.get("event")
        data = event.get("data") or {}
        for watch in list(run.watchers):
            if watch(str(name), data):
                run.watchers.remove(watch)
        if name == "STOP":
            if run.state not in (DomainState.SHUTDOWN, DomainState.CRASHED):
                run.state = DomainState.PAUSED
        elif name == "RESUME":
            run.state = DomainState.RUNNING
        elif name == "SHUTDOWN":
            if not data.get("guest"):
                return  # asked by the host (signal, quit): the exit follows
            if run.fake_reboot:
                run.fake_reboot = False
                action = run.life.on_reboot
            elif data.get("reason") == "guest-reset":
                action = run.life.on_reboot  # QEMU runs with reboot=shutdown for this action
            else:
                action = run.life.on_poweroff
            self._apply(d, run, action, crashed=False)
        elif name == "GUEST_PANICKED":
            self._apply(d, run, run.life.on_crash, crashed=True)

    def _apply(self, d: _Domain, run: _Run, action: LifecycleAction, *, crashed: bool) -> None:
        """Carry out a lifecycle action after the guest powered off, rebooted or crashed
        (QEMU has paused it)."""
        if action is LifecycleAction.RESTART:
            self._loop.create_task(self._reset(run))
        elif action is LifecycleAction.PRESERVE:
            run.state = DomainState.CRASHED if crashed else DomainState.PAUSED
        elif action is LifecycleAction.RENAME_RESTART:
            qlife.rename_restart(self, d, run, crashed)
        elif action in (LifecycleAction.COREDUMP_DESTROY, LifecycleAction.COREDUMP_RESTART):
            qlife.dump_then(self, d, run, action)
        else:
            run.state = DomainState.CRASHED if crashed else DomainState.SHUTDOWN
            self._loop.create_task(self._quit(run))

    # --- files ----------------------------------------------------------------------------

    def _remove_runtime_files(self, name: str, monitor_path: Path) -> None:
        for path in (self.dirs.status_file(name), self.dirs.pidfile(name), monitor_path):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.warning("cannot remove %s: %s", path, e)

    def _save_status(self, d: _Domain, run: _Run) -> None:
        run.status(d.name).save(self.dirs)

    # --- tables -----------------------------------------------------------------------------

    def _forget(self, d: _Domain) -> None:
        """Drop ``d`` from the tables (caller holds ``_lock``)."""
        d.known = False
        if self._domains.get(d.uuid) is d:
            del self._domains[d.uuid]
        if self._by_name.get(d.name) == d.uuid:
            del self._by_name[d.name]

    def _dom(self, ref: DomainRef) -> _Domain:
        d = self._domains.get(ref.uuid)
        if d is None:
            raise NoDomainError(f"no domain with matching uuid '{format_uuid(ref.uuid)}' "
                                f"({ref.name})")
        return d

    def _locked(self, ref: DomainRef) -> _Domain:
        """The domain of ``ref`` with its operation lock taken (release it!)."""
        with self._lock:
            d = self._dom(ref)
        d.oplock.acquire()
        if not d.known:
            d.oplock.release()
            raise NoDomainError(f"domain '{ref.name}' no longer exists")
        return d

    def _admit(self, config: DomainConfig, *, persistent: bool) -> tuple[_Domain, bool]:
        """Find the domain ``config`` names, or add it (caller holds ``_lock``).
        Returns the domain and whether it is new. Refuses name/UUID clashes."""
        named = self._by_name.get(config.name)
        if named is not None and (config.uuid is None or named != config.uuid):
            raise DomainExistsError(f"domain '{config.name}' already exists with uuid "
                                    f"{format_uuid(named)}")
        existing = self._domains.get(config.uuid) if config.uuid is not None else None
        if existing is not None:
            if existing.name != config.name:
                raise DomainExistsError(f"domain '{existing.name}' already exists with uuid "
                                        f"{format_uuid(existing.uuid)}")
            return existing, False
        if config.uuid is None:
            config = dataclasses.replace(config, uuid=generate_uuid_bytes())
        d = _Domain(config, persistent=persistent)
        self._domains[d.uuid] = d
        self._by_name[d.name] = d.uuid
        return d, True

    # --- checking configurations -------------------------------------------------------------

    @property
    def caps(self) -> qcaps.QemuCapabilities:
        """What discovery found (refreshed when a domain is started or defined)."""
        assert self._caps is not None
        return self._caps

    def _resolve(self, config: DomainConfig) -> qcaps.ResolvedGuest:
        self._caps = qcaps.discover()
        return self._caps.resolve(config)

    def _prepare(self, config: DomainConfig) -> DomainConfig:
        """Check ``config`` can run here (type, emulator, machine, KVM, every device:
        the command line is built once as a dry run) and fill in the MACs."""
        if "/" in config.name or config.name.startswith("."):
            raise InvalidArgumentError(f"domain name {config.name!r} may not contain '/' or "
                                       "start with '.'")
        if not 1 <= config.vcpus <= MAX_VCPUS:
            raise InvalidArgumentError(f"vCPU count {config.vcpus} is not in 1..{MAX_VCPUS}")
        config = fill_missing_macs(config)
        resolved = self._resolve(config)
        taps = {i: Tap(ifname="virtkit-check") for i, iface in enumerate(config.interfaces)
                if iface.type in _TAP_TYPES}
        build_command(config, CommandContext(qmp_socket="/dev/null", emulator=resolved.emulator,
                                             machine=resolved.machine, taps=taps))
        return config

    # --- starting -----------------------------------------------------------------------------

    def _start(self, d: _Domain, config: DomainConfig,
               incoming: qsave.Incoming | None = None) -> DomainRef:
        """Start ``d`` with ``config`` (caller holds ``d.oplock``); with ``incoming``,
        from a save file instead of booting (see :mod:`~virtkit.drivers.qemu.save`)."""
        if d.run is not None:
            raise OperationInvalidError(f"domain '{d.name}' is already active")
        resolved = self._resolve(config)
        config = dataclasses.replace(config, uuid=d.uuid)
        with self._lock:
            run_id = self._next_id
            self._next_id += 1
        uuid_hex = d.uuid.hex()
        monitor_path = self.dirs.monitor(d.name, uuid_hex)
        pidfile = self.dirs.pidfile(d.name)
        log_path = self.dirs.log_file(d.name)
        # Taps for network/bridge/ethernet interfaces, handed to QEMU as descriptors;
        # removed by _on_exit once QEMU is gone (run.live names them).
        taps = networking.setup_taps(config, self._net_manager, log_path=str(log_path))
        try:
            listener = listen_monitor(monitor_path)
        except BaseException:
            taps.undo()
            raise
        try:
            ctx = CommandContext(qmp_socket=str(monitor_path), qmp_fd=listener.fileno(),
                                 emulator=resolved.emulator, machine=resolved.machine,
                                 pidfile=str(pidfile), taps=taps.command_taps(),
                                 incoming="defer" if incoming else None,
                                 pci_slots=incoming.pci_slots if incoming else {})
            argv = build_command(taps.live, ctx)
            with open(log_path, "ab") as logf:
                logf.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}: starting domain {d.name} "
                           f"(id {run_id})\n{' '.join(argv)}\n".encode())
                log_start = logf.tell()  # what QEMU writes comes after
            popen = spawn(argv, log_path=log_path, env=_qemu_env(config),
                          pass_fds=[listener.fileno(), *taps.fds.values(),
                                    *([incoming.fd] if incoming else [])])
        except BaseException:
            listener.close()
            _unlink_quietly(monitor_path)
            taps.undo()
            raise
        listener.close()
        taps.close_fds()
        pidfd = open_pidfd(popen.pid)
        assert pidfd is not None  # our unreaped child exists at least as a zombie
        live = hotplug.with_nic_aliases(dataclasses.replace(taps.live, id=run_id))
        run = _Run(id=run_id, pid=popen.pid, pidfd=pidfd, popen=popen,
                   started_ns=start_time_ns(popen.pid) or 0, monitor_path=monitor_path,
                   live=live, emulator=resolved.emulator, life=lifecycle(config))
        with self._lock:
            d.run = run
            self._by_id[run_id] = d.uuid
        try:
            self._save_status(d, run)
            self._call(self._boot(d, run, config, incoming), START_TIMEOUT + MONITOR_TIMEOUT
                       + (qsave.SAVE_TIMEOUT if incoming else 0))
            self._save_status(d, run)
        except BaseException as e:
            self._call(self._kill(run), DESTROY_GRACE + MONITOR_TIMEOUT)
            tail = log_tail(log_path, log_start)
            if isinstance(e, VirtError) and tail:
                e.message = f"{e.message}: {tail}"
                e.args = (e.message,)
            raise
        return DomainRef(d.name, d.uuid, run_id)

    async def _boot(self, d: _Domain, run: _Run, config: DomainConfig,
                    incoming: qsave.Incoming | None = None) -> None:
        """Watch the new QEMU, connect to its monitor, set it up (or load its saved
        state), let the vCPUs run (unless it was saved paused)."""
        self._watch(d, run)
        monitor = Monitor(d.name, lambda ev: self._on_event(d, run, ev))
        run.monitor = monitor
        exited = self._exit_future(run)
        connect = self._loop.create_task(monitor.connect(str(run.monitor_path)))
        done, _ = await asyncio.wait({connect, exited}, timeout=START_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if connect not in done:
            connect.cancel()
            if exited.done():
                raise _qemu_error(f"QEMU exited while starting domain '{d.name}'")
            raise _qemu_error(f"QEMU did not answer on QMP within {START_TIMEOUT:g} s")
        if connect.exception() is not None:
            # Most often QEMU refused its configuration and exited: say that.
            try:
                await asyncio.wait_for(asyncio.shield(exited), 2.0)
            except asyncio.TimeoutError:
                connect.result()
            raise _qemu_error(f"QEMU exited while starting domain '{d.name}'")
        chardevs = await monitor.execute("query-chardev")
        ptys = {c["label"]: c["filename"][4:] for c in chardevs
                if isinstance(c, dict) and str(c.get("filename", "")).startswith("pty:")}
        vnc_port = None
        if any(g.type == "vnc" for g in config.graphics):
            vnc = await monitor.execute("query-vnc")
            if isinstance(vnc, dict) and vnc.get("service"):
                vnc_port = int(vnc["service"])
            for g in config.graphics:
                if g.type == "vnc" and g.passwd is not None:
                    await monitor.execute("set_password",
                                          {"protocol": "vnc", "password": g.passwd})
        run.live = _with_runtime(run.live, ptys, vnc_port)
        run.console = _console_path(run.live)
        await self._learn_vcpus(run)
        self._apply_pinning(run, config)
        if incoming is not None:
            await qsave.receive(self, d, run, incoming)  # the balloon target comes with it
            if not incoming.header.running:
                return
        elif config.current_memory_kib < config.memory:
            await monitor.execute("balloon", {"value": config.current_memory_kib * 1024})
        await monitor.execute("cont")
        run.state = DomainState.RUNNING

    async def _learn_vcpus(self, run: _Run) -> None:
        assert run.monitor is not None
        cpus = await run.monitor.execute("query-cpus-fast")
        run.vcpu_tids = {int(c["cpu-index"]): int(c["thread-id"]) for c in cpus
                         if isinstance(c, dict) and "thread-id" in c}

    def _apply_pinning(self, run: _Run, config: DomainConfig) -> None:
        from virtkit.cpuset import parse_cpulist

        pins = {p.vcpu: p.cpuset for p in config.vcpu_pins}
        for vcpu, tid in run.vcpu_tids.items():
            spec = pins.get(vcpu, config.cpuset)
            if spec:
                cpumap = parse_cpulist(spec, self._host_cpus)
                _core.set_thread_affinity(tid, [i for i, on in enumerate(cpumap) if on])

    # --- connection and node -------------------------------------------------------------

    def get_type(self) -> str:
        return "QEMU"

    def get_version(self) -> int:
        binary = self.caps.binary_for(self.caps.host_arch) or next(iter(self.caps.binaries), None)
        if binary is None:
            return 0
        major, minor, micro = binary.version
        return major * 1_000_000 + minor * 1_000 + micro

    def get_hostname(self) -> str:
        return host.hostname()

    def get_max_vcpus(self, type: str | None) -> int:
        return MAX_VCPUS

    def get_node_info(self) -> NodeInfo:
        return host.node_info()

    def get_capabilities(self) -> Capabilities:
        return self.caps.to_capabilities()

    # --- listing and look-up -----------------------------------------------------------------

    def list_domain_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._by_id)

    def list_defined_domain_names(self) -> list[str]:
        with self._lock:
            return sorted(d.name for d in self._domains.values()
                          if d.run is None and d.persistent)

    def list_all_domains(self) -> list[DomainRef]:
        with self._lock:
            doms = list(self._domains.values())
        active = sorted((d.ref() for d in doms if d.run is not None), key=lambda r: r.id)
        inactive = sorted((d.ref() for d in doms if d.run is None), key=lambda r: r.name)
        return active + inactive

    def lookup_domain_by_id(self, id: int) -> DomainRef:
        with self._lock:
            uuid = self._by_id.get(id)
            if uuid is None:
                raise NoDomainError(f"no domain with matching id {id}")
            return self._domains[uuid].ref()

    def lookup_domain_by_name(self, name: str) -> DomainRef:
        with self._lock:
            uuid = self._by_name.get(name)
            if uuid is None:
                raise NoDomainError(f"no domain with matching name '{name}'")
            return self._domains[uuid].ref()

    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        with self._lock:
            d = self._domains.get(uuid)
            if d is None:
                raise NoDomainError(f"no domain with matching uuid '{format_uuid(uuid)}'")
            return d.ref()

    # --- creating and defining ----------------------------------------------------------------

    def define_domain(self, config: DomainConfig) -> DomainRef:
        config = self._prepare(config)
        with self._lock:
            d, new = self._admit(config, persistent=True)
        if new:
            d.oplock.acquire()
        else:
            d = self._locked(d.ref())
        try:
            definition = dataclasses.replace(config, uuid=d.uuid, id=None)
            try:
                self.store.save(definition)
            except VirtError:
                if new:
                    with self._lock:
                        self._forget(d)
                raise
            with self._lock:
                d.config = definition
                d.persistent = True
            return d.ref()
        finally:
            d.oplock.release()

    def create_domain(self, config: DomainConfig) -> DomainRef:
        config = self._prepare(config)
        with self._lock:
            d, new = self._admit(config, persistent=False)
        if new:
            d.oplock.acquire()
        else:
            d = self._locked(d.ref())
        try:
            if d.run is not None:
                raise DomainExistsError(f"domain '{d.name}' is already active")
            try:
                return self._start(d, dataclasses.replace(config, uuid=d.uuid, id=None))
            except BaseException:
                if new:
                    with self._lock:
                        if d.run is None:
                            self._forget(d)
                raise
        finally:
            d.oplock.release()

    def restore_domain(self, path: str) -> DomainRef:
        incoming, config = qsave.open_save_file(path)
        try:
            config = self._prepare(config)
            with self._lock:
                d, new = self._admit(config, persistent=False)
            if new:
                d.oplock.acquire()
            else:
                d = self._locked(d.ref())
            try:
                if d.run is not None:
                    raise DomainExistsError(f"domain '{d.name}' is already active")
                try:
                    return self._start(d, dataclasses.replace(config, uuid=d.uuid, id=None),
                                       incoming)
                except BaseException:
                    with self._lock:
                        if d.run is None and not d.persistent:
                            self._forget(d)
                    raise
            finally:
                d.oplock.release()
        finally:
            incoming.close()

    # --- one domain: queries (fast) --------------------------------------------------------

    def domain_get_state(self, dom: DomainRef) -> tuple[DomainState, int]:
        with self._lock:
            run = self._dom(dom).run
        return (run.state if run is not None else DomainState.SHUTOFF), 0

    def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        with self._lock:
            d = self._dom(dom)
            run = d.run
            cfg = d.current
        if run is None:
            return DomainInfo(DomainState.SHUTOFF, cfg.memory, cfg.current_memory_kib,
                              cfg.online_vcpus, 0)
        got = _core.poll_processes((run.pid,))[0]
        cpu = got.cpu_time_ns if isinstance(got, _core.ProcessStats) else 0
        return DomainInfo(run.state, cfg.memory, cfg.current_memory_kib, cfg.online_vcpus, cpu)

    def all_domain_stats(self) -> dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]]:
        """Info and vCPUs of every domain, the running ones read from ``/proc`` in one
        :func:`virtkit._core.poll_processes` call (not a contract operation: the
        daemon's bulk statistics and the benchmarks use it)."""
        with self._lock:
            doms = [(d.ref(), d.run, d.current) for d in self._domains.values()]
        running = [(ref, run, cfg) for ref, run, cfg in doms if run is not None]
        polled = _core.poll_processes([r.pid for _, r, _ in running]) if running else []
        out: dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]] = {}
        for (ref, live_run, cfg), got in zip(running, polled):
            cpu = got.cpu_time_ns if isinstance(got, _core.ProcessStats) else 0
            vcpus = self._vcpu_infos(got) if isinstance(got, _core.ProcessStats) else []
            out[ref] = (DomainInfo(live_run.state, cfg.memory, cfg.current_memory_kib,
                                   cfg.online_vcpus, cpu), vcpus)
        for ref, maybe_run, cfg in doms:
            if maybe_run is None:
                out[ref] = (DomainInfo(DomainState.SHUTOFF, cfg.memory, cfg.current_memory_kib,
                                       cfg.online_vcpus, 0), [])
        return out

    def _vcpu_infos(self, stats: _core.ProcessStats) -> list[VcpuInfo]:
        ncpus = self._host_cpus
        out = []
        for t in stats.threads:
            m = _VCPU_THREAD.match(t.name)
            if m is None:
                continue
            allowed = set(t.affinity)
            out.append(VcpuInfo(int(m[1]),
                                VcpuState.RUNNING if t.state == "R" else VcpuState.BLOCKED,
                                t.cpu_time_ns, t.processor,
                                tuple(i in allowed for i in range(ncpus))))
        out.sort(key=lambda v: v.number)
        return out

    def domain_get_vcpus(self, dom: DomainRef) -> list[VcpuInfo]:
        with self._lock:
            d = self._dom(dom)
            run = d.run
        if run is None:
            raise OperationInvalidError(f"domain '{d.name}' is not running")
        got = _core.poll_processes((run.pid,))[0]
        if not isinstance(got, _core.ProcessStats):
            raise OperationInvalidError(f"domain '{d.name}' is not running")
        return self._vcpu_infos(got)

    def domain_get_os_type(self, dom: DomainRef) -> str:
        with self._lock:
            return self._dom(dom).current.os.type

    def domain_get_max_memory(self, dom: DomainRef) -> int:
        with self._lock:
            return self._dom(dom).current.memory

    def domain_get_config(self, dom: DomainRef, inactive: bool) -> DomainConfig:
        with self._lock:
            d = self._dom(dom)
            if inactive or d.run is None:
                return d.config
            return d.run.live

    def domain_get_autostart(self, dom: DomainRef) -> bool:
        with self._lock:
            return self._dom(dom).autostart

    def domain_is_persistent(self, dom: DomainRef) -> bool:
        with self._lock:
            return self._dom(dom).persistent

    def domain_get_console_path(self, dom: DomainRef) -> str:
        with self._lock:
            d = self._dom(dom)
            run = d.run
        if run is None:
            raise OperationInvalidError(f"domain '{d.name}' is not running")
        if run.console is None:
            raise OperationInvalidError(f"domain '{d.name}' has no serial console")
        return run.console

    def domain_interface_addresses(self, dom: DomainRef, source: int) -> list[DomainInterface]:
        """From the DHCP leases of the networks the guest's interfaces are on."""
        from virtkit.domain import InterfaceAddressSource

        if source != InterfaceAddressSource.LEASE:
            raise NoSupportError("the QEMU driver knows interface addresses from its "
                                 "networks' DHCP leases only (source 'lease')")
        with self._lock:
            d = self._dom(dom)
            run = d.run
        if run is None:
            raise OperationInvalidError(f"domain '{d.name}' is not running")
        return networking.interface_addresses(run.live, self._net_manager)

    # --- one domain: life cycle ----------------------------------------------------------

    def _active_run(self, d: _Domain) -> _Run:
        run = d.run
        if run is None:
            raise OperationInvalidError(f"domain '{d.name}' is not running")
        return run

    def _monitor_call(self, run: _Run, command: str,
                      arguments: Mapping[str, object] | None = None) -> Any:
        async def call() -> Any:
            if run.monitor is None:
                raise _qemu_error("the domain has no QMP monitor")
            return await run.monitor.execute(command, arguments)
        return self._call(call(), MONITOR_TIMEOUT)

    def domain_start(self, dom: DomainRef) -> DomainRef:
        d = self._locked(dom)
        try:
            return self._start(d, d.config)
        finally:
            d.oplock.release()

    def domain_suspend(self, dom: DomainRef) -> None:
        d = self._locked(dom)
        try:
            run = self._active_run(d)
            self._monitor_call(run, "stop")
            if not run.gone.is_set():
                run.state = DomainState.PAUSED
        finally:
            d.oplock.release()

    def domain_resume(self, dom: DomainRef) -> None:
        d = self._locked(dom)
        try:
            run = self._active_run(d)
            self._monitor_call(run, "cont")
            if not run.gone.is_set():
                run.state = DomainState.RUNNING
        finally:
            d.oplock.release()

    def domain_shutdown(self, dom: DomainRef) -> None:
        d = self._locked(dom)
        try:
            run = self._active_run(d)
            run.fake_reboot = False
            self._monitor_call(run, "system_powerdown")
        finally:
            d.oplock.release()

    def domain_reboot(self, dom: DomainRef) -> None:
        d = self._locked(dom)
        try:
            run = self._active_run(d)
            run.fake_reboot = True
            try:
                self._monitor_call(run, "system_powerdown")
            except VirtError:
                run.fake_reboot = False
                raise
        finally:
            d.oplock.release()

    def domain_destroy(self, dom: DomainRef) -> None:
        d = self._locked(dom)
        try:
            run = self._active_run(d)
            self._call(self._kill(run), DESTROY_GRACE + MONITOR_TIMEOUT)
        finally:
            d.oplock.release()

    def domain_undefine(self, dom: DomainRef) -> None:
        d = self._locked(dom)
        try:
            if not d.persistent:
                raise OperationInvalidError(f"domain '{d.name}' is transient (not defined)")
            self.store.remove(d.name)
            with self._lock:
                d.persistent = False
                d.autostart = False
                if d.run is None:
                    self._forget(d)
        finally:
            d.oplock.release()

    def domain_core_dump(self, dom: DomainRef, path: str) -> None:
        d = self._locked(dom)
        try:
            qsave.core_dump(self, d, self._active_run(d), path)
        finally:
            d.oplock.release()

    def domain_save(self, dom: DomainRef, path: str) -> None:
        d = self._locked(dom)
        try:
            qsave.save_domain(self, d, self._active_run(d), path)
        finally:
            d.oplock.release()

    # --- one domain: resources and configuration --------------------------------------------

    def _redefine(self, d: _Domain, config: DomainConfig) -> None:
        """Make ``config`` the definition of ``d`` (saved when persistent); caller holds
        ``d.oplock``."""
        if d.persistent:
            self.store.save(config)
        with self._lock:
            d.config = config

    def domain_set_max_memory(self, dom: DomainRef, kib: int) -> None:
        d = self._locked(dom)
        try:
            if d.run is not None:
                raise OperationInvalidError(
                    f"cannot change the maximum memory of running domain '{d.name}': QEMU's "
                    "memory size is fixed at start (change it while the domain is shut off)")
            current = min(d.config.current_memory_kib, kib)
            self._redefine(d, dataclasses.replace(
                d.config, memory=kib, current_memory=None if current == kib else current))
        finally:
            d.oplock.release()

    def domain_set_memory(self, dom: DomainRef, kib: int) -> None:
        d = self._locked(dom)
        try:
            cfg = d.current
            if kib > cfg.memory:
                raise InvalidArgumentError(f"cannot set memory to {kib} KiB: above the maximum "
                                           f"of {cfg.memory} KiB")
            run = d.run
            if run is None:
                self._redefine(d, dataclasses.replace(d.config, current_memory=kib))
                return
            self._monitor_call(run, "balloon", {"value": kib * 1024})
            with self._lock:
                run.live = dataclasses.replace(run.live, current_memory=kib)
        finally:
            d.oplock.release()

    def domain_set_vcpus(self, dom: DomainRef, count: int) -> None:
        if count > MAX_VCPUS:
            raise InvalidArgumentError(f"cannot set {count} vCPUs: the maximum is {MAX_VCPUS}")
        d = self._locked(dom)
        try:
            if d.run is not None:
                qvcpus.set_live_vcpus(self, d, d.run, count)
                return
            pins = tuple(p for p in d.config.vcpu_pins if p.vcpu < count)
            self._redefine(d, dataclasses.replace(d.config, vcpus=count, vcpus_current=None,
                                                  vcpu_pins=pins))
        finally:
            d.oplock.release()

    def domain_pin_vcpu(self, dom: DomainRef, vcpu: int, cpumap: tuple[bool, ...]) -> None:
        from virtkit.cpuset import format_cpulist

        d = self._locked(dom)
        try:
            cfg = d.current
            if vcpu >= cfg.online_vcpus:
                raise InvalidArgumentError(
                    f"vCPU {vcpu} does not exist: domain '{d.name}' has {cfg.online_vcpus}")
            pin = VcpuPin(vcpu, format_cpulist(cpumap))
            run = d.run
            if run is not None:
                tid = run.vcpu_tids.get(vcpu)
                if tid is None:
                    raise OperationFailedError(f"QEMU reported no thread for vCPU {vcpu}")
                _core.set_thread_affinity(tid, [i for i, on in enumerate(cpumap) if on])
                with self._lock:
                    run.live = with_pin(run.live, pin)
            # Remembered in the definition too: the next start keeps it.
            if d.persistent or run is None:
                self._redefine(d, with_pin(d.config, pin))
        finally:
            d.oplock.release()

    def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        d = self._locked(dom)
        try:
            self.store.set_autostart(d.name, autostart)
            with self._lock:
                d.autostart = autostart
        finally:
            d.oplock.release()

    def domain_attach_device(self, dom: DomainRef, device: Device) -> None:
        self._edit_devices(dom, device, attach=True)

    def domain_detach_device(self, dom: DomainRef, device: Device) -> None:
        self._edit_devices(dom, device, attach=False)

    def _edit_devices(self, dom: DomainRef, device: Device, *, attach: bool) -> None:
        d = self._locked(dom)
        try:
            if d.run is not None:
                (hotplug.attach if attach else hotplug.detach)(self, d, d.run, device)
                return
            config = attach_device(d.config, device) if attach else detach_device(d.config, device)
            self._redefine(d, self._prepare(config))
        finally:
            d.oplock.release()


# ====================================================================== helpers


def _mode(uri: URI) -> str:
    path = uri.path.rstrip("/")
    if uri.driver != "qemu" or uri.host or uri.transport or path not in ("/session", "/system"):
        raise ConnectionFailedError(f"the QEMU driver serves qemu:///session and qemu:///system, "
                                    f"not {uri.raw!r}")
    return path[1:]


def _qemu_env(config: DomainConfig) -> dict[str, str]:
    env = {"LC_ALL": "C"}
    env.update(command_environment(config))
    return env


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def _chardev_labels(config: DomainConfig) -> list[str | None]:
    """The QEMU chardev id of each of ``config.chardevs`` (as :mod:`command` names them)."""
    labels: list[str | None] = []
    next_serial = next_parallel = virtio = 0
    for c in config.chardevs:
        if c.kind == "serial":
            port = c.target_port if c.target_port is not None else next_serial
            next_serial = port + 1
            labels.append(f"charserial{port}")
        elif c.kind == "parallel":
            port = c.target_port if c.target_port is not None else next_parallel
            next_parallel = port + 1
            labels.append(f"charparallel{port}")
        elif c.kind == "console" and (c.target_type or "serial") == "serial":
            labels.append(f"charserial{c.target_port or 0}")
        elif c.kind == "console" and c.target_type == "virtio":
            labels.append(f"charconsole{virtio}")
            virtio += 1
        else:
            labels.append(None)
    return labels


def _with_runtime(config: DomainConfig, ptys: Mapping[str, str],
                  vnc_port: int | None) -> DomainConfig:
    """``config`` with the pty paths QEMU allocated and the VNC port it took."""
    chardevs = []
    for c, label in zip(config.chardevs, _chardev_labels(config)):
        path = ptys.get(label) if label is not None and c.type == "pty" else None
        if path is not None:
            c = dataclasses.replace(c, source_path=path,
                                    tty=path if c.kind == "console" else c.tty)
        chardevs.append(c)
    # A port QEMU chose is marked autoport='yes' (as libvirt shows it): a saved live
    # configuration must not ask a restored guest for that port.
    graphics = tuple(dataclasses.replace(g, port=vnc_port,
                                         autoport=True if g.port in (None, -1) else g.autoport)
                     if g.type == "vnc" and vnc_port else g for g in config.graphics)
    return dataclasses.replace(config, chardevs=tuple(chardevs), graphics=graphics)


def _console_path(config: DomainConfig) -> str | None:
    """The serial console's pty (the first serial port's, else a console's)."""
    for kind in ("serial", "console"):
        for c in config.chardevs:
            if c.kind == kind and c.type == "pty" and (c.source_path or c.tty):
                return c.source_path or c.tty
    return None


