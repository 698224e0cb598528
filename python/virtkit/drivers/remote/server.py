"""An asyncio server for libvirt's remote protocol, dispatching calls to a handler.

The daemon supplies a *handler*: any object whose methods are named after
the procedures of :data:`virtkit.drivers.remote.protocol.PROCEDURES`::

    class Handler:
        def connect_get_type(self, conn: ClientConnection, args: None) -> dict:
            return {"type": "QEMU"}

        async def domain_get_info(self, conn: ClientConnection, args: dict) -> dict:
            dom = args["dom"]                     # {"name", "uuid", "id"}
            ...
            return {"state": 1, "max_mem": 1 << 20, "memory": 1 << 19,
                    "nr_virt_cpu": 2, "cpu_time": 0}

    server = RemoteServer(Handler())
    await server.listen_unix("/run/virtkit/virtkit-sock", mode=0o600)
    await server.listen_unix("/run/virtkit/virtkit-sock-ro", mode=0o666, readonly=True)
    await server.serve_forever()          # until server.close()

Each method gets the :class:`ClientConnection` (per-client state: read-only?
opened? peer credentials, a ``data`` dict for the handler's own use) and the
decoded argument struct (None when the procedure takes none); it returns the
return struct (None when there is none). Methods may be plain functions
(called inline: keep them quick) or coroutines (run as tasks, at most
``max_requests`` at a time per client, so replies can overtake each other as
the protocol allows).

What the server does itself, before a handler sees anything:

- answers keepalive PINGs with PONGs (and, with ``keepalive_interval``, pings
  clients that announced keepalive support and drops those that stop answering);
- ``auth_list`` (no authentication: the socket's mode is the access control),
  ``connect_open`` / ``connect_close`` (connection state, then the handler's
  method of the same name if any), ``connect_supports_feature`` for the
  protocol's own features (keepalive, event callbacks, close callback, fd
  passing; others go to the handler), ``connect_register_close_callback`` /
  ``connect_unregister_close_callback``; a handler method of the same name
  replaces ``auth_list`` and the close-callback pair;
- refuses, with an error reply: calls before ``connect_open`` (except the few
  allowed), procedures not read-only safe on a read-only connection
  (OPERATION_DENIED), unknown procedures and those the handler lacks
  (NO_SUPPORT), streams and fd passing (NO_SUPPORT, not implemented yet),
  arguments that do not decode (RPC);
- turns exceptions into error replies: a VirtError keeps its code, domain,
  message and extra fields; anything else becomes INTERNAL_ERROR and is
  logged with its traceback. A broken packet stream (bad length, truncated
  header) closes that client only; the server never dies of a client.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from virtkit.drivers.remote.protocol import (
    BY_NAME,
    CONNECT_RO,
    HEADER_SIZE,
    KEEPALIVE_PING,
    KEEPALIVE_PONG,
    KEEPALIVE_PROGRAM,
    KEEPALIVE_PROTOCOL_VERSION,
    MESSAGE_MAX,
    PROCEDURES,
    REMOTE_ERROR,
    REMOTE_PROGRAM,
    REMOTE_PROTOCOL_VERSION,
    AuthType,
    Feature,
    Header,
    Kind,
    MessageStatus,
    MessageType,
    Procedure,
    decode_header,
    encode_packet,
    error_to_wire,
    procedure_name,
)
from virtkit.drivers.remote.transport import PacketProtocol, bind_unix_listener
from virtkit.errors import ErrorCode, ErrorDomain, RPCError, VirtError

__all__ = ["RemoteServer", "ClientConnection", "PeerCredentials", "CallRecord"]

log = logging.getLogger(__name__)

_PEERCRED = struct.Struct("3i")


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """Who is at the other end of a UNIX socket (SO_PEERCRED)."""

    pid: int
    uid: int
    gid: int


@dataclass(slots=True)
class CallRecord:
    """One call as the server saw it, for the ``trace`` callback."""

    conn_id: int
    serial: int
    number: int
    name: str
    args: Any
    result: Any = None
    error: VirtError | None = None
    #: Seconds from decoding the call to queueing the reply.
    duration: float = 0.0


#: ``trace(record)`` is called after every call of the remote program is answered.
TraceCallback = Callable[[CallRecord], None]


class ClientConnection:
    """One client's state; every handler method receives it as ``conn``."""

    _next_id = 0

    def __init__(self, server: RemoteServer, protocol: PacketProtocol, *,
                 readonly: bool, socket_path: str | None) -> None:
        ClientConnection._next_id += 1
        #: A number unique within this process, for logs.
        self.id = ClientConnection._next_id
        self.server = server
        #: True on a read-only socket or after a read-only ``connect_open``.
        self.readonly = readonly
        #: True between ``connect_open`` and ``connect_close``.
        self.opened = False
        #: The URI passed to ``connect_open`` (None when the client sent none).
        self.uri: str | None = None
        #: The socket the client came through.
        self.socket_path = socket_path
        #: Peer credentials when the transport has them (UNIX sockets).
        self.peer: PeerCredentials | None = _peer_credentials(protocol.transport)
        #: Free for the handler's own per-connection state (event callbacks, ...).
        self.data: dict[str, Any] = {}
        #: The client announced keepalive support; it answers PINGs.
        self.keepalive = False
        #: The client registered for ``connect_event_connection_closed``.
        self.close_callback = False
        self.last_received = time.monotonic()
        self._protocol = protocol
        self._closed = False
        self._gone = asyncio.get_running_loop().create_future()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inflight = 0

    @property
    def closed(self) -> bool:
        """True once the connection is closed."""
        return self._closed

    def send_event(self, name: str, message: Any) -> None:
        """Send event procedure ``name`` with ``message`` (its struct) to this client.

        Call it from the server's event loop thread (``loop.call_soon_threadsafe``
        from others). RPCError when ``name`` is not an event or ``message``
        does not fit it.
        """
        proc = BY_NAME.get(name)
        if proc is None or proc.kind is not Kind.EVENT:
            raise RPCError(f"{name!r} is not an event procedure")
        payload = proc.args.encode(message)
        self.write(encode_packet(self.server.program, self.server.version, proc.number,
                                 MessageType.MESSAGE, 0, MessageStatus.OK, payload))

    def write(self, packet: bytes) -> None:
        """Queue a whole packet for this client (dropped once closed)."""
        if not self._closed:
            self._protocol.write(packet)

    def close(self) -> None:
        """Close the connection; in-flight calls are cancelled."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        transport = self._protocol.transport
        if transport is not None:
            transport.close()

    # PacketSink: called by the protocol
    def packet_received(self, body: bytes) -> None:
        self.last_received = time.monotonic()
        self.server._handle_packet(self, body)

    def connection_closed(self, exc: BaseException | None) -> None:
        self.server._client_gone(self, exc)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        mode = "ro" if self.readonly else "rw"
        return f"<ClientConnection {self.id} {mode} {'open' if self.opened else 'new'}>"


def _peer_credentials(transport: asyncio.BaseTransport | None) -> PeerCredentials | None:
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family != socket.AF_UNIX or not hasattr(socket, "SO_PEERCRED"):
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    except OSError:
        return None
    return PeerCredentials(*_PEERCRED.unpack(raw))


class _ServerProtocol(PacketProtocol):
    """Frames a client's packets and hands them to its ClientConnection."""

    def __init__(self, server: RemoteServer, *, readonly: bool, socket_path: str) -> None:
        super().__init__(server.max_message)
        self._server = server
        self._readonly = readonly
        self._socket_path = socket_path

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        conn = ClientConnection(self._server, self, readonly=self._readonly,
                                socket_path=self._socket_path)
        self.sink = conn
        self._server._client_new(conn)


@dataclass(slots=True)
class _Entry:
    """How the server answers one procedure number."""

    proc: Procedure
    method: Callable[[ClientConnection, Any], Any] | None
    is_async: bool


@dataclass(slots=True)
class _Listener:
    server: asyncio.AbstractServer
    path: str
    inode: tuple[int, int]
    readonly: bool


class RemoteServer:
    """Serves the remote program to clients on UNIX sockets; see the module docstring."""

    def __init__(self, handler: object, *, max_message: int = MESSAGE_MAX,
                 max_requests: int = 5, keepalive_interval: float | None = None,
                 keepalive_count: int = 5, trace: TraceCallback | None = None,
                 program: int = REMOTE_PROGRAM,
                 version: int = REMOTE_PROTOCOL_VERSION) -> None:
        self.handler = handler
        self.max_message = max_message
        self.max_requests = max_requests
        self.keepalive_interval = keepalive_interval
        self.keepalive_count = keepalive_count
        self.trace = trace
        self.program = program
        self.version = version
        self._listeners: list[_Listener] = []
        self._connections: set[ClientConnection] = set()
        self._hook_tasks: set[asyncio.Future[Any]] = set()
        self._closed = asyncio.Event()
        self._dispatch = self._build_dispatch()

    # -- dispatch table ----------------------------------------------------------------------

    _BUILTINS = ("auth_list", "connect_open", "connect_close", "connect_supports_feature",
                 "connect_register_close_callback", "connect_unregister_close_callback")
    _OVERRIDABLE = frozenset({"auth_list", "connect_register_close_callback",
                              "connect_unregister_close_callback"})

    def _build_dispatch(self) -> dict[int, _Entry]:
        table: dict[int, _Entry] = {}
        for proc in PROCEDURES:
            method = getattr(self.handler, proc.name, None)
            if not callable(method):
                method = None
            if proc.name in self._BUILTINS and (method is None
                                                or proc.name not in self._OVERRIDABLE):
                method = getattr(self, "_builtin_" + proc.name)
            is_async = method is not None and inspect.iscoroutinefunction(method)
            table[proc.number] = _Entry(proc, method, is_async)
        return table

    def implemented(self) -> list[str]:
        """Names of the procedures this server answers (handler methods and built-ins)."""
        return [e.proc.name for e in self._dispatch.values()
                if e.method is not None and e.proc.kind is not Kind.EVENT]

    # -- listening ---------------------------------------------------------------------------

    async def listen_unix(self, path: str | os.PathLike[str], *, mode: int = 0o600,
                          readonly: bool | None = None) -> None:
        """Accept clients on a UNIX socket at ``path`` with file mode ``mode``.

        ``readonly`` makes every client of this socket read-only; by default a
        socket others may write to (``mode & 0o002``) is read-only, like
        libvirtd's ``-ro`` socket. RPCError when the path is in use.
        """
        path = os.fspath(path)
        if readonly is None:
            readonly = bool(mode & 0o002)
        sock = bind_unix_listener(path, mode)
        st = os.stat(path)
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(
            lambda: _ServerProtocol(self, readonly=bool(readonly), socket_path=path), sock=sock)
        self._listeners.append(_Listener(server, path, (st.st_dev, st.st_ino), readonly))
        log.info("listening on %s (%s, mode %o)", path, "read-only" if readonly else
                 "read-write", mode)

    @property
    def connections(self) -> frozenset[ClientConnection]:
        """The clients connected now."""
        return frozenset(self._connections)

    async def serve_forever(self) -> None:
        """Wait until :meth:`close` is called."""
        await self._closed.wait()

    async def close(self) -> None:
        """Stop accepting, close every client, remove the socket files; idempotent."""
        listeners, self._listeners = self._listeners, []
        for listener in listeners:
            listener.server.close()
        conns = list(self._connections)
        for conn in conns:
            conn.close()
        pending = [t for conn in conns for t in conn._tasks] + [conn._gone for conn in conns]
        pending += list(self._hook_tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for listener in listeners:
            await listener.server.wait_closed()
            try:
                st = os.stat(listener.path)
                if (st.st_dev, st.st_ino) == listener.inode:
                    os.unlink(listener.path)
            except OSError:
                pass
        self._closed.set()

    async def __aenter__(self) -> RemoteServer:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- one client --------------------------------------------------------------------------

    def _client_new(self, conn: ClientConnection) -> None:
        self._connections.add(conn)
        log.debug("client %d connected on %s (peer %s)", conn.id, conn.socket_path, conn.peer)
        self._call_hook("client_connected", conn)

    def _client_gone(self, conn: ClientConnection, exc: BaseException | None) -> None:
        if isinstance(exc, RPCError):
            log.warning("client %d: %s; closing the connection", conn.id, exc)
        conn.close()
        self._connections.discard(conn)
        self._call_hook("client_disconnected", conn)
        if not conn._gone.done():
            conn._gone.set_result(None)
        log.debug("client %d disconnected", conn.id)

    def _call_hook(self, name: str, conn: ClientConnection) -> None:
        """Call an optional handler hook; a coroutine hook runs as a task."""
        hook = getattr(self.handler, name, None)
        if not callable(hook):
            return
        try:
            result = hook(conn)
        except Exception:  # noqa: BLE001 - a hook must not break serving
            log.exception("%s hook failed for client %d", name, conn.id)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_done)

    def _hook_done(self, task: asyncio.Future[Any]) -> None:
        self._hook_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("handler hook failed", exc_info=task.exception())

    async def _keepalive(self, conn: ClientConnection) -> None:
        """Ping a client idle for an interval; close it after ``keepalive_count`` unanswered PINGs.

        Anything the client sends (a PONG, a call) counts as an answer.
        """
        interval = self.keepalive_interval or 0
        ping = encode_packet(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PING,
                             MessageType.MESSAGE, 0, MessageStatus.OK)
        misses = 0
        last_ping = time.monotonic()
        while not conn.closed:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if conn.last_received >= last_ping:  # heard from the client since our last PING
                misses = 0
                if now - conn.last_received < interval:
                    continue
            elif misses >= self.keepalive_count:
                log.warning("client %d: no keepalive response; closing the connection", conn.id)
                conn.close()
                return
            conn.write(ping)
            last_ping = now
            misses += 1

    # -- one packet --------------------------------------------------------------------------

    def _handle_packet(self, conn: ClientConnection, body: bytes) -> None:
        try:
            header = decode_header(body)
        except RPCError as exc:  # the stream is broken: close this client
            conn._protocol.abort(exc)
            return
        if header.program == KEEPALIVE_PROGRAM:
            if header.type == MessageType.MESSAGE and header.procedure == KEEPALIVE_PING:
                conn.write(encode_packet(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION,
                                         KEEPALIVE_PONG, MessageType.MESSAGE, 0,
                                         MessageStatus.OK))
            return
        if header.type not in (MessageType.CALL, MessageType.CALL_WITH_FDS):
            # Clients send streams and messages only for features not implemented yet.
            log.debug("client %d: dropping %s packet for procedure %d", conn.id,
                      MessageType(header.type).name, header.procedure)
            return
        if header.program != self.program or header.version != self.version:
            self._reply_error(conn, header, _rpc_error(
                f"cannot find program {header.program:#x} version {header.version}"))
            return
        entry = self._dispatch.get(header.procedure)
        name = entry.proc.name if entry is not None else procedure_name(header.procedure)
        error = self._refusal(conn, header, entry)
        if error is not None or entry is None:
            assert error is not None
            self._trace(conn, header, name, None, None, error, 0.0)
            self._reply_error(conn, header, error)
            return
        proc = entry.proc
        try:
            args = proc.args.decode(body, HEADER_SIZE)
        except RPCError as exc:
            error = _rpc_error(f"cannot decode the arguments of {name}: {exc}")
            self._trace(conn, header, name, None, None, error, 0.0)
            self._reply_error(conn, header, error)
            return
        method = entry.method
        assert method is not None
        if entry.is_async:
            conn._inflight += 1
            if conn._inflight == self.max_requests:  # read no more calls until one finishes
                conn._protocol.pause()
            conn._spawn(self._run_async(conn, header, proc, method, args))
            return
        start = time.perf_counter()
        try:
            result = method(conn, args)
        except VirtError as exc:
            self._finish(conn, header, proc, args, None, exc, start)
        except Exception as exc:  # noqa: BLE001 - becomes an INTERNAL_ERROR reply
            self._finish(conn, header, proc, args, None, _internal(proc, exc), start)
        else:
            self._finish(conn, header, proc, args, result, None, start)

    def _refusal(self, conn: ClientConnection, header: Header, entry: _Entry | None
                 ) -> VirtError | None:
        """The error refusing this call before decoding it, or None to go ahead."""
        if entry is None:
            return _rpc_error(f"unknown procedure: {header.procedure}", ErrorCode.NO_SUPPORT)
        proc = entry.proc
        if header.type == MessageType.CALL_WITH_FDS:
            return _rpc_error(f"file descriptor passing is not supported ({proc.name})",
                              ErrorCode.NO_SUPPORT)
        if header.status != MessageStatus.OK:
            return _rpc_error(f"call of {proc.name} has status {header.status}, not OK")
        if proc.kind is Kind.EVENT:
            return _rpc_error(f"{proc.name} is an event, not a call", ErrorCode.NO_SUPPORT)
        if proc.needs_open and not conn.opened:
            return _rpc_error("connection not open", ErrorCode.INTERNAL_ERROR)
        if conn.readonly and not proc.readonly:
            return _rpc_error(f"operation forbidden: read only access prevents {proc.name}",
                              ErrorCode.OPERATION_DENIED)
        if proc.kind is Kind.STREAM:
            return _rpc_error(f"streams are not supported yet ({proc.name})",
                              ErrorCode.NO_SUPPORT)
        if entry.method is None:
            return _rpc_error(
                f"this function is not supported by the connection driver: {proc.name}",
                ErrorCode.NO_SUPPORT)
        return None

    async def _run_async(self, conn: ClientConnection, header: Header, proc: Procedure,
                         method: Callable[[ClientConnection, Any], Any], args: Any) -> None:
        start = time.perf_counter()
        try:
            result = await method(conn, args)
        except VirtError as exc:
            self._finish(conn, header, proc, args, None, exc, start)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - becomes an INTERNAL_ERROR reply
            self._finish(conn, header, proc, args, None, _internal(proc, exc), start)
        else:
            self._finish(conn, header, proc, args, result, None, start)
        finally:
            conn._inflight -= 1
            if conn._inflight == self.max_requests - 1:
                conn._protocol.resume()

    def _finish(self, conn: ClientConnection, header: Header, proc: Procedure, args: Any,
                result: Any, error: VirtError | None, start: float) -> None:
        packet = b""
        if error is None:
            try:
                payload = proc.ret.encode(result)
            except RPCError as exc:
                log.error("handler returned an invalid reply for %s: %s", proc.name, exc)
                error = _rpc_error(f"internal error: invalid reply from {proc.name}: {exc}",
                                   ErrorCode.INTERNAL_ERROR)
            else:
                packet = encode_packet(header.program, header.version, header.procedure,
                                       MessageType.REPLY, header.serial, MessageStatus.OK,
                                       payload)
        if self.trace is not None:  # before the reply: whoever sees a reply sees its trace
            self._trace(conn, header, proc.name, args, result, error,
                        time.perf_counter() - start)
        if error is not None:
            self._reply_error(conn, header, error)
        else:
            conn.write(packet)

    def _reply_error(self, conn: ClientConnection, header: Header, error: VirtError) -> None:
        payload = REMOTE_ERROR.encode(error_to_wire(error))
        conn.write(encode_packet(header.program, header.version, header.procedure,
                                 MessageType.REPLY, header.serial, MessageStatus.ERROR, payload))

    def _trace(self, conn: ClientConnection, header: Header, name: str, args: Any, result: Any,
               error: VirtError | None, duration: float) -> None:
        if self.trace is None:
            return
        try:
            self.trace(CallRecord(conn.id, header.serial, header.procedure, name, args,
                                  result, error, duration))
        except Exception:  # noqa: BLE001 - tracing must not break serving
            log.exception("trace callback failed")

    # -- built-in procedures -----------------------------------------------------------------

    async def _delegate(self, name: str, conn: ClientConnection, args: Any) -> Any:
        method = getattr(self.handler, name, None)
        if not callable(method):
            return None
        result = method(conn, args)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _builtin_auth_list(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"types": [int(AuthType.NONE)]}

    async def _builtin_connect_open(self, conn: ClientConnection, args: dict[str, Any]) -> None:
        if conn.opened:
            raise _rpc_error("connection already open", ErrorCode.INTERNAL_ERROR)
        readonly = conn.readonly or bool(args["flags"] & CONNECT_RO)
        conn.uri = args["name"]
        was_readonly, conn.readonly = conn.readonly, readonly
        try:
            await self._delegate("connect_open", conn, args)
        except BaseException:
            conn.readonly = was_readonly
            conn.uri = None
            raise
        conn.opened = True

    async def _builtin_connect_close(self, conn: ClientConnection, args: None) -> None:
        if conn.opened:
            conn.opened = False
            await self._delegate("connect_close", conn, args)

    async def _builtin_connect_supports_feature(self, conn: ClientConnection,
                                                args: dict[str, Any]) -> dict[str, Any]:
        feature = args["feature"]
        if feature == Feature.PROGRAM_KEEPALIVE:  # asked before connect_open
            if not conn.keepalive and self.keepalive_interval:
                conn._spawn(self._keepalive(conn))
            conn.keepalive = True
            return {"supported": 1}
        if not conn.opened:
            raise _rpc_error("connection not open", ErrorCode.INTERNAL_ERROR)
        if feature == Feature.REMOTE_CLOSE_CALLBACK:
            return {"supported": 1}
        if feature == Feature.REMOTE_EVENT_CALLBACK:
            entry = self._dispatch[BY_NAME["connect_domain_event_callback_register_any"].number]
            return {"supported": int(entry.method is not None)}
        if feature == Feature.FD_PASSING:
            return {"supported": 0}
        result = await self._delegate("connect_supports_feature", conn, args)
        return result if result is not None else {"supported": 0}

    async def _builtin_connect_register_close_callback(self, conn: ClientConnection,
                                                       args: None) -> None:
        conn.close_callback = True

    async def _builtin_connect_unregister_close_callback(self, conn: ClientConnection,
                                                         args: None) -> None:
        conn.close_callback = False


def _rpc_error(message: str, code: ErrorCode = ErrorCode.RPC) -> VirtError:
    return VirtError(message, code=code, domain=ErrorDomain.RPC)


def _internal(proc: Procedure, exc: Exception) -> VirtError:
    log.error("handler failed in %s", proc.name, exc_info=exc)
    return VirtError(f"internal error: {type(exc).__name__} in {proc.name}",
                     code=ErrorCode.INTERNAL_ERROR, domain=ErrorDomain.RPC)

