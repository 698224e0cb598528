"""dnsmasq: generated configuration and lease parsing; live DHCP and DNS answered to a
client namespace; kill -9 of dnsmasq restarts it with every lease kept."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from virtkit.net.dnsmasq import DnsmasqFiles, build_config, host_records, parse_leases
from virtkit.xml.network import parse_network
from tests.net.namespaces import Agent, Client, World, wait_for

FULL = """
<network>
  <name>lab</name>
  <forward mode='nat'/>
  <bridge name='vkbr140' stp='off' delay='0'/>
  <domain name='lab.test' localOnly='yes'/>
  <dns>
    <host ip='192.168.140.250'><hostname>printer</hostname><hostname>lp</hostname></host>
  </dns>
  <ip address='192.168.140.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.140.100' end='192.168.140.149'/>
      <host mac='52:54:00:aa:00:01' name='fixed' ip='192.168.140.7'/>
    </dhcp>
  </ip>
</network>
"""


def test_config_binds_to_the_bridge_only_and_reads_no_system_files() -> None:
    cfg = parse_network(FULL)
    files = DnsmasqFiles(Path("/st"), "lab")
    text = build_config(cfg, "vkbr140", files)
    lines = text.splitlines()
    for line in ("interface=vkbr140", "bind-interfaces", "except-interface=lo", "no-hosts",
                 "pid-file=/st/lab.pid", "dhcp-leasefile=/st/lab.leases",
                 "dhcp-range=192.168.140.100,192.168.140.149,255.255.255.0",
                 "dhcp-host=52:54:00:aa:00:01,192.168.140.7,fixed", "domain=lab.test",
                 "local=/lab.test/", "dhcp-lease-max=51", "no-ping",
                 "host-record=printer,printer.lab.test,lp,lp.lab.test,192.168.140.250"):
        assert line in lines, line
    assert not any(line.startswith(("conf-file", "conf-dir", "user=", "addn-hosts"))
                   for line in lines)
    assert host_records(cfg) == ["host-record=printer,printer.lab.test,lp,lp.lab.test,"
                                 "192.168.140.250"]


def test_domain_is_forwarded_upstream_unless_local_only() -> None:
    cfg = parse_network(FULL.replace(" localOnly='yes'", ""))
    lines = build_config(cfg, "b", DnsmasqFiles(Path("/st"), "lab")).splitlines()
    assert "domain=lab.test" in lines and not any(x.startswith("local=") for x in lines)


def test_static_only_dhcp_and_ipv6_ranges() -> None:
    cfg = parse_network(
        "<network><name>s</name><ip address='10.9.0.1' prefix='24'><dhcp>"
        "<host mac='52:54:00:00:00:09' ip='10.9.0.9'/></dhcp></ip>"
        "<ip family='ipv6' address='fd00:9::1' prefix='64'><dhcp>"
        "<range start='fd00:9::100' end='fd00:9::1ff'/></dhcp></ip></network>")
    lines = build_config(cfg, "br", DnsmasqFiles(Path("/x"), "s")).splitlines()
    assert "dhcp-range=10.9.0.0,static,255.255.255.0" in lines
    assert "dhcp-range=fd00:9::100,fd00:9::1ff,64" in lines
    assert "enable-ra" in lines


def test_parse_leases() -> None:
    text = ("1700000000 52:54:00:AA:00:01 192.168.140.7 fixed 01:52:54:00:aa:00:01\n"
            "0 52:54:00:aa:00:02 192.168.140.100 * *\n"
            "duid 00:01:00:01:2c:00\n"
            "1700000500 1234 fd00:9::100 v6host 00:01:00:01\n")
    leases = parse_leases(text)
    assert [(le.mac, le.ip, le.hostname, le.expiry) for le in leases] == [
        ("52:54:00:aa:00:01", "192.168.140.7", "fixed", 1700000000),
        ("52:54:00:aa:00:02", "192.168.140.100", None, 0),
        (None, "fd00:9::100", "v6host", 1700000500),
    ]
    assert leases[2].iaid == "1234" and leases[1].client_id is None


@pytest.mark.netns
def test_dhcp_static_host_and_dns_answer_a_client(
        agent: Agent, client: Callable[..., Client], world: World) -> None:
    ref = agent.create_network(parse_network(FULL))
    c1 = client("vkbr140", hostname="guest1")
    lease = c1.dhcp()
    assert ipaddress.ip_address("192.168.140.100") <= ipaddress.ip_address(lease["ip"]) \
        <= ipaddress.ip_address("192.168.140.149")
    assert lease["router"] == "192.168.140.1" and lease["dns"] == "192.168.140.1"
    assert lease["domain"] == "lab.test"
    fixed = client("vkbr140", mac="52:54:00:aa:00:01")
    assert fixed.dhcp()["ip"] == "192.168.140.7"
    # DNS: <dns> hosts, the static host by name, a DHCP client by the name it sent.
    assert c1.nslookup("printer.lab.test", "192.168.140.1") == ["192.168.140.250"]
    assert c1.nslookup("lp", "192.168.140.1") == ["192.168.140.250"]
    assert fixed.nslookup("guest1.lab.test", "192.168.140.1") == [lease["ip"]]
    leases = {le.mac: le for le in agent.dhcp_leases(ref)}
    assert leases[c1.mac].ip == lease["ip"] and leases[c1.mac].hostname == "guest1"
    assert leases["52:54:00:aa:00:01"].ip == "192.168.140.7"
    # dnsmasq listens on the bridge only.
    sockets = world.daemon.exec("ss", "-lnup").stdout
    assert "192.168.140.1:53" in sockets and "0.0.0.0:53" not in sockets
    assert "198.51.100.1:53" not in sockets


@pytest.mark.netns
def test_kill_9_of_dnsmasq_restarts_it_and_keeps_leases(
        agent: Agent, client: Callable[..., Client], agent_dirs: tuple[Path, Path]) -> None:
    ref = agent.create_network(parse_network(FULL))
    c = client("vkbr140", hostname="keeper")
    ip = c.dhcp()["ip"]
    old = agent.dnsmasq_pid(ref)
    os.kill(old, 9)
    new = wait_for(lambda: (p := agent.dnsmasq_pid(ref)) not in (None, old) and p)
    assert os.path.exists(f"/proc/{new}")
    assert ip in (agent_dirs[1] / "lab.leases").read_text()
    assert [le.ip for le in agent.dhcp_leases(ref) if le.mac == c.mac] == [ip]
    # The restarted dnsmasq knows the lease: the client renews the same address.
    assert c.dhcp(request=ip)["ip"] == ip
    status = (agent_dirs[1] / "lab.status").read_text()
    assert f'"dnsmasq_pid": {new}' in status
