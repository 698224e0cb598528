"""A xenstore client speaking xenstored's wire protocol on its UNIX socket.

xenstored (C ``xenstored`` or OCaml ``oxenstored``; both listen on
``/run/xenstored/socket``) holds Xen's configuration tree: names, UUIDs,
consoles, devices and memory targets of the running domains, and the
``control/shutdown`` node through which a guest is asked to power off.
:class:`XenstoreClient` talks to it directly, with no Xen library
(``xen-protocols.md`` section 2):

- every message is a 16-byte header (``type``, ``req_id``, ``tx_id``,
  ``len``: four native ``uint32``) and at most 4096 bytes of payload;
- replies carry the request's ``req_id`` and may come in any order, watch
  events come unsolicited (type ``XS_WATCH_EVENT``, ``req_id`` 0): one reader
  at a time takes frames off the socket and files each where it belongs, so
  several threads may share a client and many requests may be in flight at
  once (:meth:`XenstoreClient.read_many` sends them all before waiting);
- failures come back as ``XS_ERROR`` with an errno name (``ENOENT``...).

Operations: :meth:`~XenstoreClient.read`, :meth:`~XenstoreClient.write`,
:meth:`~XenstoreClient.directory`, :meth:`~XenstoreClient.mkdir`,
:meth:`~XenstoreClient.rm`, permissions, transactions
(:meth:`~XenstoreClient.transaction`; :meth:`~XenstoreClient.transact`
retries a function on ``EAGAIN``), watches (:meth:`~XenstoreClient.watch`,
:meth:`~XenstoreClient.read_watch`, and :class:`WatchReader`, a thread that
hands every event to a callback). A missing node is ``None`` from
``read``/``directory``/``get_perms`` and ``rm`` ignores it.

Errors (all with domain ``XENSTORE``; every one is also a
:class:`XenstoreError` carrying ``errno_name``, ``op`` and ``path``)::

    ConnectionFailedError       NO_XENSTORE: no socket, refused, not allowed to connect
    XenstoreDeniedError         OPERATION_DENIED: EACCES, EPERM, EROFS
    XenstoreNotFoundError       NO_DOMAIN: ENOENT where absence is an error
    XenstoreInvalidError        INVALID_ARG: EINVAL, a bad path, a payload over 4096 bytes
    XenstoreNoSupportError      NO_SUPPORT: ENOSYS
    XenstoreFailedError         OPERATION_FAILED: any other errno name (ENOSPC, EQUOTA, E2BIG...)
    +-- TransactionConflictError  EAGAIN: a transaction lost a race; run it again
    XenstoreTimeoutError        OPERATION_TIMEOUT: no reply within the timeout
    XenstoreConnectionError     NO_XENSTORE: the daemon closed the connection mid-call
                                (the client is unusable afterwards)
"""

from __future__ import annotations

import collections
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple, TypeVar

from virtkit.errors import (
    ConnectionFailedError,
    ErrorCode,
    ErrorDomain,
    InvalidArgumentError,
    NoDomainError,
    NoSupportError,
    OperationDeniedError,
    OperationFailedError,
    VirtError,
)

__all__ = [
    "XenstoreClient",
    "Transaction",
    "WatchEvent",
    "WatchReader",
    "default_socket",
    "XenstoreError",
    "XenstoreDeniedError",
    "XenstoreNotFoundError",
    "XenstoreInvalidError",
    "XenstoreNoSupportError",
    "XenstoreFailedError",
    "TransactionConflictError",
    "XenstoreTimeoutError",
    "XenstoreConnectionError",
    "PAYLOAD_MAX",
    "DEFAULT_TIMEOUT",
]

T = TypeVar("T")

# Message types (xs_wire.h's enum xsd_sockmsg_type; xen-protocols.md 2.3).
XS_CONTROL = 0
XS_DIRECTORY = 1
XS_READ = 2
XS_GET_PERMS = 3
XS_WATCH = 4
XS_UNWATCH = 5
XS_TRANSACTION_START = 6
XS_TRANSACTION_END = 7
XS_GET_DOMAIN_PATH = 10
XS_WRITE = 11
XS_MKDIR = 12
XS_RM = 13
XS_SET_PERMS = 14
XS_WATCH_EVENT = 15
XS_ERROR = 16
XS_IS_DOMAIN_INTRODUCED = 17
XS_RESET_WATCHES = 21

_NAMES = {
    XS_CONTROL: "CONTROL", XS_DIRECTORY: "DIRECTORY", XS_READ: "READ", XS_GET_PERMS: "GET_PERMS",
    XS_WATCH: "WATCH", XS_UNWATCH: "UNWATCH", XS_TRANSACTION_START: "TRANSACTION_START",
    XS_TRANSACTION_END: "TRANSACTION_END", XS_GET_DOMAIN_PATH: "GET_DOMAIN_PATH",
    XS_WRITE: "WRITE", XS_MKDIR: "MKDIR", XS_RM: "RM", XS_SET_PERMS: "SET_PERMS",
    XS_IS_DOMAIN_INTRODUCED: "IS_DOMAIN_INTRODUCED", XS_RESET_WATCHES: "RESET_WATCHES",
}

#: Largest payload of one message (XENSTORE_PAYLOAD_MAX).
PAYLOAD_MAX = 4096
#: Longest absolute and relative paths (XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX).
ABS_PATH_MAX = 3072
REL_PATH_MAX = 2048
#: Seconds one request may wait for its reply.
DEFAULT_TIMEOUT = 10.0
#: Where xenstored listens today (Xen 3's /var/run/xenstored/socket is the same place).
DEFAULT_SOCKET = "/run/xenstored/socket"

_HEADER = struct.Struct("=IIII")
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-/_@")
_XS = ErrorDomain.XENSTORE


# ====================================================================== errors

class XenstoreError(VirtError):
    """Mixed into every error of this module: which errno name xenstored sent
    (None when the failure was not xenstored's answer), for which request
    type and path."""

    default_domain = _XS

    def __init__(self, message: str, *, errno_name: str | None = None, op: str = "",
                 path: str = "", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.errno_name = errno_name
        self.op = op
        self.path = path


class XenstoreDeniedError(XenstoreError, OperationDeniedError):
    """EACCES, EPERM, EROFS: the caller may not do that."""


class XenstoreNotFoundError(XenstoreError, NoDomainError):
    """ENOENT from an operation whose node must exist (the domain it belongs to went away)."""


class XenstoreInvalidError(XenstoreError, InvalidArgumentError):
    """EINVAL, or a path or payload refused before sending."""


class XenstoreNoSupportError(XenstoreError, NoSupportError):
    """ENOSYS: this xenstored does not implement the request."""


class XenstoreFailedError(XenstoreError, OperationFailedError):
    """Any other error xenstored answered."""


class TransactionConflictError(XenstoreFailedError):
    """EAGAIN on a transaction's end: another writer changed what it read."""


class XenstoreTimeoutError(XenstoreError, OperationFailedError):
    """No reply within the timeout."""

    default_code = ErrorCode.OPERATION_TIMEOUT


class XenstoreConnectionError(XenstoreError, OperationFailedError):
    """The connection broke; this client cannot be used any more."""

    default_code = ErrorCode.NO_XENSTORE


_ERRNO_CLASSES: dict[str, type[XenstoreError]] = {
    "EACCES": XenstoreDeniedError, "EPERM": XenstoreDeniedError, "EROFS": XenstoreDeniedError,
    "ENOENT": XenstoreNotFoundError, "EINVAL": XenstoreInvalidError,
    "ENOSYS": XenstoreNoSupportError, "EAGAIN": TransactionConflictError,
}


def xenstore_error(errno_name: str, op: str, path: str) -> XenstoreError:
    """The error for an ``XS_ERROR`` reply naming ``errno_name`` to ``op`` on ``path``."""
    cls = _ERRNO_CLASSES.get(errno_name, XenstoreFailedError)
    where = f" {path}" if path else ""
    return cls(f"xenstore refused {op}{where}: {errno_name}", errno_name=errno_name, op=op,
               path=path)


# ====================================================================== client

class WatchEvent(NamedTuple):
    """A watch fired: the node that changed (or the watched path itself when the
    watch was set) and the token given to :meth:`XenstoreClient.watch`."""

    path: str
    token: str


def default_socket() -> str:
    """xenstored's socket: ``$XENSTORED_PATH``, else ``$XENSTORED_RUNDIR/socket``,
    else ``/run/xenstored/socket`` (libxenstore's own search)."""
    path = os.environ.get("XENSTORED_PATH")
    if path:
        return path
    rundir = os.environ.get("XENSTORED_RUNDIR")
    if rundir:
        return os.path.join(rundir, "socket")
    return DEFAULT_SOCKET


def check_path(path: str) -> str:
    """``path`` if xenstore accepts it (ASCII letters, digits and ``-/_@``, a
    length limit, no empty component); XenstoreInvalidError otherwise."""
    limit = ABS_PATH_MAX if path.startswith("/") else REL_PATH_MAX
    bad = (not path or len(path) > limit or not _PATH_CHARS.issuperset(path)
           or (path != "/" and path.endswith("/")) or "//" in path)
    if bad and not (path.startswith("@") and "/" not in path):
        raise XenstoreInvalidError(f"{path!r} is not a valid xenstore path", path=path)
    return path


class XenstoreClient:
    """One connection to xenstored (see the module docstring).

    ``path`` is the socket (default: :func:`default_socket`); ``timeout`` the
    seconds each request may wait for its reply. Raises ConnectionFailedError
    (code NO_XENSTORE) when the socket cannot be connected. Thread-safe; a
    context manager closing the connection.
    """

    def __init__(self, path: str | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.path = path or default_socket()
        self.timeout = timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise ConnectionFailedError(f"cannot connect to xenstored at {self.path}: "
                                        f"{e.strerror or e}", code=ErrorCode.NO_XENSTORE,
                                        domain=_XS) from None
        self._sock = sock
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._next_id = 1
        self._waiting: set[int] = set()
        self._replies: dict[int, tuple[int, bytes]] = {}
        self._events: collections.deque[WatchEvent] = collections.deque()
        self._reading = False
        self._buf = bytearray()
        self._broken: XenstoreConnectionError | None = None
        self._closed = False

    # --- life cycle ------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). Watches set through it end with it."""
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        with self._cond:
            if self._broken is None:
                self._broken = XenstoreConnectionError("the xenstore connection is closed")
            self._cond.notify_all()

    def __enter__(self) -> XenstoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"XenstoreClient({self.path!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    def fileno(self) -> int:
        """The connection's socket descriptor, for ``select``/``poll``: readable
        when xenstored has sent something (a watch event, a reply) that no
        call has taken yet. Read through the client only (:meth:`read_watch`)."""
        return self._sock.fileno()

    # --- wire -------------------------------------------------------------------------

    def _send(self, type_: int, payload: bytes, tx: int, path: str) -> int:
        op = _NAMES.get(type_, str(type_))
        if len(payload) > PAYLOAD_MAX:
            raise XenstoreInvalidError(
                f"xenstore {op} of {path or '?'}: {len(payload)} bytes is over the protocol's "
                f"{PAYLOAD_MAX}", errno_name="E2BIG", op=op, path=path)
        with self._send_lock:
            if self._broken is not None:
                raise self._broken
            rid = self._next_id
            self._next_id = rid + 1 if rid < 0xFFFFFFFF else 1
            with self._cond:
                self._waiting.add(rid)
            try:
                self._sock.sendall(_HEADER.pack(type_, rid, tx, len(payload)) + payload)
            except OSError as e:
                with self._cond:
                    self._waiting.discard(rid)
                raise self._break(f"cannot send to xenstored: {e.strerror or e}") from None
        return rid

    def _break(self, message: str) -> XenstoreConnectionError:
        err = XenstoreConnectionError(f"{message} ({self.path})")
        with self._cond:
            if self._broken is None:
                self._broken = err
            self._cond.notify_all()
        return self._broken

    def _frame(self) -> tuple[int, int, int, bytes] | None:
        """One complete frame off the buffer, if there is one (reader only)."""
        buf = self._buf
        if len(buf) < 16:
            return None
        type_, rid, tx, length = _HEADER.unpack_from(buf)
        if length > PAYLOAD_MAX * 4:
            raise self._break(f"xenstored sent a frame of {length} bytes")
        if len(buf) < 16 + length:
            return None
        payload = bytes(buf[16:16 + length])
        del buf[:16 + length]
        return type_, rid, tx, payload

    def _file(self, frame: tuple[int, int, int, bytes]) -> None:
        """Put a frame where its reader finds it (under the condition)."""
        type_, rid, _tx, payload = frame
        if type_ == XS_WATCH_EVENT:
            parts = payload.split(b"\0")
            if len(parts) >= 2:
                self._events.append(WatchEvent(parts[0].decode("ascii", "replace"),
                                               parts[1].decode("ascii", "replace")))
        elif rid in self._waiting:
            self._replies[rid] = (type_, payload)

    def _pump(self, take: Callable[[], T | None], deadline: float) -> T | None:
        """Wait until ``take()`` (called under the condition) returns something,
        reading the socket when no other thread is; None at the deadline."""
        cond = self._cond
        with cond:
            while True:
                got = take()
                if got is not None:
                    return got
                if self._broken is not None:
                    raise self._broken
                if not self._reading:
                    self._reading = True
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                cond.wait(remaining)
        try:
            while True:
                frame = self._frame()
                if frame is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    try:
                        ready, _, _ = select.select([self._sock], [], [], remaining)
                        if not ready:
                            continue
                        data = self._sock.recv(65536)
                    except (OSError, ValueError) as e:
                        if self._closed:
                            raise self._break("the xenstore connection is closed") from None
                        raise self._break(f"cannot read from xenstored: {e}") from None
                    if not data:
                        raise self._break("xenstored closed the connection")
                    self._buf += data
                    continue
                with cond:
                    self._file(frame)
                    got = take()
                    if got is not None:
                        return got
                    cond.notify_all()
        finally:
            with cond:
                self._reading = False
                cond.notify_all()

    def _reply(self, rid: int, type_: int, path: str, deadline: float) -> bytes:
        def take() -> tuple[int, bytes] | None:
            return self._replies.pop(rid, None)

        try:
            got = self._pump(take, deadline)
        finally:
            with self._cond:
                self._waiting.discard(rid)
                self._replies.pop(rid, None)
        op = _NAMES.get(type_, str(type_))
        if got is None:
            raise XenstoreTimeoutError(
                f"xenstored did not answer {op} {path} within {self.timeout:g} s",
                op=op, path=path)
        rtype, payload = got
        if rtype == XS_ERROR:
            raise xenstore_error(payload.rstrip(b"\0").decode("ascii", "replace"), op, path)
        if rtype != type_:
            raise XenstoreFailedError(f"xenstored answered {op} {path} with message type {rtype}",
                                      op=op, path=path)
        return payload

    def request(self, type_: int, payload: bytes, *, tx: int = 0, path: str = "") -> bytes:
        """Send one request and return its reply's payload (raises this module's errors)."""
        rid = self._send(type_, payload, tx, path)
        return self._reply(rid, type_, path, time.monotonic() + self.timeout)

    def _many(self, type_: int, paths: Sequence[str], tx: int) -> list[bytes | None]:
        """The same request for many paths, all sent before the first reply is
        awaited; None for each ENOENT."""
        rids = [self._send(type_, check_path(p).encode() + b"\0", tx, p) for p in paths]
        deadline = time.monotonic() + self.timeout
        out: list[bytes | None] = []
        failure: VirtError | None = None
        for rid, p in zip(rids, paths):
            try:
                out.append(self._reply(rid, type_, p, deadline) if failure is None else None)
            except XenstoreNotFoundError:
                out.append(None)
            except VirtError as e:  # keep collecting: the rest must be taken off the wire
                failure = e
                out.append(None)
            if failure is not None:
                with self._cond:
                    self._waiting.discard(rid)
        if failure is not None:
            with self._cond:
                for rid in rids:
                    self._waiting.discard(rid)
                    self._replies.pop(rid, None)
            raise failure
        return out

    # --- operations -------------------------------------------------------------------

    def read(self, path: str, *, tx: int = 0) -> bytes | None:
        """The node's value (raw bytes), or None when the node does not exist."""
        try:
            return self.request(XS_READ, check_path(path).encode() + b"\0", tx=tx, path=path)
        except XenstoreNotFoundError:
            return None

    def read_text(self, path: str, *, tx: int = 0) -> str | None:
        """:meth:`read` decoded as UTF-8 (undecodable bytes replaced)."""
        value = self.read(path, tx=tx)
        return None if value is None else value.decode("utf-8", "replace")

    def read_many(self, paths: Sequence[str], *, tx: int = 0) -> list[bytes | None]:
        """The values of many nodes (None for each missing one), in one round of
        requests: all are sent before any reply is awaited."""
        return self._many(XS_READ, paths, tx)

    def directory(self, path: str, *, tx: int = 0) -> list[str] | None:
        """The names of the node's children, or None when the node does not exist."""
        try:
            payload = self.request(XS_DIRECTORY, check_path(path).encode() + b"\0", tx=tx,
                                   path=path)
        except XenstoreNotFoundError:
            return None
        return _strings(payload)

    def directory_many(self, paths: Sequence[str], *, tx: int = 0) -> list[list[str] | None]:
        """The children of many nodes in one round of requests (None for each missing one)."""
        return [None if p is None else _strings(p) for p in self._many(XS_DIRECTORY, paths, tx)]

    def write(self, path: str, value: bytes | str, *, tx: int = 0) -> None:
        """Set the node's value, creating it and any missing parents."""
        data = value.encode() if isinstance(value, str) else value
        self.request(XS_WRITE, check_path(path).encode() + b"\0" + data, tx=tx, path=path)

    def mkdir(self, path: str, *, tx: int = 0) -> None:
        """Create the node (empty value) unless it exists."""
        self.request(XS_MKDIR, check_path(path).encode() + b"\0", tx=tx, path=path)

    def rm(self, path: str, *, tx: int = 0, missing_ok: bool = True) -> None:
        """Remove the node and everything under it; a missing node is not an
        error unless ``missing_ok`` is False."""
        try:
            self.request(XS_RM, check_path(path).encode() + b"\0", tx=tx, path=path)
        except XenstoreNotFoundError:
            if not missing_ok:
                raise

    def get_perms(self, path: str, *, tx: int = 0) -> list[str] | None:
        """The node's permissions (``n0``, ``r5``...: owner first), None when missing."""
        try:
            payload = self.request(XS_GET_PERMS, check_path(path).encode() + b"\0", tx=tx,
                                   path=path)
        except XenstoreNotFoundError:
            return None
        return _strings(payload)

    def set_perms(self, path: str, perms: Iterable[str], *, tx: int = 0) -> None:
        """Set the node's permissions: the owner's entry first (``n0``), then one per domain."""
        items = list(perms)
        for p in items:
            if len(p) < 2 or p[0] not in "nrwb" or not p[1:].isdigit():
                raise XenstoreInvalidError(f"{p!r} is not a xenstore permission (n0, r5, w5, b5)",
                                           path=path)
        body = check_path(path).encode() + b"\0" + b"".join(p.encode() + b"\0" for p in items)
        self.request(XS_SET_PERMS, body, tx=tx, path=path)

    def get_domain_path(self, domid: int) -> str:
        """The home of domain ``domid`` (``/local/domain/DOMID``)."""
        payload = self.request(XS_GET_DOMAIN_PATH, f"{domid}\0".encode(), path=str(domid))
        return payload.rstrip(b"\0").decode("ascii", "replace")

    # --- transactions -----------------------------------------------------------------

    def transaction(self) -> Transaction:
        """Start a transaction. As a context manager it commits when the block
        ends normally (TransactionConflictError when it lost a race) and aborts
        when the block raises."""
        payload = self.request(XS_TRANSACTION_START, b"\0", path="")
        try:
            tx = int(payload.rstrip(b"\0"))
        except ValueError:
            raise XenstoreFailedError(f"xenstored started a transaction with id {payload!r}",
                                      op="TRANSACTION_START") from None
        return Transaction(self, tx)

    def transact(self, fn: Callable[[Transaction], T], *, attempts: int = 20) -> T:
        """Run ``fn(tx)`` in a transaction and commit; on a conflict (EAGAIN) run it
        again in a new one, up to ``attempts`` times. An exception from ``fn``
        aborts the transaction and propagates."""
        for attempt in range(attempts):
            tx = self.transaction()
            try:
                result = fn(tx)
            except BaseException:
                tx.abort()
                raise
            try:
                tx.commit()
            except TransactionConflictError:
                time.sleep(min(0.001 * 2 ** attempt, 0.05))
                continue
            return result
        raise TransactionConflictError(
            f"a xenstore transaction conflicted {attempts} times in a row", errno_name="EAGAIN",
            op="TRANSACTION_END")

    # --- watches ----------------------------------------------------------------------

    def watch(self, path: str, token: str) -> None:
        """Watch ``path`` and everything under it (or a special path such as
        ``@releaseDomain``). xenstored fires the watch once at once, then on every
        change; events come from :meth:`read_watch`."""
        self._check_token(token)
        self.request(XS_WATCH, check_path(path).encode() + b"\0" + token.encode() + b"\0",
                     path=path)

    def unwatch(self, path: str, token: str) -> None:
        """Remove a watch set by :meth:`watch` (events already queued stay)."""
        self._check_token(token)
        self.request(XS_UNWATCH, check_path(path).encode() + b"\0" + token.encode() + b"\0",
                     path=path)

    @staticmethod
    def _check_token(token: str) -> None:
        if not token or "\0" in token or not token.isascii():
            raise XenstoreInvalidError(f"{token!r} is not a watch token (ASCII, no NUL)")

    def read_watch(self, timeout: float | None = None) -> WatchEvent | None:
        """The next watch event, waiting up to ``timeout`` seconds (None: forever);
        None when none came."""
        def take() -> WatchEvent | None:
            return self._events.popleft() if self._events else None

        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        return self._pump(take, deadline)

    def pending_events(self) -> int:
        """How many watch events are queued (taken off the socket, not yet read)."""
        return len(self._events)  # one atomic read of the deque: no lock needed


def _strings(payload: bytes) -> list[str]:
    return [s.decode("utf-8", "replace") for s in payload.split(b"\0") if s]


class Transaction:
    """A xenstore transaction: the client's operations, inside it.

    Reads see the tree as it was when the transaction started plus its own
    writes; :meth:`commit` applies them all at once or raises
    TransactionConflictError (xenstored's EAGAIN) when another writer touched
    what it used. Use it through :meth:`XenstoreClient.transaction` or
    :meth:`XenstoreClient.transact`.
    """

    def __init__(self, client: XenstoreClient, tx_id: int) -> None:
        self.client = client
        self.id = tx_id
        self.done = False

    def read(self, path: str) -> bytes | None:
        return self.client.read(path, tx=self.id)

    def read_text(self, path: str) -> str | None:
        return self.client.read_text(path, tx=self.id)

    def read_many(self, paths: Sequence[str]) -> list[bytes | None]:
        return self.client.read_many(paths, tx=self.id)

    def directory(self, path: str) -> list[str] | None:
        return self.client.directory(path, tx=self.id)

    def write(self, path: str, value: bytes | str) -> None:
        self.client.write(path, value, tx=self.id)

    def mkdir(self, path: str) -> None:
        self.client.mkdir(path, tx=self.id)

    def rm(self, path: str, *, missing_ok: bool = True) -> None:
        self.client.rm(path, tx=self.id, missing_ok=missing_ok)

    def get_perms(self, path: str) -> list[str] | None:
        return self.client.get_perms(path, tx=self.id)

    def set_perms(self, path: str, perms: Iterable[str]) -> None:
        self.client.set_perms(path, perms, tx=self.id)

    def _end(self, commit: bool) -> None:
        if self.done:
            return
        self.done = True
        self.client.request(XS_TRANSACTION_END, b"T\0" if commit else b"F\0", tx=self.id,
                            path="")

    def commit(self) -> None:
        """Apply the transaction's writes; TransactionConflictError on EAGAIN."""
        self._end(True)

    def abort(self) -> None:
        """Drop the transaction's writes (never raises for a broken connection)."""
        try:
            self._end(False)
        except XenstoreError:
            pass

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class WatchReader:
    """A thread handing every watch event of a client to ``callback(event)``.

    The client stays usable by other threads meanwhile (whichever thread reads
    the socket files replies and events where they belong). :meth:`stop` ends
    the thread; a callback that raises is logged and the thread goes on.
    """

    def __init__(self, client: XenstoreClient, callback: Callable[[WatchEvent], None], *,
                 name: str = "xenstore-watch") -> None:
        self.client = client
        self.callback = callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import logging

        log = logging.getLogger("virtkit.xen.xenstore")
        while not self._stop.is_set():
            try:
                event = self.client.read_watch(timeout=0.2)
            except XenstoreError:
                return  # connection closed or broken: nothing more will come
            if event is None:
                continue
            try:
                self.callback(event)
            except Exception:  # noqa: BLE001 - a callback's bug must not end the reader
                log.exception("xenstore watch callback failed for %s", event)

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread and wait for it (up to ``timeout`` seconds)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> WatchReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def watching(client: XenstoreClient, path: str, token: str) -> Iterator[None]:
    """Watch ``path`` for the duration of a ``with`` block."""
    client.watch(path, token)
    try:
        yield
    finally:
        try:
            client.unwatch(path, token)
        except XenstoreError:
            pass
