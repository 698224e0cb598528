"""Fixtures: private virtkitd processes, each stopped and checked gone after the test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from tests.daemon.private import PrivateDaemon, children_of, process_gone

StartDaemon = Callable[..., PrivateDaemon]


@pytest.fixture
def start_daemon() -> Iterator[StartDaemon]:
    """``start_daemon(*args, wait=True, **kw)`` runs a private virtkitd (test backend)."""
    started: list[PrivateDaemon] = []

    def start(*args: str, wait: bool = True, **kw: object) -> PrivateDaemon:
        daemon = PrivateDaemon(*args, **kw)  # type: ignore[arg-type]
        started.append(daemon)
        if wait:
            return daemon.start()
        daemon.spawn()
        return daemon

    yield start
    pids = [d.proc.pid for d in started if d.proc is not None]
    for daemon in started:
        daemon.cleanup()
    left = [pid for pid in pids if not process_gone(pid)]
    assert not left, f"virtkitd processes left behind: {left}"
    assert not set(pids) & set(children_of(os.getpid()))


@pytest.fixture
def daemon(start_daemon: StartDaemon) -> PrivateDaemon:
    return start_daemon()
