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


def test_all_domain_stats_is_list_info_and_vcpus() -> None:
    """The test driver has no batch of its own: the public layer's one by one,
    in list_all_domains' order, vCPUs for running domains only."""
    with virtkit.open("test:///default") as conn:
        conn.define_domain("<domain type='test'><name>stats-off</name><memory>1024</memory>"
                           "<os><type>hvm</type></os></domain>")
        try:
            stats = conn.all_domain_stats()
            listing = conn.list_all_domains()
            assert [s.domain for s in stats] == listing
            assert isinstance(stats[0], virtkit.DomainStats)
            for s, dom in zip(stats, listing):
                # CPU time runs on between the two reads (the test driver's clock).
                assert s.info._replace(cpu_time=0) == dom.info()._replace(cpu_time=0)
                assert [v._replace(cpu_time=0) for v in s.vcpus] == \
                    ([v._replace(cpu_time=0) for v in dom.vcpus()] if dom.is_active() else [])
            test = next(s for s in stats if s.domain.name == "test")
            assert len(test.vcpus) == 2
            off = next(s for s in stats if s.domain.name == "stats-off")
            assert off.info.state == DomainState.SHUTOFF and off.vcpus == []
            conn.close()
            with pytest.raises(virtkit.InvalidConnectionError):
                conn.all_domain_stats()
        finally:
            with virtkit.open("test:///default") as again:
                again.lookup_domain_by_name("stats-off").undefine()


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


def test_fake_dhcp_leases_and_interface_addresses() -> None:
    from virtkit.domain import DomainInterface, InterfaceAddress, InterfaceAddressSource
    from virtkit.network import DHCPLease, IPAddrType

    with virtkit.open("test:///default") as conn:
        net = conn.lookup_network_by_name("default")
        # 0xaabbccddeeff % 253 (the range .2-.254) = 155: the lease is .157, for ever (0).
        lease = DHCPLease("virbr0", 0, IPAddrType.IPV4, "aa:bb:cc:dd:ee:ff", None,
                          "192.168.122.157", 24, "test", None)
        assert net.dhcp_leases() == [lease]
        assert net.dhcp_leases("AA:BB:CC:DD:EE:FF") == [lease]
        assert net.dhcp_leases("52:54:00:00:00:01") == []
        with pytest.raises(virtkit.InvalidArgumentError, match="not a MAC address"):
            net.dhcp_leases("aa:bb:cc")
        dom = conn.lookup_domain_by_name("test")
        assert dom.interface_addresses() == [DomainInterface(
            "testnet0", "aa:bb:cc:dd:ee:ff", (InterfaceAddress(0, "192.168.122.157", 24),))]
        with pytest.raises(virtkit.NoSupportError, match="DHCP leases only"):
            dom.interface_addresses(InterfaceAddressSource.AGENT)
        with pytest.raises(virtkit.InvalidArgumentError, match="unknown interface address"):
            dom.interface_addresses(7)


def test_leases_follow_domains_and_networks(tmp_path: Path) -> None:
    node = tmp_path / "node.xml"
    node.write_text(
        "<node><network><name>lan</name><bridge name='br9'/>"
        "<ip address='10.9.0.1' netmask='255.255.255.0'><dhcp>"
        "<range start='10.9.0.10' end='10.9.0.19'/></dhcp></ip></network></node>")
    with virtkit.open(f"test://{node}") as conn:
        net = conn.lookup_network_by_name("lan")
        assert net.dhcp_leases() == []
        dom = conn.define_domain(
            "<domain type='test'><name>g</name><memory>1024</memory><os><type>hvm</type></os>"
            "<devices><interface type='network'><source network='lan'/>"
            "<mac address='52:54:00:00:00:0c'/></interface>"
            "<interface type='user'><mac address='52:54:00:00:00:0d'/></interface></devices>"
            "</domain>")
        with pytest.raises(virtkit.OperationInvalidError, match="not running"):
            dom.interface_addresses()
        dom.start()
        [lease] = net.dhcp_leases()
        assert (lease.ipaddr, lease.hostname, lease.iface) == ("10.9.0.18", "g", "br9")  # 0x52540000000c % 10 = 8
        assert [i.name for i in dom.interface_addresses()] == ["vnet0"]  # user NICs have none
        dom.destroy()
        assert net.dhcp_leases() == []
        net.destroy()
        with pytest.raises(virtkit.OperationInvalidError, match="not active"):
            net.dhcp_leases()
