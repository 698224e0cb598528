"""``xen://``: Xen through xend, and Xen's native formats.

- :mod:`~virtkit.drivers.xen.sxpr`: xend's domain S-expressions ⇄ the domain
  model, in each ``xend_config_format`` (1-4);
- :mod:`~virtkit.drivers.xen.xm`: XM config files (``/etc/xen/NAME``) ⇄ the
  domain model, on top of :mod:`~virtkit.drivers.xen.conf` (libvirt's
  virConf: the Python subset those files use, comments kept on rewrite);
- :mod:`~virtkit.drivers.xen.spellings`: the device spellings both share and
  the one check of what Xen can express;
- :mod:`~virtkit.drivers.xen.xend`: the HTTP client of xend (UNIX socket or
  TCP, one request per call, xend's errors as virtkit errors);
- :mod:`~virtkit.drivers.xen.driver`: :class:`XenDriver`, the ``xen:///``
  connection (xend today; hypercalls, xenstore and ``xl`` slot in as further
  backends).

The driver is imported only when a ``xen://`` URI is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virtkit.drivers.xen.driver import XenDriver

__all__ = ["XenDriver"]


def __getattr__(name: str) -> object:
    if name == "XenDriver":
        from virtkit.drivers.xen.driver import XenDriver

        return XenDriver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
