"""The test guest itself: it boots under QEMU (TCG) and does what later tests rely on.

Every assertion is on what the guest printed on its serial console (or on QEMU
exiting). One guest with a NIC, a disk, a balloon and a virtio-serial port
serves the read-only checks; the power-off checks each boot their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.guest.console import READY_MARKER, GuestImage, QemuGuest

pytestmark = pytest.mark.guest

BOOT_TIMEOUT = 60.0  # seconds; a boot takes about 4 on this machine, far less elsewhere


@pytest.fixture(scope="module")
def guest(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[QemuGuest]:
    disk: Path = tmp_path_factory.mktemp("guest-disk") / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    extra = [
        "-drive", f"file={disk},format=raw,if=virtio",
        "-device", "virtio-balloon-pci",
        "-device", "virtio-serial-pci", "-device", "virtserialport,name=org.virtkit.test",
    ]
    with QemuGuest(guest_image, nic_model="virtio-net-pci", extra_args=extra) as g:
        g.wait_ready(BOOT_TIMEOUT)
        yield g
    disk.unlink()


def test_ready_marker_reports_uptime_and_kernel(guest: QemuGuest) -> None:
    line = guest.console.expect(rf"^{READY_MARKER} uptime=(\S+) kernel=(\S+)$", from_start=True)
    assert float(line[1]) > 0
    assert line[2].endswith("-cloud-amd64")
    warnings = [ln.text for ln in guest.console.lines if "VIRTKIT-WARN" in ln.text]
    assert not warnings, guest.console.transcript()


def test_tick_counter_counts_up_every_second(guest: QemuGuest) -> None:
    ticks = []
    for _ in range(3):
        match = guest.console.expect(r"VIRTKIT-TICK n=(\d+) uptime=([\d.]+)$", timeout=10)
        ticks.append((int(match[1]), float(match[2])))
    (n0, t0), (n1, t1), (n2, t2) = ticks
    assert (n1, n2) == (n0 + 1, n0 + 2)
    assert t0 < t1 < t2


def test_dhcp_lease_from_user_network(guest: QemuGuest) -> None:
    lease = guest.console.expect(r"VIRTKIT-LEASE (.*)$", timeout=30, from_start=True)
    fields = dict(item.split("=", 1) for item in lease[1].split())
    assert fields == {
        "ip": "10.0.2.15", "router": "10.0.2.2", "dns": "10.0.2.3", "iface": "eth0", "mask": "24",
    }


def test_shell_runs_typed_commands(guest: QemuGuest) -> None:
    guest.console.wait_for_shell()
    guest.console.send_line("echo hello-$((6*7))")
    guest.console.expect(r"^hello-42$", timeout=15)


def test_shell_run_returns_status_and_output(guest: QemuGuest) -> None:
    guest.console.wait_for_shell()
    assert guest.console.run("echo one; echo two") == (0, ["one", "two"])
    assert guest.console.run("printf no-newline") == (0, ["no-newline"])
    assert guest.console.run("false") == (1, [])


def test_ctrl_c_interrupts_a_command(guest: QemuGuest) -> None:
    guest.console.wait_for_shell()
    guest.console.send_line("sleep 100; echo not-interrupted")
    guest.console.pump(0.5)
    guest.console.send("\x03")
    guest.console.expect_prompt(timeout=10)
    assert guest.console.run("echo after") == (0, ["after"])
    assert not any("not-interrupted" == line.text for line in guest.console.lines)


def test_virtio_drivers_bind_to_their_devices(guest: QemuGuest) -> None:
    guest.console.wait_for_shell()
    status, drivers = guest.console.run(
        "for d in /sys/bus/virtio/devices/*/driver; do basename $(readlink $d); done | sort"
    )
    assert (status, drivers) == (0, ["virtio_balloon", "virtio_blk", "virtio_console", "virtio_net"])
    assert guest.console.run("cat /sys/block/vda/size") == (0, ["16384"])


@pytest.mark.parametrize("machine", ["pc", "q35"])
def test_acpi_power_button_powers_the_guest_off(guest_image: GuestImage, machine: str) -> None:
    with QemuGuest(guest_image, machine=machine) as g:
        g.wait_ready(BOOT_TIMEOUT)
        g.qmp("system_powerdown")
        assert g.wait(timeout=15) == 0, g.stderr()
        assert any("VIRTKIT-POWER-BUTTON" in ln.text for ln in g.console.lines), g.console.transcript()


@pytest.mark.parametrize("command", ["poweroff", "reboot"])
def test_shutdown_commands_stop_qemu(guest_image: GuestImage, command: str) -> None:
    # -no-reboot turns the guest's reboot into QEMU exiting, too.
    with QemuGuest(guest_image) as g:
        g.wait_ready(BOOT_TIMEOUT)
        g.console.wait_for_shell()
        g.console.send_line(command)
        assert g.wait(timeout=15) == 0, g.stderr()
