"""The xend client: HTTP over a UNIX socket or TCP, S-expression replies.

xend (Xen 3.0 to 4.4) serves ``/xend/node/`` and ``/xend/domain/...`` over
HTTP on the UNIX socket ``/var/lib/xend/xend-socket`` and on TCP port 8000.
Each call of :class:`XendClient` is one request on one connection, as libvirt
made them (``xen-protocols.md`` section 1): ``GET`` with a query, or
``POST`` with a form-encoded body whose first field is ``op=NAME``; no
``User-Agent`` and no ``Accept`` header, so xend answers in S-expression form
(``application/sxp``). Replies are parsed by the Rust core.

Errors (all with domain ``XEND``)::

    ConnectionFailedError   xend cannot be reached (refused, no socket, no host)
    OperationFailedError    OPERATION_TIMEOUT: no complete reply within the timeout
                            HTTP_ERROR: an unexpected status or a malformed reply
                            GET_FAILED / POST_FAILED: xend's own error (xend.err)
    NoDomainError           404, or xend.err naming an unknown domain
    DomainExistsError       xend.err: a domain of that name or UUID exists
    VirtSystemError         xend.err carrying an OS error ([Errno N] ...)
    NoSupportError          501: xend does not implement the operation
    SExprSyntaxError        the reply body is not one well-formed S-expression

A reply larger than ``max_reply`` bytes (64 MiB by default; 500 domains
take about 1 MB) is refused rather than read.
"""

from __future__ import annotations

import errno as _errno
import re
import socket
import time
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from virtkit import _lazy_re as lazy_re
from virtkit import sexpr
from virtkit.errors import (
    ConnectionFailedError,
    DomainExistsError,
    ErrorCode,
    ErrorDomain,
    NoDomainError,
    NoSupportError,
    OperationFailedError,
    VirtError,
    VirtSystemError,
)

__all__ = ["XendClient", "XendReply", "DEFAULT_SOCKET", "DEFAULT_PORT", "domain_path"]

#: xend's UNIX socket.
DEFAULT_SOCKET = "/var/lib/xend/xend-socket"
#: xend's TCP port.
DEFAULT_PORT = 8000
#: Seconds a request may take, connect to last byte.
DEFAULT_TIMEOUT = 30.0
#: Largest reply read.
DEFAULT_MAX_REPLY = 64 * 1024 * 1024

_XEND = ErrorDomain.XEND
_STATUS = lazy_re.compile(rb"HTTP/1\.[01] (\d{3})")
_ERRNO = lazy_re.compile(r"\[Errno (\d+)\]")
_NO_DOMAIN = lazy_re.compile(r"no such domain|domain not found|invalid domain|does not exist|"
                        r"unknown domain|not found", re.I)


@dataclass(frozen=True)
class XendReply:
    """One HTTP reply: status, headers (lower-case names), body."""

    status: int
    headers: dict[str, str]
    body: bytes


def domain_path(name: str) -> str:
    """``/xend/domain/NAME`` with the name percent-encoded."""
    return "/xend/domain/" + quote(name, safe="")


class XendClient:
    """Requests to one xend: on a UNIX socket (``socket_path``) or TCP (``host``, ``port``).

    Holds no connection between calls; safe to share between threads.
    """

    def __init__(self, *, socket_path: str | None = None, host: str | None = None,
                 port: int = DEFAULT_PORT, timeout: float = DEFAULT_TIMEOUT,
                 max_reply: int = DEFAULT_MAX_REPLY) -> None:
        if (socket_path is None) == (host is None):
            raise ValueError("give xend's socket_path or its host, not both")
        self.socket_path = socket_path
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_reply = max_reply
        #: Number of requests made (benchmarks and tests count them).
        self.requests = 0

    @property
    def address(self) -> str:
        """``unix:/path`` or ``tcp:host:port``, for messages."""
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        return f"tcp:{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<XendClient {self.address}>"

    # --- high level ------------------------------------------------------------

    def get(self, path: str, **query: str | int) -> sexpr.SExpr:
        """``GET path?query``: the reply's S-expression; errors as in the module docstring."""
        target = path + ("?" + urlencode(query) if query else "")
        reply = self.request("GET", target)
        if reply.status == 404:
            raise NoDomainError(f"xend knows no '{_object_of(path)}' (GET {target}: 404)",
                                domain=_XEND)
        self._check(reply, f"GET {target}", ErrorCode.GET_FAILED)
        body = reply.body
        if b"xend.err" in body[:64]:
            self._raise_xend_error(body, f"GET {target}", ErrorCode.GET_FAILED)
        return sexpr.loads(body)

    def post(self, path: str, op: str, **fields: str | int) -> bytes:
        """``POST path`` with ``op=OP&field=value...``; the reply body (often empty)."""
        body = urlencode([("op", op)] + [(k, str(v)) for k, v in fields.items()]).encode()
        reply = self.request("POST", path, body)
        what = f"op={op} on {path}"
        if reply.status == 404:
            raise NoDomainError(f"xend knows no '{_object_of(path)}' ({what}: 404)", domain=_XEND)
        self._check(reply, what, ErrorCode.POST_FAILED)
        text = reply.body
        # Some xend versions answered a failed operation with a 2xx status.
        if b"xend.err" in text or (reply.status == 202 and b"failed" in text):
            self._raise_xend_error(text, what, ErrorCode.POST_FAILED)
        return text

    def _check(self, reply: XendReply, what: str, code: ErrorCode) -> None:
        status = reply.status
        if 200 <= status < 300:
            return
        if status == 500:
            self._raise_xend_error(reply.body, what, code)
        if status == 501:
            raise NoSupportError(f"xend does not implement {what}: {_text(reply.body)}", domain=_XEND)
        raise OperationFailedError(f"xend answered {what} with HTTP {status}: {_text(reply.body)}",
                                   code=ErrorCode.HTTP_ERROR, domain=_XEND)

    @staticmethod
    def _raise_xend_error(body: bytes, what: str, code: ErrorCode) -> None:
        message = _xend_message(body)
        raise xend_error(message, what, code)

    # --- one HTTP exchange ---------------------------------------------------------

    def request(self, method: str, target: str, body: bytes | None = None) -> XendReply:
        """Send one request and read the whole reply (one connection, then closed)."""
        deadline = time.monotonic() + self.timeout
        self.requests += 1
        sock = self._connect(deadline)
        try:
            head = [f"{method} {target} HTTP/1.1", f"Host: localhost:{DEFAULT_PORT}",
                    "Accept-Encoding: identity", "Content-Type: application/x-www-form-urlencoded",
                    "Connection: close"]
            if body is not None:
                head.append(f"Content-Length: {len(body)}")
            data = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
            try:
                self._settimeout(sock, deadline, f"{method} {target}")
                sock.sendall(data)
            except OSError as e:
                raise self._io_error(e, f"{method} {target}") from None
            return self._read_reply(sock, deadline, f"{method} {target}")
        finally:
            sock.close()

    def _connect(self, deadline: float) -> socket.socket:
        try:
            if self.socket_path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(max(0.001, deadline - time.monotonic()))
                    sock.connect(self.socket_path)
                except BaseException:
                    sock.close()
                    raise
                return sock
            assert self.host is not None
            sock = socket.create_connection((self.host, self.port),
                                            timeout=max(0.001, deadline - time.monotonic()))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except TimeoutError:
            raise _timeout(f"connecting to xend at {self.address} took longer than "
                           f"{self.timeout:g} s") from None
        except OSError as e:
            reason = e.strerror or str(e)
            raise ConnectionFailedError(f"cannot connect to xend at {self.address}: {reason}",
                                        domain=_XEND, int1=e.errno or -1) from None

    def _settimeout(self, sock: socket.socket, deadline: float, what: str) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise _timeout(f"xend did not answer {what} within {self.timeout:g} s ({self.address})")
        sock.settimeout(left)

    def _io_error(self, e: OSError, what: str) -> VirtError:
        if isinstance(e, TimeoutError):
            return _timeout(f"xend did not answer {what} within {self.timeout:g} s ({self.address})")
        if e.errno in (_errno.ECONNRESET, _errno.EPIPE, _errno.ECONNABORTED):
            return OperationFailedError(f"xend at {self.address} closed the connection during {what}",
                                        code=ErrorCode.HTTP_ERROR, domain=_XEND)
        return OperationFailedError(f"talking to xend at {self.address} ({what}) failed: "
                                    f"{e.strerror or e}", code=ErrorCode.HTTP_ERROR, domain=_XEND)

    def _recv(self, sock: socket.socket, deadline: float, what: str) -> bytes:
        try:
            self._settimeout(sock, deadline, what)
            return sock.recv(65536)
        except OSError as e:
            raise self._io_error(e, what) from None

    def _read_reply(self, sock: socket.socket, deadline: float, what: str) -> XendReply:
        buf = bytearray()
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > 65536:
                raise _malformed(f"xend's reply to {what} has over 64 KiB of headers")
            chunk = self._recv(sock, deadline, what)
            if not chunk:
                if not buf:
                    raise OperationFailedError(
                        f"xend at {self.address} closed the connection without answering {what}",
                        code=ErrorCode.HTTP_ERROR, domain=_XEND)
                raise _malformed(f"xend's reply to {what} ends inside its headers")
            buf += chunk
        head = bytes(buf[:end]).split(b"\r\n")
        rest = bytes(buf[end + 4:])
        m = _STATUS.match(head[0])
        if m is None:
            raise _malformed(f"xend's reply to {what} has no HTTP status line: {head[0][:80]!r}")
        status = int(m.group(1))
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked(sock, deadline, what, rest)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise _malformed(f"xend's reply to {what} has a bad Content-Length") from None
            if length > self.max_reply:
                raise _too_large(what, self.max_reply)
            body = self._read_exactly(sock, deadline, what, rest, length)
        else:
            body = self._read_to_eof(sock, deadline, what, rest)
        return XendReply(status, headers, body)

    def _read_exactly(self, sock: socket.socket, deadline: float, what: str, have: bytes,
                      length: int) -> bytes:
        buf = bytearray(have)
        while len(buf) < length:
            chunk = self._recv(sock, deadline, what)
            if not chunk:
                raise _malformed(f"xend's reply to {what} was cut short: {len(buf)} of {length} bytes")
            buf += chunk
        return bytes(buf[:length])

    def _read_to_eof(self, sock: socket.socket, deadline: float, what: str, have: bytes) -> bytes:
        buf = bytearray(have)
        while True:
            if len(buf) > self.max_reply:
                raise _too_large(what, self.max_reply)
            chunk = self._recv(sock, deadline, what)
            if not chunk:
                return bytes(buf)
            buf += chunk

    def _read_chunked(self, sock: socket.socket, deadline: float, what: str, have: bytes) -> bytes:
        buf = bytearray(have)
        out = bytearray()
        pos = 0
        while True:
            nl = buf.find(b"\r\n", pos)
            while nl < 0:
                chunk = self._recv(sock, deadline, what)
                if not chunk:
                    raise _malformed(f"xend's chunked reply to {what} was cut short")
                buf += chunk
                nl = buf.find(b"\r\n", pos)
            try:
                size = int(bytes(buf[pos:nl]).split(b";")[0], 16)
            except ValueError:
                raise _malformed(f"xend's chunked reply to {what} has a bad chunk size") from None
            if len(out) + size > self.max_reply:
                raise _too_large(what, self.max_reply)
            start = nl + 2
            while len(buf) < start + size + 2:
                chunk = self._recv(sock, deadline, what)
                if not chunk:
                    raise _malformed(f"xend's chunked reply to {what} was cut short")
                buf += chunk
            if size == 0:
                return bytes(out)
            out += buf[start:start + size]
            pos = start + size + 2


def xend_error(message: str, what: str, code: ErrorCode = ErrorCode.POST_FAILED) -> VirtError:
    """The virtkit error for xend's ``(xend.err 'MESSAGE')`` reply to ``what``."""
    text = f"xend refused {what}: {message}"
    m = _ERRNO.search(message)
    if m is not None:
        return VirtSystemError(text, errno=int(m.group(1)), domain=_XEND)
    if "already exists" in message or "already in use" in message:
        return DomainExistsError(text, domain=_XEND)
    if _NO_DOMAIN.search(message):
        return NoDomainError(text, domain=_XEND)
    return OperationFailedError(text, code=code, domain=_XEND)


def _xend_message(body: bytes) -> str:
    """The message of ``(xend.err 'MESSAGE')``, or the body as text when it is not one."""
    try:
        tree = sexpr.loads(body, lenient=True)
    except VirtError:
        return _text(body)
    if tree.is_list and tree.head == "xend.err" and len(tree) > 1:
        value = tree[1]
        return value.text if value.is_atom and value.text is not None else value.dumps()
    return _text(body)


def _text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text if len(text) <= 300 else text[:300] + "..."


def _object_of(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path.rstrip("/").rsplit("/", 1)[-1]) or path


def _timeout(message: str) -> OperationFailedError:
    return OperationFailedError(message, code=ErrorCode.OPERATION_TIMEOUT, domain=_XEND)


def _malformed(message: str) -> OperationFailedError:
    return OperationFailedError(message, code=ErrorCode.HTTP_ERROR, domain=_XEND)


def _too_large(what: str, limit: int) -> OperationFailedError:
    return _malformed(f"xend's reply to {what} is larger than {limit} bytes: refused")
