"""A private ``virtkitd`` for tests: its own socket, state and config dirs, owned and reaped here.

    daemon = PrivateDaemon().start()        # virtkitd --session --driver test ...
    virtkit.open(daemon.uri)                # test+unix:///default?socket=...
    daemon.stop()                           # SIGTERM, wait, check nothing is left

Used by tests/daemon, tests/drivers/remote/test_driver.py and the conformance
suite's daemon target.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from virtkit.daemon.launcher import socket_accepts


class PrivateDaemon:
    """One ``python -m virtkit.daemon`` child process in a temp directory of its own."""

    def __init__(self, *args: str, base: Path | None = None, driver: str = "test",
                 env: dict[str, str] | None = None) -> None:
        # Short paths: a UNIX socket path must fit in 107 bytes.
        self.base = base or Path(tempfile.mkdtemp(prefix="vkd-"))
        self._own_base = base is None
        self.socket_dir = self.base / "run"
        self.state_dir = self.base / "state"
        self.config_dir = self.base / "config"
        self.log = self.base / "virtkitd.log"
        self.args = ["--session", "--driver", driver, "--socket-dir", str(self.socket_dir),
                     "--state-dir", str(self.state_dir), "--config-dir", str(self.config_dir),
                     *args]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.socket_dir / "virtkit-sock"

    @property
    def socket_ro(self) -> Path:
        return self.socket_dir / "virtkit-sock-ro"

    @property
    def pidfile(self) -> Path:
        return self.socket_dir / "virtkitd.pid"

    @property
    def uri(self) -> str:
        return f"test+unix:///default?socket={self.socket}"

    @property
    def ro_uri(self) -> str:
        return f"test+unix:///default?socket={self.socket_ro}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "virtkit.daemon", *self.args]

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to serve."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=self.env)
        return self.proc

    def start(self, timeout: float = 30.0) -> PrivateDaemon:
        """Start and wait until the read-write socket accepts; RuntimeError with the log
        when the daemon dies or does not come up."""
        proc = self.spawn()
        deadline = time.monotonic() + timeout
        while not socket_accepts(self.socket):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"virtkitd did not start (status {proc.returncode}):\n"
                                   f"{self.log_text()}")
            time.sleep(0.02)
        return self

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: the sockets and pidfile stay behind."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait (SIGKILL after ``timeout``), return the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"virtkitd ignored SIGTERM:\n{self.log_text()}") from None
        return proc.returncode

    def cleanup(self) -> None:
        """Stop and remove the directory (when it is ours)."""
        self.stop()
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)


def process_gone(pid: int) -> bool:
    """True when no process (not even a zombie) has ``pid``."""
    return not os.path.exists(f"/proc/{pid}")


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out
