"""virtkitd as a process: sockets, read-only access, single instance, crash and restart, idle exit."""

from __future__ import annotations

import os
import stat
import time

import pytest

import virtkit
from tests.daemon.conftest import StartDaemon
from tests.daemon.private import PrivateDaemon
from virtkit.drivers.remote.client import RemoteClient

DOMAIN_XML = ("<domain type='test'><name>{name}</name><memory>131072</memory><vcpu>1</vcpu>"
              "<os><type>hvm</type></os></domain>")


def test_sockets_pidfile_and_modes(daemon: PrivateDaemon) -> None:
    assert stat.S_IMODE(os.stat(daemon.socket).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(daemon.socket_ro).st_mode) == 0o666
    assert stat.S_IMODE(os.stat(daemon.socket_dir).st_mode) == 0o700
    assert daemon.proc is not None
    assert daemon.pidfile.read_text().strip() == str(daemon.proc.pid)
    with virtkit.open(daemon.uri) as conn:
        assert conn.driver_name == "remote"
        assert conn.get_type() == "Test"
        assert [d.name for d in conn.list_all_domains()] == ["test"]


def test_stop_removes_sockets_and_pidfile(daemon: PrivateDaemon) -> None:
    assert daemon.stop() == 0
    assert not daemon.socket.exists() and not daemon.socket_ro.exists()
    assert not daemon.pidfile.exists()


def test_read_only_socket_refuses_every_mutation(daemon: PrivateDaemon) -> None:
    # A client that believes it is read-write: the daemon refuses by itself.
    with virtkit.open(daemon.ro_uri) as ro, virtkit.open(daemon.uri) as rw:
        dom = ro.lookup_domain_by_name("test")
        assert dom.info().state == virtkit.DomainState.RUNNING
        assert "<name>test</name>" in dom.xml_desc()
        for mutate in (dom.destroy, dom.suspend, dom.shutdown, dom.undefine,
                       lambda: dom.set_memory(1024), lambda: dom.set_autostart(True),
                       lambda: ro.define_domain(DOMAIN_XML.format(name="ro-def")),
                       lambda: ro.create_domain(DOMAIN_XML.format(name="ro-create"))):
            with pytest.raises(virtkit.OperationDeniedError, match="read only access"):
                mutate()
        assert rw.lookup_domain_by_name("test").state() == virtkit.DomainState.RUNNING
        with pytest.raises(virtkit.NoDomainError):
            rw.lookup_domain_by_name("ro-def")


def test_read_only_open_on_the_read_write_socket(daemon: PrivateDaemon) -> None:
    with RemoteClient.connect_unix(daemon.socket, timeout=10) as client:
        client.open("test:///default", readonly=True)
        dom = client.call("domain_lookup_by_name", {"name": "test"})["dom"]
        with pytest.raises(virtkit.OperationDeniedError):
            client.call("domain_destroy", {"dom": dom})
        # VIR_DOMAIN_XML_SECURE is refused on read-only connections, as libvirtd does.
        with pytest.raises(virtkit.OperationDeniedError, match="secure"):
            client.call("domain_get_xml_desc", {"dom": dom, "flags": 1})


def test_uris_the_daemon_accepts(daemon: PrivateDaemon) -> None:
    for uri in (None, "qemu:///session", "test:///default"):
        with RemoteClient.connect_unix(daemon.socket, timeout=10) as client:
            client.open(uri)
            expected = uri or "qemu:///session"
            assert client.call("connect_get_uri")["uri"] == expected
    for uri in ("qemu:///system", "xen:///", "test://otherhost/default"):
        with RemoteClient.connect_unix(daemon.socket, timeout=10) as client:
            with pytest.raises(virtkit.ConnectionFailedError, match="cannot open"):
                client.open(uri)


def test_unmapped_procedures_answer_no_support(daemon: PrivateDaemon) -> None:
    with RemoteClient.connect_unix(daemon.socket, timeout=10) as client:
        client.open("test:///default")
        dom = client.call("domain_lookup_by_name", {"name": "test"})["dom"]
        with pytest.raises(virtkit.NoSupportError):
            client.call("connect_get_all_domain_stats", {"doms": [dom], "stats": 0, "flags": 0})
        with pytest.raises(virtkit.NoSupportError):
            client.call("domain_open_console", {"dom": dom, "dev_name": None, "flags": 0})
        with pytest.raises(virtkit.InvalidArgumentError, match="unsupported flags"):
            client.call("domain_get_state", {"dom": dom, "flags": 4})
        assert client.call("domain_get_state", {"dom": dom, "flags": 0})["state"] == 1


def test_one_daemon_per_socket_dir(start_daemon: StartDaemon, daemon: PrivateDaemon) -> None:
    second = start_daemon(base=daemon.base, wait=False)
    assert second.proc is not None
    assert second.proc.wait(timeout=30) == 1
    assert "already serving" in second.log_text()
    with virtkit.open(daemon.uri) as conn:  # the first one is untouched
        conn.get_node_info()
    assert daemon.running


def test_kill_9_then_restart_on_the_same_dirs(start_daemon: StartDaemon) -> None:
    first = start_daemon()
    with virtkit.open(first.uri) as conn:
        conn.define_domain(DOMAIN_XML.format(name="before-crash"))
    first.kill()
    assert first.socket.exists() and first.pidfile.exists(), "a crash leaves its files"
    second = start_daemon(base=first.base)
    with virtkit.open(second.uri) as conn:
        # The test backend keeps its state in memory: a restart starts from its defaults.
        assert [d.name for d in conn.list_all_domains()] == ["test"]
    assert second.stop() == 0


def test_idle_timeout_exits_only_without_clients(start_daemon: StartDaemon) -> None:
    daemon = start_daemon("--timeout", "1")
    assert daemon.proc is not None
    with virtkit.open(daemon.uri) as conn:
        time.sleep(2.5)
        assert daemon.running, "a connected client keeps the daemon alive"
        conn.get_type()
    assert daemon.proc.wait(timeout=15) == 0
    assert not daemon.socket.exists() and not daemon.pidfile.exists()


def test_an_unavailable_backend_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from virtkit.daemon import backends

    monkeypatch.setitem(backends.BACKENDS, "future", backends.BackendSpec(
        "future", "virtkit.drivers.future.driver:FutureDriver", lambda paths: paths.uri))
    with pytest.raises(backends.BackendUnavailableError,
                       match="future backend is not available in this virtkit yet"):
        backends.load_backend("future")


def test_an_unknown_backend_stops_the_daemon_at_once(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(driver="nosuch", wait=False)
    assert daemon.proc is not None
    assert daemon.proc.wait(timeout=30) == 2
    assert "invalid choice: 'nosuch'" in daemon.log_text()
    assert not daemon.socket.exists()


@pytest.mark.qemu
def test_the_qemu_backend_keeps_its_files_in_the_daemon_dirs(start_daemon: StartDaemon) -> None:
    daemon = start_daemon(driver="qemu")
    with virtkit.open(f"qemu+unix:///session?socket={daemon.socket}") as conn:
        assert conn.get_type() == "QEMU"
        assert conn.list_all_domains() == []
    assert (daemon.socket_dir / "qemu").is_dir()
    assert (daemon.config_dir / "qemu").is_dir()
    assert daemon.stop() == 0
