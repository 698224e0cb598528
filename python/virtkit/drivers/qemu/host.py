"""Facts about the host (the "node"): memory, CPUs and their topology, hostname.

:func:`node_info` answers libvirt's ``virNodeGetInfo`` for a Linux host, from
``/proc`` and ``/sys``:

- ``model``: the CPU architecture in libvirt's spelling (``x86_64``, ``i686``...);
- ``memory``: ``MemTotal`` of ``/proc/meminfo``, KiB;
- ``cpus``: CPUs online (``/sys/devices/system/cpu/online``);
- ``mhz``: the first ``cpu MHz`` of ``/proc/cpuinfo``, else cpufreq's maximum;
- ``nodes``: NUMA nodes online (1 when the kernel has no NUMA);
- ``sockets``: sockets per node, ``cores``: cores per socket, ``threads``:
  threads per core, from each online CPU's ``topology/`` (package, core,
  sibling list), taking the largest count seen.

As libvirt does, when ``nodes * sockets * cores * threads`` does not equal
``cpus`` (CPUs offline in the middle of a core, asymmetric nodes), the
topology is reported flat instead: one node, one socket, ``cpus`` cores, one
thread, so that the product stays truthful.

Other facts (per-process statistics) come from the Rust core; these are read
once per call, cheaply, in Python.
"""

from __future__ import annotations

import platform
import socket
from pathlib import Path

from virtkit.connection import NodeInfo
from virtkit.drivers.qemu.capabilities import normalize_arch

__all__ = ["node_info", "hostname", "online_cpus", "parse_sysfs_list"]


def parse_sysfs_list(text: str) -> list[int]:
    """The numbers of a sysfs list such as ``0-3,8,10-11`` (empty text: none)."""
    out: list[int] = []
    for item in text.strip().split(","):
        if not item:
            continue
        lo, sep, hi = item.partition("-")
        out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def online_cpus(sys: str = "/sys", proc: str = "/proc") -> list[int]:
    """Numbers of the CPUs online (from sysfs; else every ``processor`` of cpuinfo)."""
    text = _read(Path(sys) / "devices/system/cpu/online")
    if text is not None and text.strip():
        return parse_sysfs_list(text)
    info = _read(Path(proc) / "cpuinfo") or ""
    ids = [int(v) for k, _, v in (ln.partition(":") for ln in info.splitlines())
           if k.strip() == "processor" and v.strip().isdigit()]
    return ids or [0]


def _memory_kib(proc: Path) -> int:
    for line in (_read(proc / "meminfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key == "MemTotal":
            parts = value.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) * (1024 if parts[1:] == ["MB"] else 1)
    return 0


def _mhz(proc: Path, sys: Path, cpus: list[int]) -> int:
    for line in (_read(proc / "cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            try:
                return int(float(value))
            except ValueError:
                break
    for cpu in cpus:
        khz = _read(sys / f"devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq")
        if khz is not None and khz.strip().isdigit():
            return int(khz) // 1000
    return 0


def _topology(sys: Path, cpus: list[int]) -> tuple[int, int, int, int]:
    """``(nodes, sockets per node, cores per socket, threads per core)``."""
    node_dir = sys / "devices/system/node"
    node_of: dict[int, int] = {}
    online_nodes = parse_sysfs_list(_read(node_dir / "online") or "")
    for node in online_nodes:
        for cpu in parse_sysfs_list(_read(node_dir / f"node{node}/cpulist") or ""):
            node_of[cpu] = node
    nodes = max(len(online_nodes), 1)
    online = set(cpus)
    sockets: dict[int, set[int]] = {}            # node -> packages
    cores: dict[tuple[int, int], set[int]] = {}  # (node, package) -> core ids
    threads = 1
    for cpu in cpus:
        topo = sys / f"devices/system/cpu/cpu{cpu}/topology"
        package_text = _read(topo / "physical_package_id")
        core_text = _read(topo / "core_id")
        if package_text is None or core_text is None:
            return nodes, 1, len(cpus), 1
        package, core = int(package_text), int(core_text)
        node = node_of.get(cpu, 0)
        sockets.setdefault(node, set()).add(package)
        cores.setdefault((node, package), set()).add(core)
        siblings = _read(topo / "thread_siblings_list")
        if siblings is not None:
            threads = max(threads, len(set(parse_sysfs_list(siblings)) & online))
    return (nodes, max((len(s) for s in sockets.values()), default=1),
            max((len(c) for c in cores.values()), default=1), threads)


def node_info(*, proc: str = "/proc", sys: str = "/sys", machine: str | None = None) -> NodeInfo:
    """The host's :class:`~virtkit.connection.NodeInfo` (see the module docstring).

    ``proc``, ``sys`` and ``machine`` (``uname -m``) exist for tests.
    """
    proc_path, sys_path = Path(proc), Path(sys)
    cpus = online_cpus(sys, proc)
    nodes, sockets, cores, threads = _topology(sys_path, cpus)
    if nodes * sockets * cores * threads != len(cpus):
        nodes, sockets, cores, threads = 1, 1, len(cpus), 1
    return NodeInfo(
        model=normalize_arch(machine or platform.machine()),
        memory=_memory_kib(proc_path),
        cpus=len(cpus),
        mhz=_mhz(proc_path, sys_path, cpus),
        nodes=nodes,
        sockets=sockets,
        cores=cores,
        threads=threads,
    )


def hostname() -> str:
    """The host's name as the kernel knows it (``gethostname``; no DNS look-up)."""
    return socket.gethostname()
