"""net-start and net-destroy of a NAT network with DHCP: virtkit.net against libvirt 9's daemon.

    python3 benches/bench_net.py              # 15 cycles each (~15 s)
    python3 benches/bench_net.py --cycles 40

Both sides start and stop the same network (NAT, its own bridge, STP off,
192.168.100.0/24 with a DHCP range: a bridge, a firewall, forwarding and a
dnsmasq each time), each in a network namespace of its own, so the host's
links, routes and firewall are never touched:

- ours: :class:`virtkit.net.manager.NetworkManager`, in a process run with
  ``ip netns exec`` inside a fresh namespace; start and destroy are timed
  around ``network_start`` / ``network_destroy`` (in-process: no daemon round
  trip, which costs ~0.1 ms over virtkitd). The manager's per-step timings
  (``last_timings``) say where the time goes.
- libvirt: Debian's ``libvirtd`` (9.0) as root in its own mount and network
  namespace (``unshare -mn``): tmpfs over /run and /var/lib, its own copy of
  /etc/libvirt, only the network driver module, sockets in a temp dir.
  libvirt-python (``network+unix:///system?socket=...``) times
  ``virNetworkCreate`` and ``virNetworkDestroy`` of the defined network.

One warm-up cycle each, then ``--cycles`` cycles; medians and minima are
reported, and ratios ours / libvirt (the targets: start <= 1x, destroy <= 0.3x).
``benches/run`` installs libvirt-daemon and iptables (libvirt 9.0's firewall
backend) for this; without them, ours is measured alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LIBVIRTD = "/usr/sbin/libvirtd"
DRIVER_DIR = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver"
NETWORK_XML = """<network>
  <name>benchnat</name>
  <forward mode='nat'/>
  <bridge name='vkbench0' stp='off' delay='0'/>
  <ip address='192.168.100.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.100.2' end='192.168.100.254'/>
    </dhcp>
  </ip>
</network>
"""


# --- ours: runs inside the namespace (``--inner``) --------------------------------------------

def inner(cycles: int, workdir: str) -> None:
    from virtkit.net.manager import NetworkManager
    from virtkit.xml.network import parse_network

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    mgr = NetworkManager.open(Path(workdir) / "etc", Path(workdir) / "state")
    ref = mgr.define_network(parse_network(NETWORK_XML))
    starts: list[float] = []
    destroys: list[float] = []
    steps_start: dict[str, list[float]] = {}
    steps_destroy: dict[str, list[float]] = {}
    try:
        for i in range(cycles + 1):
            t0 = time.perf_counter()
            mgr.network_start(ref)
            t1 = time.perf_counter()
            s_steps = dict(mgr.last_timings)
            mgr.network_destroy(ref)
            t2 = time.perf_counter()
            if i == 0:
                continue  # warm-up: first imports, first netlink sessions
            starts.append(t1 - t0)
            destroys.append(t2 - t1)
            for k, v in s_steps.items():
                steps_start.setdefault(k, []).append(v)
            for k, v in mgr.last_timings.items():
                steps_destroy.setdefault(k, []).append(v)
    finally:
        mgr.close(stop_networks=True)
    json.dump({"start": starts, "destroy": destroys,
               "steps_start": {k: statistics.median(v) for k, v in steps_start.items()},
               "steps_destroy": {k: statistics.median(v) for k, v in steps_destroy.items()}},
              sys.stdout)


def ours(cycles: int) -> dict[str, object]:
    ns = f"vkbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with tempfile.TemporaryDirectory(prefix="vkbench-") as d:
            out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, "--inner",
                                  "--cycles", str(cycles), "--workdir", d],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise RuntimeError(f"our benchmark failed:\n{out.stderr}")
            return json.loads(out.stdout)  # type: ignore[no-any-return]
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


# --- libvirt ----------------------------------------------------------------------------------

def libvirt_unavailable() -> str | None:
    if not os.path.exists(LIBVIRTD):
        return f"{LIBVIRTD} is not installed (Debian's libvirt-daemon)"
    if not os.path.exists(f"{DRIVER_DIR}/libvirt_driver_network.so"):
        return "libvirt's network driver is not installed"
    if os.geteuid() != 0:
        return "libvirtd's network driver needs root"
    if shutil.which("iptables") is None:
        return "iptables is missing (libvirt 9.0's firewall backend)"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not installed (benches/requirements.txt)"
    return None


@contextmanager
def libvirtd(base: Path) -> Iterator[Path]:
    """A private libvirtd with only the network driver, in its own mount and network ns."""
    etc = base / "etc"
    etc.mkdir()
    for f in ("libvirt.conf",):
        if os.path.exists(f"/etc/libvirt/{f}"):
            shutil.copy(f"/etc/libvirt/{f}", etc / f)
    (base / "sock").mkdir()
    drivers = base / "drivers"
    drivers.mkdir()
    (etc / "libvirtd.conf").write_text(
        f'unix_sock_dir = "{base / "sock"}"\nunix_sock_rw_perms = "0700"\n'
        'auth_unix_rw = "none"\nauth_unix_ro = "none"\n')
    script = (
        "set -e\n"
        "ip link set lo up\n"
        "mount -t tmpfs tmpfs /run\n"
        "mount -t tmpfs tmpfs /var/lib\n"
        f"mount --bind {etc} /etc/libvirt\n"
        f"touch {drivers}/libvirt_driver_network.so\n"
        f"mount --bind {DRIVER_DIR}/libvirt_driver_network.so {drivers}/libvirt_driver_network.so\n"
        f"mount --rbind {drivers} {DRIVER_DIR}\n"
        f"exec {LIBVIRTD} -f {etc / 'libvirtd.conf'}\n")
    log = base / "libvirtd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(["unshare", "-mn", "--propagation", "private", "sh", "-c", script],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    sock = base / "sock" / "libvirt-sock"
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"libvirtd did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        time.sleep(0.2)
        yield sock
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def theirs(cycles: int) -> dict[str, object]:
    import libvirt

    with tempfile.TemporaryDirectory(prefix="vkbench-lv-") as d, libvirtd(Path(d)) as sock:
        conn = libvirt.open(f"network+unix:///system?socket={sock}")
        try:
            net = conn.networkDefineXML(NETWORK_XML)
            starts: list[float] = []
            destroys: list[float] = []
            try:
                for i in range(cycles + 1):
                    t0 = time.perf_counter()
                    net.create()
                    t1 = time.perf_counter()
                    net.destroy()
                    t2 = time.perf_counter()
                    if i:
                        starts.append(t1 - t0)
                        destroys.append(t2 - t1)
            finally:
                if net.isActive():
                    net.destroy()
                net.undefine()
            return {"start": starts, "destroy": destroys}
        finally:
            conn.close()


# --- report -------------------------------------------------------------------------------------

def _ms(x: float) -> str:
    return f"{x * 1000:7.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cycles", type=int, default=15)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        inner(args.cycles, args.workdir)
        return 0
    if os.geteuid() != 0:
        print("  (skipped: networks in namespaces need root)")
        return 0
    missing = [p for p in ("ip", "nft", "dnsmasq") if shutil.which(p) is None]
    if missing:
        print(f"  (skipped: missing {', '.join(missing)})")
        return 0
    mine = ours(args.cycles)
    why_not = libvirt_unavailable()
    lv = None
    if why_not is None:
        try:
            lv = theirs(args.cycles)
        except Exception as exc:  # noqa: BLE001 - report and go on with ours alone
            why_not = f"libvirtd failed: {exc}"
    print(f"NAT network with DHCP, {args.cycles} cycles each (median / min):")
    rows = [("virtkit.net (in a netns)", mine)] + ([("libvirtd 9.0 (in a netns)", lv)] if lv else [])
    for name, r in rows:
        s, d = r["start"], r["destroy"]  # type: ignore[index]
        print(f"  {name:<28} net-start {_ms(statistics.median(s))} / {_ms(min(s))}   "
              f"net-destroy {_ms(statistics.median(d))} / {_ms(min(d))}")
    if lv is None:
        print(f"  (no libvirt comparison: {why_not})")
    else:
        rs = statistics.median(mine["start"]) / statistics.median(lv["start"])  # type: ignore[arg-type]
        rd = statistics.median(mine["destroy"]) / statistics.median(lv["destroy"])  # type: ignore[arg-type]
        print(f"Ratios (virtkit time / libvirt time, medians): net-start {rs:.2f}x (target <= 1), "
              f"net-destroy {rd:.2f}x (target <= 0.3)")
    for kind in ("start", "destroy"):
        steps = mine[f"steps_{kind}"]
        print(f"  where our net-{kind} goes (medians): "
              + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in steps.items()))  # type: ignore[union-attr]
    return 0


if __name__ == "__main__":
    sys.exit(main())
