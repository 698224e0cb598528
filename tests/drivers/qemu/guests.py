"""Helpers for tests that run real QEMU guests through the QEMU driver.

- :func:`guest_xml`: a TCG domain booting the test guest (scripts/guest) with
  a serial pty console, or a bare one that only runs the firmware.
- :class:`QemuDaemon`: a private ``virtkitd --driver qemu`` whose every
  directory (sockets, state, configuration, and the driver's XDG directories)
  lies in one temporary directory, plus the checks that nothing is left
  behind (no QEMU process, no file but logs).
- :func:`open_console`: the guest's serial console (``Domain.console_path()``)
  as a :class:`tests.guest.console.Console`.
- :func:`wait_guest_ready`: until the guest answers on its console, for
  requests a real OS only honours once booted (the ACPI power button).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import virtkit
from tests.daemon.private import PrivateDaemon
from tests.guest.console import PROMPT, READY_MARKER, Console, ConsoleTimeout, GuestImage

CMDLINE = "console=ttyS0 quiet panic=-1"
MEMORY_MIB = 96


def guest_xml(name: str, image: GuestImage | None, *, memory_mib: int = MEMORY_MIB,
              vcpus: int = 1, uuid: str | None = None, extra_devices: str = "",
              cmdline: str = CMDLINE, extra: str = "") -> str:
    """A TCG domain with a serial pty: the test guest's kernel when ``image`` is
    given, else no boot device at all (the firmware idles; no guest code)."""
    boot = (f"<kernel>{image.kernel}</kernel><initrd>{image.initrd}</initrd>"
            f"<cmdline>{cmdline}</cmdline>" if image is not None else "")
    uuid_el = f"<uuid>{uuid}</uuid>" if uuid else ""
    return (f"<domain type='qemu'><name>{name}</name>{uuid_el}"
            f"<memory unit='MiB'>{memory_mib}</memory><vcpu>{vcpus}</vcpu>"
            f"<os><type arch='x86_64' machine='pc'>hvm</type>{boot}</os>"
            f"<features><acpi/></features>{extra}"
            f"<devices><serial type='pty'/><console type='pty'/>{extra_devices}</devices>"
            f"</domain>")


def qemu_pids_mentioning(fragment: str) -> list[int]:
    """Pids of live QEMU processes whose command line contains ``fragment``."""
    out = []
    needle = fragment.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if cmd.startswith(b"qemu-system") or b"/qemu-system" in cmd.split(b"\0", 1)[0]:
            if needle in cmd and state != b"Z":
                out.append(int(entry))
    return out


class QemuDaemon(PrivateDaemon):
    """A private ``virtkitd --driver qemu``; the QEMU driver's XDG directories lie
    in the same temporary directory (``qemu/`` under xdg-config, xdg-data, xdg-run)."""

    def __init__(self, base: Path | None = None) -> None:
        own = base is None
        base = base or Path(tempfile.mkdtemp(prefix="vkq-"))
        self.xdg_config = base / "xdg-config"
        self.xdg_data = base / "xdg-data"
        self.xdg_run = base / "xdg-run"
        self.xdg_run.mkdir(mode=0o700, exist_ok=True)
        env = dict(os.environ, XDG_CONFIG_HOME=str(self.xdg_config),
                   XDG_DATA_HOME=str(self.xdg_data), XDG_RUNTIME_DIR=str(self.xdg_run))
        super().__init__(base=base, driver="qemu", env=env)
        self._own_base = own

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket}"

    @property
    def ro_uri(self) -> str:
        return f"qemu+unix:///session?socket={self.socket_ro}"

    def _driver_dir(self, daemon_dir: Path, xdg: Path) -> Path:
        # virtkitd passes its directories (QemuDriver.open_with_paths); a daemon
        # that does not makes the driver fall back to the XDG ones, set here too.
        mine = daemon_dir / "qemu"
        return mine if mine.exists() or not (xdg / "virtkit" / "qemu").exists() \
            else xdg / "virtkit" / "qemu"

    @property
    def runtime(self) -> Path:
        """The driver's runtime directory (status files, QMP sockets, pidfiles)."""
        return self._driver_dir(self.socket_dir, self.xdg_run)

    @property
    def config(self) -> Path:
        """The driver's configuration directory (NAME.xml, autostart/)."""
        return self._driver_dir(self.config_dir, self.xdg_config)

    def guests(self) -> list[int]:
        """Pids of the QEMUs this daemon's driver started (their pidfile is ours)."""
        return qemu_pids_mentioning(str(self.runtime))

    def destroy_all(self) -> None:
        """Destroy every running domain and undefine every defined one."""
        with virtkit.open(self.uri) as conn:
            for dom in conn.list_all_domains():
                if dom.is_active():
                    dom.destroy()
            for dom in conn.list_all_domains():
                if dom.is_persistent():
                    dom.undefine()

    def leftovers(self) -> list[str]:
        """Files in the driver's directories other than logs and empty directories."""
        out = []
        for root in (self.runtime, self.config):
            if root.exists():
                out += [str(p) for p in root.rglob("*") if p.is_file()]
        return out

    def cleanup(self) -> None:
        """Stop the daemon, kill (and report) stray guests, remove the directory."""
        self.stop()
        stray = self.guests()
        for pid in stray:
            os.kill(pid, 9)
        if self._own_base:
            shutil.rmtree(self.base, ignore_errors=True)
        assert not stray, f"QEMU processes left running: {stray}"


def open_console(dom: virtkit.Domain) -> Console:
    """The guest's serial console (read and write); close with ``close_console``.

    The pty is put in raw mode: in the default cooked mode its line discipline
    would echo everything the guest prints back to the guest as input."""
    fd = os.open(dom.console_path(), os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return Console(fd, fd)


def close_console(console: Console) -> None:
    os.close(console._rfd)


def wait_guest_ready(console: Console, timeout: float = 90.0) -> None:
    """Until the guest prints its ready marker or answers Enter with its prompt
    (either way acpid holds the power button): pressing Enter once a second."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            console.send_line("")
        except OSError:
            pass
        try:
            console.expect(rf"{READY_MARKER}|^{PROMPT}$", timeout=1.0)
            return
        except ConsoleTimeout:
            if time.monotonic() > deadline:
                raise


def daemon_for_a_module() -> Iterator[QemuDaemon]:
    """A private daemon for a test module's fixture (``yield from`` it): at the
    end every guest is destroyed and nothing may be left behind."""
    d = QemuDaemon().start()
    try:
        yield d
        if d.running:
            d.destroy_all()
            assert not d.guests(), "every guest was destroyed"
            assert not d.leftovers(), f"files left behind: {d.leftovers()}"
    finally:
        d.cleanup()
