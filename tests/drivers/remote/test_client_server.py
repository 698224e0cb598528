"""RemoteClient and RemoteServer talking over real UNIX sockets in a temp dir."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from virtkit.drivers.remote import protocol
from virtkit.drivers.remote.client import RemoteClient
from virtkit.drivers.remote.protocol import (
    BY_NAME,
    HEADER_SIZE,
    KEEPALIVE_PING,
    KEEPALIVE_PONG,
    KEEPALIVE_PROGRAM,
    REMOTE_ERROR,
    REMOTE_PROGRAM,
    Feature,
    MessageStatus,
    MessageType,
    decode_header,
    encode_packet,
)
from virtkit.drivers.remote.server import ClientConnection
from virtkit.drivers.remote.transport import BlockingChannel
from virtkit.errors import (
    ErrorCode,
    ErrorDomain,
    NoDomainError,
    NoNetworkError,
    NoSupportError,
    OperationDeniedError,
    OperationInvalidError,
    RPCError,
    VirtError,
)

from tests.drivers.remote.conftest import ServerThread
from tests.drivers.remote.fake_handler import FakeHandler

Serve = Callable[..., ServerThread]
FV0_UUID = bytes.fromhex("4dea22b31d52d8f32516782e98ab3fa0")


def connect(server: ServerThread, *, readonly_socket: bool = False, readonly: bool = False,
            **kw: Any) -> RemoteClient:
    client = RemoteClient.connect_unix(server.ro_path if readonly_socket else server.path,
                                       timeout=10, **kw)
    client.open("qemu:///session", readonly=readonly)
    return client


class RawClient:
    """Speaks packets directly, to send what RemoteClient never would."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.serial = 0

    def send_call(self, procedure: int, payload: bytes = b"", *,
                  type: int = MessageType.CALL, program: int = REMOTE_PROGRAM,
                  version: int = 1, status: int = MessageStatus.OK) -> int:
        self.serial += 1
        self.sock.sendall(encode_packet(program, version, procedure, type, self.serial, status,
                                        payload))
        return self.serial

    def recv(self) -> tuple[protocol.Header, bytes]:
        length = struct.unpack(">I", self._exactly(4))[0]
        body = self._exactly(length - 4)
        return decode_header(body), body[HEADER_SIZE:]

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def call(self, name: str, args: Any = None) -> tuple[protocol.Header, Any]:
        proc = BY_NAME[name]
        self.send_call(proc.number, proc.args.encode(args))
        header, payload = self.recv()
        if header.status == MessageStatus.ERROR:
            return header, REMOTE_ERROR.decode(payload)
        return header, proc.ret.decode(payload)

    def open(self) -> None:
        header, _ = self.call("connect_open", {"name": None, "flags": 0})
        assert header.status == MessageStatus.OK

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


# --- ordinary calls -------------------------------------------------------------------------


def test_calls_and_results(serve: Serve) -> None:
    server = serve(FakeHandler())
    with connect(server) as client:
        assert client.call("connect_get_type") == {"type": "QEMU"}
        listed = client.call("connect_list_all_domains", {"need_results": 1, "flags": 0})
        assert listed == {"domains": [{"name": "fv0", "uuid": FV0_UUID, "id": 1}], "ret": 1}
        dom = client.call("domain_lookup_by_name", {"name": "fv0"})["dom"]
        info = client.call("domain_get_info", {"dom": dom})
        assert info == {"state": 1, "max_mem": 1048576, "memory": 524288, "nr_virt_cpu": 2,
                        "cpu_time": 12_500_000_000}
        assert client.call("domain_lookup_by_uuid", {"uuid": FV0_UUID})["dom"] == dom
        assert client.call("node_get_info")["model"] == "x86_64"
        assert client.call("domain_suspend", {"dom": dom}) is None
        assert client.call("domain_get_state", {"dom": dom, "flags": 0}) == {
            "state": 3, "reason": 1}
    assert server.names()[:2] == ["auth_list", "connect_open"]
    assert server.names()[-1] == "connect_close"


def test_error_replies_become_virtkit_exceptions(serve: Serve) -> None:
    server = serve(FakeHandler())
    with connect(server) as client:
        with pytest.raises(NoDomainError, match="no domain with matching name 'nope'") as err:
            client.call("domain_lookup_by_name", {"name": "nope"})
        assert err.value.code == ErrorCode.NO_DOMAIN
        with pytest.raises(NoNetworkError):
            client.call("network_lookup_by_name", {"name": "nope"})
        dom = client.call("domain_lookup_by_name", {"name": "fv0"})["dom"]
        with pytest.raises(OperationInvalidError, match="already running"):
            client.call("domain_create", {"dom": dom})
        with pytest.raises(NoSupportError, match="not supported.*domain_save") as nosup:
            client.call("domain_save", {"dom": dom, "to": "/tmp/x"})
        assert nosup.value.domain == ErrorDomain.RPC
        # The connection is still fine after errors.
        assert client.call("connect_get_hostname") == {"hostname": "fakehost"}


def test_bad_arguments_are_refused_by_the_client(serve: Serve) -> None:
    server = serve(FakeHandler())
    with connect(server) as client:
        with pytest.raises(RPCError, match="missing field 'dom'"):
            client.call("domain_get_info", {})
        with pytest.raises(VirtError, match="unknown remote procedure"):
            client.call("domain_frobnicate")
        assert client.call("connect_get_type") == {"type": "QEMU"}


# --- access control and connection state ----------------------------------------------------


def test_read_only_socket(serve: Serve) -> None:
    server = serve(FakeHandler())
    mode = stat.S_IMODE(os.stat(server.ro_path).st_mode)
    assert mode == 0o666
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600
    with connect(server, readonly_socket=True) as client:
        dom = client.call("domain_lookup_by_name", {"name": "fv0"})["dom"]
        assert client.call("domain_get_info", {"dom": dom})["state"] == 1
        with pytest.raises(OperationDeniedError, match="read only access prevents "
                                                       "domain_destroy"):
            client.call("domain_destroy", {"dom": dom})
        with pytest.raises(OperationDeniedError):
            client.call("domain_define_xml", {"xml": "<domain/>"})
    assert server.handler.domains["fv0"].id == 1  # type: ignore[attr-defined]


def test_read_only_open_on_read_write_socket(serve: Serve) -> None:
    server = serve(FakeHandler())
    with connect(server, readonly=True) as client:
        dom = client.call("domain_lookup_by_name", {"name": "fv0"})["dom"]
        with pytest.raises(OperationDeniedError):
            client.call("domain_suspend", {"dom": dom})


def test_calls_need_an_open_connection(serve: Serve) -> None:
    server = serve(FakeHandler())
    client = RemoteClient.connect_unix(server.path, timeout=10)
    try:
        assert client.call("auth_list") == {"types": [0]}
        assert client.call("connect_supports_feature",
                           {"feature": Feature.PROGRAM_KEEPALIVE}) == {"supported": 1}
        with pytest.raises(VirtError, match="connection not open") as err:
            client.call("connect_get_type")
        assert err.value.code == ErrorCode.INTERNAL_ERROR
        client.open(None)
        with pytest.raises(VirtError, match="already open"):
            client.call("connect_open", {"name": None, "flags": 0})
        client.call("connect_close")
        with pytest.raises(VirtError, match="connection not open"):
            client.call("connect_get_type")
    finally:
        client.close()


def test_connect_open_failure_leaves_the_connection_closed(serve: Serve) -> None:
    server = serve(FakeHandler())
    client = RemoteClient.connect_unix(server.path, timeout=10)
    try:
        with pytest.raises(VirtError, match="unsupported URI"):
            client.open("xen:///")
        with pytest.raises(VirtError, match="connection not open"):
            client.call("connect_get_type")
        client.open("qemu:///session")
        assert client.call("connect_get_uri") == {"uri": "qemu:///session"}
    finally:
        client.close()


def test_supports_feature(serve: Serve) -> None:
    class Bare:
        def connect_supports_feature(self, conn: ClientConnection,
                                     args: dict[str, Any]) -> dict[str, Any]:
            return {"supported": int(args["feature"] == Feature.TYPED_PARAM_STRING)}

    for handler, event_callbacks in ((FakeHandler(), 1), (Bare(), 0)):
        server = serve(handler)
        with connect(server) as client:
            def supported(feature: int) -> int:
                return int(client.call("connect_supports_feature",
                                       {"feature": feature})["supported"])
            assert supported(Feature.PROGRAM_KEEPALIVE) == 1
            assert supported(Feature.REMOTE_CLOSE_CALLBACK) == 1
            assert supported(Feature.REMOTE_EVENT_CALLBACK) == event_callbacks
            assert supported(Feature.FD_PASSING) == 0
            assert supported(Feature.TYPED_PARAM_STRING) == int(isinstance(handler, Bare))
            assert supported(Feature.MIGRATION_V3) == 0
            client.call("connect_register_close_callback")
            client.call("connect_unregister_close_callback")


# --- what the server refuses ----------------------------------------------------------------


def test_unknown_procedures_programs_and_types(serve: Serve) -> None:
    server = serve(FakeHandler())
    raw = RawClient(server.path)
    try:
        raw.open()
        serial = raw.send_call(9999)
        header, payload = raw.recv()
        assert (header.serial, header.status) == (serial, MessageStatus.ERROR)
        error = REMOTE_ERROR.decode(payload)
        assert error["code"] == ErrorCode.NO_SUPPORT
        assert error["message"] == "unknown procedure: 9999"

        raw.send_call(3, program=0x1234)
        header, payload = raw.recv()
        assert REMOTE_ERROR.decode(payload)["message"] == "cannot find program 0x1234 version 1"

        raw.send_call(3, type=MessageType.CALL_WITH_FDS, payload=b"\0\0\0\0")
        header, payload = raw.recv()
        assert REMOTE_ERROR.decode(payload)["code"] == ErrorCode.NO_SUPPORT

        console = BY_NAME["domain_open_console"]
        dom = {"name": "fv0", "uuid": FV0_UUID, "id": 1}
        raw.send_call(console.number, console.args.encode({"dom": dom, "dev_name": None,
                                                           "flags": 0}))
        header, payload = raw.recv()
        assert "streams are not supported yet" in REMOTE_ERROR.decode(payload)["message"]

        event = BY_NAME["domain_event_callback_lifecycle"]
        raw.send_call(event.number)
        header, payload = raw.recv()
        assert "is an event" in REMOTE_ERROR.decode(payload)["message"]

        # Streams and messages from a client are dropped without a reply...
        raw.send_call(3, type=MessageType.STREAM, status=MessageStatus.CONTINUE)
        raw.send_call(3, type=MessageType.MESSAGE)
        # ...and the connection still answers.
        header, result = raw.call("connect_get_type")
        assert result == {"type": "QEMU"}
    finally:
        raw.close()


def test_undecodable_arguments_get_an_error_reply(serve: Serve) -> None:
    server = serve(FakeHandler())
    raw = RawClient(server.path)
    try:
        raw.open()
        raw.send_call(BY_NAME["domain_get_info"].number, b"\0\0\0\3fv")
        header, payload = raw.recv()
        error = REMOTE_ERROR.decode(payload)
        assert error["code"] == ErrorCode.RPC
        assert "cannot decode the arguments of domain_get_info" in error["message"]
        assert raw.call("connect_get_type")[1] == {"type": "QEMU"}
    finally:
        raw.close()


@pytest.mark.parametrize("prefix", [
    struct.pack(">I", 0x7FFFFFFF),  # longer than the 32 MiB maximum
    struct.pack(">I", 10),  # shorter than a header
])
def test_bad_length_closes_only_that_client(serve: Serve, prefix: bytes,
                                            caplog: pytest.LogCaptureFixture) -> None:
    server = serve(FakeHandler())
    with connect(server) as bystander:
        raw = RawClient(server.path)
        try:
            raw.sock.sendall(prefix + b"\0" * 28)
            assert raw.closed_by_peer()
        finally:
            raw.close()
        assert bystander.call("connect_get_type") == {"type": "QEMU"}
    assert "closing the connection" in caplog.text


def test_packet_size_limit(serve: Serve) -> None:
    server = serve(FakeHandler(), max_message=4096)
    with connect(server) as client:
        with pytest.raises(RPCError, match="connection closed"):
            client.call("domain_define_xml", {"xml": "x" * 5000})


# --- handler failures -----------------------------------------------------------------------


class Faulty(FakeHandler):
    def connect_get_hostname(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        raise ValueError("secret detail")

    def connect_get_type(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        return {"type": 42}

    def connect_get_version(self, conn: ClientConnection, args: None) -> dict[str, Any]:
        raise VirtError("custom", code=ErrorCode.OPERATION_TIMEOUT, domain=ErrorDomain.QEMU,
                        str1="s1", int1=3)


def test_handler_exceptions_become_error_replies(serve: Serve,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    server = serve(Faulty())
    with connect(server) as client:
        with pytest.raises(VirtError, match="internal error: ValueError in "
                                            "connect_get_hostname") as err:
            client.call("connect_get_hostname")
        assert err.value.code == ErrorCode.INTERNAL_ERROR
        assert "secret detail" not in err.value.message
        with pytest.raises(VirtError, match="invalid reply from connect_get_type"):
            client.call("connect_get_type")
        with pytest.raises(VirtError, match="custom") as custom:
            client.call("connect_get_version")
        assert (custom.value.code, custom.value.domain, custom.value.str1,
                custom.value.int1) == (ErrorCode.OPERATION_TIMEOUT, ErrorDomain.QEMU, "s1", 3)
        assert client.call("connect_get_uri") == {"uri": "qemu:///session"}
    assert "secret detail" in caplog.text  # logged with its traceback, not sent


# --- async handlers and concurrency ---------------------------------------------------------


class Slow(FakeHandler):
    # Coroutine methods where FakeHandler has plain ones: the server accepts either.
    async def domain_get_xml_desc(self, conn: ClientConnection,  # type: ignore[override]
                                  args: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return {"xml": "<slow/>"}

    async def connect_get_hostname(self, conn: ClientConnection,  # type: ignore[override]
                                   args: None) -> dict[str, Any]:
        return {"hostname": "async"}


def test_async_handlers(serve: Serve) -> None:
    server = serve(Slow())
    dom = {"name": "fv0", "uuid": FV0_UUID, "id": 1}
    with connect(server) as client, connect(server) as other:
        assert client.call("connect_get_hostname") == {"hostname": "async"}
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(
            client.call("domain_get_xml_desc", {"dom": dom, "flags": 0})))
        start = time.monotonic()
        thread.start()
        time.sleep(0.05)
        # Another client is served while the slow call is pending.
        assert other.call("connect_get_type") == {"type": "QEMU"}
        assert time.monotonic() - start < 0.25
        thread.join()
        assert result == [{"xml": "<slow/>"}]


def test_replies_may_overtake_slow_calls(serve: Serve) -> None:
    server = serve(Slow())
    raw = RawClient(server.path)
    try:
        raw.open()
        proc = BY_NAME["domain_get_xml_desc"]
        dom = {"name": "fv0", "uuid": FV0_UUID, "id": 1}
        slow = raw.send_call(proc.number, proc.args.encode({"dom": dom, "flags": 0}))
        fast = raw.send_call(BY_NAME["connect_get_type"].number)
        first, _ = raw.recv()
        second, payload = raw.recv()
        assert (first.serial, second.serial) == (fast, slow)
        assert proc.ret.decode(payload) == {"xml": "<slow/>"}
    finally:
        raw.close()


def test_client_timeout(serve: Serve) -> None:
    server = serve(Slow())
    client = connect(server)
    try:
        dom = {"name": "fv0", "uuid": FV0_UUID, "id": 1}
        with pytest.raises(RPCError, match="timed out"):
            client.call("domain_get_xml_desc", {"dom": dom, "flags": 0}, timeout=0.05)
        assert client.channel.closed
    finally:
        client.close()


# --- events and keepalive -------------------------------------------------------------------


def test_events_reach_registered_clients(serve: Serve) -> None:
    server = serve(FakeHandler())
    events: list[tuple[str, Any]] = []
    with connect(server, on_event=lambda name, msg: events.append((name, msg))) as watcher, \
            connect(server) as actor:
        callback = watcher.call("connect_domain_event_callback_register_any",
                                {"event_id": 0, "dom": None})["callback_id"]
        dom = actor.call("domain_lookup_by_name", {"name": "fv0"})["dom"]
        actor.call("domain_suspend", {"dom": dom})
        actor.call("domain_resume", {"dom": dom})
        deadline = time.monotonic() + 5
        while len(events) < 2 and time.monotonic() < deadline:
            watcher.poll_events(0.1)
        assert events == [
            ("domain_event_callback_lifecycle",
             {"callback_id": callback, "msg": {"dom": dom, "event": 3, "detail": 0}}),
            ("domain_event_callback_lifecycle",
             {"callback_id": callback, "msg": {"dom": dom, "event": 4, "detail": 0}}),
        ]


def test_send_event_checks_its_arguments(serve: Serve) -> None:
    server = serve(FakeHandler())
    with connect(server):
        assert server.server is not None
        conn = next(iter(server.call(lambda: server.server.connections)))  # type: ignore[union-attr]
        with pytest.raises(RPCError, match="not an event"):
            server.call(lambda: conn.send_event("domain_get_info", {}))
        with pytest.raises(RPCError):
            server.call(lambda: conn.send_event("connect_event_connection_closed", {}))


def test_client_ping_is_answered(serve: Serve) -> None:
    server = serve(FakeHandler())
    with connect(server) as client:
        client.channel.ping()
        deadline = time.monotonic() + 5
        while client.channel.pongs == 0 and time.monotonic() < deadline:
            client.poll_events(0.1)
        assert client.channel.pongs == 1


def test_server_pings_and_drops_silent_clients(serve: Serve) -> None:
    server = serve(FakeHandler(), keepalive_interval=0.05, keepalive_count=3)
    # A client that answers PINGs (poll handles them) stays connected...
    with connect(server) as client:
        client.call("connect_supports_feature", {"feature": Feature.PROGRAM_KEEPALIVE})
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            client.poll_events(0.05)
        assert client.call("connect_get_type") == {"type": "QEMU"}
    # ...one that announces keepalive and then stays silent is dropped.
    raw = RawClient(server.path)
    try:
        raw.call("connect_supports_feature", {"feature": Feature.PROGRAM_KEEPALIVE})
        pings = 0
        while True:
            try:
                header, _ = raw.recv()
            except (EOFError, ConnectionResetError):
                break
            assert (header.program, header.procedure) == (KEEPALIVE_PROGRAM, KEEPALIVE_PING)
            pings += 1
        assert pings == 3
    finally:
        raw.close()


def test_keepalive_messages_on_the_raw_wire(serve: Serve) -> None:
    server = serve(FakeHandler())
    raw = RawClient(server.path)
    try:
        raw.send_call(KEEPALIVE_PING, program=KEEPALIVE_PROGRAM, type=MessageType.MESSAGE)
        header, payload = raw.recv()
        assert (header.program, header.procedure, header.type, header.serial, payload) == (
            KEEPALIVE_PROGRAM, KEEPALIVE_PONG, MessageType.MESSAGE, 0, b"")
    finally:
        raw.close()


def test_channel_answers_server_pings_while_waiting_for_a_reply() -> None:
    server_sock, client_sock = socket.socketpair()
    messages: list[protocol.Header] = []
    channel = BlockingChannel(client_sock, on_message=lambda h, b: messages.append(h))

    def fake_server() -> None:
        length = struct.unpack(">I", server_sock.recv(4))[0]
        call = decode_header(server_sock.recv(length - 4))
        server_sock.sendall(encode_packet(KEEPALIVE_PROGRAM, 1, KEEPALIVE_PING,
                                          MessageType.MESSAGE, 0, MessageStatus.OK))
        server_sock.sendall(encode_packet(REMOTE_PROGRAM, 1, 318, MessageType.MESSAGE, 0,
                                          MessageStatus.OK, b"event"))
        server_sock.sendall(encode_packet(REMOTE_PROGRAM, 1, call.procedure,
                                          MessageType.REPLY, call.serial + 1,
                                          MessageStatus.OK))  # not ours: ignored
        server_sock.sendall(encode_packet(REMOTE_PROGRAM, 1, call.procedure,
                                          MessageType.REPLY, call.serial, MessageStatus.OK,
                                          b"\0\0\0\7"))
        pong = server_sock.recv(28)
        assert decode_header(pong[4:]).procedure == KEEPALIVE_PONG

    thread = threading.Thread(target=fake_server)
    thread.start()
    try:
        header, body = channel.call(REMOTE_PROGRAM, 1, 51, b"", timeout=5)
        assert body[HEADER_SIZE:] == b"\0\0\0\7"
        assert [m.procedure for m in messages] == [318]
    finally:
        thread.join()
        channel.close()
        server_sock.close()


# --- server lifetime ------------------------------------------------------------------------


def test_trace_records(serve: Serve) -> None:
    server = serve(FakeHandler())
    with connect(server) as client:
        with pytest.raises(NoDomainError):
            client.call("domain_lookup_by_name", {"name": "nope"})
    lookup = [r for r in server.records if r.name == "domain_lookup_by_name"][0]
    assert lookup.args == {"name": "nope"}
    assert isinstance(lookup.error, NoDomainError)
    assert lookup.number == 23 and lookup.serial > 0


def test_peer_credentials_and_hooks(serve: Serve) -> None:
    seen: list[tuple[str, Any]] = []

    class Hooked(FakeHandler):
        def client_connected(self, conn: ClientConnection) -> None:
            seen.append(("connected", conn.peer))

        async def client_disconnected(self, conn: ClientConnection) -> None:
            seen.append(("disconnected", conn.id))

        def connect_get_uri(self, conn: ClientConnection, args: None) -> dict[str, Any]:
            assert conn.peer is not None
            return {"uri": f"pid={conn.peer.pid} uid={conn.peer.uid} ro={conn.readonly}"}

    server = serve(Hooked())
    with connect(server) as client:
        assert client.call("connect_get_uri") == {
            "uri": f"pid={os.getpid()} uid={os.getuid()} ro=False"}
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen[0][0] == "connected" and seen[0][1].pid == os.getpid()
    assert seen[1][0] == "disconnected"


def test_close_disconnects_clients(serve: Serve) -> None:
    server = serve(FakeHandler())
    client = connect(server)
    try:
        server.stop()
        with pytest.raises(RPCError):
            client.call("connect_get_type")
    finally:
        client.close()


def test_stale_and_busy_socket_paths(serve: Serve, sockdir: Any) -> None:
    server = serve(FakeHandler())
    # A live server owns its path.
    other = ServerThread(FakeHandler(), sockdir / "0")
    with pytest.raises(RPCError, match="another server is listening"):
        other.start()
    # A socket file nobody listens on is replaced.
    stale = str(sockdir / "stale.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(stale)
    sock.close()

    async def listen_on_stale() -> None:
        assert server.server is not None
        await server.server.listen_unix(stale, mode=0o600)

    fut = asyncio.run_coroutine_threadsafe(listen_on_stale(), server._loop)
    fut.result(timeout=10)
    client = RemoteClient.connect_unix(stale, timeout=10)
    client.open()
    client.close()
    # A regular file is never removed.
    plain = sockdir / "plain"
    plain.write_text("keep me")

    async def listen_on_file() -> None:
        assert server.server is not None
        await server.server.listen_unix(plain, mode=0o600)

    with pytest.raises(RPCError, match="not a socket"):
        asyncio.run_coroutine_threadsafe(listen_on_file(), server._loop).result(timeout=10)
    assert plain.read_text() == "keep me"


def test_logging_does_not_break_on_unknown_message_types(
        serve: Serve, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="virtkit.drivers.remote.server")
    server = serve(FakeHandler())
    raw = RawClient(server.path)
    try:
        raw.send_call(3, type=MessageType.REPLY)
        assert raw.call("auth_list")[1] == {"types": [0]}
    finally:
        raw.close()
    assert "dropping REPLY packet" in caplog.text
