"""The lifecycle actions the QEMU driver carries out itself: rename-restart and core dumps.

QEMU runs every guest with ``-action shutdown=pause,panic=pause`` (and
``reboot=shutdown`` unless ``<on_reboot>`` is ``restart``), so when the guest
powers off, reboots or crashes (pvpanic) QEMU stops its vCPUs, stays alive
and tells the driver (``SHUTDOWN`` / ``GUEST_PANICKED``). ``destroy``,
``restart`` and ``preserve`` are a QMP command away (the driver does them in
``_apply``); the other two need more, and live here:

``rename-restart`` (libvirt 0.2.2: "the domain is renamed and a new one is
started in its place")
    The stopped QEMU is kept, paused, for post-mortem: it becomes a transient
    domain named ``NAME-renamed-N`` (the lowest free N) with a UUID of its own,
    keeping its id; its QMP socket, pidfile and status file are renamed with it,
    so a restarted daemon adopts it under its new name. Its lifecycle actions
    become ``preserve``: it stays as it is whatever it reports. Both QEMUs
    cannot hold the same disk images (QEMU locks them), so the old one first
    lets go of its disks (a migration of its state to ``/dev/null``
    inactivates them, QEMU 7.2 has no other way) and keeps its memory; it
    cannot run again, only be examined (``virsh dump``) and destroyed. It is
    destroyed with SIGKILL: a clean exit would remove the QMP socket and
    pidfile paths it was started with, which now belong to the new QEMU. Then a fresh QEMU starts
    the original domain (its definition, or for a transient domain the
    configuration it was started with) under the original name and UUID, with
    a new id. Destroy the renamed domain when done with it. A domain whose
    restart fails is left shut off (and the failure logged); the renamed one
    stays.

``coredump-destroy`` / ``coredump-restart`` (``<on_crash>`` only)
    ``dump-guest-memory`` (ELF) of the crashed guest to
    ``STATE/qemu/dump/NAME-YYYYmmdd-HHMMSS.core`` (mode 0600), then destroy
    (QMP ``quit``) or restart (``system_reset`` + ``cont``) as for the plain
    actions. A dump that fails is logged; the action still happens.

The renaming takes the domain's operation lock, so it runs in a thread of its
own (the event arrives on the driver's loop, which never waits for a lock);
:meth:`QemuDriver.close` waits for such threads.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtkit.domain import DomainState
from virtkit.drivers.qemu.command import lifecycle
from virtkit.drivers.qemu.events import wait_event
from virtkit.drivers.qemu.save import dump_to_fd
from virtkit.errors import ErrorDomain, VirtError
from virtkit.uuid import generate_uuid_bytes
from virtkit.xml.domain import LifecycleAction

if TYPE_CHECKING:
    from virtkit.drivers.qemu.driver import QemuDriver, _Domain, _Run

__all__ = ["rename_restart", "dump_then", "after_exit", "renamed_name"]

log = logging.getLogger(__name__)

#: Runs kept under a new name -> the pidfile QEMU was started with (QEMU removes that
#: path when it exits, though it now belongs to the domain restarted in its place).
_RENAMED: weakref.WeakKeyDictionary[_Run, Path] = weakref.WeakKeyDictionary()


def renamed_name(taken: object, name: str) -> str:
    """``NAME-renamed-N`` with the lowest N not in ``taken`` (a container of names)."""
    n = 1
    while f"{name}-renamed-{n}" in taken:  # type: ignore[operator]
        n += 1
    return f"{name}-renamed-{n}"


# ====================================================================== rename-restart


def rename_restart(driver: QemuDriver, d: _Domain, run: _Run, crashed: bool) -> None:
    """Apply ``rename-restart`` to ``run`` (on the driver's loop): mark it, then rename
    and restart in a thread that takes the operation lock."""
    run.state = DomainState.CRASHED if crashed else DomainState.PAUSED
    worker = threading.Thread(target=_rename_and_restart, args=(driver, d, run),
                              name=f"virtkit-qemu-rename-{d.name}", daemon=True)
    driver._chores.append(worker)
    worker.start()


def _rename_and_restart(driver: QemuDriver, d: _Domain, run: _Run) -> None:
    try:
        with d.oplock:
            if not d.known or d.run is not run or run.gone.is_set():
                return  # destroyed (or restarted) by a client meanwhile
            try:
                old = _rename(driver, d, run)
            except VirtError as e:
                log.warning("rename-restart of domain %r: cannot keep the old QEMU: %s",
                            d.name, e)
                return
            log.info("domain %r: kept as %r (id %d), starting it again", d.name, old.name,
                     run.id)
            try:
                driver._start(d, d.config)
            except VirtError as e:
                log.warning("rename-restart of domain %r: the new start failed: %s", d.name, e)
                with driver._lock:
                    if d.run is None and not d.persistent:
                        driver._forget(d)
    finally:
        me = threading.current_thread()
        if me in driver._chores:
            driver._chores.remove(me)


def _rename(driver: QemuDriver, d: _Domain, run: _Run) -> _Domain:
    """Move ``run`` from ``d`` to a new transient domain ``NAME-renamed-N``."""
    from virtkit.drivers.qemu.driver import _Domain

    dirs = driver.dirs
    if any(disk.source is not None for disk in run.live.disks):
        driver._call(_release_disks(driver, run), 600.0)
    with driver._lock:
        name = renamed_name(driver._by_name, d.name)
        uuid = generate_uuid_bytes()
        # Kept for post-mortem: whatever it reports from now on, it stays (and a
        # restarted daemon that adopts it does not rename it again).
        live = dataclasses.replace(run.live, name=name, uuid=uuid,
                                   on_poweroff=LifecycleAction.PRESERVE,
                                   on_reboot=LifecycleAction.PRESERVE,
                                   on_crash=LifecycleAction.PRESERVE)
        old = _Domain(live, persistent=False)
        old.run = run
        run.live = live
        run.life = lifecycle(live)
        d.run = None
        driver._domains[uuid] = old
        driver._by_name[name] = uuid
        driver._by_id[run.id] = uuid
    monitor_path = dirs.monitor(name, uuid.hex())
    _move(run.monitor_path, monitor_path)
    run.monitor_path = monitor_path
    _move(dirs.pidfile(d.name), dirs.pidfile(name))
    _RENAMED[run] = dirs.pidfile(d.name)
    driver._save_status(old, run)
    try:
        dirs.status_file(d.name).unlink()
    except FileNotFoundError:
        pass
    driver._call(_rewire(driver, old, run), 10.0)
    return old


async def _release_disks(driver: QemuDriver, run: _Run) -> None:
    """Make the stopped QEMU of ``run`` let go of its disk images (their locks), so
    the new QEMU can open them, while keeping its memory for post-mortem.

    QEMU 7.2 has no command for that alone; the end of an outgoing migration does
    it (the block devices become inactive), so the state is migrated to
    ``/dev/null``. QEMU is then in ``postmigrate``: still paused, its memory still
    there (``dump-guest-memory`` works).
    """
    monitor = run.monitor
    if monitor is None:
        raise VirtError("the domain has no QMP monitor", domain=ErrorDomain.QEMU)
    fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    try:
        await monitor.execute("migrate-set-capabilities",
                              {"capabilities": [{"capability": "events", "state": True}]})
        await monitor.execute("migrate-set-parameters", {"max-bandwidth": (1 << 53) - 1})
        await monitor.pass_fd(fd, "virtkit-release")

        def over(name: str, data: Mapping[str, Any]) -> bool:
            return name == "MIGRATION" and data.get("status") in ("completed", "failed",
                                                                    "cancelled")

        got = await wait_event(run, over, driver._exit_future(run), 600.0,
                               lambda: monitor.execute("migrate",
                                                       {"uri": "fd:virtkit-release"}))
    finally:
        os.close(fd)
    if got is None or got.get("status") != "completed":
        raise VirtError("QEMU could not release the disk images", domain=ErrorDomain.QEMU)


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except FileNotFoundError:
        pass


async def _rewire(driver: QemuDriver, old: _Domain, run: _Run) -> None:
    """Deliver the exit and the events of ``run`` to its new domain ``old``."""
    if run.pidfd >= 0:
        driver._loop.remove_reader(run.pidfd)
        driver._loop.add_reader(run.pidfd, driver._on_exit, old, run)
    if run.monitor is not None:
        run.monitor.set_event_handler(lambda ev: driver._on_event(old, run, ev))


def after_exit(driver: QemuDriver, run: _Run) -> None:
    """A QEMU has exited (on the loop, after its runtime files went): if it was kept
    under a new name, put back the pidfile it removed from the domain restarted in
    its place."""
    pidfile = _RENAMED.pop(run, None)
    if pidfile is None:
        return
    name = pidfile.name[:-len(".pid")]
    with driver._lock:
        uuid = driver._by_name.get(name)
        d = driver._domains.get(uuid) if uuid is not None else None
        current = d.run if d is not None else None
    if current is not None and not current.gone.is_set() and not pidfile.exists():
        try:
            pidfile.write_text(f"{current.pid}\n")
        except OSError as e:
            log.warning("cannot restore %s: %s", pidfile, e)


# ====================================================================== core dump actions


def dump_then(driver: QemuDriver, d: _Domain, run: _Run, action: LifecycleAction) -> None:
    """Apply ``coredump-destroy`` or ``coredump-restart`` to the crashed ``run`` (on the
    driver's loop)."""
    run.state = DomainState.CRASHED
    driver._loop.create_task(_dump_then(driver, d, run, action))


async def _dump_then(driver: QemuDriver, d: _Domain, run: _Run, action: LifecycleAction) -> None:
    where = driver.dirs.state / "dump"
    path = where / f"{d.name}-{time.strftime('%Y%m%d-%H%M%S')}.core"
    try:
        where.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            await dump_to_fd(run, fd)
        finally:
            os.close(fd)
        log.info("domain %r crashed: its memory is in %s", d.name, path)
    except (OSError, VirtError) as e:
        log.warning("domain %r crashed and its memory could not be dumped to %s: %s",
                    d.name, path, e)
    if action is LifecycleAction.COREDUMP_RESTART:
        await driver._reset(run)
    else:
        await driver._quit(run)
