"""The driver conformance suite: tests written once against the public API.

Each test takes the ``target`` fixture, parametrized over every driver that
joins the suite. A target says how to open its URI and how to write a
minimal domain for it; the tests do the rest through ``virtkit`` only.
Later drivers join by adding a :class:`Target` to ``TARGETS``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

import virtkit


@dataclass
class Target:
    """One driver under test."""

    id: str
    uri: str
    #: Domain type written into the XML.
    domain_type: str
    #: Extra XML inside <domain> (os block, devices) for a bootable guest.
    domain_body: Callable[[], str] = lambda: "<os><type>hvm</type></os>"
    #: Seconds to wait for asynchronous state changes (real guests).
    timeout: float = 5.0
    marks: list[pytest.MarkDecorator] = field(default_factory=list)
    #: A fixture whose value replaces ``uri`` (for targets served by a daemon a fixture starts).
    uri_fixture: str | None = None
    #: Tests expected to fail with NoSupportError on this target, with the operation
    #: missing (test name -> reason): a strict xfail, so the test still runs and
    #: fails loudly the day the operation works.
    unsupported: dict[str, str] = field(default_factory=dict)
    #: Called on an active domain before the ``settle_before`` methods: a real
    #: guest honours the ACPI power button only once its OS has booted.
    settle: Callable[[virtkit.Domain], None] | None = None
    #: Domain methods that need a booted guest (a Xen PV guest's kernel takes
    #: part in its own save, and dumps only once it has set up its memory map).
    settle_before: tuple[str, ...] = ("shutdown", "reboot")

    def domain_xml(self, name: str, *, memory: int = 131072, vcpus: int = 1,
                   uuid: str | None = None, extra: str = "") -> str:
        uuid_el = f"<uuid>{uuid}</uuid>" if uuid else ""
        return (f"<domain type='{self.domain_type}'><name>{name}</name>{uuid_el}"
                f"<memory>{memory}</memory><vcpu>{vcpus}</vcpu>"
                f"{self.domain_body()}{extra}</domain>")

    def network_xml(self, name: str, *, bridge: str | None = None, subnet: int = 200,
                    forward: str | None = "nat") -> str:
        bridge_el = f"<bridge name='{bridge}'/>" if bridge else ""
        fwd = f"<forward mode='{forward}'/>" if forward else ""
        return (f"<network><name>{name}</name>{fwd}{bridge_el}"
                f"<ip address='192.168.{subnet}.1' netmask='255.255.255.0'><dhcp>"
                f"<range start='192.168.{subnet}.2' end='192.168.{subnet}.254'/></dhcp></ip></network>")


TARGETS = [
    Target(id="test", uri="test:///default", domain_type="test"),
    # The test driver behind a private virtkitd, through the remote driver.
    Target(id="virtkitd-test", uri="test+unix:///default?socket=(from the fixture)",
           domain_type="test", uri_fixture="virtkitd_test_uri"),
    # QEMU (TCG) behind a private virtkitd, booting the test guest (scripts/guest): as root
    # a system daemon (networks included) inside a network namespace of its own, else a
    # session daemon, which has no networks.
    Target(id="qemu", uri="qemu+unix:///system?socket=(from the fixture)", domain_type="qemu",
           domain_body=lambda: _qemu_guest_body(), timeout=90.0,
           marks=[pytest.mark.qemu, pytest.mark.guest], uri_fixture="virtkitd_qemu_uri",
           settle=lambda dom: _qemu_guest_settle(dom),
           unsupported={
               **({} if os.geteuid() == 0 else {
                   test: "qemu:///session has no virtual networks (a system daemon needs root)"
                   for test in ("test_define_start_destroy_undefine",
                                "test_transient_network_and_undefine_of_active",
                                "test_autostart_and_errors")}),
           }),
    # Xen through xend: the xend simulator of tests/drivers/xen, one for the whole run.
    Target(id="xen", uri="xen:///?socket=(from the fixture)", domain_type="xen",
           domain_body=lambda: "<os><type>linux</type><kernel>/boot/vmlinuz-xen</kernel></os>",
           uri_fixture="xend_simulator_uri",
           unsupported={
               "test_undefine_running_domain_keeps_it_running_as_transient":
                   "xend keeps a running domain managed until it stops (op=delete refuses it)",
               "test_attach_and_detach_devices":
                   "the test's devices (a virtio disk, a user-mode NIC) are QEMU's: Xen answers "
                   "CONFIG_UNSUPPORTED (tests/drivers/xen attach and detach Xen devices)",
               "test_define_start_destroy_undefine":
                   "xend has no virtual networks (libvirt 0.2.2 ran them in its qemud)",
               "test_transient_network_and_undefine_of_active":
                   "xend has no virtual networks (libvirt 0.2.2 ran them in its qemud)",
               "test_autostart_and_errors":
                   "xend has no virtual networks (libvirt 0.2.2 ran them in its qemud)",
           }),
]


# Inside dom0 of the nested Xen host (tests/xenhost/test_dom0.py sets this), the
# suite runs against xen:/// itself, with the PV test guest, and nothing else.
if os.environ.get("VIRTKIT_CONFORMANCE_XEN_DOM0"):
    _NO_NETWORKS = ("xen:/// has no virtual networks (libvirt 0.2.2 ran them in its qemud, "
                    "and xl has none)")
    TARGETS = [
        Target(id="xen-dom0", uri="xen:///", domain_type="xen",
               domain_body=lambda: _xen_pv_guest_body(), timeout=400.0,
               settle=lambda dom: _xen_pv_guest_settle(dom),
               settle_before=("shutdown", "reboot", "save", "suspend"),
               unsupported={
                   "test_attach_and_detach_devices":
                       "the test's devices (a virtio disk, a user-mode NIC) are QEMU's: Xen "
                       "answers CONFIG_UNSUPPORTED (tests/xenhost/dom0 attaches Xen disks)",
                   "test_define_start_destroy_undefine": _NO_NETWORKS,
                   "test_transient_network_and_undefine_of_active": _NO_NETWORKS,
                   "test_autostart_and_errors": _NO_NETWORKS,
               }),
    ]


def _xen_pv_guest_body() -> str:
    from tests.xenhost.dom0.guests import GUEST_DIR

    return (f"<os><type>linux</type><kernel>{GUEST_DIR}/guest-vmlinux</kernel>"
            f"<initrd>{GUEST_DIR}/guest-initrd.gz</initrd>"
            "<cmdline>console=hvc0 quiet panic=-1 virtkit.tick=0</cmdline></os>"
            "<devices><console type='pty'/></devices>")


def _xen_pv_guest_settle(dom: virtkit.Domain) -> None:
    """A PV guest acts on control/shutdown once its kernel watches it: wait for its
    ready line (counting the boots of this domain so far)."""
    from tests.xenhost.dom0.guests import READY, console_log, wait_console

    boots = console_log(dom.name).count(READY)
    wait_console(dom.name, READY, count=max(boots, 1))


def _qemu_guest_body() -> str:
    from tests.drivers.qemu.guests import CMDLINE
    from tests.guest.console import build_guest_image

    image = build_guest_image()
    return (f"<os><type arch='x86_64' machine='pc'>hvm</type><kernel>{image.kernel}</kernel>"
            f"<initrd>{image.initrd}</initrd><cmdline>{CMDLINE}</cmdline></os>"
            "<features><acpi/></features>"
            "<devices><serial type='pty'/><console type='pty'/></devices>")


def _qemu_guest_settle(dom: virtkit.Domain) -> None:
    from tests.drivers.qemu.guests import close_console, open_console, wait_guest_ready

    console = open_console(dom)
    try:
        wait_guest_ready(console)
    finally:
        close_console(console)

_names = itertools.count()


@pytest.fixture(scope="session")
def virtkitd_test_uri() -> Iterator[str]:
    """A private ``virtkitd --driver test`` for the whole run; stopped (and checked) after."""
    from tests.daemon.private import PrivateDaemon

    daemon = PrivateDaemon().start()
    try:
        yield daemon.uri
    finally:
        status = daemon.stop()
        daemon.cleanup()
    assert status == 0, f"virtkitd exited with status {status}"


@pytest.fixture(scope="session")
def virtkitd_qemu_uri() -> Iterator[str]:
    """A private ``virtkitd --driver qemu`` for the whole run; afterwards no guest,
    no runtime file and no definition is left. As root: ``--system`` inside a network
    namespace of its own (tests/drivers/qemu/netns.py), so its networks never touch
    the host's; otherwise a session daemon."""
    if os.geteuid() == 0:
        from tests.drivers.qemu.netns import NetnsWorld

        world = NetnsWorld("qc").start()
        try:
            yield world.daemon.uri
        finally:
            log = world.log()
            left = world.close()
        assert not left, f"left behind: {left}\n{log[-3000:]}"
        return
    from tests.drivers.qemu.guests import QemuDaemon

    daemon = QemuDaemon().start()
    try:
        yield daemon.uri
        daemon.destroy_all()
        assert not daemon.guests(), "QEMU processes left running"
        assert not daemon.leftovers(), f"files left behind: {daemon.leftovers()}"
    finally:
        status = daemon.stop()
        daemon.cleanup()
    assert status == 0, f"virtkitd exited with status {status}"


@pytest.fixture(scope="session")
def xend_simulator_uri() -> Iterator[str]:
    """A simulated xend (tests/drivers/xen/xend_simulator.py) for the whole run."""
    from tests.drivers.xen.xend_simulator import XendSimulator

    with XendSimulator() as sim:
        yield sim.uri


@pytest.fixture(params=[pytest.param(t, id=t.id, marks=t.marks) for t in TARGETS])
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Target:
    t: Target = request.param
    if t.uri_fixture is not None:
        t = dataclasses.replace(t, uri=request.getfixturevalue(t.uri_fixture))
    test_name = getattr(request.node, "originalname", request.node.name)
    if test_name in t.unsupported:
        request.node.add_marker(pytest.mark.xfail(
            reason=f"{t.id}: {t.unsupported[test_name]}", raises=virtkit.NoSupportError,
            strict=True))
    if t.settle is not None:
        settle = t.settle
        for method in t.settle_before:
            real = getattr(virtkit.Domain, method)

            def settled(dom: virtkit.Domain, *args: object,
                        _real: Callable[..., None] = real) -> None:
                if dom.is_active():
                    settle(dom)
                _real(dom, *args)
            monkeypatch.setattr(virtkit.Domain, method, settled)
    return t


@pytest.fixture
def conn(target: Target) -> Iterator[virtkit.Connection]:
    with virtkit.open(target.uri) as c:
        yield c


@pytest.fixture
def ro_conn(target: Target) -> Iterator[virtkit.Connection]:
    with virtkit.open_read_only(target.uri) as c:
        yield c


@pytest.fixture
def fresh_name() -> Callable[[str], str]:
    """Unique object names, so tests sharing test:///default never collide."""
    def make(prefix: str = "conf") -> str:
        return f"{prefix}-{os.getpid()}-{next(_names)}"
    return make


@pytest.fixture
def cleanup(conn: virtkit.Connection) -> Iterator[list[str]]:
    """Names of domains to destroy and undefine after the test, whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            dom = conn.lookup_domain_by_name(name)
        except virtkit.NoDomainError:
            continue
        if dom.is_active():
            dom.destroy()
        try:
            conn.lookup_domain_by_name(name).undefine()
        except virtkit.VirtError:
            pass


@pytest.fixture
def net_cleanup(conn: virtkit.Connection) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        try:
            net = conn.lookup_network_by_name(name)
        except virtkit.NoNetworkError:
            continue
        if net.is_active():
            net.destroy()
        try:
            conn.lookup_network_by_name(name).undefine()
        except virtkit.VirtError:
            pass


def wait_for_state(dom: virtkit.Domain, state: virtkit.DomainState, timeout: float) -> None:
    """Wait until ``dom`` reaches ``state`` (real guests change state asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        current = dom.state()
        if current == state:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"domain {dom.name} stayed {current.name}, expected {state.name}")
        time.sleep(0.02)
