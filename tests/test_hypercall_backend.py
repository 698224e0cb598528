"""HypervisorBackend (virtkit.drivers.xen.hypervisor) over a fake XenHypervisor.

The fake answers as the Rust core does (same attributes, XenCallError with
Xen's errno); the real calls are tested in dom0 (tests/xenhost/test_hypercall.py).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from virtkit.domain import DomainInfo, DomainState, VcpuInfo, VcpuState
from virtkit.drivers.interface import OPERATIONS, DomainRef
from virtkit.drivers.xen.hypervisor import DomainSnapshot, HypervisorBackend
from virtkit.errors import InvalidArgumentError, NoDomainError, NoSupportError, XenCallError

U0 = bytes(16)
U1 = bytes(range(16))
U2 = bytes(range(16, 32))


@dataclass
class Dom:
    domid: int
    uuid: bytes
    state: int = 1
    hvm: bool = False
    memory_kib: int = 131072
    max_memory_kib: int = 132096
    online_vcpus: int = 1
    vcpus: int = 1
    cpu_time_ns: int = 5_000_000
    #: Xen's XEN_DOMINF_* flags beyond the state (1: dying).
    flags: int = 0
    affinity: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class Vcpu:
    vcpu: int
    online: bool
    blocked: bool
    running: bool
    cpu_time_ns: int
    cpu: int
    affinity: list[int]


@dataclass
class Phys:
    nr_cpus: int = 4
    max_cpu_id: int = 3
    nr_nodes: int = 1
    cores_per_socket: int = 2
    threads_per_core: int = 1
    cpu_khz: int = 2_394_000
    total_kib: int = 1572864


class FakeXen:
    def __init__(self, *doms: Dom) -> None:
        self.doms = {d.domid: d for d in doms}
        self.calls: list[tuple[Any, ...]] = []
        self.closed = False

    def _get(self, domid: int, call: str) -> Dom:
        if domid not in self.doms:
            raise XenCallError(f"cannot read domain {domid}: {call}: No such process",
                               errno=errno.ESRCH, str1=call)
        return self.doms[domid]

    def close(self) -> None:
        self.closed = True

    def xen_version(self) -> tuple[int, int, str]:
        return (4, 17, ".6-pre")

    def physinfo(self) -> Phys:
        return Phys()

    def domain_list(self) -> list[Dom]:
        self.calls.append(("domain_list",))
        return [self.doms[k] for k in sorted(self.doms)]

    def domain_info(self, domid: int) -> Dom:
        self.calls.append(("domain_info", domid))
        return self._get(domid, "domctl getdomaininfo")

    def pause(self, domid: int) -> None:
        self._get(domid, "domctl pausedomain").state = 3
        self.calls.append(("pause", domid))

    def unpause(self, domid: int) -> None:
        self._get(domid, "domctl unpausedomain").state = 1
        self.calls.append(("unpause", domid))

    def destroy(self, domid: int) -> None:
        self._get(domid, "domctl destroydomain")
        del self.doms[domid]
        self.calls.append(("destroy", domid))

    def set_max_mem(self, domid: int, kib: int) -> None:
        self._get(domid, "domctl max_mem").max_memory_kib = kib
        self.calls.append(("set_max_mem", domid, kib))

    def set_vcpu_affinity(self, domid: int, vcpu: int, cpus: list[int]) -> list[int]:
        self._get(domid, "domctl setvcpuaffinity").affinity[vcpu] = list(cpus)
        self.calls.append(("set_vcpu_affinity", domid, vcpu, list(cpus)))
        return list(cpus)

    def vcpu_infos(self, domid: int) -> list[Vcpu]:
        d = self._get(domid, "domctl getvcpuinfo")
        return [Vcpu(0, True, False, True, 10, 2, d.affinity.get(0, [0, 1, 2, 3])),
                Vcpu(1, True, True, False, 20, 1, d.affinity.get(1, [0, 1, 2, 3])),
                Vcpu(2, False, False, False, 0, 3, [1])][:d.vcpus]


def backend(*doms: Dom, names: dict[int, str] | None = None) -> tuple[HypervisorBackend, FakeXen]:
    fake = FakeXen(*doms)
    table = {0: "Domain-0", 3: "g3", 5: "g5"} if names is None else names
    return HypervisorBackend(fake, table.get), fake  # type: ignore[arg-type]


def test_every_method_with_a_contract_name_has_the_contract_signature() -> None:
    import inspect

    from virtkit.drivers.interface import Driver

    served = [op for op in OPERATIONS if hasattr(HypervisorBackend, op)]
    assert set(served) == {
        "get_type", "get_version", "get_node_info", "list_domain_ids", "lookup_domain_by_id",
        "lookup_domain_by_uuid", "domain_get_state", "domain_get_info", "domain_get_os_type",
        "domain_get_max_memory", "domain_set_max_memory", "domain_suspend", "domain_resume",
        "domain_destroy", "domain_pin_vcpu", "domain_get_vcpus", "list_all_domains"}
    for op in served:
        ours = list(inspect.signature(getattr(HypervisorBackend, op)).parameters)
        theirs = list(inspect.signature(getattr(Driver, op)).parameters)
        assert ours == theirs, op


def test_listing_and_batch_info_in_one_call() -> None:
    b, fake = backend(Dom(0, U0, state=2, vcpus=2, online_vcpus=2), Dom(3, U1, state=0),
                      Dom(5, U2, state=6))
    assert b.list_domain_ids() == [0, 3, 5]
    fake.calls.clear()
    snaps = b.all_domain_info()
    assert fake.calls == [("domain_list",)]
    assert snaps[0] == DomainSnapshot(0, U0, DomainInfo(DomainState.BLOCKED, 132096, 131072, 2,
                                                        5_000_000), False)
    # Runnable (no state) is running; crashed stays crashed.
    assert [s.info.state for s in snaps] == [DomainState.BLOCKED, DomainState.RUNNING,
                                             DomainState.CRASHED]


def test_lookups_need_and_use_the_name_source() -> None:
    b, _ = backend(Dom(0, U0), Dom(3, U1))
    assert b.lookup_domain_by_id(3) == DomainRef("g3", U1, 3)
    assert b.lookup_domain_by_uuid(U0) == DomainRef("Domain-0", U0, 0)
    for bad in (4, -1, 0x7FF0):
        with pytest.raises(NoDomainError):
            b.lookup_domain_by_id(bad)
    with pytest.raises(NoDomainError, match="no running domain with UUID"):
        b.lookup_domain_by_uuid(U2)
    nameless, _ = backend(Dom(3, U1), names={})
    with pytest.raises(NoDomainError, match="has no name"):
        nameless.lookup_domain_by_id(3)
    unnamed = HypervisorBackend(FakeXen(Dom(3, U1)))  # type: ignore[arg-type]
    with pytest.raises(NoSupportError, match="knows domain ids, not names"):
        unnamed.lookup_domain_by_id(3)


def test_running_domains_with_names_in_one_round() -> None:
    b, fake = backend(Dom(0, U0), Dom(3, U1), Dom(5, U2), names={0: "Domain-0", 5: "g5"})
    asked: list[list[int]] = []

    class Names:
        def __call__(self, domid: int) -> str | None:
            raise AssertionError("one round for the list, not one read per domain")

        def many(self, ids: list[int]) -> list[str | None]:
            asked.append(list(ids))
            return [{0: "Domain-0", 5: "g5"}.get(i) for i in ids]

    b.names = Names()
    fake.calls.clear()
    # Domain 3 has no name (being built or torn down): left out.
    assert b.list_all_domains() == [DomainRef("Domain-0", U0, 0), DomainRef("g5", U2, 5)]
    assert fake.calls == [("domain_list",)] and asked == [[0, 3, 5]]
    plain, _ = backend(Dom(0, U0), Dom(3, U1))
    assert plain.list_all_domains() == [DomainRef("Domain-0", U0, 0), DomainRef("g3", U1, 3)]
    unnamed = HypervisorBackend(FakeXen(Dom(3, U1)))  # type: ignore[arg-type]
    with pytest.raises(NoSupportError):
        unnamed.list_all_domains()


def test_xenstore_names_over_a_xenstored() -> None:
    from tests.drivers.xen.fake_xenstored import XS_READ, FakeXenstored
    from virtkit.drivers.xen.hypervisor import XenstoreNames
    from virtkit.drivers.xen.xenstore import XenstoreClient

    with FakeXenstored() as xs:
        xs.tree.write("/local/domain/7/name", "gué".encode())
        names = XenstoreNames(XenstoreClient(xs.path))
        assert xs.watch_count() == 1
        assert names(0) == "Domain-0"
        assert names.many([7, 0, 9]) == ["gué", "Domain-0", None]
        b = HypervisorBackend(FakeXen(Dom(0, U0), Dom(7, U1)), names)  # type: ignore[arg-type]
        assert b.lookup_domain_by_id(7) == DomainRef("gué", U1, 7)

        def reads() -> list[str]:
            return [p for t, p in xs.requests if t == XS_READ]

        # Kept while nothing changes under /local/domain: no request at all.
        before = len(xs.requests)
        assert b.list_all_domains() == [DomainRef("Domain-0", U0, 0), DomainRef("gué", U1, 7)]
        assert len(xs.requests) == before
        # A name not known yet (9) is asked each time, alone.
        names.many([0, 9])
        assert reads()[-1] == "/local/domain/9/name" and len(xs.requests) == before + 1
        # A rename (or any change there) drops what was kept.
        xs.write("/local/domain/7/name", "renamed")
        assert b.list_all_domains() == [DomainRef("Domain-0", U0, 0),
                                        DomainRef("renamed", U1, 7)]
        assert reads()[-2:] == ["/local/domain/0/name", "/local/domain/7/name"]
        xs.write("/local/domain/9/name", "g9")
        assert names(9) == "g9"
        b.close()
        assert names.client.closed


def test_the_driver_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """driver._open_hypervisor() takes open_hypervisor()'s backend, a live-only
    XenBackend; where privcmd cannot be used (this machine, not a dom0) the
    driver goes on without it."""
    from tests.drivers.xen.fake_xenstored import FakeXenstored
    from virtkit.drivers.xen import driver, hypervisor
    from virtkit.drivers.xen.backend import XenBackend

    assert HypervisorBackend.live_only and issubclass(HypervisorBackend, XenBackend)
    with FakeXenstored() as xs:
        monkeypatch.setenv("XENSTORED_PATH", xs.path)
        fake = FakeXen(Dom(0, U0))

        class Opener:
            @staticmethod
            def open() -> FakeXen:
                return fake

        monkeypatch.setattr(hypervisor, "XenHypervisor", Opener)
        got = driver._open_hypervisor()
        assert isinstance(got, HypervisorBackend) and got.hypervisor is fake  # type: ignore[comparison-overlap]
        assert got.list_all_domains() == [DomainRef("Domain-0", U0, 0)]
        got.close()
        assert fake.closed

        def refuse() -> FakeXen:
            raise XenCallError("no interface version of the table: Permission denied",
                               errno=errno.EACCES, str1="sysctl")

        monkeypatch.setattr(Opener, "open", staticmethod(refuse))
        assert driver._open_hypervisor() is None
    # No xenstored: the hypervisor handle opened first is closed again.
    monkeypatch.setenv("XENSTORED_PATH", "/nonexistent/xenstored-socket")
    monkeypatch.setattr(Opener, "open", staticmethod(lambda: fake))
    fake.closed = False
    assert driver._open_hypervisor() is None
    assert fake.closed


def test_current_brings_a_reference_up_to_date() -> None:
    names = {0: "Domain-0", 3: "g3", 5: "g5"}
    b, fake = backend(Dom(0, U0), Dom(3, U1), Dom(5, U2), names=names)
    same = DomainRef("g3", U1, 3)
    fake.calls.clear()
    assert b.current(same) is same
    assert fake.calls == [("domain_info", 3)]  # one hypercall, the name kept or looked up
    # Renamed: same id, new name.
    names[3] = "g3-renamed"
    assert b.current(same) == DomainRef("g3-renamed", U1, 3)
    # Rebooted or restored: its UUID under a new id.
    assert b.current(DomainRef("g5", U2, 4)) == DomainRef("g5", U2, 5)
    assert b.current(DomainRef("g5", U2, 3)) == DomainRef("g5", U2, 5)  # 3 is another domain
    # Inactive, or gone: id -1; a dying domain (state 4) is gone too.
    assert b.current(DomainRef("off", bytes([9] * 16), -1)) == DomainRef("off", bytes([9] * 16), -1)
    fake.doms[5].state = 4
    assert b.current(DomainRef("g5", U2, 5)) == DomainRef("g5", U2, -1)
    # Other refusals pass through.
    def refuse(domid: int) -> None:
        raise XenCallError("nope", errno=errno.EPERM, str1="domctl getdomaininfo")

    fake.domain_info = refuse  # type: ignore[method-assign, assignment]
    with pytest.raises(XenCallError):
        b.current(same)


def test_info_state_and_memory_of_one_domain() -> None:
    b, _ = backend(Dom(3, U1, state=3, hvm=True))
    ref = DomainRef("g3", U1, 3)
    assert b.domain_get_state(ref) == (DomainState.PAUSED, 0)
    assert b.domain_get_info(ref) == DomainInfo(DomainState.PAUSED, 132096, 131072, 1, 5_000_000)
    assert b.domain_get_os_type(ref) == "hvm"
    assert b.domain_get_max_memory(ref) == 132096


def test_a_reference_whose_id_went_to_another_domain_is_not_found() -> None:
    b, fake = backend(Dom(3, U2))
    with pytest.raises(NoDomainError, match="no longer runs as id 3"):
        b.domain_suspend(DomainRef("g3", U1, 3))
    assert ("pause", 3) not in fake.calls
    with pytest.raises(NoDomainError, match="Xen has no domain 'gone' \\(id 9\\)"):
        b.domain_get_info(DomainRef("gone", U1, 9))
    with pytest.raises(NoDomainError, match="not running"):
        b.domain_get_info(DomainRef("inactive", U1, -1))
    assert not b.serves(DomainRef("inactive", U1, -1))
    assert b.serves(DomainRef("g3", U2, 3))


def test_operations_reach_the_hypervisor() -> None:
    b, fake = backend(Dom(3, U1, vcpus=2))
    ref = DomainRef("g3", U1, 3)
    b.domain_suspend(ref)
    b.domain_resume(ref)
    b.domain_set_max_memory(ref, 262144)
    b.domain_pin_vcpu(ref, 1, (False, True, False, True, False, False))
    b.domain_destroy(ref)
    mutations = [c for c in fake.calls if c[0] not in ("domain_info", "domain_list")]
    assert mutations == [("pause", 3), ("unpause", 3), ("set_max_mem", 3, 262144),
                         ("set_vcpu_affinity", 3, 1, [1, 3]), ("destroy", 3)]
    with pytest.raises(NoDomainError):
        b.domain_get_info(ref)


def test_pinning_refuses_what_the_host_lacks() -> None:
    b, fake = backend(Dom(3, U1, vcpus=2))
    ref = DomainRef("g3", U1, 3)
    with pytest.raises(InvalidArgumentError, match="CPU 4 does not exist \\(the host has 4\\)"):
        b.domain_pin_vcpu(ref, 0, (True, False, False, False, True))
    with pytest.raises(InvalidArgumentError, match="no CPU given"):
        b.domain_pin_vcpu(ref, 0, (False, False))
    with pytest.raises(InvalidArgumentError, match="vCPU 2 does not exist"):
        b.domain_pin_vcpu(ref, 2, (True,))
    assert not [c for c in fake.calls if c[0] == "set_vcpu_affinity"]


def test_vcpus() -> None:
    b, _ = backend(Dom(3, U1, vcpus=3, affinity={1: [2]}))
    got = b.domain_get_vcpus(DomainRef("g3", U1, 3))
    assert got == [
        VcpuInfo(0, VcpuState.RUNNING, 10, 2, (True, True, True, True)),
        VcpuInfo(1, VcpuState.BLOCKED, 20, 1, (False, False, True, False)),
        VcpuInfo(2, VcpuState.OFFLINE, 0, -1, (False, True, False, False)),
    ]


def test_node_version_type_and_close() -> None:
    b, fake = backend(Dom(0, U0))
    node = b.get_node_info()
    assert (node.memory, node.cpus, node.mhz, node.nodes, node.sockets, node.cores,
            node.threads) == (1572864, 4, 2394, 1, 2, 2, 1)
    assert b.get_version() == 4_017_006
    assert b.get_type() == "Xen"
    b.close()
    assert fake.closed


def test_other_xen_errors_pass_through() -> None:
    b, fake = backend(Dom(3, U1))

    def refuse(domid: int) -> None:
        raise XenCallError("cannot pause domain 3: domctl pausedomain: Operation not permitted",
                           errno=errno.EPERM, str1="domctl pausedomain")

    fake.pause = refuse  # type: ignore[method-assign]
    with pytest.raises(XenCallError) as info:
        b.domain_suspend(DomainRef("g3", U1, 3))
    assert info.value.errno == errno.EPERM


def test_all_domain_stats_in_one_pass() -> None:
    """One getdomaininfolist, then the vCPUs of each named domain; a domain
    without a name, or gone before its vCPUs are read, is left out."""
    b, fake = backend(Dom(0, U0, vcpus=2, online_vcpus=2), Dom(3, U1, state=3),
                      Dom(5, U2, vcpus=3, affinity={1: [2]}), names={0: "Domain-0", 5: "g5"})
    fake.calls.clear()
    stats = b.all_domain_stats()
    assert fake.calls == [("domain_list",)]
    assert list(stats) == [DomainRef("Domain-0", U0, 0), DomainRef("g5", U2, 5)]
    info, vcpus = stats[DomainRef("g5", U2, 5)]
    assert info == DomainInfo(DomainState.RUNNING, 132096, 131072, 1, 5_000_000)
    assert vcpus == b.domain_get_vcpus(DomainRef("g5", U2, 5))
    assert [v.affinity for v in vcpus] == [(True,) * 4, (False, False, True, False),
                                           (False, True, False, False)]
    assert len(stats[DomainRef("Domain-0", U0, 0)][1]) == 2
    real = fake.vcpu_infos

    def gone(domid: int) -> list[Vcpu]:
        if domid == 5:
            fake._get(9, "domctl getvcpuinfo")  # ESRCH, as Xen answers for a domain gone
        return real(domid)

    fake.vcpu_infos = gone  # type: ignore[method-assign]
    assert list(b.all_domain_stats()) == [DomainRef("Domain-0", U0, 0)]


def test_info_now_is_one_fresh_getdomaininfo() -> None:
    b, fake = backend(Dom(0, U0), Dom(3, U1), Dom(5, U2))
    g3 = DomainRef("g3", U1, 3)
    fake.calls.clear()
    assert b.info_now(g3) == DomainInfo(DomainState.RUNNING, 132096, 131072, 1, 5_000_000)
    assert fake.calls == [("domain_info", 3)]
    # A stale reference (another UUID at the id, no domain, a dying one): None.
    assert b.info_now(DomainRef("g3", U2, 3)) is None
    assert b.info_now(DomainRef("gone", U1, 9)) is None
    fake.doms[5].state = 4
    assert b.info_now(DomainRef("g5", U2, 5)) is None
    fake.doms[5].state, fake.doms[5].flags = 6, 1  # crashed, then being destroyed
    assert b.info_now(DomainRef("g5", U2, 5)) is None
    fake.doms[5].state, fake.doms[5].flags = 1, 0
    # Every call asks Xen, right after a listing too: a change made meanwhile shows.
    b.list_all_domains()
    fake.doms[3] = replace(fake.doms[3], state=3)  # paused after the listing
    fake.calls.clear()
    assert b.info_now(g3).state == DomainState.PAUSED  # type: ignore[union-attr]
    assert fake.calls == [("domain_info", 3)]
