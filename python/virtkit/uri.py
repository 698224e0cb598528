"""Connection URIs, in libvirt's grammar.

    driver[+transport]://[user@][host][:port]/[path][?param=value&...]

Examples: ``test:///default``, ``test:///abs/path/node.xml``,
``qemu:///session``, ``qemu:///system``,
``qemu+unix:///session?socket=/run/user/1000/virtkit/virtkit-sock``,
``xen:///``, ``xen:///?socket=/var/lib/xend/xend-socket``,
``xen://host:8000/`` (xend over TCP). libvirt's old bare names
``xen``/``Xen`` mean ``xen:///``.

A malformed URI raises :class:`virtkit.errors.InvalidURIError` saying what
is wrong; which driver handles a well-formed one is decided in
:mod:`virtkit.drivers`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from virtkit.errors import InvalidURIError

__all__ = ["URI", "parse_uri", "default_uri"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9.-]*(\+[A-Za-z][A-Za-z0-9.-]*)?$")
#: libvirt's legacy bare connection names.
_ALIASES = {"xen": "xen:///", "Xen": "xen:///"}


@dataclass(frozen=True)
class URI:
    """A parsed connection URI. ``params`` keeps the query's pairs in order."""

    raw: str
    driver: str
    transport: str | None = None
    user: str | None = None
    host: str | None = None
    port: int | None = None
    path: str = ""
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name``, or ``default``."""
        for key, value in reversed(self.params):
            if key == name:
                return value
        return default

    @property
    def is_local(self) -> bool:
        """True when the URI names this host (no host part, no network transport)."""
        return not self.host and self.transport in (None, "unix")

    def __str__(self) -> str:
        return self.raw


def parse_uri(text: str) -> URI:
    """Parse ``text`` into a :class:`URI`; raise InvalidURIError when malformed."""
    if not isinstance(text, str):
        raise InvalidURIError(f"a connection URI must be a string, not {type(text).__name__}")
    raw = text
    text = _ALIASES.get(text.strip(), text.strip())
    if not text:
        raise InvalidURIError("empty connection URI")
    if "://" not in text:
        raise InvalidURIError(
            f"malformed connection URI {raw!r}: expected driver[+transport]://[host]/[path], "
            "e.g. test:///default or qemu:///system")
    scheme, _, _ = text.partition("://")
    if not _SCHEME.match(scheme):
        raise InvalidURIError(f"malformed connection URI {raw!r}: bad scheme {scheme!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as e:
        raise InvalidURIError(f"malformed connection URI {raw!r}: {e}") from None
    if parts.fragment:
        raise InvalidURIError(f"malformed connection URI {raw!r}: fragments are not allowed")
    driver, _, transport = scheme.partition("+")
    try:
        params = tuple(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError:
        raise InvalidURIError(f"malformed connection URI {raw!r}: bad query {parts.query!r}") from None
    return URI(
        raw=raw,
        driver=driver.lower(),
        transport=transport.lower() or None,
        user=unquote(parts.username) if parts.username else None,
        host=parts.hostname or None,
        port=port,
        path=unquote(parts.path),
        params=params,
    )


def default_uri() -> str:
    """The URI used when none is given: ``VIRTKIT_DEFAULT_URI``, then
    ``LIBVIRT_DEFAULT_URI``, then the best local driver (``test:///default``)."""
    for var in ("VIRTKIT_DEFAULT_URI", "LIBVIRT_DEFAULT_URI"):
        value = os.environ.get(var)
        if value:
            return value
    return "test:///default"
