"""Tap devices for guests: persistent, owned by the guest's user, plugged into a bridge.

The QEMU backend asks for one tap per ``<interface type='network'|'bridge'>``
when a guest starts and removes it when the guest stops::

    tap = create_tap("virbr0", owner_uid=uid, owner_gid=gid, mac="52:54:00:12:34:56")
    ...                       # QEMU: -netdev tap,ifname=<tap.name>,script=no,downscript=no
    delete_tap(tap.name, mac=tap.mac)  # or -netdev tap,fd=N with N = open_tap(tap.name)

How: pyroute2 creates the tap (``kind='tuntap'``), which it does with the
``TUNSETIFF`` / ``TUNSETOWNER`` / ``TUNSETGROUP`` / ``TUNSETPERSIST`` ioctls on
``/dev/net/tun`` (rtnetlink cannot create taps); pyroute2 sets the owner
itself, so no ioctl of ours is needed for that. The tap is created with
``IFF_NO_PI | IFF_VNET_HDR``, then over rtnetlink given its MAC, enslaved to
the bridge and brought up. Because it is persistent and owned by
``owner_uid``, an unprivileged QEMU of that user may open it by name.

MAC: as libvirt does, the tap's own address is the guest's with the first
byte set to ``fe``: the bridge takes the lowest MAC of its ports as its own
when it has none fixed, and ``fe`` keeps a tap from ever being that lowest.

:func:`open_tap` opens a queue of an existing tap (root, or its owner), for a
caller that passes QEMU a descriptor (``-netdev tap,fd=N``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
from dataclasses import dataclass

from virtkit.errors import ErrorDomain, InvalidArgumentError, OperationFailedError
from virtkit.net import netlink

__all__ = ["Tap", "TAP_PREFIX", "create_tap", "delete_tap", "open_tap", "tap_mac"]

#: Names chosen when the caller gives none: vnet0, vnet1...
TAP_PREFIX = "vnet"

_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_IFF_VNET_HDR = 0x4000
_TUNSETIFF = 0x400454CA
_IFNAMSIZ = 16

# Picking the lowest free vnetN and creating it must not interleave between threads.
_name_lock = threading.Lock()


@dataclass(frozen=True)
class Tap:
    """A tap device made by :func:`create_tap`."""

    name: str
    index: int
    #: The bridge it is plugged into (None: none, an ``ethernet`` interface's tap).
    bridge: str | None
    #: The tap's own MAC (``fe:`` + the guest's last five bytes), or None when
    #: no guest MAC was given (the kernel's random one).
    mac: str | None
    owner_uid: int
    owner_gid: int | None


def tap_mac(guest_mac: str) -> str:
    """The tap's MAC for a guest MAC: the first byte replaced by ``fe``."""
    parts = guest_mac.lower().split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise InvalidArgumentError(f"'{guest_mac}' is not a MAC address")
    return ":".join(["fe", *parts[1:]])


def create_tap(bridge: str | None, name: str | None = None, *, owner_uid: int,
               owner_gid: int | None = None, mac: str | None = None) -> Tap:
    """Create a persistent tap owned by ``owner_uid``, plug it into ``bridge`` (unless
    None: a tap on no bridge, for an ``ethernet`` interface), bring it up.

    ``name`` defaults to the lowest free ``vnetN``; ``mac`` is the guest's
    MAC (see the module docstring for the tap's own). Raises
    OperationFailedError when the bridge does not exist or ``name`` is taken,
    VirtSystemError when a step fails; a failed call leaves no tap behind.
    """
    own_mac = tap_mac(mac) if mac is not None else None
    with netlink.session() as ipr:
        master = netlink.link_index(ipr, bridge) if bridge is not None else None
        if bridge is not None and master is None:
            raise OperationFailedError(f"cannot plug a tap into bridge '{bridge}': no such device",
                                       domain=ErrorDomain.NETWORK)
        with _name_lock:
            chosen = name or _free_name(ipr)
            spec: dict[str, object] = {
                "ifname": chosen, "kind": "tuntap", "mode": "tap", "uid": owner_uid,
                "ifr": {"no_pi": True, "vnet_hdr": True, "one_queue": False,
                        "multi_queue": False},
            }
            if owner_gid is not None:
                spec["gid"] = owner_gid
            if netlink.link_index(ipr, chosen) is not None:
                raise OperationFailedError(f"cannot create tap '{chosen}': the name is taken",
                                           domain=ErrorDomain.NETWORK)
            try:
                ipr.link("add", **spec)
            except Exception as exc:  # noqa: BLE001 - OSError from the ioctls
                raise netlink.system_error(f"create tap '{chosen}'", exc) from None
        index = netlink.link_index(ipr, chosen)
        try:
            if index is None:
                raise OSError(errno.ENODEV, "vanished after creation")
            attrs: dict[str, object] = {"state": "up"}
            if master is not None:
                attrs["master"] = master
            if own_mac is not None:
                attrs["address"] = own_mac
            ipr.link("set", index=index, **attrs)
        except Exception as exc:  # noqa: BLE001
            _remove(ipr, chosen)
            where = f"plug tap '{chosen}' into bridge '{bridge}'" if bridge else f"set up tap '{chosen}'"
            raise netlink.system_error(where, exc) from None
        return Tap(name=chosen, index=index, bridge=bridge, mac=own_mac,
                   owner_uid=owner_uid, owner_gid=owner_gid)


def _free_name(ipr: object) -> str:
    used = netlink.link_names(ipr)
    n = 0
    while f"{TAP_PREFIX}{n}" in used:
        n += 1
    return f"{TAP_PREFIX}{n}"


def _remove(ipr: object, name: str) -> bool:
    index = netlink.link_index(ipr, name)
    if index is None:
        return False
    try:
        ipr.link("del", index=index)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001
        if netlink.is_errno(exc, errno.ENODEV):
            return False
        raise netlink.system_error(f"delete tap '{name}'", exc) from None
    return True


def delete_tap(name: str, *, mac: str | None = None) -> bool:
    """Delete tap ``name``; False when it did not exist. With ``mac`` (the tap's own
    address, see :func:`tap_mac`), only a link with that address is deleted: a
    name someone else took meanwhile is left alone (False). VirtSystemError on
    failure."""
    with netlink.session() as ipr:
        if mac is not None:
            index = netlink.link_index(ipr, name)
            if index is None:
                return False
            link = ipr.link("get", index=index)[0]
            if str(link.get_attr("IFLA_ADDRESS")).lower() != mac.lower():
                return False
        return _remove(ipr, name)


def open_tap(name: str, *, vnet_hdr: bool = True) -> int:
    """Open a queue of the existing tap ``name``; return the descriptor (close-on-exec).

    The caller owns the descriptor (e.g. passes it to QEMU and closes its
    copy). Raises VirtSystemError when the tap cannot be opened.
    """
    if len(name.encode()) >= _IFNAMSIZ:
        raise InvalidArgumentError(f"tap name '{name}' is too long")
    flags = _IFF_TAP | _IFF_NO_PI | (_IFF_VNET_HDR if vnet_hdr else 0)
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise netlink.system_error("open /dev/net/tun", exc) from None
    try:
        fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    except OSError as exc:
        os.close(fd)
        raise netlink.system_error(f"attach to tap '{name}'", exc) from None
    return fd
