"""Networks for a driver: the contract's network operations, forwarded to a NetworkManager.

A hypervisor driver that serves real networks (the QEMU driver behind
``virtkitd``) inherits :class:`NetworkBackend` before its own base and opens
a :class:`~virtkit.net.manager.NetworkManager` into :attr:`NetworkBackend.networks`::

    class QemuDriver(NetworkBackend, Driver):
        fast_operations = frozenset({...}) | NETWORK_FAST_OPERATIONS

        @classmethod
        def open_with_paths(cls, uri, config_dir, state_dir, runtime_dir, *, read_only):
            drv = cls(uri, read_only)
            drv.networks = NetworkManager.open(
                Path(config_dir) / "network", Path(runtime_dir) / "network",
                system=uri.path == "/system")   # adopts, defines 'default', autostarts
            ...                                 # then the domains (autostart after networks)

        def close(self):
            ...
            self.networks.close()               # networks stay up for the next daemon

When a guest starts, the driver asks for a tap per interface on a network
(``self.networks.create_tap(source_network, owner_uid=uid, mac=mac)``) and
removes it when the guest stops (``self.networks.delete_tap(tap.name)``).

Each method below has the contract's name and signature and returns what the
manager returns; :meth:`Driver.supported_operations` therefore counts every
network operation as implemented. The manager works in the network
namespace of the daemon's process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtkit.drivers.interface import Driver, NetworkRef

if TYPE_CHECKING:
    from virtkit.net.manager import NetworkManager
    from virtkit.network import DHCPLease
    from virtkit.xml.network import NetworkConfig

__all__ = ["NetworkBackend", "NETWORK_OPERATIONS", "NETWORK_FAST_OPERATIONS"]

#: Every contract operation the mixin forwards.
NETWORK_OPERATIONS = frozenset({
    "list_network_names", "list_defined_network_names", "lookup_network_by_name",
    "lookup_network_by_uuid", "create_network", "define_network", "network_is_active",
    "network_is_persistent", "network_get_config", "network_get_bridge_name", "network_start",
    "network_destroy", "network_undefine", "network_get_autostart", "network_set_autostart",
    "network_get_dhcp_leases",
})

#: The ones that only read the manager's tables under a short lock: safe on a
#: daemon's event-loop thread (see :attr:`Driver.fast_operations`).
NETWORK_FAST_OPERATIONS = frozenset({
    "list_network_names", "list_defined_network_names", "lookup_network_by_name",
    "lookup_network_by_uuid", "network_is_active", "network_is_persistent",
    "network_get_config", "network_get_bridge_name", "network_get_autostart",
})


class NetworkBackend(Driver):
    """Mixin: the contract's network operations, served by :attr:`networks`."""

    #: Set by the driver when it opens (see the module docstring).
    networks: NetworkManager

    def list_network_names(self) -> list[str]:
        return self.networks.list_network_names()

    def list_defined_network_names(self) -> list[str]:
        return self.networks.list_defined_network_names()

    def lookup_network_by_name(self, name: str) -> NetworkRef:
        return self.networks.lookup_network_by_name(name)

    def lookup_network_by_uuid(self, uuid: bytes) -> NetworkRef:
        return self.networks.lookup_network_by_uuid(uuid)

    def create_network(self, config: NetworkConfig) -> NetworkRef:
        return self.networks.create_network(config)

    def define_network(self, config: NetworkConfig) -> NetworkRef:
        return self.networks.define_network(config)

    def network_is_active(self, net: NetworkRef) -> bool:
        return self.networks.network_is_active(net)

    def network_is_persistent(self, net: NetworkRef) -> bool:
        return self.networks.network_is_persistent(net)

    def network_get_config(self, net: NetworkRef, inactive: bool) -> NetworkConfig:
        return self.networks.network_get_config(net, inactive)

    def network_get_bridge_name(self, net: NetworkRef) -> str:
        return self.networks.network_get_bridge_name(net)

    def network_start(self, net: NetworkRef) -> None:
        self.networks.network_start(net)

    def network_destroy(self, net: NetworkRef) -> None:
        self.networks.network_destroy(net)

    def network_undefine(self, net: NetworkRef) -> None:
        self.networks.network_undefine(net)

    def network_get_autostart(self, net: NetworkRef) -> bool:
        return self.networks.network_get_autostart(net)

    def network_set_autostart(self, net: NetworkRef, autostart: bool) -> None:
        self.networks.network_set_autostart(net, autostart)

    def network_get_dhcp_leases(self, net: NetworkRef, mac: str | None) -> list[DHCPLease]:
        return self.networks.network_get_dhcp_leases(net, mac)
