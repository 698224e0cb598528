"""Round trips through a daemon: virtkitd (test backend) against Debian's libvirtd (test driver).

    python3 benches/bench_daemon.py                 # ~1 min
    python3 benches/bench_daemon.py --quick
    python3 benches/bench_daemon.py --profile DIR   # cProfile of virtkitd and one client

Each client process opens ``test+unix:///default?socket=...``, looks up the
domain ``test`` and calls ``info()`` back to back for a fixed time; the rate
is the total number of calls over the wall time, with 1 and 4 client
processes. Clients are virtkit (its remote driver) and, when installed,
libvirt-python; servers are a private virtkitd and, when ``libvirtd`` exists
and we are root, a private libvirtd. libvirtd runs in its own mount and
network namespace (``unshare -mn``) with tmpfs over /run and /var/lib, its
own copy of /etc/libvirt, no state-driver modules (the test driver is built
into libvirt.so) and its sockets in a temp dir: it touches nothing of the
host. Before timing, virtkit's client runs list/dominfo/domstate/dumpxml/
define/start/destroy/undefine against libvirtd, to show it speaks to a real
libvirt daemon.

``benches/run`` installs libvirt-daemon for this. Ratios are ours / theirs
(above 1: virtkitd answers faster).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import virtkit
from virtkit.daemon.launcher import socket_accepts

LIBVIRTD = "/usr/sbin/libvirtd"
DRIVER_DIR = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver"


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while not socket_accepts(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextmanager
def virtkitd(base: Path, profile: Path | None = None, cpus: set[int] | None = None,
             threaded: bool = False) -> Iterator[Path]:
    """A private virtkitd (test backend); yields its read-write socket. ``threaded``
    empties the backend's fast_operations: every call goes through the thread pool."""
    args = ["--session", "--driver", "test", "--socket-dir", str(base / "run"),
            "--state-dir", str(base / "state"), "--config-dir", str(base / "config")]
    if threaded:
        command = [sys.executable, "-c",
                   "import sys; from virtkit.daemon import backends, main; "
                   "backends.TestBackend.fast_operations = frozenset(); "
                   "sys.exit(main.main(sys.argv[1:]))", *args]
    elif profile is None:
        command = [sys.executable, "-m", "virtkit.daemon", *args]
    else:
        command = [sys.executable, "-c",
                   "import cProfile, sys; from virtkit.daemon.main import main; "
                   "cProfile.run('main(sys.argv[2:])', sys.argv[1])", str(profile), *args]
    log = base / "virtkitd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                preexec_fn=_pin(cpus))
    try:
        _wait_socket(base / "run" / "virtkit-sock", proc, log, "virtkitd")
        yield base / "run" / "virtkit-sock"
    finally:
        _stop(proc)


def libvirtd_available() -> str | None:
    """Why libvirtd cannot run here, or None when it can."""
    if not os.path.exists(LIBVIRTD):
        return f"{LIBVIRTD} is not installed (Debian's libvirt-daemon)"
    if os.geteuid() != 0:
        return "libvirtd in a private namespace needs root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    return None


@contextmanager
def libvirtd(base: Path, cpus: set[int] | None = None) -> Iterator[Path]:
    """A private libvirtd in its own mount and network namespace; yields its socket."""
    etc = base / "etc"
    shutil.copytree("/etc/libvirt", etc, symlinks=True)
    (base / "sock").mkdir()
    (base / "nodrivers").mkdir()
    (etc / "libvirtd.conf").write_text(
        f'unix_sock_dir = "{base / "sock"}"\nunix_sock_rw_perms = "0700"\n'
        'auth_unix_rw = "none"\nauth_unix_ro = "none"\nmax_workers = 20\n'
        'max_clients = 64\n')
    script = (
        "set -e\n"
        "mount -t tmpfs tmpfs /run\n"
        "mount -t tmpfs tmpfs /var/lib\n"
        f"mount --bind {etc} /etc/libvirt\n"
        f"[ -d {DRIVER_DIR} ] && mount --bind {base / 'nodrivers'} {DRIVER_DIR}\n"
        f"exec {LIBVIRTD} -f {etc / 'libvirtd.conf'}\n")
    log = base / "libvirtd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(["unshare", "-mn", "--propagation", "private", "sh", "-c",
                                 script], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                preexec_fn=_pin(cpus))
    try:
        _wait_socket(base / "sock" / "libvirt-sock", proc, log, "libvirtd")
        yield base / "sock" / "libvirt-sock"
    finally:
        _stop(proc)


# --- clients --------------------------------------------------------------------------------

def _virtkit_client(uri: str) -> Callable[[], object]:
    conn = virtkit.open(uri)
    return conn.lookup_domain_by_name("test").info


def _libvirt_client(uri: str) -> Callable[[], object]:
    import libvirt

    conn = libvirt.open(uri)
    return conn.lookupByName("test").info  # type: ignore[no-any-return]


CLIENTS: dict[str, Callable[[str], Callable[[], object]]] = {
    "virtkit": _virtkit_client,
    "libvirt-python": _libvirt_client,
}


def _client_proc(kind: str, uri: str, seconds: float, start: Any, results: Any,
                 profile: str | None, cpus: set[int] | None) -> None:
    try:
        _client_loop(kind, uri, seconds, start, results, profile, cpus)
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        results.put((0, 0.0, f"{type(exc).__name__}: {exc}"))
        results.close()
        results.join_thread()


def _client_loop(kind: str, uri: str, seconds: float, start: Any, results: Any,
                 profile: str | None, cpus: set[int] | None) -> None:
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    info = CLIENTS[kind](uri)
    for _ in range(200):
        info()
    start.wait()
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    calls = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(100):
            info()
        calls += 100
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)  # type: ignore[arg-type]
    results.put((calls, elapsed, None))


def round_trips(kind: str, uri: str, clients: int, seconds: float,
                profile: str | None = None, cpus: set[int] | None = None) -> float:
    """Total info() calls per second of ``clients`` processes of ``kind`` against ``uri``."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    results = ctx.Queue()
    procs = [ctx.Process(target=_client_proc,
                         args=(kind, uri, seconds, start, results,
                               profile if i == 0 else None, cpus))
             for i in range(clients)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # every client connected and warmed up
    t0 = time.perf_counter()
    start.set()
    done = [results.get(timeout=seconds + 60) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    failed = [err for _, _, err in done if err]
    if failed:
        raise RuntimeError(f"{kind} client failed against {uri}: {failed[0]}")
    return sum(n for n, _, _ in done) / max(wall, max(e for _, e, _ in done))


# --- virtkit's client against libvirtd ------------------------------------------------------

def demo_against_libvirtd(uri: str) -> None:
    """The virsh commands of the issue, done by virtkit's remote driver against libvirtd."""
    xml = ("<domain type='test'><name>vk-demo</name><memory>131072</memory><vcpu>1</vcpu>"
           "<os><type>hvm</type></os></domain>")
    with virtkit.open(uri) as conn:
        listed = [(d.id, d.name, d.state().label) for d in conn.list_all_domains()]
        print(f"  list --all       {listed}")
        dom = conn.lookup_domain_by_name("test")
        info = dom.info()
        print(f"  dominfo test     state={info.state.label} max={info.max_memory} KiB "
              f"used={info.memory} KiB cpus={info.nr_virt_cpu} persistent={dom.is_persistent()}")
        print(f"  domstate test    {dom.state().label}")
        print(f"  dumpxml test     {len(dom.xml_desc())} bytes, "
              f"uuid {dom.uuid_string}")
        new = conn.define_domain(xml)
        print(f"  define           {new.name} id={new.id} {new.state().label}")
        new.start()
        print(f"  start            id={new.id} {new.state().label}")
        new.destroy()
        print(f"  destroy          {new.state().label}")
        new.undefine()
        try:
            conn.lookup_domain_by_name("vk-demo")
            print("  undefine         STILL THERE")
        except virtkit.NoDomainError:
            print("  undefine         gone")


Rates = dict[tuple[str, str, int], float]


def run_matrix(base: Path, kinds: list[str], seconds: float, cpus: set[int] | None,
               profile: Path | None, demo: bool) -> Rates:
    """Every client kind x server x (1, 4) client processes, daemons started afresh."""
    why_not = libvirtd_available()
    rates: Rates = {}
    servers: dict[str, str] = {}
    with virtkitd(base / "vk", profile / "virtkitd.prof" if profile else None, cpus) as vk_sock:
        servers["virtkitd"] = f"test+unix:///default?socket={vk_sock}"
        lv_cm = libvirtd(base / "lv", cpus) if why_not is None else _nothing()
        if why_not is not None:
            print(f"  (no libvirtd: {why_not})")
        with lv_cm as lv_sock:
            if lv_sock is not None:
                servers["libvirtd"] = f"test+unix:///default?socket={lv_sock}"
                if demo:
                    print("virtkit's remote driver against libvirtd 9 (test driver):")
                    demo_against_libvirtd(servers["libvirtd"])
            for clients in (1, 4):
                for server, uri in servers.items():
                    for kind in kinds:
                        prof = (str(profile / "client.prof") if profile and clients == 1
                                and server == "virtkitd" and kind == "virtkit" else None)
                        rate = round_trips(kind, uri, clients, seconds, prof, cpus)
                        rates[(server, kind, clients)] = rate
                        print(f"  {server:9s} <- {kind:14s} x{clients}: {rate:9,.0f} calls/s")
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s per measurement")
    parser.add_argument("--profile", metavar="DIR",
                        help="write cProfile stats of virtkitd and of one virtkit client")
    opts = parser.parse_args(argv)
    seconds = 1.0 if opts.quick else 4.0
    try:
        import libvirt  # noqa: F401
        kinds = ["virtkit", "libvirt-python"]
    except ImportError:
        kinds = ["virtkit"]
    profile = Path(opts.profile).absolute() if opts.profile else None
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; domain info() round trips "
          f"per second, {seconds:g} s each")
    placements: list[tuple[str, set[int] | None]] = [("free placement", None)]
    if (os.cpu_count() or 1) > 1:
        # On one CPU a round trip is two context switches instead of two cross-CPU
        # wake-ups: what is left is the work each side does.
        placements.append(("everything on CPU 0", {0}))
    summary = []
    for n, (label, cpus) in enumerate(placements):
        print(f"{label}:")
        with tempfile.TemporaryDirectory(prefix="vkbd-") as tmp:
            base = Path(tmp)
            (base / "vk").mkdir()
            (base / "lv").mkdir()
            rates = run_matrix(base, kinds, seconds, cpus, profile if n == 0 else None,
                               demo=n == 0)
        for kind in kinds:
            for clients in (1, 4):
                ours = rates.get(("virtkitd", kind, clients))
                theirs = rates.get(("libvirtd", kind, clients))
                if ours and theirs:
                    summary.append(f"  {label}, {kind} client x{clients}: "
                                   f"virtkitd/libvirtd {ours / theirs:5.2f}x")
    print("virtkitd with every operation in its thread pool (no inline fast path):")
    with tempfile.TemporaryDirectory(prefix="vkbd-") as tmp:
        with virtkitd(Path(tmp), threaded=True) as sock:
            uri = f"test+unix:///default?socket={sock}"
            for clients in (1, 4):
                rate = round_trips("virtkit", uri, clients, seconds)
                print(f"  virtkitd  <- virtkit        x{clients}: {rate:9,.0f} calls/s")
    if summary:
        print("Ratios (virtkitd's rate / libvirtd's, same clients):")
        print("\n".join(summary))
    if profile:
        print(f"profiles: {profile}/virtkitd.prof, {profile}/client.prof (python -m pstats FILE)")
    return 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    sys.exit(main())
