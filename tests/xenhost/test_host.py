"""The nested Xen host itself: Xen, dom0, the toolstack, a PV guest, the harness.

These assert on what dom0 and the guest print, through the harness's agent;
they are the proof that later Xen tests stand on a real host.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

import pytest

from tests.xenhost.harness import (
    DOM0_USER,
    GUEST_READY_MARKER,
    CommandTimeout,
    XenHost,
)

pytestmark = pytest.mark.xenhost


def xl_info(host: XenHost) -> dict[str, str]:
    out = host.check_output(["xl", "info"])
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def test_xl_info_reports_xen_4_17_with_hvm_and_hap(xen_host: XenHost) -> None:
    info = xl_info(xen_host)
    assert info["xen_version"].startswith("4.17."), info
    caps = info["virt_caps"].split()
    assert {"pv", "hvm", "hap"} <= set(caps), caps
    assert int(info["nr_cpus"]) == xen_host.cpus


def test_xl_list_shows_domain0(xen_host: XenHost) -> None:
    out = xen_host.check_output(["xl", "list"])
    rows = [line.split() for line in out.splitlines()[1:]]
    assert rows[0][:2] == ["Domain-0", "0"], out
    assert int(rows[0][2]) == pytest.approx(xen_host.dom0_memory_mib, abs=16)


def test_dom0_is_the_control_domain_with_privcmd(xen_host: XenHost) -> None:
    out = xen_host.check_output(
        "cat /proc/xen/capabilities; stat -c '%F %a %U' /dev/xen/privcmd /dev/xen/hypercall")
    lines = out.splitlines()
    assert lines[0] == "control_d"
    assert lines[1:] == ["character special file 600 root"] * 2


def test_non_root_user_exists_and_cannot_open_privcmd(xen_host: XenHost) -> None:
    status, out, _ = xen_host.run(["id", "-u", "-n"], user=DOM0_USER)
    assert (status, out.strip()) == (0, DOM0_USER)
    assert xen_host.check_output(["id", "-u"], user=DOM0_USER).strip() == "1000"
    status, _, err = xen_host.run("exec 3<>/dev/xen/privcmd", user=DOM0_USER)
    assert status != 0 and "Permission denied" in err


def test_run_reports_status_output_and_timeout(xen_host: XenHost) -> None:
    status, out, err = xen_host.run("echo out; echo err >&2; exit 3")
    assert (status, out, err) == (3, "out\n", "err\n")
    assert xen_host.run(["cat"], input="from the host").stdout == "from the host"
    # A daemon left running by a command does not hold the reply back.
    started = time.monotonic()
    xen_host.run("sleep 30 & echo started")
    assert time.monotonic() - started < 10
    xen_host.run("pkill -x sleep")
    with pytest.raises(CommandTimeout):
        xen_host.run("sleep 20", timeout=1)
    assert xen_host.run("echo still-there").stdout == "still-there\n"


@pytest.mark.parametrize("size", [100, 3 * 1024 * 1024])
def test_put_and_get_round_trip(xen_host: XenHost, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    local = tmp_path / "blob"
    local.write_bytes(data)
    started = time.monotonic()
    xen_host.put(local, "/tmp/blob", mode=0o640)
    put_seconds = time.monotonic() - started
    out = xen_host.check_output("sha256sum /tmp/blob; stat -c %a /tmp/blob")
    assert out.split() == [hashlib.sha256(data).hexdigest(), "/tmp/blob", "640"]
    started = time.monotonic()
    xen_host.get("/tmp/blob", tmp_path / "back")
    get_seconds = time.monotonic() - started
    assert (tmp_path / "back").read_bytes() == data
    xen_host.run(["rm", "/tmp/blob"], check=True)
    xen_host.timings[f"put {size} B"] = put_seconds
    xen_host.timings[f"get {size} B"] = get_seconds


def test_pv_guest_boots_shuts_down_and_is_destroyed(xen_host: XenHost) -> None:
    host = xen_host
    host.timings["xl create (PV)"] = host.create_guest("vk-pv1", memory_mib=128)
    assert "vk-pv1" in host.domains()
    started = time.monotonic()
    line = host.wait_guest_console("vk-pv1", GUEST_READY_MARKER, timeout=120)
    host.timings["PV guest ready after xl create"] = time.monotonic() - started
    assert "type=PV" in line, line
    host.wait_guest_console("vk-pv1", r"VIRTKIT-TICK n=2 ", timeout=60)

    # xl shutdown: the guest kernel runs /sbin/poweroff, which prints its marker.
    started = time.monotonic()
    host.run(["xl", "shutdown", "-w", "vk-pv1"], timeout=90, check=True)
    host.timings["xl shutdown -w (PV)"] = time.monotonic() - started
    host.wait_guest_console("vk-pv1", "VIRTKIT-XEN-GUEST-POWEROFF", timeout=10)
    assert "vk-pv1" not in host.domains()

    # xl destroy of a running guest.
    host.timings["xl create (PV, 2nd)"] = host.create_guest("vk-pv2", memory_mib=128)
    domid = host.domains()["vk-pv2"]
    assert host.check_output(["xenstore-read", f"/local/domain/{domid}/name"]).strip() == "vk-pv2"
    started = time.monotonic()
    host.run(["xl", "destroy", "vk-pv2"], check=True)
    host.timings["xl destroy (PV)"] = time.monotonic() - started
    assert "vk-pv2" not in host.domains()
    status, _, _ = host.run(["xenstore-read", f"/local/domain/{domid}/name"])
    assert status != 0


def test_virtkit_wheel_imports_in_dom0(dom0_virtkit: XenHost) -> None:
    host = dom0_virtkit
    code = ("import sys, virtkit, virtkit._core; "
            "print(sys.version_info[:2] == (3, 11), virtkit.__file__); "
            "print(virtkit.normalize_uuid('4DEA22B31D52D8F32516782E98AB3FA0'))")
    for user in ("root", DOM0_USER):
        lines = host.check_output(["python3", "-c", code], user=user).splitlines()
        assert lines[0] == "True /usr/local/lib/python3.11/dist-packages/virtkit/__init__.py"
        assert lines[1] == "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
    assert host.run(["virtkit", "--help"]).status == 0
    status, out, err = host.run(["python3", "-m", "pytest", "--version"])
    assert status == 0 and re.search(r"pytest \d", out + err)


# Last: it reboots the host (a fresh boot with the other daemon), and the
# later tests of a session may find either daemon running.
@pytest.mark.parametrize("daemon", ["oxenstored", "xenstored"])
def test_xenstore_read_with_both_daemons(xen_host: XenHost, daemon: str) -> None:
    if xen_host.xenstored != daemon:
        started = time.monotonic()
        xen_host.restart(xenstored=daemon)
        xen_host.timings[f"restart with {daemon}"] = time.monotonic() - started
    assert xen_host.check_output(["xenstore-read", "/local/domain/0/name"]).strip() == "Domain-0"
    running = xen_host.check_output(["ps", "-e", "-o", "comm="]).split()
    other = {"oxenstored": "xenstored", "xenstored": "oxenstored"}[daemon]
    assert daemon in running and other not in running, running
    assert xen_host.run(["test", "-S", "/run/xenstored/socket"]).status == 0
