"""Rust core benchmarks: S-expression parsing and UUIDs against Python peers.

Run with ``benches/run`` (installs the peers) or ``python benches/bench_core.py``.
Everything runs in one process, side by side, and is reported as ratios.
"""

from __future__ import annotations

import sys
import uuid as std_uuid
from pathlib import Path

import fastuuid
import sexpdata
import uuid_utils

from virtkit import sexpr
from virtkit.uuid import format_uuid, parse_uuid

sys.path.insert(0, str(Path(__file__).parent))
from _harness import compare  # noqa: E402
from peers.pysexpr import parse as pure_python_parse  # noqa: E402

DATA = Path(__file__).parent.parent / "tests" / "data"


def one_domain() -> bytes:
    return (DATA / "sexpr2xmldata" / "sexpr2xml-curmem.sexpr").read_bytes()


def listing(n: int) -> bytes:
    """A xend `GET /xend/domain?detail=1` style reply listing `n` domains."""
    # curmem's reply plus a second disk, NIC and a PV framebuffer: about 2 KB a domain.
    extra = (
        "    (device (vbd (backend 0) (dev xvdb:disk) (uname phy:/dev/vg0/data) (mode w)))\n"
        "    (device (vif (backend 0) (script vif-bridge) (bridge xenbr1) (mac 00:16:3e:1d:07:15)))\n"
        "    (device (vbd (backend 0) (dev xvdc:disk) (uname file:/var/lib/xen/images/scratch.img) (mode w)))\n"
        "    (device (tap (backend 0) (dev xvdd:disk) (uname tap:aio:/var/lib/xen/images/logs.img) (mode w!)))\n"
        "    (device (vbd (backend 0) (dev hdc:cdrom) (uname file:/srv/iso/install.iso) (mode r)))\n"
        "    (device (vkbd (backend 0)))\n"
        "    (device (vfb (backend 0) (type vnc) (vncunused 1) (vnclisten 127.0.0.1) (keymap en-us)))\n"
        "    (device (console (backend 0) (protocol vt100) (location 2) (uuid 0)))\n"
    )
    template = one_domain().decode().replace("    (state -b----)", extra + "    (state -b----)")
    doms = []
    for i in range(n):
        u = std_uuid.UUID(int=i + 1)
        doms.append(
            template.replace("(domid 5)", f"(domid {i + 1})")
            .replace("rhel5", f"guest-{i:04d}")
            .replace("4f77abd2-3019-58e8-3bab-6fbf2118f880", str(u))
            .replace("00:16:3e:1d:06:15", f"00:16:3e:{i >> 8 & 255:02x}:{i & 255:02x}:15")
        )
    return ("(\n" + "".join(doms) + ")\n").encode()


def main() -> int:
    summary: list[str] = []
    small = one_domain()
    big = listing(500)
    print(f"one-domain reply: {len(small)} bytes; listing of 500 domains: {len(big) / 1e6:.2f} MB")
    for label, data, min_time in (("one-domain reply", small, 0.3), ("500-domain listing", big, 2.0)):
        text = data.decode()
        summary += compare(
            f"S-expression parse, {label} (lazy tree)",
            ("virtkit sexpr.loads", lambda: sexpr.loads(data)),
            [("sexpdata.loads", lambda: sexpdata.loads(text)),
             ("pure-Python recursive parser", lambda: pure_python_parse(text))],
            min_time=min_time,
        )
        summary += compare(
            f"S-expression parse, {label} (materialized as Python tuples)",
            ("virtkit sexpr.loads(...).to_tree()", lambda: sexpr.loads(data).to_tree()),
            [("sexpdata.loads", lambda: sexpdata.loads(text)),
             ("pure-Python recursive parser", lambda: pure_python_parse(text))],
            min_time=min_time,
        )

    canonical = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
    xen_form = "4dea22b31d52d8f32516782e98ab3fa0"
    raw = parse_uuid(canonical)
    summary += compare(
        "UUID parse, canonical string",
        ("virtkit parse_uuid", lambda: parse_uuid(canonical)),
        [("uuid.UUID (stdlib)", lambda: std_uuid.UUID(canonical)),
         ("uuid_utils.UUID", lambda: uuid_utils.UUID(canonical)),
         ("fastuuid.UUID", lambda: fastuuid.UUID(canonical))],
    )
    summary += compare(
        "UUID parse, 32 hex digits (Xen)",
        ("virtkit parse_uuid", lambda: parse_uuid(xen_form)),
        [("uuid.UUID (stdlib)", lambda: std_uuid.UUID(xen_form)),
         ("uuid_utils.UUID", lambda: uuid_utils.UUID(xen_form)),
         ("fastuuid.UUID", lambda: fastuuid.UUID(xen_form))],
    )
    std_u, utils_u, fast_u = std_uuid.UUID(canonical), uuid_utils.UUID(canonical), fastuuid.UUID(canonical)
    summary += compare(
        "UUID format to canonical string (from each library's own value)",
        ("virtkit format_uuid(bytes)", lambda: format_uuid(raw)),
        [("str(uuid.UUID)", lambda: str(std_u)),
         ("str(uuid_utils.UUID)", lambda: str(utils_u)),
         ("str(fastuuid.UUID)", lambda: str(fast_u))],
    )
    summary += compare(
        "UUID format from 16 raw bytes",
        ("virtkit format_uuid(bytes)", lambda: format_uuid(raw)),
        [("str(uuid.UUID(bytes=...))", lambda: str(std_uuid.UUID(bytes=raw))),
         ("str(uuid_utils.UUID(bytes=...))", lambda: str(uuid_utils.UUID(bytes=raw))),
         ("str(fastuuid.UUID(bytes=...))", lambda: str(fastuuid.UUID(bytes=raw)))],
    )
    print("\nSummary (ratio = peer time / virtkit time; above 1 means virtkit is faster)")
    for line in summary:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
