"""Linux bridges for virtual networks, through rtnetlink (pyroute2).

A network's bridge is created in one go by :func:`create_bridge`: the link
(kind ``bridge``, its forward delay and STP state, its MAC address), an alias
that marks it as ours (``virtkit:<uuid>``, see :func:`owner_alias`), its
addresses, then up. Any failure removes what was made, so a failed create
leaves nothing. :func:`delete_bridge` removes it (and, with it, its
addresses and the routes to them).

Forward delay: the XML gives seconds, the kernel keeps centiseconds. With STP
on, the kernel raises a delay below 2 s to 2 s when it starts STP (its
minimum); :func:`bridge_info` reports what the kernel holds.

The alias is how a restarted daemon tells its own bridges from others of the
same name (:func:`is_ours`): cleaning up after a crash never deletes a bridge
someone else created meanwhile.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from virtkit.errors import ErrorDomain, OperationFailedError
from virtkit.net import netlink

__all__ = [
    "BridgeInfo",
    "BRIDGE_PREFIX",
    "VALID_NAME",
    "owner_alias",
    "create_bridge",
    "delete_bridge",
    "bridge_info",
    "is_ours",
    "link_exists",
    "free_bridge_name",
]

#: Names chosen for networks whose XML names no bridge: virbr0, virbr1...
BRIDGE_PREFIX = "virbr"
#: What a bridge name may be: 1-15 characters (IFNAMSIZ), letters, digits,
#: ``_ . -`` (safe in nftables identifiers and dnsmasq's configuration).
VALID_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")
_ALIAS_PREFIX = "virtkit:"


@dataclass(frozen=True)
class BridgeInfo:
    """What the kernel reports of a bridge."""

    name: str
    index: int
    mac: str
    stp: bool
    #: Forward delay, centiseconds.
    forward_delay: int
    up: bool
    alias: str | None
    #: ``(address, prefix length)`` pairs.
    addresses: tuple[tuple[str, int], ...]


def owner_alias(uuid_hex: str) -> str:
    """The alias marking a bridge as the one of network ``uuid_hex``."""
    return _ALIAS_PREFIX + uuid_hex


def link_exists(name: str) -> bool:
    """True when any link (bridge or not) is called ``name``."""
    with netlink.session() as ipr:
        return netlink.link_index(ipr, name) is not None


def free_bridge_name(taken: Iterable[str] = (), prefix: str = BRIDGE_PREFIX) -> str:
    """The lowest ``virbrN`` that is neither a link nor in ``taken``."""
    with netlink.session() as ipr:
        used = netlink.link_names(ipr) | set(taken)
    n = 0
    while f"{prefix}{n}" in used:
        n += 1
    return f"{prefix}{n}"


def create_bridge(name: str, *, alias: str, stp: bool = True, delay: int = 0,
                  mac: str | None = None, addresses: Sequence[tuple[str, int]] = (),
                  up: bool = True) -> int:
    """Create bridge ``name`` with its addresses and bring it up; return its index.

    ``delay`` is the forward delay in seconds. Raises OperationFailedError
    when the name is taken and VirtSystemError when a netlink call fails; in
    both cases nothing is left behind.
    """
    with netlink.session() as ipr:
        spec: dict[str, object] = {"ifname": name, "kind": "bridge",
                                   "br_forward_delay": max(0, delay) * 100,
                                   "br_stp_state": 1 if stp else 0}
        if mac is not None:
            spec["address"] = mac
        try:
            ipr.link("add", **spec)
        except Exception as exc:  # noqa: BLE001 - NetlinkError
            if netlink.is_errno(exc, errno.EEXIST):
                raise OperationFailedError(
                    f"bridge name '{name}' is already in use by another interface",
                    domain=ErrorDomain.NETWORK) from None
            raise netlink.system_error(f"create bridge '{name}'", exc) from None
        index = netlink.link_index(ipr, name)
        try:
            if index is None:
                raise OSError(errno.ENODEV, "vanished after creation")
            step = "mark it as ours"
            ipr.link("set", index=index, ifalias=alias)
            for address, prefix in addresses:
                step = f"add address {address}/{prefix}"
                ipr.addr("add", index=index, address=address, prefixlen=prefix)
            if up:
                step = "bring it up"
                ipr.link("set", index=index, state="up")
        except Exception as exc:  # noqa: BLE001
            _delete(ipr, name)
            raise netlink.system_error(f"set up bridge '{name}' ({step})", exc) from None
        return index


def _delete(ipr: object, name: str) -> bool:
    index = netlink.link_index(ipr, name)
    if index is None:
        return False
    try:
        ipr.link("del", index=index)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001
        if netlink.is_errno(exc, errno.ENODEV):
            return False
        raise netlink.system_error(f"delete bridge '{name}'", exc) from None
    return True


def delete_bridge(name: str) -> bool:
    """Delete link ``name``; False when there was none. VirtSystemError on failure."""
    with netlink.session() as ipr:
        return _delete(ipr, name)


def bridge_info(name: str) -> BridgeInfo | None:
    """The kernel's view of bridge ``name``, or None when no bridge has that name."""
    with netlink.session() as ipr:
        index = netlink.link_index(ipr, name)
        if index is None:
            return None
        link = ipr.link("get", index=index)[0]
        info = link.get_attr("IFLA_LINKINFO")
        if info is None or info.get_attr("IFLA_INFO_KIND") != "bridge":
            return None
        data = info.get_attr("IFLA_INFO_DATA")
        addrs = tuple((str(a.get_attr("IFA_ADDRESS")), int(a["prefixlen"]))
                      for a in ipr.addr("dump", index=index))
        return BridgeInfo(
            name=name,
            index=index,
            mac=str(link.get_attr("IFLA_ADDRESS")),
            stp=bool(data.get_attr("IFLA_BR_STP_STATE")),
            forward_delay=int(data.get_attr("IFLA_BR_FORWARD_DELAY") or 0),
            up=bool(link["flags"] & 1),
            alias=link.get_attr("IFLA_IFALIAS"),
            addresses=addrs,
        )


def is_ours(name: str, alias: str) -> bool:
    """True when bridge ``name`` exists and carries ``alias`` (see :func:`owner_alias`)."""
    info = bridge_info(name)
    return info is not None and info.alias == alias
