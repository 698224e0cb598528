"""A blocking client of libvirt's remote protocol (talks to libvirtd or virtkitd).

::

    with RemoteClient.connect_unix("/run/libvirt/libvirt-sock-ro") as client:
        client.open("qemu:///system", readonly=True)
        dom = client.call("domain_lookup_by_name", {"name": "fv0"})["dom"]
        info = client.call("domain_get_info", {"dom": dom})
        info["state"], info["max_mem"], info["nr_virt_cpu"]

Arguments and results are the Python values of the procedure's declared
structs (:mod:`virtkit.drivers.remote.protocol`): a dict with one key per
field, ``None`` for a procedure without arguments or return value. A domain
reference is ``{"name": str, "uuid": bytes, "id": int}``.

Errors the daemon reports are raised as virtkit exceptions chosen by code
(``protocol.ERROR_CLASSES``: NO_DOMAIN -> NoDomainError, NO_NETWORK ->
NoNetworkError, OPERATION_INVALID -> OperationInvalidError, OPERATION_DENIED
-> OperationDeniedError, NO_SUPPORT -> NoSupportError, ...; any other code a
VirtError carrying it). Protocol failures (connection lost, malformed reply)
raise RPCError.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from types import TracebackType
from typing import Any

from virtkit.drivers.remote.protocol import (
    BY_NUMBER,
    CONNECT_RO,
    HEADER_SIZE,
    REMOTE_ERROR,
    REMOTE_PROGRAM,
    REMOTE_PROTOCOL_VERSION,
    AuthType,
    Header,
    Kind,
    MessageStatus,
    error_from_wire,
    procedure,
)
from virtkit.drivers.remote.transport import BlockingChannel
from virtkit.errors import ConnectionFailedError, RPCError, VirtError

__all__ = ["RemoteClient", "EventCallback"]

log = logging.getLogger(__name__)

#: ``callback(event_name, message)``: an event procedure's name and its decoded struct.
EventCallback = Callable[[str, Any], None]


class RemoteClient:
    """Calls procedures of the remote program over a :class:`BlockingChannel`."""

    def __init__(self, channel: BlockingChannel, *, on_event: EventCallback | None = None,
                 program: int = REMOTE_PROGRAM,
                 version: int = REMOTE_PROTOCOL_VERSION) -> None:
        self.channel = channel
        self.on_event = on_event
        self.program = program
        self.version = version
        self.opened = False
        channel.on_message = self._on_message

    @classmethod
    def connect_unix(cls, path: str | os.PathLike[str], *, timeout: float | None = None,
                     on_event: EventCallback | None = None) -> RemoteClient:
        """A client on the daemon's UNIX socket at ``path`` (not yet opened)."""
        return cls(BlockingChannel.connect_unix(path, timeout=timeout), on_event=on_event)

    def call(self, name: str, args: Any = None, *, timeout: float | None = None) -> Any:
        """Call procedure ``name`` with ``args``; returns its decoded return value.

        Raises InvalidArgumentError for an unknown name, RPCError when ``args``
        do not fit the declaration or the protocol fails, and the mapped
        VirtError subclass when the daemon answers with an error.
        """
        proc = procedure(name)
        if proc.kind is Kind.EVENT:
            raise RPCError(f"{name} is an event, not a call")
        payload = proc.args.encode(args)
        header, body = self.channel.call(self.program, self.version, proc.number, payload,
                                         timeout)
        if header.status == MessageStatus.OK:
            return proc.ret.decode(body, HEADER_SIZE)
        if header.status == MessageStatus.ERROR:
            raise error_from_wire(REMOTE_ERROR.decode(body, HEADER_SIZE))
        raise RPCError(f"reply to {name} has status {header.status}")

    def open(self, uri: str | None = None, *, readonly: bool = False) -> None:
        """Authenticate (only ``none`` is supported yet) and open ``uri`` on the daemon.

        ``uri`` None lets the daemon choose its default driver. Raises
        ConnectionFailedError when the daemon demands another authentication.
        """
        types = self.call("auth_list")["types"]
        if types and AuthType.NONE not in types:
            names = ", ".join(AuthType(t).name.lower() if t in AuthType._value2member_map_
                              else str(t) for t in types)
            raise ConnectionFailedError(
                f"the daemon requires authentication ({names}), which virtkit does not "
                f"support yet")
        self.call("connect_open", {"name": uri, "flags": CONNECT_RO if readonly else 0})
        self.opened = True

    def poll_events(self, timeout: float | None = 0.0) -> int:
        """Receive events (and answer keepalives) for up to ``timeout`` seconds."""
        return self.channel.poll(timeout)

    def close(self) -> None:
        """Close the remote connection (``connect_close``) and the socket; idempotent."""
        if self.opened and not self.channel.closed:
            self.opened = False
            try:
                self.call("connect_close")
            except VirtError as exc:
                log.debug("connect_close failed: %s", exc)
        self.channel.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _on_message(self, header: Header, body: bytes) -> None:
        proc = BY_NUMBER.get(header.procedure) if header.program == self.program else None
        if proc is None or proc.kind is not Kind.EVENT:
            log.debug("ignoring message for program %#x procedure %d", header.program,
                      header.procedure)
            return
        message = proc.args.decode(body, HEADER_SIZE)
        if self.on_event is not None:
            self.on_event(proc.name, message)
