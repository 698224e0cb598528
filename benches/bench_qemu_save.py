"""Save and restore of a 128 MiB guest: virtkit against QEMU's own migration to a file.

The same test guest (scripts/guest, TCG, 128 MiB, booted to its ready marker
and left ticking for a second), the same QEMU command line (virtkit's
``build_command``), two ways:

- **direct QEMU**: this process drives QEMU over a raw QMP socket, as a
  minimal tool would. Save: ``stop``, the open file passed with ``getfd``,
  ``migrate`` to ``fd:``, wait for the ``MIGRATION`` event ``completed``,
  ``quit``, wait until the process is gone. Restore: start QEMU with
  ``-incoming defer`` and the file's descriptor (QMP on a socket bound
  beforehand, as virtkit does), ``migrate-incoming fd:N``, wait for
  ``completed``, ``cont``. No header, no XML, no sync. A second line adds an
  ``fdatasync`` of the file before ``quit``: what a tool that wants the file on
  disk before the guest's QEMU is gone has to do (virtkit does that).
- **virtkit**: ``Domain.save(path)`` and ``Connection.restore_domain(path)``
  through a private ``virtkitd --driver qemu`` (the client's wall time; the
  daemon writes the header and XML, syncs the file while QEMU writes it,
  renames it into place, and on restore checks the file before QEMU starts).
  The daemon's directories are on a tmpfs (/dev/shm), as ``/run`` and
  ``$XDG_RUNTIME_DIR`` are on a normal system; the save files are on disk.

Each is measured ``VIRTKIT_BENCH_REPS`` times (default 7), the ways back to back
in each round; printed: the medians, their ratio (virtkit / direct: the
issue's target is <= 1.1x) and the median of the per-round ratios, which
suffers less from other jobs on the machine. Run from the repository root
(benches/run does).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import virtkit  # noqa: E402
from tests.drivers.qemu.guests import QemuDaemon, guest_xml  # noqa: E402
from tests.guest.console import READY_MARKER, Console, build_guest_image  # noqa: E402
from virtkit.drivers.qemu import capabilities as qcaps  # noqa: E402
from virtkit.drivers.qemu.command import CommandContext, build_command  # noqa: E402
from virtkit.xml.domain import parse_domain  # noqa: E402

REPS = int(os.environ.get("VIRTKIT_BENCH_REPS", "7"))
MEMORY_MIB = 128
BOOT = 120.0
TICK = r"VIRTKIT-TICK n=(\d+)"


def progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


class QMP:
    """A minimal synchronous QMP client (events kept in order until asked for)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.events: list[dict[str, Any]] = []
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("QMP closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        msg: dict[str, Any] = json.loads(line)
        return msg

    def command(self, name: str, args: dict[str, Any] | None = None, fd: int | None = None) -> Any:
        req: dict[str, Any] = {"execute": name}
        if args:
            req["arguments"] = args
        data = json.dumps(req).encode() + b"\n"
        if fd is None:
            self.sock.sendall(data)
        else:
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        struct.pack("i", fd))])
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)
            elif "error" in msg:
                raise RuntimeError(f"{name}: {msg['error']}")
            else:
                return msg.get("return")

    def wait_migration(self) -> str:
        while True:
            for ev in self.events:
                if ev["event"] == "MIGRATION" and ev["data"]["status"] in ("completed", "failed"):
                    self.events.clear()
                    return str(ev["data"]["status"])
            self.events.clear()
            msg = self._read()
            if "event" in msg:
                self.events.append(msg)


class Direct:
    """QEMU driven by this process."""

    def __init__(self, tmp: Path, xml: str) -> None:
        self.tmp = tmp
        self.config = parse_domain(xml)
        self.resolved = qcaps.discover().resolve(self.config)
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: QMP | None = None

    def _spawn(self, *, incoming_fd: int | None) -> None:
        path = self.tmp / "direct.qmp"
        if path.exists():
            path.unlink()
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.listen(1)
        argv = build_command(self.config, CommandContext(
            qmp_socket=str(path), qmp_fd=listener.fileno(), emulator=self.resolved.emulator,
            machine=self.resolved.machine, start_paused=incoming_fd is not None,
            incoming="defer" if incoming_fd is not None else None))
        fds = [listener.fileno()] + ([incoming_fd] if incoming_fd is not None else [])
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=fds,
                                     start_new_session=True)
        listener.close()
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(path))
        self.qmp = QMP(sock)

    def boot(self) -> None:
        self._spawn(incoming_fd=None)
        assert self.proc is not None and self.proc.stdout is not None
        pty = None
        while pty is None:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("QEMU exited")
            m = re.search(r"redirected to (/dev/pts/\d+) \(label charserial0\)", line)
            pty = m[1] if m else None
        wait_ready(pty)

    def _exit(self) -> None:
        assert self.proc is not None and self.qmp is not None
        pidfd = os.pidfd_open(self.proc.pid)
        try:
            self.qmp.command("quit")
        except EOFError:
            pass
        select.select([pidfd], [], [])
        os.close(pidfd)
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.qmp.sock.close()

    def save(self, path: Path, sync: bool) -> float:
        assert self.qmp is not None
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self.qmp.command("stop")
        self.qmp.command("migrate-set-capabilities",
                         {"capabilities": [{"capability": "events", "state": True}]})
        self.qmp.command("migrate-set-parameters", {"max-bandwidth": (1 << 53) - 1})
        self.qmp.command("getfd", {"fdname": "save"}, fd=fd)
        self.qmp.command("migrate", {"uri": "fd:save"})
        status = self.qmp.wait_migration()
        if sync:
            os.fdatasync(fd)
        os.close(fd)
        self._exit()
        dt = time.perf_counter() - t0
        assert status == "completed", status
        return dt

    def restore(self, path: Path) -> float:
        t0 = time.perf_counter()
        fd = os.open(path, os.O_RDONLY)
        self._spawn(incoming_fd=fd)
        assert self.qmp is not None
        self.qmp.command("migrate-set-capabilities",
                         {"capabilities": [{"capability": "events", "state": True}]})
        self.qmp.command("migrate-incoming", {"uri": f"fd:{fd}"})
        status = self.qmp.wait_migration()
        self.qmp.command("cont")
        dt = time.perf_counter() - t0
        os.close(fd)
        assert status == "completed", status
        assert self.qmp.command("query-status")["status"] == "running"
        return dt

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._exit()


def wait_ready(pty: str) -> Console:
    fd = os.open(pty, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    console = Console(fd, fd)
    try:
        console.expect(READY_MARKER, BOOT)
        console.expect(TICK, 30)  # running its loop, memory touched as it will be
    finally:
        os.close(fd)
    return console


def main() -> int:
    image = build_guest_image()
    xml = guest_xml("bench-save", image, memory_mib=MEMORY_MIB)
    results: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    tmp = Path(tempfile.mkdtemp(prefix="vk-bsave-"))
    # The daemon's runtime directory (status files, QMP sockets) is a tmpfs on a real
    # system (/run, $XDG_RUNTIME_DIR); here / is one ext4 file system, so its
    # directories go to /dev/shm. The save files are on disk for both ways.
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="vkq-", dir=shm if shm.is_dir() else None))
    daemon = QemuDaemon(base).start()
    try:
        with virtkit.open(daemon.uri) as conn:
            dom = conn.define_domain(xml)
            for rep in range(REPS):
                progress(f"round {rep + 1}/{REPS}")
                for sync in (False, True):
                    direct = Direct(tmp, xml)
                    try:
                        direct.boot()
                        label = "direct QEMU + fdatasync" if sync else "direct QEMU"
                        results.setdefault(f"save/{label}", []).append(
                            direct.save(tmp / "direct.stream", sync))
                        sizes["direct"] = (tmp / "direct.stream").stat().st_size
                        if not sync:
                            results.setdefault("restore/direct QEMU", []).append(
                                direct.restore(tmp / "direct.stream"))
                    finally:
                        direct.close()
                dom.start()
                wait_ready(dom.console_path())
                t0 = time.perf_counter()
                dom.save(tmp / "virtkit.save")
                results.setdefault("save/virtkit", []).append(time.perf_counter() - t0)
                sizes["virtkit"] = (tmp / "virtkit.save").stat().st_size
                t0 = time.perf_counter()
                restored = conn.restore_domain(tmp / "virtkit.save")
                results.setdefault("restore/virtkit", []).append(time.perf_counter() - t0)
                assert restored.state() == virtkit.DomainState.RUNNING
                restored.destroy()
            dom.undefine()
    finally:
        daemon.stop()
        daemon.cleanup()
        shutil.rmtree(base, ignore_errors=True)
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()

    medians = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nSave and restore of a {MEMORY_MIB} MiB guest (TCG), median of {REPS} "
          f"(file: virtkit {sizes['virtkit'] / 2**20:.1f} MiB, direct stream "
          f"{sizes['direct'] / 2**20:.1f} MiB)")
    for what in ("save", "restore"):
        ours = medians[f"{what}/virtkit"]
        print(what)
        print(f"  {'virtkit':<26} {ours * 1000:9.1f} ms   "
              f"(min {min(results[f'{what}/virtkit']) * 1000:.1f}, "
              f"max {max(results[f'{what}/virtkit']) * 1000:.1f})")
        for key, value in medians.items():
            if key.startswith(what + "/") and key != f"{what}/virtkit":
                who = key.split("/", 1)[1]
                # Rounds run the two ways back to back: the ratio within a round is
                # less exposed to the machine's load than the ratio of the medians.
                paired = statistics.median(v / d for v, d in zip(results[f"{what}/virtkit"],
                                                                 results[key]))
                print(f"  {who:<26} {value * 1000:9.1f} ms   virtkit / {who}: "
                      f"{ours / value:5.2f}x (medians), {paired:5.2f}x (median per round)")
    print("\nJSON " + json.dumps({k: [round(x, 4) for x in v] for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
