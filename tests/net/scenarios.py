"""Helpers the tests run *inside* the agent (``agent.call("tests.net.scenarios:NAME", ...)``).

They execute in the daemon namespace, in the agent's process, next to its
network manager.
"""

from __future__ import annotations

import os
from pathlib import Path

import virtkit
from virtkit.drivers.interface import Driver
from virtkit.net.backend import NetworkBackend
from virtkit.net.manager import NetworkManager
from virtkit.uri import parse_uri


def set_path(path: str) -> str:
    """Replace the agent's PATH (e.g. one without dnsmasq); return the old one."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = path
    return old


def tool_dir(directory: str, tools: list[str], fakes: dict[str, str] | None = None) -> str:
    """A directory with links to the real ``tools`` and executable ``fakes`` (name -> script)."""
    import shutil

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        real = shutil.which(tool)
        assert real is not None, tool
        (d / tool).symlink_to(real)
    for name, script in (fakes or {}).items():
        (d / name).write_text(script)
        (d / name).chmod(0o755)
    return str(d)


class _NetDriver(NetworkBackend, Driver):
    name = "net-test"
    schemes = ("qemu",)


def public_api_round_trip(config_dir: str, state_dir: str) -> list[str]:
    """The conformance suite's network scenarios, through virtkit.Connection over
    NetworkBackend over a real NetworkManager. Returns what it checked."""
    checked: list[str] = []
    driver = _NetDriver(parse_uri("qemu:///system"), False)
    driver.networks = NetworkManager.open(config_dir, state_dir)
    conn = virtkit.Connection(driver, parse_uri("qemu:///system"), False)
    xml = ("<network><name>{name}</name><forward mode='nat'/><bridge stp='off'/>"
           "<ip address='192.168.{n}.1' netmask='255.255.255.0'><dhcp>"
           "<range start='192.168.{n}.2' end='192.168.{n}.254'/></dhcp></ip></network>")
    try:
        net = conn.define_network(xml.format(name="pub1", n=211))
        assert not net.is_active() and net.is_persistent()
        assert conn.list_defined_networks() == ["pub1"] and conn.list_networks() == []
        assert conn.lookup_network_by_uuid(net.uuid_string) == net
        try:
            net.destroy()
            raise AssertionError("destroy of an inactive network succeeded")
        except virtkit.OperationInvalidError:
            pass
        net.start()
        assert net.is_active() and conn.list_networks() == ["pub1"]
        from virtkit.xml.network import parse_network

        live = parse_network(net.xml_desc())
        assert live.bridge == net.bridge_name() and live.bridge is not None
        checked.append(f"define/start: bridge {live.bridge}")
        try:
            net.start()
            raise AssertionError("start of an active network succeeded")
        except virtkit.OperationInvalidError:
            pass
        net.destroy()
        net.undefine()
        try:
            conn.lookup_network_by_name("pub1")
            raise AssertionError("undefined network still found")
        except virtkit.NoNetworkError:
            pass
        checked.append("destroy/undefine")
        t = conn.create_network(xml.format(name="pub2", n=212))
        assert t.is_active() and not t.is_persistent()
        try:
            t.undefine()
            raise AssertionError("undefine of a transient network succeeded")
        except virtkit.OperationInvalidError as e:
            assert "transient" in str(e)
        t.destroy()
        try:
            conn.lookup_network_by_name("pub2")
            raise AssertionError("destroyed transient network still found")
        except virtkit.NoNetworkError:
            pass
        checked.append("transient")
        a = conn.define_network(xml.format(name="pub3", n=213))
        assert not a.autostart
        a.autostart = True
        assert a.get_autostart()
        try:
            conn.define_network(xml.format(name="pub3", n=214).replace(
                "<name>pub3</name>", "<name>pub3</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"))
            raise AssertionError("a second UUID for one name was accepted")
        except virtkit.NetworkExistsError:
            pass
        try:
            conn.define_network("<network><name>x</name><forward mode='teleport'/></network>")
            raise AssertionError("an unknown forward mode was accepted")
        except virtkit.XMLError:
            pass
        a.start()
        a.undefine()
        assert a.is_active() and not a.is_persistent()
        a.destroy()
        checked.append("autostart/errors/undefine-active")
    finally:
        driver.networks.close(stop_networks=True)
    return checked
