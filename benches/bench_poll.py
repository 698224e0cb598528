"""Domain polling: virtkit._core.poll_processes against a pure-Python /proc reader.

Starts 20 QEMU-like processes (a main thread and three idle threads named
``CPU 0/KVM``, ``CPU 1/KVM``, ``IO iothread1``), then reads, for N = 1, 5, 10
and 20 of them, what the QEMU driver needs for every domain: process CPU time,
state, resident memory and start time; per thread id, name, CPU time, last CPU
and affinity. Both readers run in this one process, side by side; results are
time per domain, wall clock and the calling thread's CPU time, and the ratios
(pure-Python time / virtkit time; above 1 means virtkit is faster). The children are killed and reaped at the end.

Run with ``python benches/bench_poll.py`` after ``pip install .``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from virtkit import _core

sys.path.insert(0, str(Path(__file__).parent))
from _harness import measure  # noqa: E402

SIZES = (1, 5, 10, 20)
ROUNDS = 7
THREAD_NAMES = ("CPU 0/KVM", "CPU 1/KVM", "IO iothread1")

# A QEMU-like child: three idle named threads; prints "ready", then waits for stdin to close.
CHILD = r"""
import sys, threading, time
names = sys.argv[1:]
ready = threading.Semaphore(0)
def idle(name):
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as f:
        f.write(name)
    ready.release()
    while True:
        time.sleep(3600)
for name in names:
    threading.Thread(target=idle, args=(name,), daemon=True).start()
for _ in names:
    ready.acquire()
print("ready", flush=True)
sys.stdin.read()
"""

TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def read_proc(path: str) -> bytes:
    """A whole /proc stat file in one read (a seq_file hands out its record at once)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def python_poll(pids: list[int]) -> list[tuple[object, ...] | None]:
    """The same work in plain Python: stat of the process, then stat and affinity of each thread.

    As lean as Python gets: the same system calls as virtkit's reader (os.open/os.read
    rather than open(), which adds an fstat and a second read per file).
    """
    out: list[tuple[object, ...] | None] = []
    for pid in pids:
        try:
            line = read_proc(f"/proc/{pid}/stat")
            tids = os.listdir(f"/proc/{pid}/task")
        except (FileNotFoundError, ProcessLookupError):
            out.append(None)
            continue
        close = line.rindex(b")")
        fields = line[close + 2:].split()
        utime, stime = int(fields[11]) * TICK_NS, int(fields[12]) * TICK_NS
        threads = []
        for tid_text in tids:
            tid = int(tid_text)
            try:
                tline = read_proc(f"/proc/{pid}/task/{tid}/stat")
                affinity = sorted(os.sched_getaffinity(tid))
            except (FileNotFoundError, ProcessLookupError):
                continue
            tclose = tline.rindex(b")")
            tfields = tline[tclose + 2:].split()
            threads.append((
                tid,
                tline[tline.index(b"(") + 1:tclose].decode(errors="replace"),
                tfields[0].decode(),
                (int(tfields[11]) + int(tfields[12])) * TICK_NS,
                int(tfields[36]),
                affinity,
            ))
        out.append((
            pid,
            line[line.index(b"(") + 1:close].decode(errors="replace"),
            fields[0].decode(),
            utime + stime, utime, stime,
            int(fields[19]) * TICK_NS,
            int(fields[21]) * PAGE_KIB,
            tuple(threads),
        ))
    return out


class Timing:
    """Best wall time and best thread CPU time per call, over rounds."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.wall = self.cpu = float("inf")
        self.loops = 0

    def round(self) -> None:
        self.wall = min(self.wall, measure(self.fn, min_time=0.1, repeat=1))
        self.loops = self.loops or max(1, int(0.1 / self.wall))
        start = time.thread_time()
        for _ in range(self.loops):
            self.fn()
        self.cpu = min(self.cpu, (time.thread_time() - start) / self.loops)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:10.1f} us"


def check_same(pids: list[int]) -> None:
    """Both readers see the same threads with the same names and affinities."""
    ours = _core.poll_processes(pids)
    theirs = python_poll(pids)
    for a, b in zip(ours, theirs):
        assert isinstance(a, _core.ProcessStats) and b is not None, (a, b)
        assert (a.pid, a.name) == b[:2]
        threads = b[8]
        assert isinstance(threads, tuple)
        assert [(t.tid, t.name, t.affinity) for t in a.threads] == [
            (t[0], t[1], t[5]) for t in threads]


def main() -> int:
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, *THREAD_NAMES],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(max(SIZES))
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
        pids = [c.pid for c in children]
        check_same(pids)
        print(f"{len(pids)} QEMU-like processes, {1 + len(THREAD_NAMES)} threads each; "
              f"time per domain for one poll of N domains")
        print(f"(/proc reads are system calls: wall times follow the machine's load, "
              f"now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; CPU is the calling "
              f"thread's own time, user and system, which waits for no one)")
        print(f"  {'N':>3}  {'virtkit wall':>13}  {'Python wall':>12}  {'ratio':>5}   "
              f"{'virtkit CPU':>12}  {'Python CPU':>11}  {'ratio':>5}")
        summary = []
        for n in SIZES:
            batch = pids[:n]
            ours, theirs = Timing(lambda: _core.poll_processes(batch)), Timing(lambda: python_poll(batch))
            # Interleaved rounds, best of each: the load of a shared machine
            # moves between two measurements taken one after the other.
            for _ in range(ROUNDS):
                ours.round()
                theirs.round()
            print(f"  {n:>3}  {us(ours.wall / n)}  {us(theirs.wall / n):>12}  {theirs.wall / ours.wall:5.2f}   "
                  f"{us(ours.cpu / n):>12}  {us(theirs.cpu / n):>11}  {theirs.cpu / ours.cpu:5.2f}")
            summary.append(f"poll {n} domains: {ours.wall / n * 1e6:.1f} us/domain wall "
                           f"({theirs.wall / ours.wall:.2f}x pure Python), "
                           f"{ours.cpu / n * 1e6:.1f} us/domain CPU ({theirs.cpu / ours.cpu:.2f}x)")
        print("\nSummary (ratio = pure-Python time / virtkit time)")
        for line in summary:
            print("  " + line)
    finally:
        for child in children:
            child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
