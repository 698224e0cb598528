"""The procedure table and the threading model of virtkitd's handler."""

from __future__ import annotations

import inspect
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import virtkit
from tests.drivers.remote.conftest import ServerThread
from virtkit.daemon.backends import BACKENDS, BackendPool, TestBackend
from virtkit.daemon.handler import ROUTES, Handler
from virtkit.daemon.paths import session_paths
from virtkit.drivers.interface import OPERATIONS, DomainRef
from virtkit.drivers.remote import driver as remote_driver
from virtkit.drivers.remote.client import RemoteClient
from virtkit.drivers.remote.protocol import BY_NAME, Kind
from virtkit.drivers.remote.driver import RemoteDriver


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], ServerThread]]:
    """``serve(handler)``: a RemoteServer in a thread on sockets in a short temp dir."""
    base = Path(tempfile.mkdtemp(prefix="vkh-"))
    started: list[ServerThread] = []

    def start(handler: Handler) -> ServerThread:
        directory = base / str(len(started))
        directory.mkdir()
        started.append(ServerThread(handler, directory).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()
    shutil.rmtree(base)


def test_every_row_is_a_call_of_the_protocol_using_contract_operations() -> None:
    for name, route in ROUTES.items():
        proc = BY_NAME[name]
        assert proc.kind is Kind.CALL, name
        assert route.operations <= set(OPERATIONS), name
        if route.op is not None and OPERATIONS[route.op].mutating:
            assert not proc.readonly, f"{name} mutates: a read-only socket must refuse it"


def test_the_remote_driver_implements_the_whole_contract_with_served_procedures() -> None:
    assert RemoteDriver.supported_operations() == frozenset(OPERATIONS)
    called = set(re.findall(r'call\("([a-z_]+)"', inspect.getsource(remote_driver)))
    assert called, "the pattern finds the calls"
    assert called <= set(ROUTES), f"procedures the daemon does not serve: {called - set(ROUTES)}"


def test_what_runs_inline_and_what_in_threads() -> None:
    pool = BackendPool(TestBackend, BACKENDS["test"], session_paths())
    with ThreadPoolExecutor(1) as executor:
        handler = Handler(pool, executor)
    threaded = {name for name, inline in handler.inline.items() if not inline}
    assert threaded == {"domain_save", "domain_core_dump", "domain_restore"}
    assert not inspect.iscoroutinefunction(handler.domain_get_info)
    assert inspect.iscoroutinefunction(getattr(handler, "domain_save"))


class GatedBackend(TestBackend):
    """domain_save waits for a gate: a slow operation in a worker thread."""

    entered = threading.Event()
    gate = threading.Event()

    def domain_save(self, dom: DomainRef, path: str) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        super().domain_save(dom, path)


def test_a_slow_operation_does_not_stall_other_clients(serve: Callable[[Handler], ServerThread], tmp_path: Path) -> None:
    pool = BackendPool(GatedBackend, BACKENDS["test"], session_paths())
    executor = ThreadPoolExecutor(4)
    server: ServerThread = serve(Handler(pool, executor))
    uri = f"test+unix:///default?socket={server.path}"
    try:
        with virtkit.open(uri) as slow, virtkit.open(uri) as quick:
            name = "gated"
            slow.define_domain("<domain type='test'><name>gated</name><memory>65536</memory>"
                               "<vcpu>1</vcpu><os><type>hvm</type></os></domain>").start()
            errors: list[BaseException] = []

            def save() -> None:
                try:
                    slow.lookup_domain_by_name(name).save(tmp_path / "gated.save")
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
            saver = threading.Thread(target=save)
            saver.start()
            assert GatedBackend.entered.wait(10)
            # The save holds a worker thread; the loop still answers everyone else.
            assert quick.lookup_domain_by_name("test").info().state == virtkit.DomainState.RUNNING
            assert quick.lookup_domain_by_name(name).is_active()
            GatedBackend.gate.set()
            saver.join(10)
            assert not saver.is_alive() and not errors
            assert not quick.lookup_domain_by_name(name).is_active()
            assert (tmp_path / "gated.save").exists()
    finally:
        GatedBackend.gate.set()
        server.stop()
        executor.shutdown()
        pool.close()


def test_client_side_errors_keep_their_classes(serve: Callable[[Handler], ServerThread], tmp_path: Path) -> None:
    pool = BackendPool(TestBackend, BACKENDS["test"], session_paths())
    executor = ThreadPoolExecutor(2)
    server: ServerThread = serve(Handler(pool, executor))
    try:
        with RemoteClient.connect_unix(server.path, timeout=10) as client:
            client.open("test:///default")
            with pytest.raises(virtkit.VirtError) as info:
                client.call("domain_define_xml", {"xml": "<domain><name>x</name>"})
            assert info.value.code == virtkit.ErrorCode.XML_ERROR
        with virtkit.open(f"test+unix:///default?socket={server.path}") as conn:
            with pytest.raises(virtkit.VirtSystemError) as sys_info:
                conn.restore_domain(tmp_path / "missing.save")
            assert sys_info.value.errno == 2
            bad = tmp_path / "bad.save"
            bad.write_bytes(b"garbage")
            with pytest.raises(virtkit.SaveFileError):
                conn.restore_domain(bad)
    finally:
        server.stop()
        executor.shutdown()
