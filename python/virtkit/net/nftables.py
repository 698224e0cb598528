"""The firewall of a virtual network: one nftables table per network, made and removed atomically.

Choice: a table per active network, ``inet virtkit-<bridge>`` (a bridge name
is unique among active networks, and :data:`virtkit.net.bridge.VALID_NAME`
keeps it a valid nft identifier). Each table is self-contained, so starting
or stopping one network never rewrites another's rules, and removing a
network is one ``delete table``. Every base chain has policy ``accept`` and
rules that match only packets entering or leaving the network's bridge, so
the tables of several networks compose (a packet passes each table's chains;
only a rule about its own bridge gives a verdict). Rules that are not ours,
in any table, are never read or changed, and the ruleset is never flushed.

Rules, for a network on bridge B with IPv4 subnet S (IPv6 likewise):

- input: DHCP and DNS from B are accepted (for dnsmasq); output: DHCP replies
  to B are accepted.
- forward: guests on B talk to each other; then, by forward mode,

  - ``nat``: from B with a source in S out to anywhere (or only out of
    ``<forward dev>``) is accepted, and back to S only for established or
    related connections; postrouting masquerades S to everything outside S
    (ports 1024-65535 for TCP and UDP, or ``<nat><port>``), except multicast
    224.0.0.0/24 and broadcast; ``<nat><address>`` turns masquerade into SNAT
    to that address range;
  - ``route``: from S out and to S in are both accepted, no NAT;
  - none (isolated): nothing is forwarded;

  and any other packet into or out of B is rejected.

A script is applied with ``nft -f -`` in one transaction: :func:`apply` adds
the table (after deleting a stale one of the same name, in the same
transaction), :func:`remove` deletes it (``add`` then ``delete``, so a table
that is already gone is no error). Either the whole table exists or none.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess

from virtkit.errors import ErrorDomain, OperationFailedError
from virtkit.xml.network import NetworkConfig

__all__ = ["TABLE_PREFIX", "FAMILY", "table_name", "build_table", "apply", "remove",
           "list_tables", "table_exists", "find_nft"]

TABLE_PREFIX = "virtkit-"
FAMILY = "inet"


def table_name(bridge: str) -> str:
    """The name of the table of the network on ``bridge``."""
    return TABLE_PREFIX + bridge


def find_nft(path: str | None = None) -> str:
    """The nft program: ``path`` or ``nft`` on PATH; OperationFailedError when missing."""
    found = shutil.which(path or "nft")
    if found is None:
        raise OperationFailedError(
            "cannot set up the network's firewall: the nft program (Debian's nftables "
            "package) is not installed or not on PATH", domain=ErrorDomain.NETWORK)
    return found


def _subnets(cfg: NetworkConfig) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for ip in cfg.ips:
        net = ipaddress.ip_interface(f"{ip.address}/{ip.prefix}").network
        (v6 if net.version == 6 else v4).append(str(net))
    return v4, v6


def build_table(cfg: NetworkConfig, bridge: str) -> str:
    """The ``table inet virtkit-<bridge> { ... }`` block for ``cfg`` (see the module docstring)."""
    b = f'"{bridge}"'
    mode = cfg.forward_mode
    dev = f' oifname "{cfg.forward_dev}"' if cfg.forward_dev else ""
    dev_in = f' iifname "{cfg.forward_dev}"' if cfg.forward_dev else ""
    v4, v6 = _subnets(cfg)
    lines = [f"table {FAMILY} {table_name(bridge)} {{"]
    lines += [
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        f"    iifname {b} udp dport {{ 53, 67 }} accept",
        f"    iifname {b} tcp dport 53 accept",
    ]
    if v6:
        lines.append(f"    iifname {b} udp dport 547 accept")
    lines += [
        "  }",
        "  chain output {",
        "    type filter hook output priority filter; policy accept;",
        f"    oifname {b} udp dport 68 accept",
    ]
    if v6:
        lines.append(f"    oifname {b} udp dport 546 accept")
    lines += [
        "  }",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f"    iifname {b} oifname {b} accept",
    ]
    if mode in ("nat", "route"):
        for fam, nets in (("ip", v4), ("ip6", v6)):
            for net in nets:
                lines.append(f"    iifname {b}{dev} {fam} saddr {net} accept")
                if mode == "nat" and fam == "ip":
                    lines.append(f"    oifname {b}{dev_in} {fam} daddr {net} "
                                 "ct state established,related accept")
                else:
                    lines.append(f"    oifname {b}{dev_in} {fam} daddr {net} accept")
    lines += [
        f"    iifname {b} reject",
        f"    oifname {b} reject",
        "  }",
    ]
    if mode == "nat" and v4:
        lines += [
            "  chain postrouting {",
            "    type nat hook postrouting priority srcnat; policy accept;",
        ]
        ports = f"{cfg.nat_port_start or 1024}-{cfg.nat_port_end or 65535}"
        if cfg.nat_address_start:
            end = cfg.nat_address_end or cfg.nat_address_start
            target = f"snat ip to {cfg.nat_address_start}-{end}"
            target_ports = f"{target}:{ports}"
        else:
            target = "masquerade"
            target_ports = f"masquerade to :{ports}"
        for net in v4:
            lines += [
                f"    ip saddr {net} ip daddr 224.0.0.0/24 return",
                f"    ip saddr {net} ip daddr 255.255.255.255 return",
                f"    ip saddr {net} ip daddr != {net}{dev} meta l4proto {{ tcp, udp }} {target_ports}",
                f"    ip saddr {net} ip daddr != {net}{dev} {target}",
            ]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _run(nft: str, script: str, what: str) -> None:
    proc = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        detail = proc.stderr.strip() or f"nft exited with status {proc.returncode}"
        raise OperationFailedError(f"cannot {what}: {detail}", domain=ErrorDomain.NETWORK)


def apply(cfg: NetworkConfig, bridge: str, *, nft: str | None = None) -> str:
    """Install the network's table in one transaction (replacing a stale one); return its name.

    Raises OperationFailedError with nft's message when the kernel refuses
    it; nothing is then changed.
    """
    name = table_name(bridge)
    script = (f"add table {FAMILY} {name}\ndelete table {FAMILY} {name}\n"
              + build_table(cfg, bridge))
    _run(find_nft(nft), script, f"add firewall table {FAMILY} {name}")
    return name


def remove(name: str, *, nft: str | None = None) -> None:
    """Delete our table ``name`` (no error when it is already gone)."""
    if not name.startswith(TABLE_PREFIX):
        raise ValueError(f"{name!r} is not a virtkit table")
    _run(find_nft(nft), f"add table {FAMILY} {name}\ndelete table {FAMILY} {name}\n",
         f"delete firewall table {FAMILY} {name}")


def list_tables(*, nft: str | None = None) -> list[str]:
    """Names of our tables (``inet virtkit-*``) in this network namespace."""
    proc = subprocess.run([find_nft(nft), "-j", "list", "tables", FAMILY], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise OperationFailedError(f"cannot list firewall tables: {proc.stderr.strip()}",
                                   domain=ErrorDomain.NETWORK)
    out: list[str] = []
    for item in json.loads(proc.stdout or '{"nftables": []}').get("nftables", []):
        table = item.get("table")
        if table and table.get("family") == FAMILY and table["name"].startswith(TABLE_PREFIX):
            out.append(table["name"])
    return out


def table_exists(name: str, *, nft: str | None = None) -> bool:
    """True when table ``inet NAME`` exists."""
    return name in list_tables(nft=nft)
