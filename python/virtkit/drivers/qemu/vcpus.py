"""vCPU hot-plug: :meth:`QemuDriver.domain_set_vcpus` on a running guest.

QEMU runs every guest with ``-smp cpus=CURRENT,maxcpus=MAX,sockets=MAX``
(:mod:`~virtkit.drivers.qemu.command`): one socket per possible vCPU, ``MAX``
being ``<vcpu>`` and ``CURRENT`` its ``current`` attribute. While the guest
runs, the count can move between 1 and ``MAX`` (the maximum is fixed by QEMU's
machine; it changes while the domain is shut off):

- up: for each missing vCPU, lowest number first, ``device_add`` of the CPU
  type and socket ``query-hotpluggable-cpus`` reports (id ``vcpuN``). The
  guest is told through ACPI; Linux brings such a CPU online when something
  writes ``1`` to ``/sys/devices/system/cpu/cpuN/online`` (a udev rule on most
  distributions).
- down: highest number first, ``device_del`` of the CPU's QOM path; the guest
  takes it offline and QEMU reports ``DEVICE_DELETED``. A guest that does not
  let a vCPU go within :data:`UNPLUG_TIMEOUT` seconds gets an error (the vCPUs
  already gone stay gone). Only vCPUs added while QEMU runs can go: the ones
  it started with (``-smp cpus``) stay (as with libvirt's non-hotpluggable
  vCPUs). This keeps ``-smp cpus`` meaningful for a restore: the saved QEMU's
  virtio devices sized their queues by it, so the restored QEMU starts with
  the same count and gets the added vCPUs back by ``device_add`` before it
  loads the stream (:mod:`~virtkit.drivers.qemu.save`).

Afterwards the driver learns the vCPU threads again (``query-cpus-fast``),
applies the pinning the configuration gives the new ones, and records the
count in the live configuration (``<vcpu current>``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from virtkit.drivers.qemu.events import wait_event
from virtkit.errors import (
    ErrorDomain,
    InvalidArgumentError,
    OperationFailedError,
    OperationInvalidError,
)

if TYPE_CHECKING:
    from virtkit.drivers.qemu.driver import QemuDriver, _Domain, _Run

__all__ = ["UNPLUG_TIMEOUT", "set_live_vcpus", "hotplugged_vcpus", "plug"]

#: Seconds a guest has to give up one vCPU.
UNPLUG_TIMEOUT = 30.0

_TOPOLOGY = ("node-id", "drawer-id", "book-id", "socket-id", "die-id", "cluster-id",
             "core-id", "thread-id")


def _failed(message: str) -> OperationFailedError:
    return OperationFailedError(message, domain=ErrorDomain.QEMU)


def set_live_vcpus(driver: QemuDriver, d: _Domain, run: _Run, count: int) -> None:
    """Make ``count`` vCPUs present in the running domain ``d`` (caller holds
    ``d.oplock``). InvalidArgumentError above the domain's maximum."""
    maximum = run.live.vcpus
    if count > maximum:
        raise InvalidArgumentError(
            f"domain '{d.name}' can have at most {maximum} vCPUs while it runs (its <vcpu> "
            "maximum; change the maximum while the domain is shut off)")
    try:
        driver._call(_change(driver, run, count), UNPLUG_TIMEOUT * max(1, maximum) + 60.0)
    finally:
        with driver._lock:
            present = len(run.vcpu_tids) or count
            run.live = dataclasses.replace(run.live, vcpus_current=(
                None if present == run.live.vcpus else present))
        driver._save_status(d, run)


def _hotplugged(slot: Mapping[str, Any]) -> bool:
    """Whether a present vCPU was added while QEMU ran (it has an id: ``vcpuN``);
    the ones QEMU started with (``-smp cpus``) cannot be removed."""
    return str(slot.get("qom-path", "")).startswith("/machine/peripheral/")


def hotplugged_vcpus(cpus: Any) -> list[int]:
    """The numbers of the vCPUs added while QEMU ran, from ``query-hotpluggable-cpus``
    (a restore adds them again before loading the stream: QEMU's ``-smp cpus``
    must be the one the saved QEMU started with)."""
    return [i for i, slot in enumerate(_slots(cpus)) if slot.get("qom-path") and _hotplugged(slot)]


async def plug(run: _Run, indexes: list[int]) -> None:
    """``device_add`` the vCPUs numbered ``indexes`` (absent ones) into ``run``."""
    monitor = run.monitor
    if monitor is None:
        raise _failed("the domain has no QMP monitor")
    slots = _slots(await monitor.execute("query-hotpluggable-cpus"))
    for index in indexes:
        if index >= len(slots):
            raise _failed(f"vCPU {index} does not fit this QEMU's topology")
        slot = slots[index]
        if not slot.get("qom-path"):
            await monitor.execute("device_add", {"driver": slot["type"], "id": f"vcpu{index}",
                                                 **slot["props"]})


def _slots(cpus: Any) -> list[dict[str, Any]]:
    """``query-hotpluggable-cpus`` in vCPU order (index = position)."""
    slots = [c for c in cpus if isinstance(c, dict) and isinstance(c.get("props"), dict)]
    slots.sort(key=lambda c: tuple(int(c["props"].get(k, 0)) for k in _TOPOLOGY))
    return slots


async def _change(driver: QemuDriver, run: _Run, count: int) -> None:
    monitor = run.monitor
    if monitor is None:
        raise _failed("the domain has no QMP monitor")
    try:
        slots = _slots(await monitor.execute("query-hotpluggable-cpus"))
        present = [i for i, slot in enumerate(slots) if slot.get("qom-path")]
        boot = [i for i in present if not _hotplugged(slots[i])]
        if count < len(boot):
            raise OperationInvalidError(
                f"vCPUs 0-{len(boot) - 1} of domain '{run.live.name}' were there when it "
                "started; QEMU can only remove vCPUs added while it runs (start the domain "
                "with fewer, <vcpu current='N'>, to make room)")
        await plug(run, [i for i in range(min(count, len(slots))) if i not in present])
        for index in sorted(present, reverse=True):
            if index < count or not _hotplugged(slots[index]):
                continue
            path = str(slots[index]["qom-path"])

            def gone(name: str, data: Mapping[str, Any], path: str = path) -> bool:
                # QEMU 7.2 reports the CPU's children (its local APIC), not always the
                # CPU itself; either means the guest let it go.
                where = str(data.get("path", ""))
                return name == "DEVICE_DELETED" and (where == path or
                                                     where.startswith(path + "/"))

            async def unplug(path: str = path) -> None:
                await monitor.execute("device_del", {"id": path})

            try:
                got = await wait_event(run, gone, driver._exit_future(run), UNPLUG_TIMEOUT,
                                       unplug)
            except OperationFailedError:
                raise _failed(f"the guest did not release vCPU {index} within "
                              f"{UNPLUG_TIMEOUT:g} s") from None
            if got is None:
                raise _failed("QEMU exited while removing a vCPU")
    finally:
        if not run.gone.is_set():
            await driver._learn_vcpus(run)
            driver._apply_pinning(run, run.live)
