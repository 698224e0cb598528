"""Host networking of QEMU guests: their tap devices, and the networks of each kind of daemon.

Interface types (libvirt 0.2.2's "Networking options for QEmu and KVM", today's names)
-------------------------------------------------------------------------------------
==============================  ================================================  ===================
type                            host side                                         who may use it
==============================  ================================================  ===================
``network``                     a tap on the active network's bridge              ``qemu:///system``
``bridge``                      a tap on an existing host bridge                  CAP_NET_ADMIN
                                (``<source bridge>``)
``ethernet``                    a tap on no bridge; ``<script path>``, if any,    CAP_NET_ADMIN
                                runs with the tap's name as its argument (QEMU's
                                ``ifup`` convention) and sets it up
``user``                        QEMU's user-mode stack (SLIRP)                    everyone
``mcast``, ``server``,          QEMU sockets (``-netdev socket``), no host        everyone
``client``                      device
==============================  ================================================  ===================

Taps
----
:func:`setup_taps` runs in the driver's start path, before QEMU: for each
``network``/``bridge``/``ethernet`` interface it creates a persistent tap
(:mod:`virtkit.net.tap`: owned by the guest's user, its own MAC the guest's
with ``fe`` first, up, plugged into the bridge), opens a queue of it and hands
the descriptor to QEMU (``-netdev tap,fd=N`` through
:attr:`~virtkit.drivers.qemu.command.CommandContext.taps`): QEMU needs no
privilege and runs no script (its seccomp sandbox forbids spawning anyway).
The tap's name is ``<target dev>`` when the XML gives one (except ``vnet…``,
which libvirt and virtkit generate: such a name is chosen again at each
start), else the lowest free ``vnetN``. The owner is the daemon's user, or
the uid:gid of a ``<seclabel model='dac'>`` label in the domain's XML.

The guest's MAC comes from the XML; the driver generates missing ones
(``52:54:00:…``) when the domain is defined and saves them with the
definition, so a guest keeps its MAC (and its DHCP lease) across starts.

The live configuration records what was made: ``<target dev='vnetN'/>`` on
every tap interface and ``<source network='NAME' bridge='virbrN'/>`` on
network interfaces, as libvirt shows them. The driver's status file keeps
the live XML, so a daemon restarted while the guest runs still knows its
taps. :func:`remove_taps` deletes them when QEMU has exited (the driver's exit
path, and adoption when the QEMU died while no daemon watched it); a tap is
only deleted while it still carries the MAC we gave it, so a name someone
else took meanwhile is left alone. A failed start removes what it made.

Networks of each kind of daemon
-------------------------------
``qemu:///system`` (root) serves real virtual networks
(:class:`~virtkit.net.manager.NetworkManager`). ``qemu:///session`` has none,
as in libvirt: :class:`SessionNetworks` stands in for the manager, lists
nothing, finds nothing and refuses to define or create a network with a
message pointing at ``qemu:///system`` and at the interface types a session
guest can use.

Hot-plug: :func:`plug_tap` makes the tap of an interface added to a running
guest and says how QEMU opens it (by name: QEMU runs as the tap's owner, so
``netdev_add type=tap ifname=… script=no`` needs no descriptor passing);
:func:`unplug_tap` removes it once QEMU has dropped the back end. The QMP side
(``netdev_add``, ``device_add``, ``device_del``) is the device hot-plug code's
(:mod:`~virtkit.drivers.qemu.hotplug`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from virtkit.drivers.interface import NetworkRef
from virtkit.drivers.qemu.command import Tap as CommandTap
from virtkit.errors import (
    ErrorDomain,
    InvalidArgumentError,
    NoNetworkError,
    NoSupportError,
    OperationDeniedError,
    OperationFailedError,
    VirtError,
)
from virtkit.xml.domain import DomainConfig, Interface

if TYPE_CHECKING:
    from virtkit.domain import DomainInterface
    from virtkit.net.manager import NetworkManager
    from virtkit.network import DHCPLease
    from virtkit.xml.network import NetworkConfig

__all__ = [
    "TAP_TYPES",
    "GuestTaps",
    "setup_taps",
    "setup_interface_tap",
    "remove_taps",
    "tap_owner",
    "interface_addresses",
    "plug_tap",
    "unplug_tap",
    "SessionNetworks",
    "SESSION_HINT",
    "SCRIPT_TIMEOUT",
]

log = logging.getLogger(__name__)

#: Interface types whose host side is a tap device.
TAP_TYPES = frozenset(("network", "bridge", "ethernet"))
#: Seconds an ``ethernet`` interface's ``<script>`` may run.
SCRIPT_TIMEOUT = 30.0
#: Names virtkit and libvirt generate; a ``<target dev>`` with this prefix is chosen anew.
_GENERATED = ("vnet",)
_CAP_NET_ADMIN = 12
_DAC_LABEL = re.compile(r"<seclabel\b[^>]*\bmodel=['\"]dac['\"][^>]*>.*?<label>\+?(\d+):\+?(\d+)"
                        r"</label>", re.S)

SESSION_HINT = ("qemu:///session has no virtual networks: they belong to qemu:///system "
                "(root's virtkitd --system); a session guest can use interfaces of type user, "
                "mcast, server and client")


# ====================================================================== taps of a guest


@dataclass
class GuestTaps:
    """The taps :func:`setup_taps` made for one start of a guest."""

    #: The configuration with every tap interface's ``<target dev>`` (and a network
    #: interface's bridge) filled in: what the live XML shows.
    live: DomainConfig
    #: Interface index -> open tap descriptor, for QEMU.
    fds: dict[int, int] = field(default_factory=dict)
    #: ``(tap name, tap MAC)`` of every tap made, for undoing.
    made: list[tuple[str, str | None]] = field(default_factory=list)
    #: Seconds per step (for logs and the start-up breakdown).
    timings: dict[str, float] = field(default_factory=dict)

    def command_taps(self) -> dict[int, CommandTap]:
        """What :class:`~virtkit.drivers.qemu.command.CommandContext` takes."""
        return {i: CommandTap(fd=fd) for i, fd in self.fds.items()}

    def close_fds(self) -> None:
        """Close our copies of the descriptors (QEMU has its own once it runs)."""
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            try:
                os.close(fd)
            except OSError:
                pass

    def undo(self) -> None:
        """Close the descriptors and delete every tap made (a failed start)."""
        from virtkit.net.tap import delete_tap

        self.close_fds()
        for name, mac in reversed(self.made):
            try:
                delete_tap(name, mac=mac)
            except VirtError as e:
                log.warning("cannot remove tap %s: %s", name, e)
        self.made.clear()


def _wanted_name(iface: Interface) -> str | None:
    name = iface.target_dev
    if not name or name.startswith(_GENERATED):
        return None
    return name


def can_admin_network() -> bool:
    """True when this process may create taps (CAP_NET_ADMIN in its effective set)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_ADMIN & 1)
    except (OSError, ValueError):
        pass
    return os.geteuid() == 0


def tap_owner(config: DomainConfig) -> tuple[int, int | None]:
    """Who owns the guest's taps: the uid:gid of a ``<seclabel model='dac'>`` label of
    the domain, else the daemon's own user and group."""
    for element in config.extra:
        m = _DAC_LABEL.search(element)
        if m is not None:
            return int(m[1]), int(m[2])
    return os.geteuid(), os.getegid()


def _where(index: int, iface: Interface) -> str:
    return f"interface {index} (type {iface.type!r})"


def setup_interface_tap(config: DomainConfig, index: int, iface: Interface,
                        networks: NetworkManager | None, *, log_path: str | None = None,
                        owner: tuple[int, int | None] | None = None, open_queue: bool = True
                        ) -> tuple[Interface, int | None, tuple[str, str | None]]:
    """Make and (``open_queue``) open the tap of one ``network``/``bridge``/``ethernet``
    interface.

    Returns the interface as the live XML shows it, the open descriptor (None
    without ``open_queue``) and ``(name, tap MAC)`` for undoing. On failure
    nothing is left behind.
    Raises NoSupportError for a ``network`` interface without networks (a
    session daemon), OperationDeniedError when this process may not create
    taps, NoNetworkError / OperationInvalidError for a missing or inactive
    network, OperationFailedError for a missing bridge, a taken name or a
    failing script.
    """
    from virtkit.net.tap import create_tap, delete_tap, open_tap

    where = _where(index, iface)
    if iface.type == "network" and networks is None:
        raise NoSupportError(f"{where}: {SESSION_HINT}", domain=ErrorDomain.QEMU)
    if not can_admin_network():
        raise OperationDeniedError(
            f"{where} needs a tap device, which only a daemon with CAP_NET_ADMIN (root's "
            "qemu:///system) can create; a session guest can use interfaces of type user, "
            "mcast, server and client")
    uid, gid = owner if owner is not None else tap_owner(config)
    name = _wanted_name(iface)
    if iface.type == "network":
        assert networks is not None
        if not iface.source:
            raise InvalidArgumentError(f"{where}: <source network> is required")
        tap = networks.create_tap(iface.source, owner_uid=uid, owner_gid=gid, mac=iface.mac,
                                  name=name)
        live = dataclasses.replace(iface, target_dev=tap.name, source_bridge=tap.bridge)
    elif iface.type == "bridge":
        if not iface.source:
            raise InvalidArgumentError(f"{where}: <source bridge> is required")
        tap = create_tap(iface.source, name, owner_uid=uid, owner_gid=gid, mac=iface.mac)
        live = dataclasses.replace(iface, target_dev=tap.name)
    elif iface.type == "ethernet":
        tap = create_tap(None, name, owner_uid=uid, owner_gid=gid, mac=iface.mac)
        live = dataclasses.replace(iface, target_dev=tap.name)
    else:
        raise InvalidArgumentError(f"{where} has no tap device")
    made = (tap.name, tap.mac)
    try:
        if iface.type == "ethernet" and iface.script:
            run_script(iface.script, tap.name, where=where, log_path=log_path)
        fd = open_tap(tap.name) if open_queue else None
    except BaseException:
        try:
            delete_tap(tap.name, mac=tap.mac)
        except VirtError as e:
            log.warning("cannot remove tap %s: %s", tap.name, e)
        raise
    return live, fd, made


def setup_taps(config: DomainConfig, networks: NetworkManager | None, *,
               log_path: str | None = None) -> GuestTaps:
    """Make, open and (``ethernet``) script the taps of every tap interface of ``config``.

    Returns them with the live configuration; on failure every tap made so far
    is removed and the error (see :func:`setup_interface_tap`) names the
    interface.
    """
    out = GuestTaps(live=config)
    if not any(i.type in TAP_TYPES for i in config.interfaces):
        return out
    owner = tap_owner(config)
    interfaces = list(config.interfaces)
    t0 = time.perf_counter()
    try:
        for index, iface in enumerate(config.interfaces):
            if iface.type not in TAP_TYPES:
                continue
            live, fd, made = setup_interface_tap(config, index, iface, networks,
                                                 log_path=log_path, owner=owner)
            out.made.append(made)
            assert fd is not None
            out.fds[index] = fd
            interfaces[index] = live
    except BaseException:
        out.undo()
        raise
    out.timings["taps"] = time.perf_counter() - t0
    out.live = dataclasses.replace(config, interfaces=tuple(interfaces))
    return out


def run_script(script: str, tap: str, *, where: str, log_path: str | None = None) -> None:
    """Run an ``ethernet`` interface's ``<script>`` as QEMU runs its ``ifup``: the tap's
    name as the only argument; output appended to the domain's log. OperationFailedError
    when it cannot run, fails or takes more than :data:`SCRIPT_TIMEOUT` seconds."""
    if not os.path.isabs(script):
        raise InvalidArgumentError(f"{where}: <script path='{script}'> must be absolute")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        try:
            proc = subprocess.Popen([script, tap], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=out, start_new_session=True, close_fds=True, cwd="/")
        except OSError as e:
            raise OperationFailedError(f"{where}: cannot run script '{script}': {e.strerror}",
                                       domain=ErrorDomain.QEMU) from None
        try:
            status = proc.wait(SCRIPT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise OperationFailedError(f"{where}: script '{script} {tap}' took more than "
                                       f"{SCRIPT_TIMEOUT:g} s", domain=ErrorDomain.QEMU) from None
        if status != 0:
            raise OperationFailedError(f"{where}: script '{script} {tap}' failed with status "
                                       f"{status}", domain=ErrorDomain.QEMU)
    finally:
        if not isinstance(out, int):
            out.close()


def remove_taps(config: DomainConfig) -> list[str]:
    """Delete the taps the live ``config`` records (see the module docstring); return
    the names deleted. Failures are logged, not raised: the guest is gone either way.

    Callable on an event loop's thread (the driver's exit path): pyroute2's
    synchronous API runs an event loop of its own, which a thread already running
    one cannot, so the work then happens in a short-lived thread joined here
    (a few milliseconds).
    """
    if not any(i.type in TAP_TYPES and i.target_dev for i in config.interfaces):
        return []
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _remove_taps(config)
    removed: list[str] = []
    worker = threading.Thread(target=lambda: removed.extend(_remove_taps(config)),
                              name="virtkit-taps")
    worker.start()
    worker.join()
    return removed


def _remove_taps(config: DomainConfig) -> list[str]:
    from virtkit.net.tap import delete_tap, tap_mac

    removed: list[str] = []
    for iface in config.interfaces:
        if iface.type not in TAP_TYPES or not iface.target_dev:
            continue
        try:
            mac = tap_mac(iface.mac) if iface.mac else None
            if delete_tap(iface.target_dev, mac=mac):
                removed.append(iface.target_dev)
        except VirtError as e:
            log.warning("cannot remove tap %s of domain %r: %s", iface.target_dev, config.name, e)
    return removed


# ====================================================================== addresses


def interface_addresses(config: DomainConfig, networks: NetworkManager | None
                        ) -> list[DomainInterface]:
    """The addresses of a running guest's ``network`` interfaces from their networks'
    DHCP leases (``domifaddr --source lease``), in interface order; interfaces
    without a lease are left out, as libvirt leaves them."""
    from virtkit.domain import DomainInterface, InterfaceAddress

    if networks is None:
        return []
    by_network: dict[str, list[DHCPLease]] = {}
    out: list[DomainInterface] = []
    for i, iface in enumerate(config.interfaces):
        if iface.type != "network" or not iface.source or not iface.mac:
            continue
        if iface.source not in by_network:
            try:
                ref = networks.lookup_network_by_name(iface.source)
                by_network[iface.source] = (networks.network_get_dhcp_leases(ref, None)
                                            if networks.network_is_active(ref) else [])
            except VirtError:
                by_network[iface.source] = []
        mac = iface.mac.lower()
        addrs = tuple(InterfaceAddress(int(x.type), x.ipaddr, x.prefix)
                      for x in by_network[iface.source] if x.mac == mac)
        if addrs:
            out.append(DomainInterface(iface.target_dev or f"vnet{i}", mac, addrs))
    return out


# ====================================================================== hot-plug


def plug_tap(config: DomainConfig, index: int, iface: Interface,
             networks: NetworkManager | None, *, log_path: str | None = None
             ) -> tuple[Interface, CommandTap]:
    """The tap of ``iface``, being added to a running guest as interface ``index`` of
    ``config`` (its live configuration with ``iface`` in it): made as at start,
    left closed. Returns the interface as the live XML shows it and the
    :class:`~virtkit.drivers.qemu.command.Tap` for the command context: QEMU
    opens it by name (``ifname=…,script=no,downscript=no``), which it may, since
    it runs as the tap's owner. Errors as :func:`setup_interface_tap`; if the
    QMP part fails, the caller calls :func:`unplug_tap` with the returned interface.
    """
    live, _, _ = setup_interface_tap(config, index, iface, networks, log_path=log_path,
                                     open_queue=False)
    assert live.target_dev is not None
    return live, CommandTap(ifname=live.target_dev)


def unplug_tap(iface: Interface) -> bool:
    """Remove the tap of ``iface`` (as the live XML shows it) once QEMU has dropped its
    back end (``netdev_del``) or failed to take it; False when there was none."""
    if iface.type not in TAP_TYPES or not iface.target_dev:
        return False
    return bool(remove_taps(DomainConfig(name="", interfaces=(iface,))))


# ====================================================================== session daemons


class SessionNetworks:
    """The networks of ``qemu:///session``: none (see the module docstring).

    Duck-types the part of :class:`~virtkit.net.manager.NetworkManager` that
    :class:`~virtkit.net.backend.NetworkBackend` and this module use.
    """

    def list_network_names(self) -> list[str]:
        return []

    def list_defined_network_names(self) -> list[str]:
        return []

    def lookup_network_by_name(self, name: str) -> NetworkRef:
        raise NoNetworkError(f"Network not found: no network with matching name '{name}' "
                             f"({SESSION_HINT})")

    def lookup_network_by_uuid(self, uuid: bytes) -> NetworkRef:
        from virtkit.uuid import format_uuid

        raise NoNetworkError(f"Network not found: no network with matching uuid "
                             f"'{format_uuid(uuid)}' ({SESSION_HINT})")

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise NoSupportError(SESSION_HINT, domain=ErrorDomain.NETWORK)

    def _unknown(self, net: NetworkRef, *args: Any, **kwargs: Any) -> Any:
        raise NoNetworkError(f"Network not found: no network named '{net.name}' "
                             f"({SESSION_HINT})")

    def create_network(self, config: NetworkConfig) -> NetworkRef:
        return self._refuse()  # type: ignore[no-any-return]

    def define_network(self, config: NetworkConfig) -> NetworkRef:
        return self._refuse()  # type: ignore[no-any-return]

    network_is_active = network_is_persistent = network_get_config = _unknown
    network_get_bridge_name = network_start = network_destroy = network_undefine = _unknown
    network_get_autostart = network_set_autostart = network_get_dhcp_leases = _unknown
    create_tap = _refuse

    def close(self, *, stop_networks: bool = False) -> None:
        return None

