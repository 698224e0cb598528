"""One QMP connection per domain, on the QEMU driver's event loop (``qemu.qmp``).

:class:`Monitor` wraps :class:`qemu.qmp.QMPClient`: it connects to the
domain's QMP socket, runs commands and hands every event, as it arrives, to a
plain callback on the loop (no queue, no history kept: a guest that runs for
months emits many STOP/RESUME events). Errors become virtkit errors:

- QEMU answered with an error -> :class:`~virtkit.errors.OperationFailedError`
  saying which command and QEMU's description;
- the connection failed or closed (QEMU exited) -> :class:`MonitorClosedError`,
  an OperationFailedError too.

Every coroutine here must run on the driver's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from qemu.qmp import EventListener, ExecuteError, Message, QMPClient, QMPError

from virtkit.errors import ErrorDomain, OperationFailedError

__all__ = ["Monitor", "MonitorClosedError"]

# qemu.qmp logs a QEMU that exits under us as an error; for the driver that is
# an ordinary event (the pidfd reports it), so keep its messages to debug runs.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


class MonitorClosedError(OperationFailedError):
    """The QMP connection failed or QEMU closed it."""


class _Relay(EventListener):
    """An event listener that calls a function instead of queueing."""

    def __init__(self, callback: Callable[[Mapping[str, Any]], None]) -> None:
        super().__init__()
        self.callback = callback

    async def put(self, event: Message) -> None:
        self.callback(event)


class Monitor:
    """The QMP client of one running domain."""

    def __init__(self, name: str, on_event: Callable[[Mapping[str, Any]], None]) -> None:
        self.name = name
        self.client = QMPClient(name)
        self._relay = _Relay(on_event)
        self.client.register_listener(self._relay)
        self.closed = False

    def set_event_handler(self, on_event: Callable[[Mapping[str, Any]], None]) -> None:
        """Hand the events from now on to ``on_event`` (a domain renamed under it)."""
        self._relay.callback = on_event

    async def connect(self, path: str) -> None:
        """Connect, read the greeting and negotiate capabilities."""
        try:
            await self.client.connect(path)
        except (QMPError, OSError, EOFError) as e:
            raise MonitorClosedError(f"cannot connect to the QMP monitor of domain "
                                     f"'{self.name}' at {path}: {e}",
                                     domain=ErrorDomain.QEMU) from None

    async def execute(self, command: str, arguments: Mapping[str, object] | None = None) -> Any:
        """Run ``command``; its ``return`` value."""
        try:
            return await self.client.execute(command, arguments)
        except ExecuteError as e:
            raise OperationFailedError(f"QEMU refused '{command}' for domain '{self.name}': {e}",
                                       domain=ErrorDomain.QEMU) from None
        except (QMPError, OSError, EOFError) as e:
            raise MonitorClosedError(f"the QMP monitor of domain '{self.name}' closed during "
                                     f"'{command}' ({type(e).__name__})",
                                     domain=ErrorDomain.QEMU) from None

    async def pass_fd(self, fd: int, name: str) -> None:
        """Give QEMU a copy of descriptor ``fd`` under ``name`` (``getfd``), for
        commands that take ``fd:NAME`` (``migrate``, ``dump-guest-memory``)."""
        try:
            self.client.send_fd_scm(fd)
        except (QMPError, OSError) as e:
            raise MonitorClosedError(f"cannot pass a file descriptor to QEMU for domain "
                                     f"'{self.name}': {e}", domain=ErrorDomain.QEMU) from None
        await self.execute("getfd", {"fdname": name})

    async def close(self) -> None:
        """Disconnect (idempotent); QEMU goes on running."""
        if self.closed:
            return
        self.closed = True
        try:
            await asyncio.wait_for(self.client.disconnect(), 5.0)
        except (QMPError, OSError, EOFError, asyncio.TimeoutError):
            pass
