"""Network XML: the typed model (and, below it, parsing and formatting).

Covers libvirt 0.2.2's network format and what today's libvirt writes for
the same features. Frozen dataclasses; sequences are tuples; UUIDs are 16 raw
bytes. Unmodelled elements are kept verbatim in ``extra``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from virtkit.errors import InvalidUUIDError
from virtkit.uuid import format_uuid, parse_uuid
from virtkit.xml import _document


@dataclass(frozen=True)
class DHCPRange:
    """``<range start end/>``."""

    start: str
    end: str


@dataclass(frozen=True)
class DHCPHost:
    """``<host mac name ip/>``: a static lease."""

    mac: str | None = None
    name: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class IPConfig:
    """``<ip address netmask|prefix>`` with its optional ``<dhcp>``."""

    address: str
    #: Prefix length; ``netmask`` in the document is converted to it.
    prefix: int = 24
    family: str | None = None
    dhcp_ranges: tuple[DHCPRange, ...] = ()
    dhcp_hosts: tuple[DHCPHost, ...] = ()

    @property
    def netmask(self) -> str:
        """The dotted netmask of an IPv4 prefix."""
        bits = (0xFFFFFFFF << (32 - self.prefix)) & 0xFFFFFFFF if self.prefix else 0
        return ".".join(str(bits >> s & 0xFF) for s in (24, 16, 8, 0))


@dataclass(frozen=True)
class DNSHost:
    """``<dns><host ip><hostname>...</hostname></host></dns>``."""

    ip: str
    hostnames: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkConfig:
    """A whole ``<network>`` document."""

    name: str
    uuid: bytes | None = None
    #: ``<bridge name stp delay>``; None name means "pick a free virbrN".
    bridge: str | None = None
    stp: bool | None = None
    delay: int | None = None
    #: ``<mac address>`` of the bridge.
    mac: str | None = None
    #: None (isolated), ``nat`` or ``route``.
    forward_mode: str | None = None
    forward_dev: str | None = None
    #: ``<domain name>``: the DNS domain of the network's guests.
    domain_name: str | None = None
    ips: tuple[IPConfig, ...] = ()
    dns_hosts: tuple[DNSHost, ...] = ()
    #: Unmodelled child elements of ``<network>``, verbatim.
    extra: tuple[str, ...] = ()
    #: ``<forward mode='nat'><nat><port start end/></nat>``: the range of
    #: source ports NAT may use (today's libvirt).
    nat_port_start: int | None = None
    nat_port_end: int | None = None
    #: ``<nat><address start end/>``: the range of public addresses NAT may use.
    nat_address_start: str | None = None
    nat_address_end: str | None = None
    #: ``<domain localOnly='yes|no'>`` (today's libvirt): names under the domain are
    #: answered by the network's DNS server only, never forwarded upstream.
    domain_local_only: bool | None = None


# ======================================================================
# Parsing and formatting
# ======================================================================

__all__ = ["DHCPRange", "DHCPHost", "IPConfig", "DNSHost", "NetworkConfig", "parse_network", "format_network"]

_KIND = "network"
_MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\Z")


def parse_network(text: str | bytes) -> NetworkConfig:
    """Parse a ``<network>`` document (libvirt 0.2.2's network format, or today's).

    Validated against ``schemas/network.rng`` first. ``<forward/>`` without a
    mode means NAT; ``<ip netmask>`` becomes a prefix length; the forward
    device may be given as ``<forward dev>`` or ``<forward><interface dev>``;
    the ``connections`` attribute of a running network is run-time state and
    is not kept. Unmodelled children of ``<network>`` are kept verbatim in
    ``extra``.

    Raises :class:`virtkit.errors.XMLError` for malformed XML or values the
    model cannot hold (a non-contiguous netmask, a bad UUID) and
    :class:`virtkit.errors.XMLSchemaError` for a document the schema refuses.
    """
    return _network(_document.read_document(text, _KIND))


def format_network(cfg: NetworkConfig) -> str:
    """The canonical XML of ``cfg`` (libvirt's layout; IPv4 masks written as ``netmask``).

    ``parse_network(format_network(cfg)) == cfg`` for every valid model.
    """
    out: list[str] = []
    _write_network(out, cfg, "")
    out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------ reading

_new_network = _document.constructor(NetworkConfig)
_new_ip = _document.constructor(IPConfig)


def _network(root: Any) -> NetworkConfig:
    f: dict[str, Any] = {}
    ips: list[IPConfig] = []
    extra: list[str] = []
    for child in root:
        tag = child.tag
        if tag == "name":
            if not child.text:
                raise _document.fail(_KIND, child, "the name must not be empty", schema_error=True)
            f["name"] = child.text
        elif tag == "uuid":
            try:
                f["uuid"] = parse_uuid(child.text or "")
            except InvalidUUIDError as e:
                raise _document.fail(_KIND, child, str(e), schema_error=True) from None
        elif tag == "bridge":
            f["bridge"] = child.get("name")
            stp = child.get("stp")
            if stp is not None:
                f["stp"] = stp == "on"
            delay = child.get("delay")
            if delay is not None:
                f["delay"] = int(delay)
        elif tag == "mac":
            f["mac"] = child.get("address")
        elif tag == "forward":
            f["forward_mode"] = child.get("mode") or "nat"
            dev = child.get("dev")
            for c in child:
                if c.tag == "interface":
                    if dev is None:
                        dev = c.get("dev")
                else:  # <nat>
                    for r in c:
                        if r.tag == "port":
                            f["nat_port_start"] = int(r.get("start"))
                            f["nat_port_end"] = int(r.get("end"))
                        else:
                            f["nat_address_start"] = r.get("start")
                            f["nat_address_end"] = r.get("end")
            f["forward_dev"] = dev
        elif tag == "domain":
            f["domain_name"] = child.get("name")
            local_only = child.get("localOnly")
            if local_only is not None:
                f["domain_local_only"] = local_only == "yes"
        elif tag == "dns":
            f["dns_hosts"] = tuple(
                DNSHost(h.get("ip"), tuple(n.text or "" for n in h)) for h in child
            )
        elif tag == "ip":
            ips.append(_ip(child))
        else:
            extra.append(_document.verbatim(child))
    f["ips"] = tuple(ips)
    if extra:
        f["extra"] = tuple(extra)
    return _new_network(**f)


def _ip(el: Any) -> IPConfig:
    address = el.get("address")
    family = el.get("family")
    v6 = family == "ipv6" or ":" in address
    if (family == "ipv4" and v6) or (family == "ipv6" and ":" not in address):
        raise _document.fail(_KIND, el, f"address {address!r} is not of family {family}", schema_error=True)
    netmask = el.get("netmask")
    prefix_attr = el.get("prefix")
    if netmask is not None:
        if v6:
            raise _document.fail(_KIND, el, "an IPv6 address takes a prefix, not a netmask", schema_error=True)
        prefix = _prefix_of(el, netmask)
    elif prefix_attr is not None:
        prefix = int(prefix_attr)
        if prefix > (128 if v6 else 32):
            raise _document.fail(_KIND, el, f"prefix {prefix} is too long", schema_error=True)
    else:
        prefix = 64 if v6 else 24
    ranges: list[DHCPRange] = []
    hosts: list[DHCPHost] = []
    for dhcp in el:
        for c in dhcp:
            if c.tag == "range":
                ranges.append(DHCPRange(c.get("start"), c.get("end")))
            else:
                mac = c.get("mac")
                if mac is not None and _MAC.match(mac) is None:
                    raise _document.fail(_KIND, c, f"{mac!r} is not a MAC address", schema_error=True)
                hosts.append(DHCPHost(mac, c.get("name"), c.get("ip")))
    return _new_ip(address=address, prefix=prefix, family=family,
                   dhcp_ranges=tuple(ranges), dhcp_hosts=tuple(hosts))


def _prefix_of(el: Any, netmask: str) -> int:
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        raise _document.fail(
            _KIND, el, f"{netmask!r} is not a netmask (contiguous one bits, then zeros)", schema_error=True
        ) from None


# ------------------------------------------------------------------ writing

_attrs = _document.attrs


def _write_network(out: list[str], cfg: NetworkConfig, ind: str) -> None:
    i1 = ind + "  "
    i2 = i1 + "  "
    i3 = i2 + "  "
    out.append(f"{ind}<network>")
    out.append(_document.leaf(i1, "name", cfg.name))
    if cfg.uuid is not None:
        out.append(f"{i1}<uuid>{format_uuid(cfg.uuid)}</uuid>")
    if cfg.forward_mode is not None:
        fwd = f"{i1}<forward{_attrs(('mode', cfg.forward_mode), ('dev', cfg.forward_dev))}"
        nat = []
        if cfg.nat_address_start is not None or cfg.nat_address_end is not None:
            nat.append(f"{i3}<address{_attrs(('start', cfg.nat_address_start), ('end', cfg.nat_address_end))}/>")
        if cfg.nat_port_start is not None or cfg.nat_port_end is not None:
            nat.append(f"{i3}<port{_attrs(('start', cfg.nat_port_start), ('end', cfg.nat_port_end))}/>")
        if nat:
            out.append(fwd + ">")
            out.append(f"{i2}<nat>")
            out.extend(nat)
            out.append(f"{i2}</nat>")
            out.append(f"{i1}</forward>")
        else:
            out.append(fwd + "/>")
    if cfg.bridge is not None or cfg.stp is not None or cfg.delay is not None:
        stp = None if cfg.stp is None else ("on" if cfg.stp else "off")
        out.append(f"{i1}<bridge{_attrs(('name', cfg.bridge), ('stp', stp), ('delay', cfg.delay))}/>")
    if cfg.mac is not None:
        out.append(f"{i1}<mac{_attrs(('address', cfg.mac))}/>")
    if cfg.domain_name is not None:
        local_only = None if cfg.domain_local_only is None else (
            "yes" if cfg.domain_local_only else "no")
        out.append(f"{i1}<domain{_attrs(('name', cfg.domain_name), ('localOnly', local_only))}/>")
    if cfg.dns_hosts:
        out.append(f"{i1}<dns>")
        for dns_host in cfg.dns_hosts:
            out.append(f"{i2}<host{_attrs(('ip', dns_host.ip))}>")
            for n in dns_host.hostnames:
                out.append(_document.leaf(i3, "hostname", n))
            out.append(f"{i2}</host>")
        out.append(f"{i1}</dns>")
    for ip in cfg.ips:
        v6 = ip.family == "ipv6" or ":" in ip.address
        mask = ("prefix", ip.prefix) if v6 else ("netmask", ip.netmask)
        head = f"{i1}<ip{_attrs(('family', ip.family), ('address', ip.address), mask)}"
        if ip.dhcp_ranges or ip.dhcp_hosts:
            out.append(head + ">")
            out.append(f"{i2}<dhcp>")
            for r in ip.dhcp_ranges:
                out.append(f"{i3}<range{_attrs(('start', r.start), ('end', r.end))}/>")
            for h in ip.dhcp_hosts:
                out.append(f"{i3}<host{_attrs(('mac', h.mac), ('name', h.name), ('ip', h.ip))}/>")
            out.append(f"{i2}</dhcp>")
            out.append(f"{i1}</ip>")
        else:
            out.append(head + "/>")
    for x in cfg.extra:
        out.append(i1 + x)
    out.append(f"{ind}</network>")
