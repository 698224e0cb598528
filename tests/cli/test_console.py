"""``console``: finding the console through the API, and relaying a terminal to it."""

from __future__ import annotations

import os
import threading
import tty

import pytest

import virtkit
from virtkit.cli.console import console_path, relay


def test_domain_without_console() -> None:
    with virtkit.open_read_only("test:///default") as conn:
        dom = conn.lookup_domain("test")
        with pytest.raises(virtkit.VirtError) as e:
            console_path(dom)
    assert "has no serial console" in str(e.value)


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
