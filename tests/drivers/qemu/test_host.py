"""virtkit.drivers.qemu.host: node facts, against lscpu/nproc/meminfo and fake sysfs trees."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from tests import needs

from virtkit.drivers.qemu.capabilities import normalize_arch
from virtkit.drivers.qemu.host import hostname, node_info, online_cpus, parse_sysfs_list


def test_parse_sysfs_list() -> None:
    assert parse_sysfs_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_sysfs_list("") == [] and parse_sysfs_list("5") == [5]


# ---------------------------------------------------------------- this host


def test_real_host_against_the_usual_tools() -> None:
    info = node_info()
    assert info.model == normalize_arch(os.uname().machine)
    online = int(subprocess.run(["getconf", "_NPROCESSORS_ONLN"], capture_output=True, text=True,
                                check=True).stdout)
    assert info.cpus == online
    if shutil.which("nproc"):
        # nproc counts the CPUs this process may use: never more than those online.
        assert int(subprocess.run(["nproc"], capture_output=True, text=True).stdout) <= info.cpus
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    assert info.memory == int(meminfo["MemTotal"].split()[0])
    assert info.nodes * info.sockets * info.cores * info.threads == info.cpus
    if "cpu MHz" in Path("/proc/cpuinfo").read_text():
        assert 0 < info.mhz < 20_000


def test_real_topology_matches_lscpu() -> None:
    needs.program("lscpu", "util-linux")
    out = subprocess.run(["lscpu", "-p=CPU,CORE,SOCKET,NODE", "--online"], capture_output=True,
                         text=True, check=True).stdout
    rows = [[int(x) if x else 0 for x in ln.split(",")] for ln in out.splitlines() if not ln.startswith("#")]
    info = node_info()
    assert info.cpus == len(rows)
    nodes = {r[3] for r in rows}
    sockets_per_node = max(len({r[2] for r in rows if r[3] == n}) for n in nodes)
    cores_per_socket = max(len({r[1] for r in rows if r[2] == s}) for s in {r[2] for r in rows})
    threads_per_core = max(sum(1 for r in rows if r[1] == c and r[2] == s) for c, s in {(r[1], r[2]) for r in rows})
    if len(nodes) * sockets_per_node * cores_per_socket * threads_per_core == len(rows):
        assert (info.nodes, info.sockets, info.cores, info.threads) == (
            len(nodes), sockets_per_node, cores_per_socket, threads_per_core)
    else:
        assert (info.nodes, info.sockets, info.cores, info.threads) == (1, 1, len(rows), 1)


def test_hostname() -> None:
    assert hostname() == socket.gethostname() == os.uname().nodename


# ---------------------------------------------------------------- fake trees


def _tree(root: Path, *, cpus: list[tuple[int, int, int, int]], online: str, nodes: dict[int, str] | None,
          meminfo: str = "MemTotal:       16318480 kB\nMemFree: 1 kB\n",
          cpuinfo: str = "processor\t: 0\ncpu MHz\t\t: 2999.998\n", topology: bool = True) -> tuple[str, str]:
    """A fake /proc and /sys; ``cpus`` is (cpu, package, core, node) per CPU."""
    proc, sys = root / "proc", root / "sys"
    proc.mkdir(parents=True)
    (proc / "meminfo").write_text(meminfo)
    (proc / "cpuinfo").write_text(cpuinfo)
    cpu_dir = sys / "devices/system/cpu"
    cpu_dir.mkdir(parents=True)
    (cpu_dir / "online").write_text(online + "\n")
    for cpu, package, core, _node in cpus:
        topo = cpu_dir / f"cpu{cpu}/topology"
        topo.mkdir(parents=True)
        if topology:
            (topo / "physical_package_id").write_text(f"{package}\n")
            (topo / "core_id").write_text(f"{core}\n")
            siblings = [c for c, p, k, _ in cpus if p == package and k == core]
            (topo / "thread_siblings_list").write_text(",".join(map(str, siblings)) + "\n")
    if nodes is not None:
        node_dir = sys / "devices/system/node"
        node_dir.mkdir(parents=True)
        (node_dir / "online").write_text(",".join(map(str, nodes)) + "\n")
        for n, cpulist in nodes.items():
            (node_dir / f"node{n}").mkdir()
            (node_dir / f"node{n}/cpulist").write_text(cpulist + "\n")
    return str(proc), str(sys)


def _big(offline: frozenset[int] = frozenset()) -> list[tuple[int, int, int, int]]:
    """16 CPUs: 2 nodes x 1 package x 4 cores x 2 threads (siblings n and n+8)."""
    out = []
    for cpu in range(16):
        if cpu in offline:
            continue
        core = cpu % 8
        package = core // 4
        out.append((cpu, package, core, package))
    return out


def test_two_nodes_smt(tmp_path: Path) -> None:
    proc, sys = _tree(tmp_path, cpus=_big(), online="0-15", nodes={0: "0-3,8-11", 1: "4-7,12-15"})
    info = node_info(proc=proc, sys=sys, machine="x86_64")
    assert info == (info.model, 16318480, 16, 2999, 2, 1, 4, 2)


def test_offline_cpu_breaks_symmetry_so_topology_is_flat(tmp_path: Path) -> None:
    proc, sys = _tree(tmp_path, cpus=_big(offline=frozenset({3})), online="0-2,4-15",
                      nodes={0: "0-2,8-11", 1: "4-7,12-15"})
    info = node_info(proc=proc, sys=sys, machine="x86_64")
    assert (info.cpus, info.nodes, info.sockets, info.cores, info.threads) == (15, 1, 1, 15, 1)


def test_no_numa_no_topology_arm_cpufreq(tmp_path: Path) -> None:
    cpus = [(c, 0, c, 0) for c in range(4)]
    proc, sys = _tree(tmp_path, cpus=cpus, online="0-3", nodes=None, topology=False,
                      cpuinfo="processor\t: 0\nBogoMIPS\t: 50.00\n")
    freq = Path(sys) / "devices/system/cpu/cpu0/cpufreq"
    freq.mkdir(parents=True)
    (freq / "cpuinfo_max_freq").write_text("1800000\n")
    info = node_info(proc=proc, sys=sys, machine="aarch64")
    assert info == ("aarch64", 16318480, 4, 1800, 1, 1, 4, 1)


def test_cpuinfo_fallback_when_sysfs_lacks_online(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text("processor\t: 0\nprocessor\t: 1\nprocessor\t: 2\n")
    assert online_cpus(str(tmp_path / "nosys"), str(proc)) == [0, 1, 2]
    info = node_info(proc=str(proc), sys=str(tmp_path / "nosys"), machine="i586")
    assert (info.model, info.cpus, info.memory, info.mhz) == ("i686", 3, 0, 0)
    assert info.nodes * info.sockets * info.cores * info.threads == 3
