"""Guests on virtual networks: virtkitd against Debian's libvirt 9.0 daemon, in one run.

    python3 benches/bench_net_guests.py          # VIRTKIT_BENCH_REPS (default 5) each

Both daemons serve the same NAT network with DHCP (192.168.200.0/24, its own
bridge, STP off, forward delay 0) and boot the same test guest (scripts/guest,
TCG, virtio NIC) on it, each in network namespaces of its own, so the host's
links, routes and firewall are never touched:

- virtkit: ``virtkitd --system --driver qemu`` run with ``ip netns exec`` in a
  fresh namespace (tests/drivers/qemu/netns.py), through the public API;
- libvirt: ``libvirtd`` 9.0 as root in its own mount and network namespaces
  with tmpfs over its directories (bench_qemu.py's set-up: every driver,
  network included), through libvirt-python.

Measured, the two daemons interleaved within each repetition:

1. guest start -> reachable: from the start call to the first ICMP echo reply
   from the guest's DHCP address, pinged every 20 ms from the daemon's own
   namespace (the host side of the bridge) by tests/drivers/qemu/probe.py,
   which also timestamps every DHCP message on the bridge; the guest's console
   gives the moment its ``/init`` was ready. Each repetition uses a new MAC, so
   every start is a guest's first lease (what a new guest gets). The breakdown:
   start call returned, guest ready (kernel boot), DHCP DISCOVER, OFFER, ACK,
   reachable.
2. ping round trip between two guests on the network (the guest's own
   ``ping -c 20 -i 0.2``; average of the averages over the repetitions).
3. net-start and net-destroy of the NAT network with DHCP through each daemon
   (``--cycles``, default 10, after one warm-up).

Ratios are libvirt / virtkit for times (above 1: virtkit faster). Needs root,
qemu-system-x86, dnsmasq, nftables (ours), iptables (libvirt 9.0's firewall),
libvirt-daemon, libvirt-daemon-driver-qemu and libvirt-python.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import libvirt  # noqa: E402

import virtkit  # noqa: E402
from bench_qemu import LibvirtDaemon, open_pty, progress  # noqa: E402
from tests.drivers.qemu.guests import guest_xml  # noqa: E402
from tests.drivers.qemu.netns import NET_CMDLINE, NetnsWorld  # noqa: E402
from tests.guest.console import READY_MARKER, Console, GuestImage, build_guest_image  # noqa: E402

REPS = int(os.environ.get("VIRTKIT_BENCH_REPS", "5"))
BRIDGE = "vkbnat0"
NETWORK_XML = f"""<network>
  <name>benchnat</name>
  <forward mode='nat'/>
  <bridge name='{BRIDGE}' stp='off' delay='0'/>
  <ip address='192.168.200.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.200.2' end='192.168.200.254'/>
    </dhcp>
  </ip>
</network>
"""
_RTT = re.compile(r"round-trip min/avg/max = ([\d.]+)/([\d.]+)/([\d.]+) ms")


def new_mac() -> str:
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


def domain_xml(name: str, image: GuestImage, mac: str) -> str:
    return guest_xml(name, image, cmdline=NET_CMDLINE, extra_devices=(
        f"<interface type='network'><mac address='{mac}'/><source network='benchnat'/>"
        "<model type='virtio'/></interface>"))


# ====================================================================== the two sides

class Side:
    """One daemon: how to enter its namespace, define/start/stop guests and networks."""

    name = ""
    #: Guest names start with it (bench_qemu's libvirt clean-up kills "lvb-" QEMUs).
    prefix = ""
    netns_cmd: list[str] = []

    def define_network(self) -> None: ...
    def net_start(self) -> None: ...
    def net_destroy(self) -> None: ...
    def start_guest(self, name: str, xml: str) -> str:
        """Define and start; return the console pty."""
        raise NotImplementedError
    def stop_guest(self, name: str) -> None: ...
    def close(self) -> None: ...


class Ours(Side):
    name = "virtkit"
    prefix = "vkb"

    def __init__(self) -> None:
        self.world = NetnsWorld("bn").start()
        self.netns_cmd = ["ip", "netns", "exec", self.world.daemon_ns.name]
        self.conn = virtkit.open(self.world.daemon.uri)
        # The system daemon's first start defined and started 'default': not part of this.
        for name in self.conn.list_networks():
            self.conn.lookup_network_by_name(name).destroy()
        for name in self.conn.list_defined_networks():
            self.conn.lookup_network_by_name(name).undefine()
        self.net: virtkit.Network | None = None

    def define_network(self) -> None:
        self.net = self.conn.define_network(NETWORK_XML)

    def net_start(self) -> None:
        assert self.net is not None
        self.net.start()

    def net_destroy(self) -> None:
        assert self.net is not None
        self.net.destroy()

    def start_guest(self, name: str, xml: str) -> str:
        dom = self.conn.define_domain(xml)
        dom.start()
        return dom.console_path()

    def stop_guest(self, name: str) -> None:
        dom = self.conn.lookup_domain_by_name(name)
        dom.destroy()
        dom.undefine()

    def close(self) -> None:
        self.conn.close()
        left = self.world.close()
        if left:
            print(f"  (virtkit side left behind: {left})", file=sys.stderr)


class Theirs(Side):
    name = "libvirt 9.0"
    prefix = "lvb"

    def __init__(self) -> None:
        self.daemon = LibvirtDaemon().start()
        assert self.daemon.proc is not None
        self.netns_cmd = ["nsenter", f"--net=/proc/{self.daemon.proc.pid}/ns/net"]
        self.conn = libvirt.open(self.daemon.uri)
        self.net: Any = None

    def define_network(self) -> None:
        self.net = self.conn.networkDefineXML(NETWORK_XML)

    def net_start(self) -> None:
        self.net.create()

    def net_destroy(self) -> None:
        self.net.destroy()

    def start_guest(self, name: str, xml: str) -> str:
        dom = self.conn.defineXML(xml)
        dom.create()
        pty = re.search(r"<console type='pty' tty='([^']+)'", dom.XMLDesc())
        assert pty is not None
        return pty[1]

    def stop_guest(self, name: str) -> None:
        dom = self.conn.lookupByName(name)
        dom.destroy()
        dom.undefine()

    def close(self) -> None:
        try:
            if self.net is not None:
                if self.net.isActive():
                    self.net.destroy()
                self.net.undefine()
        finally:
            self.conn.close()
            self.daemon.stop()


# ====================================================================== measurements

def start_to_reachable(side: Side, image: GuestImage, name: str, mac: str) -> dict[str, float]:
    """One start of a guest with a new MAC; the moments of each step, from the call."""
    probe = subprocess.Popen(
        [*side.netns_cmd, sys.executable, "-m", "tests.drivers.qemu.probe", "--bridge", BRIDGE,
         "--ping", "auto", "--timeout", "90"], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert probe.stdout is not None
    try:
        first = json.loads(probe.stdout.readline())
        assert first["event"] == "ready", first
        t0 = time.monotonic()
        pty = side.start_guest(name, domain_xml(name, image, mac))
        marks: dict[str, float] = {"start call": time.monotonic() - t0}
        console = open_pty(pty, t0)
        try:
            while "reachable" not in marks:
                console.pump(0.005)
                ready, _, _ = select.select([probe.stdout], [], [], 0.005)
                if not ready:
                    continue
                line = probe.stdout.readline()
                if not line:
                    raise RuntimeError(f"{side.name}: the probe ended\n{console.transcript()}")
                ev = json.loads(line)
                t = ev["t"] - t0
                if ev["event"] == "dhcp" and ev.get("mac") == mac:
                    marks.setdefault(f"DHCP {ev['type']}", t)
                elif ev["event"] == "reply":
                    marks["reachable"] = t
                elif ev["event"] == "timeout":
                    raise RuntimeError(f"{side.name}: not reachable\n{console.transcript()}")
            console.pump(0.05)
            ready_line = next((ln for ln in console.lines if READY_MARKER in ln.text), None)
            if ready_line is not None:
                marks["guest ready"] = ready_line.time
        finally:
            os.close(console._rfd)
        return marks
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait()
        probe.stdout.close()
        side.stop_guest(name)


def guest_rtt(side: Side, image: GuestImage, prefix: str) -> float:
    """Average RTT (ms) of 20 pings from one guest to another on the network."""
    names = [f"{prefix}-a", f"{prefix}-b"]
    consoles: list[Console] = []
    try:
        for name in names:
            consoles.append(open_pty(side.start_guest(name, domain_xml(name, image, new_mac())),
                                     time.monotonic()))
        leases = []
        for c in consoles:
            m = c.expect(r"VIRTKIT-LEASE ip=(\S+)", 120, from_start=True)
            leases.append(m[1])
        consoles[0].wait_for_shell(60)
        _, out = consoles[0].run(f"ping -c 20 -i 0.2 {leases[1]}", timeout=60)
        m = next((_RTT.search(line) for line in out if _RTT.search(line)), None)
        if m is None:
            raise RuntimeError(f"{side.name}: no ping summary: {out}")
        return float(m[2])
    finally:
        for c in consoles:
            os.close(c._rfd)
        for name in names:
            try:
                side.stop_guest(name)
            except (virtkit.VirtError, libvirt.libvirtError):
                pass


def net_cycles(side: Side, cycles: int) -> tuple[list[float], list[float]]:
    starts, destroys = [], []
    for i in range(cycles + 1):
        t0 = time.perf_counter()
        side.net_start()
        t1 = time.perf_counter()
        side.net_destroy()
        t2 = time.perf_counter()
        if i:
            starts.append(t1 - t0)
            destroys.append(t2 - t1)
    return starts, destroys


# ====================================================================== report

def ms(x: float) -> str:
    return f"{x * 1000:8.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=10)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("  (skipped: networks in namespaces need root)")
        return 0
    missing = [p for p in ("ip", "nft", "dnsmasq", "iptables", "nsenter", "unshare",
                           "qemu-system-x86_64") if shutil.which(p) is None]
    if missing:
        print(f"  (skipped: missing {', '.join(missing)})")
        return 0
    image = build_guest_image()
    ours = Ours()
    theirs: Theirs | None = None
    try:
        theirs = Theirs()
        sides: list[Side] = [ours, theirs]
        for side in sides:
            side.define_network()
        progress("net-start / net-destroy through each daemon")
        net = {side.name: net_cycles(side, args.cycles) for side in sides}
        for side in sides:
            side.net_start()
        progress("warming up (libvirt probes QEMU on first use)")
        for side in sides:
            start_to_reachable(side, image, f"{side.prefix}-warm", new_mac())
        reach: dict[str, list[dict[str, float]]] = {side.name: [] for side in sides}
        for rep in range(REPS):
            mac = new_mac()
            for side in sides:
                progress(f"start -> reachable, {side.name}, {rep + 1}/{REPS}")
                reach[side.name].append(
                    start_to_reachable(side, image, f"{side.prefix}-r{rep}", mac))
        rtt: dict[str, list[float]] = {side.name: [] for side in sides}
        for rep in range(max(1, REPS // 2)):
            for side in sides:
                progress(f"guest-to-guest ping, {side.name}, {rep + 1}")
                rtt[side.name].append(guest_rtt(side, image, f"{side.prefix}-p{rep}"))
        for side in sides:
            side.net_destroy()
    finally:
        for s in (theirs, ours):
            if s is not None:
                s.close()

    print(f"Guests on a NAT network with DHCP (TCG test guest, {REPS} starts each, "
          "medians; every start a new MAC, so a first lease):")
    steps = ["start call", "guest ready", "DHCP DISCOVER", "DHCP OFFER", "DHCP ACK", "reachable"]
    print(f"  {'':<14}" + "".join(f"{s:>15}" for s in steps))
    med: dict[str, dict[str, float]] = {}
    for who, runs in reach.items():
        med[who] = {s: statistics.median(r[s] for r in runs if s in r)
                    for s in steps if any(s in r for r in runs)}
        print(f"  {who:<14}" + "".join(f"{med[who].get(s, float('nan')):14.2f}s" for s in steps))
    v, lv = med["virtkit"], med["libvirt 9.0"]
    print(f"  start -> reachable: virtkit {v['reachable']:.2f} s, libvirt {lv['reachable']:.2f} s, "
          f"ratio {lv['reachable'] / v['reachable']:.2f}x (target: virtkit <= 3 s)")
    for who, m in med.items():
        if {"guest ready", "DHCP DISCOVER", "DHCP OFFER", "reachable"} <= m.keys():
            print(f"  {who}: after the guest's DHCP DISCOVER: OFFER +{m['DHCP OFFER'] - m['DHCP DISCOVER']:.2f} s, "
                  f"reachable +{m['reachable'] - m['DHCP DISCOVER']:.2f} s; not the guest's boot "
                  f"(start call + guest ready -> reachable): "
                  f"{m['reachable'] - m['guest ready'] + m['start call']:.2f} s")
    print("Ping round trip between two guests (guest's own ping, average of averages):")
    rv, rl = statistics.mean(rtt["virtkit"]), statistics.mean(rtt["libvirt 9.0"])
    print(f"  virtkit {rv:.3f} ms, libvirt {rl:.3f} ms, ratio {rl / rv:.2f}x")
    print(f"net-start / net-destroy through the daemons ({args.cycles} cycles, median):")
    for who, (s, d) in net.items():
        print(f"  {who:<14} net-start {ms(statistics.median(s))}   net-destroy {ms(statistics.median(d))}")
    (vs, vd), (ls, ld) = net["virtkit"], net["libvirt 9.0"]
    print(f"  ratios virtkit/libvirt: net-start {statistics.median(vs) / statistics.median(ls):.2f}x "
          f"(target <= 1), net-destroy {statistics.median(vd) / statistics.median(ld):.2f}x "
          "(target <= 0.3)")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
