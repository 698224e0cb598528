"""Network namespaces for the tests, and the processes that run in them.

Topology (names carry the pytest process's pid, so parallel runs never meet)::

    [client ns c1]                [daemon ns]                          [outside ns]
      eth0 ──veth── p-c1 ─┐     bridge(s) made by virtkit.net
                          └──▶  virbrN 192.168.x.1       up0 198.51.100.1 ──veth── eth0 198.51.100.2
                                (dnsmasq, nftables)      default route via 198.51.100.2

The daemon namespace is where the agent (:mod:`tests.net.agent`) runs the
network manager; the outside namespace plays the rest of the world (a
documentation prefix, 198.51.100.0/24, reachable only through the veth); a
client namespace plays a guest: its veth's daemon-side end is plugged into a
network's bridge, as a guest's tap would be. Every namespace, veth and
process here has one owner (a fixture) that removes or reaps it.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUTSIDE_IP = "198.51.100.2"
UPLINK_IP = "198.51.100.1"
_counter = itertools.count(1)


def run(*argv: str, check: bool = True, timeout: float = 30.0, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise AssertionError with its output."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          input=input, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)} failed ({proc.returncode}): "
                             f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


class Namespace:
    """A named network namespace (``ip netns add``), deleted by :meth:`delete`."""

    def __init__(self, role: str) -> None:
        self.name = f"vk{os.getpid()}-{role}"
        run("ip", "netns", "add", self.name)
        self.ip("link", "set", "lo", "up")

    def __repr__(self) -> str:
        return f"<Namespace {self.name}>"

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "-n", self.name, *args, check=check)

    def exec(self, *argv: str, check: bool = True, timeout: float = 30.0,
             input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.name, *argv, check=check, timeout=timeout,
                   input=input)

    def popen(self, *argv: str, **kw: Any) -> subprocess.Popen[Any]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)

    def links(self) -> dict[str, dict[str, Any]]:
        """Every link by name (``ip -d -j link``)."""
        out = json.loads(self.ip("-d", "-j", "link", "show").stdout or "[]")
        return {link["ifname"]: link for link in out}

    def addresses(self, dev: str) -> list[str]:
        out = json.loads(self.ip("-j", "addr", "show", "dev", dev).stdout or "[]")
        return [f"{a['local']}/{a['prefixlen']}" for link in out for a in link.get("addr_info", [])]

    def nft_tables(self) -> list[str]:
        out = json.loads(self.exec("nft", "-j", "list", "tables").stdout or "{}")
        return [f"{t['table']['family']} {t['table']['name']}"
                for t in out.get("nftables", []) if "table" in t]

    def ruleset(self) -> str:
        return self.exec("nft", "list", "ruleset").stdout

    def pids(self) -> list[int]:
        out = run("ip", "netns", "pids", self.name, check=False).stdout
        return [int(p) for p in out.split()]

    def kill_all(self) -> list[int]:
        """SIGKILL every process still in the namespace; return their pids."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def delete(self) -> None:
        run("ip", "netns", "delete", self.name, check=False)


class World:
    """The daemon and outside namespaces, joined by a veth (see the module docstring)."""

    def __init__(self) -> None:
        self.daemon = Namespace("daemon")
        self.outside = Namespace("outside")
        self.daemon.ip("link", "add", "up0", "type", "veth", "peer", "name", "eth0",
                       "netns", self.outside.name)
        self.daemon.ip("addr", "add", f"{UPLINK_IP}/24", "dev", "up0")
        self.daemon.ip("link", "set", "up0", "up")
        self.daemon.ip("route", "add", "default", "via", OUTSIDE_IP)
        self.outside.ip("addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        self.outside.ip("link", "set", "eth0", "up")
        #: What the daemon namespace holds with no network up.
        self.baseline_links = set(self.daemon.links())

    def close(self) -> list[int]:
        left = self.daemon.kill_all() + self.outside.kill_all()
        self.daemon.delete()
        self.outside.delete()
        return left


class Client:
    """A guest stand-in: a namespace whose ``eth0`` is plugged into ``bridge`` in the daemon ns."""

    def __init__(self, world: World, bridge: str, *, mac: str | None = None,
                 hostname: str | None = None, workdir: Path) -> None:
        n = next(_counter)
        self.world = world
        self.ns = Namespace(f"c{n}")
        self.port = f"p{os.getpid() % 10000}c{n}"[:15]
        self.hostname = hostname
        self.workdir = workdir
        self.lease: dict[str, str] = {}
        args = ["link", "add", self.port, "type", "veth", "peer", "name", "eth0"]
        if mac is not None:
            args += ["address", mac]
        world.daemon.ip(*args, "netns", self.ns.name)
        world.daemon.ip("link", "set", self.port, "master", bridge, "up")
        self.ns.ip("link", "set", "eth0", "up")
        self.mac = json.loads(self.ns.ip("-j", "link", "show", "eth0").stdout)[0]["address"]

    def dhcp(self, *, request: str | None = None, timeout: float = 20.0) -> dict[str, str]:
        """Obtain a lease with busybox udhcpc; configure eth0 with it; return its fields."""
        script = self.workdir / f"udhcpc-{self.ns.name}.sh"
        script.write_text(textwrap.dedent("""\
            #!/bin/sh
            case "$1" in
              bound|renew)
                ip addr flush dev "$interface"
                ip addr add "$ip/$mask" dev "$interface"
                [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
                echo "LEASE ip=$ip mask=$mask router=$router dns=$dns domain=$domain"
                ;;
            esac
            exit 0
            """))
        script.chmod(0o755)
        argv = ["busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "8", "-T", "1",
                "-s", str(script)]
        if self.hostname:
            argv += ["-x", f"hostname:{self.hostname}"]
        if request:
            argv += ["-r", request]
        out = self.ns.exec(*argv, timeout=timeout, check=False)
        for line in out.stdout.splitlines():
            if line.startswith("LEASE "):
                self.lease = dict(kv.split("=", 1) for kv in line[6:].split(" "))
                return self.lease
        raise AssertionError(f"udhcpc got no lease: {out.stdout}\n{out.stderr}")

    def nslookup(self, name: str, server: str) -> list[str]:
        """The addresses ``server`` gives for ``name`` (busybox nslookup)."""
        out = self.ns.exec("busybox", "nslookup", name, server, check=False, timeout=15)
        addrs = []
        seen_name = False
        for line in out.stdout.splitlines():
            if line.startswith("Name:"):
                seen_name = True
            elif seen_name and line.startswith("Address"):
                addrs.append(line.split(":", 1)[1].strip().split()[0])
        return addrs

    def close(self) -> None:
        self.ns.kill_all()
        self.ns.delete()


# --- a tiny TCP service that tells its peer who it sees ------------------------------------

_ECHO_PEER = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
s.settimeout(1.0)
print("ready", flush=True)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        c, peer = s.accept()
    except socket.timeout:
        continue
    c.sendall(peer[0].encode())
    c.close()
"""

_CONNECT = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print("PEER " + s.recv(100).decode())
except OSError as e:
    print(f"FAIL {type(e).__name__} {e}")
"""


class PeerEcho:
    """A server in namespace ``ns`` answering each connection with the peer address it sees;
    it stops by itself after ``lifetime`` seconds, and :meth:`close` stops it sooner."""

    def __init__(self, ns: Namespace, port: int = 7777, lifetime: float = 60.0) -> None:
        self.proc = ns.popen(sys.executable, "-c", _ECHO_PEER, str(port), str(lifetime),
                             stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line
        self.port = port

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def connect(ns: Namespace, host: str, port: int = 7777, timeout: float = 3.0) -> str:
    """From ``ns``, connect to ``host:port``: ``PEER <address>`` or ``FAIL <error>``."""
    return ns.exec(sys.executable, "-c", _CONNECT, host, str(port), str(timeout),
                   timeout=timeout + 10).stdout.strip()


# --- the agent ------------------------------------------------------------------------------

class AgentError(AssertionError):
    pass


class Agent:
    """The agent process in the daemon namespace (see :mod:`tests.net.agent`)."""

    def __init__(self, ns: Namespace, log: Path, env: dict[str, str] | None = None) -> None:
        parent, child = socket.socketpair()
        self.log = log
        self._out = open(log, "ab")
        self.proc = ns.popen(sys.executable, "-m", "tests.net.agent", str(child.fileno()),
                             pass_fds=(child.fileno(),), cwd=REPO, stdin=subprocess.DEVNULL,
                             stdout=self._out, stderr=self._out,
                             env={**os.environ, **(env or {})})
        child.close()
        self.conn = Connection(os.dup(parent.fileno()))
        parent.close()

    def _request(self, kind: str, target: str | None, args: Sequence[Any],
                 kwargs: dict[str, Any]) -> Any:
        try:
            self.conn.send((kind, target, tuple(args), kwargs))
            reply = self.conn.recv()
        except (EOFError, OSError) as e:
            raise AgentError(f"the agent died ({e}); its log:\n{self.log_tail()}") from None
        if reply[0] == "ok":
            return reply[1]
        exc = reply[1]
        exc.agent_traceback = reply[2]
        raise exc

    def open(self, *args: Any, **kwargs: Any) -> None:
        self._request("open", None, args, kwargs)

    def attr(self, name: str) -> Any:
        return self._request("attr", name, (), {})

    def call(self, target: str, *args: Any, **kwargs: Any) -> Any:
        return self._request("call", target, args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: self._request("method", name, args, kwargs)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill9(self) -> None:
        """Simulate a crash: SIGKILL, reaped here; whatever it started is left running."""
        self.proc.kill()
        self.proc.wait()
        self.conn.close()
        self._out.close()

    def shutdown(self) -> None:
        """Destroy every network, then exit; reaped here."""
        if self.proc.poll() is None:
            try:
                self._request("shutdown", None, (), {})
            finally:
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.conn.close()
        self._out.close()


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate()`` until it returns something true; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)
