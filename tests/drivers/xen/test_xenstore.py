"""The xenstore client against a fake xenstored (tests/drivers/xen/fake_xenstored.py).

The same client runs against the real C xenstored and oxenstored in
tests/xenhost/test_xenstore_live.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import virtkit
from virtkit.drivers.xen.xenstore import (
    PAYLOAD_MAX,
    TransactionConflictError,
    WatchEvent,
    WatchReader,
    XenstoreClient,
    XenstoreConnectionError,
    XenstoreDeniedError,
    XenstoreError,
    XenstoreInvalidError,
    XenstoreNotFoundError,
    XenstoreTimeoutError,
    check_path,
    default_socket,
    watching,
)
from virtkit.errors import ErrorCode, ErrorDomain

from .fake_xenstored import XS_READ, FakeXenstored


@pytest.fixture
def xsd() -> Iterator[FakeXenstored]:
    with FakeXenstored() as daemon:
        yield daemon


@pytest.fixture
def xs(xsd: FakeXenstored) -> Iterator[XenstoreClient]:
    with XenstoreClient(xsd.path, timeout=2.0) as client:
        yield client


def test_read_write_directory_mkdir_rm(xs: XenstoreClient) -> None:
    assert xs.read("/local/domain/0/name") == b"Domain-0"
    assert xs.read_text("/local/domain/0/name") == "Domain-0"
    assert xs.read("/local/domain/0/nothing") is None
    xs.write("/local/domain/7/name", "guest")
    xs.write("/local/domain/7/data/blob", b"\x00\xffbytes")
    assert xs.read("/local/domain/7/data/blob") == b"\x00\xffbytes"
    assert xs.directory("/local/domain") == ["0", "7"]
    assert xs.directory("/local/domain/7") == ["data", "name"]
    assert xs.directory("/local/domain/8") is None
    xs.mkdir("/local/domain/7/empty")
    assert xs.read("/local/domain/7/empty") == b""
    xs.mkdir("/local/domain/7/empty")  # exists: fine
    xs.rm("/local/domain/7")
    assert xs.directory("/local/domain") == ["0"]
    xs.rm("/local/domain/7")  # missing: fine by default
    with pytest.raises(XenstoreNotFoundError) as e:
        xs.rm("/nowhere/at/all", missing_ok=False)
    assert isinstance(e.value, virtkit.NoDomainError) and e.value.errno_name == "ENOENT"
    assert xs.get_domain_path(3) == "/local/domain/3"


def test_permissions(xs: XenstoreClient) -> None:
    xs.write("/local/domain/5/x", "1")
    assert xs.get_perms("/local/domain/5/x") == ["n0"]
    xs.set_perms("/local/domain/5/x", ["n5", "r0"])
    assert xs.get_perms("/local/domain/5/x") == ["n5", "r0"]
    assert xs.get_perms("/missing") is None
    with pytest.raises(XenstoreInvalidError):
        xs.set_perms("/local/domain/5/x", ["x5"])


def test_errors_are_virtkit_errors_with_the_errno_name(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    xsd.deny.add("/secret")
    with pytest.raises(XenstoreDeniedError) as e:
        xs.read("/secret/key")
    err = e.value
    assert isinstance(err, virtkit.OperationDeniedError) and isinstance(err, XenstoreError)
    assert (err.code, err.domain, err.errno_name, err.op, err.path) == (
        ErrorCode.OPERATION_DENIED, ErrorDomain.XENSTORE, "EACCES", "READ", "/secret/key")
    assert "EACCES" in str(err) and "/secret/key" in str(err)
    with pytest.raises(XenstoreInvalidError) as inv:
        xs.rm("/")
    assert inv.value.errno_name == "EINVAL" and isinstance(inv.value, virtkit.InvalidArgumentError)
    with pytest.raises(XenstoreInvalidError):
        xs.request(99, b"x\0")  # a type the daemon does not know
    # Checked before sending: bad characters, a trailing slash, too large a payload.
    for bad in ("/a b", "/a/", "", "/a//b", "/é"):
        with pytest.raises(XenstoreInvalidError):
            check_path(bad)
    with pytest.raises(XenstoreInvalidError) as big:
        xs.write("/big", b"x" * PAYLOAD_MAX)
    assert big.value.errno_name == "E2BIG"
    assert xs.read("/local/domain/0/name") == b"Domain-0", "the connection is still fine"


def test_connect_failure_is_no_xenstore(tmp_path: object) -> None:
    with pytest.raises(virtkit.ConnectionFailedError) as e:
        XenstoreClient("/nonexistent/xenstored/socket")
    assert e.value.code == ErrorCode.NO_XENSTORE and e.value.domain == ErrorDomain.XENSTORE


def test_default_socket_follows_libxenstore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XENSTORED_PATH", raising=False)
    monkeypatch.delenv("XENSTORED_RUNDIR", raising=False)
    assert default_socket() == "/run/xenstored/socket"
    monkeypatch.setenv("XENSTORED_RUNDIR", "/var/run/xs")
    assert default_socket() == "/var/run/xs/socket"
    monkeypatch.setenv("XENSTORED_PATH", "/tmp/sock")
    assert default_socket() == "/tmp/sock"


def test_replies_out_of_order_are_matched_by_request_id(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    for i in range(50):
        xsd.write(f"/local/domain/{i + 1}/name", f"g{i}")
    xsd.reverse = True
    xsd.event_first = True  # and a watch event before every reply
    paths = [f"/local/domain/{i + 1}/name" for i in range(50)] + ["/missing"]
    assert xs.read_many(paths) == [f"g{i}".encode() for i in range(50)] + [None]
    names = xs.directory_many(["/local/domain/1", "/missing", "/local/domain"])
    assert names[0] == ["name"] and names[1] is None and len(names[2] or []) == 51
    assert xs.pending_events() > 0  # the noise events were kept for read_watch
    assert xs.read_watch(0) == WatchEvent("@virtkit-noise", "noise")


def test_read_many_sends_everything_before_waiting(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    xsd.reverse = True  # only possible when the requests arrive together
    xs.read_many(["/local/domain/0/name"] * 20)
    reads = [r for r in xsd.requests if r[0] == XS_READ]
    assert len(reads) == 20


def test_many_threads_share_one_client(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    for i in range(20):
        xsd.write(f"/t/{i}", str(i))
    xsd.reverse = True
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for _ in range(30):
                assert xs.read(f"/t/{n}") == str(n).encode()
                assert xs.read_many([f"/t/{n}", "/t/0"]) == [str(n).encode(), b"0"]
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors


def test_transaction_commit_abort_and_conflict(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    with xs.transaction() as tx:
        assert tx.read("/local/domain/0/name") == b"Domain-0"
        tx.write("/tx/a", "1")
        tx.write("/tx/b", "2")
        assert tx.read("/tx/a") == b"1"
        assert xs.read("/tx/a") is None, "not visible outside before the commit"
    assert xs.read_many(["/tx/a", "/tx/b"]) == [b"1", b"2"]

    with pytest.raises(RuntimeError):
        with xs.transaction() as tx:
            tx.write("/tx/a", "changed")
            raise RuntimeError("abort")
    assert xs.read("/tx/a") == b"1"

    tx = xs.transaction()
    assert tx.read("/tx/a") == b"1"
    xsd.write("/tx/a", "someone else")
    tx.write("/tx/b", "3")
    with pytest.raises(TransactionConflictError) as e:
        tx.commit()
    assert e.value.errno_name == "EAGAIN" and isinstance(e.value, virtkit.OperationFailedError)
    assert xs.read("/tx/b") == b"2"


def test_transact_retries_after_a_conflict(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    xs.write("/counter", "0")
    attempts = []

    def bump(tx: object) -> int:
        from virtkit.drivers.xen.xenstore import Transaction

        assert isinstance(tx, Transaction)
        value = int(tx.read("/counter") or b"0")
        attempts.append(value)
        if len(attempts) == 1:
            xsd.write("/counter", "10")  # another writer wins the race once
        tx.write("/counter", str(value + 1))
        return value + 1

    assert xs.transact(bump) == 11
    assert attempts == [0, 10]
    assert xs.read("/counter") == b"11"

    def always(tx: object) -> None:
        xsd.write("/counter", str(time.monotonic()))
        from virtkit.drivers.xen.xenstore import Transaction

        assert isinstance(tx, Transaction)
        tx.read("/counter")
        tx.write("/other", "x")

    with pytest.raises(TransactionConflictError):
        xs.transact(always, attempts=3)


def test_watches_fire_on_set_and_on_change(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    xs.watch("/local/domain/3", "dom3")
    assert xs.read_watch(2) == WatchEvent("/local/domain/3", "dom3")  # fired when set
    assert xs.read_watch(0.05) is None
    xsd.write("/local/domain/3/control/shutdown", "poweroff")
    assert xs.read_watch(2) == WatchEvent("/local/domain/3/control/shutdown", "dom3")
    xsd.write("/local/domain/4/name", "other")
    assert xs.read_watch(0.1) is None
    xs.unwatch("/local/domain/3", "dom3")
    xsd.write("/local/domain/3/x", "1")
    assert xs.read_watch(0.1) is None
    with watching(xs, "@releaseDomain", "rel"):
        assert xs.read_watch(2) == WatchEvent("@releaseDomain", "rel")
        assert xsd.watch_count() == 1
    assert xsd.watch_count() == 0
    with pytest.raises(XenstoreInvalidError):
        xs.watch("/x", "")


def test_watch_reader_thread_while_requests_go_on(xsd: FakeXenstored, xs: XenstoreClient) -> None:
    seen: list[WatchEvent] = []
    got = threading.Event()

    def on_event(event: WatchEvent) -> None:
        seen.append(event)
        if event.path == "/w/done":
            got.set()

    xs.watch("/w", "tok")
    with WatchReader(xs, on_event) as reader:
        for i in range(20):
            xs.write(f"/w/{i}", "x")
            assert xs.read(f"/w/{i}") == b"x"
        xsd.write("/w/done", "1")
        assert got.wait(5)
        assert reader.alive
    assert seen[0] == WatchEvent("/w", "tok")
    assert WatchEvent("/w/19", "tok") in seen


def test_timeout_leaves_the_client_usable(xsd: FakeXenstored) -> None:
    xsd.stall.add("/slow")
    with XenstoreClient(xsd.path, timeout=0.3) as xs:
        started = time.monotonic()
        with pytest.raises(XenstoreTimeoutError) as e:
            xs.read("/slow")
        assert 0.25 < time.monotonic() - started < 3
        assert e.value.code == ErrorCode.OPERATION_TIMEOUT
        assert xs.read("/local/domain/0/name") == b"Domain-0"


def test_daemon_hang_up_is_reported_not_waited_for(xsd: FakeXenstored) -> None:
    xs = XenstoreClient(xsd.path, timeout=5)
    assert xs.read("/local/domain/0/name") == b"Domain-0"
    xsd.hang_up()
    started = time.monotonic()
    with pytest.raises(XenstoreConnectionError) as e:
        xs.read("/local/domain/0/name")
    assert time.monotonic() - started < 2
    assert e.value.code == ErrorCode.NO_XENSTORE
    with pytest.raises(XenstoreConnectionError):
        xs.write("/x", "y")
    xs.close()
    xs.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[a-z0-9_@-]{1,12}", fullmatch=True),
                          st.binary(max_size=200)), min_size=1, max_size=8))
def test_written_values_read_back(items: list[tuple[str, bytes]]) -> None:
    with FakeXenstored() as daemon, XenstoreClient(daemon.path) as xs:
        expected: dict[str, bytes] = {}
        for name, value in items:
            xs.write(f"/p/{name}", value)
            expected[f"/p/{name}"] = value
        paths = sorted(expected)
        assert xs.read_many(paths) == [expected[p] for p in paths]
        assert sorted(xs.directory("/p") or []) == sorted(p[3:] for p in paths)
