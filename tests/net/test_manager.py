"""NetworkManager in a namespace: life cycle, persistence, failures, crash recovery."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import virtkit
from virtkit.net.store import NetworkStatus
from virtkit.xml.network import parse_network
from tests.net.namespaces import Agent, Client, World, wait_for

pytestmark = pytest.mark.netns


def nat_xml(name: str, n: int, *, bridge: str | None = None, extra: str = "",
            forward: str | None = "nat", dhcp: str | None = None) -> str:
    fwd = f"<forward mode='{forward}'/>" if forward else ""
    br = f"<bridge name='{bridge}' stp='off' delay='0'/>" if bridge else "<bridge stp='off'/>"
    ranges = dhcp if dhcp is not None else f"<range start='192.168.{n}.10' end='192.168.{n}.99'/>"
    return (f"<network><name>{name}</name>{fwd}{br}{extra}"
            f"<ip address='192.168.{n}.1' netmask='255.255.255.0'><dhcp>{ranges}</dhcp></ip>"
            "</network>")


def test_start_makes_bridge_table_dnsmasq_and_destroy_removes_them(
        agent: Agent, world: World, agent_dirs: tuple[Path, Path]) -> None:
    ref = agent.define_network(parse_network(nat_xml("life", 150, bridge="vkbr150")))
    assert agent.list_defined_network_names() == ["life"]
    saved = agent_dirs[0] / "life.xml"
    assert parse_network(saved.read_bytes()).bridge == "vkbr150"
    agent.network_start(ref)
    assert agent.list_network_names() == ["life"]
    links = world.daemon.links()
    assert links["vkbr150"]["linkinfo"]["info_kind"] == "bridge"
    assert world.daemon.addresses("vkbr150") == ["192.168.150.1/24"]
    assert "inet virtkit-vkbr150" in world.daemon.nft_tables()
    pid = agent.dnsmasq_pid(ref)
    assert pid in world.daemon.pids()
    status = NetworkStatus.loads((agent_dirs[1] / "life.status").read_bytes())
    assert (status.state, status.bridge, status.table, status.dnsmasq_pid) == (
        "active", "vkbr150", "virtkit-vkbr150", pid)
    assert world.daemon.exec("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    live = agent.network_get_config(ref, False)
    assert live.bridge == "vkbr150" and live.mac is not None
    assert links["vkbr150"]["address"] == live.mac
    agent.network_destroy(ref)
    assert "vkbr150" not in world.daemon.links()
    assert world.daemon.nft_tables() == []
    wait_for(lambda: world.daemon.pids() == [agent.proc.pid])
    assert not (agent_dirs[1] / "life.status").exists()
    assert agent.list_defined_network_names() == ["life"]


def test_public_api_semantics_through_network_backend(agent: Agent, tmp_path: Path) -> None:
    checked = agent.call("tests.net.scenarios:public_api_round_trip",
                         str(tmp_path / "pub-etc"), str(tmp_path / "pub-state"))
    assert len(checked) == 4


def test_bridge_names_are_assigned_at_define_and_autostart_survives_reopen(
        start_agent: Callable[..., Agent], agent_dirs: tuple[Path, Path], world: World) -> None:
    a = start_agent()
    a.open(str(agent_dirs[0]), str(agent_dirs[1]))
    r1 = a.define_network(parse_network(nat_xml("auto1", 161)))
    r2 = a.define_network(parse_network(nat_xml("auto2", 162)))
    b1, b2 = a.network_get_bridge_name(r1), a.network_get_bridge_name(r2)
    assert (b1, b2) == ("virbr0", "virbr1")
    a.network_set_autostart(r1, True)
    assert os.readlink(agent_dirs[0] / "autostart" / "auto1.xml") == "../auto1.xml"
    a.shutdown()
    b = start_agent()
    b.open(str(agent_dirs[0]), str(agent_dirs[1]))  # autostarts auto1
    assert b.list_network_names() == ["auto1"]
    assert b.list_defined_network_names() == ["auto2"]
    assert "virbr0" in world.daemon.links()
    b.network_set_autostart(b.lookup_network_by_name("auto1"), False)
    assert not (agent_dirs[0] / "autostart" / "auto1.xml").exists()


def test_default_network_on_first_system_start_skips_a_covered_subnet(
        start_agent: Callable[..., Agent], agent_dirs: tuple[Path, Path], world: World) -> None:
    world.daemon.ip("route", "add", "192.168.122.0/24", "via", "198.51.100.2")
    try:
        a = start_agent()
        a.open(str(agent_dirs[0]), str(agent_dirs[1]), system=True)
    finally:
        world.daemon.ip("route", "del", "192.168.122.0/24", "via", "198.51.100.2")
    ref = a.lookup_network_by_name("default")
    assert a.network_get_autostart(ref) and a.network_is_active(ref)
    cfg = a.network_get_config(ref, False)
    assert (cfg.forward_mode, cfg.bridge, cfg.stp) == ("nat", "virbr0", False)
    assert cfg.ips[0].address == "192.168.123.1"
    assert cfg.ips[0].dhcp_ranges[0].start == "192.168.123.2"
    assert world.daemon.addresses("virbr0") == ["192.168.123.1/24"]
    a.network_destroy(ref)
    a.network_undefine(ref)
    a.shutdown()
    b = start_agent()
    b.open(str(agent_dirs[0]), str(agent_dirs[1]), system=True)
    assert b.list_defined_network_names() == [] and b.list_network_names() == [], \
        "an undefined default network is not recreated"


@pytest.mark.parametrize("case", ["bridge taken", "route overlap", "address overlap",
                                  "dnsmasq missing", "dnsmasq fails", "bad range"])
def test_start_failures_name_the_cause_and_leave_nothing(
        case: str, agent: Agent, world: World, tmp_path: Path,
        agent_dirs: tuple[Path, Path]) -> None:
    xml = nat_xml("fail", 170, bridge="vkbr170")
    expected: type[Exception] = virtkit.OperationFailedError
    undo: list[Callable[[], object]] = []
    if case == "bridge taken":
        world.daemon.ip("link", "add", "vkbr170", "type", "bridge")
        undo.append(lambda: world.daemon.ip("link", "del", "vkbr170"))
        match = "bridge name 'vkbr170' is already in use"
    elif case == "route overlap":
        world.daemon.ip("route", "add", "192.168.170.128/25", "via", "198.51.100.2")
        undo.append(lambda: world.daemon.ip("route", "del", "192.168.170.128/25"))
        match = r"subnet 192.168.170.0/24 overlaps the route to 192.168.170.128/25 on up0"
    elif case == "address overlap":
        world.daemon.ip("link", "add", "vkdum", "type", "veth", "peer", "name", "vkdum1")
        world.daemon.ip("addr", "add", "192.168.170.77/32", "dev", "vkdum")
        undo.append(lambda: world.daemon.ip("link", "del", "vkdum"))
        match = "overlaps the address 192.168.170.77/32 of vkdum"
    elif case == "dnsmasq missing":
        path = agent.call("tests.net.scenarios:tool_dir", str(tmp_path / "bin"), ["nft"])
        old = agent.call("tests.net.scenarios:set_path", path)
        undo.append(lambda: agent.call("tests.net.scenarios:set_path", old))
        match = "dnsmasq .* is not installed or not on PATH"
    elif case == "dnsmasq fails":
        path = agent.call("tests.net.scenarios:tool_dir", str(tmp_path / "bin"), ["nft"],
                          {"dnsmasq": "#!/bin/sh\necho 'dnsmasq: simulated failure' >&2\nexit 3\n"})
        old = agent.call("tests.net.scenarios:set_path", path)
        undo.append(lambda: agent.call("tests.net.scenarios:set_path", old))
        match = r"\(start dnsmasq\).*exited with status 3.*simulated failure"
    else:
        xml = nat_xml("fail", 170, dhcp="<range start='192.168.170.10' end='192.168.171.5'/>")
        expected = virtkit.XMLError
        match = "DHCP range 192.168.170.10-192.168.171.5 is not entirely within subnet"
    links_before = set(world.daemon.links())
    try:
        if case == "bad range":
            with pytest.raises(expected, match=match):
                agent.define_network(parse_network(xml))
            with pytest.raises(expected, match=match):
                agent.create_network(parse_network(xml))
        else:
            ref = agent.define_network(parse_network(xml))
            with pytest.raises(expected, match=match):
                agent.network_start(ref)
            assert not agent.network_is_active(ref)
        assert set(world.daemon.links()) == links_before
        assert world.daemon.nft_tables() == []
        assert world.daemon.pids() == [agent.proc.pid]
        assert list(agent_dirs[1].glob("*.status")) == []
        assert list(agent_dirs[1].glob("*.pid")) == []
    finally:
        for fn in undo:
            fn()


def test_a_crashed_daemon_is_adopted_and_its_dnsmasq_kept(
        start_agent: Callable[..., Agent], agent_dirs: tuple[Path, Path], world: World,
        client: Callable[..., Client]) -> None:
    a = start_agent()
    a.open(str(agent_dirs[0]), str(agent_dirs[1]))
    ref = a.define_network(parse_network(nat_xml("crash", 180, bridge="vkbr180")))
    a.network_start(ref)
    t = a.create_network(parse_network(nat_xml("crasht", 181, bridge="vkbr181")))
    pid = a.dnsmasq_pid(ref)
    a.kill9()
    assert os.path.exists(f"/proc/{pid}"), "dnsmasq outlives the daemon"
    b = start_agent()
    b.open(str(agent_dirs[0]), str(agent_dirs[1]))
    assert b.list_network_names() == ["crash", "crasht"]
    assert b.dnsmasq_pid(ref) == pid
    assert not b.network_is_persistent(b.lookup_network_by_name("crasht"))
    assert b.network_get_bridge_name(t) == "vkbr181"
    # The adopted dnsmasq still serves, and the new daemon still supervises it.
    c = client("vkbr180")
    assert c.dhcp()["ip"].startswith("192.168.180.")
    os.kill(pid, 9)
    wait_for(lambda: b.dnsmasq_pid(ref) not in (None, pid))
    b.network_destroy(t)
    with pytest.raises(virtkit.NoNetworkError):
        b.lookup_network_by_name("crasht")


def test_half_made_networks_are_cleaned_up_on_open(
        start_agent: Callable[..., Agent], agent_dirs: tuple[Path, Path], world: World) -> None:
    a = start_agent()
    a.open(str(agent_dirs[0]), str(agent_dirs[1]))
    cfg = parse_network(nat_xml("half", 190, bridge="vkbr190"))
    ref = a.define_network(cfg)
    a.network_start(ref)
    a.kill9()
    # Rewind the status to "starting": a crash in the middle of the start.
    status_file = agent_dirs[1] / "half.status"
    raw = json.loads(status_file.read_bytes())
    raw["state"] = "starting"
    status_file.write_text(json.dumps(raw))
    pid = raw["dnsmasq_pid"]
    # A stranger's bridge of a name a stale status file names is not ours to delete.
    stale = {**raw, "name": "ghost", "bridge": "vkghost", "table": "virtkit-vkghost",
             "dnsmasq_pid": None, "state": "active",
             "live_xml": raw["live_xml"].replace("half", "ghost")}
    (agent_dirs[1] / "ghost.status").write_text(json.dumps(stale))
    world.daemon.ip("link", "add", "vkghost", "type", "bridge")
    try:
        b = start_agent()
        b.open(str(agent_dirs[0]), str(agent_dirs[1]))
        assert b.list_network_names() == []
        assert b.list_defined_network_names() == ["half"]
        links = world.daemon.links()
        assert "vkbr190" not in links and "vkghost" in links
        assert world.daemon.nft_tables() == []
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"))
        assert list(agent_dirs[1].glob("*.status")) == []
        problems = "\n".join(b.attr("problems"))
        assert "network 'half': it was being started or stopped; removing what is left" in problems
        assert "network 'ghost': parts of it are gone" in problems
    finally:
        world.daemon.ip("link", "del", "vkghost")


def test_define_of_active_network_applies_at_next_start_and_undefine_keeps_it_running(
        agent: Agent, world: World) -> None:
    ref = agent.define_network(parse_network(nat_xml("redef", 195, bridge="vkbr195")))
    agent.network_start(ref)
    with pytest.raises(virtkit.NetworkExistsError, match="already exists with uuid"):
        agent.define_network(parse_network(nat_xml("redef", 196, bridge="vkbr195")))
    again = parse_network(nat_xml("redef", 196, bridge="vkbr195"))
    agent.define_network(dataclasses.replace(again, uuid=ref.uuid))
    assert agent.network_get_config(ref, False).ips[0].address == "192.168.195.1"
    assert agent.network_get_config(ref, True).ips[0].address == "192.168.196.1"
    assert world.daemon.addresses("vkbr195") == ["192.168.195.1/24"]
    agent.network_undefine(ref)
    assert agent.network_is_active(ref) and not agent.network_is_persistent(ref)
    assert agent.list_defined_network_names() == []
    agent.network_destroy(ref)
    with pytest.raises(virtkit.NoNetworkError):
        agent.lookup_network_by_uuid(ref.uuid)
