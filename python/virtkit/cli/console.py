"""``console DOMAIN``: attach the terminal to a domain's serial console.

The driver tells where the console is: :meth:`virtkit.Domain.console_path`
(driver operation ``domain_get_console_path``) returns the path of a pty or
character device; a driver without consoles answers NO_SUPPORT, a domain
without one OPERATION_INVALID. The terminal is then put in raw mode and
bytes flow both ways until the user types the escape character ``Ctrl+]``
or the console closes.
"""

from __future__ import annotations

import os
import select
from typing import TYPE_CHECKING

from virtkit.cli.i18n import _

if TYPE_CHECKING:
    from virtkit.domain import Domain

__all__ = ["console_path", "relay", "ESCAPE"]

#: Ctrl+], as virsh uses.
ESCAPE = b"\x1d"


def console_path(dom: Domain) -> str:
    """The path of ``dom``'s console (raises the API's error when there is none)."""
    from virtkit.errors import NoSupportError

    path = dom.console_path()
    if not isinstance(path, str) or not path:
        raise NoSupportError(_("domain '%s' has no console") % dom.name)
    return path


def relay(console_fd: int, in_fd: int, out_fd: int, escape: bytes = ESCAPE) -> None:
    """Copy bytes console -> ``out_fd`` and ``in_fd`` -> console until ``escape``
    is read from ``in_fd``, ``in_fd`` ends, or the console closes."""
    while True:
        readable, _w, _x = select.select([console_fd, in_fd], [], [])
        if console_fd in readable:
            try:
                data = os.read(console_fd, 4096)
            except OSError:  # EIO: the other side of the pty closed
                return
            if not data:
                return
            _write_all(out_fd, data)
        if in_fd in readable:
            data = os.read(in_fd, 4096)
            if not data:
                return
            cut = data.find(escape)
            if cut >= 0:
                if cut:
                    _write_all(console_fd, data[:cut])
                return
            _write_all(console_fd, data)


def attach(path: str, in_fd: int, out_fd: int) -> None:
    """Open ``path`` and relay the terminal to it in raw mode."""
    import termios
    import tty

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        saved = termios.tcgetattr(in_fd)
        try:
            tty.setraw(in_fd)
            relay(fd, in_fd, out_fd)
        finally:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
