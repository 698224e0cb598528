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

A script is applied in one transaction, through libnftables (the library
``nft`` itself uses, loaded with :mod:`ctypes`: no process to start) or,
when it is missing or a program is named, ``nft -f -``: :func:`apply` adds
the table (after deleting a stale one of the same name, in the same
transaction), :func:`remove` deletes it (``add`` then ``delete``, so a table
that is already gone is no error). Either the whole table exists or none.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import shutil
import subprocess
import threading

from virtkit.errors import ErrorDomain, OperationFailedError
from virtkit.xml.network import NetworkConfig

__all__ = ["TABLE_PREFIX", "FAMILY", "table_name", "build_table", "apply", "remove",
           "list_tables", "table_exists", "find_nft", "have_library", "program_needed"]

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


_OUTPUT_JSON = 1 << 4
_lib: ctypes.CDLL | None = None
_lib_tried = False
_lib_lock = threading.Lock()


def _library() -> ctypes.CDLL | None:
    """libnftables, or None when it cannot be loaded."""
    global _lib, _lib_tried
    with _lib_lock:
        if not _lib_tried:
            _lib_tried = True
            try:
                lib = ctypes.CDLL("libnftables.so.1")
            except OSError:
                return None
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
            lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
            _lib = lib
        return _lib


def have_library() -> bool:
    """True when libnftables can be used (then the nft program is not needed)."""
    return _library() is not None


def program_needed(nft: str | None) -> str | None:
    """The nft program to use: None when libnftables serves (and no program is named);
    else the program's path (OperationFailedError when it is missing)."""
    if nft is None and have_library():
        return None
    return find_nft(nft)


def _run_library(lib: ctypes.CDLL, script: str, json_output: bool = False) -> tuple[int, str, str]:
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        return 1, "", "nft_ctx_new failed"
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        if json_output:
            lib.nft_ctx_output_set_flags(ctx, _OUTPUT_JSON)
        rc = lib.nft_run_cmd_from_buffer(ctx, script.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
        return rc, out, err
    finally:
        lib.nft_ctx_free(ctx)


def _execute(nft: str | None, script: str, *, json_output: bool = False) -> tuple[int, str, str]:
    lib = _library() if nft is None else None
    if lib is not None:
        return _run_library(lib, script, json_output)
    argv = [find_nft(nft)] + (["-j"] if json_output else []) + ["-f", "-"]
    proc = subprocess.run(argv, input=script, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _run(nft: str | None, script: str, what: str) -> None:
    rc, _, err = _execute(nft, script)
    if rc != 0:
        detail = err.strip() or f"nft failed with status {rc}"
        raise OperationFailedError(f"cannot {what}: {detail}", domain=ErrorDomain.NETWORK)


def apply(cfg: NetworkConfig, bridge: str, *, nft: str | None = None) -> str:
    """Install the network's table in one transaction (replacing a stale one); return its name.

    Raises OperationFailedError with nft's message when the kernel refuses
    it; nothing is then changed.
    """
    name = table_name(bridge)
    script = (f"add table {FAMILY} {name}\ndelete table {FAMILY} {name}\n"
              + build_table(cfg, bridge))
    _run(nft, script, f"add firewall table {FAMILY} {name}")
    return name


def remove(name: str, *, nft: str | None = None) -> None:
    """Delete our table ``name`` (no error when it is already gone)."""
    if not name.startswith(TABLE_PREFIX):
        raise ValueError(f"{name!r} is not a virtkit table")
    _run(nft, f"add table {FAMILY} {name}\ndelete table {FAMILY} {name}\n",
         f"delete firewall table {FAMILY} {name}")


def list_tables(*, nft: str | None = None) -> list[str]:
    """Names of our tables (``inet virtkit-*``) in this network namespace."""
    rc, stdout, err = _execute(nft, f"list tables {FAMILY}", json_output=True)
    if rc != 0:
        raise OperationFailedError(f"cannot list firewall tables: {err.strip()}",
                                   domain=ErrorDomain.NETWORK)
    out: list[str] = []
    for item in json.loads(stdout or '{"nftables": []}').get("nftables", []):
        table = item.get("table")
        if table and table.get("family") == FAMILY and table["name"].startswith(TABLE_PREFIX):
            out.append(table["name"])
    return out


def table_exists(name: str, *, nft: str | None = None) -> bool:
    """True when table ``inet NAME`` exists."""
    return name in list_tables(nft=nft)
