"""A progress bar on the terminal for long operations (save, restore, dump).

The API's save/restore/core-dump calls block and report no progress, so the
bar watches what it can see from outside: the size of the file being
written (and of the ``FILE.tmp-*`` sibling a driver may write first) against
the expected size. When neither is known it shows an indeterminate bar with
the elapsed time. A driver that can report its own progress later plugs in
through the ``progress`` callable (bytes done, bytes total).

The bar is drawn on stderr, and only when stderr is a terminal: pipes and
files receive nothing from here. It is redrawn ten times a second from a
daemon thread and erased when the operation ends, so a quick operation
leaves no trace.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TextIO, TypeVar

from virtkit.cli.i18n import _

__all__ = ["run_with_progress", "render", "file_watcher"]

T = TypeVar("T")

#: Seconds before the bar first appears: quick operations draw nothing.
DELAY = 0.2
#: Seconds between redraws.
INTERVAL = 0.1
#: Cells of the bar itself.
WIDTH = 30


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def render(label: str, done: int | None, total: int | None, elapsed: float, tick: int) -> str:
    """One frame: ``label [#####     ]  45%  1.2 GiB  3.1s``, or a moving
    block when the fraction is unknown."""
    if done is not None and total:
        fraction = min(1.0, max(0.0, done / total))
        filled = int(fraction * WIDTH)
        bar = "#" * filled + " " * (WIDTH - filled)
        return f"{label} [{bar}] {fraction * 100:3.0f}%  {_human(done)}  {elapsed:.1f}s"
    pos = tick % (2 * (WIDTH - 3))
    if pos >= WIDTH - 3:
        pos = 2 * (WIDTH - 3) - pos
    bar = " " * pos + "<=>" + " " * (WIDTH - 3 - pos)
    size = f"  {_human(done)}" if done else ""
    return f"{label} [{bar}]{size}  {elapsed:.1f}s"


def file_watcher(path: str) -> Callable[[], int | None]:
    """Bytes written so far to ``path`` or to its ``path.tmp-*`` sibling (None before any)."""
    directory, base = os.path.split(os.path.abspath(path))

    def size() -> int | None:
        best: int | None = None
        try:
            with os.scandir(directory or ".") as entries:
                for entry in entries:
                    if entry.name == base or entry.name.startswith(base + ".tmp"):
                        try:
                            n = entry.stat().st_size
                        except OSError:
                            continue
                        best = n if best is None else max(best, n)
        except OSError:
            return None
        return best

    return size


def run_with_progress(label: str, operation: Callable[[], T], stream: TextIO,
                      done: Callable[[], int | None] | None = None,
                      total: int | None = None) -> T:
    """Run ``operation()`` and return its result, drawing a bar on ``stream``
    meanwhile when ``stream`` is a terminal. ``done`` reports bytes done so far."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return operation()
    stop = threading.Event()
    drawn = [0]

    def draw() -> None:
        start = time.monotonic()
        if stop.wait(DELAY):
            return
        tick = 0
        while True:
            try:
                current = done() if done is not None else None
            except Exception:  # noqa: BLE001 - a failing probe must not break the command
                current = None
            frame = render(label, current, total, time.monotonic() - start, tick)
            stream.write("\r" + frame + " " * max(0, drawn[0] - len(frame)))
            stream.flush()
            drawn[0] = max(drawn[0], len(frame))
            tick += 1
            if stop.wait(INTERVAL):
                return

    thread = threading.Thread(target=draw, name="virtkit-progress", daemon=True)
    thread.start()
    try:
        return operation()
    finally:
        stop.set()
        thread.join()
        if drawn[0]:
            stream.write("\r" + " " * drawn[0] + "\r")
            stream.flush()


def label_for(verb: str) -> str:
    """The bar's label for ``save``, ``restore`` or ``dump``."""
    return {"save": _("Save:"), "restore": _("Restore:"), "dump": _("Dump:")}.get(verb, verb)
