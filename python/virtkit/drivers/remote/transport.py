"""Packet framing over a byte stream, apart from any procedure.

Every packet is a 4-byte big-endian length (counting itself) followed by
that many bytes minus four: the 24-byte header and the payload (see
:mod:`virtkit.drivers.remote.protocol`). This module only moves such packets:

- :class:`PacketProtocol`: the asyncio side as a protocol calling back once
  per packet (what the server uses: the fastest way asyncio offers), and
  :func:`read_packet` / :func:`write_packet` for code that prefers a
  ``StreamReader``/``StreamWriter`` pair;
- :class:`BlockingChannel`: a blocking client over any connected stream socket
  (``connect_unix`` builds one on a UNIX socket). It numbers calls, matches
  replies by serial, answers the server's keepalive PINGs with PONGs and hands
  every other asynchronous MESSAGE (events) to a callback;
- :func:`bind_unix_listener`: a listening UNIX socket with a given mode.

TCP, TLS or SSH later only need a different byte stream: the channel works on
any object with ``sendall``, ``recv_into``, ``settimeout`` and ``close`` (a plain or an
``ssl``-wrapped socket), the asyncio side on any stream pair.

A length word below the header size or above 4 + :data:`MESSAGE_MAX` (libvirt's
32 MiB) is a protocol error: the reader raises RPCError and the connection
must be closed, since the stream can no longer be resynchronised.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
from typing import Protocol

from virtkit.drivers.remote.protocol import (
    HEADER_SIZE,
    KEEPALIVE_PING,
    KEEPALIVE_PROGRAM,
    KEEPALIVE_PROTOCOL_VERSION,
    KEEPALIVE_PONG,
    LENGTH_SIZE,
    MESSAGE_MAX,
    Header,
    MessageStatus,
    MessageType,
    decode_header,
    encode_packet,
)
from virtkit.errors import RPCError

__all__ = [
    "read_packet",
    "write_packet",
    "PacketProtocol",
    "PacketSink",
    "FrameBuffer",
    "check_length",
    "BlockingChannel",
    "SocketLike",
    "bind_unix_listener",
]

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
_MIN_LENGTH = LENGTH_SIZE + HEADER_SIZE

#: Called with the header and body (header included) of each asynchronous MESSAGE.
MessageCallback = Callable[[Header, bytes], None]


def check_length(length: int, max_message: int = MESSAGE_MAX) -> int:
    """Validate a length word; returns the number of bytes that follow it."""
    if length < _MIN_LENGTH:
        raise RPCError(f"packet length {length} is shorter than a header")
    if length > LENGTH_SIZE + max_message:
        raise RPCError(f"packet length {length} exceeds the maximum of "
                       f"{LENGTH_SIZE + max_message}")
    return length - LENGTH_SIZE


# --- asyncio side ---------------------------------------------------------------------------


async def read_packet(reader: asyncio.StreamReader, max_message: int = MESSAGE_MAX
                      ) -> bytes | None:
    """The next packet's body (header + payload, without the length word).

    Returns None at a clean end of stream (between packets); raises RPCError
    for a bad length word or a stream that ends inside a packet.
    """
    try:
        prefix = await reader.readexactly(LENGTH_SIZE)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise RPCError("connection closed in the middle of a packet length") from None
    size = check_length(_LENGTH.unpack(prefix)[0], max_message)
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise RPCError(f"connection closed after {len(exc.partial)} of {size} "
                       f"packet bytes") from None


def write_packet(writer: asyncio.StreamWriter, packet: bytes) -> None:
    """Queue a whole packet (as built by ``protocol.encode_packet``) for sending."""
    writer.write(packet)


class PacketSink(Protocol):
    """Receives what a :class:`PacketProtocol` frames."""

    def packet_received(self, body: bytes) -> None:
        """One packet's body (header + payload)."""

    def connection_closed(self, exc: BaseException | None) -> None:
        """The stream ended (``exc`` None for a clean end of stream)."""


class FrameBuffer:
    """A reusable receive buffer that cuts a byte stream into packets.

    Bytes are received straight into it (``recv_into`` / asyncio's buffered
    protocols), so no buffer is allocated per read; each complete packet is
    copied out once, as the ``bytes`` body handed to the decoder.
    """

    __slots__ = ("_buf", "_start", "_end", "_initial", "max_message")

    def __init__(self, max_message: int = MESSAGE_MAX, initial: int = 65536) -> None:
        self.max_message = max_message
        self._initial = initial
        self._buf = bytearray(initial)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        """Bytes received but not yet returned as packets."""
        return self._end - self._start

    def writable(self) -> memoryview:
        """Free space to receive into; room for the whole pending packet when its length is known."""
        buf, start, end = self._buf, self._start, self._end
        if start == end and len(buf) > 4 * self._initial:  # drop the room a huge packet took
            buf = self._buf = bytearray(self._initial)
            start = end = self._start = self._end = 0
        need = 4096
        if end - start >= LENGTH_SIZE:
            need = max(need, check_length(_LENGTH.unpack_from(buf, start)[0],
                                          self.max_message) + LENGTH_SIZE - (end - start))
        if len(buf) - end < need:
            pending = end - start
            size = max(len(buf), pending + need)
            fresh = bytearray(size) if size > len(buf) else buf
            fresh[:pending] = buf[start:end]  # same-size copy: safe while a view exists
            self._buf, self._start, self._end = fresh, 0, pending
            end = pending
        return memoryview(self._buf)[end:]

    def commit(self, nbytes: int) -> None:
        """``nbytes`` were written at the start of the last :meth:`writable` view."""
        self._end += nbytes

    def next_packet(self) -> bytes | None:
        """The next complete packet's body (without its length word), or None."""
        start, end = self._start, self._end
        if end - start < LENGTH_SIZE:
            return None
        buf = self._buf
        size = check_length(_LENGTH.unpack_from(buf, start)[0], self.max_message) + LENGTH_SIZE
        if end - start < size:
            return None
        body = bytes(buf[start + LENGTH_SIZE:start + size])
        start += size
        if start == end:
            self._start = self._end = 0
        else:
            self._start = start
        return body

    def clear(self) -> None:
        """Forget everything received."""
        self._start = self._end = 0


class PacketProtocol(asyncio.BufferedProtocol):
    """Frames packets from an asyncio transport without a coroutine per packet.

    The callback style (one event-loop iteration per packet, data received
    straight into a reused :class:`FrameBuffer`) is what the server uses: with
    ``StreamReader`` every packet costs two loop iterations (data arrives,
    then the reading task wakes) and a fresh 256 KiB read buffer.
    ``sink.packet_received`` is called for each complete packet, in order; a
    bad length word closes the transport and reports RPCError to
    ``sink.connection_closed``. Reading pauses while the peer does not read
    our replies (the transport's write buffer is full) or while :meth:`pause`
    is in effect.
    """

    def __init__(self, max_message: int = MESSAGE_MAX) -> None:
        self.sink: PacketSink | None = None
        self.transport: asyncio.Transport | None = None
        self._frames = FrameBuffer(max_message)
        self._pauses = 0
        self._error: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            return self._frames.writable()
        except RPCError as exc:  # a bad length word: nothing more will be read
            self.abort(exc)
            self._frames.clear()
            return memoryview(bytearray(4096))

    def buffer_updated(self, nbytes: int) -> None:
        frames = self._frames
        frames.commit(nbytes)
        sink = self.sink
        try:
            while self._error is None and sink is not None:
                body = frames.next_packet()
                if body is None:
                    break
                sink.packet_received(body)
        except RPCError as exc:
            self.abort(exc)

    def abort(self, exc: BaseException) -> None:
        """Stop on a protocol error: close the transport and report ``exc``."""
        if self._error is None:
            self._error = exc
            if self.transport is not None:
                self.transport.close()

    def write(self, packet: bytes) -> None:
        """Queue a whole packet for sending (dropped once the transport is closing)."""
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(packet)

    def pause(self) -> None:
        """Stop reading until a matching :meth:`resume` (nested calls count)."""
        self._pauses += 1
        if self._pauses == 1 and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume(self) -> None:
        """Undo one :meth:`pause`."""
        self._pauses -= 1
        if self._pauses == 0 and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def pause_writing(self) -> None:
        self.pause()

    def resume_writing(self) -> None:
        self.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sink is not None:
            self.sink.connection_closed(self._error if self._error is not None else exc)


# --- blocking client side -------------------------------------------------------------------


class SocketLike(Protocol):
    """What :class:`BlockingChannel` needs from its byte stream."""

    def sendall(self, data: bytes, /) -> None: ...

    def recv_into(self, buffer: memoryview, /) -> int: ...

    def settimeout(self, value: float | None, /) -> None: ...

    def close(self) -> None: ...


class BlockingChannel:
    """A blocking client connection carrying calls, replies and messages.

    Thread-safe: calls from several threads are serialised. ``on_message`` is
    called, in the thread that happens to be reading, for every MESSAGE that
    is not keepalive (events); keepalive PINGs are answered with PONGs.
    """

    def __init__(self, sock: SocketLike, *, on_message: MessageCallback | None = None,
                 max_message: int = MESSAGE_MAX) -> None:
        self._sock = sock
        self._frames = FrameBuffer(max_message)
        self._serial = 0
        self._lock = threading.RLock()
        self._closed = False
        self._timeout: float | None = -1.0  # unknown: set on first use
        self.on_message = on_message
        self.max_message = max_message
        #: PONGs received (a server answering our :meth:`ping`).
        self.pongs = 0

    @classmethod
    def connect_unix(cls, path: str | os.PathLike[str], *, timeout: float | None = None,
                     on_message: MessageCallback | None = None) -> BlockingChannel:
        """Connect to the UNIX socket at ``path``; RPCError when that fails."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(os.fspath(path))
        except OSError as exc:
            sock.close()
            raise RPCError(f"cannot connect to {os.fspath(path)!r}: {exc.strerror or exc}"
                           ) from exc
        return cls(sock, on_message=on_message)

    # -- sending -----------------------------------------------------------------------------

    def next_serial(self) -> int:
        """A fresh serial number for a call."""
        with self._lock:
            self._serial = (self._serial + 1) & 0xFFFFFFFF
            return self._serial

    def _use_timeout(self, timeout: float | None) -> None:
        if timeout != self._timeout:  # settimeout costs two fcntl calls: only when it changes
            self._sock.settimeout(timeout)
            self._timeout = timeout

    def send(self, packet: bytes, timeout: float | None = None) -> None:
        """Send a whole packet (length word included)."""
        if self._closed:
            raise RPCError("the connection is closed")
        try:
            self._use_timeout(timeout)
            self._sock.sendall(packet)
        except TimeoutError:
            self._fail()
            raise RPCError("timed out sending to the daemon") from None
        except OSError as exc:
            self._fail()
            raise RPCError(f"cannot send to the daemon: {exc}") from exc

    def ping(self) -> None:
        """Send a keepalive PING (the answering PONG is counted in :attr:`pongs`)."""
        self.send(encode_packet(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION, KEEPALIVE_PING,
                                MessageType.MESSAGE, 0, MessageStatus.OK))

    # -- calls -------------------------------------------------------------------------------

    def call(self, program: int, version: int, procedure: int, payload: bytes,
             timeout: float | None = None) -> tuple[Header, bytes]:
        """Send a CALL and return the REPLY's header and body (payload at offset 24).

        Messages arriving meanwhile are dispatched as described above. Raises
        RPCError when the connection fails, times out or breaks the protocol.
        """
        with self._lock:
            serial = self.next_serial()
            self.send(encode_packet(program, version, procedure, MessageType.CALL, serial,
                                    MessageStatus.OK, payload), timeout)
            while True:
                body = self._read_packet(timeout)
                header = decode_header(body)
                if header.type == MessageType.REPLY and header.serial == serial:
                    if header.program != program or header.procedure != procedure:
                        self._fail()
                        raise RPCError(
                            f"reply for serial {serial} is for program {header.program:#x} "
                            f"procedure {header.procedure}, expected {program:#x} "
                            f"procedure {procedure}")
                    return header, body
                self._dispatch_async(header, body)

    def poll(self, timeout: float | None = 0.0) -> int:
        """Handle messages already sent by the server, waiting up to ``timeout`` for one.

        Returns how many packets were handled. Use it to receive events while
        not calling.
        """
        handled = 0
        with self._lock:
            wait = timeout
            while True:
                try:
                    body = self._read_packet(wait, idle_ok=True)
                except TimeoutError:
                    return handled
                self._dispatch_async(decode_header(body), body)
                handled += 1
                wait = 0.0

    def _dispatch_async(self, header: Header, body: bytes) -> None:
        """Handle a packet that is not the awaited reply."""
        if header.program == KEEPALIVE_PROGRAM:
            if header.procedure == KEEPALIVE_PING:
                self.send(encode_packet(KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION,
                                        KEEPALIVE_PONG, MessageType.MESSAGE, 0,
                                        MessageStatus.OK))
            elif header.procedure == KEEPALIVE_PONG:
                self.pongs += 1
            return
        if header.type == MessageType.MESSAGE:
            if self.on_message is not None:
                try:
                    self.on_message(header, body)
                except Exception:  # noqa: BLE001 - a callback must not break the channel
                    log.exception("message callback failed for procedure %d", header.procedure)
            return
        log.debug("dropping unexpected packet %s", header)

    # -- receiving ---------------------------------------------------------------------------

    def _read_packet(self, timeout: float | None, idle_ok: bool = False) -> bytes:
        frames = self._frames
        self._use_timeout(timeout)
        recv_into = self._sock.recv_into
        while True:
            try:
                body = frames.next_packet()
            except RPCError:
                self._fail()
                raise
            if body is not None:
                return body
            try:
                view = frames.writable()
                nbytes = recv_into(view)
                view.release()
            except RPCError:
                self._fail()
                raise
            except (TimeoutError, BlockingIOError):
                if idle_ok:  # nothing (more) arrived in time; keep what we have
                    raise TimeoutError from None
                self._fail()
                raise RPCError("timed out waiting for the daemon") from None
            except OSError as exc:
                self._fail()
                raise RPCError(f"cannot read from the daemon: {exc}") from exc
            if not nbytes:
                self._fail()
                raise RPCError("connection closed by the daemon")
            frames.commit(nbytes)

    # -- lifetime ----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by :meth:`close` or a failure)."""
        return self._closed

    def _fail(self) -> None:
        """A broken stream cannot be resynchronised: close it."""
        self._closed = True
        try:
            self._sock.close()
        except OSError:
            pass

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._fail()


# --- listening sockets ----------------------------------------------------------------------


def bind_unix_listener(path: str | os.PathLike[str], mode: int, backlog: int = 128
                       ) -> socket.socket:
    """A listening UNIX socket at ``path`` whose file has permissions ``mode``.

    The mode is set before ``listen()``, so no client can connect through a
    more permissive file. A stale socket file (nobody listening) is replaced;
    a live one raises RPCError (address in use).
    """
    path = os.fspath(path)
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, mode)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise RPCError(f"cannot listen on {path!r}: {exc.strerror or exc}") from exc
    return sock


def _remove_stale_socket(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise RPCError(f"cannot listen on {path!r}: a file that is not a socket is there")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            os.unlink(path)
            return
        raise RPCError(f"cannot listen on {path!r}: {exc.strerror or exc}") from exc
    finally:
        probe.close()
    raise RPCError(f"cannot listen on {path!r}: another server is listening there")
