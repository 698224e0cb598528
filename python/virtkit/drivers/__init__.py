"""Driver registry: which driver handles which URI.

Drivers are imported only when a URI needs them, so ``import virtkit`` and a
CLI command stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from virtkit.errors import ConnectionFailedError

if TYPE_CHECKING:
    from virtkit.drivers.interface import Driver
    from virtkit.uri import URI

#: URI driver name -> "module:Class". Later drivers add themselves here.
_LOCAL_DRIVERS: dict[str, str] = {
    "test": "virtkit.drivers.test:TestDriver",
}


def register_driver(scheme: str, target: str) -> None:
    """Make ``scheme://`` URIs open with the driver at ``module:Class``."""
    _LOCAL_DRIVERS[scheme] = target


def driver_class(uri: URI) -> type[Driver]:
    """The driver class for ``uri``; ConnectionFailedError when none handles it."""
    target = _LOCAL_DRIVERS.get(uri.driver)
    if target is None:
        known = ", ".join(f"{s}://" for s in sorted(_LOCAL_DRIVERS))
        raise ConnectionFailedError(
            f"no connection driver available for {uri.raw!r} (available: {known})")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
