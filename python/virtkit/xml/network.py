"""Network XML: the typed model (and, below it, parsing and formatting).

Covers libvirt 0.2.2's network format and what today's libvirt writes for
the same features. Frozen dataclasses; sequences are tuples; UUIDs are 16 raw
bytes. Unmodelled elements are kept verbatim in ``extra``.
"""

from __future__ import annotations

from dataclasses import dataclass


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
