"""``xen:///``: the Xen driver, talking to xend.

URIs (documented in the README, "Xen over xend")::

    xen:///                   xend's UNIX socket /var/lib/xend/xend-socket,
                              then TCP localhost:8000 when the socket fails
    xen:///?socket=PATH       xend's UNIX socket at PATH only
    xen://HOST[:PORT]/        xend over TCP (port 8000 by default)

Each may add ``timeout=SECONDS`` (default 30), the longest one request to
xend may take. Opening asks ``GET /xend/node/`` and reads
``xend_config_format`` (absent: 1), the dialect every conversion then uses.

The driver is a front for backends (:class:`XenBackend`), each implementing
some of the contract's operations under their contract names; every
operation goes to the first backend that implements it, as libvirt's
``xen_unified`` dispatched to its sub-drivers. Today there is one,
:class:`XendBackend`: everything through xend's HTTP interface. The
hypervisor (hypercalls), xenstore and ``xl`` join as further backends placed
before it for what they do better (a running domain's info without xend, its
console pty and VNC port from xenstore, Xen 4.5+ without xend).

What xend lacked answers NO_SUPPORT: networks (libvirt 0.2.2 ran them apart,
in its qemud), inactive domains before xend_config_format 3 (define, start,
undefine, autostart), and undefining a running domain (xend keeps a running
domain managed until it stops). A domain's console pty is in xenstore, not
in xend's replies: ``console_path`` says there is none known.

Reads are batched: listing asks xend once for every domain with its details
(``GET /xend/domain?detail=1``, with ``state=all`` from format 3), and the
reads that follow within one second (state, info, id of each listed domain)
reuse that reply rather than asking again per domain; any change made
through the connection drops the reused replies.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from virtkit.drivers.interface import OPERATIONS, DomainRef, Driver
from virtkit.drivers.xen.backend import MAX_VCPUS, XenBackend
from virtkit.drivers.xen import spellings as sp
from virtkit.drivers.xen.sxpr import Sx, device_sxpr_kind, format_device_sxpr, format_sxpr, load, parse_sxpr
from virtkit.drivers.xen.xend import DEFAULT_PORT, DEFAULT_SOCKET, DEFAULT_TIMEOUT, XendClient, domain_path
from virtkit.errors import (
    ConnectionFailedError,
    DomainExistsError,
    ErrorCode,
    ErrorDomain,
    InvalidArgumentError,
    NoDomainError,
    NoSupportError,
    OperationFailedError,
    OperationInvalidError,
    SaveFileError,
    SExprError,
    VirtError,
    VirtSystemError,
)
from virtkit.uuid import format_uuid, generate_uuid_bytes

if TYPE_CHECKING:
    from virtkit.connection import NodeInfo
    from virtkit.domain import DomainInfo, DomainState, VcpuInfo
    from virtkit.uri import URI
    from virtkit.xml.capabilities import Capabilities
    from virtkit.xml.domain import Device, DomainConfig

__all__ = ["XenDriver", "XenBackend", "XendBackend", "MAX_VCPUS", "open_xend"]

#: How long a reply from xend may serve later reads (seconds).
REUSE_SECONDS = 1.0
#: Keys of xend's domain S-expression that describe the running instance, not its configuration.
_RUNTIME_KEYS = frozenset({
    "domid", "state", "shutdown_reason", "cpu_time", "up_time", "start_time", "online_vcpus",
    "store_mfn", "console_mfn", "status", "memory_dynamic_min", "memory_dynamic_max",
})


# ====================================================================== xend

def open_xend(uri: URI) -> XendBackend:
    """Connect to the xend ``uri`` names (see the module docstring); ConnectionFailedError if none answers."""
    timeout = DEFAULT_TIMEOUT
    socket_path: str | None = None
    for key, value in uri.params:
        if key == "socket":
            socket_path = value
        elif key == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                timeout = -1.0
            if not timeout > 0:
                raise ConnectionFailedError(f"bad timeout {value!r} in {uri.raw!r}: seconds expected",
                                            domain=ErrorDomain.XEN)
        else:
            raise ConnectionFailedError(
                f"unknown parameter {key!r} in {uri.raw!r} (xen:// takes socket= and timeout=)",
                domain=ErrorDomain.XEN)
    if uri.path not in ("", "/"):
        raise ConnectionFailedError(
            f"xen:// URIs have no path: {uri.raw!r} (xen:///, xen:///?socket=PATH or xen://HOST:PORT/)",
            domain=ErrorDomain.XEN)
    if uri.host:
        if socket_path is not None:
            raise ConnectionFailedError(f"{uri.raw!r} names both a host and a socket",
                                        domain=ErrorDomain.XEN)
        candidates = [XendClient(host=uri.host, port=uri.port or DEFAULT_PORT, timeout=timeout)]
    elif socket_path is not None:
        if not socket_path.startswith("/"):
            raise ConnectionFailedError(f"xend's socket must be an absolute path: {uri.raw!r}",
                                        domain=ErrorDomain.XEN)
        candidates = [XendClient(socket_path=socket_path, timeout=timeout)]
    else:
        candidates = [XendClient(socket_path=DEFAULT_SOCKET, timeout=timeout),
                      XendClient(host="localhost", port=DEFAULT_PORT, timeout=timeout)]
    failures: list[str] = []
    for client in candidates:
        try:
            node = client.get("/xend/node/")
        except VirtError as e:
            failures.append(str(e))
            continue
        return XendBackend(client, load(node))
    raise ConnectionFailedError("cannot reach xend: " + "; ".join(failures), domain=ErrorDomain.XEND)


class _Record:
    """One domain as xend last described it, with when."""

    __slots__ = ("sx", "at")

    def __init__(self, sx: Sx, at: float) -> None:
        self.sx = sx
        self.at = at


class XendBackend(XenBackend):
    """Every operation through xend's HTTP interface (``xen-protocols.md`` section 1)."""

    name = "xend"

    def __init__(self, client: XendClient, node: Sx) -> None:
        self.client = client
        self.node = node
        fmt = node.int("xend_config_format")
        self.xend_config_format = fmt if fmt in sp.FORMATS else (1 if fmt is None or fmt < 1 else 4)
        self._lock = threading.Lock()
        self._recent: dict[bytes, _Record] = {}

    # --- plumbing -------------------------------------------------------------------

    @property
    def managed(self) -> bool:
        """Whether xend keeps inactive (managed) domains: format 3 and later."""
        return self.xend_config_format >= 3

    def _need_managed(self, what: str) -> None:
        if not self.managed:
            raise NoSupportError(
                f"this function is not supported by the connection driver: xend with "
                f"xend_config_format {self.xend_config_format} (Xen 3.0.3 or older) keeps no "
                f"inactive domains, so it cannot {what}", domain=ErrorDomain.XEN)

    def _forget(self) -> None:
        with self._lock:
            self._recent.clear()

    def _remember(self, sx: Sx, at: float) -> None:
        raw = _uuid_of(sx)
        if raw is not None:
            with self._lock:
                self._recent[raw] = _Record(sx, at)

    def _fetch(self, ident: str) -> Sx:
        """``GET /xend/domain/IDENT?detail=1`` (a name, an id or a dashed UUID)."""
        sx = load(self.client.get(domain_path(ident), detail=1))
        if sx.head != "domain":
            raise SExprError(f"xend described domain '{ident}' as ({sx.head} ...), not (domain ...)")
        self._remember(sx, time.monotonic())
        return sx

    def _list(self) -> list[Sx]:
        """Every domain xend knows, with details, in one request."""
        query: dict[str, str | int] = {"detail": 1}
        if self.managed:
            query["state"] = "all"
        doms = _items(self.client.get("/xend/domain", **query), "domain")
        now = time.monotonic()
        with self._lock:
            self._recent = {}
        for sx in doms:
            self._remember(sx, now)
        return doms

    def _sx(self, ref: DomainRef) -> Sx:
        """The domain's S-expression: a reply under a second old, or a new request."""
        with self._lock:
            rec = self._recent.get(ref.uuid)
        if rec is not None and time.monotonic() - rec.at < REUSE_SECONDS:
            return rec.sx
        if self.managed or ref.id < 0:
            try:
                return self._fetch(format_uuid(ref.uuid))
            except NoDomainError:
                pass
        else:
            try:
                sx = self._fetch(ref.name)
                if _uuid_of(sx) == ref.uuid:
                    return sx
            except NoDomainError:
                pass
            for sx in self._list():
                if _uuid_of(sx) == ref.uuid:
                    return sx
        raise NoDomainError(f"no domain with UUID {format_uuid(ref.uuid)} (it went away)",
                            domain=ErrorDomain.XEN)

    def _post(self, ref: DomainRef, op: str, **fields: str | int) -> bytes:
        self._forget()
        try:
            return self.client.post(domain_path(ref.name), op, **fields)
        finally:
            self._forget()

    def _ref(self, sx: Sx) -> DomainRef:
        name = sx.opt("name") or "?"
        raw = _uuid_of(sx)
        if raw is None:
            raise SExprError(f"xend describes domain '{name}' without a UUID")
        domid = sx.int("domid")
        return DomainRef(name, raw, domid if domid is not None and domid >= 0 else -1)

    def _config(self, sx: Sx) -> DomainConfig:
        return parse_sxpr(sx, self.xend_config_format)

    # --- connection and node ----------------------------------------------------------

    def get_type(self) -> str:
        return "Xen"

    def get_version(self) -> int:
        return sp.version_number(self.node.int("xen_major") or 0, self.node.int("xen_minor") or 0,
                                 self.node.text("xen_extra") or "")

    def get_hostname(self) -> str:
        return self.node.opt("host") or os.uname().nodename

    def get_max_vcpus(self, type: str | None) -> int:
        return MAX_VCPUS

    def get_node_info(self) -> NodeInfo:
        from virtkit.connection import NodeInfo

        n = self.node
        cpus = n.int("nr_cpus") or 1
        nodes = n.int("nr_nodes") or 1
        cores = n.int("cores_per_socket") or 1
        threads = n.int("threads_per_core") or 1
        sockets = n.int("sockets_per_node")
        if sockets is None:
            # Xen 3.2 dropped sockets_per_node: what the others leave.
            sockets = max(1, cpus // (nodes * cores * threads))
        return NodeInfo(n.opt("machine") or "unknown", (n.int("total_memory") or 0) * 1024, cpus,
                        n.int("cpu_mhz") or 0, nodes, sockets, cores, threads)

    def get_capabilities(self) -> Capabilities:
        from virtkit.xml.capabilities import Capabilities, GuestCaps, GuestDomain

        machine = self.node.opt("machine") or "i686"
        host_arch = "i686" if machine in ("i386", "i486", "i586", "i686") else machine
        guests = []
        for cap in (self.node.text("xen_caps") or "").split():
            kind, _, arch_spec = cap.split("-", 2) if cap.count("-") >= 2 else (cap, "", "")
            if kind not in ("xen", "hvm"):
                continue
            pae = arch_spec.endswith("p")
            arch = {"x86_32": "i686", "x86_32p": "i686", "x86_64": "x86_64",
                    "ia64": "ia64", "powerpc64": "ppc64"}.get(arch_spec, arch_spec.rstrip("p"))
            wordsize = 64 if arch in ("x86_64", "ia64", "ppc64") else 32
            features: tuple[str, ...] = ("pae",) if pae else ()
            if kind == "hvm":
                features = features + (("nonpae",) if arch == "i686" else ()) + ("acpi", "apic")
                guests.append(GuestCaps(os_type="hvm", arch=arch, wordsize=wordsize,
                                        loader="/usr/lib/xen/boot/hvmloader",
                                        machines=("xenfv",), domains=(GuestDomain("xen"),),
                                        features=features))
            else:
                guests.append(GuestCaps(os_type="xen", arch=arch, wordsize=wordsize,
                                        machines=("xenpv",), domains=(GuestDomain("xen"),),
                                        features=features))
        host_features = ("pae",) if "pae" in (self.node.text("hw_caps") or "") else ()
        return Capabilities(host_arch=host_arch, host_features=host_features, guests=tuple(guests))

    # --- domains: listing, look-up, creation ----------------------------------------------

    def list_domain_ids(self) -> list[int]:
        ids = []
        for sx in self._list():
            domid = sx.int("domid")
            if domid is not None and domid >= 0:
                ids.append(domid)
        return sorted(ids)

    def list_defined_domain_names(self) -> list[str]:
        if not self.managed:
            return []
        reply = self.client.get("/xend/domain", state="halted")
        names = []
        for child in reply.children:
            if child.is_atom and child.text:
                names.append(child.text)
        return sorted(names)

    def list_all_domains(self) -> list[DomainRef]:
        refs = [self._ref(sx) for sx in self._list()]
        active = sorted((r for r in refs if r.id >= 0), key=lambda r: r.id)
        inactive = sorted((r for r in refs if r.id < 0), key=lambda r: r.name)
        return active + inactive

    def lookup_domain_by_id(self, id: int) -> DomainRef:
        try:
            sx = self._fetch(str(id))
        except NoDomainError:
            raise NoDomainError(f"domain not found: no domain with id {id}", domain=ErrorDomain.XEN) from None
        ref = self._ref(sx)
        if ref.id != id:
            raise NoDomainError(f"domain not found: no domain with id {id}", domain=ErrorDomain.XEN)
        return ref

    def lookup_domain_by_name(self, name: str) -> DomainRef:
        try:
            sx = self._fetch(name)
        except NoDomainError:
            raise NoDomainError(f"domain not found: no domain named '{name}'",
                                domain=ErrorDomain.XEN) from None
        ref = self._ref(sx)
        if ref.name != name:
            raise NoDomainError(f"domain not found: no domain named '{name}'", domain=ErrorDomain.XEN)
        return ref

    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        with self._lock:
            rec = self._recent.get(uuid)
        if rec is not None and time.monotonic() - rec.at < REUSE_SECONDS:
            return self._ref(rec.sx)
        text = format_uuid(uuid)
        if self.managed:
            try:
                ref = self._ref(self._fetch(text))
            except NoDomainError:
                ref = None
            if ref is not None and ref.uuid == uuid:
                return ref
        else:
            for sx in self._list():
                if _uuid_of(sx) == uuid:
                    return self._ref(sx)
        raise NoDomainError(f"domain not found: no domain with UUID {text}", domain=ErrorDomain.XEN)

    def _find(self, name: str | None = None, uuid: bytes | None = None) -> DomainRef | None:
        try:
            if uuid is not None:
                return self.lookup_domain_by_uuid(uuid)
            assert name is not None
            return self.lookup_domain_by_name(name)
        except NoDomainError:
            return None

    def _check_unique(self, config: DomainConfig) -> bytes:
        """The UUID to use for ``config``; DomainExistsError when another domain holds its name or UUID."""
        by_name = self._find(name=config.name)
        uuid = config.uuid
        if uuid is None:
            if by_name is not None:
                raise DomainExistsError(f"domain '{config.name}' already exists with UUID "
                                        f"{format_uuid(by_name.uuid)}", domain=ErrorDomain.XEN)
            return generate_uuid_bytes()
        if by_name is not None and by_name.uuid != uuid:
            raise DomainExistsError(f"domain '{config.name}' already exists with UUID "
                                    f"{format_uuid(by_name.uuid)}", domain=ErrorDomain.XEN)
        by_uuid = self._find(uuid=uuid)
        if by_uuid is not None and by_uuid.name != config.name:
            raise DomainExistsError(f"domain '{by_uuid.name}' already exists with UUID "
                                    f"{format_uuid(uuid)}", domain=ErrorDomain.XEN)
        return uuid

    def create_domain(self, config: DomainConfig) -> DomainRef:
        uuid = self._check_unique(config)
        if self._find(name=config.name) is not None:
            raise DomainExistsError(f"domain '{config.name}' already exists", domain=ErrorDomain.XEN)
        text = format_sxpr(dataclasses.replace(config, uuid=uuid), self.xend_config_format)
        self._forget()
        self.client.post("/xend/domain/", "create", config=text)
        # xend creates the domain paused: wait for its devices, then let it run.
        try:
            self.client.post(domain_path(config.name), "wait_for_devices")
            self.client.post(domain_path(config.name), "unpause")
        except VirtError:
            try:
                self.client.post(domain_path(config.name), "destroy")
            except VirtError:
                pass
            raise
        finally:
            self._forget()
        return self.lookup_domain_by_uuid(uuid)

    def define_domain(self, config: DomainConfig) -> DomainRef:
        self._need_managed("define a domain")
        uuid = self._check_unique(config)
        text = format_sxpr(dataclasses.replace(config, uuid=uuid, id=None), self.xend_config_format)
        self._forget()
        try:
            self.client.post("/xend/domain/", "new", config=text)
        finally:
            self._forget()
        return self.lookup_domain_by_uuid(uuid)

    def restore_domain(self, path: str) -> DomainRef:
        self._forget()
        try:
            body = self.client.post("/xend/domain/", "restore", file=path)
        except (VirtSystemError, DomainExistsError, NoSupportError):
            raise
        except VirtError as e:
            if e.domain != ErrorDomain.XEND or e.code not in (ErrorCode.POST_FAILED,):
                raise
            raise SaveFileError(f"xend cannot restore '{path}': {e.message}",
                                domain=ErrorDomain.XEND) from None
        finally:
            self._forget()
        try:
            sx = load(body)
        except VirtError:
            sx = None
        if sx is not None and sx.head == "domain":
            raw = _uuid_of(sx)
            if raw is not None:
                return self.lookup_domain_by_uuid(raw)
        raise OperationFailedError(f"xend restored '{path}' but did not say which domain it is",
                                   domain=ErrorDomain.XEND)

    # --- one domain ------------------------------------------------------------------

    def domain_get_state(self, dom: DomainRef) -> tuple[DomainState, int]:
        return _state(self._sx(dom)), 0

    def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        from virtkit.domain import DomainInfo

        sx = self._sx(dom)
        memory = sx.int("memory") or 0
        maxmem = max(sx.int("maxmem") or memory, memory)
        vcpus = sx.int("online_vcpus") or sx.int("vcpus") or 1
        avail = sx.int("vcpu_avail")
        if avail is not None:
            vcpus = min(vcpus, bin(avail).count("1") or vcpus)
        cpu_time = sx.float("cpu_time") or 0.0
        return DomainInfo(_state(sx), maxmem * 1024, memory * 1024, vcpus, int(cpu_time * 1e9))

    def domain_get_os_type(self, dom: DomainRef) -> str:
        image = self._sx(dom).node("image")
        kind = image.first() if image is not None else None
        return "hvm" if kind is not None and kind.head == "hvm" else "linux"

    def domain_get_max_memory(self, dom: DomainRef) -> int:
        sx = self._sx(dom)
        memory = sx.int("memory") or 0
        return max(sx.int("maxmem") or memory, memory) * 1024

    def domain_set_max_memory(self, dom: DomainRef, kib: int) -> None:
        self._post(dom, "maxmem_set", memory=-(-kib // 1024))

    def domain_set_memory(self, dom: DomainRef, kib: int) -> None:
        self._post(dom, "mem_target_set", target=-(-kib // 1024))

    def domain_set_vcpus(self, dom: DomainRef, count: int) -> None:
        if count > MAX_VCPUS:
            raise InvalidArgumentError(f"cannot set {count} vCPUs: Xen's maximum is {MAX_VCPUS}",
                                       domain=ErrorDomain.XEN)
        self._post(dom, "set_vcpus", vcpus=count)

    def domain_pin_vcpu(self, dom: DomainRef, vcpu: int, cpumap: tuple[bool, ...]) -> None:
        sx = self._sx(dom)
        vcpus = sx.int("vcpus") or 1
        if vcpu >= vcpus:
            raise InvalidArgumentError(f"vCPU {vcpu} does not exist: domain '{dom.name}' has {vcpus}",
                                       domain=ErrorDomain.XEN)
        cpus = ",".join(str(i) for i, on in enumerate(cpumap) if on)
        # xend before Xen 3.4 wanted a Python list, later ones a plain CPU list.
        if (self.node.int("xen_major") or 0, self.node.int("xen_minor") or 0) < (3, 4):
            cpus = f"[{cpus}]"
        self._post(dom, "pincpu", vcpu=vcpu, cpumap=cpus)

    def domain_get_vcpus(self, dom: DomainRef) -> list[VcpuInfo]:
        from virtkit.domain import VcpuInfo, VcpuState

        ncpus = self.get_node_info().cpus
        vcpus = _items(self.client.get(domain_path(dom.name), op="vcpuinfo"), "vcpu")
        out = []
        for v in vcpus:
            number = v.int("number") or 0
            online = bool(v.flag("online"))
            state = (VcpuState.OFFLINE if not online else VcpuState.RUNNING if v.flag("running")
                     else VcpuState.BLOCKED)
            cpumap = v.raw("cpumap")
            allowed: set[int] = set()
            if isinstance(cpumap, tuple):
                allowed = {int(c) for c in cpumap if isinstance(c, str) and c.isdigit()}
            elif isinstance(cpumap, str) and cpumap:
                allowed = {int(c) for c in cpumap.replace(",", " ").split() if c.isdigit()}
            affinity = tuple((i in allowed) if allowed else True for i in range(ncpus))
            cpu = v.int("cpu")
            out.append(VcpuInfo(number, state, int((v.float("cpu_time") or 0.0) * 1e9),
                                cpu if online and cpu is not None else -1, affinity))
        return sorted(out, key=lambda i: i.number)

    def domain_get_config(self, dom: DomainRef, inactive: bool) -> DomainConfig:
        config = self._config(self._sx(dom))
        if inactive:
            # What the next start uses: no id, no names xend gives at start.
            nics = tuple(dataclasses.replace(n, target_dev=None)
                         if n.target_dev is not None and n.target_dev.startswith("vif") else n
                         for n in config.interfaces)
            chardevs = tuple(dataclasses.replace(c, tty=None) for c in config.chardevs)
            config = dataclasses.replace(config, id=None, interfaces=nics, chardevs=chardevs)
        return config

    def domain_start(self, dom: DomainRef) -> DomainRef:
        self._need_managed("start an inactive domain")
        self._post(dom, "start")
        return self.lookup_domain_by_uuid(dom.uuid)

    def domain_suspend(self, dom: DomainRef) -> None:
        self._post(dom, "pause")

    def domain_resume(self, dom: DomainRef) -> None:
        self._post(dom, "unpause")

    def domain_shutdown(self, dom: DomainRef) -> None:
        self._post(dom, "shutdown", reason="poweroff")

    def domain_reboot(self, dom: DomainRef) -> None:
        self._post(dom, "shutdown", reason="reboot")

    def domain_destroy(self, dom: DomainRef) -> None:
        self._post(dom, "destroy")

    def domain_undefine(self, dom: DomainRef) -> None:
        from virtkit.domain import DomainState

        self._need_managed("undefine a domain")
        if _state(self._sx(dom)) != DomainState.SHUTOFF:
            raise NoSupportError(
                f"this function is not supported by the connection driver: xend cannot undefine "
                f"the running domain '{dom.name}' (it stays managed until it stops): destroy or "
                f"shut it down first", domain=ErrorDomain.XEN)
        self._post(dom, "delete")

    def domain_save(self, dom: DomainRef, path: str) -> None:
        if dom.id == 0:
            raise OperationInvalidError("domain 0 (Domain-0) cannot be saved", domain=ErrorDomain.XEN)
        self._post(dom, "save", file=path)

    def domain_core_dump(self, dom: DomainRef, path: str) -> None:
        self._post(dom, "dump", file=path, live=1, crash=0)

    def domain_get_autostart(self, dom: DomainRef) -> bool:
        return self._sx(dom).opt("on_xend_start") == "start"

    def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        self._need_managed("mark a domain for autostart")
        sx = self._sx(dom)
        children: list[Any] = ["vm"]
        seen = False
        for child in sx.tree[1:]:
            if isinstance(child, tuple) and child and child[0] in _RUNTIME_KEYS:
                continue
            if isinstance(child, tuple) and child and child[0] == "on_xend_start":
                child = ("on_xend_start", "start" if autostart else "ignore")
                seen = True
            children.append(child)
        if not seen:
            children.append(("on_xend_start", "start" if autostart else "ignore"))
        from virtkit.sexpr import dumps

        self._forget()
        try:
            self.client.post("/xend/domain/", "new", config=dumps(tuple(children)))
        finally:
            self._forget()

    def domain_is_persistent(self, dom: DomainRef) -> bool:
        if not self.managed:
            return False
        sx = self._sx(dom)
        if sx.int("domid") is None:
            return True  # xend reports inactive domains only when it manages them
        # A running domain says nothing of it: like libvirt, look where xend keeps
        # managed domains (beside its socket), when it runs on this host.
        if self.client.socket_path is None:
            return False
        base = os.path.dirname(self.client.socket_path)
        return os.path.exists(os.path.join(base, "domains", format_uuid(dom.uuid), "config.sxp"))

    def domain_get_console_path(self, dom: DomainRef) -> str:
        raise OperationInvalidError(
            f"domain '{dom.name}' has no serial console known to xend (its pty is in xenstore)",
            domain=ErrorDomain.XEN)

    def domain_attach_device(self, dom: DomainRef, device: Device) -> None:
        config = self._config(self._sx(dom))
        text = format_device_sxpr(device, config, self.xend_config_format)
        self._post(dom, "device_create", config=text)

    def domain_detach_device(self, dom: DomainRef, device: Device) -> None:
        from virtkit.xml.domain import Disk, Interface

        sx = self._sx(dom)
        kind = device_sxpr_kind(device)
        if isinstance(device, Disk):
            name, _ = sp.parse_disk_target(device.target_dev)
            if not any(sp.parse_disk_target(d.opt("dev") or "")[0] == name
                       for dev in sx.nodes("device") for d in [dev.first()] if d is not None
                       and d.head in ("vbd", "tap", "tap2")):
                raise OperationFailedError(f"domain '{dom.name}' has no disk '{name}' to detach",
                                           domain=ErrorDomain.XEN)
            devid: int | str = disk_devid(name)
        elif isinstance(device, Interface):
            vifs = [d for dev in sx.nodes("device") for d in [dev.first()]
                    if d is not None and d.head == "vif"]
            index = next((i for i, v in enumerate(vifs)
                          if device.mac is None or (v.opt("mac") or "").lower() == device.mac.lower()),
                         None)
            if index is None:
                raise OperationFailedError(
                    f"domain '{dom.name}' has no interface with MAC {device.mac} to detach",
                    domain=ErrorDomain.XEN)
            devid = index
        else:
            raise sp.unsupported("device", "xend detaches disks and interfaces only")
        self._post(dom, "device_destroy", type=kind, dev=devid)


def _state(sx: Sx) -> DomainState:
    """libvirt's state from xend's: no id -> shut off, else from its state letters."""
    from virtkit.domain import DomainState

    if sx.int("domid") is None:
        return DomainState.SHUTOFF
    return sp.state_of(sx.opt("state") or "")


def _items(reply: Any, head: str) -> list[Sx]:
    """The ``(HEAD ...)`` lists of a reply listing several (``((domain ...) (domain ...))``);
    a reply holding one is accepted as it is."""
    tree = reply.to_tree()
    if isinstance(tree, tuple) and tree and tree[0] == head:
        return [Sx(tree, head)]
    if not isinstance(tree, tuple):
        raise SExprError(f"expected a list of ({head} ...) from xend, found the atom {tree!r}")
    return [Sx(c, head) for c in tree if isinstance(c, tuple) and c and c[0] == head]


def _uuid_of(sx: Sx) -> bytes | None:
    from virtkit.uuid import parse_uuid

    text = sx.opt("uuid")
    if text is None:
        return None
    try:
        return parse_uuid(text)
    except VirtError:
        return None


def disk_devid(name: str) -> int | str:
    """xend's device number of a disk name (``xvdb`` 51728, ``hda`` 768, ``sda`` 2048...).

    The number is what xend (blkif) derives from the name; names it does not
    number are sent as they are (xend 3.1 and later also take names).
    """
    def letters(s: str) -> int | None:
        if s and s.isalpha() and s.islower():
            n = 0
            for c in s:
                n = n * 26 + (ord(c) - ord("a") + 1)
            return n - 1
        return None

    base, part = name.rstrip("0123456789"), name[len(name.rstrip("0123456789")):]
    p = int(part) if part else 0
    if base.startswith("xvd"):
        idx = letters(base[3:])
        if idx is not None and idx < 16 and p < 16:
            return (202 << 8) | (idx << 4) | p
    elif base.startswith("hd"):
        idx = letters(base[2:])
        majors = (3, 22, 33, 34, 56, 57, 88, 89, 90, 91)
        if idx is not None and idx < 2 * len(majors) and p < 64:
            return (majors[idx // 2] << 8) | ((idx % 2) << 6) | p
    elif base.startswith("sd"):
        idx = letters(base[2:])
        if idx is not None and idx < 16 and p < 16:
            return (8 << 8) | (idx << 4) | p
    return name


# ==================================================================== today's Xen

#: The privcmd device (today's path first, then Xen 3's).
PRIVCMD_PATHS = ("/dev/xen/privcmd", "/proc/xen/privcmd")
#: Where the system virtkitd's read-only socket is (a non-root user's way in).
READ_ONLY_SOCKET = "/run/virtkit/virtkit-sock-ro"
#: Operations the toolstack backend composes from running and defined domains
#: (the live backends' answers alone would be wrong: they know no definitions,
#: and a live change must also reach the domain's config file).
_COMPOSED = frozenset({
    "list_all_domains", "list_defined_domain_names", "domain_get_config", "domain_pin_vcpu",
    "domain_set_max_memory", "domain_set_memory", "domain_set_vcpus",
})
#: Look-ups: a live backend that finds nothing hands over to the next backend.
_LOOKUPS = frozenset({"lookup_domain_by_id", "lookup_domain_by_name", "lookup_domain_by_uuid"})
#: Operations libxl must carry out itself: destroying a domain also tears down
#: its devices, its xenstore nodes and the xl process watching it, which a bare
#: destroydomain hypercall leaves behind.
_TOOLSTACK_ONLY = frozenset({"domain_destroy"})


def xend_reachable(timeout: float = 0.5) -> bool:
    """Whether something listens where xend would: its UNIX socket, or TCP localhost:8000."""
    import socket as _socket

    if os.path.exists(DEFAULT_SOCKET):
        return True
    try:
        with _socket.create_connection(("localhost", DEFAULT_PORT), timeout=timeout):
            return True
    except OSError:
        return False


def dom0_access() -> bool:
    """Whether this process may drive Xen itself: a privcmd device and xenstored's
    socket it can open read-write (root in dom0)."""
    from virtkit.drivers.xen.xenstore import default_socket

    privcmd = next((p for p in PRIVCMD_PATHS if os.path.exists(p)), None)
    return (privcmd is not None and os.access(privcmd, os.R_OK | os.W_OK)
            and os.access(default_socket(), os.W_OK))


def open_read_only_proxy(uri: URI) -> Driver:
    """``xen:///`` read-only for a user who is not root: the system ``virtkitd
    --driver xen`` serves it on its read-only socket (:data:`READ_ONLY_SOCKET`),
    as libvirt 0.2.2's setuid proxy served such users. The daemon refuses every
    mutating call; ConnectionFailedError when it does not answer."""
    from virtkit.drivers.remote.driver import RemoteDriver
    from virtkit.uri import parse_uri

    proxied = parse_uri(f"xen+unix:///?socket={READ_ONLY_SOCKET}")
    try:
        return RemoteDriver.open(proxied, True)
    except ConnectionFailedError as e:
        raise ConnectionFailedError(
            f"{uri.raw!r} read-only: the system daemon's read-only socket {READ_ONLY_SOCKET} "
            f"does not answer ({e})", domain=ErrorDomain.XEN) from None


def open_toolstack(uri: URI) -> list[XenBackend]:
    """Today's chain for a host without xend: the hypervisor's backend (when this
    virtkit has one and it works here), xenstore, ``xl`` with ``/etc/xen``.

    ConnectionFailedError when this is not a Xen dom0 (no privcmd device, no
    xenstored), or when the caller may not use them (not root: the system
    ``virtkitd --driver xen`` serves such users read-only)."""
    from virtkit.drivers.xen.configdir import DEFAULT_DIR, ConfigDir
    from virtkit.drivers.xen.store import XenstoreBackend
    from virtkit.drivers.xen.xenstore import XenstoreClient, default_socket
    from virtkit.drivers.xen.xl import Xl, XlBackend

    for key, _value in uri.params:
        raise ConnectionFailedError(
            f"unknown parameter {key!r} in {uri.raw!r} (without xend, xen:/// takes none)",
            domain=ErrorDomain.XEN)
    privcmd = next((p for p in PRIVCMD_PATHS if os.path.exists(p)), None)
    xs_path = default_socket()
    if privcmd is None and not os.path.exists(xs_path):
        raise ConnectionFailedError(
            "no Xen here: xend does not answer (neither its socket "
            f"{DEFAULT_SOCKET} nor localhost:{DEFAULT_PORT}), and this is no Xen dom0 "
            f"(no {' or '.join(PRIVCMD_PATHS)}, no xenstored at {xs_path})",
            code=ErrorCode.NO_XEN, domain=ErrorDomain.XEN)
    if not (privcmd is not None and os.access(privcmd, os.R_OK | os.W_OK)
            and os.access(xs_path, os.W_OK)):
        raise ConnectionFailedError(
            f"xen:/// needs root in dom0 ({privcmd or PRIVCMD_PATHS[0]} and {xs_path} are "
            f"root's); other users open it read-only (virtkit.open_read_only, virtkit -r), "
            f"served by the system daemon ('virtkitd --driver xen', socket {READ_ONLY_SOCKET}"
            f"{'' if os.path.exists(READ_ONLY_SOCKET) else ', not running now'})",
            code=ErrorCode.OPERATION_DENIED, domain=ErrorDomain.XEN)
    xl = Xl()
    if not xl.available():
        raise ConnectionFailedError(
            f"this Xen host has no xend and no '{xl.binary}' (install Xen's toolstack, "
            f"e.g. Debian's xen-utils)", code=ErrorCode.NO_XEN, domain=ErrorDomain.XEN)
    store = XenstoreBackend(XenstoreClient(xs_path))
    backends: list[XenBackend] = []
    hypervisor = _open_hypervisor()
    if hypervisor is not None:
        backends.append(hypervisor)
    live = hypervisor if hypervisor is not None and hasattr(hypervisor, "list_all_domains") \
        else store
    configs = ConfigDir(os.environ.get("VIRTKIT_XEN_CONFIG_DIR") or DEFAULT_DIR)
    toolstack = XlBackend(xl, configs, store, live, fast=hypervisor)
    store.fallback = toolstack
    return backends + [store, toolstack]


def _open_hypervisor() -> XenBackend | None:
    """The hypercall backend, when this virtkit has one and it answers here."""
    try:
        from virtkit.drivers.xen import hypervisor
    except ImportError:
        return None
    opener = getattr(hypervisor, "open_hypervisor", None)
    cls = getattr(hypervisor, "HypervisorBackend", None)
    try:
        if callable(opener):
            backend = opener()
        elif isinstance(cls, type):
            backend = cls()
        else:
            return None
    except VirtError:
        return None  # an interface this build does not speak: xenstore and xl serve alone
    return backend if isinstance(backend, XenBackend) else None


# ==================================================================== driver

def _route(name: str) -> Callable[..., Any]:
    base = getattr(Driver, name)

    on_domain = OPERATIONS[name].target == "domain"
    mutating = OPERATIONS[name].mutating

    def call(self: XenDriver, *args: Any) -> Any:
        route = self._routes.get(name)
        if route is None:
            raise self._unrouted(name)
        if mutating:
            for forget in self._forget:
                forget()
        if on_domain and self._current is not None:
            # A caller's reference may be stale: the domain stopped, or runs
            # under a new id after a reboot or a restore.
            args = (self._current(args[0]),) + args[1:]
        return route(*args)

    call.__name__ = name
    call.__qualname__ = f"XenDriver.{name}"
    call.__doc__ = base.__doc__
    call.__wrapped__ = base.__wrapped__  # type: ignore[attr-defined]
    return call


def _chain(op: str, backends: list[XenBackend]) -> Callable[..., Any] | None:
    """How ``op`` is served by ``backends`` (see the module docstring's routing rules)."""
    offered = [b for b in backends if getattr(b, op, None) is not None]
    if op in _COMPOSED or op in _TOOLSTACK_ONLY:
        offered = [b for b in offered if not b.live_only] or offered
    if not offered:
        return None
    methods = [(getattr(b, op), b.live_only) for b in offered]
    first, first_live = methods[0]
    if len(methods) == 1 or not first_live:
        return first  # type: ignore[no-any-return]
    if op in _LOOKUPS:
        def lookup(*args: Any) -> Any:
            missing: NoDomainError | None = None
            for method, _live in methods:
                try:
                    return method(*args)
                except NoDomainError as e:
                    missing = missing or e
            assert missing is not None
            raise missing
        return lookup
    if OPERATIONS[op].target == "domain":
        full = next((m for m, live in methods if not live), None)
        if full is None:
            return first  # type: ignore[no-any-return]

        def by_state(dom: DomainRef, *args: Any) -> Any:
            return (first if dom.id >= 0 else full)(dom, *args)
        return by_state
    return first  # type: ignore[no-any-return]


class XenDriver(Driver):
    """The ``xen://`` connection: contract operations routed to Xen backends.

    Opening ``xen:///`` picks the backends: xend when it answers (its socket or
    TCP port 8000; always for ``?socket=`` and ``xen://HOST/``), else today's
    chain in a dom0 without xend (:func:`open_toolstack`: hypervisor,
    xenstore, ``xl``), else a clear error. Each operation goes to the first
    backend that has it, with three refinements for backends that know the
    running domains only (:attr:`XenBackend.live_only`): a domain operation on
    an inactive domain passes them by, a look-up that finds nothing there
    goes on to the next backend, and the operations that combine running and
    defined domains (:data:`_COMPOSED`) go to the toolstack backend, which
    asks them itself.
    """

    name = "Xen"
    schemes = ("xen",)
    #: The backends classes whose operations the driver offers, in routing order.
    BACKENDS: ClassVar[tuple[type[XenBackend], ...]] = ()

    def __init__(self, uri: URI, read_only: bool, backends: list[XenBackend]) -> None:
        super().__init__(uri, read_only)
        self.backends = backends
        #: Brings a caller's domain reference up to date before a domain
        #: operation (xenstore's view; xend resolves UUIDs itself).
        self._current: Callable[[DomainRef], DomainRef] | None = next(
            (getattr(b, "current") for b in backends if hasattr(b, "current")), None)
        #: A running domain's info in one step while its reference holds
        #: (the hypervisor's getdomaininfo), None: the routed path.
        self._info_now: Callable[[DomainRef], DomainInfo | None] | None = next(
            (getattr(b, "info_now") for b in backends if hasattr(b, "info_now")), None)
        #: What backends keep of their last reads, dropped before any change.
        self._forget: list[Callable[[], None]] = [
            getattr(b, "forget") for b in backends if hasattr(b, "forget")]
        self._routes: dict[str, Callable[..., Any]] = {}
        for op in OPERATIONS:
            route = _chain(op, backends)
            if route is not None:
                self._routes[op] = route

    @classmethod
    def open(cls, uri: URI, read_only: bool) -> XenDriver:
        if uri.transport:
            raise ConnectionFailedError(f"{uri.raw!r}: the Xen driver is local (use xen:///)",
                                        domain=ErrorDomain.XEN)
        explicit = uri.host or any(k == "socket" for k, _ in uri.params)
        if explicit or xend_reachable():
            return cls(uri, read_only, [open_xend(uri)])
        if read_only and not uri.params and not dom0_access() \
                and os.path.exists(READ_ONLY_SOCKET):
            return open_read_only_proxy(uri)  # type: ignore[return-value]
        return cls(uri, read_only, open_toolstack(uri))

    def close(self) -> None:
        for backend in self.backends:
            backend.close()

    @property
    def xend(self) -> XendBackend:
        """The xend backend."""
        for backend in self.backends:
            if isinstance(backend, XendBackend):
                return backend
        raise AssertionError("no xend backend")

    @property
    def xend_config_format(self) -> int:
        """The dialect xend speaks (1-4)."""
        return self.xend.xend_config_format

    def backend(self, name: str) -> XenBackend | None:
        """The backend called ``name`` (``xend``, ``hypervisor``, ``xenstore``, ``xl``), if any."""
        return next((b for b in self.backends if b.name == name), None)

    def all_domain_stats(self) -> dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]]:
        """Info and vCPUs of every domain in one call (not a contract operation:
        ``Connection.all_domain_stats``, the benchmarks): the first backend that
        knows every domain and offers it answers (the toolstack's, which takes
        the running domains from the hypervisor's in one pass of hypercalls
        when there is one), else a live-only one."""
        for backend in sorted(self.backends, key=lambda b: b.live_only):
            stats = getattr(backend, "all_domain_stats", None)
            if stats is not None:
                return stats()  # type: ignore[no-any-return]
        raise self._unrouted("all_domain_stats")

    def _unrouted(self, name: str) -> NoSupportError:
        return NoSupportError(f"this function is not supported by the connection driver: "
                              f"{self.name} driver does not implement {name}")


def _install_routes() -> None:
    from virtkit.drivers.xen.store import XenstoreBackend
    from virtkit.drivers.xen.xl import XlBackend

    XenDriver.BACKENDS = (XendBackend, XenstoreBackend, XlBackend)
    offered = {op for backend in XenDriver.BACKENDS for op in OPERATIONS if hasattr(backend, op)}
    for op in sorted(offered):
        setattr(XenDriver, op, _route(op))
    XenDriver.domain_get_info = _fast_info(XenDriver.domain_get_info)  # type: ignore[method-assign]


def _fast_info(routed: Callable[[XenDriver, DomainRef], DomainInfo]) -> Callable[..., DomainInfo]:
    """``domain_get_info``: one hypercall while the caller's reference still
    names the running domain (:meth:`HypervisorBackend.info_now`), else the
    routed path (the reference brought up to date, then the backend serving
    the domain in its state)."""
    def domain_get_info(self: XenDriver, dom: DomainRef) -> DomainInfo:
        info_now = self._info_now
        if info_now is not None and dom.id >= 0:
            got = info_now(dom)
            if got is not None:
                return got
        return routed(self, dom)

    for attr in ("__name__", "__qualname__", "__doc__", "__wrapped__"):
        setattr(domain_get_info, attr, getattr(routed, attr))
    return domain_get_info


_install_routes()
