"""The QEMU driver against the physical limit (QEMU run directly) and Debian's libvirt 9.0.

Side by side, in one run, the same test guest (scripts/guest, TCG, 96 MiB,
serial pty) driven three ways:

- **direct**: the same QEMU command line virtkit builds, run by this process
  (no ``-S``, exits on guest power-off): the physical limit;
- **virtkit**: a private ``virtkitd --driver qemu``, through the public API;
- **libvirt**: Debian's ``libvirtd`` 9.0 started here as root in its own mount
  and network namespaces, with private (tmpfs) runtime, state and config
  directories and its socket in a temporary directory: it touches nothing of
  the host. Driven with libvirt-python.

Measured (median of ``VIRTKIT_BENCH_REPS`` runs, default 5):

1. start -> guest ready: from the start call to the guest's
   ``VIRTKIT-GUEST-READY`` line on its serial console;
2. destroy of a running guest: the destroy call until it returns (virtkit and
   libvirt return once QEMU is gone; direct: SIGTERM to pidfd readable);
3. ACPI shutdown -> shut off: the shutdown call until the state reads shut off
   (direct: ``system_powerdown`` until the process exits);
4. stats of all domains in one call, N = 1, 5, 10, 20 running guests
   (firmware-only QEMUs: the cost does not depend on the guest OS): virtkit's
   ``QemuDriver.all_domain_stats()`` (one ``poll_processes``), libvirt's
   ``getAllDomainStats``; also list + info of each through either daemon;
5. ``info`` round trips per second through the daemon.

Run from the repository root (benches/run does): needs root (namespaces),
qemu-system-x86, libvirt-daemon and libvirt-daemon-driver-qemu.
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
import subprocess
import sys
import tempfile
import time
import tty
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import libvirt  # noqa: E402

import virtkit  # noqa: E402
from tests.drivers.qemu.guests import QemuDaemon, guest_xml  # noqa: E402
from tests.guest.console import READY_MARKER, Console, GuestImage, build_guest_image  # noqa: E402
from virtkit.drivers.qemu import capabilities as qcaps  # noqa: E402
from virtkit.drivers.qemu.command import CommandContext, build_command  # noqa: E402
from virtkit.connection import Connection  # noqa: E402
from virtkit.drivers.qemu.driver import QemuDriver  # noqa: E402
from virtkit.uri import parse_uri  # noqa: E402
from virtkit.xml.domain import parse_domain  # noqa: E402

REPS = int(os.environ.get("VIRTKIT_BENCH_REPS", "5"))
BOOT = 120.0
NS = (1, 5, 10, 20)
results: dict[str, dict[str, float]] = {}


def record(item: str, who: str, value: float) -> None:
    results.setdefault(item, {})[who] = value


def progress(what: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.2f} ms"


def open_pty(path: str, start: float) -> Console:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return Console(fd, fd, start=start)


def close_console(c: Console) -> None:
    os.close(c._rfd)


# ====================================================================== libvirt

LIBVIRT_SCRIPT = r"""#!/bin/sh
# libvirtd in private mount and network namespaces: tmpfs over its directories.
set -e
B="$1"
mount --make-rprivate /
for d in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt; do
  mkdir -p "$d"; mount -t tmpfs tmpfs "$d"
done
cp /etc/passwd "$B/passwd"; cp /etc/group "$B/group"
# Debian's libvirt-daemon-system creates this user; without that package, only here.
grep -q '^libvirt-qemu:' "$B/passwd" || echo 'libvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin' >> "$B/passwd"
grep -q '^libvirt-qemu:' "$B/group" || echo 'libvirt-qemu:x:64055:' >> "$B/group"
grep -q '^kvm:' "$B/group" || echo 'kvm:x:64056:' >> "$B/group"
mount --bind "$B/passwd" /etc/passwd; mount --bind "$B/group" /etc/group
cat > /etc/libvirt/libvirtd.conf <<CONF
unix_sock_dir = "$B/sock"
unix_sock_rw_perms = "0700"
log_outputs = "3:file:$B/libvirtd.log"
CONF
cat > /etc/libvirt/qemu.conf <<CONF
security_driver = "none"
user = "root"
group = "root"
namespaces = [ ]
cgroup_controllers = [ ]
stdio_handler = "file"
CONF
ip link set lo up
exec /usr/sbin/libvirtd -f /etc/libvirt/libvirtd.conf -p "$B/libvirtd.pid"
"""


class LibvirtDaemon:
    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="vklv-"))
        (self.base / "sock").mkdir()
        self.script = self.base / "run.sh"
        self.script.write_text(LIBVIRT_SCRIPT)
        self.script.chmod(0o755)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.base / 'sock' / 'libvirt-sock'}"

    def start(self) -> LibvirtDaemon:
        self.proc = subprocess.Popen(["unshare", "--mount", "--net", str(self.script),
                                      str(self.base)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                libvirt.open(self.uri).close()
                return self
            except libvirt.libvirtError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"libvirtd did not start; see {self.base}/libvirtd.log")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        for pid in qemu_pids("guest=lvb-"):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


def qemu_pids(fragment: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in cmd and fragment.encode() in cmd:
                out.append(int(entry))
    return out


# ====================================================================== the three ways

class Way:
    name = ""

    def boot(self, xml: str) -> tuple[float, Console]:
        """Start a guest; (seconds to its ready marker, its console)."""
        raise NotImplementedError

    def shutdown(self) -> float:
        raise NotImplementedError

    def destroy(self) -> float:
        raise NotImplementedError


class Direct(Way):
    name = "direct QEMU"

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.pidfd = -1

    def argv(self, xml: str) -> list[str]:
        config = parse_domain(xml)
        resolved = qcaps.discover().resolve(config)
        args = build_command(config, CommandContext(
            qmp_socket=str(self.tmp / "direct.qmp"), emulator=resolved.emulator,
            machine=resolved.machine, start_paused=False))
        i = args.index("-action")
        args[i + 1] = "reboot=reset,shutdown=poweroff,panic=pause"  # exit on power-off
        return args

    def boot(self, xml: str) -> tuple[float, Console]:
        argv = self.argv(xml)
        t0 = time.monotonic()
        # QEMU prints where the pty is on stdout (qemu_printf), errors on stderr.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        assert self.proc.stdout is not None
        pty = None
        while pty is None:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("QEMU exited")
            m = re.search(r"redirected to (/dev/pts/\d+) \(label charserial0\)", line)
            pty = m[1] if m else None
        self.pidfd = os.pidfd_open(self.proc.pid)
        console = open_pty(pty, t0)
        console.expect(READY_MARKER, BOOT)
        assert console.last is not None
        return console.last.time, console

    def _wait_exit(self) -> None:
        select.select([self.pidfd], [], [])
        assert self.proc is not None
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        os.close(self.pidfd)

    def shutdown(self) -> float:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(self.tmp / "direct.qmp"))
        f = sock.makefile("rwb")
        f.readline()
        f.write(b'{"execute":"qmp_capabilities"}\n')
        f.flush()
        f.readline()
        t0 = time.perf_counter()
        f.write(b'{"execute":"system_powerdown"}\n')
        f.flush()
        self._wait_exit()
        dt = time.perf_counter() - t0
        f.close()
        sock.close()
        return dt

    def destroy(self) -> float:
        assert self.proc is not None
        t0 = time.perf_counter()
        signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
        self._wait_exit()
        return time.perf_counter() - t0


class Virtkit(Way):
    name = "virtkit"

    def __init__(self, uri: str) -> None:
        self.conn = virtkit.open(uri)
        self.dom: virtkit.Domain | None = None

    def boot(self, xml: str) -> tuple[float, Console]:
        if self.dom is None:
            self.dom = self.conn.define_domain(xml)
        t0 = time.monotonic()
        self.dom.start()
        console = open_pty(self.dom.console_path(), t0)
        console.expect(READY_MARKER, BOOT)
        assert console.last is not None
        return console.last.time, console

    def shutdown(self) -> float:
        assert self.dom is not None
        t0 = time.perf_counter()
        self.dom.shutdown()
        while self.dom.state() != virtkit.DomainState.SHUTOFF:
            pass
        return time.perf_counter() - t0

    def destroy(self) -> float:
        assert self.dom is not None
        t0 = time.perf_counter()
        self.dom.destroy()
        return time.perf_counter() - t0


class Libvirt(Way):
    name = "libvirt 9.0"

    def __init__(self, uri: str) -> None:
        self.conn = libvirt.open(uri)
        self.dom: libvirt.virDomain | None = None

    def boot(self, xml: str) -> tuple[float, Console]:
        if self.dom is None:
            self.dom = self.conn.defineXML(xml)
        t0 = time.monotonic()
        self.dom.create()
        pty = re.search(r"<console type='pty' tty='([^']+)'", self.dom.XMLDesc())
        assert pty is not None
        console = open_pty(pty[1], t0)
        console.expect(READY_MARKER, BOOT)
        assert console.last is not None
        return console.last.time, console

    def shutdown(self) -> float:
        assert self.dom is not None
        t0 = time.perf_counter()
        self.dom.shutdown()
        while self.dom.state()[0] != libvirt.VIR_DOMAIN_SHUTOFF:
            pass
        return time.perf_counter() - t0

    def destroy(self) -> float:
        assert self.dom is not None
        t0 = time.perf_counter()
        self.dom.destroy()
        return time.perf_counter() - t0


def lifecycle(ways: list[Way], image: GuestImage) -> None:
    """Items 1 to 3, the ways interleaved within each repetition (same load for all)."""
    samples: dict[tuple[str, str], list[float]] = {}
    for rep in range(REPS):
        for way in ways:
            xml = guest_xml("lvb-g" if isinstance(way, Libvirt) else "vkb-g", image)
            progress(f"rep {rep + 1}/{REPS}: {way.name}")
            ready, console = way.boot(xml)
            samples.setdefault(("start -> guest ready", way.name), []).append(ready)
            time.sleep(0.3)  # acpid is up at the marker; let the shell settle
            samples.setdefault(("ACPI shutdown -> shut off", way.name), []).append(way.shutdown())
            close_console(console)
            _, console = way.boot(xml)
            samples.setdefault(("destroy of a running guest", way.name), []).append(way.destroy())
            close_console(console)
    for (item, who), values in samples.items():
        record(item, who, statistics.median(values))


# ====================================================================== stats and info

def bulk_stats(vk: Virtkit, lv: Libvirt, tmp: Path) -> None:
    drv = QemuDriver.open_with_paths("qemu:///session", tmp / "c", tmp / "s", tmp / "r")
    try:
        for n in NS:
            vk_doms = [vk.conn.create_domain(guest_xml(f"vks-{n}-{i}", None, memory_mib=64))
                       for i in range(n)]
            lv_doms = [lv.conn.createXML(guest_xml(f"lvb-s-{n}-{i}", None, memory_mib=64), 0)
                       for i in range(n)]
            # The bulk call itself, on a driver in this process with its own N guests.
            c = Connection(drv, parse_uri("qemu:///session"), False)
            local = [c.create_domain(guest_xml(f"vkl-{n}-{i}", None, memory_mib=64))
                     for i in range(n)]
            per = time_per_call(drv.all_domain_stats) / n
            record(f"stats of all domains, one call, N={n} (per domain)", "virtkit", per)
            flags = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
                     | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_BALLOON)
            per = time_per_call(lambda: lv.conn.getAllDomainStats(flags)) / n
            record(f"stats of all domains, one call, N={n} (per domain)", "libvirt 9.0", per)
            per = time_per_call(lambda: [d.info() for d in vk.conn.list_all_domains()]) / n
            record(f"list + info each through the daemon, N={n} (per domain)", "virtkit", per)
            per = time_per_call(lambda: [d.info() for d in lv.conn.listAllDomains()]) / n
            record(f"list + info each through the daemon, N={n} (per domain)", "libvirt 9.0",
                   per)
            for d in vk_doms + local:
                d.destroy()
            for ld in lv_doms:
                ld.destroy()
    finally:
        drv.close()


def time_per_call(fn: Callable[[], object], seconds: float = 1.0) -> float:
    fn()
    best = float("inf")
    for _ in range(5):
        n = 0
        t0 = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed > seconds / 5:
                break
        best = min(best, elapsed / n)
    return best


def info_rate(vk: Virtkit, lv: Libvirt) -> None:
    dom = vk.conn.create_domain(guest_xml("vkb-info", None, memory_mib=64))
    ldom = lv.conn.createXML(guest_xml("lvb-info", None, memory_mib=64), 0)
    try:
        record("info round trips per second", "virtkit", 1 / time_per_call(dom.info, 2.0))
        record("info round trips per second", "libvirt 9.0", 1 / time_per_call(ldom.info, 2.0))
    finally:
        dom.destroy()
        ldom.destroy()


# ====================================================================== main

def report() -> None:
    print()
    for item, by in results.items():
        rate = "per second" in item
        print(item)
        vk = by.get("virtkit")
        for who, value in by.items():
            shown = f"{value:12.0f} /s" if rate else ms(value)
            ratio = ""
            if vk and who != "virtkit":
                r = (vk / value) if rate else (value / vk)
                ratio = f"   virtkit: {r:6.2f}x {'faster' if r >= 1 else 'slower'} than {who}"
            print(f"  {who:<14} {shown}{ratio}")
    print("\nJSON " + json.dumps(results))


def main() -> int:
    if os.geteuid() != 0:
        print("bench_qemu: needs root (libvirtd in its own namespaces)", file=sys.stderr)
        return 1
    image = build_guest_image()
    tmp = Path(tempfile.mkdtemp(prefix="vkbench-"))
    daemon = QemuDaemon()
    lvd = LibvirtDaemon()
    try:
        daemon.start()
        lvd.start()
        vk = Virtkit(daemon.uri)
        lv = Libvirt(lvd.uri)
        progress("daemons up; warming up")
        # Warm up both daemons (libvirt probes QEMU's capabilities on first use).
        for way in (vk, lv):
            _, c = way.boot(guest_xml("lvb-g" if way is lv else "vkb-g", image))
            way.destroy()
            close_console(c)
        lifecycle([Direct(tmp), vk, lv], image)
        progress("info round trips")
        info_rate(vk, lv)
        progress("bulk statistics")
        bulk_stats(vk, lv, tmp)
        report()
        for d in vk.conn.list_all_domains():
            if d.is_active():
                d.destroy()
            if d.is_persistent():
                d.undefine()
        for ld in lv.conn.listAllDomains():
            if ld.isActive():
                ld.destroy()
            if ld.isPersistent():
                ld.undefine()
    finally:
        daemon.cleanup()
        lvd.stop()
        for pid in qemu_pids(str(tmp)):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
