"""Stock virsh (Debian's libvirt-clients) against virtkitd with the test backend.

virsh picks the driver name from the URI and sends the daemon-side URI in
connect_open; both ``test+unix:///default`` and ``qemu+unix:///session``
namings reach the same daemon. What virsh printed is what is asserted. These
tests need the real ``virsh`` and fail (not skip) without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon.private import PrivateDaemon, process_gone

Virsh = Callable[..., subprocess.CompletedProcess[str]]

NEW_DOMAIN = ("<domain type='test'><name>{name}</name>"
              "<uuid>11111111-2222-3333-4444-{suffix}</uuid><memory>262144</memory>"
              "<currentMemory>131072</currentMemory><vcpu>2</vcpu>"
              "<os><type>hvm</type></os></domain>")


@pytest.fixture(scope="module")
def daemon() -> Iterator[PrivateDaemon]:
    daemon = PrivateDaemon().start()
    yield daemon
    assert daemon.proc is not None
    pid = daemon.proc.pid
    daemon.cleanup()
    assert process_gone(pid)


@pytest.fixture(scope="module", params=["test", "qemu"])
def virsh(request: pytest.FixtureRequest, daemon: PrivateDaemon,
          tmp_path_factory: pytest.TempPathFactory) -> Virsh:
    binary = shutil.which("virsh")
    if binary is None:
        pytest.fail("virsh is not installed: these tests need Debian's libvirt-clients")
    home = tmp_path_factory.mktemp("virsh-home")
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIBVIRT_DEFAULT_URI", "VIRSH_DEFAULT_CONNECT_URI")}
    env.update(LC_ALL="C", HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_RUNTIME_DIR=str(home))
    path = "/default" if request.param == "test" else "/session"
    uri = f"{request.param}+unix://{path}?socket={daemon.socket}"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([binary, "-c", uri, *args], env=env, capture_output=True,
                                text=True, timeout=60)
        if check and result.returncode != 0:
            pytest.fail(f"virsh {' '.join(args)} failed ({result.returncode}):\n"
                        f"{result.stdout}{result.stderr}")
        return result

    run.scheme = request.param  # type: ignore[attr-defined]
    return run


def fields(output: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, v in
            (line.split(":", 1) for line in output.splitlines() if ":" in line)}


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines() if line.strip()]


def test_list_all(virsh: Virsh) -> None:
    out = rows(virsh("list", "--all").stdout)
    assert out[0] == ["Id", "Name", "State"]
    assert ["1", "test", "running"] in out


def test_dominfo(virsh: Virsh) -> None:
    info = fields(virsh("dominfo", "test").stdout)
    assert info["Id"] == "1"
    assert info["Name"] == "test"
    assert info["UUID"] == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert info["OS Type"] == "hvm"
    assert info["State"] == "running"
    assert info["CPU(s)"] == "2"
    assert info["Max memory"] == "8388608 KiB"
    assert info["Used memory"] == "2097152 KiB"
    assert info["Persistent"] == "yes"
    assert info["Autostart"] == "disable"
    assert info["Managed save"] == "no"


def test_domstate_and_dumpxml(virsh: Virsh) -> None:
    assert virsh("domstate", "test").stdout.strip() == "running"
    xml = virsh("dumpxml", "test").stdout
    assert "<name>test</name>" in xml and "id='1'" in xml
    assert "<uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>" in xml


def test_domain_life_cycle(virsh: Virsh, tmp_path: Path) -> None:
    scheme = virsh.scheme  # type: ignore[attr-defined]
    name = f"virsh-{scheme}"
    xml = tmp_path / "dom.xml"
    xml.write_text(NEW_DOMAIN.format(name=name, suffix="55555555555" + str(len(scheme))))
    assert f"Domain '{name}' defined" in virsh("define", str(xml)).stdout
    assert ["-", name, "shut", "off"] in rows(virsh("list", "--all").stdout)
    assert virsh("domstate", name).stdout.strip() == "shut off"
    info = fields(virsh("dominfo", name).stdout)
    assert (info["Id"], info["State"], info["Max memory"], info["Used memory"]) == (
        "-", "shut off", "262144 KiB", "131072 KiB")
    dumped = virsh("dumpxml", name).stdout
    assert f"<name>{name}</name>" in dumped and "<vcpu" in dumped
    assert f"Domain '{name}' started" in virsh("start", name).stdout
    assert virsh("domstate", name).stdout.strip() == "running"
    started = [r for r in rows(virsh("list").stdout) if name in r]
    assert len(started) == 1 and started[0][0].isdigit() and started[0][2] == "running"
    assert "is being shutdown" in virsh("shutdown", name).stdout
    assert virsh("domstate", name).stdout.strip() == "shut off"
    virsh("start", name)
    assert f"Domain '{name}' destroyed" in virsh("destroy", name).stdout
    assert virsh("domstate", name).stdout.strip() == "shut off"
    assert f"Domain '{name}' has been undefined" in virsh("undefine", name).stdout
    missing = virsh("dominfo", name, check=False)
    assert missing.returncode == 1
    assert f"failed to get domain '{name}'" in missing.stderr


def test_errors_reach_virsh(virsh: Virsh) -> None:
    refused = virsh("resume", "test", check=False)
    assert refused.returncode == 1
    assert "domain 'test' is not paused (state: running)" in refused.stderr
    bad = virsh("start", "no-such-domain", check=False)
    assert bad.returncode == 1 and "failed to get domain 'no-such-domain'" in bad.stderr


def test_read_only_socket(virsh: Virsh, daemon: PrivateDaemon, tmp_path: Path) -> None:
    binary = shutil.which("virsh")
    assert binary is not None
    uri = f"test+unix:///default?socket={daemon.socket_ro}"
    env = dict(os.environ, LC_ALL="C", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path))
    state = subprocess.run([binary, "-c", uri, "domstate", "test"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert state.stdout.strip() == "running"
    refused = subprocess.run([binary, "-c", uri, "destroy", "test"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert "read only access prevents domain_destroy" in refused.stderr
    assert virsh("domstate", "test").stdout.strip() == "running"


def test_dhcp_leases_and_interface_addresses(virsh: Virsh) -> None:
    # The test driver's fake lease of domain 'test' (aa:bb:cc:dd:ee:ff on 'default'),
    # through procedures 341 and 353 as virsh encodes and decodes them.
    leases = rows(virsh("net-dhcp-leases", "default").stdout)
    assert ["aa:bb:cc:dd:ee:ff", "ipv4", "192.168.122.157/24", "test", "-"] == leases[2][2:]
    only = rows(virsh("net-dhcp-leases", "default", "--mac", "AA:BB:CC:DD:EE:FF").stdout)
    assert only[2:] == leases[2:]
    assert rows(virsh("net-dhcp-leases", "default", "--mac", "52:54:00:00:00:01").stdout)[2:] == []
    addrs = rows(virsh("domifaddr", "test").stdout)
    assert addrs[2] == ["testnet0", "aa:bb:cc:dd:ee:ff", "ipv4", "192.168.122.157/24"]
    arp = virsh("domifaddr", "test", "--source", "arp", check=False)
    assert arp.returncode == 1 and "DHCP leases only" in arp.stderr
