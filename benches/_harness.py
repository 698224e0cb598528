"""A small timing harness: best-of-N wall time per call, side by side, as ratios."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    name: str
    seconds_per_call: float

    @property
    def rate(self) -> float:
        return 1.0 / self.seconds_per_call


def measure(fn: Callable[[], object], *, min_time: float = 0.2, repeat: int = 5) -> float:
    """Seconds per call: calibrate a loop count, then take the best of `repeat` runs."""
    fn()
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time / repeat or loops >= 1 << 24:
            break
        loops *= 2 if elapsed == 0 else max(2, min(10, int(min_time / repeat / elapsed) + 1))
    best = elapsed / loops
    for _ in range(repeat - 1):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - start) / loops)
    return best


def human(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:8.2f} {unit}"
    return f"{seconds / 1e-9:8.2f} ns"


def compare(title: str, ours: tuple[str, Callable[[], object]],
            peers: list[tuple[str, Callable[[], object]]], *, min_time: float = 0.2) -> list[str]:
    """Time `ours` and each peer; print a table of time per call and speed-up ratios."""
    rows = []
    ours_t = measure(ours[1], min_time=min_time)
    rows.append(f"  {ours[0]:<34} {human(ours_t)}")
    lines = []
    for name, fn in peers:
        t = measure(fn, min_time=min_time)
        ratio = t / ours_t
        rows.append(f"  {name:<34} {human(t)}   virtkit is {ratio:8.2f}x faster")
        lines.append(f"{title}: {ratio:.2f}x {name}")
    print(f"\n{title}")
    print("\n".join(rows))
    return lines
