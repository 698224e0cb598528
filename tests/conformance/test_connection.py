"""Conformance: connections, the hypervisor and the node."""

from __future__ import annotations

import pytest

import virtkit
from virtkit.xml.capabilities import parse_capabilities

from .conftest import Target


def test_open_as_context_manager_and_close(target: Target) -> None:
    with virtkit.open(target.uri) as conn:
        assert not conn.closed and not conn.read_only
        assert conn.uri == target.uri
        conn.get_type()
    assert conn.closed
    with pytest.raises(virtkit.InvalidConnectionError):
        conn.list_domain_ids()
    conn.close()  # idempotent


def test_hypervisor_facts(conn: virtkit.Connection) -> None:
    assert conn.get_type() and isinstance(conn.get_type(), str)
    assert conn.get_version() >= 0
    assert conn.get_lib_version() == virtkit.LIB_VERSION
    assert conn.get_max_vcpus() >= 1
    assert conn.get_hostname()


def test_node_info_is_consistent(conn: virtkit.Connection) -> None:
    info = conn.get_node_info()
    assert isinstance(info, virtkit.NodeInfo)
    assert info.memory > 0 and info.mhz >= 0 and info.model
    assert info.cpus >= 1
    assert info.nodes * info.sockets * info.cores * info.threads >= 1


def test_capabilities_xml_parses_and_validates(conn: virtkit.Connection) -> None:
    caps = parse_capabilities(conn.get_capabilities())
    assert caps.host_arch
    assert caps.guests, "a hypervisor offers at least one kind of guest"


def test_read_only_connection_reads(ro_conn: virtkit.Connection) -> None:
    assert ro_conn.read_only
    ro_conn.list_domain_ids()
    ro_conn.get_node_info()
    for dom in ro_conn.list_all_domains():
        dom.info()
        dom.xml_desc()
