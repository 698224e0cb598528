"""The firewall: the generated table, and what it does to real traffic between namespaces.

NAT: a client reaches the outside namespace, which sees the daemon's uplink address
(masqueraded) and has no route back to the guests' subnet. Route: both directions,
addresses unchanged. Isolated: nothing crosses, even with forwarding on and a route.
Other tables are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from virtkit.net.nftables import build_table, table_name
from virtkit.xml.network import parse_network
from tests.net.namespaces import (
    OUTSIDE_IP,
    UPLINK_IP,
    Agent,
    Client,
    PeerEcho,
    World,
    connect,
)


def net_xml(mode: str | None, n: int, extra: str = "") -> str:
    fwd = {None: "", "nat": "<forward mode='nat'/>", "route": "<forward mode='route'/>"}[mode]
    return (f"<network><name>fw{n}</name>{fwd}{extra}<bridge name='vkbr{n}' stp='off'/>"
            f"<ip address='192.168.{n}.1' prefix='24'><dhcp>"
            f"<range start='192.168.{n}.10' end='192.168.{n}.20'/></dhcp></ip></network>")


def test_nat_table_text() -> None:
    text = build_table(parse_network(net_xml("nat", 1)), "vkbr1")
    assert text.startswith("table inet virtkit-vkbr1 {")
    assert 'iifname "vkbr1" ip saddr 192.168.1.0/24 accept' in text
    assert 'oifname "vkbr1" ip daddr 192.168.1.0/24 ct state established,related accept' in text
    assert ("ip saddr 192.168.1.0/24 ip daddr != 192.168.1.0/24 meta l4proto { tcp, udp } "
            "masquerade to :1024-65535") in text
    assert 'iifname "vkbr1" reject' in text and 'oifname "vkbr1" reject' in text
    assert table_name("virbr0") == "virtkit-virbr0"


def test_route_isolated_dev_and_nat_ranges_text() -> None:
    route = build_table(parse_network(net_xml("route", 2)), "b")
    assert "masquerade" not in route and 'oifname "b" ip daddr 192.168.2.0/24 accept' in route
    isolated = build_table(parse_network(net_xml(None, 3)), "b")
    assert "saddr 192.168.3.0/24 accept" not in isolated and "postrouting" not in isolated
    nat = build_table(parse_network(
        "<network><name>x</name><forward mode='nat' dev='up0'><nat>"
        "<address start='203.0.113.5' end='203.0.113.9'/><port start='2000' end='3000'/></nat>"
        "</forward><ip address='10.1.0.1' prefix='16'/></network>"), "b")
    assert 'iifname "b" oifname "up0" ip saddr 10.1.0.0/16 accept' in nat
    assert "snat ip to 203.0.113.5-203.0.113.9:2000-3000" in nat


@pytest.fixture
def echo(world: World) -> Iterator[Callable[..., PeerEcho]]:
    made: list[PeerEcho] = []

    def start(ns: object, port: int = 7777) -> PeerEcho:
        e = PeerEcho(ns, port)  # type: ignore[arg-type]
        made.append(e)
        return e

    yield start
    for e in made:
        e.close()


@pytest.mark.netns
def test_nat_masquerades_to_the_outside(agent: Agent, client: Callable[..., Client],
                                        world: World, echo: Callable[..., PeerEcho]) -> None:
    agent.create_network(parse_network(net_xml("nat", 151)))
    c = client("vkbr151")
    c.dhcp()
    echo(world.outside)
    assert connect(c.ns, OUTSIDE_IP) == f"PEER {UPLINK_IP}"
    # The outside has no route to 192.168.151.0/24: only NAT made the reply possible.
    assert "192.168.151" not in world.outside.ip("route").stdout
    # Nothing comes in uninvited: even with a route, the outside cannot open a connection.
    echo(c.ns, 7778)
    world.outside.ip("route", "add", "192.168.151.0/24", "via", UPLINK_IP)
    try:
        assert connect(world.outside, c.lease["ip"], 7778, timeout=2).startswith("FAIL")
    finally:
        world.outside.ip("route", "del", "192.168.151.0/24")


@pytest.mark.netns
def test_route_mode_forwards_both_ways_without_nat(
        agent: Agent, client: Callable[..., Client], world: World,
        echo: Callable[..., PeerEcho]) -> None:
    agent.create_network(parse_network(net_xml("route", 152)))
    c = client("vkbr152")
    ip = c.dhcp()["ip"]
    echo(world.outside)
    echo(c.ns, 7778)
    world.outside.ip("route", "add", "192.168.152.0/24", "via", UPLINK_IP)
    try:
        assert connect(c.ns, OUTSIDE_IP) == f"PEER {ip}"
        assert connect(world.outside, ip, 7778) == f"PEER {OUTSIDE_IP}"
    finally:
        world.outside.ip("route", "del", "192.168.152.0/24")


@pytest.mark.netns
def test_isolated_network_forwards_nothing(agent: Agent, client: Callable[..., Client],
                                           world: World, echo: Callable[..., PeerEcho]) -> None:
    agent.create_network(parse_network(net_xml(None, 153)))
    c = client("vkbr153")
    ip = c.dhcp()["ip"]
    # Give routing every chance: forwarding on, routes both ways; only our rules stop it.
    world.daemon.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")
    c.ns.ip("route", "replace", "default", "via", "192.168.153.1")
    world.outside.ip("route", "add", "192.168.153.0/24", "via", UPLINK_IP)
    echo(world.outside)
    echo(c.ns, 7778)
    try:
        assert connect(c.ns, OUTSIDE_IP, timeout=2).startswith("FAIL")
        assert connect(world.outside, ip, 7778, timeout=2).startswith("FAIL")
        # The guest still reaches the host side of its own network.
        assert connect(world.daemon, ip, 7778) == "PEER 192.168.153.1"
    finally:
        world.outside.ip("route", "del", "192.168.153.0/24")


@pytest.mark.netns
def test_other_tables_are_never_touched(agent: Agent, world: World) -> None:
    foreign = ("table inet admin {\n  chain c {\n    type filter hook forward priority 10;"
               " policy accept;\n    counter\n  }\n}\n")
    world.daemon.exec("nft", "-f", "-", input=foreign)
    try:
        before = world.daemon.ruleset()
        ref = agent.create_network(parse_network(net_xml("nat", 154)))
        during = world.daemon.ruleset()
        assert "table inet virtkit-vkbr154" in during and "table inet admin" in during
        agent.network_destroy(ref)
        assert world.daemon.ruleset() == before
    finally:
        world.daemon.exec("nft", "delete", "table", "inet", "admin")
