"""Stock virsh (Debian's libvirt-clients) against RemoteServer with the fake handler.

These tests need the real ``virsh`` binary and fail (not skip) without it: the
test command installs libvirt-clients. What virsh printed is what is asserted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.drivers.remote.conftest import ServerThread
from tests.drivers.remote.fake_handler import PAUSED, FakeHandler

Serve = Callable[..., ServerThread]
Virsh = Callable[..., subprocess.CompletedProcess[str]]

# What virsh 9.0 sends around every command on a qemu+unix:// connection.
OPENING = ["auth_list", "connect_supports_feature", "connect_open", "connect_supports_feature",
           "connect_supports_feature", "connect_register_close_callback"]
CLOSING = ["connect_unregister_close_callback", "connect_close"]


@pytest.fixture(scope="module")
def virsh_binary() -> str:
    path = shutil.which("virsh")
    if path is None:
        pytest.fail("virsh is not installed: these tests need Debian's libvirt-clients "
                    "(apt-get install libvirt-clients); the test command installs it")
    return path


@pytest.fixture
def server(serve: Serve) -> ServerThread:
    return serve(FakeHandler())


@pytest.fixture
def virsh(virsh_binary: str, server: ServerThread, tmp_path: Path) -> Virsh:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIBVIRT_DEFAULT_URI", "VIRSH_DEFAULT_CONNECT_URI")}
    env.update(LC_ALL="C", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_RUNTIME_DIR=str(tmp_path))

    def run(*args: str, readonly_socket: bool = False, check: bool = True,
            options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        path = server.ro_path if readonly_socket else server.path
        uri = f"qemu+unix:///session?socket={path}"
        result = subprocess.run([virsh_binary, *options, "-c", uri, *args], env=env,
                                capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            pytest.fail(f"virsh {' '.join(args)} failed ({result.returncode}):\n"
                        f"{result.stdout}{result.stderr}")
        return result

    return run


def fields(output: str) -> dict[str, str]:
    """virsh's ``Key:   value`` lines as a dict."""
    return {k.strip(): v.strip() for k, v in
            (line.split(":", 1) for line in output.splitlines() if ":" in line)}


def test_list_all(virsh: Virsh, server: ServerThread) -> None:
    out = virsh("list", "--all").stdout
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert lines[0] == ["Id", "Name", "State"]
    assert ["1", "fv0", "running"] in lines
    assert server.names() == OPENING + ["connect_list_all_domains", "domain_get_state"] + CLOSING


def test_list_shows_defined_domains(virsh: Virsh, server: ServerThread,
                                    tmp_path: Path) -> None:
    xml = tmp_path / "dom.xml"
    xml.write_text("<domain type='qemu'><name>web</name><memory>262144</memory>"
                   "<vcpu>1</vcpu><os><type>hvm</type></os></domain>")
    virsh("define", str(xml))
    lines = [line.split() for line in virsh("list", "--all").stdout.splitlines()]
    assert ["-", "web", "shut", "off"] in lines
    assert ["1", "fv0", "running"] in lines
    assert ["web"] not in [line[1:2] for line in
                           (ln.split() for ln in virsh("list").stdout.splitlines()) if line]


def test_dominfo(virsh: Virsh, server: ServerThread) -> None:
    info = fields(virsh("dominfo", "fv0").stdout)
    assert info["Id"] == "1"
    assert info["Name"] == "fv0"
    assert info["UUID"] == "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
    assert info["OS Type"] == "hvm"
    assert info["State"] == "running"
    assert info["CPU(s)"] == "2"
    assert info["CPU time"] == "12.5s"
    assert info["Max memory"] == "1048576 KiB"
    assert info["Used memory"] == "524288 KiB"
    assert info["Persistent"] == "yes"
    assert info["Autostart"] == "disable"
    called = server.names()
    for name in ("domain_lookup_by_name", "domain_get_info", "domain_get_os_type",
                 "domain_is_persistent", "domain_get_autostart", "node_get_security_model",
                 "domain_get_security_label", "domain_get_messages"):
        assert name in called


def test_domstate(virsh: Virsh, server: ServerThread) -> None:
    assert virsh("domstate", "fv0").stdout.strip() == "running"
    handler = server.handler
    assert isinstance(handler, FakeHandler)
    server.call(lambda: setattr(handler.domains["fv0"], "state", PAUSED))
    assert virsh("domstate", "fv0").stdout.strip() == "paused"
    assert server.names()[-4:-2] == ["domain_lookup_by_name", "domain_get_state"]


def test_version(virsh: Virsh, server: ServerThread) -> None:
    out = virsh("version").stdout
    assert re.search(r"^Using API: QEMU \d+\.\d+\.\d+$", out, re.M)
    assert re.search(r"^Running hypervisor: QEMU 7\.2\.0$", out, re.M)
    assert server.names() == OPENING + ["connect_get_type", "connect_get_version"] + CLOSING


def test_net_list_all(virsh: Virsh, server: ServerThread) -> None:
    out = virsh("net-list", "--all").stdout
    lines = [line.split() for line in out.splitlines() if line.strip()]
    assert lines[0] == ["Name", "State", "Autostart", "Persistent"]
    assert ["default", "active", "yes", "yes"] in lines
    assert server.names()[len(OPENING)] == "connect_list_all_networks"


def test_nodeinfo_and_capabilities(virsh: Virsh) -> None:
    info = fields(virsh("nodeinfo").stdout)
    assert info["CPU model"] == "x86_64"
    assert info["CPU(s)"] == "8"
    assert info["Memory size"] == "16777216 KiB"
    assert "<os_type>hvm</os_type>" in virsh("capabilities").stdout


def test_domain_life_cycle(virsh: Virsh, server: ServerThread, tmp_path: Path) -> None:
    xml = tmp_path / "dom.xml"
    xml.write_text("<domain type='qemu'><name>newdom</name>"
                   "<uuid>11111111-2222-3333-4444-555555555555</uuid><memory>262144</memory>"
                   "<vcpu>1</vcpu><os><type>hvm</type></os></domain>")
    assert "Domain 'newdom' defined" in virsh("define", str(xml)).stdout
    assert "<name>newdom</name>" in virsh("dumpxml", "newdom").stdout
    assert "Domain 'newdom' started" in virsh("start", "newdom").stdout
    assert virsh("domstate", "newdom").stdout.strip() == "running"
    assert "is being shutdown" in virsh("shutdown", "newdom").stdout
    assert virsh("domstate", "newdom").stdout.strip() == "shut off"
    virsh("start", "newdom")
    assert "Domain 'newdom' destroyed" in virsh("destroy", "newdom").stdout
    assert "has been undefined" in virsh("undefine", "newdom").stdout
    missing = virsh("dominfo", "newdom", check=False)
    assert missing.returncode == 1
    assert "failed to get domain 'newdom'" in missing.stderr
    called = set(server.names())
    assert {"domain_define_xml", "domain_get_xml_desc", "domain_create", "domain_shutdown",
            "domain_destroy", "domain_undefine_flags"} <= called


def test_errors_reach_virsh(virsh: Virsh, server: ServerThread) -> None:
    refused = virsh("resume", "fv0", check=False)  # running, not paused: the handler refuses
    assert refused.returncode == 1
    assert "Requested operation is not valid: domain is not paused" in refused.stderr
    assert isinstance(server.records[-3].error, Exception)


def test_read_only_socket(virsh: Virsh, server: ServerThread) -> None:
    assert virsh("domstate", "fv0", readonly_socket=True).stdout.strip() == "running"
    # Without -r virsh does not know: the server refuses the call itself.
    refused = virsh("destroy", "fv0", readonly_socket=True, check=False)
    assert refused.returncode == 1
    assert "read only access prevents domain_destroy" in refused.stderr
    handler = server.handler
    assert isinstance(handler, FakeHandler)
    assert handler.domains["fv0"].id == 1


def test_events(virsh_binary: str, virsh: Virsh, server: ServerThread, tmp_path: Path) -> None:
    out = tmp_path / "events.out"
    env = dict(os.environ, LC_ALL="C", HOME=str(tmp_path))
    with out.open("w") as sink:
        watcher = subprocess.Popen(
            [virsh_binary, "-c", f"qemu+unix:///session?socket={server.path}", "event",
             "--event", "lifecycle", "--loop", "--timeout", "3"],
            stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 10
            while ("connect_domain_event_callback_register_any" not in server.names()
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            virsh("suspend", "fv0")
            virsh("resume", "fv0")
            assert watcher.wait(timeout=30) == 0
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
    text = out.read_text()
    assert "event 'lifecycle' for domain 'fv0': Suspended" in text
    assert "event 'lifecycle' for domain 'fv0': Resumed" in text
