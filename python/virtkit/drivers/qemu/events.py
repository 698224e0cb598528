"""Waiting for one QMP event of a running QEMU.

The driver hands each QMP event of a domain, on its loop, first to the
watchers registered on the domain's run (``_Run.watchers``), then to its own
handler. :func:`wait_event` registers one for the length of a wait: save and
restore wait for ``MIGRATION``, vCPU removal for ``DEVICE_DELETED``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from virtkit.errors import ErrorDomain, OperationFailedError

if TYPE_CHECKING:
    from virtkit.drivers.qemu.driver import _Run

__all__ = ["wait_event"]


async def wait_event(run: _Run, match: Callable[[str, Mapping[str, Any]], bool],
                     exited: asyncio.Future[None], timeout: float,
                     start: Callable[[], Any] | None = None) -> Mapping[str, Any] | None:
    """Wait (on the driver's loop) for the first QMP event of ``run`` that ``match``
    accepts; its data, or None when QEMU exited first. ``start`` (a coroutine
    function) runs after the watch is in place, so its event cannot be missed.
    Raises OperationFailedError after ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    got: asyncio.Future[Mapping[str, Any]] = loop.create_future()

    def watch(name: str, data: Mapping[str, Any]) -> bool:
        if got.done() or not match(name, data):
            return False
        got.set_result(data)
        return True

    run.watchers.append(watch)
    try:
        if start is not None:
            await start()
        waiting: set[asyncio.Future[Any]] = {got, exited}
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if got in done:
            return got.result()
        if exited in done:
            return None
        raise OperationFailedError(f"QEMU reported nothing within {timeout:g} s",
                                   domain=ErrorDomain.QEMU)
    finally:
        if watch in run.watchers:
            run.watchers.remove(watch)
