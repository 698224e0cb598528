"""virtkit itself inside dom0: ``xen:///`` without xend, the CLI, the conformance
suite, read-only access for a user who is not root.

The tests under tests/xenhost/dom0/ (files ``dom0_*.py``, never collected here)
and tests/conformance/ are copied into dom0 and run there by dom0's pytest, as
root, against the real hypervisor, xenstored and xl; each test here runs one
module of them and fails with dom0's pytest report when any test there did
not pass. The read-only test drives dom0 from here: a system ``virtkitd
--driver xen`` as root, then commands as the non-root user ``vkuser``.

The xenstore client runs against both daemons: oxenstored here (the boot's
default), C xenstored in tests/xenhost/test_xenstored.py (after test_host.py's
restart; a boot costs ~40-60 s, so the run pays it once).
"""

from __future__ import annotations

import io
import re
import tarfile
import time

import pytest

from tests.xenhost.harness import DOM0_USER, REPO, XenHost

pytestmark = pytest.mark.xenhost

DOM0_TESTS = "/root/vktests"
_SHIPPED = ("tests/__init__.py", "tests/xenhost/__init__.py", "tests/xenhost/dom0",
            "tests/conformance")


def _tests_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in _SHIPPED:
            tar.add(REPO / rel, arcname=rel,
                    filter=lambda m: None if "__pycache__" in m.name else m)
    return buf.getvalue()


def ship_tests(host: XenHost) -> XenHost:
    """dom0 with the current dom0-side tests in DOM0_TESTS (once per boot)."""
    if getattr(host, "_vktests_boot", None) != host.boots:
        host.put_bytes(_tests_tar(), "/tmp/vktests.tar")
        host.run(f"rm -rf {DOM0_TESTS} && mkdir -p {DOM0_TESTS} && "
                 f"tar -xf /tmp/vktests.tar -C {DOM0_TESTS} && rm /tmp/vktests.tar", check=True)
        host._vktests_boot = host.boots  # type: ignore[attr-defined]
    return host


@pytest.fixture
def dom0_tests(dom0_virtkit: XenHost) -> XenHost:
    return ship_tests(dom0_virtkit)


def run_in_dom0(host: XenHost, *paths: str, env: dict[str, str] | None = None,
                timeout: float = 2400, label: str) -> str:
    """dom0's pytest on ``paths``; fails with its report unless every test passed
    (or failed as a strict, reasoned xfail). Returns the report."""
    started = time.monotonic()
    status, out, err = host.run(
        ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEsxX", "--tb=short",
         "--durations=5",
         # Save files and core dumps hold a guest's memory: on disk, not in
         # dom0's /tmp (a tmpfs in its 512 MiB).
         "--basetemp=/var/tmp/vkt-pytest", *paths], timeout=timeout, cwd=DOM0_TESTS, env=env)
    host.timings[f"dom0 pytest: {label}"] = time.monotonic() - started
    summary = out.strip().splitlines()[-1] if out.strip() else ""
    if status != 0 or " skipped" in summary or "passed" not in summary:
        pytest.fail(f"pytest in dom0 ({label}) exited with {status}: {summary}\n{out}{err}",
                    pytrace=False)
    return out


def test_driver_in_dom0(dom0_tests: XenHost) -> None:
    """Listing (with a domain `xl create`d by hand), look-ups, info, define into
    /etc/xen, start, suspend/resume, memory, vCPUs, pinning, reboot, destroy,
    undefine, autostart, save/restore, shutdown, disk hot-plug, capabilities."""
    out = run_in_dom0(dom0_tests, "tests/xenhost/dom0/dom0_driver.py", label="driver")
    assert re.search(r"\b5 passed\b", out), out


def test_listing_kept_between_calls_in_dom0(dom0_tests: XenHost) -> None:
    """What the driver keeps between calls (names, /etc/xen's definitions, a
    listing's records) never hides a change made by hand with xl or in
    /etc/xen; Connection.all_domain_stats against xl list and xl vcpu-list."""
    out = run_in_dom0(dom0_tests, "tests/xenhost/dom0/dom0_listing.py", label="listing")
    assert re.search(r"\b2 passed\b", out), out


def test_devices_in_dom0(dom0_tests: XenHost) -> None:
    """Interface hot-plug into a running PV guest (API and CLI; its netfront
    connects, vifD.N joins xenbr0) and into its definition (the vif list,
    kept across start), detach from both."""
    out = run_in_dom0(dom0_tests, "tests/xenhost/dom0/dom0_devices.py", label="devices")
    assert re.search(r"\b1 passed\b", out), out


def test_lifecycle_and_hvm_in_dom0(dom0_tests: XenHost) -> None:
    """on_poweroff/on_reboot/on_crash written to the xl config and carried out
    when the real guest powers off, reboots or crashes; an HVM guest booted
    by qemu-system-xen through xen:///."""
    out = run_in_dom0(dom0_tests, "tests/xenhost/dom0/dom0_lifecycle.py",
                      label="lifecycle actions, HVM")
    assert re.search(r"\b2 passed\b", out), out


def test_cli_in_dom0(dom0_tests: XenHost) -> None:
    """virtkit -c xen:/// list, dominfo, vcpuinfo, vcpupin, setmem, console."""
    out = run_in_dom0(dom0_tests, "tests/xenhost/dom0/dom0_cli.py", label="CLI")
    assert re.search(r"\b2 passed\b", out), out


def test_conformance_in_dom0(dom0_tests: XenHost) -> None:
    """The driver conformance suite against xen:/// with the PV test guest; what
    it expects to fail (networks, QEMU-only devices) is a strict xfail with its
    reason in tests/conformance/conftest.py."""
    out = run_in_dom0(dom0_tests, "tests/conformance", label="conformance",
                      env={"VIRTKIT_CONFORMANCE_XEN_DOM0": "1"})
    assert " failed" not in out.strip().splitlines()[-1], out


def test_xenstore_client_with_oxenstored(xen_host: XenHost, virtkit_wheel: object) -> None:
    run_xenstore_checks(xen_host, virtkit_wheel, "oxenstored")


def run_xenstore_checks(host: XenHost, wheel: object, daemon: str) -> None:
    """dom0_xenstore.py with ``daemon`` as dom0's xenstored (booting again if needed)."""
    if host.xenstored != daemon:
        started = time.monotonic()
        host.restart(xenstored=daemon)
        host.timings[f"restart with {daemon}"] = time.monotonic() - started
    for step, value in host.ensure_virtkit(wheel).items():  # type: ignore[arg-type]
        host.timings[f"install_virtkit (boot {host.boots}): {step}"] = value
    out = run_in_dom0(ship_tests(host), "tests/xenhost/dom0/dom0_xenstore.py",
                      label=f"xenstore ({daemon})")
    assert re.search(r"\b4 passed\b", out), out
    assert host.check_output("ps -e -o comm= | grep xenstored").split() == [daemon]


READ_ONLY_CHECK = r'''
import virtkit
try:
    virtkit.open("xen:///")
except virtkit.VirtError as e:
    print("RW-REFUSED", e.code == virtkit.ErrorCode.OPERATION_DENIED)
c = virtkit.open_read_only("xen:///")
doms = {d.name: d for d in c.list_all_domains()}
print("LIST", sorted((d.name, d.id) for d in doms.values()))
print("DEFINED", c.list_defined_domains())
g = doms["vkt-ro"]
i = g.info()
print("INFO", g.id, int(i.state), i.memory, i.nr_virt_cpu, g.uuid_string)
print("NODE", c.get_node_info().cpus)
refused = []
for name, call in [
        ("destroy", g.destroy), ("suspend", g.suspend), ("shutdown", g.shutdown),
        ("reboot", g.reboot), ("setmem", lambda: g.set_memory(65536)),
        ("setvcpus", lambda: g.set_vcpus(1)), ("pin", lambda: g.pin_vcpu(0, "0")),
        ("autostart", lambda: g.set_autostart(True)), ("undefine", g.undefine),
        ("save", lambda: g.save("/tmp/x")),
        ("define", lambda: c.define_domain(g.xml_desc()))]:
    try:
        call()
    except virtkit.OperationDeniedError:
        refused.append(name)
print("REFUSED", refused)
# Past the client's own check: a read-write client on the read-only socket.
raw = virtkit.open("xen+unix:///?socket=/run/virtkit/virtkit-sock-ro")
try:
    raw.lookup_domain_by_name("vkt-ro").destroy()
    print("DAEMON-REFUSED False")
except virtkit.VirtError as e:
    print("DAEMON-REFUSED", e.code == virtkit.ErrorCode.OPERATION_DENIED)
try:
    virtkit.open("xen+unix:///?socket=/run/virtkit/virtkit-sock")
    print("RW-SOCKET-REFUSED False")
except virtkit.VirtError:
    print("RW-SOCKET-REFUSED True")
'''


def test_read_only_access_for_a_non_root_user(dom0_tests: XenHost) -> None:
    """0.2.2's proxy: `virtkitd --driver xen` (system) serves xen:/// read-only
    to vkuser through its read-only socket; every mutation is refused."""
    host = dom0_tests
    host.put_bytes(READ_ONLY_CHECK.encode(), "/tmp/vkt-ro.py", mode=0o644)
    host.check_output(
        "cd /root/vktests && python3 -c 'from tests.xenhost.dom0.guests import *; import virtkit; "
        "virtkit.open(\"xen:///\").define_domain(pv_xml(\"vkt-ro\", vcpus=2)).start()'",
        timeout=300)
    host.check_output(["virtkitd", "--system", "--driver", "xen", "--daemon"], timeout=300)
    try:
        status, out, err = host.run(["python3", "/tmp/vkt-ro.py"], user=DOM0_USER, timeout=300)
        assert status == 0, out + err
        lines = dict(line.split(" ", 1) for line in out.splitlines())
        domid = host.domains()["vkt-ro"]
        assert lines["RW-REFUSED"] == "True"
        assert lines["LIST"] == f"[('Domain-0', 0), ('vkt-ro', {domid})]"
        fields = lines["INFO"].split()
        xl = host.check_output(["xl", "list", "vkt-ro"]).splitlines()[1].split()
        assert fields[0] == str(domid) and int(fields[2]) // 1024 == int(xl[2]), (fields, xl)
        assert lines["NODE"] == str(host.cpus)
        assert lines["REFUSED"] == str(["destroy", "suspend", "shutdown", "reboot", "setmem",
                                        "setvcpus", "pin", "autostart", "undefine", "save",
                                        "define"])
        assert lines["DAEMON-REFUSED"] == "True" and lines["RW-SOCKET-REFUSED"] == "True"
        # The CLI as that user: -r goes through the daemon too.
        listing = host.check_output(["virtkit", "-r", "-c", "xen:///", "list"], 300,
                                    user=DOM0_USER)
        assert re.search(rf"^\s*{domid}\s+vkt-ro\s+(running|idle)\s*$", listing, re.M), listing
        assert "vkt-ro" in host.domains(), "the guest still runs"
    finally:
        host.run("kill $(cat /run/virtkit/virtkitd.pid); xl destroy vkt-ro; "
                 "rm -f /etc/xen/vkt-ro.cfg /tmp/vkt-ro.py")
