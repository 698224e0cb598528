"""The one place :mod:`pyroute2` is imported: rtnetlink sessions and their errors.

Everything in :mod:`virtkit.net` that talks to the kernel's routing netlink
(links, addresses, routes) opens a short :func:`session`: an ``IPRoute``
bound to the network namespace of the calling thread, closed on exit.
``IPRoute`` is not thread-safe, so sessions are never shared between
threads; opening one costs about a millisecond. pyroute2 itself takes
~0.2 s to import, so it is imported on first use, never by ``import virtkit``.

:func:`system_error` turns a ``NetlinkError`` (or ``OSError``) into a
:class:`~virtkit.errors.VirtSystemError` whose message says what was being
done, with the errno kept.
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from virtkit.errors import ErrorDomain, VirtSystemError

__all__ = ["session", "system_error", "is_errno", "link_index", "link_names"]


@contextmanager
def session() -> Iterator[Any]:
    """An rtnetlink session (pyroute2 ``IPRoute``) in the caller's network namespace."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    return getattr(exc, "errno", None)


def is_errno(exc: BaseException, *codes: int) -> bool:
    """True when ``exc`` (a NetlinkError or OSError) carries one of ``codes``."""
    return _code(exc) in codes


def system_error(what: str, exc: BaseException) -> VirtSystemError:
    """A VirtSystemError for a failed netlink or system call: ``cannot WHAT: REASON``."""
    code = _code(exc)
    reason = os.strerror(code) if code else str(exc)
    return VirtSystemError(f"cannot {what}: {reason}", errno=code, domain=ErrorDomain.NETWORK)


def link_index(ipr: Any, name: str) -> int | None:
    """The index of the link called ``name``, or None."""
    try:
        found = ipr.link_lookup(ifname=name)
    except Exception as exc:  # noqa: BLE001 - pyroute2 raises NetlinkError or OSError
        if is_errno(exc, _errno.ENODEV):
            return None
        raise
    return int(found[0]) if found else None


def link_names(ipr: Any) -> set[str]:
    """Names of every link in the namespace."""
    return {str(link.get_attr("IFLA_IFNAME")) for link in ipr.link("dump")}
