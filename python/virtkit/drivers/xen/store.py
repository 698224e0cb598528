"""What the Xen driver reads from and writes to xenstore (``xen-protocols.md`` 2.6).

:class:`XenstoreBackend` knows the *running* domains, as xenstored describes
them under ``/local/domain/<id>``:

- ``name``, ``vm`` (``/vm/<uuid>``: the UUID; domain 0 has none and is the
  all-zero UUID), ``console/tty`` (the PV console's pty, which xenconsoled
  owns), ``memory/target`` and ``memory/static-max`` (KiB), ``cpu/<n>/
  availability``, the OS type (``/libxl/<id>/type``, else
  ``<vm>/image/ostype``), and the devices: the back ends dom0 serves under
  ``/local/domain/0/backend/{vbd,qdisk,vif}/<id>/<devid>``;
- it asks a guest to power off or reboot by writing ``poweroff`` or
  ``reboot`` to ``control/shutdown``, in a transaction that first checks the
  node exists (as libxl does: the domain may have gone meanwhile). An HVM
  guest without PV drivers, which would not see the request, is handed to the
  ``fallback`` backend (``xl shutdown -F``: the ACPI power button).

Every read for N domains goes out as one round of requests
(:meth:`~virtkit.drivers.xen.xenstore.XenstoreClient.read_many`). A domain
reference is checked against xenstore (its id must still carry its name), so
an id reused by a newer domain is never mistaken for the old one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from virtkit.drivers.interface import DomainRef
from virtkit.drivers.xen.backend import XenBackend
from virtkit.drivers.xen.xenstore import XenstoreClient, XenstoreNotFoundError
from virtkit.errors import ErrorDomain, NoDomainError, OperationInvalidError, VirtError
from virtkit.uuid import parse_uuid

if TYPE_CHECKING:
    from virtkit.xml.domain import Disk, Interface

__all__ = ["XenstoreBackend", "LiveFacts", "ZERO_UUID"]

ZERO_UUID = bytes(16)
_FIELDS = ("name", "vm", "memory/target", "memory/static-max", "console/tty",
           "control/shutdown", "control/feature-poweroff", "control/feature-reboot")


@dataclass(frozen=True)
class LiveFacts:
    """One running domain as xenstore describes it."""

    ref: DomainRef
    #: KiB (None when xenstore does not say).
    target_kib: int | None
    static_max_kib: int | None
    #: vCPUs present and online (``cpu/N/availability``).
    vcpus: int
    vcpus_online: int
    console_tty: str | None
    #: ``pv``, ``pvh`` or ``hvm`` (libxl's word), None when unknown.
    kind: str | None
    #: ``<vm>/image``: kernel, ramdisk, cmdline (PV), when recorded.
    kernel: str | None
    ramdisk: str | None
    cmdline: str | None
    disks: tuple[Disk, ...]
    interfaces: tuple[Interface, ...]


def _int(value: bytes | None) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace")


def _uuid_of_vm(vm: bytes | None) -> bytes | None:
    if not vm:
        return None
    text = vm.decode("ascii", "replace").rstrip("/")
    tail = text.rsplit("/", 1)[-1]
    try:
        return parse_uuid(tail)
    except VirtError:
        return None


class XenstoreBackend(XenBackend):
    """Running domains from xenstore (see the module docstring)."""

    name = "xenstore"
    live_only: ClassVar[bool] = True

    def __init__(self, client: XenstoreClient, fallback: XenBackend | None = None) -> None:
        self.client = client
        self.fallback = fallback
        self._lock = threading.Lock()

    def close(self) -> None:
        self.client.close()

    # --- listing and look-up -----------------------------------------------------------

    def list_domain_ids(self) -> list[int]:
        ids = self.client.directory("/local/domain") or []
        return sorted(int(i) for i in ids if i.isdigit())

    def _refs(self, ids: list[int]) -> list[DomainRef]:
        paths = [p for i in ids for p in (f"/local/domain/{i}/name", f"/local/domain/{i}/vm")]
        values = self.client.read_many(paths)
        out = []
        for n, domid in enumerate(ids):
            name, vm = values[2 * n], values[2 * n + 1]
            if not name:
                continue  # being built or torn down
            uuid = _uuid_of_vm(vm)
            if uuid is None:
                if domid != 0:
                    continue
                uuid = ZERO_UUID
            out.append(DomainRef(name.decode("utf-8", "replace"), uuid, domid))
        return out

    def list_all_domains(self) -> list[DomainRef]:
        return self._refs(self.list_domain_ids())

    def lookup_domain_by_id(self, id: int) -> DomainRef:
        refs = self._refs([id])
        if not refs:
            raise NoDomainError(f"no running domain with id {id}", domain=ErrorDomain.XENSTORE)
        return refs[0]

    def lookup_domain_by_name(self, name: str) -> DomainRef:
        for ref in self.list_all_domains():
            if ref.name == name:
                return ref
        raise NoDomainError(f"no running domain named '{name}'", domain=ErrorDomain.XENSTORE)

    def lookup_domain_by_uuid(self, uuid: bytes) -> DomainRef:
        for ref in self.list_all_domains():
            if ref.uuid == uuid:
                return ref
        from virtkit.uuid import format_uuid

        raise NoDomainError(f"no running domain with UUID {format_uuid(uuid)}",
                            domain=ErrorDomain.XENSTORE)

    def current(self, dom: DomainRef) -> DomainRef:
        """``dom`` as it is now: the same reference while its id still carries its
        name and UUID, else the running domain with its UUID (a reboot or a
        restore gave it a new id), else the reference with id -1 (not running).
        One round of requests when the id still holds, three otherwise."""
        if dom.id >= 0:
            name, vm = self.client.read_many([f"/local/domain/{dom.id}/name",
                                              f"/local/domain/{dom.id}/vm"])
            uuid = _uuid_of_vm(vm) if dom.id else ZERO_UUID
            if name is not None and name.decode("utf-8", "replace") == dom.name \
                    and uuid == dom.uuid:
                return dom
        for ref in self.list_all_domains():
            if ref.uuid == dom.uuid:
                return ref
        return DomainRef(dom.name, dom.uuid, -1)

    # --- one domain ----------------------------------------------------------------------

    def _check(self, dom: DomainRef, name: bytes | None) -> None:
        if name is None or name.decode("utf-8", "replace") != dom.name:
            raise NoDomainError(f"domain '{dom.name}' (id {dom.id}) is not running any more",
                                domain=ErrorDomain.XENSTORE)

    def facts(self, dom: DomainRef) -> LiveFacts:
        """Everything xenstore says about a running domain, in two rounds of requests."""
        return self.facts_many([dom])[0]

    def facts_many(self, doms: list[DomainRef]) -> list[LiveFacts]:
        """:meth:`facts` of many domains, in a fixed number of rounds whatever their number;
        NoDomainError when one of them is gone."""
        from virtkit.xml.domain import Disk, Interface

        c = self.client
        base = [f"/local/domain/{d.id}/{f}" for d in doms for f in _FIELDS]
        dirs = [p for d in doms for p in (
            f"/local/domain/{d.id}/cpu", f"/local/domain/0/backend/vbd/{d.id}",
            f"/local/domain/0/backend/qdisk/{d.id}", f"/local/domain/0/backend/vif/{d.id}")]
        values = c.read_many(base + [f"/libxl/{d.id}/type" for d in doms])
        listed = c.directory_many(dirs)
        nf = len(_FIELDS)
        kinds = values[len(base):]
        # Round two: vCPU availability, <vm>/image, each device's back-end keys.
        second: list[str] = []
        plans = []
        for n, d in enumerate(doms):
            v = values[n * nf:(n + 1) * nf]
            self._check(d, v[0])
            cpus, vbds, qdisks, vifs = (listed[4 * n + k] or [] for k in range(4))
            vm = _text(v[1])
            start = len(second)
            second += [f"/local/domain/{d.id}/cpu/{i}/availability" for i in cpus]
            if vm:
                second += [f"{vm}/image/{k}" for k in ("kernel", "ramdisk", "cmdline", "ostype")]
            disk_paths = [f"/local/domain/0/backend/{kind}/{d.id}/{i}"
                          for kind, ids in (("vbd", vbds), ("qdisk", qdisks)) for i in ids]
            for p in disk_paths:
                second += [f"{p}/{k}" for k in ("params", "dev", "mode", "device-type", "type")]
            vif_paths = [f"/local/domain/0/backend/vif/{d.id}/{i}" for i in vifs]
            for p in vif_paths:
                second += [f"{p}/{k}" for k in ("mac", "bridge", "script", "vifname", "ip")]
            plans.append((start, len(cpus), bool(vm), len(disk_paths), list(vifs)))
        more = c.read_many(second) if second else []
        out = []
        for n, d in enumerate(doms):
            v = values[n * nf:(n + 1) * nf]
            start, ncpus, has_vm, ndisks, vif_ids = plans[n]
            pos = start
            avail = more[pos:pos + ncpus]
            pos += ncpus
            kernel = ramdisk = cmdline = ostype = None
            if has_vm:
                kernel, ramdisk, cmdline, ostype = (_text(x) for x in more[pos:pos + 4])
                pos += 4
            disks = []
            for _ in range(ndisks):
                params, dev, mode, dtype, btype = (_text(x) for x in more[pos:pos + 5])
                pos += 5
                if not dev:
                    continue
                cdrom = dtype == "cdrom"
                source = params or None
                is_block = bool(source and source.startswith("/dev/"))
                disks.append(Disk(type="block" if is_block else "file",
                                  device="cdrom" if cdrom else "disk", source=source,
                                  target_dev=dev, target_bus="xen" if dev.startswith("xvd") else None,
                                  driver_name="phy" if is_block else "file",
                                  readonly=mode == "r" or cdrom))
            nics = []
            for devid in vif_ids:
                mac, bridge, script, vifname, ip = (_text(x) for x in more[pos:pos + 5])
                pos += 5
                vifname = vifname or f"vif{d.id}.{devid}"  # libxl's default name
                if bridge:
                    nics.append(Interface(type="bridge", mac=mac, source=bridge, script=script,
                                          target_dev=vifname, ip_address=ip))
                else:
                    nics.append(Interface(type="ethernet", mac=mac, script=script,
                                          target_dev=vifname, ip_address=ip))
            kind = _text(kinds[n])
            if kind is None and ostype is not None:
                kind = "hvm" if ostype == "hvm" else "pv"
            online = sum(1 for a in avail if a == b"online")
            out.append(LiveFacts(
                ref=d, target_kib=_int(v[2]), static_max_kib=_int(v[3]), vcpus=ncpus,
                vcpus_online=online if ncpus else 0, console_tty=_text(v[4]) or None, kind=kind,
                kernel=kernel, ramdisk=ramdisk, cmdline=cmdline, disks=tuple(disks),
                interfaces=tuple(nics)))
        return out

    def domain_get_os_type(self, dom: DomainRef) -> str:
        kind, name = self.client.read_many([f"/libxl/{dom.id}/type", f"/local/domain/{dom.id}/name"])
        self._check(dom, name)
        if kind is None:
            return _os_type(self.facts(dom).kind)
        return _os_type(kind.decode())

    def domain_get_console_path(self, dom: DomainRef) -> str:
        tty, name = self.client.read_many([f"/local/domain/{dom.id}/console/tty",
                                           f"/local/domain/{dom.id}/name"])
        self._check(dom, name)
        if not tty:
            raise OperationInvalidError(f"domain '{dom.name}' has no serial console "
                                        f"(xenstore gives no console/tty)",
                                        domain=ErrorDomain.XENSTORE)
        return tty.decode("utf-8", "replace")

    def _pv_control(self, dom: DomainRef, request: str) -> None:
        if dom.id == 0:
            raise OperationInvalidError(f"domain 0 ({dom.name}) is the host's own: it is not "
                                        f"asked to {request} through xenstore",
                                        domain=ErrorDomain.XENSTORE)
        home = f"/local/domain/{dom.id}"
        name, node, feature, kind = self.client.read_many(
            [f"{home}/name", f"{home}/control/shutdown",
             f"{home}/control/feature-{request}", f"/libxl/{dom.id}/type"])
        self._check(dom, name)
        hvm = kind == b"hvm"
        if node is None or (hvm and feature != b"1"):
            # No PV control (an HVM guest without PV drivers): the toolstack's way.
            if self.fallback is None:
                raise OperationInvalidError(
                    f"domain '{dom.name}' has no PV control interface to {request} it",
                    domain=ErrorDomain.XENSTORE)
            getattr(self.fallback, "domain_shutdown" if request == "poweroff"
                    else "domain_reboot")(dom)
            return

        def ask(tx: object) -> None:
            from virtkit.drivers.xen.xenstore import Transaction

            assert isinstance(tx, Transaction)
            if tx.read(f"{home}/control/shutdown") is None:
                raise XenstoreNotFoundError(
                    f"domain '{dom.name}' went away before it could be asked to {request}",
                    errno_name="ENOENT", op="READ", path=f"{home}/control/shutdown")
            tx.write(f"{home}/control/shutdown", request)

        self.client.transact(ask)

    def domain_shutdown(self, dom: DomainRef) -> None:
        self._pv_control(dom, "poweroff")

    def domain_reboot(self, dom: DomainRef) -> None:
        self._pv_control(dom, "reboot")


def _os_type(kind: str | None) -> str:
    """libvirt's OS type of libxl's domain type: ``hvm`` or ``linux``."""
    return "hvm" if kind == "hvm" else "linux"
