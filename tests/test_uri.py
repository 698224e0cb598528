"""Connection URIs (python/virtkit/uri.py)."""

from __future__ import annotations

import pytest

import virtkit
from virtkit.uri import default_uri, parse_uri


@pytest.mark.parametrize(
    ("text", "driver", "transport", "user", "host", "port", "path", "params"),
    [
        ("test:///default", "test", None, None, None, None, "/default", ()),
        ("qemu:///system", "qemu", None, None, None, None, "/system", ()),
        ("qemu+unix:///session?socket=/tmp/s%20k", "qemu", "unix", None, None, None, "/session",
         (("socket", "/tmp/s k"),)),
        ("qemu+ssh://root@host.example:2222/system", "qemu", "ssh", "root", "host.example", 2222, "/system", ()),
        ("xen:///", "xen", None, None, None, None, "/", ()),
        ("xen", "xen", None, None, None, None, "/", ()),
        ("xen://10.0.0.1:8000/", "xen", None, None, "10.0.0.1", 8000, "/", ()),
        ("test:///tmp/node.xml", "test", None, None, None, None, "/tmp/node.xml", ()),
    ],
)
def test_grammar(text: str, driver: str, transport: str | None, user: str | None, host: str | None,
                 port: int | None, path: str, params: tuple[tuple[str, str], ...]) -> None:
    uri = parse_uri(text)
    assert (uri.driver, uri.transport, uri.user, uri.host, uri.port, uri.path, uri.params) == (
        driver, transport, user, host, port, path, params)
    assert uri.raw == text


@pytest.mark.parametrize("text", ["", "   ", "default", "://x", "1abc:///", "qemu:///x#frag",
                                  "qemu://h:99999/", "te st:///"])
def test_malformed_uris_are_clear_errors(text: str) -> None:
    with pytest.raises(virtkit.InvalidURIError, match="URI"):
        parse_uri(text)


def test_unknown_driver_is_a_connection_error() -> None:
    with pytest.raises(virtkit.ConnectionFailedError, match="no connection driver"):
        virtkit.open("bogus:///x")
    with pytest.raises(virtkit.InvalidURIError):
        virtkit.open("not a uri")


def test_default_uri_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRTKIT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    assert default_uri() == "test:///default"
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", "test:///from-libvirt")
    assert default_uri() == "test:///from-libvirt"
    monkeypatch.setenv("VIRTKIT_DEFAULT_URI", "test:///default")
    assert default_uri() == "test:///default"
    with virtkit.open() as conn:
        assert conn.uri == "test:///default"
