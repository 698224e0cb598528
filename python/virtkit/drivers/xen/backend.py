"""What every Xen backend is: one way of reaching Xen, serving some contract operations.

:class:`~virtkit.drivers.xen.driver.XenDriver` routes each operation to the
first backend of its chain that has it (libvirt's ``xen_unified`` did the same
with its sub-drivers). A backend defines contract operations under their
contract names and signatures. Backends that know the *running* domains only
(xenstore, the hypervisor) say so with :attr:`XenBackend.live_only`; the driver
then routes past them for inactive domains, tries the next backend when their
look-ups find nothing, and never asks them for the list of all domains.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["XenBackend", "MAX_VCPUS"]

#: vCPUs per guest (Xen 3's MAX_VIRT_CPUS, what libvirt reported).
MAX_VCPUS = 32


class XenBackend:
    """One way of reaching Xen (see the module docstring)."""

    #: Name for messages (``xend``, ``hypervisor``, ``xenstore``, ``xl``).
    name: ClassVar[str] = "abstract"
    #: True for a backend that knows running domains only (see the module docstring).
    live_only: ClassVar[bool] = False

    def close(self) -> None:
        """Release what the backend holds. Called once."""
