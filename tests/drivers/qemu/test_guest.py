"""The real test guest through the public API, a private virtkitd and the QEMU driver.

Assertions are on what the guest printed on its serial console (read through
``Domain.console_path()``): it booted, its tick counter stops while paused and
goes on after, it saw the power button and powered off, it booted again after
a reboot, it kept counting while the daemon was killed and restarted.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from collections.abc import Iterator

import pytest

import virtkit
from tests.drivers.qemu.guests import (
    daemon_for_a_module,
    QemuDaemon,
    close_console,
    guest_xml,
    open_console,
    wait_guest_ready,
)
from tests.guest.conftest import guest_image  # noqa: F401 - the shared, session-scoped image
from tests.guest.console import READY_MARKER, Console, GuestImage
from virtkit import DomainState

pytestmark = [pytest.mark.qemu, pytest.mark.guest]

BOOT = 90.0  # seconds; about 2 to 4 on a quiet machine, much more when the cores are busy
TICK = r"VIRTKIT-TICK n=(\d+)"


@pytest.fixture(scope="module")
def daemon() -> Iterator[QemuDaemon]:
    yield from daemon_for_a_module()


@pytest.fixture
def conn(daemon: QemuDaemon) -> Iterator[virtkit.Connection]:
    with virtkit.open(daemon.uri) as c:
        yield c


def booted(dom: virtkit.Domain) -> Console:
    """The guest's console once it has booted. The ready marker or, when the
    console was opened after the guest printed it (a busy machine can delay
    that by many seconds), the shell's answer to Enter."""
    console = open_console(dom)
    wait_guest_ready(console, BOOT)
    return console


def next_tick(console: Console, timeout: float = 20.0) -> int:
    return int(console.expect(TICK, timeout)[1])


def test_boot_pause_resume_and_live_xml(conn: virtkit.Connection, daemon: QemuDaemon,
                                        guest_image: GuestImage) -> None:  # noqa: F811
    dom = conn.define_domain(guest_xml("g-life", guest_image,
                                       extra_devices="<graphics type='vnc' autoport='yes'/>"))
    dom.start()
    console = booted(dom)
    try:
        assert dom.state() == DomainState.RUNNING and dom.id > 0
        n = next_tick(console)
        live = dom.xml_desc()
        assert f"id='{dom.id}'" in live
        assert f"<source path='{dom.console_path()}'/>" in live
        assert f"tty='{dom.console_path()}'" in live
        port = int(re.search(r"<graphics type='vnc' port='(\d+)'", live)[1])  # type: ignore[index]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as vnc:
            assert vnc.recv(12).startswith(b"RFB 003.")  # QEMU's VNC server answers there
        assert "/dev/pts" not in dom.xml_desc(inactive=True)

        info = dom.info()
        assert info.max_memory == 96 * 1024 and info.nr_virt_cpu == 1 and info.cpu_time > 0
        [vcpu] = dom.vcpus()
        assert vcpu.number == 0 and vcpu.cpu_time > 0 and len(vcpu.affinity) == os.cpu_count()

        dom.suspend()
        assert dom.state() == DomainState.PAUSED
        console.pump(2.5)  # a paused guest prints nothing
        quiet = [ln.text for ln in console.lines[console._next:] if "VIRTKIT-TICK" in ln.text]
        assert len(quiet) <= 1, quiet  # one tick may have been on its way
        dom.resume()
        assert dom.state() == DomainState.RUNNING
        after = next_tick(console)
        assert n < after <= n + 3, "the counter goes on where it stopped"
    finally:
        close_console(console)
        dom.destroy()
        dom.undefine()


def test_acpi_shutdown_powers_the_guest_off(conn: virtkit.Connection, daemon: QemuDaemon,
                                            guest_image: GuestImage) -> None:  # noqa: F811
    dom = conn.define_domain(guest_xml("g-shut", guest_image))
    dom.start()
    console = booted(dom)
    try:
        dom.shutdown()
        console.expect("VIRTKIT-POWER-BUTTON", 30)
        deadline = time.monotonic() + 30
        while dom.state() != DomainState.SHUTOFF:
            assert time.monotonic() < deadline, f"still {dom.state().name}"
            console.pump(0.01)
        assert dom.id == -1
        assert not (daemon.runtime / "g-shut.status").exists()
        assert not daemon.guests()
    finally:
        close_console(console)
    assert dom.is_persistent()
    dom.undefine()


def test_reboot_boots_the_guest_again(conn: virtkit.Connection,
                                      guest_image: GuestImage) -> None:  # noqa: F811
    dom = conn.create_domain(guest_xml("g-reboot", guest_image))
    console = booted(dom)
    try:
        ident = dom.id
        next_tick(console)
        dom.reboot()
        console.expect("VIRTKIT-POWER-BUTTON", 30)  # a clean shutdown first...
        console.expect(READY_MARKER, BOOT)  # ... then a new boot in the same QEMU
        assert next_tick(console) == 1
        assert dom.id == ident and dom.state() == DomainState.RUNNING
    finally:
        close_console(console)
        dom.destroy()


def test_destroy_transient_and_undefine(conn: virtkit.Connection, daemon: QemuDaemon,
                                        guest_image: GuestImage) -> None:  # noqa: F811
    dom = conn.create_domain(guest_xml("g-transient", guest_image))
    assert not dom.is_persistent()
    console = booted(dom)
    pid = int((daemon.runtime / "g-transient.pid").read_text())
    started = time.monotonic()
    dom.destroy()
    assert time.monotonic() - started < 10
    assert not os.path.exists(f"/proc/{pid}"), "destroy returns once QEMU is gone (and reaped)"
    console.pump(0.5)
    assert console.eof, "the console closed with QEMU"
    close_console(console)
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name("g-transient")

    dom = conn.define_domain(guest_xml("g-undef", guest_image))
    assert (daemon.config / "g-undef.xml").exists()
    dom.undefine()
    assert not (daemon.config / "g-undef.xml").exists()
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name("g-undef")


def test_daemon_killed_with_guests_running(daemon: QemuDaemon,
                                           guest_image: GuestImage) -> None:  # noqa: F811
    with virtkit.open(daemon.uri) as conn:
        a = conn.define_domain(guest_xml("g-keep", guest_image))
        a.start()
        b = conn.create_domain(guest_xml("g-paused", guest_image))
        c = conn.define_domain(guest_xml("g-lost", guest_image))
        c.start()
        consoles = {d.name: booted(d) for d in (a, b)}
        lost_console = open_console(c)
        wait_guest_ready(lost_console)
        close_console(lost_console)
        ticks = {name: next_tick(con) for name, con in consoles.items()}
        b.suspend()
        before = {d.name: (d.id, d.state()) for d in conn.list_all_domains()}
        pids = {name: int((daemon.runtime / f"{name}.pid").read_text())
                for name in ("g-keep", "g-paused", "g-lost")}

    daemon.kill()
    os.kill(pids["g-lost"], signal.SIGKILL)  # dies while nobody watches
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pids['g-lost']}") and \
            open(f"/proc/{pids['g-lost']}/stat").read().split(")")[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    daemon.start()
    try:
        with virtkit.open(daemon.uri) as conn:
            after = {d.name: (d.id, d.state()) for d in conn.list_all_domains()}
            assert after["g-keep"] == before["g-keep"]
            assert after["g-paused"] == before["g-paused"] == (before["g-paused"][0],
                                                               DomainState.PAUSED)
            assert after["g-lost"] == (-1, DomainState.SHUTOFF)
            assert not conn.lookup_domain_by_name("g-paused").is_persistent()
            assert sorted(daemon.guests()) == sorted([pids["g-keep"], pids["g-paused"]]), \
                "nothing started twice, nothing restarted"
            # The guest never noticed: its counter goes on.
            assert next_tick(consoles["g-keep"]) > ticks["g-keep"]
            conn.lookup_domain_by_name("g-paused").resume()
            assert next_tick(consoles["g-paused"]) > ticks["g-paused"]
            # New ids continue above the adopted ones.
            lost = conn.lookup_domain_by_name("g-lost")
            lost.start()
            assert lost.id > max(before["g-keep"][0], before["g-paused"][0])
            for name in ("g-keep", "g-paused", "g-lost"):
                conn.lookup_domain_by_name(name).destroy()
            for name in ("g-keep", "g-lost"):
                conn.lookup_domain_by_name(name).undefine()
    finally:
        for con in consoles.values():
            close_console(con)
