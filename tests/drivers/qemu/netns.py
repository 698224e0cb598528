"""A ``virtkitd --system --driver qemu`` inside a private network namespace, for live network tests.

Topology (namespace names carry the pytest process's pid and a role)::

    [daemon ns]  virtkitd --system, its QEMUs, bridges, dnsmasq, nftables
       up0 198.51.100.1 ──veth── eth0 198.51.100.2  [outside ns]  plays the rest of the world
       default route via 198.51.100.2

The daemon process is ``ip netns exec NS python -m virtkit.daemon --system
...`` with every directory in one temporary directory, so it sees only the
namespace's links and never touches the host's network. Its QEMUs inherit the
namespace. :class:`NetnsWorld` owns the two namespaces and the daemon; its
:meth:`NetnsWorld.close` destroys every domain and network through the API,
stops the daemon, and returns what was left behind (processes in the
namespaces, links, nftables tables), then deletes the namespaces.

:func:`host_snapshot` is what a session fixture compares before and after to
prove the host's network was not touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import virtkit
from tests.daemon.private import PrivateDaemon
from tests.drivers.qemu.guests import close_console, guest_xml, open_console
from tests.guest.console import READY_MARKER, Console, GuestImage
from tests.net.namespaces import OUTSIDE_IP, UPLINK_IP, Namespace, run


def host_snapshot() -> dict[str, object]:
    """The host's links, routes (all tables), nftables ruleset and namespaces of this run."""
    links = json.loads(run("ip", "-d", "-j", "link", "show").stdout or "[]")
    prefix = f"vk{os.getpid()}-"
    return {
        "links": sorted((link["ifname"], link.get("linkinfo", {}).get("info_kind", ""),
                         link.get("master", "")) for link in links),
        "routes": run("ip", "route", "show", "table", "all").stdout,
        "routes6": run("ip", "-6", "route", "show", "table", "all").stdout,
        "nft ruleset": run("nft", "list", "ruleset", check=False).stdout
        if shutil.which("nft") else "",
        "our namespaces": [n for n in run("ip", "netns", "list").stdout.splitlines()
                           if n.startswith(prefix)],
    }


class NetnsDaemon(PrivateDaemon):
    """``virtkitd --system --driver qemu`` run with ``ip netns exec`` in ``ns``."""

    def __init__(self, ns: Namespace, base: Path, *extra: str) -> None:
        super().__init__(base=base, driver="qemu")
        self.ns = ns
        self.args = ["--system", "--driver", "qemu", "--socket-dir", str(self.socket_dir),
                     "--state-dir", str(self.state_dir), "--config-dir", str(self.config_dir),
                     "-v", *extra]

    def command(self) -> list[str]:
        # ip netns exec execs the daemon: the pid we hold is the daemon's.
        return ["ip", "netns", "exec", self.ns.name, sys.executable, "-m", "virtkit.daemon",
                *self.args]

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def ro_uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket_ro}"

    @property
    def network_state(self) -> Path:
        """The network manager's status and dnsmasq files."""
        return self.socket_dir / "network"

    def qemu_pids(self) -> list[int]:
        from tests.drivers.qemu.guests import qemu_pids_mentioning

        return qemu_pids_mentioning(str(self.socket_dir / "qemu"))

    def connect(self) -> virtkit.Connection:
        return virtkit.open(self.uri)


class NetnsWorld:
    """The daemon and outside namespaces joined by a veth, and the daemon (see above)."""

    def __init__(self, tag: str = "q") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="vkn-"))
        self.daemon_ns = Namespace(f"{tag}d")
        try:
            self.outside = Namespace(f"{tag}o")
            self.daemon_ns.ip("link", "add", "up0", "type", "veth", "peer", "name", "eth0",
                              "netns", self.outside.name)
            self.daemon_ns.ip("addr", "add", f"{UPLINK_IP}/24", "dev", "up0")
            self.daemon_ns.ip("link", "set", "up0", "up")
            self.daemon_ns.ip("route", "add", "default", "via", OUTSIDE_IP)
            self.outside.ip("addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
            self.outside.ip("link", "set", "eth0", "up")
        except BaseException:
            self.daemon_ns.delete()
            raise
        self.baseline_links = set(self.daemon_ns.links())
        self.daemon = NetnsDaemon(self.daemon_ns, self.base)

    def start(self) -> NetnsWorld:
        self.daemon.start()
        return self

    def restart(self, *, kill: bool = False) -> None:
        """Stop (SIGTERM, or SIGKILL as a crash) and start the daemon on the same dirs."""
        if kill:
            self.daemon.kill()
        else:
            self.daemon.stop()
        self.daemon = NetnsDaemon(self.daemon_ns, self.base)
        self.daemon.start()

    def tidy(self) -> None:
        """Destroy every domain and network, undefine every definition (through the API)."""
        with virtkit.open(self.daemon.uri) as conn:
            for dom in conn.list_all_domains():
                if dom.is_active():
                    dom.destroy()
            for dom in conn.list_all_domains():
                if dom.is_persistent():
                    dom.undefine()
            for name in conn.list_networks():
                conn.lookup_network_by_name(name).destroy()
            for name in conn.list_defined_networks():
                conn.lookup_network_by_name(name).undefine()

    def leftovers(self) -> dict[str, list[str]]:
        """What the daemon namespace holds beyond its baseline."""
        tables = self.daemon_ns.nft_tables()
        qemu_files = [str(p) for d in (self.daemon.socket_dir / "qemu",
                                       self.daemon.config_dir / "qemu")
                      if d.exists() for p in d.rglob("*") if p.is_file()]
        return {
            "links": sorted(set(self.daemon_ns.links()) - self.baseline_links),
            "nft tables": tables,
            "QEMU processes": [str(p) for p in self.daemon.qemu_pids()],
            "taps": [n for n in self.daemon_ns.links() if n.startswith("vnet")],
            "QEMU driver files": qemu_files,
        }

    def close(self) -> dict[str, list[str]]:
        """Tidy, stop the daemon, kill and report stray processes, delete the namespaces.
        Returns what had to be cleaned up by force (empty lists when nothing)."""
        left: dict[str, list[str]] = {}
        try:
            if self.daemon.running:
                try:
                    self.tidy()
                except virtkit.VirtError as e:
                    left["tidy"] = [str(e)]
                left.update(self.leftovers())
            status = self.daemon.stop()
            if status not in (0, None):
                left["daemon exit status"] = [str(status)]
        finally:
            stray = self.daemon_ns.kill_all() + self.outside.kill_all()
            for pid in self.daemon.qemu_pids():
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
                stray.append(pid)
            left["processes"] = [str(p) for p in stray]
            self.daemon_ns.delete()
            self.outside.delete()
            shutil.rmtree(self.base, ignore_errors=True)
        return {k: v for k, v in left.items() if v}

    def log(self) -> str:
        return self.daemon.log_text()


def ping_from(ns: Namespace, address: str, count: int = 1, timeout: int = 1
              ) -> subprocess.CompletedProcess[str]:
    """busybox ``ping -c COUNT -W TIMEOUT ADDRESS`` in ``ns`` (not checked; the host may
    have no ping of its own)."""
    return ns.exec("busybox", "ping", "-c", str(count), "-W", str(timeout), address,
                   check=False, timeout=count * timeout + 10)


# ====================================================================== guests

#: The test guest's kernel command line here: no tick lines (quieter consoles).
NET_CMDLINE = "console=ttyS0 quiet panic=-1 virtkit.tick=0"
BOOT = 120.0  # seconds: the test guest boots in 2 to 4 s alone, far slower on busy cores
_LEASE = re.compile(r"VIRTKIT-LEASE (ip=.*)")
_RECEIVED = re.compile(r"(\d+) packets transmitted, (\d+) packets received")


def nic(kind: str, source: str = "", *, mac: str | None = None, extra: str = "") -> str:
    """An ``<interface>`` (virtio: the test guest has no other NIC driver)."""
    src = {"network": f"<source network='{source}'/>", "bridge": f"<source bridge='{source}'/>",
           "ethernet": "", "user": ""}.get(kind, source)
    mac_el = f"<mac address='{mac}'/>" if mac else ""
    return f"<interface type='{kind}'>{mac_el}{src}{extra}<model type='virtio'/></interface>"


class LiveGuest:
    """The test guest as a domain of ``conn``: defined, started, its console open.

    :meth:`lease` reads the guest's own ``VIRTKIT-LEASE`` line; :meth:`run` types
    a command into its shell; :meth:`close` destroys and undefines it.
    """

    def __init__(self, conn: virtkit.Connection, name: str, image: GuestImage,
                 interfaces: str, *, start: bool = True) -> None:
        self.conn = conn
        self.name = name
        self.dom = conn.define_domain(guest_xml(name, image, extra_devices=interfaces,
                                                cmdline=NET_CMDLINE))
        self.console: Console | None = None
        self.started_at = 0.0
        if start:
            self.start()

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.dom.start()
        self.console = open_console(self.dom)
        self.console.start = self.started_at

    def con(self) -> Console:
        assert self.console is not None, f"{self.name} was not started"
        return self.console

    def ready(self, timeout: float = BOOT) -> None:
        """Until the shell answers (after the ready marker)."""
        self.con().expect(READY_MARKER, timeout, from_start=True)
        self.con().wait_for_shell(timeout)

    def lease(self, timeout: float = 60.0) -> dict[str, str]:
        """The fields of the guest's (first) VIRTKIT-LEASE line."""
        m = self.con().expect(_LEASE, timeout, from_start=True)
        return dict(kv.split("=", 1) for kv in m[1].split())

    def run(self, command: str, timeout: float = 60.0) -> tuple[int, list[str]]:
        return self.con().run(command, timeout)

    def ping(self, address: str, count: int = 3) -> int:
        """Echo replies the guest got out of ``count`` (its own ping's summary line)."""
        _, out = self.run(f"ping -c {count} -W 2 {address}", timeout=count * 3 + 30)
        for line in out:
            m = _RECEIVED.search(line)
            if m:
                return int(m[2])
        raise AssertionError(f"no ping summary from {self.name}: {out}")

    def static_ip(self, cidr: str, dev: str = "eth0") -> None:
        """Stop the guest's DHCP client and give ``dev`` a fixed address."""
        status, out = self.run(f"killall udhcpc; ip -4 addr flush dev {dev}; "
                               f"ip addr add {cidr} dev {dev} && ip link set {dev} up")
        assert status == 0, out

    def close(self) -> None:
        if self.console is not None:
            close_console(self.console)
            self.console = None
        try:
            if self.dom.is_active():
                self.dom.destroy()
            if self.dom.is_persistent():
                self.dom.undefine()
        except virtkit.NoDomainError:
            pass
