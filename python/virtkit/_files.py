"""Files written so that a crash leaves the old content or the new, never a torn one.

:func:`write_atomically` writes a temporary ``.NAME.tmp-PID-THREAD`` beside the
target, flushes it, renames it over the target and flushes the directory; a
temporary that a crash left is recognised and removed by
:func:`remove_stale_temporaries`. Every configuration and status file of the
drivers, the network manager and the daemon goes through here.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from virtkit.errors import ErrorDomain, VirtSystemError

__all__ = ["write_atomically", "remove_stale_temporaries", "is_temporary"]

_TEMP_MARK = ".tmp-"


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary of :func:`write_atomically`."""
    return path.name.startswith(".") and _TEMP_MARK in path.name


def write_atomically(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600,
                     durable: bool = True, domain: ErrorDomain | None = None) -> None:
    """Replace ``path`` with ``data``. ``durable=False`` skips the flushes (for
    files describing running things, which a power cut ends anyway).

    VirtSystemError (in ``domain`` when given) when the file cannot be written; the old one
    is then intact and no temporary is left."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}{_TEMP_MARK}{os.getpid()}-{threading.get_ident()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if durable:
            dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise VirtSystemError(f"cannot write '{path}': {e.strerror}", errno=e.errno,
                              domain=domain) from None


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Remove the temporaries an interrupted :func:`write_atomically` left; return them."""
    removed: list[Path] = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return removed
    for p in entries:
        if is_temporary(p):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed
