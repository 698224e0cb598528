"""Kernel switches a virtual network needs: IP forwarding.

``/proc/sys/net`` is per network namespace (the namespace of the thread that
opens the file), so these act on the namespace the daemon runs in. As
libvirt does, forwarding is switched on when a NAT or routed network starts
and never switched back off (other users may rely on it by then).
"""

from __future__ import annotations

from virtkit.errors import ErrorDomain, VirtSystemError

__all__ = ["read", "write", "enable_forwarding"]

_ROOT = "/proc/sys/"


def read(key: str) -> str:
    """The value of sysctl ``key`` (``net/ipv4/ip_forward``), stripped."""
    with open(_ROOT + key, encoding="ascii") as f:
        return f.read().strip()


def write(key: str, value: str) -> None:
    """Set sysctl ``key``; VirtSystemError naming it on failure."""
    try:
        with open(_ROOT + key, "w", encoding="ascii") as f:
            f.write(value)
    except OSError as e:
        raise VirtSystemError(f"cannot set {key.replace('/', '.')} to {value}: {e.strerror}",
                              errno=e.errno, domain=ErrorDomain.NETWORK) from None


def enable_forwarding(*, ipv4: bool = True, ipv6: bool = False) -> None:
    """Switch IPv4 (and IPv6) forwarding on, writing only what is off."""
    keys = (["net/ipv4/ip_forward"] if ipv4 else []) + (
        ["net/ipv6/conf/all/forwarding"] if ipv6 else [])
    for key in keys:
        try:
            current = read(key)
        except OSError:
            current = ""
        if current != "1":
            write(key, "1")
