"""The xend client (python/virtkit/drivers/xen/xend.py) against the simulator.

The simulator (``xend_simulator.py``) answers as xend did; these tests check
what goes over the wire (one request per call, form encoding, headers) and
how every kind of failure comes back: xend's own errors, a xend that refuses
connections, stalls, hangs up or sends garbage.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

import virtkit
from virtkit.drivers.xen.xend import XendClient, domain_path
from virtkit.errors import (
    ConnectionFailedError,
    DomainExistsError,
    ErrorCode,
    ErrorDomain,
    NoDomainError,
    NoSupportError,
    OperationFailedError,
    SExprSyntaxError,
    VirtSystemError,
)

from .xend_simulator import XendSimulator


@pytest.fixture
def sim() -> Iterator[XendSimulator]:
    with XendSimulator() as s:
        yield s


def unix(sim: XendSimulator, timeout: float = 5.0) -> XendClient:
    return XendClient(socket_path=sim.socket_path, timeout=timeout)


def test_one_request_per_call_on_unix_socket_and_tcp(sim: XendSimulator) -> None:
    for client in (unix(sim), XendClient(host="127.0.0.1", port=sim.port)):
        before = sim.requests
        node = client.get("/xend/node/")
        assert node.get_int("node/xend_config_format") == 4
        assert node.get_str("node/host") == "xensim"
        assert sim.requests == before + 1 and client.requests == 1


def test_requests_look_like_libvirts(sim: XendSimulator) -> None:
    """No User-Agent and no Accept, else xend renders HTML for a browser."""
    client = unix(sim)
    config = "(vm (name 'a b&c=d')(memory 64)(image (linux (kernel '/k'))))"
    client.post("/xend/domain/", "new", config=config)
    method, target, fields = sim.log[-1]
    assert (method, target, fields) == ("POST", "/xend/domain/", {"op": "new", "config": config})
    assert client.get(domain_path("a b&c=d"), detail=1).get_str("domain/name") == "a b&c=d"
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(sim.socket_path)
        s.sendall(b"GET /xend/node/ HTTP/1.1\r\nUser-Agent: Mozilla/5.0\r\n\r\n")
        assert b"text/html" in s.recv(4096)


def test_xend_errors_become_virtkit_errors(sim: XendSimulator) -> None:
    client = unix(sim)
    sim.add_domain("busy")
    with pytest.raises(NoDomainError) as info:
        client.get(domain_path("nobody"), detail=1)
    assert info.value.domain == ErrorDomain.XEND and "nobody" in str(info.value)
    with pytest.raises(NoDomainError):
        client.post(domain_path("nobody"), "pause")
    with pytest.raises(NoSupportError, match="Operation not implemented: teleport"):
        client.post(domain_path("busy"), "teleport")
    with pytest.raises(OperationFailedError) as failed:
        client.post(domain_path("busy"), "")
    assert failed.value.code == ErrorCode.HTTP_ERROR and "406" in str(failed.value)
    with pytest.raises(OperationFailedError) as failed:
        client.post(domain_path("busy"), "mem_target_set", target=999999)
    assert failed.value.code == ErrorCode.POST_FAILED and "exceeds the maximum" in str(failed.value)
    with pytest.raises(DomainExistsError):
        client.post("/xend/domain/", "new", config="(vm (name busy)(memory 64))")
    with pytest.raises(VirtSystemError) as system:
        client.post(domain_path("busy"), "save", file="/no/such/dir/busy.save")
    assert system.value.errno == 2


@pytest.mark.parametrize("fault,error,words", [
    ("garbage", SExprSyntaxError, "malformed S-expression at byte 1: expected UTF-8"),
    ("unbalanced", SExprSyntaxError, "byte 37"),
    ("truncated", OperationFailedError, "cut short: 18 of 500 bytes"),
    ("huge", OperationFailedError, "larger than"),
    ("close", OperationFailedError, "closed the connection without answering"),
])
def test_broken_replies_give_clear_errors(sim: XendSimulator, fault: str, error: type[Exception],
                                          words: str) -> None:
    sim.fault = fault
    with pytest.raises(error, match=words):
        unix(sim).get("/xend/domain", detail=1)


def test_a_stalled_xend_times_out_within_the_timeout(sim: XendSimulator) -> None:
    sim.fault = "stall"
    start = time.monotonic()
    with pytest.raises(OperationFailedError) as info:
        unix(sim, timeout=0.3).get("/xend/node/")
    assert time.monotonic() - start < 2.0
    assert info.value.code == ErrorCode.OPERATION_TIMEOUT and "within 0.3 s" in str(info.value)
    start = time.monotonic()
    with pytest.raises(ConnectionFailedError, match="did not answer"):
        virtkit.open(sim.uri + "&timeout=0.3")
    assert time.monotonic() - start < 2.0


def test_a_refusing_xend_gives_a_clear_error(sim: XendSimulator) -> None:
    conn = virtkit.open(sim.uri)
    sim.refuse()
    with pytest.raises(ConnectionFailedError, match="cannot connect to xend at unix:"):
        conn.list_domain_ids()
    with pytest.raises(ConnectionFailedError, match="cannot reach xend"):
        virtkit.open(sim.uri)
    with pytest.raises(ConnectionFailedError, match="tcp:127.0.0.1"):
        virtkit.open(sim.tcp_uri)
    sim.listen()
    assert 0 in conn.list_domain_ids()


def test_the_uri_names_the_socket_or_the_host(sim: XendSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from virtkit.drivers.xen import driver

    for uri in (sim.uri, sim.tcp_uri):
        with virtkit.open(uri) as conn:
            assert conn.get_hostname() == "xensim"
    # xen:/// tries xend's socket, then TCP on port 8000 (here: the simulator's port).
    monkeypatch.setattr(driver, "DEFAULT_SOCKET", sim.root + "/absent-socket")
    monkeypatch.setattr(driver, "DEFAULT_PORT", sim.port)
    with virtkit.open("xen:///") as conn:
        assert conn.get_type() == "Xen"
    for bad, words in (("xen:///?socket=relative", "absolute"), ("xen:///?colour=red", "unknown parameter"),
                       ("xen:///some/path", "no path"), (sim.uri + "&timeout=-1", "bad timeout"),
                       (f"xen://127.0.0.1:{sim.port}/?socket=/x", "both a host and a socket")):
        with pytest.raises(ConnectionFailedError, match=words):
            virtkit.open(bad)


@pytest.mark.parametrize("fmt", [1, 2, 3, 4])
def test_the_dialect_comes_from_xend_config_format(fmt: int) -> None:
    with XendSimulator(xend_config_format=fmt) as sim, virtkit.open(sim.uri) as conn:
        node = unix(sim).get("/xend/node/")
        assert node.get_int("node/xend_config_format") == (None if fmt == 1 else fmt)
        assert conn._driver.xend_config_format == fmt  # type: ignore[attr-defined]
