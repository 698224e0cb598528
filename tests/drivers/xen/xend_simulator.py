"""A xend simulator for tests: NOT a driver, NOT shipped, NOT a hypervisor.

:class:`XendSimulator` serves xend's HTTP interface (``xen-protocols.md``
section 1) on a UNIX socket and on a loopback TCP port, from an in-memory
state that changes with each operation: domains are created, defined,
started, paused (their state string then shows ``p``), shut down, saved to
real files and restored from them, dumped, resized, pinned; devices are
added and removed. It answers as xend did:

- S-expressions in xend's indented layout (``application/sxp``), and HTML
  for a request that looks like a browser's (a ``User-Agent`` without an
  ``Accept`` naming ``application/sxp``), as xend's HTTP layer chose;
- ``404`` for an unknown domain, ``500`` with ``(xend.err 'MESSAGE')`` when an
  operation fails, ``406`` without ``op``, ``501`` for an unknown ``op``;
- each ``xend_config_format``: 1 and 2 have no inactive (managed) domains,
  ``op=new/start/delete`` are unknown and ``state=`` is ignored; from 3,
  managed domains are written to ``ROOT/domains/UUID/config.sxp`` as xend
  kept them (beside its socket ``ROOT/xend-socket``); 1 reports no
  ``xend_config_format`` in ``/xend/node/``.

Domains can be seeded from the corpus (:meth:`XendSimulator.add_sxpr`). A test
can make it misbehave (:attr:`XendSimulator.fault`): ``stall`` (read the
request, never answer), ``close`` (hang up without a reply), ``garbage`` (a
reply that is no S-expression), ``truncated`` (a reply shorter than its
Content-Length), ``huge`` (an enormous body), ``unbalanced`` (an
S-expression missing its closing parentheses); :meth:`refuse` stops
listening (connections are refused) until :meth:`listen` again.

It counts requests (:attr:`requests`), so tests and benchmarks can check how
many a call made. Use it as a context manager; it leaves no thread, socket or
file behind.
"""

from __future__ import annotations

import os
import shutil
import socketserver
import struct
import tempfile
import threading
import time
import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from virtkit import sexpr

__all__ = ["XendSimulator", "SimDomain", "SAVE_SIGNATURE"]

Tree = Any  # str | tuple[Tree, ...]

#: What xend's save files start with (XendCheckpoint's SIGNATURE).
SAVE_SIGNATURE = b"LinuxGuestRecord"
_MEMORY_MAGIC = b"SimGuestMemory01"
_RUNTIME = frozenset({"domid", "state", "shutdown_reason", "cpu_time", "up_time", "start_time",
                      "online_vcpus", "store_mfn", "console_mfn", "status", "memory_dynamic_min",
                      "memory_dynamic_max", "cpus_running"})


class XendError(Exception):
    """An operation failed: becomes HTTP 500 with (xend.err 'MESSAGE')."""


class NotFound(Exception):
    """HTTP 404."""


@dataclass
class SimDomain:
    """One domain: its configuration (the (vm ...) children) and, when active, its run."""

    uuid: str
    name: str
    config: list[Tree]
    managed: bool
    domid: int | None = None
    paused: bool = False
    crashed: bool = False
    cpu_ns: int = 0
    run_since: float | None = None
    started: float = 0.0
    #: Online vCPUs of a running domain (None: all of them).
    online: int | None = None
    pins: dict[int, list[int]] = field(default_factory=dict)

    # --- configuration access -------------------------------------------------

    def get(self, key: str) -> Tree | None:
        for child in self.config:
            if isinstance(child, tuple) and child and child[0] == key:
                return child[1] if len(child) > 1 else ""
        return None

    def set(self, key: str, value: Tree | None) -> None:
        out = [c for c in self.config if not (isinstance(c, tuple) and c and c[0] == key)]
        if value is not None:
            # Keep xend's habit of listing devices last.
            first_device = next((i for i, c in enumerate(out) if isinstance(c, tuple) and c
                                 and c[0] == "device"), len(out))
            out.insert(first_device, (key, value))
        self.config = out

    def int(self, key: str, default: int = 0) -> int:
        value = self.get(key)
        try:
            return int(str(value))
        except (TypeError, ValueError):
            return default

    @property
    def active(self) -> bool:
        return self.domid is not None

    @property
    def hvm(self) -> bool:
        image = self.get("image")
        return isinstance(image, tuple) and bool(image) and image[0] == "hvm"

    def devices(self) -> list[tuple[Tree, ...]]:
        return [c[1] for c in self.config if isinstance(c, tuple) and c and c[0] == "device"
                and len(c) > 1 and isinstance(c[1], tuple)]

    def cpu_time_ns(self) -> int:
        if self.run_since is None:
            return self.cpu_ns
        return self.cpu_ns + int((time.monotonic() - self.run_since) * 1e9 * 0.25)

    def stop_clock(self) -> None:
        self.cpu_ns = self.cpu_time_ns()
        self.run_since = None

    def start_clock(self) -> None:
        if self.run_since is None:
            self.run_since = time.monotonic()


def _tree(text: str | bytes) -> tuple[Tree, ...]:
    t = sexpr.loads(text, lenient=True).to_tree()
    if not isinstance(t, tuple):
        raise XendError("config is not a list")
    return t


def blkdev_number(name: str) -> int | None:
    """xend's (blkif's) device number of a disk name (see the driver's disk_devid)."""
    from virtkit.drivers.xen.driver import disk_devid

    n = disk_devid(name.split(":")[0].removeprefix("ioemu:"))
    return n if isinstance(n, int) else None


class XendSimulator:
    """A simulated xend; see the module docstring."""

    def __init__(self, *, xend_config_format: int = 4, nr_cpus: int = 4, total_memory: int = 8192,
                 xen_version: tuple[int, int, str] = (3, 4, ".2"), root: str | None = None,
                 tcp: bool = True) -> None:
        self.xend_config_format = xend_config_format
        self.nr_cpus = nr_cpus
        self.total_memory = total_memory
        self.xen_version = xen_version
        self._own_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="xend-sim-")
        self.socket_path = os.path.join(self.root, "xend-socket")
        self.domains_dir = os.path.join(self.root, "domains")
        self.port = 0
        self._want_tcp = tcp
        self.lock = threading.RLock()
        self.domains: dict[str, SimDomain] = {}
        self._next_id = 1
        #: Requests answered (or faulted), all listeners together.
        self.requests = 0
        #: (method, path, fields) of each request, newest last.
        self.log: list[tuple[str, str, dict[str, str]]] = []
        #: Misbehaviour for the next requests: None, "stall", "close", "garbage",
        #: "truncated", "huge", "unbalanced".
        self.fault: str | None = None
        #: Seconds a stalled request is held (it is released by close() too).
        self.stall_seconds = 30.0
        self._release = threading.Event()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        dom0 = SimDomain(uuid="00000000-0000-0000-0000-000000000000", name="Domain-0", managed=False,
                         config=[("name", "Domain-0"), ("uuid", "00000000-0000-0000-0000-000000000000"),
                                 ("memory", "1024"), ("maxmem", str(total_memory)),
                                 ("vcpus", str(nr_cpus)), ("on_poweroff", "destroy"),
                                 ("on_reboot", "restart"), ("on_crash", "restart")],
                         domid=0, run_since=time.monotonic())
        self.domains[dom0.uuid] = dom0

    # --- life of the simulator ---------------------------------------------------------

    def __enter__(self) -> XendSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> XendSimulator:
        os.makedirs(self.domains_dir, exist_ok=True)
        self.listen()
        return self

    @property
    def uri(self) -> str:
        """``xen:///?socket=...`` for this simulator."""
        return f"xen:///?socket={self.socket_path}"

    @property
    def tcp_uri(self) -> str:
        return f"xen://127.0.0.1:{self.port}/"

    def listen(self) -> None:
        """(Re)start listening on the UNIX socket and, unless tcp=False, on loopback TCP."""
        if self._servers:
            return
        sim = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                sim._serve(self)

        class Unix(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        class Tcp(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        servers: list[socketserver.BaseServer] = [Unix(self.socket_path, Handler)]
        if self._want_tcp:
            tcp = Tcp(("127.0.0.1", self.port), Handler)
            self.port = tcp.server_address[1]
            servers.append(tcp)
        self._release.clear()
        for server in servers:
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                 name="xend-sim", daemon=True)
            t.start()
            self._threads.append(t)
        self._servers = servers

    def refuse(self) -> None:
        """Stop listening: new connections are refused (the state is kept)."""
        self._release.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(5)
        self._servers = []
        self._threads = []
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def close(self) -> None:
        """Stop serving and remove every file the simulator made."""
        self.refuse()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- seeding --------------------------------------------------------------------------

    def add_sxpr(self, text: str | bytes, *, managed: bool = False) -> SimDomain:
        """Add a domain from a ``(domain ...)`` S-expression (a corpus file): running
        when it has a ``domid``, else inactive and managed."""
        tree = _tree(sexpr.join_continuations(text.encode() if isinstance(text, str) else text))
        config = [c for c in tree[1:] if not (isinstance(c, tuple) and c and c[0] in _RUNTIME)]
        domid = next((int(c[1]) for c in tree[1:] if isinstance(c, tuple) and c and c[0] == "domid"), None)
        dom = self._new(config, managed=managed or domid is None)
        if domid is not None:
            with self.lock:
                dom.domid = domid
                dom.started = time.time()
                dom.start_clock()
                self._next_id = max(self._next_id, domid + 1)
        return dom

    def add_domain(self, name: str, *, memory: int = 128, vcpus: int = 1, running: bool = True,
                   managed: bool = True, hvm: bool = False) -> SimDomain:
        """Add a simple PV (or HVM) domain."""
        image: Tree = (("hvm", ("kernel", "/usr/lib/xen/boot/hvmloader"), ("boot", "c"))
                       if hvm else ("linux", ("kernel", "/boot/vmlinuz-xen")))
        config: list[Tree] = [("name", name), ("memory", str(memory)), ("maxmem", str(memory)),
                              ("vcpus", str(vcpus)), ("on_poweroff", "destroy"),
                              ("on_reboot", "restart"), ("on_crash", "restart"), ("image", image),
                              ("device", ("vbd", ("dev", "xvda"), ("uname", f"file:/images/{name}.img"),
                                          ("mode", "w")))]
        dom = self._new(config, managed=managed)
        if running:
            with self.lock:
                self._start(dom)
        return dom

    # --- state changes ----------------------------------------------------------------------

    def _new(self, config: list[Tree], *, managed: bool) -> SimDomain:
        name = next((str(c[1]) for c in config if isinstance(c, tuple) and c and c[0] == "name"
                     and len(c) > 1), None)
        if not name:
            raise XendError("Error creating domain: config has no name")
        raw_uuid = next((str(c[1]) for c in config if isinstance(c, tuple) and c and c[0] == "uuid"
                         and len(c) > 1), None)
        try:
            text = str(uuidlib.UUID(raw_uuid)) if raw_uuid else str(uuidlib.uuid4())
        except ValueError:
            raise XendError(f"Error creating domain: invalid UUID {raw_uuid!r}") from None
        with self.lock:
            for other in self.domains.values():
                if other.name == name and other.uuid != text:
                    where = f" as domain {other.domid}" if other.domid is not None else ""
                    raise XendError(f"VM name '{name}' already exists{where}")
                if other.uuid == text and other.name != name:
                    raise XendError(f"VM with UUID {text} already exists as '{other.name}'")
            dom = self.domains.get(text)
            config = [c for c in config if not (isinstance(c, tuple) and c and c[0] == "uuid")]
            config.insert(1, ("uuid", text))
            if dom is None:
                dom = SimDomain(uuid=text, name=name, config=config, managed=managed)
                self.domains[text] = dom
            else:
                dom.config = config
                dom.managed = dom.managed or managed
            self._save_managed(dom)
            return dom

    def _save_managed(self, dom: SimDomain) -> None:
        if not dom.managed:
            return
        path = os.path.join(self.domains_dir, dom.uuid)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "config.sxp"), "w") as f:
            f.write(sexpr.dumps(("domain",) + tuple(dom.config), indent=4))

    def _unmanage(self, dom: SimDomain) -> None:
        dom.managed = False
        shutil.rmtree(os.path.join(self.domains_dir, dom.uuid), ignore_errors=True)

    def _start(self, dom: SimDomain, paused: bool = False) -> None:
        dom.domid = self._next_id
        self._next_id += 1
        dom.paused = paused
        dom.crashed = False
        dom.cpu_ns = 0
        dom.run_since = None
        dom.online = None
        dom.started = time.time()
        if not paused:
            dom.start_clock()

    def _stop(self, dom: SimDomain) -> None:
        dom.domid = None
        dom.paused = False
        dom.stop_clock()
        dom.cpu_ns = 0
        dom.online = None
        if not dom.managed:
            del self.domains[dom.uuid]

    def _lookup(self, ident: str) -> SimDomain:
        ident = unquote(ident)
        with self.lock:
            for dom in self.domains.values():
                if dom.name == ident:
                    return dom
            if ident.isdigit():
                for dom in self.domains.values():
                    if dom.domid == int(ident):
                        return dom
            if self.xend_config_format >= 3:
                try:
                    key = str(uuidlib.UUID(ident))
                except ValueError:
                    key = ""
                if key in self.domains:
                    return self.domains[key]
        raise NotFound(ident)

    # --- what xend says ----------------------------------------------------------------------

    def node_sxpr(self) -> Tree:
        major, minor, extra = self.xen_version
        caps = "xen-3.0-x86_64 xen-3.0-x86_32p hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"
        used = sum(d.int("memory") for d in self.domains.values() if d.active)
        node: list[Tree] = [
            "node", ("host", "xensim"), ("release", "2.6.18-xen"), ("version", "#1 SMP"),
            ("machine", "x86_64"), ("nr_cpus", str(self.nr_cpus)), ("nr_nodes", "1"),
            ("cores_per_socket", str(max(1, self.nr_cpus // 2))), ("threads_per_core", "2"),
            ("cpu_mhz", "2400"), ("hw_caps", "bfebfbff:20100800:00000000:00000140"),
            ("total_memory", str(self.total_memory)),
            ("free_memory", str(max(0, self.total_memory - used))),
            ("xen_major", str(major)), ("xen_minor", str(minor)), ("xen_extra", extra),
            ("xen_caps", caps), ("xen_scheduler", "credit"), ("xen_pagesize", "4096"),
            ("platform_params", "virt_start=0xffff800000000000"), ("xen_changeset", "unavailable"),
            ("cc_compiler", "gcc"), ("cc_compile_by", "sim"), ("cc_compile_domain", "localdomain"),
            ("cc_compile_date", "today"),
        ]
        if self.xend_config_format >= 2:
            node.append(("xend_config_format", str(self.xend_config_format)))
        if self.xen_version < (3, 2, ""):
            node.insert(7, ("sockets_per_node", "1"))
        return tuple(node)

    def domain_sxpr(self, dom: SimDomain) -> Tree:
        out: list[Tree] = ["domain"]
        if dom.domid is not None:
            out.append(("domid", str(dom.domid)))
        for child in dom.config:
            if isinstance(child, tuple) and child and child[0] == "cpus" and dom.pins:
                continue
            if isinstance(child, tuple) and child and child[0] == "vcpus" and dom.online is not None:
                out.append(child)
                out.append(("vcpu_avail", str((1 << dom.online) - 1)))
                continue
            if isinstance(child, tuple) and child and child[0] == "vcpu_avail" and dom.online is not None:
                continue
            out.append(child)
        if dom.pins:
            vcpus = dom.int("vcpus", 1)
            default = dom.get("cpus")
            out.append(("cpus", tuple(tuple(str(c) for c in (dom.pins.get(n) or self._cpus_of(default, n)))
                                      for n in range(vcpus))))
        if self.xend_config_format >= 3 and dom.get("on_xend_start") is None:
            out.append(("on_xend_start", "ignore"))
        if dom.domid is not None:
            letters = ["-"] * 6
            if dom.crashed:
                letters[4] = "c"
            elif dom.paused:
                letters[2] = "p"
            else:
                letters[0] = "r"
            vcpus = dom.int("vcpus", 1)
            out += [("state", "".join(letters)), ("shutdown_reason", "poweroff"),
                    ("cpu_time", f"{dom.cpu_time_ns() / 1e9:.9f}"),
                    ("online_vcpus", str(dom.online if dom.online is not None else vcpus)),
                    ("up_time", f"{time.time() - dom.started:.6f}"),
                    ("start_time", f"{dom.started:.2f}"), ("store_mfn", "1234"),
                    ("console_mfn", "1235"), ("status", "2")]
        else:
            out += [("state", "------"), ("cpu_time", "0.0"), ("status", "0")]
        return tuple(out)

    def vcpu_sxpr(self, dom: SimDomain) -> Tree:
        if dom.domid is None:
            raise XendError(f"Domain '{dom.name}' is not running")
        vcpus = dom.int("vcpus", 1)
        online = dom.online if dom.online is not None else vcpus
        default = dom.get("cpus")
        out: list[Tree] = []
        each = dom.cpu_time_ns() / max(1, online) / 1e9
        for n in range(vcpus):
            cpus = dom.pins.get(n) or self._cpus_of(default, n) or list(range(self.nr_cpus))
            on = n < online
            out.append(("vcpu", ("number", str(n)), ("online", "1" if on else "0"),
                        ("blocked", "0"), ("running", "1" if on and not dom.paused else "0"),
                        ("cpu_time", f"{each if on else 0:.9f}"), ("cpu", str(cpus[0] if on else -1)),
                        ("cpumap", tuple(str(c) for c in cpus))))
        return tuple(out)

    def _cpus_of(self, spec: Tree | None, vcpu: int) -> list[int]:
        if isinstance(spec, str) and spec:
            out: set[int] = set()
            for item in spec.split(","):
                neg = item.startswith("^")
                lo, _, hi = item.lstrip("^").partition("-")
                rng = set(range(int(lo), int(hi or lo) + 1))
                out = out - rng if neg else out | rng
            return sorted(c for c in out if c < self.nr_cpus)
        if isinstance(spec, tuple) and vcpu < len(spec):
            entry = spec[vcpu]
            return [int(c) for c in (entry if isinstance(entry, tuple) else (entry,)) if str(c).isdigit()]
        return []

    # --- HTTP -------------------------------------------------------------------------------

    def _serve(self, handler: socketserver.StreamRequestHandler) -> None:
        rfile, wfile = handler.rfile, handler.wfile
        line = rfile.readline(65536)
        if not line:
            return
        headers: dict[str, str] = {}
        while True:
            h = rfile.readline(65536)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = rfile.read(int(headers.get("content-length", "0") or 0))
        try:
            method, target, _ = line.decode("latin-1").split(" ", 2)
        except ValueError:
            self._reply(wfile, 400, "text/plain", b"bad request line")
            return
        with self.lock:
            self.requests += 1
            fault = self.fault
        fields = {k: v[-1] for k, v in parse_qs(body.decode("latin-1"), keep_blank_values=True).items()}
        self.log.append((method, target, fields))
        if fault == "stall":
            self._release.wait(self.stall_seconds)
            return
        if fault == "close":
            return
        if fault == "garbage":
            self._reply(wfile, 200, "application/sxp", b"\x00\xffthis is not an S-expression)))")
            return
        if fault == "truncated":
            wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/sxp\r\nContent-Length: 500\r\n\r\n"
                        b"(domain (name half")
            return
        if fault == "unbalanced":
            self._reply(wfile, 200, "application/sxp", b"(domain (domid 1) (name x) (memory 64")
            return
        if fault == "huge":
            wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/sxp\r\n"
                        b"Content-Length: 1099511627776\r\n\r\n(")
            return
        agent = "user-agent" in headers
        accept = headers.get("accept")
        if (agent or accept) and "application/sxp" not in (accept or ""):
            self._reply(wfile, 200, "text/html", b"<html><body>xend</body></html>")
            return
        try:
            status, payload = self._dispatch(method, target, fields)
        except NotFound as e:
            self._reply(wfile, 404, "text/plain", f"Not found: {e}".encode())
            return
        except XendError as e:
            self._reply(wfile, 500, "application/sxp",
                        sexpr.dumps(("xend.err", str(e))).encode())
            return
        except _HttpError as e:
            self._reply(wfile, e.status, "text/plain", e.text.encode())
            return
        if payload is None:
            self._reply(wfile, status, "application/sxp", b"")
        else:
            self._reply(wfile, status, "application/sxp", sexpr.dumps(payload, indent=4).encode())

    @staticmethod
    def _reply(wfile: Any, status: int, ctype: str, body: bytes) -> None:
        reason = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
                  406: "Not Acceptable", 500: "Internal Server Error",
                  501: "Not Implemented"}.get(status, "Status")
        try:
            wfile.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        except OSError:
            pass

    def _dispatch(self, method: str, target: str, fields: dict[str, str]) -> tuple[int, Tree | None]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path
        with self.lock:
            if path in ("/xend/node", "/xend/node/"):
                if method == "GET":
                    return 200, self.node_sxpr()
                raise _HttpError(501, f"Operation not implemented: {fields.get('op', '')}")
            if path in ("/xend/domain", "/xend/domain/"):
                if method == "GET":
                    return 200, self._list(query)
                return self._post_dir(fields)
            if path.startswith("/xend/domain/"):
                dom = self._lookup(path[len("/xend/domain/"):].rstrip("/"))
                if method == "GET":
                    if query.get("op") == "vcpuinfo":
                        return 200, self.vcpu_sxpr(dom)
                    return 200, self.domain_sxpr(dom)
                return self._post_domain(dom, fields)
        raise NotFound(path)

    def _list(self, query: dict[str, str]) -> Tree:
        state = query.get("state", "running") if self.xend_config_format >= 3 else "running"
        doms = sorted(self.domains.values(), key=lambda d: (d.domid is None, d.domid or 0, d.name))
        if state == "halted":
            doms = [d for d in doms if not d.active]
        elif state != "all":
            doms = [d for d in doms if d.active]
        if "detail" in query:
            return tuple(self.domain_sxpr(d) for d in doms)
        return tuple(d.name for d in doms)

    def _op(self, fields: dict[str, str], known: Iterable[str]) -> str:
        op = fields.get("op")
        if not op:
            raise _HttpError(406, "Operation missing")
        if op not in known:
            raise _HttpError(501, f"Operation not implemented: {op}")
        return op

    def _post_dir(self, fields: dict[str, str]) -> tuple[int, Tree | None]:
        known = ["create", "restore", "list"] + (["new"] if self.xend_config_format >= 3 else [])
        op = self._op(fields, known)
        if op == "list":
            return 200, self._list({})
        if op == "restore":
            return 201, self.domain_sxpr(self._restore(fields.get("file", "")))
        config = _tree(fields.get("config", ""))
        if not config or config[0] != "vm":
            raise XendError("Error creating domain: config is not a (vm ...) S-expression")
        children = list(config[1:])
        if op == "new":
            dom = self._new(children, managed=True)
            return 200, None
        # create: the name must be free (except for the same managed, halted domain)
        dom = self._new(children, managed=False)
        if dom.active:
            raise XendError(f"Domain '{dom.name}' already exists with ID '{dom.domid}'")
        self._start(dom, paused=True)
        return 201, self.domain_sxpr(dom)

    def _post_domain(self, dom: SimDomain, fields: dict[str, str]) -> tuple[int, Tree | None]:
        known = ["pause", "unpause", "shutdown", "destroy", "save", "dump", "mem_target_set",
                 "maxmem_set", "set_vcpus", "pincpu", "device_create", "device_destroy",
                 "wait_for_devices", "vcpuinfo", "sysrq", "rename"]
        if self.xend_config_format >= 3:
            known += ["start", "delete"]
        op = self._op(fields, known)
        name = dom.name
        if op in ("pause", "unpause", "shutdown", "save", "dump", "wait_for_devices", "pincpu",
                  "vcpuinfo", "sysrq") and not dom.active:
            raise XendError(f"Domain '{name}' is not started")
        if op == "pause":
            dom.stop_clock()
            dom.paused = True
        elif op == "unpause":
            dom.paused = False
            dom.start_clock()
        elif op == "wait_for_devices":
            pass
        elif op == "start":
            if dom.active:
                raise XendError(f"Domain '{name}' is already running")
            self._start(dom, paused=fields.get("paused") == "1")
        elif op == "delete":
            if dom.active:
                raise XendError("Domain is still running (halted expected, running found)")
            self._unmanage(dom)
            del self.domains[dom.uuid]
        elif op == "destroy":
            if not dom.active:
                raise XendError(f"Domain '{name}' is not started")
            self._stop(dom)
        elif op == "shutdown":
            reason = fields.get("reason", "poweroff")
            if reason not in ("poweroff", "halt", "reboot", "suspend"):
                raise XendError(f"Invalid reason: {reason}")
            key = "on_reboot" if reason == "reboot" else "on_poweroff"
            action = str(dom.get(key) or ("restart" if key == "on_reboot" else "destroy"))
            if action in ("restart", "rename-restart"):
                self._stop_then_restart(dom)
            else:
                self._stop(dom)
        elif op == "save":
            self._save(dom, fields.get("file", ""))
        elif op == "dump":
            self._dump(dom, fields.get("file", ""))
        elif op == "mem_target_set":
            target = self._number(fields, "target")
            if target <= 0:
                raise XendError("Invalid memory size")
            if target > dom.int("maxmem", target):
                raise XendError(f"memory target {target} MiB exceeds the maximum of "
                                f"{dom.int('maxmem')} MiB")
            dom.set("memory", str(target))
        elif op == "maxmem_set":
            limit = self._number(fields, "memory")
            if limit <= 0:
                raise XendError("Invalid memory size")
            dom.set("maxmem", str(limit))
            if dom.int("memory") > limit:
                dom.set("memory", str(limit))
        elif op == "set_vcpus":
            count = self._number(fields, "vcpus")
            if count <= 0:
                raise XendError("Invalid number of vcpus")
            if dom.active:
                if count > dom.int("vcpus", 1):
                    raise XendError("Cannot set vcpus greater than max vcpus on running domain")
                dom.online = count
            else:
                dom.set("vcpus", str(count))
                dom.set("vcpu_avail", None)
                dom.pins = {n: c for n, c in dom.pins.items() if n < count}
        elif op == "pincpu":
            vcpu = self._number(fields, "vcpu")
            if not 0 <= vcpu < dom.int("vcpus", 1):
                raise XendError(f"Invalid VCPU {vcpu}")
            text = fields.get("cpumap", "").strip().strip("[]")
            try:
                cpus = sorted({int(c) for c in text.split(",") if c.strip()})
            except ValueError:
                raise XendError(f"Invalid cpumap {fields.get('cpumap')!r}") from None
            if not cpus or any(c < 0 or c >= self.nr_cpus for c in cpus):
                raise XendError(f"Invalid cpumap {fields.get('cpumap')!r}")
            dom.pins[vcpu] = cpus
        elif op == "device_create":
            self._device_create(dom, fields.get("config", ""))
        elif op == "device_destroy":
            self._device_destroy(dom, fields.get("type", ""), fields.get("dev", ""))
        else:
            raise XendError(f"{op} is not simulated")
        self._save_managed(dom) if dom.uuid in self.domains else None
        return 200, None

    @staticmethod
    def _number(fields: dict[str, str], key: str) -> int:
        try:
            return int(fields[key])
        except (KeyError, ValueError):
            raise XendError(f"Invalid or missing argument: {key}") from None

    def _stop_then_restart(self, dom: SimDomain) -> None:
        # xend restarts a domain as a new one: a new id.
        dom.stop_clock()
        self._start(dom)

    # save files: signature, config length, config, then the (simulated) memory image
    def _save(self, dom: SimDomain, path: str) -> None:
        if dom.domid == 0:
            raise XendError("Cannot save privileged domain 0")
        config = sexpr.dumps(("vm",) + tuple(dom.config)).encode()
        memory = (dom.name.encode() * 64)[:4096]
        data = (SAVE_SIGNATURE + struct.pack("!i", len(config)) + config + _MEMORY_MAGIC
                + struct.pack("!Q", len(memory)) + memory + struct.pack("!Q", dom.cpu_time_ns()))
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError as e:
            raise XendError(f"[Errno {e.errno}] {e.strerror}: '{path}'") from None
        dom.stop_clock()
        self._stop(dom)

    def _restore(self, path: str) -> SimDomain:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise XendError(f"[Errno {e.errno}] {e.strerror}: '{path}'") from None
        if not data.startswith(SAVE_SIGNATURE):
            raise XendError(f"not a valid guest state file: found {data[:16]!r}")
        pos = len(SAVE_SIGNATURE)
        if len(data) < pos + 4:
            raise XendError("not a valid guest state file: config size read")
        (size,) = struct.unpack("!i", data[pos:pos + 4])
        pos += 4
        if size <= 0 or len(data) < pos + size:
            raise XendError("not a valid guest state file: config read")
        config = _tree(data[pos:pos + size])
        pos += size
        if data[pos:pos + len(_MEMORY_MAGIC)] != _MEMORY_MAGIC:
            raise XendError("restore failed: no memory image")
        pos += len(_MEMORY_MAGIC)
        if len(data) < pos + 8:
            raise XendError("restore failed: truncated memory image")
        (memsize,) = struct.unpack("!Q", data[pos:pos + 8])
        if len(data) != pos + 8 + memsize + 8:
            raise XendError("restore failed: truncated memory image")
        (cpu_ns,) = struct.unpack("!Q", data[-8:])
        children = list(config[1:])
        name = next((str(c[1]) for c in children if isinstance(c, tuple) and c[0] == "name"), "")
        uuid = next((str(c[1]) for c in children if isinstance(c, tuple) and c[0] == "uuid"), "")
        for other in self.domains.values():
            if (other.name == name or other.uuid == uuid) and other.active:
                raise XendError(f"Domain '{name}' already exists with ID '{other.domid}'")
        existing = self.domains.get(uuid)
        dom = self._new(children, managed=existing is not None and existing.managed)
        self._start(dom)
        dom.cpu_ns = cpu_ns
        return dom

    def _dump(self, dom: SimDomain, path: str) -> None:
        body = (f"SimXenCore name={dom.name} uuid={dom.uuid} memory={dom.int('memory')}MiB "
                f"cpu_time_ns={dom.cpu_time_ns()}\n").encode()
        try:
            with open(path, "wb") as f:
                f.write(body + b"\0" * 4096)
        except OSError as e:
            raise XendError(f"[Errno {e.errno}] {e.strerror}: '{path}'") from None

    def _device_create(self, dom: SimDomain, text: str) -> None:
        dev = _tree(text)
        kind = dev[0] if dev else None
        if kind in ("vbd", "tap", "tap2"):
            name = next((str(c[1]) for c in dev[1:] if isinstance(c, tuple) and c[0] == "dev"), "")
            base = name.removeprefix("ioemu:").split(":")[0]
            for other in dom.devices():
                if other[0] in ("vbd", "tap", "tap2"):
                    theirs = next((str(c[1]) for c in other[1:] if isinstance(c, tuple) and c[0] == "dev"), "")
                    if theirs.removeprefix("ioemu:").split(":")[0] == base:
                        raise XendError(f"Device {base} is already connected.")
        elif kind not in ("vif", "vfb", "vkbd"):
            raise XendError(f"Unknown device class: {kind}")
        dom.config.append(("device", dev))

    def _device_destroy(self, dom: SimDomain, kind: str, devid: str) -> None:
        devices = dom.devices()
        vif_index = 0
        for i, dev in enumerate(devices):
            match = False
            if dev[0] == kind and kind in ("vbd", "tap", "tap2"):
                name = next((str(c[1]) for c in dev[1:] if isinstance(c, tuple) and c[0] == "dev"), "")
                base = name.removeprefix("ioemu:").split(":")[0]
                match = devid in (base, str(blkdev_number(base)))
            elif dev[0] == "vif" and kind == "vif":
                match = devid == str(vif_index)
                vif_index += 1
            if match:
                wrapped = [c for c in dom.config if isinstance(c, tuple) and c and c[0] == "device"
                           and len(c) > 1 and c[1] is dev]
                dom.config.remove(wrapped[0])
                return
        raise XendError(f"Device {devid} not connected")


class _HttpError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
