"""Bridges: created with STP, forward delay, MAC, alias and addresses; free names; taken names."""

from __future__ import annotations

import pytest

import virtkit
from tests.net.namespaces import Agent, World

pytestmark = pytest.mark.netns
B = "virtkit.net.bridge"


def test_create_reports_and_deletes(agent: Agent, world: World) -> None:
    index = agent.call(f"{B}:create_bridge", "vkbrt1", alias="virtkit:abc", stp=True, delay=3,
                       mac="52:54:00:12:34:56", addresses=[("10.77.0.1", 24), ("fd77::1", 64)])
    info = agent.call(f"{B}:bridge_info", "vkbrt1")
    assert info.index == index and info.up
    assert (info.stp, info.forward_delay, info.mac, info.alias) == (
        True, 300, "52:54:00:12:34:56", "virtkit:abc")
    assert ("10.77.0.1", 24) in info.addresses and ("fd77::1", 64) in info.addresses
    link = world.daemon.links()["vkbrt1"]
    assert link["linkinfo"]["info_data"]["stp_state"] == 1
    assert link["linkinfo"]["info_data"]["forward_delay"] == 300
    assert agent.call(f"{B}:is_ours", "vkbrt1", "virtkit:abc")
    assert not agent.call(f"{B}:is_ours", "vkbrt1", "virtkit:other")
    assert agent.call(f"{B}:delete_bridge", "vkbrt1")
    assert not agent.call(f"{B}:delete_bridge", "vkbrt1")
    assert agent.call(f"{B}:bridge_info", "vkbrt1") is None


def test_stp_off_keeps_a_zero_delay_and_names_are_free_or_taken(agent: Agent, world: World) -> None:
    agent.call(f"{B}:create_bridge", "virbr0", alias="virtkit:x", stp=False, delay=0)
    try:
        info = agent.call(f"{B}:bridge_info", "virbr0")
        assert (info.stp, info.forward_delay) == (False, 0)
        assert agent.call(f"{B}:free_bridge_name") == "virbr1"
        assert agent.call(f"{B}:free_bridge_name", ["virbr1"]) == "virbr2"
        with pytest.raises(virtkit.OperationFailedError, match="'virbr0' is already in use"):
            agent.call(f"{B}:create_bridge", "virbr0", alias="virtkit:y")
    finally:
        agent.call(f"{B}:delete_bridge", "virbr0")


def test_a_failed_setup_leaves_no_bridge(agent: Agent, world: World) -> None:
    with pytest.raises(virtkit.VirtSystemError, match="add address"):
        agent.call(f"{B}:create_bridge", "vkbrt2", alias="virtkit:z",
                   addresses=[("10.78.0.1", 24), ("10.78.0.1", 24)])
    assert "vkbrt2" not in world.daemon.links()
