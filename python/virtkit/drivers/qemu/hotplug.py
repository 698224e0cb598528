"""Devices added to and removed from running QEMU guests.

:meth:`QemuDriver.domain_attach_device` and ``domain_detach_device`` on an
active domain change the running QEMU and its live configuration (the
definition is left alone: libvirt's "current" rule, as for memory and vCPUs).

Attach
    A disk or an interface. The new device goes into the live configuration
    (a NIC gets a MAC if it has none, and ``<alias name='netN'/>`` with the
    first id no other NIC uses), the whole configuration is checked as for a
    start, and :func:`~virtkit.drivers.qemu.command.device_parts` gives the
    QMP arguments: ``blockdev-add`` for the storage and format nodes of a disk
    (or ``netdev_add`` for a NIC), then ``device_add``. QEMU puts a PCI device
    in the first free slot of the root bus, and the guest learns of it through
    ACPI PCI hot-plug (``pc`` machines with ``<acpi/>``; QEMU refuses PCI
    hot-plug on ``q35``'s root bus, and says so). A device on a controller
    (SCSI, USB) needs that controller to exist already. If a step fails, the
    steps before it are undone. An interface whose host side is a tap
    (``network``, ``bridge``, ``ethernet``) first gets its tap, made as at
    start (:func:`~virtkit.drivers.qemu.networking.plug_tap`), which QEMU opens
    by name. Not hot-pluggable: IDE, SATA and floppy disks, and ISA NICs.

Detach
    The device is found as for an inactive domain (a disk by its target, a NIC
    by its MAC), then ``device_del``: QEMU asks the guest to release it and
    reports ``DEVICE_DELETED`` when it has. Only then are its block nodes
    (``blockdev-del``) or network back end (``netdev_del``, then its tap) removed
    and the device dropped from the live configuration. A guest that does not release
    the device within :data:`DETACH_TIMEOUT` seconds gets an error; the
    removal stays pending in QEMU and completes (configuration included)
    whenever the guest lets it go.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from virtkit.drivers.qemu import networking
from virtkit.drivers.qemu.command import (
    CommandContext,
    DeviceParts,
    Tap,
    device_parts,
    disk_names,
    interface_ids,
)
from virtkit.drivers.qemu.mac import fill_missing_macs
from virtkit.errors import ErrorCode, ErrorDomain, OperationFailedError, VirtError
from virtkit.xml.domain import Device, Disk, DomainConfig, Interface

if TYPE_CHECKING:
    from virtkit.drivers.qemu.driver import QemuDriver, _Domain, _Run

__all__ = ["DETACH_TIMEOUT", "attach", "detach", "with_nic_aliases"]

log = logging.getLogger(__name__)

#: Seconds a guest has to release a device it is asked to give up.
DETACH_TIMEOUT = 30.0

_TAP_TYPES = frozenset(("network", "bridge", "ethernet"))
#: QEMU devices that cannot be hot-plugged (fixed buses of the PC).
_FIXED_DEVICES = frozenset(("ide-hd", "ide-cd", "floppy", "ne2k_isa"))
#: Controller name (command.py) -> its QEMU device id.
_CONTROLLER_IDS = {"scsi": "scsi0", "usb": "usb", "sata": "sata0", "fdc": "fdc0",
                   "virtio-serial": "virtio-serial0"}


def _unsupported(message: str) -> VirtError:
    return VirtError(message, code=ErrorCode.CONFIG_UNSUPPORTED, domain=ErrorDomain.QEMU)


def _failed(message: str) -> OperationFailedError:
    return OperationFailedError(message, domain=ErrorDomain.QEMU)


def with_alias(iface: Interface, alias: str) -> Interface:
    """``iface`` carrying ``<alias name='ALIAS'/>`` (replacing any other alias)."""
    extra = tuple(e for e in iface.extra if not e.startswith("<alias"))
    return dataclasses.replace(iface, extra=(*extra, f"<alias name='{alias}'/>"))


def with_nic_aliases(config: DomainConfig) -> DomainConfig:
    """``config`` with every NIC's QEMU id written as its ``<alias>`` (the live
    configuration of a started domain: a NIC keeps its id whatever is detached
    before it, and a restore names it the same)."""
    if not config.interfaces:
        return config
    ids = interface_ids(config)
    return dataclasses.replace(config, interfaces=tuple(
        with_alias(iface, device_id) for iface, (_, device_id) in zip(config.interfaces, ids)))


# ====================================================================== attach


def attach(driver: QemuDriver, d: _Domain, run: _Run, device: Device) -> None:
    """Hot-plug ``device`` into the running domain ``d`` (caller holds ``d.oplock``)."""
    from virtkit.drivers.edit import attach_device

    if not isinstance(device, (Disk, Interface)):
        raise _unsupported(f"a <{type(device).__name__.lower()}> cannot be added to a running "
                           "QEMU guest (disks and interfaces can)")
    live = run.live
    if isinstance(device, Interface):
        taken = {device_id for _, device_id in interface_ids(live)}
        n = 0
        while f"net{n}" in taken:
            n += 1
        device = with_alias(device, f"net{n}")
        if device.mac is None:
            probe = fill_missing_macs(attach_device(live, device))
            device = probe.interfaces[-1]
    new_live = driver._prepare(attach_device(live, device))
    resolved = driver._resolve(new_live)
    ctx = CommandContext(qmp_socket="/dev/null", emulator=resolved.emulator,
                         machine=resolved.machine)
    if isinstance(device, Interface) and device.type in _TAP_TYPES:
        parts = device_parts(new_live, device, dataclasses.replace(
            ctx, taps={len(live.interfaces): Tap(ifname="virtkit-check")}))
    else:
        parts = device_parts(new_live, device, ctx)
    if parts.device["driver"] in _FIXED_DEVICES:
        raise _unsupported(f"a {parts.device['driver']} device cannot be added to a running "
                           "guest (its bus is not hot-pluggable); virtio and SCSI disks and "
                           "PCI NICs can")
    tapped: Interface | None = None
    if isinstance(device, Interface) and device.type in _TAP_TYPES:
        index = len(live.interfaces)
        tapped, tap = networking.plug_tap(new_live, index, device, driver._net_manager,
                                          log_path=str(driver.dirs.log_file(d.name)))
        device = tapped
        new_live = attach_device(live, device)
        parts = device_parts(new_live, device, dataclasses.replace(ctx, taps={index: tap}))
    try:
        driver._call(_plug(run, parts, isinstance(device, Disk)), 60.0)
    except BaseException:
        if tapped is not None:
            networking.unplug_tap(tapped)
        raise
    with driver._lock:
        run.live = attach_device(run.live, device)
    driver._save_status(d, run)


async def _plug(run: _Run, parts: DeviceParts, disk: bool) -> None:
    monitor = run.monitor
    if monitor is None:
        raise _failed("the domain has no QMP monitor")
    if parts.controllers:
        present = {c.get("name") for c in await monitor.execute(
            "qom-list", {"path": "/machine/peripheral"}) if isinstance(c, dict)}
        missing = [name for name in sorted(parts.controllers)
                   if _CONTROLLER_IDS.get(name) not in present]
        if missing:
            raise _unsupported(f"the device needs a {' and a '.join(missing)} controller, which "
                               "this guest did not start with")
    done: list[dict[str, Any]] = []
    try:
        for backend in parts.backends:
            await monitor.execute("blockdev-add" if disk else "netdev_add", backend)
            done.append(backend)
        await monitor.execute("device_add", parts.device)
    except BaseException:
        for backend in reversed(done):
            await _remove_backend(run, backend, disk)
        raise


async def _remove_backend(run: _Run, backend: Mapping[str, Any], disk: bool) -> None:
    monitor = run.monitor
    if monitor is None or run.gone.is_set():
        return
    try:
        if disk:
            await monitor.execute("blockdev-del", {"node-name": backend["node-name"]})
        else:
            await monitor.execute("netdev_del", {"id": backend["id"]})
    except VirtError as e:
        log.warning("cannot remove a back end of a detached device: %s", e)


# ====================================================================== detach


def detach(driver: QemuDriver, d: _Domain, run: _Run, device: Device) -> None:
    """Hot-unplug the device matching ``device`` from the running domain ``d``
    (caller holds ``d.oplock``)."""
    from virtkit.drivers.edit import same_device

    live = run.live
    found: Disk | Interface
    if isinstance(device, Disk):
        disk = next((x for x in live.disks if same_device(x, device)), None)
        if disk is None:
            raise _failed(f"no matching device found in domain '{d.name}' to detach")
        found = disk
        names = disk_names(disk.target_dev)
        device_id = names.device_id
        backends: list[dict[str, Any]] = [{"node-name": names.format_node},
                                          {"node-name": names.storage_node}] \
            if disk.source is not None else []
    elif isinstance(device, Interface):
        index = next((i for i, x in enumerate(live.interfaces) if same_device(x, device)), None)
        if index is None:
            raise _failed(f"no matching device found in domain '{d.name}' to detach")
        found = live.interfaces[index]
        netdev_id, device_id = interface_ids(live)[index]
        backends = [{"id": netdev_id}]
    else:
        raise _unsupported(f"a <{type(device).__name__.lower()}> cannot be removed from a "
                           "running QEMU guest (disks and interfaces can)")
    driver._call(_unplug(driver, d, run, found, device_id, backends,
                         isinstance(found, Disk)), DETACH_TIMEOUT + 30.0)


async def _unplug(driver: QemuDriver, d: _Domain, run: _Run, found: Disk | Interface,
                  device_id: str, backends: list[dict[str, Any]], disk: bool) -> None:
    from virtkit.drivers.edit import detach_device

    monitor = run.monitor
    if monitor is None:
        raise _failed("the domain has no QMP monitor")
    loop = asyncio.get_running_loop()
    released: asyncio.Future[asyncio.Task[None]] = loop.create_future()

    def watch(name: str, data: Mapping[str, Any]) -> bool:
        # Registered until the device is gone, even after the caller gave up waiting:
        # a guest that releases it late still gets it removed everywhere.
        if name != "DEVICE_DELETED" or data.get("device") != device_id:
            return False
        with driver._lock:
            try:
                run.live = detach_device(run.live, found)
            except VirtError:
                pass
        cleanup = loop.create_task(_after_unplug(driver, d, run, found, backends, disk))
        if not released.done():
            released.set_result(cleanup)
        return True

    run.watchers.append(watch)
    try:
        await monitor.execute("device_del", {"id": device_id})
    except BaseException:
        run.watchers.remove(watch)
        raise
    exited = driver._exit_future(run)
    waiting: set[asyncio.Future[Any]] = {released, exited}
    done, _ = await asyncio.wait(waiting, timeout=DETACH_TIMEOUT,
                                 return_when=asyncio.FIRST_COMPLETED)
    if released in done:
        await released.result()  # the back ends are gone too
        return
    if exited in done:
        raise _failed(f"QEMU exited while removing device '{device_id}' of domain '{d.name}'")
    raise _failed(f"the guest of domain '{d.name}' did not release device '{device_id}' within "
                  f"{DETACH_TIMEOUT:g} s; the removal stays pending and completes when it does")


async def _after_unplug(driver: QemuDriver, d: _Domain, run: _Run, found: Disk | Interface,
                        backends: list[dict[str, Any]], disk: bool) -> None:
    for backend in backends:
        await _remove_backend(run, backend, disk)
    if isinstance(found, Interface) and found.type in _TAP_TYPES and not run.gone.is_set():
        networking.unplug_tap(found)  # QEMU has closed it (netdev_del)
    if not run.gone.is_set():
        try:
            driver._save_status(d, run)
        except VirtError as e:
            log.warning("cannot update the status of domain %r: %s", d.name, e)
