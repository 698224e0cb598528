"""The QEMU/KVM driver's pure parts: command lines, capabilities, host facts.

Modules (import the one you need; this package imports nothing itself):

- :mod:`~virtkit.drivers.qemu.command`: a :class:`~virtkit.xml.domain.DomainConfig`
  to QEMU's argument list, plus the runtime context the daemon supplies.
- :mod:`~virtkit.drivers.qemu.mac`: MAC addresses in QEMU's ``52:54:00`` block.
- :mod:`~virtkit.drivers.qemu.kvm`: whether ``/dev/kvm`` can really run a guest.
- :mod:`~virtkit.drivers.qemu.capabilities`: the QEMU binaries on this host,
  their machine types and accelerators, as a capabilities document.
- :mod:`~virtkit.drivers.qemu.host`: node facts (memory, CPU topology).

- :mod:`~virtkit.drivers.qemu.driver`: :class:`QemuDriver`, the backend
  ``virtkitd --driver qemu`` serves: it starts and watches the QEMU processes,
  with :mod:`~virtkit.drivers.qemu.monitor` (QMP), :mod:`~virtkit.drivers.qemu.process`
  (spawning, pidfds) and :mod:`~virtkit.drivers.qemu.status` (files on disk).
- :mod:`~virtkit.drivers.qemu.networking`: guests' tap devices (``network``,
  ``bridge``, ``ethernet`` interfaces) and the networks of each kind of daemon.
"""
