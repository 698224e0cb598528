"""Starting the session daemon on first connect, as libvirt does for ``qemu:///session``.

:func:`ensure_session_daemon` returns at once when something accepts on the
session socket; otherwise it runs ``python -m virtkit.daemon --session
--daemon --timeout 120`` (the same Python and virtkit as the caller), which
detaches and returns once its sockets accept clients, so the library keeps
no child process. Its log goes to ``virtkitd.log`` in the state directory;
when the daemon cannot start, the ConnectionFailedError carries the end of
that log.

``VIRTKIT_SESSION_DRIVER`` (``qemu`` by default) chooses the auto-started
daemon's backend: a testing knob, e.g. ``VIRTKIT_SESSION_DRIVER=test`` gives
a session daemon on the in-memory test driver.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from virtkit.daemon.paths import DaemonPaths
from virtkit.errors import ConnectionFailedError

__all__ = ["ensure_session_daemon", "socket_accepts", "IDLE_TIMEOUT", "START_TIMEOUT"]

#: Seconds an auto-started daemon stays without clients (libvirt uses 120 too).
IDLE_TIMEOUT = 120
#: Seconds to wait for an auto-started daemon to accept clients.
START_TIMEOUT = 30.0
#: Lines of the daemon's log quoted when it fails to start.
LOG_TAIL_LINES = 20


def socket_accepts(path: os.PathLike[str] | str) -> bool:
    """True when a server accepts connections on the UNIX socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(2.0)
        probe.connect(os.fspath(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _log_tail(paths: DaemonPaths, start: int) -> str:
    try:
        with open(paths.logfile, "rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-LOG_TAIL_LINES:])


def ensure_session_daemon(paths: DaemonPaths, *, driver: str | None = None,
                          timeout: float = START_TIMEOUT) -> None:
    """Make sure the session daemon of ``paths`` accepts clients, starting it if needed.

    Raises ConnectionFailedError (with the daemon's log tail) when it does not
    come up within ``timeout`` seconds. Two callers racing here both start
    a daemon; the pidfile lock lets one win and the other gives up quietly.
    """
    if socket_accepts(paths.socket):
        return
    driver = driver or os.environ.get("VIRTKIT_SESSION_DRIVER") or "qemu"
    try:
        paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = open(paths.logfile, "ab")
    except OSError as exc:
        raise ConnectionFailedError(
            f"cannot start the session daemon: cannot write its log {paths.logfile}: "
            f"{exc.strerror or exc}") from None
    start = log.tell()
    command = [sys.executable, "-m", "virtkit.daemon", "--session", "--daemon",
               "--driver", driver, "--timeout", str(IDLE_TIMEOUT),
               "--socket-dir", str(paths.socket_dir), "--state-dir", str(paths.state_dir),
               "--config-dir", str(paths.config_dir)]
    deadline = time.monotonic() + timeout
    status: int | str
    try:
        with log:
            status = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    timeout=timeout, close_fds=True, cwd="/").returncode
    except subprocess.TimeoutExpired:
        status = f"no answer within {timeout:g} s"
    except OSError as exc:
        raise ConnectionFailedError(
            f"cannot start the session daemon ({command[0]}): {exc.strerror or exc}") from None
    # Status 0: ours is up. Otherwise another starter may have won the race: look.
    while True:
        if socket_accepts(paths.socket):
            return
        if status != 0 or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    tail = _log_tail(paths, start)
    raise ConnectionFailedError(
        f"cannot start the session daemon virtkitd for {paths.uri} (status {status}); "
        f"nothing accepts on {paths.socket}"
        + (f"; the end of its log {paths.logfile}:\n{tail}" if tail else ""))
