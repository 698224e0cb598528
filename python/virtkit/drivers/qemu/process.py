"""QEMU processes: starting them, telling ours from strangers, knowing when they end.

- :func:`listen_monitor` binds the QMP socket in the daemon and hands the
  listening descriptor to QEMU (``-chardev socket,fd=N``), so the daemon can
  connect as soon as QEMU runs, with no polling for a socket file.
- :func:`spawn` starts QEMU as the daemon's child in a session of its own
  (``start_new_session``: a Ctrl-C or a signal to the daemon's process group
  never reaches a guest), stdin on ``/dev/null``, stdout and stderr appended
  to the domain's log. The caller owns the returned :class:`subprocess.Popen`
  and reaps it when the process's pidfd becomes readable.
- :func:`open_pidfd` gives a descriptor that becomes readable the moment the
  process exits (``pidfd_open(2)``); it works for any process, including a
  QEMU adopted after a daemon restart, which is no longer our child (its new
  parent reaps it).
- :func:`identify` checks that a pid from a status file is still the QEMU we
  started (same start time, and ``-uuid`` on its command line).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from virtkit import _core
from virtkit.errors import OperationFailedError, VirtSystemError

__all__ = ["listen_monitor", "spawn", "open_pidfd", "start_time_ns", "identify", "log_tail"]


def listen_monitor(path: Path) -> socket.socket:
    """A listening UNIX socket at ``path`` (a stale file there is replaced), mode 0600."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(os.fspath(path))
        finally:
            os.umask(old)
        sock.listen(4)
    except OSError as e:
        sock.close()
        raise VirtSystemError(f"cannot listen on QMP socket '{path}': {e.strerror}",
                              errno=e.errno) from None
    return sock


def spawn(argv: Sequence[str], *, log_path: Path, env: Mapping[str, str] | None = None,
          pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, output appended to ``log_path``."""
    try:
        log = open(log_path, "ab")
    except OSError as e:
        raise VirtSystemError(f"cannot open log file '{log_path}': {e.strerror}",
                              errno=e.errno) from None
    environment = dict(os.environ)
    if env:
        environment.update(env)
    try:
        with log:
            return subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                pass_fds=tuple(pass_fds), start_new_session=True, env=environment, cwd="/")
    except OSError as e:
        raise OperationFailedError(f"cannot run {argv[0]}: {e.strerror}") from None


def open_pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (close-on-exec), or None when no such process exists."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def start_time_ns(pid: int) -> int | None:
    """When ``pid`` started (ns since boot), or None when it does not exist."""
    got = _core.poll_processes([pid])[0]
    return got.start_time_ns if isinstance(got, _core.ProcessStats) else None


def identify(pid: int, started_ns: int, uuid: str) -> bool:
    """True when ``pid`` is alive, not a zombie, started at ``started_ns`` and runs
    a QEMU with ``-uuid UUID``."""
    got = _core.poll_processes([pid])[0]
    if not isinstance(got, _core.ProcessStats) or got.start_time_ns != started_ns:
        return False
    if got.state in ("Z", "X"):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return False
    want = uuid.encode()
    return any(a == b"-uuid" and b == want for a, b in zip(args, args[1:]))


def log_tail(path: Path, start: int = 0, lines: int = 15) -> str:
    """The last ``lines`` lines written to ``path`` after byte ``start``."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
