"""Virtual networks, as the public API presents them."""

from __future__ import annotations

import re
from enum import IntEnum
from typing import TYPE_CHECKING, NamedTuple

from virtkit._handle import Handle

if TYPE_CHECKING:
    from virtkit.drivers.interface import NetworkRef

__all__ = ["Network", "DHCPLease", "IPAddrType"]

_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")


class IPAddrType(IntEnum):
    """libvirt's ``virIPAddrType``."""

    IPV4 = 0
    IPV6 = 1


class DHCPLease(NamedTuple):
    """One DHCP lease of a network: libvirt's ``virNetworkDHCPLease``."""

    #: The network's bridge, where the lease was handed out.
    iface: str
    #: Seconds since the epoch when it ends; 0 for a lease that never does.
    expiry_time: int
    type: IPAddrType
    #: The client's MAC (lower case); None for a DHCPv6 lease (see ``iaid``).
    mac: str | None
    #: DHCPv6 identity association id.
    iaid: str | None
    ipaddr: str
    #: Prefix length of the network's subnet.
    prefix: int
    hostname: str | None
    client_id: str | None


def normalize_mac(mac: str) -> str:
    """``mac`` in lower case; InvalidArgumentError unless it is six hex pairs with colons."""
    from virtkit.errors import InvalidArgumentError

    if not isinstance(mac, str) or _MAC.match(mac) is None:
        raise InvalidArgumentError(f"'{mac}' is not a MAC address (expected xx:xx:xx:xx:xx:xx)")
    return mac.lower()


class Network(Handle["NetworkRef"]):
    """A virtual network of a connection. Obtain it from the connection.
    Its connection, name, uuid and uuid_string come from :class:`Handle`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<virtkit.Network {self._ref.name!r}>"

    def _op(self, op: str, *args: object) -> object:
        return self._conn._call_on(op, self._ref, *args)

    def xml_desc(self, inactive: bool = False) -> str:
        """The network's XML (live, with the bridge actually used, unless ``inactive``)."""
        from virtkit.xml.network import format_network

        return format_network(self._op("network_get_config", bool(inactive)))  # type: ignore[arg-type]

    def bridge_name(self) -> str:
        """The bridge device the network uses."""
        return self._op("network_get_bridge_name")  # type: ignore[return-value]

    def is_active(self) -> bool:
        """True when the network is up."""
        return self._op("network_is_active")  # type: ignore[return-value]

    def is_persistent(self) -> bool:
        """True when the network is defined."""
        return self._op("network_is_persistent")  # type: ignore[return-value]

    def start(self) -> None:
        """Bring a defined network up (libvirt's ``virNetworkCreate``)."""
        self._op("network_start")

    create = start

    def destroy(self) -> None:
        """Take the network down; a transient network disappears."""
        self._op("network_destroy")

    def undefine(self) -> None:
        """Forget the definition; an active network stays up as transient."""
        self._op("network_undefine")

    @property
    def autostart(self) -> bool:
        """Whether the network starts with the host; assign to change it."""
        return self.get_autostart()

    @autostart.setter
    def autostart(self, value: bool) -> None:
        self.set_autostart(value)

    def get_autostart(self) -> bool:
        """Whether the network starts with the host."""
        return self._op("network_get_autostart")  # type: ignore[return-value]

    def set_autostart(self, autostart: bool) -> None:
        """Mark the (defined) network to start, or not, with the host."""
        self._op("network_set_autostart", bool(autostart))

    def dhcp_leases(self, mac: str | None = None) -> list[DHCPLease]:
        """The unexpired DHCP leases of the active network (libvirt's
        ``virNetworkGetDHCPLeases``, virsh's ``net-dhcp-leases``), only those of
        ``mac`` when given (any case). Raises InvalidArgumentError for a malformed
        MAC, OperationInvalidError when the network is not active."""
        from virtkit.errors import VirtError

        if mac is not None:
            try:
                mac = normalize_mac(mac)
            except VirtError as e:
                raise self._conn._fail(e) from None
        return self._op("network_get_dhcp_leases", mac)  # type: ignore[return-value]
