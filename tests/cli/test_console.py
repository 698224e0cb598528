"""``console``: the NO_SUPPORT answer today, and the relay a driver's console will use."""

from __future__ import annotations

import os
import threading
import tty

import pytest

import virtkit
from virtkit.cli.console import console_path, relay


def test_no_driver_provides_a_console_yet() -> None:
    with virtkit.open_read_only("test:///default") as conn:
        dom = conn.lookup_domain("test")
        with pytest.raises(virtkit.NoSupportError) as e:
            console_path(dom)
    assert "Test driver provides no console for domain 'test'" in str(e.value)
    assert e.value.code == virtkit.ErrorCode.NO_SUPPORT


class ConsoleDomain:
    """A domain whose driver offers the hook."""

    def __init__(self, path: str) -> None:
        self.path = path

    def console_path(self) -> str:
        return self.path


def test_hook_is_used() -> None:
    assert console_path(ConsoleDomain("/dev/pts/7")) == "/dev/pts/7"  # type: ignore[arg-type]


def test_relay_both_ways_until_escape() -> None:
    guest, console = os.openpty()  # the guest's side is ``console``; we relay ``guest``
    tty.setraw(console)
    user_in_r, user_in_w = os.pipe()
    user_out_r, user_out_w = os.pipe()
    thread = threading.Thread(target=relay, args=(guest, user_in_r, user_out_w))
    thread.start()
    os.write(console, b"login: ")
    assert os.read(user_out_r, 100) == b"login: "
    os.write(user_in_w, b"root\n")
    assert b"root" in os.read(console, 100)
    os.write(user_in_w, b"ls\x1dignored")
    thread.join(5)
    assert not thread.is_alive()
    assert b"ls" in os.read(console, 100)
    for fd in (guest, console, user_in_r, user_in_w, user_out_r, user_out_w):
        os.close(fd)


def test_relay_ends_when_console_closes() -> None:
    guest, console = os.openpty()
    user_in_r, user_in_w = os.pipe()
    user_out_r, user_out_w = os.pipe()
    thread = threading.Thread(target=relay, args=(guest, user_in_r, user_out_w))
    thread.start()
    os.close(console)
    thread.join(5)
    assert not thread.is_alive()
    for fd in (guest, user_in_r, user_in_w, user_out_r, user_out_w):
        os.close(fd)
