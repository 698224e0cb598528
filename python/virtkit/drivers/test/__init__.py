"""``test://``: the built-in hypervisor, held in memory.

``test:///default`` is a node with fixed facts, shared by every connection
to it in one process (the same facts libvirt's test driver shows, so output
can be compared side by side):

- node: CPU model ``i686``, 16 CPUs at 1400 MHz, 2 NUMA cells, 2 sockets per
  cell, 2 cores per socket, 2 threads per core, 3145728 KiB (3 GiB) of memory;
  at most 32 vCPUs per guest; hypervisor ``Test`` version 0.0.2;
- one running, persistent domain ``test`` (id 1, UUID
  6695eb01-f6a4-8304-79aa-97f2502e193f, 2 vCPUs, 8 GiB maximum and 2 GiB
  current memory, a virtio disk and a NIC on network ``default``);
- one active, persistent network ``default`` (NAT, bridge ``virbr0``,
  192.168.122.1/24, DHCP .2 to .254).

``test:///ABSOLUTE/PATH.xml`` loads a node file (libvirt's format, see
:mod:`virtkit.xml.node`); each open gets its own copy of that state, and its
domains start running.

Every operation of the driver contract works with a real state machine:
transient domains vanish when stopped, defined ones stay shut off; memory
never exceeds the maximum; save writes a real file that restore reads back;
core dump writes a real file; vCPU pinning is remembered and reported.
"""

from __future__ import annotations

from virtkit.drivers.test.driver import TestDriver

__all__ = ["TestDriver"]
