"""qemu:///session starts its daemon on first connect, as libvirt's session daemons do.

The auto-started daemon detaches (its starter exits once the sockets accept),
so it is re-parented: these tests make the test process a child subreaper
(prctl PR_SET_CHILD_SUBREAPER) for their duration, so the daemon becomes our
child and is reaped here after being stopped. ``VIRTKIT_SESSION_DRIVER=test``
makes the session daemon use the test backend.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtkit
from tests.daemon.private import process_gone
from virtkit.daemon.paths import session_paths

PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def session_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Private XDG directories, the test backend, and subreaping of the daemon."""
    base = Path(tempfile.mkdtemp(prefix="vks-"))
    for var, sub in (("XDG_RUNTIME_DIR", "run"), ("XDG_DATA_HOME", "data"),
                     ("XDG_CONFIG_HOME", "config")):
        (base / sub).mkdir(mode=0o700)
        monkeypatch.setenv(var, str(base / sub))
    monkeypatch.setenv("VIRTKIT_SESSION_DRIVER", "test")
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    monkeypatch.setenv("VIRTKIT_DEFAULT_URI", "qemu:///session")
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield base
    finally:
        paths = session_paths()
        try:
            pid = int(paths.pidfile.read_text())
        except (OSError, ValueError):
            pid = 0
        if pid:
            os.kill(pid, signal.SIGTERM)
            _reap(pid)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        shutil.rmtree(base, ignore_errors=True)
    assert not pid or process_gone(pid), "the session daemon is still there"


def _reap(pid: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError(f"the session daemon {pid} did not stop")


def test_first_connect_starts_the_session_daemon(session_env: Path) -> None:
    paths = session_paths()
    assert paths.socket_dir == session_env / "run" / "virtkit"
    assert not paths.socket.exists()
    with virtkit.open() as conn:  # the default URI: qemu:///session
        assert conn.uri == "qemu:///session" and conn.driver_name == "remote"
        assert conn.get_type() == "Test"
        conn.define_domain("<domain type='test'><name>kept</name><memory>65536</memory>"
                           "<vcpu>1</vcpu><os><type>hvm</type></os></domain>")
    pid = int(paths.pidfile.read_text())
    assert pid in _our_children(), "the detached daemon is re-parented to us (subreaper)"
    assert paths.socket.exists() and paths.socket_ro.exists()
    assert paths.logfile.exists()
    # Later connections reuse the running daemon and see its state.
    with virtkit.open_read_only("qemu:///session") as conn:
        assert "kept" in conn.list_defined_domains()
    assert int(paths.pidfile.read_text()) == pid
    os.kill(pid, signal.SIGTERM)
    assert _reap(pid) == 0
    assert not paths.socket.exists() and not paths.pidfile.exists()


def test_a_daemon_that_cannot_start_is_reported_with_its_log(
        session_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTKIT_SESSION_DRIVER", "no-such-backend")
    with pytest.raises(virtkit.ConnectionFailedError) as info:
        virtkit.open("qemu:///session")
    message = str(info.value)
    assert "cannot start the session daemon" in message
    assert "invalid choice: 'no-such-backend'" in message, "the log tail is quoted"


def _our_children() -> set[int]:
    from tests.daemon.private import children_of

    return set(children_of(os.getpid()))
