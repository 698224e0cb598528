"""virtkit's xenstore client against the real xenstored of this boot (oxenstored
or C xenstored: tests/xenhost runs this module under both), checked against
Xen's own xenstore-read/-write/-ls."""

from __future__ import annotations

import pytest

from virtkit.drivers.xen.xenstore import (TransactionConflictError, XenstoreClient,
                                          XenstoreInvalidError, XenstoreNotFoundError)

from .guests import sh, xs_read

BASE = "/vkt-xs"


@pytest.fixture
def xs() -> XenstoreClient:
    client = XenstoreClient()
    client.rm(BASE)
    yield client
    client.rm(BASE)
    client.close()


def test_read_write_directory_mkdir_rm(xs: XenstoreClient) -> None:
    assert xs.read("/local/domain/0/name") == b"Domain-0"
    assert xs.read(f"{BASE}/missing") is None
    xs.write(f"{BASE}/a/b", "value one")
    assert xs_read(f"{BASE}/a/b") == "value one"  # Xen's own tool sees it
    sh(["xenstore-write", f"{BASE}/a/c", "from xl's tools"])
    assert xs.read(f"{BASE}/a/c") == b"from xl's tools"
    assert sorted(xs.directory(f"{BASE}/a") or []) == ["b", "c"]
    xs.mkdir(f"{BASE}/empty")
    assert xs.read(f"{BASE}/empty") == b"" and xs.directory(f"{BASE}/empty") == []
    assert xs.read_many([f"{BASE}/a/b", f"{BASE}/nope", "/local/domain/0/name"]) == [
        b"value one", None, b"Domain-0"]
    xs.rm(f"{BASE}/a")
    assert xs_read(f"{BASE}/a/b") is None and xs.directory(f"{BASE}/a") is None
    with pytest.raises(XenstoreNotFoundError):
        xs.rm(f"{BASE}/a/deeper", missing_ok=False)  # its parent is gone too
    with pytest.raises(XenstoreInvalidError):
        xs.read("/bad path with spaces")


def test_transactions_commit_abort_and_conflict(xs: XenstoreClient) -> None:
    with xs.transaction() as tx:
        tx.write(f"{BASE}/t/x", "1")
        assert xs.read(f"{BASE}/t/x") is None, "not visible outside before the commit"
    assert xs_read(f"{BASE}/t/x") == "1"
    tx = xs.transaction()
    tx.write(f"{BASE}/t/y", "dropped")
    tx.abort()
    assert xs.read(f"{BASE}/t/y") is None
    other = XenstoreClient()
    try:
        tx = xs.transaction()
        assert tx.read(f"{BASE}/t/x") == b"1"
        tx.write(f"{BASE}/t/x", "2")
        other.write(f"{BASE}/t/x", "someone else")
        with pytest.raises(TransactionConflictError):
            tx.commit()
    finally:
        other.close()
    assert xs.read(f"{BASE}/t/x") == b"someone else"
    assert xs.transact(lambda t: (t.write(f"{BASE}/t/x", "3"), t.read(f"{BASE}/t/x"))[1]) == b"3"


def test_watches_fire_on_changes(xs: XenstoreClient) -> None:
    xs.mkdir(BASE)
    xs.watch(BASE, "tok")
    first = xs.read_watch(timeout=10)
    assert first is not None and (first.path, first.token) == (BASE, "tok")
    sh(["xenstore-write", f"{BASE}/w", "x"])
    event = xs.read_watch(timeout=10)
    assert event is not None and event.path == f"{BASE}/w" and event.token == "tok"
    xs.unwatch(BASE, "tok")
    sh(["xenstore-write", f"{BASE}/w", "y"])
    assert xs.read_watch(timeout=1) is None
    xs.watch("@releaseDomain", "rel")
    assert xs.read_watch(timeout=10) is not None  # fires once at once
    xs.unwatch("@releaseDomain", "rel")


def test_driver_lists_domain0_through_this_xenstored() -> None:
    import virtkit

    with virtkit.open("xen:///") as c:
        assert [(d.name, d.id) for d in c.list_all_domains()][:1] == [("Domain-0", 0)]
        assert c.lookup_domain_by_id(0).info().memory > 0
