"""Checks on the document, before anything is touched (no namespace needed)."""

from __future__ import annotations

import pytest

import virtkit
from virtkit.net.validate import check_config
from virtkit.xml.network import parse_network


def net(ip: str = "", extra: str = "", name: str = "v") -> str:
    return f"<network><name>{name}</name>{extra}{ip}</network>"


def ip(dhcp: str, address: str = "192.168.5.1", mask: str = "prefix='24'") -> str:
    return f"<ip address='{address}' {mask}><dhcp>{dhcp}</dhcp></ip>"


GOOD = net(ip("<range start='192.168.5.2' end='192.168.5.254'/>"
              "<host mac='52:54:00:00:00:01' ip='192.168.5.9'/>"
              "<host mac='52:54:00:00:00:02' name='b' ip='192.168.5.10'/>"))


def test_a_good_document_passes() -> None:
    check_config(parse_network(GOOD))
    check_config(parse_network(net(extra="<bridge name='br-lan.1'/>")))


@pytest.mark.parametrize(("doc", "message"), [
    (net(ip("<range start='192.168.5.2' end='192.168.6.9'/>")),
     "DHCP range 192.168.5.2-192.168.6.9 is not entirely within subnet 192.168.5.0/24"),
    (net(ip("<range start='192.168.5.90' end='192.168.5.10'/>")), "ends before it starts"),
    (net(ip("<range start='192.168.5.0' end='192.168.5.10'/>")), "network or broadcast"),
    (net(ip("<host mac='52:54:00:00:00:01' ip='10.0.0.5'/>")),
     "has address 10.0.0.5 outside subnet 192.168.5.0/24"),
    (net(ip("<host mac='52:54:00:00:00:01' ip='192.168.5.5'/>"
            "<host mac='52:54:00:00:00:01' ip='192.168.5.6'/>")),
     "MAC address 52:54:00:00:00:01 is given to two static DHCP hosts"),
    (net(ip("<host mac='52:54:00:00:00:01' ip='192.168.5.5'/>"
            "<host mac='52:54:00:00:00:02' ip='192.168.5.5'/>")), "given to two static"),
    (net(ip("<host ip='192.168.5.5'/>")), "needs a mac or a name"),
    (net(ip("", address="192.168.5.0")), "network or broadcast address"),
    (net(ip("<range start='192.168.5.2' end='192.168.5.3'/>")
         + ip("<range start='192.168.7.2' end='192.168.7.3'/>", address="192.168.7.1")),
     "one IPv4 <ip>"),
    (net(ip("") + ip("", address="192.168.5.9", mask="prefix='25'")), "overlaps another <ip>"),
    (net(extra="<bridge name='a-very-long-bridge-name'/>"), "bridge name"),
    (net(extra="<bridge name='br:0'/>"), "bridge name"),
    (net(name="a/b"), "must not"),
    (net(extra="<forward mode='nat'><nat><port start='3000' end='2000'/></nat></forward>"),
     "NAT port range 3000-2000"),
])
def test_bad_documents_are_refused_with_the_reason(doc: str, message: str) -> None:
    with pytest.raises(virtkit.XMLError, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_config(parse_network(doc))


def test_unknown_forward_mode_is_refused_by_the_schema() -> None:
    with pytest.raises(virtkit.XMLError):
        parse_network(net(extra="<forward mode='teleport'/>"))
