"""Driver registry: which driver handles which URI.

- a URI with a transport (``test+unix:///default?socket=PATH``,
  ``qemu+unix:///session``, any driver name) goes to the remote driver, which
  talks to a daemon (virtkitd or libvirtd) over that transport;
- ``qemu:///session`` and ``qemu:///system`` go to the remote driver too: the
  QEMU driver lives in ``virtkitd`` and the library is its client (the
  session daemon is started on first connect);
- other URIs go to the in-process driver registered for their name
  (``test:///...``: the test driver).

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

#: The driver of every URI with a transport, and of the daemon-served names below.
REMOTE_DRIVER = "virtkit.drivers.remote.driver:RemoteDriver"

#: URI driver name -> "module:Class". Later drivers add themselves here.
_LOCAL_DRIVERS: dict[str, str] = {
    "test": "virtkit.drivers.test:TestDriver",
    "qemu": REMOTE_DRIVER,  # served by virtkitd
    "xen": "virtkit.drivers.xen:XenDriver",  # xend, in process
}


def register_driver(scheme: str, target: str) -> None:
    """Make ``scheme://`` URIs open with the driver at ``module:Class``."""
    _LOCAL_DRIVERS[scheme] = target


def driver_class(uri: URI) -> type[Driver]:
    """The driver class for ``uri``; ConnectionFailedError when none handles it."""
    target = REMOTE_DRIVER if uri.transport else _LOCAL_DRIVERS.get(uri.driver)
    if target is None:
        known = ", ".join([f"{s}://" for s in sorted(_LOCAL_DRIVERS)] + ["DRIVER+unix://"])
        raise ConnectionFailedError(
            f"no connection driver available for {uri.raw!r} (available: {known})")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
