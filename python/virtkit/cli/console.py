"""``console DOMAIN``: attach the terminal to a domain's serial console.

The hook: a domain object that offers ``console_path()`` (returning the path
of a pty or character device that is the guest's serial console) can be
attached to. Today no public API call or driver provides it, so the command
answers with a NO_SUPPORT error naming the driver. The intended shape, for
the driver that fills it first (QEMU's ``-serial pty``, Xen's console tty
as libvirt 0.2.2 read it from the domain XML):

- driver contract: ``domain_get_console_path(dom) -> str``, an optional
  operation (NO_SUPPORT by default), needing an active domain;
- public API: ``Domain.console_path() -> str`` dispatching to it.

Attached, the terminal is in raw mode and bytes flow both ways until the
user types the escape character ``Ctrl+]`` or the console closes.
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
    """The path of ``dom``'s console; NoSupportError while no driver provides one."""
    from virtkit.errors import NoSupportError

    hook = getattr(dom, "console_path", None)
    if not callable(hook):
        raise NoSupportError(
            _("this function is not supported by the connection driver: the %(driver)s driver "
              "provides no console for domain '%(name)s'")
            % {"driver": dom.connection.driver_name, "name": dom.name})
    path = hook()
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
