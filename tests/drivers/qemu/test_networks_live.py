"""Virtual networks and every interface type with real guests, through a system virtkitd
that runs inside a private network namespace (tests/drivers/qemu/netns.py).

The daemon (``virtkitd --system --driver qemu``) and an "outside" host live in
namespaces this module creates, joined by a veth; the host's own links,
routes, firewall and namespaces are compared before and after the run.
Assertions are on what the test guest itself printed: its ``VIRTKIT-LEASE``
line and the output of ``ping``, ``nc`` and ``nslookup`` typed into its shell.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import virtkit
from tests.drivers.qemu.netns import LiveGuest, NetnsWorld, host_snapshot, nic, ping_from
from tests.guest.conftest import guest_image  # noqa: F401 - the shared, session-scoped image
from tests.guest.console import GuestImage
from tests.net.namespaces import OUTSIDE_IP, UPLINK_IP, PeerEcho
from virtkit import DomainState

pytestmark = [pytest.mark.netns, pytest.mark.qemu, pytest.mark.guest]

_MISSING = [p for p in ("ip", "nft", "dnsmasq", "busybox") if shutil.which(p) is None]
if os.geteuid() != 0 or _MISSING:
    # Loud, not silent: the test command runs as root and installs these programs.
    pytest.fail("networks in namespaces need root" if os.geteuid() != 0 else
                f"missing programs: {', '.join(_MISSING)} (scripts/test installs them)",
                pytrace=False)


def network_xml(name: str, third: int, *, forward: str | None = "nat", bridge: str = "",
                inner: str = "", dhcp_hosts: str = "", domain: str = "") -> str:
    fwd = f"<forward mode='{forward}'/>" if forward else ""
    br = f"<bridge name='{bridge}' stp='off' delay='0'/>" if bridge else \
        "<bridge stp='off' delay='0'/>"
    dom = f"<domain name='{domain}' localOnly='yes'/>" if domain else ""
    return (f"<network><name>{name}</name>{fwd}{br}{dom}{inner}"
            f"<ip address='192.168.{third}.1' netmask='255.255.255.0'><dhcp>"
            f"<range start='192.168.{third}.100' end='192.168.{third}.199'/>{dhcp_hosts}"
            f"</dhcp></ip></network>")


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def host_network_unchanged() -> Iterator[None]:
    """The host's links, routes, nftables ruleset and namespaces, before == after."""
    before = host_snapshot()
    yield
    after = host_snapshot()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"the test session changed the host's network: {changed}"


@pytest.fixture(scope="module")
def world(host_network_unchanged: None) -> Iterator[NetnsWorld]:
    w = NetnsWorld("qn").start()
    try:
        yield w
    finally:
        log = w.log()
        left = w.close()
    assert not left, f"left behind: {left}\n{log[-3000:]}"


@pytest.fixture
def conn(world: NetnsWorld) -> Iterator[virtkit.Connection]:
    with world.daemon.connect() as c:
        yield c


@pytest.fixture
def guests(conn: virtkit.Connection, guest_image: GuestImage  # noqa: F811
           ) -> Iterator[Any]:
    """``guests(name, interfaces, start=True)`` -> LiveGuest; all closed after the test."""
    made: list[LiveGuest] = []

    def make(name: str, interfaces: str, *, start: bool = True) -> LiveGuest:
        g = LiveGuest(conn, name, guest_image, interfaces, start=start)
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


@pytest.fixture
def network(conn: virtkit.Connection) -> Iterator[Any]:
    """``network(xml)`` -> a transient network, destroyed after the test."""
    made: list[virtkit.Network] = []

    def make(xml: str) -> virtkit.Network:
        net = conn.create_network(xml)
        made.append(net)
        return net

    yield make
    for net in made:
        try:
            net.destroy()
        except virtkit.NoNetworkError:
            pass


def taps(world: NetnsWorld) -> dict[str, dict[str, Any]]:
    return {n: link for n, link in world.daemon_ns.links().items()
            if link.get("linkinfo", {}).get("info_kind") == "tun"}


# --- the daemon's networks --------------------------------------------------------------------

def test_default_network_is_defined_and_autostarted(world: NetnsWorld,
                                                    conn: virtkit.Connection) -> None:
    assert conn.list_networks() == ["default"]
    net = conn.lookup_network_by_name("default")
    assert net.is_persistent() and net.autostart and net.bridge_name() == "virbr0"
    assert "<bridge name='virbr0' stp='off'" in net.xml_desc(), "no 4 s STP hold on new taps"
    assert "192.168.122.1" in world.daemon_ns.addresses("virbr0")[0]
    assert (world.daemon.config_dir / "network" / "default.xml").exists()
    # Undefined while active: it keeps running, transient; destroyed: gone, and a
    # restarted daemon does not define it again (it was considered once).
    net.undefine()
    assert net.is_active() and not net.is_persistent()
    net.destroy()
    with pytest.raises(virtkit.NoNetworkError):
        conn.lookup_network_by_name("default")
    world.restart()
    with world.daemon.connect() as again:
        assert again.list_networks() == [] and again.list_defined_networks() == []


def test_networks_autostart_before_domains(world: NetnsWorld, guest_image: GuestImage  # noqa: F811
                                           ) -> None:
    with world.daemon.connect() as conn:
        net = conn.define_network(network_xml("auto1", 151))
        net.autostart = True
        g = LiveGuest(conn, "g-auto", guest_image, nic("network", "auto1"), start=False)
        g.dom.autostart = True
        assert not net.is_active()
    try:
        world.restart()  # the daemon starts auto1, then g-auto on it
        with world.daemon.connect() as conn:
            assert conn.lookup_network_by_name("auto1").is_active()
            g.conn = conn
            g.dom = conn.lookup_domain_by_name("g-auto")
            assert g.dom.state() == DomainState.RUNNING
            from tests.drivers.qemu.guests import open_console

            g.console = open_console(g.dom)
            assert g.lease()["ip"].startswith("192.168.151.")
            g.close()
            net = conn.lookup_network_by_name("auto1")
            net.destroy()
            net.undefine()
    finally:
        with world.daemon.connect() as conn:
            for name in ("auto1",):
                try:
                    n = conn.lookup_network_by_name(name)
                    if n.is_active():
                        n.destroy()
                    if n.is_persistent():
                        n.undefine()
                except virtkit.NoNetworkError:
                    pass


# --- network interfaces: NAT, routed, isolated ------------------------------------------------

def test_two_guests_on_a_nat_network(world: NetnsWorld, conn: virtkit.Connection,
                                     network: Any, guests: Any) -> None:
    net = network(network_xml("nat1", 160, bridge="vknat1"))
    a = guests("g-a", nic("network", "nat1"))
    b = guests("g-b", nic("network", "nat1"))
    # MACs were generated in QEMU's block when defined, and kept in the definition.
    mac_a = a.dom.xml_desc(inactive=True).split("<mac address='")[1][:17]
    assert mac_a.startswith("52:54:00:")
    lease_a, lease_b = a.lease(), b.lease()
    for lease in (lease_a, lease_b):
        assert lease["ip"].startswith("192.168.160.") and lease["router"] == "192.168.160.1"
        assert lease["dns"] == "192.168.160.1" and lease["mask"] == "24"
    # What the daemon says agrees with what the guests saw.
    [addr] = a.dom.interface_addresses()
    assert (addr.hwaddr, [x.addr for x in addr.addrs]) == (mac_a, [lease_a["ip"]])
    by_mac = {x.mac: x.ipaddr for x in net.dhcp_leases()}
    assert by_mac[mac_a] == lease_a["ip"] and lease_b["ip"] in by_mac.values()
    # Live XML: the tap and the bridge, as libvirt shows them; the tap is on the bridge.
    live = a.dom.xml_desc()
    tap = live.split("<target dev='")[1].split("'")[0]
    assert "<source network='nat1' bridge='vknat1'/>" in live
    assert taps(world)[tap]["master"] == "vknat1"
    assert taps(world)[tap]["address"] == "fe" + mac_a[2:]
    # QEMU got the tap as a descriptor (the command line is in the domain's log).
    argv = (world.daemon.state_dir / "qemu" / "log" / "g-a.log").read_text()
    assert "-netdev tap,id=hostnet0,fd=" in argv and "script=" not in argv
    a.ready()
    b.ready()
    assert a.ping(lease_b["ip"]) == 3
    assert b.ping(lease_a["ip"]) == 3
    # The host side (the daemon's namespace) reaches them too.
    assert ping_from(world.daemon_ns, lease_a["ip"]).returncode == 0
    a.dom.destroy()
    assert tap not in taps(world), "the tap goes with the guest"


def test_nat_reaches_the_outside_as_the_host(world: NetnsWorld, network: Any,
                                            guests: Any) -> None:
    network(network_xml("nat2", 161))
    g = guests("g-nat", nic("network", "nat2"))
    assert g.lease()["ip"].startswith("192.168.161.")
    g.ready()
    assert g.ping(OUTSIDE_IP) == 3
    echo = PeerEcho(world.outside, port=7781)
    try:
        status, out = g.run(f"nc {OUTSIDE_IP} 7781 </dev/null")
    finally:
        echo.close()
    assert status == 0 and out == [UPLINK_IP], "the outside sees the masqueraded address"


def test_routed_network_is_reachable_from_outside_without_nat(world: NetnsWorld,
                                                              network: Any,
                                                              guests: Any) -> None:
    network(network_xml("routed", 170, forward="route"))
    world.outside.ip("route", "add", "192.168.170.0/24", "via", UPLINK_IP)
    echo = PeerEcho(world.outside, port=7782)
    try:
        g = guests("g-route", nic("network", "routed"))
        ip = g.lease()["ip"]
        g.ready()
        assert ping_from(world.outside, ip, count=2).returncode == 0
        status, out = g.run(f"nc {OUTSIDE_IP} 7782 </dev/null")
        assert status == 0 and out == [ip], "no NAT: the outside sees the guest's own address"
    finally:
        echo.close()
        world.outside.ip("route", "del", "192.168.170.0/24", check=False)


def test_isolated_network_is_not_reachable(world: NetnsWorld, network: Any,
                                           guests: Any) -> None:
    network(network_xml("iso", 180, forward=None))
    world.outside.ip("route", "add", "192.168.180.0/24", "via", UPLINK_IP)
    try:
        g = guests("g-iso", nic("network", "iso"))
        lease = g.lease()
        g.ready()
        assert g.ping("192.168.180.1") == 3, "the host's side of the bridge answers"
        assert g.ping(OUTSIDE_IP, count=2) == 0
        assert ping_from(world.outside, lease["ip"], count=2).returncode != 0
    finally:
        world.outside.ip("route", "del", "192.168.180.0/24", check=False)


def test_dns_on_the_network_resolves_a_guest_name(network: Any, guests: Any) -> None:
    hosts = ("<host mac='52:54:00:00:19:01' name='alpha' ip='192.168.190.11'/>"
             "<host mac='52:54:00:00:19:02' name='beta' ip='192.168.190.12'/>")
    network(network_xml("dns1", 190, domain="vk.test", dhcp_hosts=hosts))
    a = guests("g-alpha", nic("network", "dns1", mac="52:54:00:00:19:01"))
    b = guests("g-beta", nic("network", "dns1", mac="52:54:00:00:19:02"))
    assert a.lease()["ip"] == "192.168.190.11" and b.lease()["ip"] == "192.168.190.12"
    b.ready()
    for name in ("alpha", "alpha.vk.test"):
        status, out = b.run(f"nslookup {name}")
        answers = [line for line in out if "192.168.190.11" in line]
        assert status == 0 and answers, out


# --- the other interface types -----------------------------------------------------------------

def test_bridge_interface_on_a_host_bridge(world: NetnsWorld, guests: Any) -> None:
    ns = world.daemon_ns
    ns.ip("link", "add", "vkhbr0", "type", "bridge", "forward_delay", "0")
    try:
        ns.ip("addr", "add", "10.88.0.1/24", "dev", "vkhbr0")
        ns.ip("link", "set", "vkhbr0", "up")
        g = guests("g-br", nic("bridge", "vkhbr0", mac="52:54:00:00:88:02"))
        tap = g.dom.xml_desc().split("<target dev='")[1].split("'")[0]
        link = taps(world)[tap]
        assert link["master"] == "vkhbr0" and link["address"] == "fe:54:00:00:88:02"
        assert link["linkinfo"]["info_data"]["user"] in (0, "root")
        g.ready()
        g.static_ip("10.88.0.2/24")
        assert g.ping("10.88.0.1") == 3
        assert ping_from(ns, "10.88.0.2").returncode == 0
        g.dom.destroy()
        assert tap not in taps(world)
    finally:
        ns.ip("link", "del", "vkhbr0", check=False)


def test_ethernet_interface_runs_its_script_on_its_named_tap(world: NetnsWorld, guests: Any,
                                                            tmp_path: Path) -> None:
    marker = tmp_path / "ifup.ran"
    script = tmp_path / "ifup"
    script.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "$@" > {marker}
        ip addr add 10.99.0.1/24 dev "$1" && ip link set "$1" up
        """))
    script.chmod(0o755)
    g = guests("g-eth", nic("ethernet", extra=f"<target dev='vketh7'/><script path='{script}'/>"))
    assert marker.read_text().split() == ["vketh7"], "the script got the tap's name"
    assert "vketh7" in taps(world) and "master" not in taps(world)["vketh7"]
    assert "<target dev='vketh7'/>" in g.dom.xml_desc()
    g.ready()
    g.static_ip("10.99.0.2/24")
    assert g.ping("10.99.0.1") == 3
    g.dom.destroy()
    assert "vketh7" not in taps(world)
    failing = guests("g-eth-fail", nic("ethernet", extra="<script path='/bin/false'/>"),
                     start=False)
    before = set(taps(world))
    with pytest.raises(virtkit.OperationFailedError, match="script '/bin/false vnet"):
        failing.dom.start()
    assert set(taps(world)) == before and not failing.dom.is_active()


def test_user_interface(guests: Any) -> None:
    g = guests("g-user", nic("user"))
    lease = g.lease()
    assert (lease["ip"], lease["router"]) == ("10.0.2.15", "10.0.2.2")


def test_mcast_between_two_guests(guests: Any) -> None:
    link = nic("mcast", "<source address='230.0.0.7' port='5571'/>")
    a, b = guests("g-mc1", link), guests("g-mc2", link)
    a.ready()
    b.ready()
    a.static_ip("10.77.0.1/24")
    b.static_ip("10.77.0.2/24")
    assert a.ping("10.77.0.2") == 3


def test_server_and_client_pair(guests: Any) -> None:
    server = guests("g-srv", nic("server", "<source address='127.0.0.1' port='5572'/>"))
    client = guests("g-cli", nic("client", "<source address='127.0.0.1' port='5572'/>"))
    server.ready()
    client.ready()
    server.static_ip("10.78.0.1/24")
    client.static_ip("10.78.0.2/24")
    assert client.ping("10.78.0.1") == 3


# --- taps across daemon restarts -------------------------------------------------------------------

def test_taps_of_adopted_guests_are_removed_when_they_stop(world: NetnsWorld,
                                                           guest_image: GuestImage  # noqa: F811
                                                           ) -> None:
    with world.daemon.connect() as conn:
        net = conn.create_network(network_xml("nat3", 162))
        one = LiveGuest(conn, "g-keep", guest_image, nic("network", "nat3"))
        two = LiveGuest(conn, "g-lost", guest_image, nic("network", "nat3"))
        tap_one = one.dom.xml_desc().split("<target dev='")[1].split("'")[0]
        tap_two = two.dom.xml_desc().split("<target dev='")[1].split("'")[0]
        pid_two = int((world.daemon.socket_dir / "qemu" / "g-lost.pid").read_text())
    try:
        world.restart(kill=True)            # a crash: guests and network go on
        os.kill(pid_two, 9)                 # one guest dies while no daemon watches
        time.sleep(0.5)
        world.restart()
        with world.daemon.connect() as conn:
            assert conn.lookup_domain_by_name("g-keep").is_active()
            assert tap_one in taps(world)
            assert tap_two not in taps(world), "the new daemon removed the dead guest's tap"
            assert not conn.lookup_domain_by_name("g-lost").is_active()
            conn.lookup_domain_by_name("g-keep").destroy()
            assert tap_one not in taps(world)
            conn.lookup_network_by_name("nat3").destroy()
    finally:
        for g in (one, two):
            if g.console is not None:
                from tests.drivers.qemu.guests import close_console

                close_console(g.console)
                g.console = None
        with world.daemon.connect() as conn:
            for name in ("g-keep", "g-lost"):
                dom = conn.lookup_domain_by_name(name)
                if dom.is_active():
                    dom.destroy()
                dom.undefine()
            if "nat3" in conn.list_networks():
                conn.lookup_network_by_name("nat3").destroy()


# --- hot-plug ---------------------------------------------------------------------------------------

#: Typed into the guest: until the kernel has the hot-plugged NIC (ACPI tells it soon after).
WAIT_NIC = "n=0; while [ ! -e /sys/class/net/{dev} ] && [ $n -lt 100 ]; do n=$((n+1)); sleep 0.2; done"


def test_hotplug_network_and_bridge_interfaces(world: NetnsWorld, network: Any,
                                               guests: Any) -> None:
    hot1 = network(network_xml("hot1", 163))
    ns = world.daemon_ns
    ns.ip("link", "add", "vkhbr1", "type", "bridge", "forward_delay", "0")
    try:
        ns.ip("addr", "add", "10.89.0.1/24", "dev", "vkhbr1")
        ns.ip("link", "set", "vkhbr1", "up")
        g = guests("g-hot", nic("user"))
        g.ready()
        before = set(taps(world))
        on_net = nic("network", "hot1", mac="52:54:00:00:63:01")
        g.dom.attach_device(on_net)
        [tap] = set(taps(world)) - before
        assert taps(world)[tap]["master"] == hot1.bridge_name()
        live = g.dom.xml_desc()
        assert f"<target dev='{tap}'/>" in live and "<source network='hot1' bridge=" in live
        # The guest sees a new NIC (eth1): bring it up and ask for a lease.
        status, out = g.run(f"{WAIT_NIC.format(dev='eth1')}; ip link set eth1 up && "
                            "udhcpc -i eth1 -n -q -t 5 -T 1 -s /etc/udhcpc.script", timeout=60)
        assert status == 0, out
        lease = g.con().expect(r"VIRTKIT-LEASE ip=(\S+) .*iface=eth1", 30, from_start=True)
        assert lease[1].startswith("192.168.163.")
        assert g.ping("192.168.163.1") == 3
        g.dom.attach_device(nic("bridge", "vkhbr1", mac="52:54:00:00:89:02"))
        status, out = g.run(f"{WAIT_NIC.format(dev='eth2')}; ip link set eth2 up && "
                            "ip addr add 10.89.0.2/24 dev eth2", timeout=60)
        assert status == 0, out
        assert g.ping("10.89.0.1") == 3
        bridge_tap = next(n for n, link in taps(world).items() if link.get("master") == "vkhbr1")
        g.dom.detach_device(on_net)
        assert tap not in taps(world), "the tap goes with the interface"
        assert "52:54:00:00:63:01" not in g.dom.xml_desc()
        g.dom.destroy()
        assert bridge_tap not in taps(world)
    finally:
        ns.ip("link", "del", "vkhbr1", check=False)


# --- owners and the command line ---------------------------------------------------------------------

def _shown(number: int, lookup: Any) -> int | str:
    """How ``ip -j`` shows a uid or gid: by name when the system knows it."""
    try:
        return str(lookup(number)[0])
    except KeyError:
        return number


def test_taps_belong_to_the_domains_dac_owner(world: NetnsWorld, conn: virtkit.Connection,
                                              network: Any) -> None:
    from tests.drivers.qemu.guests import guest_xml

    network(network_xml("own1", 164))
    seclabel = ("<seclabel type='static' model='dac' relabel='no'>"
                "<label>+1000:+1001</label></seclabel>")
    dom = conn.create_domain(guest_xml("fw-owned", None, extra=seclabel,
                                       extra_devices=nic("network", "own1")))
    try:
        tap = dom.xml_desc().split("<target dev='")[1].split("'")[0]
        data = taps(world)[tap]["linkinfo"]["info_data"]
        assert (data["user"], data["group"]) == (_shown(1000, pwd.getpwuid),
                                                 _shown(1001, grp.getgrgid)), data
    finally:
        dom.destroy()
    assert tap not in taps(world)


def test_networks_and_leases_through_the_cli(world: NetnsWorld, guests: Any,
                                             tmp_path: Path) -> None:
    from tests.cli._helpers import clean_env
    from tests.cli._helpers import run as cli

    uri = world.daemon.uri
    xml = tmp_path / "cli1.xml"
    xml.write_text(network_xml("cli1", 165, bridge="vkcli1"))

    def virtkit_(*line: str) -> str:
        result = cli(["-c", uri, *line], env=clean_env(TZ="UTC"))
        assert result.rc == 0, result.err
        return result.out

    assert "Network cli1 defined" in virtkit_("net-define", str(xml))
    assert "cli1" in virtkit_("net-list", "--inactive", "--name")
    virtkit_("net-autostart", "cli1")
    assert "Network cli1 started" in virtkit_("net-start", "cli1")
    info = json.loads(virtkit_("net-info", "--json", "cli1"))
    assert info["active"] and info["autostart"] and info["bridge"] == "vkcli1"
    assert virtkit_("net-name", info["uuid"]).strip() == "cli1"
    assert "<bridge name='vkcli1'" in virtkit_("net-dumpxml", info["uuid"])
    g = guests("g-cli", nic("network", "cli1", mac="52:54:00:00:65:01"))
    ip = g.lease()["ip"]
    leases = json.loads(virtkit_("net-dhcp-leases", "cli1", "--json"))
    assert [(x["mac"], x["address"], x["interface"]) for x in leases] == \
        [("52:54:00:00:65:01", ip, "vkcli1")]
    table = virtkit_("net-dhcp-leases", "cli1", "--mac", "52:54:00:00:65:01")
    assert f"{ip}/24" in table and "ipv4" in table
    assert f"{ip}/24" in virtkit_("domifaddr", "g-cli")
    g.close()
    assert "Network cli1 destroyed" in virtkit_("net-destroy", "cli1")
    assert "Network cli1 has been undefined" in virtkit_("net-undefine", "cli1")


# --- bad input ------------------------------------------------------------------------------------

def test_bad_interfaces_fail_the_start_and_leave_nothing(world: NetnsWorld,
                                                         conn: virtkit.Connection) -> None:
    from tests.drivers.qemu.guests import guest_xml

    conn.define_network(network_xml("idle1", 166))  # defined, never started
    cases = [
        (nic("network", "no-such-net"), virtkit.NoNetworkError, "no-such-net"),
        (nic("network", "idle1"), virtkit.OperationInvalidError, "not active"),
        (nic("bridge", "vk-no-br"), virtkit.OperationFailedError, "no such device"),
        (nic("ethernet", extra="<script path='relative/ifup'/>"), virtkit.InvalidArgumentError,
         "must be absolute"),
    ]
    try:
        before = set(world.daemon_ns.links())
        for i, (interface, error, words) in enumerate(cases):
            # A user NIC first, so a tap made for the second interface would be undone.
            dom = conn.define_domain(guest_xml(f"fw-bad{i}", None,
                                               extra_devices=nic("user") + interface))
            with pytest.raises(error, match=words):
                dom.start()
            assert not dom.is_active()
            assert set(world.daemon_ns.links()) == before, "no tap left behind"
            dom.undefine()
        assert not world.daemon.qemu_pids()
    finally:
        conn.lookup_network_by_name("idle1").undefine()
