"""Checks on a network before anything is touched.

Two kinds, both raising before the first change to the system:

- :func:`check_config`, on the document alone (at define, create and start):
  addresses and prefixes, DHCP ranges inside their subnet and in order,
  static hosts inside the subnet with unique MACs and addresses, one IPv4
  block with DHCP, a bridge name the rest of the stack can carry, NAT
  ranges in order. Raises :class:`~virtkit.errors.XMLError` naming the
  element and the value (libvirt reports these as XML errors too).
- :func:`check_host`, on the host as it is now (at start): the bridge name
  is free, no route or interface address of the namespace overlaps the
  network's subnets (pyroute2's view of every routing table but ``local``,
  and of every address), and the programs the network needs are present.
  Raises :class:`~virtkit.errors.OperationFailedError` naming the cause.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from virtkit.errors import ErrorDomain, OperationFailedError, XMLError
from virtkit.net import netlink
from virtkit.net.bridge import VALID_NAME
from virtkit.xml.network import NetworkConfig

__all__ = ["check_config", "check_host", "subnets", "route_overlap", "Subnet"]

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOCAL_TABLE = 255


def _bad(cfg: NetworkConfig, message: str, element: str) -> XMLError:
    return XMLError(f"network '{cfg.name}': {message}", element=element)


def _addr(cfg: NetworkConfig, text: str | None, what: str, element: str
          ) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text or "")
    except ValueError:
        raise _bad(cfg, f"{what} '{text}' is not an IP address", element) from None


def subnets(cfg: NetworkConfig) -> list[Subnet]:
    """The subnets of the network's ``<ip>`` blocks (assumes :func:`check_config` passed)."""
    return [ipaddress.ip_interface(f"{ip.address}/{ip.prefix}").network for ip in cfg.ips]


def check_config(cfg: NetworkConfig) -> None:
    """Refuse a network document whose content cannot work (see the module docstring)."""
    if not cfg.name or "/" in cfg.name or cfg.name.startswith(".") or "\n" in cfg.name:
        raise _bad(cfg, "a network name must not be empty, contain '/' or a newline, "
                   "or start with '.'", "name")
    if cfg.bridge is not None and not VALID_NAME.match(cfg.bridge):
        raise _bad(cfg, f"bridge name '{cfg.bridge}' must be 1-15 letters, digits, "
                   "'_', '.' or '-'", "bridge")
    if cfg.forward_mode not in (None, "nat", "route"):
        raise _bad(cfg, f"unknown forward mode '{cfg.forward_mode}' (nat or route)", "forward")
    if cfg.forward_dev is not None and not VALID_NAME.match(cfg.forward_dev):
        raise _bad(cfg, f"forward device '{cfg.forward_dev}' is not an interface name", "forward")
    macs: dict[str, str] = {}
    host_ips: set[object] = set()
    dhcp_v4 = 0
    seen_nets: list[Subnet] = []
    for ip in cfg.ips:
        address = _addr(cfg, ip.address, "address", "ip")
        limit = 32 if address.version == 4 else 128
        if not 0 < ip.prefix <= limit:
            raise _bad(cfg, f"prefix {ip.prefix} of {ip.address} is out of range", "ip")
        iface = ipaddress.ip_interface(f"{ip.address}/{ip.prefix}")
        net = iface.network
        if any(net.overlaps(other) for other in seen_nets if other.version == net.version):
            raise _bad(cfg, f"subnet {net} overlaps another <ip> of the network", "ip")
        seen_nets.append(net)
        if address.version == 4 and ip.prefix < 31 and address in (net.network_address,
                                                                    net.broadcast_address):
            raise _bad(cfg, f"{ip.address} is the network or broadcast address of {net}", "ip")
        if ip.dhcp_ranges or ip.dhcp_hosts:
            if address.version == 4:
                dhcp_v4 += 1
                if dhcp_v4 > 1:
                    raise _bad(cfg, "DHCP is supported on one IPv4 <ip> of a network only", "dhcp")
        for r in ip.dhcp_ranges:
            start = _addr(cfg, r.start, "DHCP range start", "range")
            end = _addr(cfg, r.end, "DHCP range end", "range")
            shown = f"{r.start}-{r.end}"
            if start not in net or end not in net:
                raise _bad(cfg, f"DHCP range {shown} is not entirely within subnet {net}", "range")
            if int(start) > int(end):
                raise _bad(cfg, f"DHCP range {shown} ends before it starts", "range")
            if address.version == 4 and ip.prefix < 31 and (
                    start == net.network_address or end == net.broadcast_address):
                raise _bad(cfg, f"DHCP range {shown} includes the network or broadcast "
                           f"address of {net}", "range")
        for h in ip.dhcp_hosts:
            if h.mac is None and h.name is None:
                raise _bad(cfg, f"static DHCP host {h.ip or ''} needs a mac or a name", "host")
            if h.ip is not None:
                hip = _addr(cfg, h.ip, "static host address", "host")
                if hip not in net:
                    raise _bad(cfg, f"static DHCP host {h.mac or h.name} has address {h.ip} "
                               f"outside subnet {net}", "host")
                if hip in host_ips:
                    raise _bad(cfg, f"address {h.ip} is given to two static DHCP hosts", "host")
                host_ips.add(hip)
            if h.mac is not None:
                mac = h.mac.lower()
                if mac in macs:
                    raise _bad(cfg, f"MAC address {h.mac} is given to two static DHCP hosts "
                               f"({macs[mac]} and {h.ip or h.name})", "host")
                macs[mac] = h.ip or h.name or ""
    for dns in cfg.dns_hosts:
        _addr(cfg, dns.ip, "DNS host address", "dns")
    if cfg.nat_port_start is not None and cfg.nat_port_end is not None:
        if not 0 < cfg.nat_port_start <= cfg.nat_port_end <= 65535:
            raise _bad(cfg, f"NAT port range {cfg.nat_port_start}-{cfg.nat_port_end} is invalid",
                       "port")
    if cfg.nat_address_start is not None:
        a = _addr(cfg, cfg.nat_address_start, "NAT address range start", "address")
        b = _addr(cfg, cfg.nat_address_end or cfg.nat_address_start, "NAT address range end",
                  "address")
        if a.version != 4 or b.version != 4 or int(a) > int(b):
            raise _bad(cfg, f"NAT address range {cfg.nat_address_start}-{cfg.nat_address_end} "
                       "is invalid", "address")


def _routes(ipr: Any) -> Iterable[tuple[Subnet, str]]:
    names = {int(link["index"]): str(link.get_attr("IFLA_IFNAME")) for link in ipr.link("dump")}
    for family in (2, 10):  # AF_INET, AF_INET6
        for r in ipr.route("dump", family=family):
            if r["table"] == _LOCAL_TABLE or r.get_attr("RTA_TABLE") == _LOCAL_TABLE:
                continue
            if r["dst_len"] == 0:
                continue  # a default route overlaps everything and means nothing here
            dst = r.get_attr("RTA_DST")
            if dst is None:
                continue
            try:
                net = ipaddress.ip_network(f"{dst}/{r['dst_len']}", strict=False)
            except ValueError:
                continue
            oif = r.get_attr("RTA_OIF")
            yield net, (f"route to {net} on {names.get(oif, '?')}" if oif is not None
                        else f"route to {net}")
        for a in ipr.addr("dump", family=family):
            addr = a.get_attr("IFA_ADDRESS")
            if addr is None:
                continue
            net = ipaddress.ip_network(f"{addr}/{a['prefixlen']}", strict=False)
            yield net, f"address {addr}/{a['prefixlen']} of {names.get(a['index'], '?')}"


def route_overlap(nets: Iterable[Subnet]) -> str | None:
    """What in the namespace (a route or an address) overlaps one of ``nets``, or None."""
    wanted = [n for n in nets]
    if not wanted:
        return None
    with netlink.session() as ipr:
        for net, what in _routes(ipr):
            if net.is_loopback or net.is_link_local:
                continue
            for w in wanted:
                if w.version == net.version and w.overlaps(net):
                    return f"subnet {w} overlaps the {what}"
    return None


def check_host(cfg: NetworkConfig, bridge: str) -> None:
    """Refuse to start ``cfg`` on ``bridge`` when the host is in the way (module docstring)."""
    with netlink.session() as ipr:
        if netlink.link_index(ipr, bridge) is not None:
            raise OperationFailedError(
                f"cannot start network '{cfg.name}': bridge name '{bridge}' is already in use "
                "by another interface", domain=ErrorDomain.NETWORK)
    clash = route_overlap(subnets(cfg))
    if clash is not None:
        raise OperationFailedError(f"cannot start network '{cfg.name}': {clash}",
                                   domain=ErrorDomain.NETWORK)
