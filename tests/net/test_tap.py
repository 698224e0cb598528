"""Taps for guests: persistent, owned by the guest's user, on the network's bridge."""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Callable
from typing import Any

import pytest

import virtkit
from virtkit.net.tap import tap_mac
from virtkit.xml.network import parse_network
from tests.net.namespaces import Agent, World

T = "virtkit.net.tap"


def _id(shown: int | str, lookup: Callable[[int], Any]) -> int | str:
    """``ip`` prints a known user or group by name: map the expected id's name back."""
    if isinstance(shown, int):
        return shown
    for candidate in (1000, 1001):
        try:
            if lookup(candidate)[0] == shown:
                return candidate
        except KeyError:
            pass
    return shown


def test_tap_mac() -> None:
    assert tap_mac("52:54:00:AB:cd:01") == "fe:54:00:ab:cd:01"
    with pytest.raises(virtkit.InvalidArgumentError):
        tap_mac("nonsense")


@pytest.mark.netns
def test_taps_on_an_active_network(agent: Agent, world: World) -> None:
    agent.create_network(parse_network(
        "<network><name>taps</name><bridge name='vkbr130' stp='off'/>"
        "<ip address='192.168.130.1' prefix='24'/></network>"))
    t0 = agent.create_tap("taps", owner_uid=1000, owner_gid=1001, mac="52:54:00:00:13:01")
    t1 = agent.create_tap("taps", owner_uid=1000)
    assert (t0.name, t1.name, t0.bridge) == ("vnet0", "vnet1", "vkbr130")
    links = world.daemon.links()
    data = links["vnet0"]["linkinfo"]["info_data"]
    assert (data["type"], data["pi"], data["vnet_hdr"], data["persist"]) == ("tap", False, True, True)
    assert (_id(data["user"], pwd.getpwuid), _id(data["group"], grp.getgrgid)) == (1000, 1001)
    assert links["vnet0"]["master"] == "vkbr130" and links["vnet0"]["address"] == "fe:54:00:00:13:01"
    assert "UP" in links["vnet1"]["flags"]
    # root may open a queue of it (what the QEMU backend passes as -netdev tap,fd=N)
    fd = agent.call(f"{T}:open_tap", "vnet0")
    assert isinstance(fd, int)
    named = agent.create_tap("taps", owner_uid=os.getuid(), name="vkguest0")
    assert named.name == "vkguest0"
    with pytest.raises(virtkit.OperationFailedError, match="name is taken"):
        agent.create_tap("taps", owner_uid=0, name="vkguest0")
    for t in (t0, t1, named):
        assert agent.delete_tap(t.name)
    assert not agent.delete_tap("vnet0")
    assert not {"vnet0", "vnet1", "vkguest0"} & set(world.daemon.links())
    with pytest.raises(virtkit.OperationFailedError, match="no such device"):
        agent.call(f"{T}:create_tap", "nobridge", owner_uid=0)
    with pytest.raises(virtkit.NoNetworkError):
        agent.create_tap("nonet", owner_uid=0)
