"""Network XML: 0.2.2's format, today's, golden output, invalid documents, round trips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests import needs
from hypothesis import given

from tests.xml import strategies
from tests.xml._support import check_golden, goldens, ids, inputs, invalid
from virtkit.errors import XMLError, XMLSchemaError
from virtkit.uuid import parse_uuid
from virtkit.xml import _document, schema
from virtkit.xml.network import DHCPHost, DHCPRange, DNSHost, IPConfig, NetworkConfig, format_network, parse_network

NETWORKS = inputs("network")


@pytest.mark.parametrize("path", NETWORKS, ids=ids(NETWORKS))
def test_fixture_loads_and_matches_golden(path: Path) -> None:
    cfg = parse_network(path.read_bytes())
    out = format_network(cfg)
    schema.validate("network", _document.parse_xml(out, "network"))
    assert parse_network(out) == cfg
    check_golden(path, out)


@pytest.mark.parametrize("path", goldens("network"), ids=ids(goldens("network")))
def test_golden_outputs_are_canonical(path: Path) -> None:
    assert format_network(parse_network(path.read_text())) == path.read_text()


@pytest.mark.parametrize("path", invalid("network"), ids=ids(invalid("network")))
def test_invalid_fixture_is_refused(path: Path) -> None:
    with pytest.raises(XMLError) as info:
        parse_network(path.read_bytes())
    assert info.value.line is not None and f"line {info.value.line}" in str(info.value)


def test_v022_nat_through_device() -> None:
    cfg = parse_network((inputs("network", prefix="v022-nat-dev")[0]).read_text())
    assert cfg == NetworkConfig(
        name="default",
        uuid=parse_uuid("1a2b3c4d5e6f70819a2b3c4d5e6f7081"),
        bridge="virbr0",
        stp=False,
        delay=0,
        forward_mode="nat",
        forward_dev="eth0",
        ips=(IPConfig("192.168.122.1", 24, dhcp_ranges=(DHCPRange("192.168.122.2", "192.168.122.254"),)),),
    )
    assert cfg.ips[0].netmask == "255.255.255.0"


def test_v022_route_and_isolated() -> None:
    routed = parse_network((inputs("network", prefix="v022-route")[0]).read_text())
    assert (routed.forward_mode, routed.forward_dev, routed.ips[0].prefix) == ("route", "eth1", 16)
    isolated = parse_network((inputs("network", prefix="isolated")[0]).read_text())
    assert isolated.forward_mode is None and isolated.bridge is None and isolated.stp is True
    assert isolated.ips[0].prefix == 20


def test_libvirt9_nat_network() -> None:
    cfg = parse_network((inputs("network", prefix="libvirt9-nat")[0]).read_text())
    assert (cfg.forward_mode, cfg.nat_port_start, cfg.nat_port_end) == ("nat", 1024, 65535)
    assert (cfg.bridge, cfg.stp, cfg.delay, cfg.mac) == ("virbr1", True, 0, "52:54:00:4a:7c:10")
    assert cfg.domain_name == "lab.example"
    assert cfg.dns_hosts == (DNSHost("192.168.100.2", ("db", "db.lab.example")),)
    (ip,) = cfg.ips
    assert ip.dhcp_hosts == (DHCPHost("52:54:00:00:00:02", "db", "192.168.100.2"),
                             DHCPHost("52:54:00:00:00:03", "web", "192.168.100.3"))
    assert "connections" not in format_network(cfg)  # run-time state, not kept


def test_today_ipv6_forward_interface_and_extras() -> None:
    cfg = parse_network((inputs("network", prefix="today-ipv6")[0]).read_text())
    assert cfg.forward_dev == "eth0"
    assert (cfg.nat_address_start, cfg.nat_address_end) == ("203.0.113.10", "203.0.113.20")
    v4, v6 = cfg.ips
    assert (v4.family, v4.prefix) == ("ipv4", 24)
    assert (v6.family, v6.prefix, v6.dhcp_ranges) == ("ipv6", 64, (DHCPRange("fd00:9::100", "fd00:9::1ff"),))
    assert cfg.extra == ("<mtu size='9000'/>", "<portgroup name='engineering' default='yes'/>")
    out = format_network(cfg)
    assert "<ip family='ipv6' address='fd00:9::1' prefix='64'>" in out
    assert "<ip family='ipv4' address='192.168.9.1' netmask='255.255.255.0'/>" in out


def test_forward_mode_error_names_element() -> None:
    doc = "<network>\n  <name>n</name>\n  <forward mode='vepa'/>\n</network>"
    with pytest.raises(XMLSchemaError) as info:
        parse_network(doc)
    assert (info.value.line, info.value.element) == (3, "forward")


def test_ipv6_with_netmask_is_refused() -> None:
    with pytest.raises(XMLError, match="prefix"):
        parse_network("<network><name>n</name><ip address='fd00::1' netmask='255.255.255.0'/></network>")


def test_live_virsh_net_dumpxml_round_trips() -> None:
    needs.program("virsh", "libvirt-clients")
    out = subprocess.run(["virsh", "-c", "test:///default", "net-dumpxml", "default"], check=True,
                         capture_output=True, timeout=60).stdout
    cfg = parse_network(out)
    assert cfg.forward_mode == "nat" and cfg.ips[0].prefix == 24
    assert parse_network(format_network(cfg)) == cfg


@given(strategies.networks())
def test_round_trip(cfg: NetworkConfig) -> None:
    out = format_network(cfg)
    schema.validate("network", _document.parse_xml(out, "network"))
    back = parse_network(out)
    assert back == cfg
    assert format_network(back) == out
