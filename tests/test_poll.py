"""virtkit._core.poll_processes and the thread affinity calls, against real processes.

The children are small Python programs shaped like QEMU: a main thread and
threads named like vCPU threads (``CPU 0/TCG``), some spinning, some idle.
Every child is killed and reaped by the fixture that started it.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from virtkit import _core
from virtkit.errors import InvalidArgumentError, VirtError, VirtSystemError

# A QEMU-like child: named threads (spinning or sleeping) and optionally some
# touched memory; prints {"name": tid, ...} once ready, then waits for stdin to close.
CHILD = r"""
import json, sys, threading, time

spec = json.loads(sys.argv[1])
tids = {}
lock = threading.Lock()
ready = threading.Semaphore(0)
ballast = bytearray(spec["alloc_mib"] << 20)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1

def run(name, busy):
    tid = threading.get_native_id()
    with open(f"/proc/self/task/{tid}/comm", "w") as f:
        f.write(name)
    with lock:
        tids[name] = tid
    ready.release()
    if busy:
        while True:
            pass
    while True:
        time.sleep(1)

for name, busy in spec["threads"]:
    threading.Thread(target=run, args=(name, busy), daemon=True).start()
for _ in spec["threads"]:
    ready.acquire()
print(json.dumps(tids), flush=True)
sys.stdin.read()
"""


@dataclass
class Child:
    proc: subprocess.Popen[str]
    tids: dict[str, int]

    @property
    def pid(self) -> int:
        return self.proc.pid


Spawn = Callable[..., Child]


def _reap(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start QEMU-like children; kill and reap them all at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(threads: list[tuple[str, bool]] | None = None, alloc_mib: int = 0) -> Child:
        if threads is None:
            threads = [("CPU 0/TCG", False), ("CPU 1/TCG", False), ("worker", False)]
        spec = json.dumps({"threads": threads, "alloc_mib": alloc_mib})
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, spec],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "the child died before it was ready"
        return Child(proc, json.loads(line))

    yield start
    for proc in started:
        _reap(proc)


def one(pid: int) -> _core.ProcessStats:
    [stats] = _core.poll_processes([pid])
    assert isinstance(stats, _core.ProcessStats), stats
    return stats


def online_cpus() -> list[int]:
    cpus: list[int] = []
    for item in Path("/sys/devices/system/cpu/online").read_text().strip().split(","):
        lo, _, hi = item.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def unused_pid() -> int:
    # The kernel allocates pids below pid_max.
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def test_polls_this_process() -> None:
    stats = one(os.getpid())
    assert stats.pid == os.getpid()
    assert stats.name == Path("/proc/self/comm").read_text().rstrip("\n")
    assert len(stats.state) == 1 and stats.state.isalpha()
    assert stats.cpu_time_ns == stats.user_time_ns + stats.system_time_ns > 0
    assert stats.start_time_ns > 0
    assert stats.start_time_ns == one(os.getpid()).start_time_ns
    main = stats.threads[0]
    assert main.tid == os.getpid(), "the main thread comes first"
    me = threading.get_native_id()
    assert any(t.tid == me and t.state == "R" for t in stats.threads), "the polling thread runs"
    assert {t.tid for t in stats.threads} == {int(t) for t in os.listdir("/proc/self/task")}
    cpus = online_cpus()
    for thread in stats.threads:
        assert thread.processor in cpus
        assert thread.affinity == sorted(os.sched_getaffinity(thread.tid))
    assert "ProcessStats(pid=" in repr(stats) and "ThreadStats(tid=" in repr(main)


def test_stats_are_frozen_snapshots() -> None:
    stats = one(os.getpid())
    with pytest.raises(AttributeError):
        stats.pid = 1  # type: ignore[misc]
    with pytest.raises(AttributeError):
        stats.threads[0].name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        _core.ProcessStats()
    assert stats.threads is stats.threads, "one tuple, built once"


def test_rss_is_plausible_against_vmrss(spawn: Spawn) -> None:
    child = spawn(alloc_mib=64)
    stats = one(child.pid)
    reference = vm_rss_kib(child.pid)
    assert stats.rss_kib >= 64 * 1024
    # The same kernel counters, read a moment apart.
    assert abs(stats.rss_kib - reference) <= reference // 10 + 1024, (stats.rss_kib, reference)


def test_thread_names_and_a_busy_threads_cpu_time(spawn: Spawn) -> None:
    child = spawn([("CPU 0/TCG", True), ("CPU 1/TCG", False), ("a) b (c", False)])
    before = one(child.pid)
    by_name = {t.name: t for t in before.threads}
    assert set(by_name) >= {"CPU 0/TCG", "CPU 1/TCG", "a) b (c"}
    assert len(before.threads) == 4
    for name, tid in child.tids.items():
        assert by_name[name].tid == tid

    busy_tid = child.tids["CPU 0/TCG"]
    deadline = time.monotonic() + 10
    after = before
    while time.monotonic() < deadline:
        time.sleep(0.1)
        after = one(child.pid)
        busy = {t.tid: t for t in after.threads}[busy_tid]
        if busy.cpu_time_ns >= by_name["CPU 0/TCG"].cpu_time_ns + 100_000_000:
            break
    else:
        pytest.fail("the spinning thread's CPU time did not grow")
    assert busy.state in "RS"
    assert after.cpu_time_ns > before.cpu_time_ns
    assert after.start_time_ns == before.start_time_ns
    idle = {t.tid: t for t in after.threads}[child.tids["CPU 1/TCG"]]
    assert idle.state == "S"
    assert idle.cpu_time_ns < 50_000_000


def test_gone_processes_are_none(spawn: Spawn) -> None:
    child = spawn()
    child.proc.kill()
    deadline = time.monotonic() + 10
    while one(child.pid).state != "Z":  # killed, not yet reaped: a zombie
        assert time.monotonic() < deadline
        time.sleep(0.01)
    zombie = one(child.pid)
    assert zombie.rss_kib == 0
    child.proc.wait()
    assert _core.poll_processes([child.pid]) == [None]
    assert _core.poll_processes([unused_pid()]) == [None]


def test_a_batch_keeps_its_order(spawn: Spawn) -> None:
    a, b = spawn(), spawn()
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        # A vfork-based spawn returns before the kernel renames the child.
        deadline = time.monotonic() + 10
        while Path(f"/proc/{sleeper.pid}/comm").read_text() != "sleep\n":
            assert time.monotonic() < deadline
            time.sleep(0.001)
        pids = [a.pid, unused_pid(), os.getpid(), b.pid, sleeper.pid, a.pid]
        result = _core.poll_processes(pids)
        assert [None if r is None else r.pid for r in result] == [  # type: ignore[union-attr]
            a.pid, None, os.getpid(), b.pid, sleeper.pid, a.pid]
        assert all(not isinstance(r, VirtError) for r in result)
        assert len(result[0].threads) == 4  # type: ignore[union-attr]
        assert result[4].name == "sleep"  # type: ignore[union-attr]
        assert _core.poll_processes([]) == []
        assert len(_core.poll_processes(iter(pids))) == len(pids)
    finally:
        _reap(sleeper)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, 2**31, 2**80])
def test_bad_ids_are_refused_for_the_whole_batch(bad: int) -> None:
    with pytest.raises(InvalidArgumentError):
        _core.poll_processes([os.getpid(), bad])
    with pytest.raises(InvalidArgumentError):
        _core.get_thread_affinity(bad)
    with pytest.raises(InvalidArgumentError):
        _core.set_thread_affinity(bad, [0])


def test_non_ints_are_type_errors() -> None:
    with pytest.raises(TypeError):
        _core.poll_processes(["1"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _core.poll_processes(1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.set_thread_affinity(os.getpid(), ["0"])  # type: ignore[list-item]


def test_pin_a_vcpu_thread_and_read_it_back(spawn: Spawn) -> None:
    cpus = online_cpus()
    child = spawn()
    tid = child.tids["CPU 1/TCG"]
    assert _core.get_thread_affinity(tid) == sorted(os.sched_getaffinity(tid))
    _core.set_thread_affinity(tid, [cpus[0]])
    assert _core.get_thread_affinity(tid) == [cpus[0]]
    assert os.sched_getaffinity(tid) == {cpus[0]}
    polled = {t.tid: t for t in one(child.pid).threads}
    assert polled[tid].affinity == [cpus[0]]
    assert polled[child.tids["CPU 0/TCG"]].affinity == cpus, "other threads untouched"
    _core.set_thread_affinity(tid, reversed(cpus))  # any iterable, any order
    assert _core.get_thread_affinity(tid) == cpus


@pytest.mark.parametrize("cpus", [[], [-1], [0, 4096], [2**70], None])
def test_cpus_that_do_not_exist_are_einval(spawn: Spawn, cpus: list[int] | None) -> None:
    child = spawn()
    tid = child.tids["CPU 0/TCG"]
    before = _core.get_thread_affinity(tid)
    if cpus is None:  # one past the last online CPU: offline or absent
        cpus = [0, max(online_cpus()) + 1]
    with pytest.raises(VirtSystemError) as info:
        _core.set_thread_affinity(tid, cpus)
    assert info.value.errno == errno.EINVAL
    assert isinstance(info.value, OSError)
    assert "sched_setaffinity" in str(info.value)
    assert _core.get_thread_affinity(tid) == before, "nothing changed"


def test_a_gone_thread_is_esrch(spawn: Spawn) -> None:
    child = spawn()
    tid = child.tids["worker"]
    _reap(child.proc)
    for call in (lambda: _core.get_thread_affinity(tid), lambda: _core.set_thread_affinity(tid, [0])):
        with pytest.raises(VirtSystemError) as info:
            call()
        assert info.value.errno == errno.ESRCH


def test_polling_releases_the_gil(spawn: Spawn) -> None:
    """Another Python thread keeps running while a large batch is read."""
    pids = [c.pid for c in (spawn(), spawn())] * 1000
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    counter = threading.Thread(target=count)
    counter.start()
    try:
        start_ticks, start = ticks, time.perf_counter()
        time.sleep(0.05)
        rate = (ticks - start_ticks) / (time.perf_counter() - start)
        before, start = ticks, time.perf_counter()
        _core.poll_processes(pids)
        during, elapsed = ticks - before, time.perf_counter() - start
    finally:
        stop.set()
        counter.join()
        sys.setswitchinterval(interval)
    # Had the call held the GIL, the counter could only have run for about
    # one switch interval (0.1 ms); released, it counts all along.
    assert elapsed > 0.02, "the batch is too small to tell"
    assert during > 0.1 * rate * elapsed, (during, rate, elapsed)
