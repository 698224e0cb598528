"""The test driver's fixed facts and node files (python/virtkit/drivers/test/)."""

from __future__ import annotations

from pathlib import Path

import pytest

import virtkit
from virtkit import DomainState


def test_default_node_facts() -> None:
    with virtkit.open("test:///default") as conn:
        assert conn.get_type() == "Test"
        assert conn.get_version() == 2
        assert tuple(conn.get_node_info()) == ("i686", 3145728, 16, 1400, 2, 2, 2, 2)
        dom = conn.lookup_domain_by_name("test")
        assert dom.uuid_string == "6695eb01-f6a4-8304-79aa-97f2502e193f"
        info = dom.info()
        assert (info.max_memory, info.memory, info.nr_virt_cpu) == (8388608, 2097152, 2)
        net = conn.lookup_network_by_name("default")
        assert net.uuid_string == "dd8fe884-6c02-601e-7551-cca97df1c5df"
        assert net.bridge_name() == "virbr0" and net.is_active()


def test_default_node_is_shared_in_one_process() -> None:
    with virtkit.open("test:///default") as a, virtkit.open("test:///default") as b:
        name = "shared-node-probe"
        a.define_domain(f"<domain type='test'><name>{name}</name><memory>1024</memory>"
                        "<os><type>hvm</type></os></domain>")
        try:
            assert name in b.list_defined_domains()
        finally:
            b.lookup_domain_by_name(name).undefine()


NODE = """<node>
  <cpu><mhz>6000</mhz><model>i986</model><active>50</active><nodes>4</nodes>
       <sockets>4</sockets><cores>4</cores><threads>2</threads></cpu>
  <memory>8192000</memory>
  <domain file="guest.xml"/>
  <domain type='test'><name>inline</name><memory>65536</memory><vcpu>2</vcpu>
    <os><type>hvm</type></os></domain>
  <network file="net.xml"/>
</node>
"""


def test_node_file(tmp_path: Path) -> None:
    (tmp_path / "guest.xml").write_text(
        "<domain type='test'><name>fromfile</name><uuid>4dea22b31d52d8f32516782e98ab3fa0</uuid>"
        "<memory>131072</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>")
    (tmp_path / "net.xml").write_text(
        "<network><name>lan</name><bridge name='br9'/>"
        "<ip address='10.9.0.1' netmask='255.255.0.0'/></network>")
    (tmp_path / "node.xml").write_text(NODE)
    uri = f"test://{tmp_path / 'node.xml'}"
    with virtkit.open(uri) as conn:
        assert tuple(conn.get_node_info()) == ("i986", 8192000, 50, 6000, 4, 4, 4, 2)
        assert sorted(d.name for d in conn.list_all_domains()) == ["fromfile", "inline"]
        assert all(d.state() == DomainState.RUNNING for d in conn.list_all_domains())
        assert conn.lookup_domain_by_name("fromfile").uuid_string == "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
        assert conn.lookup_network_by_name("lan").bridge_name() == "br9"
        conn.lookup_domain_by_name("inline").destroy()
    with virtkit.open(uri) as conn:
        # Each open of a node file starts from the file again.
        assert conn.lookup_domain_by_name("inline").state() == DomainState.RUNNING


def test_bad_node_files(tmp_path: Path) -> None:
    with pytest.raises(virtkit.ConnectionFailedError, match="cannot read"):
        virtkit.open(f"test://{tmp_path}/missing.xml")
    (tmp_path / "bad.xml").write_text("<node><cpu>")
    with pytest.raises(virtkit.XMLError):
        virtkit.open(f"test://{tmp_path}/bad.xml")
    with pytest.raises(virtkit.ConnectionFailedError):
        virtkit.open("test://somehost/default")
