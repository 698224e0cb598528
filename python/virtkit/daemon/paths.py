"""Where a ``virtkitd`` keeps its sockets, state and configuration.

Two kinds of daemon, as libvirt has (one per URI):

================  =============================================  ==========================
                  session (``qemu:///session``, per user)        system (``qemu:///system``)
================  =============================================  ==========================
sockets, pidfile  ``$XDG_RUNTIME_DIR/virtkit`` (without it:      ``/run/virtkit``
                  ``~/.cache/virtkit/run``), mode 0700
state             ``$XDG_DATA_HOME/virtkit``                     ``/var/lib/virtkit``
                  (``~/.local/share/virtkit``)
configuration     ``$XDG_CONFIG_HOME/virtkit``                   ``/etc/virtkit``
                  (``~/.config/virtkit``)
================  =============================================  ==========================

In the socket directory: ``virtkit-sock`` (read-write, mode 0600: the owner
only), ``virtkit-sock-ro`` (read-only operations only, mode 0666) and
``virtkitd.pid`` (the daemon's pid, locked while it runs: one daemon per
socket directory). The library computes the same paths to find, and for a
session to start, its daemon.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["DaemonPaths", "session_paths", "system_paths", "SOCKET", "SOCKET_RO", "PIDFILE",
           "LOGFILE"]

SOCKET = "virtkit-sock"
SOCKET_RO = "virtkit-sock-ro"
PIDFILE = "virtkitd.pid"
LOGFILE = "virtkitd.log"


@dataclass(frozen=True)
class DaemonPaths:
    """The directories of one daemon; ``mode`` is ``session`` or ``system``."""

    mode: str
    socket_dir: Path
    state_dir: Path
    config_dir: Path

    @property
    def socket(self) -> Path:
        """The read-write socket (owner only)."""
        return self.socket_dir / SOCKET

    @property
    def socket_ro(self) -> Path:
        """The read-only socket (anyone who can reach the directory)."""
        return self.socket_dir / SOCKET_RO

    @property
    def pidfile(self) -> Path:
        """The pid and single-instance lock file."""
        return self.socket_dir / PIDFILE

    @property
    def logfile(self) -> Path:
        """Where an auto-started session daemon writes its log."""
        return self.state_dir / LOGFILE

    @property
    def uri(self) -> str:
        """The URI this daemon answers to: ``qemu:///session`` or ``qemu:///system``."""
        return f"qemu:///{self.mode}"

    @property
    def dir_mode(self) -> int:
        """Mode of the directories the daemon creates (a system socket dir must be
        reachable by everyone for the read-only socket)."""
        return 0o700 if self.mode == "session" else 0o755

    def with_overrides(self, *, socket_dir: str | os.PathLike[str] | None = None,
                       state_dir: str | os.PathLike[str] | None = None,
                       config_dir: str | os.PathLike[str] | None = None) -> DaemonPaths:
        """These paths with some directories replaced (``--socket-dir`` and friends)."""
        return replace(
            self,
            socket_dir=Path(socket_dir).absolute() if socket_dir else self.socket_dir,
            state_dir=Path(state_dir).absolute() if state_dir else self.state_dir,
            config_dir=Path(config_dir).absolute() if config_dir else self.config_dir,
        )


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def session_paths() -> DaemonPaths:
    """The calling user's session daemon (XDG base directories)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        socket_dir = Path(runtime) / "virtkit"
    else:
        socket_dir = Path.home() / ".cache" / "virtkit" / "run"
    return DaemonPaths(
        mode="session",
        socket_dir=socket_dir,
        state_dir=_xdg("XDG_DATA_HOME", ".local/share") / "virtkit",
        config_dir=_xdg("XDG_CONFIG_HOME", ".config") / "virtkit",
    )


def system_paths() -> DaemonPaths:
    """The system daemon (run by root, e.g. from an init system)."""
    return DaemonPaths(
        mode="system",
        socket_dir=Path("/run/virtkit"),
        state_dir=Path("/var/lib/virtkit"),
        config_dir=Path("/etc/virtkit"),
    )
