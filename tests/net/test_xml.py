"""Network XML as libvirt 9 dumps it loads, and runs here.

``data/libvirt9-nat-full.xml`` is what libvirtd 9.0 (Debian 12) returned from
``virNetworkGetXMLDesc`` for a NAT network using every feature we model
(dumped with benches/bench_net.py's private libvirtd). It showed one gap,
fixed in the schema and model: ``<domain localOnly>``.
"""

from __future__ import annotations

from pathlib import Path

from virtkit.net.validate import check_config
from virtkit.xml.network import format_network, parse_network

DATA = Path(__file__).parent / "data"


def test_libvirt9_full_nat_dump_loads_and_round_trips() -> None:
    cfg = parse_network((DATA / "libvirt9-nat-full.xml").read_bytes())
    assert (cfg.forward_mode, cfg.bridge, cfg.stp, cfg.delay) == ("nat", "vkfull0", True, 0)
    assert (cfg.domain_name, cfg.domain_local_only) == ("lab.test", True)
    assert (cfg.nat_port_start, cfg.nat_port_end, cfg.mac) == (1024, 65535, "52:54:00:0a:cd:21")
    assert cfg.ips[0].dhcp_hosts[0].ip == "192.168.101.7" and cfg.ips[1].prefix == 64
    assert cfg.dns_hosts[0].hostnames == ("printer",)
    check_config(cfg)
    assert parse_network(format_network(cfg)) == cfg
    assert "<domain name='lab.test' localOnly='yes'/>" in format_network(cfg)
    no = parse_network(format_network(cfg).replace("localOnly='yes'", "localOnly='no'"))
    assert no.domain_local_only is False
