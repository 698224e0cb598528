"""``xen:///``'s listing, info and batch statistics as kept between calls, in dom0.

Run inside dom0 by tests/xenhost/test_dom0.py. The driver keeps what it read
(domain names while xenstore says nothing changed under /local/domain, the
definitions while /etc/xen is unchanged; infos are always asked of Xen):
these tests change the host *by hand*, with ``xl`` and by
writing and removing files, and check that the very next call of the same
connection sees each change. Batch statistics are compared with ``xl list``
and ``xl vcpu-list``.
"""

from __future__ import annotations

import os

import pytest

import virtkit
from virtkit import DomainState

from .guests import (READY, conn, dom0_ready, sh, wait_console, xl_config,  # noqa: F401
                     xl_list, xl_uuid, xl_vcpus)


def listing(conn: virtkit.Connection) -> dict[str, int]:
    """Name -> id of every domain the connection lists; a name listed twice fails."""
    doms = conn.list_all_domains()
    names = [d.name for d in doms]
    assert len(names) == len(set(names)), f"a domain listed twice: {names}"
    return {d.name: d.id for d in doms}


def test_changes_made_by_hand_are_seen_at_once(conn: virtkit.Connection) -> None:
    assert listing(conn) == listing(conn)  # the kept names and definitions in use
    # A config file added by hand: a defined domain at once.
    path = "/etc/xen/vkt-file.cfg"
    with open(path, "w") as f:
        f.write(xl_config("vkt-file"))
    assert listing(conn)["vkt-file"] == -1
    assert "vkt-file" in conn.list_defined_domains()
    defined = conn.lookup_domain_by_name("vkt-file")
    assert defined.is_persistent() and defined.info().state == DomainState.SHUTOFF
    # Removed by hand: gone at once.
    os.unlink(path)
    assert "vkt-file" not in listing(conn)
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name("vkt-file")

    # A domain started by hand with xl, outside /etc/xen: listed at once, with xl's id.
    with open("/tmp/vkt-hand.cfg", "w") as f:
        f.write(xl_config("vkt-hand"))
    sh("xl create -q /tmp/vkt-hand.cfg")
    domid = xl_list()["vkt-hand"]["id"]
    assert listing(conn)["vkt-hand"] == domid
    hand = conn.lookup_domain_by_name("vkt-hand")
    assert hand.uuid_string == xl_uuid("vkt-hand") and not hand.is_persistent()

    # Renamed by hand: the new name at once, the old one gone.
    sh("xl rename vkt-hand vkt-hand2")
    names = listing(conn)
    assert names.get("vkt-hand2") == domid and "vkt-hand" not in names, names
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name("vkt-hand")
    assert conn.lookup_domain_by_name("vkt-hand2").uuid == hand.uuid

    # Paused by hand: a fresh listing and the infos that follow it say so.
    sh("xl pause vkt-hand2")
    info = {d.name: d.info() for d in conn.list_all_domains()}
    assert info["vkt-hand2"].state == DomainState.PAUSED
    assert hand.info().state == DomainState.PAUSED  # the old handle: same UUID, same id
    sh("xl unpause vkt-hand2")
    assert hand.info().state != DomainState.PAUSED

    # A defined domain started by hand: listed once, running and persistent.
    with open("/etc/xen/vkt-both.cfg", "w") as f:
        f.write(xl_config("vkt-both"))
    assert listing(conn)["vkt-both"] == -1
    sh("xl create -q /etc/xen/vkt-both.cfg")
    both_id = xl_list()["vkt-both"]["id"]
    assert listing(conn)["vkt-both"] == both_id
    both = conn.lookup_domain_by_name("vkt-both")
    assert both.is_persistent() and both.info().state != DomainState.SHUTOFF
    assert "vkt-both" not in conn.list_defined_domains()

    # Destroyed by hand: the transient one is gone, the defined one shut off, at once.
    listing(conn)  # a listing from before the destroys must not answer the infos after
    sh("xl destroy vkt-hand2")
    sh("xl destroy vkt-both")
    names = listing(conn)
    assert "vkt-hand2" not in names and names["vkt-both"] == -1, names
    with pytest.raises(virtkit.NoDomainError):
        hand.info()
    assert both.info().state == DomainState.SHUTOFF
    os.unlink("/tmp/vkt-hand.cfg")


def _cpus(spec: str, ncpus: int) -> tuple[bool, ...]:
    """xl's affinity column ("all", "1", "0-1", "0,2") as one flag per host CPU."""
    if spec == "all":
        return (True,) * ncpus
    chosen: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        chosen.update(range(int(lo), int(hi or lo) + 1))
    return tuple(i in chosen for i in range(ncpus))


def test_all_domain_stats_agree_with_xl(conn: virtkit.Connection) -> None:
    with open("/etc/xen/vkt-stats.cfg", "w") as f:
        f.write(xl_config("vkt-stats", vcpus=2))
    with open("/etc/xen/vkt-idle.cfg", "w") as f:
        f.write(xl_config("vkt-idle", memory_mib=96, vcpus=3))
    sh("xl create -q /etc/xen/vkt-stats.cfg")
    wait_console("vkt-stats", READY)  # both vCPUs up: nothing changes while comparing
    sh("xl vcpu-pin vkt-stats 1 1")
    ncpus = conn.get_node_info().cpus

    stats = conn.all_domain_stats()
    rows = xl_list()
    by_name = {s.domain.name: s for s in stats}
    assert [s.domain for s in stats] == conn.list_all_domains()
    assert {n: s.domain.id for n, s in by_name.items() if s.domain.id >= 0} == \
        {n: r["id"] for n, r in rows.items()}
    for name, row in rows.items():
        s = by_name[name]
        assert s.info.memory // 1024 == row["mem"], (name, s.info, row)
        assert s.info.nr_virt_cpu == row["vcpus"], (name, s.info, row)
        assert ("p" in row["state"]) == (s.info.state == DomainState.PAUSED)
        vcpus = xl_vcpus(name)
        assert [v.number for v in s.vcpus] == [v["vcpu"] for v in vcpus]
        assert [v.affinity for v in s.vcpus] == [_cpus(v["hard"], ncpus) for v in vcpus]
        assert all(v.cpu_time > 0 and 0 <= v.cpu < ncpus for v in s.vcpus), s.vcpus
    pinned = by_name["vkt-stats"].vcpus[1].affinity
    assert pinned == tuple(i == 1 for i in range(ncpus))
    idle = by_name["vkt-idle"]
    assert idle.domain.id == -1 and idle.vcpus == []
    assert (idle.info.state, idle.info.memory, idle.info.nr_virt_cpu) == \
        (DomainState.SHUTOFF, 96 * 1024, 3)
    # Each running domain's stats are its own info and vCPUs (CPU time aside).
    dom = by_name["vkt-stats"].domain
    assert by_name["vkt-stats"].info._replace(cpu_time=0) == dom.info()._replace(cpu_time=0)
    assert [(v.number, v.affinity) for v in by_name["vkt-stats"].vcpus] == \
        [(v.number, v.affinity) for v in dom.vcpus()]
