"""MAC addresses for QEMU guests.

QEMU's own block is ``52:54:00:xx:xx:xx`` (locally administered, unicast), the
prefix libvirt uses too. A domain's interfaces get their MAC once, when the
domain is defined, and keep it in the saved configuration: the guest's network
set-up (udev names, DHCP leases) depends on it staying the same.
"""

from __future__ import annotations

import dataclasses
import secrets

from virtkit.xml.domain import DomainConfig

__all__ = ["QEMU_MAC_PREFIX", "generate_mac", "fill_missing_macs"]

#: The first three octets of every generated address.
QEMU_MAC_PREFIX = "52:54:00"


def generate_mac(taken: frozenset[str] | set[str] = frozenset()) -> str:
    """A random ``52:54:00:xx:xx:xx`` address (lower case) not in ``taken``.

    ``taken`` is compared case-insensitively. Randomness comes from the OS
    (:mod:`secrets`), so two daemons on one LAN are unlikely to collide.
    """
    used = {m.lower() for m in taken}
    while True:
        tail = secrets.token_bytes(3)
        mac = QEMU_MAC_PREFIX + "".join(f":{b:02x}" for b in tail)
        if mac not in used:
            return mac


def fill_missing_macs(config: DomainConfig) -> DomainConfig:
    """``config`` with a generated MAC on every interface that has none.

    Returns ``config`` itself when nothing is missing; otherwise a new
    config (the model is frozen). New addresses differ from every address
    already in the config.
    """
    if all(iface.mac is not None for iface in config.interfaces):
        return config
    taken = {iface.mac.lower() for iface in config.interfaces if iface.mac is not None}
    interfaces = []
    for iface in config.interfaces:
        if iface.mac is None:
            mac = generate_mac(taken)
            taken.add(mac)
            iface = dataclasses.replace(iface, mac=mac)
        interfaces.append(iface)
    return dataclasses.replace(config, interfaces=tuple(interfaces))
