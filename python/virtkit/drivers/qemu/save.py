"""Save, restore and core dumps of QEMU guests: QEMU's migration to and from a file.

Save (:func:`save_domain`, for :meth:`QemuDriver.domain_save`)
    The daemon creates a temporary file beside the target and writes the header
    (:mod:`~virtkit.drivers.qemu.savefile`: the live XML without its runtime
    details, the PCI slot of every device from ``query-pci``, the machine type
    from ``qom-get``). It pauses the guest (``stop``: the stream is then written
    once, not chased), passes the open file to QEMU (SCM_RIGHTS + ``getfd``) and
    sends ``migrate`` to ``fd:NAME`` with the migration ``events`` capability on
    and no bandwidth limit; QEMU writes its stream right after the header. On
    the ``MIGRATION`` event with status ``completed`` the daemon records the
    stream length in the header, syncs the file (``fdatasync``; a thread has
    been syncing it all along, so little is left) and renames it over the
    target: the path holds a complete save or whatever it held before, never a
    partial one. Only then does QEMU quit (``quit``, while the directory is
    synced): the guest exists, at every moment, in a running QEMU or in a file
    on disk. The domain is then shut off;
    a transient one is gone, a defined one keeps its definition. When anything
    fails the temporary file is removed, the migration cancelled and a guest
    that was running resumes: the domain stays as it was.

Restore (:func:`open_save_file` + :func:`receive`, for :meth:`QemuDriver.restore_domain`)
    The file is opened read-only and its header and XML are checked before any
    QEMU starts (a foreign, truncated or incomplete file is refused with
    SaveFileError). QEMU is started as for a start, plus ``-incoming defer``, the
    saved PCI layout (``addr=``) and the file's descriptor, positioned at the
    stream; the daemon sends ``migrate-incoming fd:N`` and waits for the
    ``MIGRATION`` event. ``failed`` (a stream QEMU cannot load) kills that QEMU
    and raises SaveFileError with QEMU's reason. Once loaded, the guest resumes
    (``cont``) unless it was saved paused: it goes on from the instruction where
    it stopped. The file is never written to.

Core dumps (:func:`core_dump`)
    ``dump-guest-memory`` (ELF, no paging) to a descriptor the daemon opened on
    a temporary file, renamed over the target when complete. QEMU pauses the
    guest while it dumps and resumes it after if it was running, so the domain
    ends in the state it had.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtkit.domain import DomainState
from virtkit.drivers.qemu import savefile
from virtkit.drivers.qemu import vcpus as qvcpus
from virtkit.drivers.qemu.events import wait_event
from virtkit.drivers.qemu.monitor import Monitor
from virtkit.errors import (
    ErrorDomain,
    OperationFailedError,
    SaveFileError,
    VirtError,
    VirtSystemError,
)
from virtkit.xml.domain import DomainConfig, format_domain, parse_domain

if TYPE_CHECKING:
    from virtkit.drivers.qemu.driver import QemuDriver, _Domain, _Run

__all__ = [
    "Incoming",
    "SAVE_TIMEOUT",
    "save_domain",
    "open_save_file",
    "receive",
    "core_dump",
    "runtime_free",
]

#: Seconds a migration to or from a file may take (a big guest on a slow disk).
SAVE_TIMEOUT = 600.0
#: Seconds for QEMU to quit once its state is saved (``quit``, then SIGTERM, SIGKILL).
QUIT_TIMEOUT = 60.0
#: Seconds between the background syncs of a save file being written.
FLUSH_INTERVAL = 0.02
#: QEMU's largest ``max-bandwidth`` (bytes/s): no limit for a local file.
_NO_LIMIT = (1 << 53) - 1
_SAVE_FD = "virtkit-save"
_DUMP_FD = "virtkit-dump"
_DONE = frozenset(("completed", "failed", "cancelled"))


def _qemu_error(message: str) -> OperationFailedError:
    return OperationFailedError(message, domain=ErrorDomain.QEMU)


# ====================================================================== events


def _migration_over(name: str, data: Mapping[str, Any]) -> bool:
    return name == "MIGRATION" and data.get("status") in _DONE


async def _migration_error(monitor: Monitor) -> str:
    """QEMU's reason for a failed migration, or "" when it cannot say (it exited)."""
    try:
        info = await monitor.execute("query-migrate")
    except VirtError:
        return ""
    desc = info.get("error-desc") if isinstance(info, dict) else None
    return str(desc) if desc else ""


# ====================================================================== configurations


def runtime_free(config: DomainConfig) -> DomainConfig:
    """``config`` (a live configuration) without what only its QEMU had: the id,
    the ptys QEMU allocated, a VNC port it chose. NIC aliases stay: they are
    the QEMU ids the saved stream knows the NICs by."""
    chardevs = tuple(dataclasses.replace(c, source_path=None, tty=None) if c.type == "pty" else c
                     for c in config.chardevs)
    graphics = tuple(dataclasses.replace(g, port=None) if g.type == "vnc" and g.autoport else g
                     for g in config.graphics)
    return dataclasses.replace(config, id=None, chardevs=chardevs, graphics=graphics)


async def _pci_slots(monitor: Monitor) -> dict[str, int]:
    buses = await monitor.execute("query-pci")
    slots: dict[str, int] = {}
    for bus in buses if isinstance(buses, list) else []:
        if not isinstance(bus, dict) or bus.get("bus") != 0:
            continue
        for dev in bus.get("devices", []):
            if isinstance(dev, dict) and dev.get("qdev_id") and dev.get("function") == 0:
                slots[str(dev["qdev_id"])] = int(dev["slot"])
    return slots


async def _machine(monitor: Monitor) -> str | None:
    try:
        kind = await monitor.execute("qom-get", {"path": "/machine", "property": "type"})
    except VirtError:
        return None
    if isinstance(kind, str) and kind.endswith("-machine"):
        return kind[:-len("-machine")]
    return None


# ====================================================================== files


def _temporary(path: str) -> Path:
    target = Path(path)
    return target.with_name(f".{target.name}.virtkit-{os.getpid()}.part")


def _create(tmp: Path) -> int:
    try:
        return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise VirtSystemError(f"cannot create '{tmp}': {e.strerror}", errno=e.errno) from None


def _finish(fd: int, tmp: Path, path: str) -> None:
    """Sync the temporary file and rename it to ``path`` (the directory is synced by
    :func:`_sync_directory`)."""
    try:
        os.fdatasync(fd)
        os.replace(tmp, path)
    except OSError as e:
        raise VirtSystemError(f"cannot write '{path}': {e.strerror}", errno=e.errno) from None


def _sync_directory(path: str) -> None:
    """Make the rename of ``path`` durable (``fsync`` of its directory)."""
    try:
        dirfd = os.open(Path(path).parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except OSError as e:
        raise VirtSystemError(f"cannot write '{path}': {e.strerror}", errno=e.errno) from None


def _discard(fd: int | None, tmp: Path) -> None:
    if fd is not None:
        os.close(fd)
    try:
        tmp.unlink()
    except OSError:
        pass


# ====================================================================== save


def save_domain(driver: QemuDriver, d: _Domain, run: _Run, path: str) -> None:
    """Save the running domain ``d`` to ``path`` and shut it off (caller holds
    ``d.oplock``). See the module docstring."""
    tmp = _temporary(path)
    fd: int | None = _create(tmp)
    assert fd is not None
    flusher = _Flusher(fd)
    try:
        try:
            was_running = driver._call(_send(driver, d, run, fd, flusher), SAVE_TIMEOUT + 60)
        finally:
            flusher.stop()
        try:
            _finish(fd, tmp, path)
        except BaseException:
            # QEMU still holds the guest (stopped after the migration): keep it.
            if was_running:
                driver._call(_resume(run), 60)
            raise
        # The state is on disk (under its final name once the directory is synced,
        # which happens while QEMU quits): QEMU may go.
        quitting = asyncio.run_coroutine_threadsafe(driver._quit(run), driver._loop)
        try:
            _sync_directory(path)
        finally:
            quitting.result(QUIT_TIMEOUT)
    except BaseException:
        _discard(fd, tmp)
        fd = None
        raise
    finally:
        if fd is not None:
            os.close(fd)


class _Flusher:
    """Writes the save file back to disk while QEMU fills it (``fdatasync`` in a
    loop in a thread of its own), so the final sync has little left to do."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="virtkit-save-flush", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                os.fdatasync(self._fd)
            except OSError:
                return  # the final fdatasync reports it

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


async def _resume(run: _Run) -> None:
    if run.monitor is not None and not run.gone.is_set():
        await run.monitor.execute("cont")


async def _send(driver: QemuDriver, d: _Domain, run: _Run, fd: int, flusher: _Flusher) -> bool:
    """Write the header and QEMU's stream to ``fd``; whether the guest was running."""
    monitor = run.monitor
    if monitor is None:
        raise _qemu_error(f"domain '{d.name}' has no QMP monitor")
    was_running = run.state not in (DomainState.PAUSED, DomainState.SHUTDOWN,
                                    DomainState.CRASHED)
    hotplugged = qvcpus.hotplugged_vcpus(await monitor.execute("query-hotpluggable-cpus"))
    header = savefile.SaveHeader(xml=format_domain(runtime_free(run.live)), running=was_running,
                                 pci_slots=await _pci_slots(monitor),
                                 machine=await _machine(monitor),
                                 hotplugged_vcpus=tuple(hotplugged))
    data = savefile.encode_header(header)
    os.pwrite(fd, data, 0)
    os.lseek(fd, len(data), os.SEEK_SET)
    if was_running:
        await monitor.execute("stop")
    try:
        await monitor.execute("migrate-set-capabilities",
                              {"capabilities": [{"capability": "events", "state": True}]})
        await monitor.execute("migrate-set-parameters", {"max-bandwidth": _NO_LIMIT})
        await monitor.pass_fd(fd, _SAVE_FD)
        exited = driver._exit_future(run)

        async def migrate() -> None:
            await monitor.execute("migrate", {"uri": f"fd:{_SAVE_FD}"})
            flusher.start()

        over = await wait_event(run, _migration_over, exited, SAVE_TIMEOUT, migrate)
        if over is None:
            raise _qemu_error(f"QEMU exited while saving domain '{d.name}'")
        if over.get("status") != "completed":
            why = await _migration_error(monitor)
            raise _qemu_error(f"QEMU could not save domain '{d.name}'{': ' + why if why else ''}")
        length = os.fstat(fd).st_size - len(data)
        offset, patch = savefile.stream_length_patch(length)
        os.pwrite(fd, patch, offset)
        return was_running
    except BaseException:
        if not run.gone.is_set():
            try:
                await monitor.execute("migrate_cancel")
                if was_running:
                    await monitor.execute("cont")
            except VirtError:
                pass
        raise


# ====================================================================== restore


@dataclass
class Incoming:
    """A restore under way: the save file, open read-only at its stream, and its header."""

    fd: int
    path: str
    header: savefile.SaveHeader

    @property
    def pci_slots(self) -> Mapping[str, int]:
        return self.header.pci_slots

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_save_file(path: str) -> tuple[Incoming, DomainConfig]:
    """Open and check the save file ``path``; the configuration to start, and the
    open file for :func:`receive` (close it with :meth:`Incoming.close`).

    Raises VirtSystemError when the file cannot be opened, SaveFileError when it
    is not a complete virtkit QEMU save file holding a valid domain.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise VirtSystemError(f"cannot open save file '{path}': {e.strerror}",
                              errno=e.errno) from None
    try:
        header = savefile.read_header(fd, path)
        try:
            config = parse_domain(header.xml)
        except VirtError as e:
            raise SaveFileError(f"save file '{path}' holds an invalid domain: {e}") from None
        if config.uuid is None:
            raise SaveFileError(f"save file '{path}' holds a domain without a UUID")
        config = runtime_free(config)
        # QEMU starts with the vCPUs the saved one started with; receive() adds the others.
        boot = config.online_vcpus - len(header.hotplugged_vcpus)
        if boot < 1 or any(v >= config.vcpus for v in header.hotplugged_vcpus):
            raise SaveFileError(f"save file '{path}': its vCPU numbers do not fit its domain")
        config = dataclasses.replace(config,
                                     vcpus_current=None if boot == config.vcpus else boot)
        if header.machine:
            config = dataclasses.replace(config, os=dataclasses.replace(config.os,
                                                                         machine=header.machine))
        os.lseek(fd, header.stream_offset, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return Incoming(fd, path, header), config


async def receive(driver: QemuDriver, d: _Domain, run: _Run, incoming: Incoming) -> None:
    """Load the saved state into the new QEMU of ``run`` (started with ``-incoming
    defer`` and the file's descriptor); SaveFileError when QEMU cannot."""
    monitor = run.monitor
    assert monitor is not None
    if incoming.header.hotplugged_vcpus:
        await qvcpus.plug(run, list(incoming.header.hotplugged_vcpus))
        await driver._learn_vcpus(run)
        run.live = dataclasses.replace(run.live, vcpus_current=(
            None if len(run.vcpu_tids) == run.live.vcpus else len(run.vcpu_tids)))
        driver._apply_pinning(run, run.live)
    await monitor.execute("migrate-set-capabilities",
                          {"capabilities": [{"capability": "events", "state": True}]})
    exited = driver._exit_future(run)
    over = await wait_event(run, _migration_over, exited, SAVE_TIMEOUT,
                            lambda: monitor.execute("migrate-incoming",
                                                    {"uri": f"fd:{incoming.fd}"}))
    if over is None or over.get("status") != "completed":
        # QEMU 7.2 exits after a failed incoming migration: its reason is in its log,
        # which the start path appends to this message.
        why = await _migration_error(monitor) if over is not None else ""
        raise SaveFileError(f"QEMU could not load the saved state of domain '{d.name}' from "
                            f"'{incoming.path}'{': ' + why if why else ''}")


# ====================================================================== core dumps


def core_dump(driver: QemuDriver, d: _Domain, run: _Run, path: str) -> None:
    """Write the guest memory of ``run`` to ``path`` as an ELF core (caller holds
    ``d.oplock``)."""
    tmp = _temporary(path)
    fd: int | None = _create(tmp)
    assert fd is not None
    try:
        driver._call(dump_to_fd(run, fd), SAVE_TIMEOUT)
        _finish(fd, tmp, path)
        _sync_directory(path)
    except BaseException:
        _discard(fd, tmp)
        fd = None
        raise
    finally:
        if fd is not None:
            os.close(fd)


async def dump_to_fd(run: _Run, fd: int) -> None:
    """``dump-guest-memory`` of ``run`` into the open file ``fd`` (synchronous in
    QEMU: it returns when the dump is written)."""
    monitor = run.monitor
    if monitor is None:
        raise _qemu_error("the domain has no QMP monitor")
    await monitor.pass_fd(fd, _DUMP_FD)
    await monitor.execute("dump-guest-memory", {"paging": False, "protocol": f"fd:{_DUMP_FD}"})
