"""What the QEMU driver keeps on disk: definitions, autostart marks, status files.

Three directories (see :class:`DriverDirs`), as libvirt's QEMU driver has them:

- ``config``: one ``NAME.xml`` per defined domain (the inactive definition,
  without id or runtime details) and ``autostart/NAME`` marks. Read at open.
- ``runtime`` (a tmpfs such as ``/run`` or ``$XDG_RUNTIME_DIR``: it survives a
  daemon restart, not a host reboot, exactly like the QEMU processes): per
  running domain its QMP socket ``NAME.monitor``, QEMU's pidfile ``NAME.pid``
  and the status file ``NAME.status`` (:class:`DomainStatus`, JSON), from
  which a restarted driver adopts the running QEMU.
- ``state``: ``log/NAME.log``, QEMU's stdout and stderr (appended across runs).

Every file is written by :func:`write_atomically`: a temporary file in the
same directory, ``fsync``, ``rename`` over the target, ``fsync`` of the
directory. A crash at any point leaves the old file or the new one, never a
torn one; a leftover temporary (``.NAME.tmp-*``) is ignored and removed by
:func:`remove_stale_temporaries` at the next open.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from virtkit._files import remove_stale_temporaries, write_atomically
from virtkit.errors import VirtError, VirtSystemError
from virtkit.xml.domain import DomainConfig, format_domain, parse_domain

__all__ = [
    "DriverDirs",
    "DomainStatus",
    "write_atomically",
    "remove_stale_temporaries",
    "ConfigStore",
    "STATUS_VERSION",
]

log = logging.getLogger(__name__)

#: Version of the status file format; a file of another version is not adopted.
STATUS_VERSION = 1



@dataclass(frozen=True)
class DriverDirs:
    """The QEMU driver's directories (each a ``qemu`` subdirectory of the daemon's)."""

    config: Path
    state: Path
    runtime: Path

    @classmethod
    def under(cls, config_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str],
              runtime_dir: str | os.PathLike[str]) -> DriverDirs:
        """``qemu/`` inside each of the daemon's configuration, state and runtime directories."""
        return cls(Path(config_dir) / "qemu", Path(state_dir) / "qemu", Path(runtime_dir) / "qemu")

    @property
    def autostart(self) -> Path:
        return self.config / "autostart"

    @property
    def logs(self) -> Path:
        return self.state / "log"

    def create(self) -> None:
        """Make every directory (mode 0700: guests' consoles and monitors are private)."""
        for d in (self.config, self.autostart, self.state, self.logs, self.runtime):
            try:
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as e:
                raise VirtSystemError(f"cannot create directory '{d}': {e.strerror}",
                                      errno=e.errno) from None

    def config_file(self, name: str) -> Path:
        return self.config / f"{name}.xml"

    def autostart_mark(self, name: str) -> Path:
        return self.autostart / name

    def status_file(self, name: str) -> Path:
        return self.runtime / f"{name}.status"

    def pidfile(self, name: str) -> Path:
        return self.runtime / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def monitor(self, name: str, uuid_hex: str) -> Path:
        """The QMP socket's path: ``NAME.monitor``, or ``UUID.monitor`` when a long
        name would make it longer than a UNIX socket address allows."""
        path = self.runtime / f"{name}.monitor"
        if len(os.fsencode(path)) < 100:
            return path
        return self.runtime / f"{uuid_hex}.monitor"


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise VirtSystemError(f"cannot remove '{path}': {e.strerror}", errno=e.errno) from None


class ConfigStore:
    """Saved definitions and autostart marks in :attr:`DriverDirs.config`."""

    def __init__(self, dirs: DriverDirs) -> None:
        self.dirs = dirs

    def save(self, config: DomainConfig) -> None:
        """Write the definition of ``config`` (id dropped) as ``NAME.xml``, atomically."""
        from dataclasses import replace

        text = format_domain(replace(config, id=None))
        write_atomically(self.dirs.config_file(config.name), text.encode())

    def remove(self, name: str) -> None:
        """Forget the definition and the autostart mark of ``name``."""
        _unlink(self.dirs.config_file(name))
        _unlink(self.dirs.autostart_mark(name))

    def load_all(self) -> list[DomainConfig]:
        """Every saved definition; unreadable or invalid files are logged and skipped."""
        remove_stale_temporaries(self.dirs.config)
        out = []
        for path in sorted(self.dirs.config.glob("*.xml")):
            try:
                config = parse_domain(path.read_bytes())
            except (OSError, VirtError) as e:
                log.warning("ignoring domain definition %s: %s", path, e)
                continue
            if config.name != path.name[:-4] or config.uuid is None:
                log.warning("ignoring domain definition %s: it names domain %r%s", path,
                            config.name, "" if config.uuid else " without a UUID")
                continue
            out.append(config)
        return out

    def autostart(self, name: str) -> bool:
        return self.dirs.autostart_mark(name).exists()

    def set_autostart(self, name: str, on: bool) -> None:
        if on:
            write_atomically(self.dirs.autostart_mark(name), b"")
        else:
            _unlink(self.dirs.autostart_mark(name))


@dataclass(frozen=True)
class DomainStatus:
    """What a restarted driver needs to find a running domain again."""

    name: str
    #: Canonical UUID text.
    uuid: str
    id: int
    pid: int
    #: The process's start time (ns since boot, from /proc/PID/stat): with ``pid``,
    #: it tells our QEMU from a later process that reuses the pid.
    start_time_ns: int
    #: The QMP socket.
    monitor: str
    #: The live configuration (``<domain id=...>`` with pty paths and the VNC port).
    live_xml: str
    #: The emulator that runs it.
    emulator: str
    version: int = STATUS_VERSION

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode() + b"\n"

    @classmethod
    def loads(cls, data: bytes) -> DomainStatus:
        """Parse a status file; ValueError when it is not one of this version."""
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("version") != STATUS_VERSION:
            raise ValueError(f"not a version-{STATUS_VERSION} status file")
        try:
            status = cls(**raw)
        except TypeError as e:
            raise ValueError(str(e)) from None
        for field, kind in (("name", str), ("uuid", str), ("id", int), ("pid", int),
                            ("start_time_ns", int), ("monitor", str), ("live_xml", str),
                            ("emulator", str)):
            if not isinstance(getattr(status, field), kind):
                raise ValueError(f"field {field!r} is not a {kind.__name__}")
        return status

    def live_config(self) -> DomainConfig:
        return parse_domain(self.live_xml)

    def save(self, dirs: DriverDirs) -> None:
        write_atomically(dirs.status_file(self.name), self.dumps())
