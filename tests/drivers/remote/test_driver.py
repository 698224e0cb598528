"""The remote driver (virtkit.drivers.remote.driver): URIs, registry, and talking to a
server that is not virtkitd (the fake libvirtd-like handler)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import virtkit
from tests.drivers.remote.conftest import ServerThread
from tests.drivers.remote.fake_handler import FakeHandler
from virtkit.daemon.paths import session_paths
from virtkit.drivers import driver_class
from virtkit.drivers.remote.driver import RemoteDriver, endpoint
from virtkit.drivers.test import TestDriver
from virtkit.uri import parse_uri

Serve = Callable[..., ServerThread]


@pytest.mark.parametrize("uri, socket, daemon_uri, autostart", [
    ("test+unix:///default?socket=/s/sock", "/s/sock", "test:///default", False),
    ("qemu+unix:///session?socket=/s/sock", "/s/sock", "qemu:///session", False),
    ("qemu+unix:///system?socket=/s/sock", "/s/sock", "qemu:///system", False),
    ("xen+unix:///?socket=/s/sock", "/s/sock", "xen:///", False),
    ("test+unix:///tmp/node.xml?socket=/s&keep=1", "/s", "test:///tmp/node.xml?keep=1", False),
    ("qemu+unix:///session?socket=/s&name=qemu:///embed", "/s", "qemu:///embed", False),
    ("qemu:///system", "/run/virtkit/virtkit-sock", "qemu:///system", False),
    ("qemu+unix:///system", "/run/virtkit/virtkit-sock", "qemu:///system", False),
    ("qemu:///session", "SESSION", "qemu:///session", True),
    ("qemu+unix:///session", "SESSION", "qemu:///session", True),
])
def test_endpoints(uri: str, socket: str, daemon_uri: str, autostart: bool) -> None:
    point = endpoint(parse_uri(uri))
    expected = str(session_paths().socket) if socket == "SESSION" else socket
    assert (point.transport, point.socket, point.daemon_uri) == ("unix", expected, daemon_uri)
    assert (point.autostart is not None) == autostart


@pytest.mark.parametrize("uri, message", [
    ("qemu+tcp://host/system", "'tcp' transport is not supported yet"),
    ("qemu+ssh://host/system", "'ssh' transport is not supported yet"),
    ("test+unix://host/default?socket=/s", "no host part"),
    ("qemu:///elsewhere", "qemu:///session or qemu:///system"),
])
def test_unreachable_endpoints(uri: str, message: str) -> None:
    with pytest.raises(virtkit.ConnectionFailedError, match=message):
        endpoint(parse_uri(uri))
    with pytest.raises(virtkit.ConnectionFailedError, match=message):
        virtkit.open(uri)


def test_registry_routes_transports_and_qemu_to_the_remote_driver() -> None:
    assert driver_class(parse_uri("test:///default")) is TestDriver
    for uri in ("test+unix:///default?socket=/s", "qemu:///session", "qemu:///system",
                "xen+unix:///?socket=/s", "qemu+tcp://h/system"):
        assert driver_class(parse_uri(uri)) is RemoteDriver, uri
    with pytest.raises(virtkit.ConnectionFailedError, match="DRIVER\\+unix://"):
        driver_class(parse_uri("nosuch:///"))


def test_nothing_listening_is_a_clear_connection_error(tmp_path: object) -> None:
    with pytest.raises(virtkit.ConnectionFailedError, match="cannot connect to the daemon"):
        virtkit.open("test+unix:///default?socket=/nonexistent/virtkit-sock")


def test_another_server_the_libvirtd_like_fake(serve: Serve) -> None:
    """The driver speaks the protocol, not virtkitd: the colleague's fake handler answers as
    libvirtd would for the calls it knows."""
    server = serve(FakeHandler())
    with virtkit.open(f"qemu+unix:///session?socket={server.path}") as conn:
        assert conn.get_type() == "QEMU" and conn.get_version() == 7_002_000
        assert conn.get_node_info().cpus == 8
        dom = conn.lookup_domain_by_name("fv0")
        assert dom.id == 1 and dom.uuid_string == "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
        info = dom.info()
        assert (info.state, info.max_memory, info.memory, info.nr_virt_cpu) == (
            virtkit.DomainState.RUNNING, 1048576, 524288, 2)
        assert dom.state() == virtkit.DomainState.RUNNING
        assert dom.is_persistent() and not dom.autostart
        assert "<name>fv0</name>" in dom.xml_desc()
        assert [d.name for d in conn.list_all_domains()] == ["fv0"]
        assert conn.list_domain_ids() == [1]
        assert conn.list_networks() == ["default"]
        new = conn.define_domain("<domain type='qemu'><name>web</name><memory>262144</memory>"
                                 "<vcpu>1</vcpu><os><type>hvm</type></os></domain>")
        assert new.id == -1 and "web" in conn.list_defined_domains()
        new.start()
        assert new.id > 1 and new.is_active()
        new.destroy()
        assert not new.is_active()
        new.undefine()
        with pytest.raises(virtkit.NoDomainError):
            conn.lookup_domain_by_name("web")
        # What the peer lacks comes back as NO_SUPPORT, not as a broken connection.
        with pytest.raises(virtkit.NoSupportError):
            dom.save("/tmp/unused.save")
        assert conn.get_hostname() == "fakehost"
    called = server.names()
    assert called[:3] == ["auth_list", "connect_open", "connect_get_type"]
    open_args = next(r.args for r in server.records if r.name == "connect_open")
    assert open_args == {"name": "qemu:///session", "flags": 0}


def test_read_only_open_sends_the_read_only_flag(serve: Serve) -> None:
    server = serve(FakeHandler())
    with virtkit.open_read_only(f"qemu+unix:///session?socket={server.path}") as conn:
        assert conn.lookup_domain_by_name("fv0").is_active()
    open_args = next(r.args for r in server.records if r.name == "connect_open")
    assert open_args["flags"] == 1
