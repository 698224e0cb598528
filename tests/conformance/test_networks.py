"""Conformance: virtual networks through the public API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import virtkit
from virtkit.xml.network import parse_network

from .conftest import Target


def test_define_start_destroy_undefine(conn: virtkit.Connection, target: Target,
                                       fresh_name: Callable[[str], str], net_cleanup: list[str]) -> None:
    name = fresh_name("net")
    net_cleanup.append(name)
    net = conn.define_network(target.network_xml(name, subnet=201))
    assert not net.is_active() and net.is_persistent()
    assert name in conn.list_defined_networks() and name not in conn.list_networks()
    assert conn.lookup_network_by_name(name) == net
    assert conn.lookup_network_by_uuid(net.uuid_string) == net
    assert conn.lookup_network(net.uuid_string) == net
    with pytest.raises(virtkit.OperationInvalidError):
        net.destroy()
    net.start()
    assert net.is_active() and name in conn.list_networks()
    assert net.bridge_name()
    assert parse_network(net.xml_desc()).bridge == net.bridge_name()
    with pytest.raises(virtkit.OperationInvalidError):
        net.start()
    net.destroy()
    assert not net.is_active()
    net.undefine()
    with pytest.raises(virtkit.NoNetworkError):
        conn.lookup_network_by_name(name)


def test_transient_network_and_undefine_of_active(conn: virtkit.Connection, target: Target,
                                                  fresh_name: Callable[[str], str], net_cleanup: list[str]) -> None:
    name = fresh_name("tnet")
    net_cleanup.append(name)
    net = conn.create_network(target.network_xml(name, subnet=202))
    assert net.is_active() and not net.is_persistent()
    with pytest.raises(virtkit.OperationInvalidError, match="transient"):
        net.undefine()
    net.destroy()
    with pytest.raises(virtkit.NoNetworkError):
        conn.lookup_network_by_name(name)
    name2 = fresh_name("tnet")
    net_cleanup.append(name2)
    net2 = conn.define_network(target.network_xml(name2, subnet=203))
    net2.start()
    net2.undefine()
    assert net2.is_active() and not net2.is_persistent(), "undefine of an active network keeps it up"
    net2.destroy()


def test_autostart_and_errors(conn: virtkit.Connection, target: Target,
                              fresh_name: Callable[[str], str], net_cleanup: list[str]) -> None:
    name = fresh_name("anet")
    net_cleanup.append(name)
    net = conn.define_network(target.network_xml(name, subnet=204))
    assert not net.autostart
    net.autostart = True
    assert net.get_autostart()
    with pytest.raises(virtkit.NetworkExistsError):
        conn.define_network(target.network_xml(name, subnet=205))
    with pytest.raises(virtkit.NoNetworkError):
        conn.lookup_network_by_name("no-such-network")
    with pytest.raises(virtkit.XMLError):
        conn.define_network("<network><name>x</name><forward mode='teleport'/></network>")
