"""Every golden command line, run by the real QEMU (paused: no guest code runs).

For each qemuxml2argv case with an ``.args`` file, the configuration is made
runnable on this host (image files in a temporary directory, free ports,
listeners for the ``connect`` ends, real tap devices, a kernel header), the
command is built exactly as in the golden test, and QEMU is started with
``-S``. The test then asks QEMU itself, over QMP, what it built: run state,
the devices under ``/machine/peripheral``, block devices and their node
names, character devices, the VNC server, and checks each against the
configuration. Then ``quit``; every process is reaped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
import socket
import stat
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import needs

from tests.drivers.qemu.cases import Case, all_cases
from tests.drivers.qemu.hostfiles import (
    RawQMP,
    free_tcp_port,
    free_udp_port,
    make_kernel,
    make_qcow2,
    make_raw,
)
from virtkit.drivers.qemu.command import (
    CommandContext,
    Tap,
    build_command,
    command_environment,
    disk_names,
)
from virtkit.xml.domain import CharDevice, Disk, DomainConfig, Graphics, Interface, OSConfig

pytestmark = pytest.mark.qemu

QEMU_X86_64 = shutil.which("qemu-system-x86_64")
QEMU_I386 = shutil.which("qemu-system-i386")
LIVE_CASES = [c for c in all_cases() if not c.expects_error]

_TUNSETIFF = 0x400454CA
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000

_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(scope="module", autouse=True)
def reap_everything() -> Iterator[None]:
    """After the module: every QEMU this module started has exited and been waited for."""
    yield
    alive = [p.pid for p in _started if p.poll() is None]
    for p in _started:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not alive, f"QEMU processes left running: {alive}"
    left = [n for n in os.listdir("/sys/class/net") if n.startswith(f"vk{os.getpid() % 10000}")]
    assert not left, f"tap devices left behind: {left}"


def _emulator(arch: str | None) -> str:
    if arch == "i686" and QEMU_I386:
        return QEMU_I386
    assert QEMU_X86_64 is not None
    return QEMU_X86_64


def _open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", name.encode(), _IFF_TAP | _IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def _kvm_openable() -> bool:
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


def _free_vnc_display() -> int:
    for display in range(50, 100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", 5900 + display))
            except OSError:
                continue
            return display
    pytest.fail("no free VNC port between 5950 and 5999")


class _Host:
    """Turns a golden case into something this host can start; owns what it creates."""

    def __init__(self, case: Case, tmp: Path, stack: contextlib.ExitStack) -> None:
        self.case = case
        self.tmp = tmp
        self.stack = stack
        self.pass_fds: list[int] = []
        self.tag = f"vk{os.getpid() % 10000}"
        #: Extra environment for QEMU.
        self.env: dict[str, str] = {}
        #: When set, QEMU must refuse to start, with this pattern in its log
        #: (a host device this machine does not have).
        self.refusal: str | None = None

    def listen_tcp(self, port: int) -> None:
        s = self.stack.enter_context(socket.socket())
        s.bind(("127.0.0.1", port))
        s.listen()

    def listen_unix(self, path: Path) -> None:
        s = self.stack.enter_context(socket.socket(socket.AF_UNIX))
        s.bind(str(path))
        s.listen()

    def disk(self, i: int, d: Disk) -> Disk:
        if d.source is None:
            return d
        if d.type == "block":
            # A device node of its own (same device as /dev/null, another inode),
            # so QEMU's per-image write lock sees one image per disk.
            node = self.tmp / f"disk{i}.dev"
            try:
                os.mknod(node, stat.S_IFCHR | 0o600, os.stat("/dev/null").st_rdev)
            except PermissionError:
                pytest.fail("block-device disks need root (mknod) to stand in for a device")
            return dataclasses.replace(d, source=str(node))
        fmt = d.driver_type or "raw"
        path = self.tmp / f"disk{i}.{fmt}"
        if fmt == "qcow2":
            make_qcow2(path)
        elif d.device == "floppy":
            make_raw(path, 1474560)
        else:
            make_raw(path)
        return dataclasses.replace(d, source=str(path))

    def chardev(self, i: int, c: CharDevice) -> CharDevice:
        t = c.type
        if t == "file":
            return dataclasses.replace(c, source_path=str(self.tmp / f"chr{i}.log"))
        if t == "pipe":
            path = self.tmp / f"chr{i}.pipe"
            os.mkfifo(path)
            return dataclasses.replace(c, source_path=str(path))
        if t == "unix":
            path = self.tmp / f"chr{i}.sock"
            if c.source_mode != "bind":
                self.listen_unix(path)
            return dataclasses.replace(c, source_path=str(path))
        if t == "tcp":
            port = free_tcp_port()
            if c.source_mode != "bind":
                self.listen_tcp(port)
            return dataclasses.replace(c, source_host="127.0.0.1", source_service=str(port))
        if t == "udp":
            return dataclasses.replace(c, connect_service=str(free_udp_port()),
                                       source_service=str(free_udp_port()) if c.source_service else None)
        if t == "dev":
            if c.kind == "parallel":
                if not os.path.exists(c.source_path or ""):
                    # No parallel port on this machine: QEMU must accept the
                    # arguments and then fail on the missing device itself.
                    self.refusal = re.escape(c.source_path or "")
                return c
            master, slave = os.openpty()
            self.stack.callback(os.close, master)
            self.stack.callback(os.close, slave)
            return dataclasses.replace(c, source_path=os.ttyname(slave))
        return c

    def interface(self, i: int, n: Interface) -> Interface:
        if n.type == "server":
            return dataclasses.replace(n, source_address="127.0.0.1", source_port=free_tcp_port())
        if n.type == "client":
            port = free_tcp_port()
            self.listen_tcp(port)
            return dataclasses.replace(n, source_address="127.0.0.1", source_port=port)
        return n

    def tap(self, i: int, tap: Tap) -> Tap:
        if not os.path.exists("/dev/net/tun"):
            pytest.fail("this machine has no /dev/net/tun: tap interfaces cannot be tested")
        name = f"{self.tag}t{i}"
        if tap.fd is not None:
            try:
                fd = _open_tap(name)
            except OSError as e:
                pytest.fail(f"cannot create a tap device: {e}")
            self.stack.callback(os.close, fd)
            self.pass_fds.append(fd)
            return Tap(fd=fd)
        return Tap(ifname=name)  # QEMU creates it and it goes when QEMU exits

    def graphics(self, g: Graphics) -> Graphics:
        if g.type == "sdl":
            # No X display here: SDL's off-screen video driver renders nowhere.
            self.env["SDL_VIDEODRIVER"] = "offscreen"
        if g.type == "vnc" and g.port is not None and g.port >= 5900:
            return dataclasses.replace(g, port=5900 + _free_vnc_display())
        return g

    def prepare(self) -> tuple[DomainConfig, CommandContext]:
        cfg = self.case.config()
        ctx = self.case.context()
        os_ = cfg.os
        if os_.kernel:
            os_ = dataclasses.replace(os_, kernel=str(make_kernel(self.tmp / "kernel")))
        if os_.initrd:
            os_ = dataclasses.replace(os_, initrd=str(make_raw(self.tmp / "initrd", 4096)))
        cfg = dataclasses.replace(
            cfg,
            type="qemu" if cfg.type == "kvm" and not _kvm_openable() else cfg.type,
            emulator=None,
            os=os_,
            disks=tuple(self.disk(i, d) for i, d in enumerate(cfg.disks)),
            chardevs=tuple(self.chardev(i, c) for i, c in enumerate(cfg.chardevs)),
            interfaces=tuple(self.interface(i, n) for i, n in enumerate(cfg.interfaces)),
            graphics=tuple(self.graphics(g) for g in cfg.graphics),
        )
        ctx = dataclasses.replace(
            ctx,
            emulator=_emulator(cfg.os.arch),
            qmp_socket=str(self.tmp / "qmp.sock"),
            pidfile=str(self.tmp / "qemu.pid") if ctx.pidfile else None,
            taps={i: self.tap(i, t) for i, t in ctx.taps.items()},
            vnc_display=_free_vnc_display() if ctx.vnc_display is not None else None,
        )
        return cfg, ctx


def _device_ids(args: list[str], flag: str) -> list[str]:
    ids = []
    for i, a in enumerate(args[:-1]):
        if a == flag:
            m = re.search(r"(?:^|,)id=([^,]+)", args[i + 1])
            if m:
                ids.append(m.group(1))
    return ids


def _run(args: list[str], cfg: DomainConfig, ctx: CommandContext,
         host: _Host) -> dict[str, Any] | None:
    """QEMU's answers about the machine it built; None when it refused as ``host.refusal`` expects."""
    log_path = host.tmp / "qemu.log"
    env = dict(os.environ, **command_environment(cfg), **host.env)
    if "SDL_VIDEODRIVER" in host.env:
        # The golden case names an X display this host does not have; SDL would
        # try it (and spawn a helper the sandbox forbids) instead of rendering off-screen.
        env.pop("DISPLAY", None)
        env.pop("XAUTHORITY", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                pass_fds=host.pass_fds, env=env)
    _started.append(proc)
    qmp: RawQMP | None = None
    try:
        for _ in range(200):
            if os.path.exists(ctx.qmp_socket) or proc.poll() is not None:
                break
            proc_wait(proc, 0.05)
        if host.refusal is not None:
            proc_wait(proc, 10)
            log = log_path.read_text()
            assert proc.poll() not in (None, 0), f"QEMU should have refused: {' '.join(args)}"
            assert re.search(host.refusal, log), f"QEMU refused for another reason:\n{log}"
            assert "invalid" not in log.lower() and "unknown" not in log.lower(), log
            return None
        if proc.poll() is not None:
            pytest.fail(f"QEMU refused the command line:\n{log_path.read_text()}\n{' '.join(args)}")
        try:
            qmp = RawQMP(Path(ctx.qmp_socket))
        except OSError:
            proc_wait(proc, 5)
            pytest.fail(f"QEMU exited during start-up:\n{log_path.read_text()}\n{' '.join(args)}")
        answers = {
            "status": qmp.command("query-status"),
            "peripheral": {c["name"] for c in qmp.command("qom-list", path="/machine/peripheral")},
            "block": qmp.command("query-block"),
            "chardev": qmp.command("query-chardev"),
            "vnc": qmp.command("query-vnc"),
            "pci": qmp.command("query-pci"),
            "pid": proc.pid,
            # QEMU removes its pidfile on exit: read it while it runs.
            "pidfile": Path(ctx.pidfile).read_text().strip() if ctx.pidfile else None,
        }
        qmp.command("quit")
        return answers
    finally:
        if qmp is not None:
            qmp.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def proc_wait(proc: subprocess.Popen[bytes], seconds: float) -> None:
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pass


@pytest.mark.parametrize("case", LIVE_CASES, ids=lambda c: c.name)
def test_qemu_accepts_the_golden_command_line(case: Case) -> None:
    needs.program("qemu-system-x86_64", "qemu-system-x86")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vkq-")))
        host = _Host(case, tmp, stack)
        cfg, ctx = host.prepare()
        args = build_command(cfg, ctx)
        got = _run(args, cfg, ctx, host)
        if got is None:
            return  # refused for a device this host lacks, as expected (checked in _run)

        # Run state: paused before the first instruction unless the context says otherwise
        # (or waiting for a migration stream: a restore).
        expected = ("inmigrate" if ctx.incoming else
                    "prelaunch" if ctx.start_paused else "running")
        assert got["status"]["status"] == expected
        # Devices pinned to PCI slots (a restore) are in those slots.
        slots = {d["qdev_id"]: d["slot"] for bus in got["pci"] for d in bus["devices"]
                 if d.get("qdev_id")}
        for dev_id, slot in ctx.pci_slots.items():
            assert slots.get(dev_id) == slot, f"{dev_id}: {slots}"
        # Every -device with an id exists in the machine QEMU built.
        missing = set(_device_ids(args, "-device")) - got["peripheral"]
        assert not missing, f"devices QEMU does not have: {missing}"
        # Disks: the right node behind each device, read-only where it must be.
        for d in cfg.disks:
            names = disk_names(d.target_dev)
            entry = [b for b in got["block"] if names.device_id in b.get("qdev", "")]
            assert len(entry) == 1, f"{d.target_dev}: {got['block']}"
            inserted = entry[0].get("inserted")
            if d.source is None:
                assert inserted is None
            else:
                assert inserted["node-name"] == names.format_node
                assert inserted["ro"] == (d.readonly or d.device == "cdrom")
                assert inserted["image"]["format"] == (d.driver_type or "raw")
        # Character devices: every one we defined, ptys with a real pty.
        labels = {c["label"]: c["filename"] for c in got["chardev"]}
        for chr_id in _device_ids(args, "-chardev"):
            assert chr_id in labels, f"{chr_id} missing from {labels}"
        for i, a in enumerate(args[:-1]):
            if a == "-chardev" and args[i + 1].startswith("pty,"):
                chr_id = re.search(r"id=([^,]+)", args[i + 1]).group(1)  # type: ignore[union-attr]
                assert labels[chr_id].startswith("pty:/dev/pts/")
        # VNC: enabled where configured, on the port asked for, with auth when a password is set.
        vnc = [g for g in cfg.graphics if g.type == "vnc"]
        assert got["vnc"]["enabled"] == bool(vnc)
        if vnc:
            g = vnc[0]
            port = int(got["vnc"]["service"])
            if g.port is not None and g.port >= 5900:
                assert port == g.port
            elif ctx.vnc_display is not None:
                assert port == 5900 + ctx.vnc_display
            else:
                assert 5900 <= port <= 5900 + ctx.vnc_display_range
            assert got["vnc"]["auth"] == ("vnc" if g.passwd is not None else "none")
        if ctx.pidfile:
            assert got["pidfile"] == str(got["pid"])


def test_vnc_autoport_takes_the_next_free_display() -> None:
    needs.program("qemu-system-x86_64", "qemu-system-x86")
    """Two guests with automatic VNC ports get different displays (QEMU's ``to=``)."""
    with contextlib.ExitStack() as stack:
        procs = []
        ports = []
        for n in range(2):
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vkq-")))
            cfg = DomainConfig(name=f"auto{n}", type="qemu", memory=32768,
                               os=OSConfig(machine="pc"), graphics=(Graphics(type="vnc", port=-1),))
            ctx = CommandContext(qmp_socket=str(tmp / "qmp.sock"), emulator=QEMU_X86_64)
            proc = subprocess.Popen(build_command(cfg, ctx), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _started.append(proc)
            procs.append(proc)
            qmp = RawQMP(Path(ctx.qmp_socket))
            stack.callback(qmp.close)
            ports.append(int(qmp.command("query-vnc")["service"]))
            stack.callback(lambda q=qmp, p=proc: (q.command("quit"), p.wait(timeout=10)))
        assert ports[0] != ports[1] and all(5900 <= p < 6000 for p in ports)
