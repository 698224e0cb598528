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
]

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


@pytest.fixture(params=[pytest.param(t, id=t.id, marks=t.marks) for t in TARGETS])
def target(request: pytest.FixtureRequest) -> Target:
    t: Target = request.param
    if t.uri_fixture is not None:
        t = dataclasses.replace(t, uri=request.getfixturevalue(t.uri_fixture))
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
