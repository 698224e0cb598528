"""Today's Xen without xend: the ``xl`` toolstack, and the config files in ``/etc/xen``.

:class:`XlBackend` serves every domain operation of the contract by running
``xl`` (libxenlight's command-line tool, which does for each call what xend
did as a daemon) and by keeping the defined domains as XM/xl config files
(:class:`~virtkit.drivers.xen.configdir.ConfigDir`):

==========================  ==================================================
operation                   what runs
==========================  ==================================================
define / undefine           ``/etc/xen/NAME.cfg`` written atomically / removed
start                       ``xl create /etc/xen/NAME.cfg``
create (transient)          the config in a temporary file, ``xl create`` it
shutdown / reboot           ``xl shutdown -F`` / ``xl reboot -F`` (the
                            xenstore backend writes ``control/shutdown`` first)
destroy, suspend, resume    ``xl destroy``, ``xl pause``, ``xl unpause``
save / restore              ``xl save DOM FILE`` / ``xl restore FILE`` (the
                            file's header is checked before xl sees it)
core dump                   ``xl dump-core DOM FILE``
memory, max memory          ``xl mem-set`` / ``xl mem-max`` (running), the file
vCPUs, pinning              ``xl vcpu-set`` / ``xl vcpu-pin`` (running), the file
devices                     ``xl block-attach/-detach``, ``xl network-attach/
                            -detach`` (running), the file (defined, inactive)
autostart                   the ``/etc/xen/auto/NAME.cfg`` link (Debian's xendomains)
lifecycle actions           the file's ``on_poweroff``/``on_reboot``/``on_crash``:
                            the ``xl`` process that watches each domain it
                            created carries them out
info, state, vCPU info      ``xl list`` / ``xl vcpu-list`` (when no hypervisor
                            backend answers first)
node info, capabilities     ``xl info``, once per connection
==========================  ==================================================

Running domains are named by the *live* backend it is given (xenstore, or the
hypervisor's): every domain the hypervisor runs is listed, including those
started with ``xl`` by hand. A running domain is defined when a config file
carries its name.

``xl``'s failures are mapped to virtkit errors (domain ``XENXL``): an unknown
domain to NoDomainError, a name or UUID in use to DomainExistsError, anything
else to OperationFailedError with xl's own last message; a command running
past its timeout is killed (OPERATION_TIMEOUT).
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
import threading
import time
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from virtkit import _lazy_re as lazy_re
from virtkit.drivers.interface import DomainRef
from virtkit.drivers.xen import spellings as sp
from virtkit.drivers.xen.configdir import ConfigDir, Definition
from virtkit.drivers.xen.backend import MAX_VCPUS, XenBackend
from virtkit.drivers.xen.host import HostFacts
from virtkit.errors import (
    DomainExistsError,
    ErrorCode,
    ErrorDomain,
    InvalidArgumentError,
    NoDomainError,
    NoSupportError,
    OperationDeniedError,
    OperationFailedError,
    OperationInvalidError,
    SaveFileError,
    VirtError,
    VirtSystemError,
)
from virtkit.uuid import format_uuid, generate_uuid_bytes, parse_uuid

if TYPE_CHECKING:
    from virtkit.connection import NodeInfo
    from virtkit.domain import DomainInfo, DomainState, VcpuInfo
    from virtkit.drivers.xen.store import LiveFacts, XenstoreBackend
    from virtkit.xml.capabilities import Capabilities
    from virtkit.xml.domain import Device, Disk, DomainConfig, Interface, LifecycleAction

__all__ = ["Xl", "XlBackend", "XlRow", "parse_xl_list", "parse_vcpu_list", "read_save_header",
           "SAVE_MAGIC"]

_XL = ErrorDomain.XENXL
#: How long an ``xl list`` reply serves later reads (seconds).
REUSE_SECONDS = 0.5
#: xl's save file: magic, then byte order, mandatory and optional flags, optional data length.
SAVE_MAGIC = b"Xen saved domain, xl format\n \0 \r"
_SAVE_HEADER = struct.Struct("=IIII")
_BYTEORDER = 0x01020304
_SAVE_FLAG_JSON = 1
_SAVE_FLAGS_KNOWN = 0x3  # JSON config, stream version 2

_NO_DOMAIN = lazy_re.compile(r"invalid domain identifier|domain \S+ does not exist|no such domain|"
                        r"unable to find domain|domain not found", re.I)
_EXISTS = lazy_re.compile(r"already exists|already in use", re.I)
_DENIED = lazy_re.compile(r"permission denied|must be run as root|operation not permitted", re.I)


# ====================================================================== running xl

class Xl:
    """Runs ``xl`` subcommands (``binary``: ``$VIRTKIT_XL`` or ``xl``)."""

    def __init__(self, binary: str | None = None, *, timeout: float = 600.0) -> None:
        self.binary = binary or os.environ.get("VIRTKIT_XL") or "xl"
        self.timeout = timeout

    def available(self) -> bool:
        """Whether ``binary`` is an executable file, as named or on ``PATH``
        (``shutil.which``'s answer, without importing shutil and its
        compression modules on every connection's way)."""
        if os.sep in self.binary:
            return os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)
        for folder in (os.environ.get("PATH") or os.defpath).split(os.pathsep):
            candidate = os.path.join(folder or ".", self.binary)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return True
        return False

    def run(self, *args: str, what: str, timeout: float | None = None,
            exists: type[VirtError] = DomainExistsError) -> str:
        """Run ``xl ARGS`` and return its standard output; the error for its failure
        otherwise (``what`` names the action in messages, ``exists`` is raised for
        xl's "already exists")."""
        import subprocess  # here: listing and reading never run xl

        limit = self.timeout if timeout is None else timeout
        try:
            proc = subprocess.run([self.binary, *args], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=limit)
        except FileNotFoundError:
            raise NoSupportError(f"cannot {what}: '{self.binary}' (Xen's xl toolstack) is not "
                                 f"installed", domain=_XL) from None
        except subprocess.TimeoutExpired:
            raise OperationFailedError(f"cannot {what}: xl {' '.join(args)} ran past {limit:g} s "
                                       f"and was killed", code=ErrorCode.OPERATION_TIMEOUT,
                                       domain=_XL) from None
        out = proc.stdout.decode("utf-8", "replace")
        if proc.returncode == 0:
            return out
        err = proc.stderr.decode("utf-8", "replace")
        raise xl_error(what, err or out, exists)


def xl_error(what: str, output: str, exists: type[VirtError] = DomainExistsError) -> VirtError:
    """The virtkit error of an ``xl`` failure whose output is ``output``."""
    lines = [ln.strip() for ln in output.splitlines()
             if ln.strip() and not ln.startswith(("Parsing config from", "xc: info:",
                                                   "xc: progress:"))]
    message = " / ".join(lines[-3:]) if lines else "xl failed without saying why"
    text = f"cannot {what}: {message}"
    if _NO_DOMAIN.search(output):
        return NoDomainError(text, domain=_XL)
    if _EXISTS.search(output):
        return exists(text, domain=_XL)
    if _DENIED.search(output):
        return OperationDeniedError(text, domain=_XL)
    return OperationFailedError(text, domain=_XL)


# ====================================================================== xl's listings

class XlRow(NamedTuple):
    """One line of ``xl list``."""

    name: str
    id: int
    memory_mib: int
    vcpus: int
    state: str
    cpu_seconds: float


def parse_xl_list(text: str) -> list[XlRow]:
    """``xl list``'s rows (Name, ID, Mem, VCPUs, State, Time(s)); names may hold spaces."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        try:
            rows.append(XlRow(" ".join(fields[:-5]), int(fields[-5]), int(fields[-4]),
                              int(fields[-3]), fields[-2], float(fields[-1])))
        except ValueError:
            continue
    return rows


class VcpuRow(NamedTuple):
    """One line of ``xl vcpu-list``."""

    name: str
    id: int
    vcpu: int
    cpu: int
    state: str
    cpu_seconds: float
    hard: str
    soft: str


def parse_vcpu_list(text: str) -> list[VcpuRow]:
    """``xl vcpu-list``'s rows: Name ID VCPU CPU State Time(s) Affinity (Hard / Soft)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        try:
            slash = len(fields) - 1 - fields[::-1].index("/")
        except ValueError:
            continue
        head = fields[:slash - 1]
        if len(head) < 6 or slash + 1 >= len(fields):
            continue
        try:
            rows.append(VcpuRow(" ".join(head[:-5]), int(head[-5]), int(head[-4]),
                                int(head[-3]) if head[-3].isdigit() else -1, head[-2],
                                float(head[-1]), fields[slash - 1], fields[slash + 1]))
        except ValueError:
            continue
    return rows


def cpus_of(spec: str, ncpus: int) -> tuple[bool, ...]:
    """An affinity as xl prints it (``all``, ``0-1,3``, ``none``) as a CPU map."""
    if spec == "all":
        return (True,) * ncpus
    allowed: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            allowed.update(range(int(lo), int(hi if hi.isdigit() else lo) + 1))
    return tuple(i in allowed for i in range(ncpus))


# ====================================================================== save files

def read_save_header(path: str) -> tuple[str, bytes | None]:
    """The domain name and UUID recorded in an ``xl save`` file.

    The file starts with :data:`SAVE_MAGIC`, four native ``uint32`` (byte order
    mark, mandatory flags, optional flags, length of the optional data), then
    the optional data: a ``uint32`` length and the domain's libxl config (JSON
    when mandatory flag 1 is set). VirtSystemError when the file cannot be
    read, SaveFileError when it is not a save file xl can restore here."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SAVE_MAGIC) + _SAVE_HEADER.size)
            if not head.startswith(SAVE_MAGIC) or len(head) < len(SAVE_MAGIC) + _SAVE_HEADER.size:
                raise SaveFileError(f"'{path}' is not a save file of xl (no xl header)",
                                    domain=_XL)
            order, mandatory, _optional, optlen = _SAVE_HEADER.unpack_from(head, len(SAVE_MAGIC))
            if order != _BYTEORDER:
                raise SaveFileError(f"'{path}' was saved on a host of the other byte order",
                                    domain=_XL)
            if mandatory & ~_SAVE_FLAGS_KNOWN:
                raise SaveFileError(f"'{path}' needs features of a newer xl "
                                    f"(mandatory flags {mandatory:#x})", domain=_XL)
            optional = f.read(optlen)
    except OSError as e:
        raise VirtSystemError(f"cannot read '{path}': {e.strerror}", errno=e.errno,
                              domain=_XL) from None
    if len(optional) < optlen or optlen < 4:
        raise SaveFileError(f"'{path}' is cut short in its header", domain=_XL)
    (length,) = struct.unpack_from("=I", optional)
    config = optional[4:4 + length]
    if len(config) < length or not mandatory & _SAVE_FLAG_JSON:
        raise SaveFileError(f"'{path}' holds no domain configuration xl can read", domain=_XL)
    try:
        import json

        c_info = json.loads(config.rstrip(b"\0")).get("c_info", {})
        name = c_info["name"]
        uuid = parse_uuid(c_info["uuid"]) if c_info.get("uuid") else None
    except (ValueError, KeyError, TypeError, AttributeError, VirtError):
        raise SaveFileError(f"'{path}' holds a domain configuration that cannot be read",
                            domain=_XL) from None
    if not isinstance(name, str):
        raise SaveFileError(f"'{path}' names no domain", domain=_XL)
    return name, uuid


# ====================================================================== the backend

class XlBackend(XenBackend):
    """Every domain operation through ``xl`` and ``/etc/xen`` (see the module docstring).

    ``live`` names the running domains (a backend with ``list_all_domains`` and
    the ``lookup_domain_by_*`` of running domains: xenstore's, or the
    hypervisor's); ``store`` is the xenstore backend (live configurations:
    console, devices, memory); ``fast`` the hypervisor's backend, when there is
    one, which pins vCPUs of running domains in place of ``xl vcpu-pin``.
    """

    name = "xl"
    live_only: ClassVar[bool] = False

    def __init__(self, xl: Xl, configs: ConfigDir, store: XenstoreBackend,
                 live: XenBackend | None = None, *, fast: XenBackend | None = None) -> None:
        self.xl = xl
        self.fast = fast
        self.configs = configs
        self.store = store
        self.live: XenBackend = live or store
        self._host: HostFacts | None = None
        self._lock = threading.Lock()
        self._rows: tuple[float, dict[int, XlRow]] | None = None
        #: Serializes changes to one domain's definition (read, change, write).
        self._def_lock = threading.RLock()

    # --- plumbing ----------------------------------------------------------------------

    def _forget(self) -> None:
        with self._lock:
            self._rows = None

    def _run(self, *args: str, what: str, timeout: float | None = None,
             exists: type[VirtError] = DomainExistsError) -> str:
        self._forget()
        try:
            return self.xl.run(*args, what=what, timeout=timeout, exists=exists)
        finally:
            self._forget()

    def rows(self) -> dict[int, XlRow]:
        """``xl list``, by id (a reply under REUSE_SECONDS old is reused)."""
        with self._lock:
            got = self._rows
        if got is not None and time.monotonic() - got[0] < REUSE_SECONDS:
            return got[1]
        rows = {r.id: r for r in parse_xl_list(self.xl.run("list", what="list the domains"))}
        with self._lock:
            self._rows = (time.monotonic(), rows)
        return rows

    def host(self) -> HostFacts:
        """``xl info``, asked once."""
        if self._host is None:
            self._host = HostFacts.from_xl_info(self.xl.run("info", what="read the host's facts"))
        return self._host

    def running(self) -> list[DomainRef]:
        return self.live.list_all_domains()  # type: ignore[attr-defined, no-any-return]

    def _running_named(self, name: str) -> DomainRef | None:
        for ref in self.running():
            if ref.name == name:
                return ref
        return None

    def _definition(self, dom: DomainRef) -> Definition | None:
        """The domain's definition: the file with its name (and its UUID, unless
        the file has none)."""
        d = self.configs.get(dom.name)
        if d is None or (not d.uuid_derived and d.uuid != dom.uuid and dom.id >= 0):
            return None
        return d

    def _need_definition(self, dom: DomainRef) -> Definition:
        d = self._definition(dom)
        if d is None:
            raise NoDomainError(f"domain '{dom.name}' has no definition in {self.configs.path}",
                                domain=_XL)
        return d

    def _update_definition(self, dom: DomainRef, **fields: object) -> None:
        """Rewrite the domain's definition with ``fields`` changed (no-op for a transient domain)."""
        with self._def_lock:
            d = self._definition(dom)
            if d is None:
                return
            self.configs.write(dataclasses.replace(d.config, **fields), d)  # type: ignore[arg-type]

    @staticmethod
    def _ident(dom: DomainRef) -> str:
        """How xl is told which domain: its id when running (names are not unique
        while a domain is being renamed or restarted), else its name."""
        return str(dom.id) if dom.id >= 0 else dom.name

    def _need_running(self, dom: DomainRef, what: str) -> None:
        if dom.id < 0:
            raise OperationInvalidError(f"domain '{dom.name}' is not running: cannot {what}",
                                        domain=_XL)

    # --- connection and node -------------------------------------------------------------

    def get_type(self) -> str:
        return "Xen"

    def get_version(self) -> int:
        return self.host().version()

    def get_hostname(self) -> str:
        return self.host().hostname

    def get_max_vcpus(self, type: str | None) -> int:
        return MAX_VCPUS

    def get_node_info(self) -> NodeInfo:
        return self.host().node_info()

    def get_capabilities(self) -> Capabilities:
        return self.host().capabilities()

    # --- listing and look-up -------------------------------------------------------------

    def list_domain_ids(self) -> list[int]:
        return sorted(r.id for r in self.running())

    def list_defined_domain_names(self) -> list[str]:
        running = {r.name for r in self.running()}
        return sorted(d.name for d in self.configs.definitions() if d.name not in running)

    def list_all_domains(self) -> list[DomainRef]:
        running = sorted(self.running(), key=lambda r: r.id)
        return running + self._inactive(running)

    def _inactive(self, running: list[DomainRef]) -> list[DomainRef]:
        """The defined domains that are not among ``running`` (by name or UUID), by name."""
        names = {r.name for r in running}
        uuids = {r.uuid for r in running}
        inactive = [DomainRef(d.name, d.uuid, -1) for d in self.configs.definitions()
                    if d.name not in names and d.uuid not in uuids]
        return sorted(inactive, key=lambda r: r.name)

    def lookup_domain_by_id(self, id: int) -> DomainRef:
        for ref in self.running():
            if ref.id == id:
                return ref
        raise NoDomainError(f"no domain with id {id}", domain=_XL)

    def lookup_domain_by_name(self, name: str) -> DomainRef:
        ref = self._running_named(name)
        if ref is not None:
            return ref
        d = self.configs.get(name)
        if d is None:
            raise NoDomainError(f"no domain named '{name}'", domain=_XL)
        return DomainRef(d.name, d.uuid, -1)

    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        for ref in self.running():
            if ref.uuid == uuid:
                return ref
        d = self.configs.by_uuid(uuid)
        if d is None or self._running_named(d.name) is not None:
            raise NoDomainError(f"no domain with UUID {format_uuid(uuid)}", domain=_XL)
        return DomainRef(d.name, d.uuid, -1)

    def _admit(self, config: DomainConfig) -> DomainConfig:
        """``config`` with its UUID, after refusing a name or UUID another domain has."""
        known = self.list_all_domains()
        named = next((r for r in known if r.name == config.name), None)
        if named is not None and (config.uuid is None or named.uuid != config.uuid):
            raise DomainExistsError(f"domain '{config.name}' already exists with uuid "
                                    f"{format_uuid(named.uuid)}", domain=_XL)
        if config.uuid is not None:
            same = next((r for r in known if r.uuid == config.uuid), None)
            if same is not None and same.name != config.name:
                raise DomainExistsError(f"domain '{same.name}' already exists with uuid "
                                        f"{format_uuid(config.uuid)}", domain=_XL)
            return config
        return dataclasses.replace(config, uuid=generate_uuid_bytes())

    def _check_type(self, config: DomainConfig) -> None:
        if config.type != "xen":
            raise InvalidArgumentError(f"the Xen driver runs domains of type 'xen', not "
                                       f"'{config.type}'", domain=_XL)
        sp.xen_guest(config)  # NoSupportError (CONFIG_UNSUPPORTED) for what Xen cannot express

    def define_domain(self, config: DomainConfig) -> DomainRef:
        self._check_type(config)
        with self._def_lock:
            config = self._admit(config)
            d = self.configs.write(dataclasses.replace(config, id=None),
                                   self.configs.get(config.name))
        running = self._running_named(d.name)
        return running if running is not None else DomainRef(d.name, d.uuid, -1)

    def create_domain(self, config: DomainConfig) -> DomainRef:
        self._check_type(config)
        config = self._admit(config)
        if self._running_named(config.name) is not None:
            raise DomainExistsError(f"domain '{config.name}' is already running", domain=_XL)
        from virtkit.drivers.xen.configdir import FORMAT, _xl_spellings
        from virtkit.drivers.xen.conf import parse_conf
        from virtkit.drivers.xen.xm import format_xm

        text = _xl_spellings(parse_conf(format_xm(dataclasses.replace(config, id=None), FORMAT)),
                             config)
        import tempfile

        fd, path = tempfile.mkstemp(prefix=f"virtkit-{config.name}-", suffix=".cfg")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            self._run("create", path, what=f"create domain '{config.name}'")
        finally:
            os.unlink(path)
        return self._started(config.name)

    def _started(self, name: str) -> DomainRef:
        ref = self._running_named(name)
        if ref is None:
            raise OperationFailedError(f"xl created domain '{name}' but it is not running "
                                       f"(see /var/log/xen/xl-{name}.log)", domain=_XL)
        return ref

    def restore_domain(self, path: str) -> DomainRef:
        name, uuid = read_save_header(path)
        for ref in self.running():
            if ref.name == name or (uuid is not None and ref.uuid == uuid):
                raise DomainExistsError(f"domain '{ref.name}' is already running: cannot "
                                        f"restore '{path}'", domain=_XL)
        try:
            self._run("restore", path, what=f"restore '{path}'")
        except OperationFailedError as e:
            raise SaveFileError(f"xl could not restore '{path}': {e}", domain=_XL) from None
        return self._started(name)

    # --- one domain: reads ---------------------------------------------------------------

    def _row(self, dom: DomainRef) -> XlRow:
        row = self.rows().get(dom.id)
        if row is None or row.name != dom.name:
            self._forget()
            row = self.rows().get(dom.id)
            if row is None or row.name != dom.name:
                raise NoDomainError(f"domain '{dom.name}' is not running any more", domain=_XL)
        return row

    def domain_get_state(self, dom: DomainRef) -> tuple[DomainState, int]:
        from virtkit.domain import DomainState

        if dom.id < 0:
            self._need_definition(dom)
            return DomainState.SHUTOFF, 0
        try:
            return sp.state_of(self._row(dom).state), 0
        except NoDomainError:
            # Gone between xenstore's answer and xl's (it was dying): shut off
            # when defined, else gone for good.
            self._need_definition(dom)
            return DomainState.SHUTOFF, 0

    def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        from virtkit.domain import DomainInfo, DomainState

        if dom.id >= 0:
            try:
                row = self._row(dom)
            except NoDomainError:
                row = None  # it was dying: as for get_state
        if dom.id < 0 or row is None:
            c = self._need_definition(dom).config
            return DomainInfo(DomainState.SHUTOFF, c.memory, c.current_memory_kib,
                              c.online_vcpus, 0)
        memory = row.memory_mib * 1024
        maximum = self._static_max(dom) or memory
        return DomainInfo(sp.state_of(row.state), max(maximum, memory), memory, row.vcpus,
                          int(row.cpu_seconds * 1e9))

    def _static_max(self, dom: DomainRef) -> int | None:
        value = self.store.client.read(f"/local/domain/{dom.id}/memory/static-max")
        try:
            return int(value) if value else None
        except ValueError:
            return None

    def all_domain_stats(self) -> dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]]:
        """Info and vCPUs of every domain, running and defined: the running ones
        from the hypervisor's backend in one pass of hypercalls when there is
        one (``fast``), else from one ``xl list``, one ``xl vcpu-list`` and one
        round of xenstore reads, whatever the number of domains; the defined
        ones that are not running from their files (shut off, no vCPUs)."""
        from virtkit.domain import DomainInfo, VcpuInfo, VcpuState

        fast = getattr(self.fast, "all_domain_stats", None)
        if fast is not None:
            live: dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]] = fast()
            return self._with_defined(live, list(live))
        refs = self.list_all_domains()
        self._forget()
        rows = self.rows()
        vcpu_rows = parse_vcpu_list(self.xl.run("vcpu-list", what="list the vCPUs"))
        running = [r for r in refs if r.id >= 0]
        maxima = self.store.client.read_many(
            [f"/local/domain/{r.id}/memory/static-max" for r in running])
        ncpus = self.get_node_info().cpus
        out: dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]] = {}
        for ref, maximum in zip(running, maxima):
            row = rows.get(ref.id)
            if row is None:
                continue
            memory = row.memory_mib * 1024
            vcpus = [VcpuInfo(v.vcpu, VcpuState.OFFLINE if "p" in v.state else
                              VcpuState.RUNNING if "r" in v.state else VcpuState.BLOCKED,
                              int(v.cpu_seconds * 1e9), v.cpu, cpus_of(v.hard, ncpus))
                     for v in vcpu_rows if v.id == ref.id]
            out[ref] = (DomainInfo(sp.state_of(row.state), max(int(maximum or 0), memory), memory,
                                   row.vcpus, int(row.cpu_seconds * 1e9)), vcpus)
        return self._with_defined(out, running)

    def _with_defined(self, out: dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]],
                      running: list[DomainRef]) -> dict[DomainRef, tuple[DomainInfo, list[VcpuInfo]]]:
        """``out`` (the running domains' stats) with each defined domain that is
        not running added as shut off, in :meth:`list_all_domains`' order."""
        from virtkit.domain import DomainInfo, DomainState

        for ref in self._inactive(running):
            c = self.configs.get(ref.name)
            if c is not None:
                cfg = c.config
                out[ref] = (DomainInfo(DomainState.SHUTOFF, cfg.memory, cfg.current_memory_kib,
                                       cfg.online_vcpus, 0), [])
        return out

    def domain_get_os_type(self, dom: DomainRef) -> str:
        if dom.id >= 0:
            return self.store.domain_get_os_type(dom)
        os_type = self._need_definition(dom).config.os.type
        return "hvm" if os_type == "hvm" else "linux"

    def domain_get_max_memory(self, dom: DomainRef) -> int:
        if dom.id >= 0:
            return self.domain_get_info(dom).max_memory
        return self._need_definition(dom).config.memory

    def domain_get_vcpus(self, dom: DomainRef) -> list[VcpuInfo]:
        from virtkit.domain import VcpuInfo, VcpuState

        self._need_running(dom, "list its vCPUs")
        ncpus = self.get_node_info().cpus
        rows = parse_vcpu_list(self.xl.run("vcpu-list", str(dom.id),
                                           what=f"list the vCPUs of '{dom.name}'"))
        out = [VcpuInfo(v.vcpu, VcpuState.OFFLINE if "p" in v.state else
                        VcpuState.RUNNING if "r" in v.state else VcpuState.BLOCKED,
                        int(v.cpu_seconds * 1e9), v.cpu if "p" not in v.state else -1,
                        cpus_of(v.hard, ncpus))
               for v in rows if v.id == dom.id]
        return sorted(out, key=lambda v: v.number)

    def domain_is_persistent(self, dom: DomainRef) -> bool:
        return self._definition(dom) is not None

    def domain_get_autostart(self, dom: DomainRef) -> bool:
        d = self._definition(dom)
        return d is not None and self.configs.autostart(d)

    def domain_get_config(self, dom: DomainRef, inactive: bool) -> DomainConfig:
        d = self._definition(dom)
        if dom.id < 0 or (inactive and d is not None):
            if d is None:
                raise NoDomainError(f"domain '{dom.name}' is not defined", domain=_XL)
            return d.config
        return self.live_config(dom, d)

    def live_config(self, dom: DomainRef, d: Definition | None = None) -> DomainConfig:
        """A running domain's configuration: its definition (or, for a domain
        with none, what xenstore records of it) with the live facts on top: id,
        memory, vCPUs, devices and the console's pty from xenstore; its
        lifecycle actions from libxl's record of it when it has no definition)."""
        facts = self.store.facts(dom)
        if d is not None:
            base = d.config
        else:
            actions = xl_actions(dom)
            base = dataclasses.replace(config_from_facts(facts),
                                       on_poweroff=actions.get("on_poweroff"),
                                       on_reboot=actions.get("on_reboot"),
                                       on_crash=actions.get("on_crash"))
        return overlay_facts(base, facts)

    # --- one domain: changes ------------------------------------------------------------

    def domain_start(self, dom: DomainRef) -> DomainRef:
        d = self._need_definition(dom)
        self._run("create", d.path, what=f"start domain '{dom.name}'")
        return self._started(d.name)

    def domain_suspend(self, dom: DomainRef) -> None:
        self._run("pause", self._ident(dom), what=f"suspend domain '{dom.name}'")

    def domain_resume(self, dom: DomainRef) -> None:
        self._run("unpause", self._ident(dom), what=f"resume domain '{dom.name}'")

    def domain_shutdown(self, dom: DomainRef) -> None:
        self._run("shutdown", "-F", self._ident(dom), what=f"shut domain '{dom.name}' down")

    def domain_reboot(self, dom: DomainRef) -> None:
        self._run("reboot", "-F", self._ident(dom), what=f"reboot domain '{dom.name}'")

    def domain_destroy(self, dom: DomainRef) -> None:
        if dom.id == 0:
            raise OperationInvalidError("domain 0 (the host's own) cannot be destroyed",
                                        domain=_XL)
        self._run("destroy", self._ident(dom), what=f"destroy domain '{dom.name}'")

    def domain_undefine(self, dom: DomainRef) -> None:
        with self._def_lock:
            self.configs.remove(self._need_definition(dom))

    def domain_save(self, dom: DomainRef, path: str) -> None:
        if dom.id == 0:
            raise OperationInvalidError("domain 0 (the host's own) cannot be saved", domain=_XL)
        self._run("save", self._ident(dom), path, what=f"save domain '{dom.name}' to '{path}'")

    def domain_core_dump(self, dom: DomainRef, path: str) -> None:
        self._need_running(dom, "dump its core")
        self._run("dump-core", self._ident(dom), path,
                  what=f"dump the core of domain '{dom.name}' to '{path}'")

    def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        self.configs.set_autostart(self._need_definition(dom), autostart)

    def domain_set_max_memory(self, dom: DomainRef, kib: int) -> None:
        with self._def_lock:
            if dom.id >= 0:
                self._run("mem-max", self._ident(dom), f"{kib}k",
                          what=f"set the maximum memory of '{dom.name}'")
                d = self._definition(dom)
                if d is not None:
                    c = d.config
                    self.configs.write(dataclasses.replace(
                        c, memory=kib, current_memory=min(c.current_memory_kib, kib)), d)
                return
            c = self._need_definition(dom).config
            self._update_definition(dom, memory=kib,
                                    current_memory=min(c.current_memory_kib, kib))

    def domain_set_memory(self, dom: DomainRef, kib: int) -> None:
        if dom.id >= 0:
            self._run("mem-set", self._ident(dom), f"{kib}k",
                      what=f"set the memory of '{dom.name}'")
            return
        c = self._need_definition(dom).config
        if kib > c.memory:
            raise InvalidArgumentError(f"cannot set memory to {kib} KiB: above the maximum of "
                                       f"{c.memory} KiB", domain=_XL)
        self._update_definition(dom, current_memory=kib)

    def domain_set_vcpus(self, dom: DomainRef, count: int) -> None:
        if count > MAX_VCPUS:
            raise InvalidArgumentError(f"cannot set {count} vCPUs: Xen's maximum is {MAX_VCPUS}",
                                       domain=_XL)
        if dom.id >= 0:
            maximum = self.store.facts(dom).vcpus
            if maximum and count > maximum:
                raise InvalidArgumentError(f"cannot set {count} vCPUs: domain '{dom.name}' was "
                                           f"started with at most {maximum}", domain=_XL)
            self._run("vcpu-set", self._ident(dom), str(count),
                      what=f"set the vCPUs of '{dom.name}'")
            return
        c = self._need_definition(dom).config
        self._update_definition(dom, vcpus=count, vcpus_current=None,
                                vcpu_pins=tuple(p for p in c.vcpu_pins if p.vcpu < count))

    def domain_pin_vcpu(self, dom: DomainRef, vcpu: int, cpumap: tuple[bool, ...]) -> None:
        from virtkit.cpuset import format_cpulist
        from virtkit.xml.domain import VcpuPin

        cpus = format_cpulist(cpumap)
        with self._def_lock:
            d = self._definition(dom)
            if dom.id >= 0:
                present = self.store.facts(dom).vcpus
                if vcpu >= present:
                    raise InvalidArgumentError(f"vCPU {vcpu} does not exist: domain "
                                               f"'{dom.name}' has {present}", domain=_XL)
                pin = getattr(self.fast, "domain_pin_vcpu", None)
                if pin is not None:
                    pin(dom, vcpu, cpumap)
                else:
                    self._run("vcpu-pin", self._ident(dom), str(vcpu), cpus,
                              what=f"pin vCPU {vcpu} of '{dom.name}'")
            elif d is not None and vcpu >= d.config.vcpus:
                raise InvalidArgumentError(f"vCPU {vcpu} does not exist: domain '{dom.name}' "
                                           f"has {d.config.vcpus}", domain=_XL)
            if d is not None:
                c = d.config
                everything = format_cpulist((True,) * self.get_node_info().cpus)
                pins = {p.vcpu: p.cpuset for p in c.vcpu_pins}
                pins[vcpu] = cpus
                # Every vCPU gets an entry: xl's per-vCPU list has no "unpinned" item.
                merged = tuple(VcpuPin(n, pins.get(n, c.cpuset or everything))
                               for n in range(c.vcpus))
                self.configs.write(dataclasses.replace(c, vcpu_pins=merged), d)

    def domain_attach_device(self, dom: DomainRef, device: Device) -> None:
        from virtkit.xml.domain import Disk, Interface

        if dom.id < 0:
            with self._def_lock:
                d = self._need_definition(dom)
                self.configs.write(_with_device(d.config, device), d)
            return
        config = self.live_config(dom, self._definition(dom))
        _with_device(config, device)  # refuses a taken target or MAC, and what Xen lacks
        if isinstance(device, Disk):
            self._run("block-attach", self._ident(dom), _disk_spec(device, config),
                      what=f"attach disk {device.target_dev} to '{dom.name}'",
                      exists=OperationFailedError)
        elif isinstance(device, Interface):
            self._run("network-attach", self._ident(dom), *_vif_spec(device),
                      what=f"attach an interface to '{dom.name}'", exists=OperationFailedError)
        else:
            raise sp.unsupported("device", "xl attaches disks and interfaces only")

    def domain_detach_device(self, dom: DomainRef, device: Device) -> None:
        from virtkit.xml.domain import Disk, Interface

        if dom.id < 0:
            with self._def_lock:
                d = self._need_definition(dom)
                self.configs.write(_without_device(d.config, device), d)
            return
        config = self.live_config(dom, self._definition(dom))
        _without_device(config, device)  # OperationFailedError when it has no such device
        if isinstance(device, Disk):
            name, _ = sp.parse_disk_target(device.target_dev)
            self._run("block-detach", self._ident(dom), name,
                      what=f"detach disk {name} from '{dom.name}'")
        elif isinstance(device, Interface):
            match = _find_nic(config, device)
            assert match is not None
            self._run("network-detach", self._ident(dom), str(match[0]) if match[1].mac is None
                      else match[1].mac, what=f"detach an interface from '{dom.name}'")
        else:
            raise sp.unsupported("device", "xl detaches disks and interfaces only")


# ====================================================================== configurations

def config_from_facts(facts: LiveFacts) -> DomainConfig:
    """What xenstore says of a domain that has no definition (one started by
    hand, transient, or domain 0), as a configuration."""
    from virtkit.xml.domain import DomainConfig, OSConfig

    hvm = facts.kind == "hvm"
    memory = facts.static_max_kib or facts.target_kib or 0
    os_config = (OSConfig(type="hvm") if hvm else
                 OSConfig(type="linux", kernel=facts.kernel, initrd=facts.ramdisk,
                          cmdline=facts.cmdline))
    return DomainConfig(name=facts.ref.name, type="xen", uuid=facts.ref.uuid, memory=memory,
                        vcpus=max(facts.vcpus, 1), os=os_config)


#: Where libxl keeps the configuration of a domain xl created (``xl list -l`` reads it).
USERDATA = "/var/lib/xen/userdata-d.{id}.{uuid}.libxl-json"


def xl_actions(dom: DomainRef, pattern: str = USERDATA) -> dict[str, LifecycleAction]:
    """The running domain's ``on_poweroff``/``on_reboot``/``on_crash`` as libxl
    recorded them when xl created it ({} when there is no readable record).
    libxl's JSON leaves out an action at its type's default, destroy."""
    import json

    from virtkit.xml.domain import LifecycleAction

    try:
        with open(pattern.format(id=dom.id, uuid=format_uuid(dom.uuid))) as f:
            record = json.loads(f.read().rstrip("\0"))  # libxl ends the file with a NUL
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict):
        return {}
    out = {}
    for key in ("on_poweroff", "on_reboot", "on_crash"):
        try:
            out[key] = LifecycleAction(str(record.get(key, "destroy")).replace("_", "-"))
        except ValueError:
            pass  # an action libvirt's XML has no word for (soft_reset)
    return out


def overlay_facts(base: DomainConfig, facts: LiveFacts) -> DomainConfig:
    """``base`` with what xenstore says of the running domain on top: id,
    memory (static maximum and target), vCPUs present and online, the disks
    and interfaces dom0 serves it (a device of ``base`` with the same target or
    MAC keeps its details), and the console's pty."""
    from virtkit.xml.domain import CharDevice

    memory = facts.static_max_kib or base.memory
    current = facts.target_kib if facts.target_kib is not None else base.current_memory_kib
    vcpus = facts.vcpus or base.vcpus
    online = facts.vcpus_online if facts.vcpus else base.online_vcpus
    disks = []
    for live in facts.disks:
        name = sp.parse_disk_target(live.target_dev)[0]
        same = next((d for d in base.disks if sp.parse_disk_target(d.target_dev)[0] == name), None)
        disks.append(same if same is not None else live)
    nics = []
    for n, live_nic in enumerate(facts.interfaces):
        mac = (live_nic.mac or "").lower()
        same_nic = next((i for i in base.interfaces if i.mac and i.mac.lower() == mac), None)
        if same_nic is None and n < len(base.interfaces) and base.interfaces[n].mac is None:
            same_nic = base.interfaces[n]
        nics.append(dataclasses.replace(same_nic, mac=live_nic.mac,
                                        target_dev=live_nic.target_dev or same_nic.target_dev)
                    if same_nic is not None else live_nic)
    chardevs = list(base.chardevs)
    if facts.kind != "hvm":
        consoles = [c for c in chardevs if c.kind == "console"]
        if not consoles and facts.console_tty:
            chardevs.append(CharDevice(kind="console", type="pty", target_port=0))
        chardevs = [dataclasses.replace(c, tty=facts.console_tty, source_path=facts.console_tty)
                    if c.kind == "console" and c.type == "pty" and facts.console_tty else c
                    for c in chardevs]
    return dataclasses.replace(
        base, id=facts.ref.id, uuid=facts.ref.uuid, memory=max(memory, current), current_memory=current,
        vcpus=vcpus, vcpus_current=online if 0 < online < vcpus else None,
        disks=tuple(disks), interfaces=tuple(nics), chardevs=tuple(chardevs))


def _find_nic(config: DomainConfig, device: Interface) -> tuple[int, Interface] | None:
    for n, nic in enumerate(config.interfaces):
        if device.mac is None or (nic.mac or "").lower() == device.mac.lower():
            return n, nic
    return None


def _with_device(config: DomainConfig, device: Device) -> DomainConfig:
    from virtkit.xml.domain import Disk, Interface

    if isinstance(device, Disk):
        name, _ = sp.parse_disk_target(device.target_dev)
        if any(sp.parse_disk_target(d.target_dev)[0] == name for d in config.disks):
            raise OperationFailedError(f"domain '{config.name}' already has a disk {name}",
                                       domain=_XL)
        new = dataclasses.replace(config, disks=config.disks + (device,))
    elif isinstance(device, Interface):
        if device.mac is not None and any((i.mac or "").lower() == device.mac.lower()
                                          for i in config.interfaces):
            raise OperationFailedError(f"domain '{config.name}' already has an interface with "
                                       f"MAC {device.mac}", domain=_XL)
        new = dataclasses.replace(config, interfaces=config.interfaces + (device,))
    else:
        raise sp.unsupported("device", "Xen attaches disks and interfaces only")
    sp.xen_guest(new)  # NoSupportError for a device Xen cannot express
    return new


def _without_device(config: DomainConfig, device: Device) -> DomainConfig:
    from virtkit.xml.domain import Disk, Interface

    if isinstance(device, Disk):
        name, _ = sp.parse_disk_target(device.target_dev)
        kept = tuple(d for d in config.disks if sp.parse_disk_target(d.target_dev)[0] != name)
        if len(kept) == len(config.disks):
            raise OperationFailedError(f"domain '{config.name}' has no disk '{name}' to detach",
                                       domain=_XL)
        return dataclasses.replace(config, disks=kept)
    if isinstance(device, Interface):
        match = _find_nic(config, device)
        if match is None:
            raise OperationFailedError(f"domain '{config.name}' has no interface with MAC "
                                       f"{device.mac} to detach", domain=_XL)
        nics = config.interfaces[:match[0]] + config.interfaces[match[0] + 1:]
        return dataclasses.replace(config, interfaces=nics)
    raise sp.unsupported("device", "Xen detaches disks and interfaces only")


def _disk_spec(disk: Disk, config: DomainConfig) -> str:
    """The disk as ``xl block-attach`` takes it: the XM spelling ``SOURCE,TARGET,MODE``."""
    from virtkit.drivers.xen.xm import _disk_item

    g = sp.xen_guest(dataclasses.replace(config, disks=(disk,), interfaces=()))
    d, name, place = g.disks[0]
    return _disk_item(d, name, place, g.hvm, 4)


def _vif_spec(nic: Interface) -> list[str]:
    """The interface as ``xl network-attach`` takes it: ``key=value`` arguments."""
    from virtkit.drivers.xen.xm import _vif_item

    return [p for p in _vif_item(nic, "devices/interface", False).split(",") if p]

