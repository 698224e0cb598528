"""A tiny xenstored for the unit tests of virtkit.drivers.xen.xenstore (test support only).

It speaks the wire protocol on a UNIX socket: a tree of nodes with values and
permissions, READ/WRITE/DIRECTORY/MKDIR/RM/GET_PERMS/SET_PERMS,
GET_DOMAIN_PATH, transactions (EAGAIN when another writer changed a node the
transaction used), watches (fired at once when set, then on every change at or
under the watched path), and XS_ERROR replies with errno names. Knobs for the
client's harder cases:

- ``deny``: paths (and everything under them) answered with EACCES;
- ``stall``: paths whose requests get no reply at all (timeouts);
- ``reverse``: the replies to the requests that arrived together are sent in
  reverse order (the client must match them by req_id);
- ``event_first``: a watch event for ``@virtkit-noise`` is sent before every reply;
- ``hang_up()``: close every connection (the client must report it, not hang).
"""

from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading
from dataclasses import dataclass, field

HEADER = struct.Struct("=IIII")
(XS_CONTROL, XS_DIRECTORY, XS_READ, XS_GET_PERMS, XS_WATCH, XS_UNWATCH, XS_TRANSACTION_START,
 XS_TRANSACTION_END) = range(8)
XS_GET_DOMAIN_PATH, XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS, XS_WATCH_EVENT, XS_ERROR = range(10, 17)


class XsError(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass
class Node:
    value: bytes = b""
    perms: list[str] = field(default_factory=lambda: ["n0"])


def _parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


class Tree:
    """Nodes by absolute path; '/' always exists."""

    def __init__(self, nodes: dict[str, Node] | None = None) -> None:
        self.nodes: dict[str, Node] = nodes if nodes is not None else {"/": Node()}

    def copy(self) -> Tree:
        return Tree({p: Node(n.value, list(n.perms)) for p, n in self.nodes.items()})

    def get(self, path: str) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise XsError("ENOENT")
        return node

    def children(self, path: str) -> list[str]:
        self.get(path)
        prefix = path.rstrip("/") + "/"
        return sorted(p[len(prefix):] for p in self.nodes
                      if p.startswith(prefix) and "/" not in p[len(prefix):] and p != "/")

    def write(self, path: str, value: bytes) -> None:
        missing = []
        p = path
        while p not in self.nodes:
            missing.append(p)
            p = _parent(p)
        for q in reversed(missing):
            self.nodes[q] = Node()
        self.nodes[path].value = value

    def mkdir(self, path: str) -> None:
        if path not in self.nodes:
            self.write(path, b"")

    def rm(self, path: str) -> None:
        if path not in self.nodes:
            if _parent(path) not in self.nodes:
                raise XsError("ENOENT")
            return
        if path == "/":
            raise XsError("EINVAL")
        prefix = path + "/"
        for p in [p for p in self.nodes if p == path or p.startswith(prefix)]:
            del self.nodes[p]

    def state(self, path: str) -> tuple[bytes, tuple[str, ...]] | None:
        node = self.nodes.get(path)
        return None if node is None else (node.value, tuple(node.perms))


@dataclass
class Tx:
    base: Tree  # the tree as it was when the transaction started
    tree: Tree  # the transaction's own view
    used: set[str] = field(default_factory=set)
    changed: list[str] = field(default_factory=list)


class FakeXenstored:
    """The daemon; ``with FakeXenstored() as xs: XenstoreClient(xs.path)``."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="fake-xenstored-")
        self.path = os.path.join(self.dir, "socket")
        self.tree = Tree()
        self.lock = threading.RLock()
        self.deny: set[str] = set()
        self.stall: set[str] = set()
        self.reverse = False
        self.event_first = False
        self.requests: list[tuple[int, str]] = []  # (type, first argument) as received
        self._txs: dict[int, Tx] = {}
        self._next_tx = 1
        self._conns: list[_Conn] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(16)
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        for path, value in (("/local/domain/0/name", b"Domain-0"), ("/local/domain/0/domid", b"0")):
            self.tree.write(path, value)

    # --- life cycle --------------------------------------------------------------------

    def __enter__(self) -> FakeXenstored:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self.hang_up()
        self._thread.join(5)
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def hang_up(self) -> None:
        with self.lock:
            conns, self._conns = list(self._conns), []
        for c in conns:
            c.close()
        for c in conns:
            c.thread.join(5)

    def _accept(self) -> None:
        while not self._closing:
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            conn = _Conn(self, sock)
            with self.lock:
                self._conns.append(conn)
            conn.thread.start()

    # --- helpers for tests --------------------------------------------------------------

    def write(self, path: str, value: bytes | str) -> None:
        """Change a node as another client would (watches fire)."""
        with self.lock:
            self.tree.write(path, value.encode() if isinstance(value, str) else value)
            self._fire(path)

    def read(self, path: str) -> bytes | None:
        with self.lock:
            node = self.tree.nodes.get(path)
            return None if node is None else node.value

    def watch_count(self) -> int:
        with self.lock:
            return sum(len(c.watches) for c in self._conns)

    def _fire(self, changed: str) -> None:
        for c in list(self._conns):
            for path, token in list(c.watches):
                if (changed == path or changed.startswith(path.rstrip("/") + "/")
                        or path.startswith(changed + "/")):
                    c.event(changed, token)

    # --- requests ----------------------------------------------------------------------

    def _denied(self, path: str) -> bool:
        return any(path == d or path.startswith(d + "/") for d in self.deny)

    def handle(self, conn: _Conn, type_: int, tx_id: int, payload: bytes) -> bytes:
        """The reply payload of one request; raises XsError for an XS_ERROR reply."""
        args = payload.split(b"\0")
        first = args[0].decode("ascii", "replace")
        with self.lock:
            self.requests.append((type_, first))
            if type_ in (XS_READ, XS_WRITE, XS_DIRECTORY, XS_MKDIR, XS_RM, XS_GET_PERMS,
                         XS_SET_PERMS, XS_WATCH, XS_UNWATCH):
                if not first or (not first.startswith("/") and not first.startswith("@")):
                    raise XsError("EINVAL")
                if self._denied(first):
                    raise XsError("EACCES")
            tx = None
            if tx_id:
                tx = self._txs.get(tx_id)
                if tx is None:
                    raise XsError("ENOENT")
            tree = tx.tree if tx is not None else self.tree
            if tx is not None and type_ != XS_TRANSACTION_END:
                tx.used.add(first)
            if type_ == XS_READ:
                return tree.get(first).value
            if type_ == XS_DIRECTORY:
                return b"".join(n.encode() + b"\0" for n in tree.children(first))
            if type_ == XS_GET_PERMS:
                return b"".join(p.encode() + b"\0" for p in tree.get(first).perms)
            if type_ in (XS_WRITE, XS_MKDIR, XS_RM, XS_SET_PERMS):
                if type_ == XS_WRITE:
                    value = payload[len(args[0]) + 1:]
                    tree.write(first, value)
                elif type_ == XS_MKDIR:
                    tree.mkdir(first)
                elif type_ == XS_RM:
                    tree.rm(first)
                else:
                    tree.get(first).perms = [a.decode() for a in args[1:] if a]
                if tx is not None:
                    tx.changed.append(first)
                else:
                    self._fire(first)
                return b"OK\0"
            if type_ == XS_WATCH:
                conn.watches.append((first, args[1].decode()))
                conn.event(first, args[1].decode(), after_reply=True)
                return b"OK\0"
            if type_ == XS_UNWATCH:
                item = (first, args[1].decode())
                if item not in conn.watches:
                    raise XsError("ENOENT")
                conn.watches.remove(item)
                return b"OK\0"
            if type_ == XS_TRANSACTION_START:
                tid = self._next_tx
                self._next_tx += 1
                self._txs[tid] = Tx(self.tree.copy(), self.tree.copy())
                return f"{tid}\0".encode()
            if type_ == XS_TRANSACTION_END:
                tx = self._txs.pop(tx_id, None)
                if tx is None:
                    raise XsError("ENOENT")
                if first == "F":
                    return b"OK\0"
                for p in tx.used:
                    if tx.base.state(p) != self.tree.state(p):
                        raise XsError("EAGAIN")
                for p in set(tx.changed):
                    new = tx.tree.nodes.get(p)
                    if new is None:
                        if p in self.tree.nodes:
                            self.tree.rm(p)
                    else:
                        self.tree.write(p, new.value)
                        self.tree.nodes[p].perms = list(new.perms)
                    self._fire(p)
                return b"OK\0"
            if type_ == XS_GET_DOMAIN_PATH:
                return f"/local/domain/{first}\0".encode()
            raise XsError("EINVAL")


class _Conn:
    def __init__(self, daemon: FakeXenstored, sock: socket.socket) -> None:
        self.daemon = daemon
        self.sock = sock
        self.watches: list[tuple[str, str]] = []
        self.send_lock = threading.Lock()
        self.pending_events: list[bytes] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.closed = False

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        with self.send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass

    def event(self, path: str, token: str, after_reply: bool = False) -> None:
        frame = _frame(XS_WATCH_EVENT, 0, 0, path.encode() + b"\0" + token.encode() + b"\0")
        if after_reply:
            self.pending_events.append(frame)
        else:
            self.send(frame)

    def run(self) -> None:
        buf = b""
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                replies: list[bytes] = []
                while len(buf) >= 16:
                    type_, rid, tx, length = HEADER.unpack_from(buf)
                    if len(buf) < 16 + length:
                        break
                    payload, buf = buf[16:16 + length], buf[16 + length:]
                    first = payload.split(b"\0")[0].decode("ascii", "replace")
                    if first in self.daemon.stall:
                        continue
                    try:
                        body = self.daemon.handle(self, type_, tx, payload)
                        reply = _frame(type_, rid, tx, body)
                    except XsError as e:
                        reply = _frame(XS_ERROR, rid, tx, e.name.encode() + b"\0")
                    if self.daemon.event_first:
                        reply = _frame(XS_WATCH_EVENT, 0, 0, b"@virtkit-noise\0noise\0") + reply
                    replies.append(reply)
                if self.daemon.reverse:
                    replies.reverse()
                for r in replies:
                    self.send(r)
                events, self.pending_events = self.pending_events, []
                for e in events:
                    self.send(e)
        finally:
            self.sock.close()


def _frame(type_: int, rid: int, tx: int, payload: bytes) -> bytes:
    return HEADER.pack(type_, rid, tx, len(payload)) + payload
