"""Xen benchmarks: the conversions over the corpus, and listing 500 domains through xend.

- Conversions per second over every case of the corpus (tests/data):
  S-expression -> domain XML (parse + format), domain XML -> S-expression,
  XM file -> domain XML, domain XML -> XM file.
- ``virtkit list --all`` plus the info of each domain, on 500 domains served
  by the xend simulator (tests/drivers/xen/xend_simulator.py): one request for
  the whole listing (what the driver does) against one request per domain
  (the driver with reuse of the listing's reply turned off, and libvirt
  0.2.2's own sequence: ``GET /xend/domain`` for the names, then
  ``GET /xend/domain/NAME?detail=1`` for each).

Run with ``benches/run`` or ``python benches/bench_xen.py``; the simulator
runs in this process, so both sides pay the same per-request cost.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))

import virtkit  # noqa: E402
from _harness import compare, human, measure  # noqa: E402
from tests.drivers.xen import corpus  # noqa: E402
from tests.drivers.xen.xend_simulator import XendSimulator  # noqa: E402
from virtkit import sexpr  # noqa: E402
from virtkit.drivers.xen import driver as xen_driver  # noqa: E402
from virtkit.drivers.xen.sxpr import format_sxpr, parse_sxpr  # noqa: E402
from virtkit.drivers.xen.xend import XendClient, domain_path  # noqa: E402
from virtkit.drivers.xen.xm import format_xm, parse_xm  # noqa: E402
from virtkit.xml.domain import format_domain, parse_domain  # noqa: E402


def conversions() -> list[str]:
    sexprs = [(sexpr.join_continuations((corpus.SEXPR2XML / f"sexpr2xml-{c}.sexpr").read_bytes()),
               corpus.sexpr2xml_format(c)) for c in corpus.sexpr2xml_cases()]
    xmls = [(corpus.xml2sexpr_input(c).read_bytes(), corpus.xml2sexpr_format(c))
            for c in corpus.xml2sexpr_cases()]
    cfgs = [((corpus.XMCONFIG / f"test-{c}.cfg").read_bytes(), corpus.xmconfig_format(c))
            for c in corpus.xmconfig_cases()]
    xm_xmls = [((corpus.XMCONFIG / f"test-{c}.xml").read_bytes(), corpus.xmconfig_format(c))
               for c in corpus.xmconfig_cases()]
    jobs = [
        ("S-expression -> domain XML", len(sexprs),
         lambda: [format_domain(parse_sxpr(d, f, lenient=True)) for d, f in sexprs]),
        ("domain XML -> S-expression", len(xmls), lambda: [format_sxpr(parse_domain(x), f) for x, f in xmls]),
        ("XM file -> domain XML", len(cfgs), lambda: [format_domain(parse_xm(c, f)) for c, f in cfgs]),
        ("domain XML -> XM file", len(xm_xmls), lambda: [format_xm(parse_domain(x), f) for x, f in xm_xmls]),
        ("S-expression -> model (no XML)", len(sexprs), lambda: [parse_sxpr(d, f, lenient=True) for d, f in sexprs]),
    ]
    print("\nConversions over the corpus (every case once per round)")
    lines = []
    for title, n, job in jobs:
        per_round = measure(job, min_time=1.0)
        rate = n / per_round
        print(f"  {title:<34} {n:3d} cases  {human(per_round / n)} a case  {rate:10.0f} conversions/s")
        lines.append(f"{title}: {rate:.0f} conversions/s")
    return lines


def listing(sim: XendSimulator) -> list[str]:
    conn = virtkit.open(sim.uri)

    def one_request() -> object:
        return [(d.id, d.name, d.state(), d.info()) for d in conn.list_all_domains()]

    def request_per_domain() -> object:
        saved = xen_driver.REUSE_SECONDS
        xen_driver.REUSE_SECONDS = 0.0
        try:
            return [(d.id, d.name, d.state(), d.info()) for d in conn.list_all_domains()]
        finally:
            xen_driver.REUSE_SECONDS = saved

    client = XendClient(socket_path=sim.socket_path)

    def libvirt_0_2_2() -> object:
        names = [c.text or "" for c in client.get("/xend/domain?state=all").children]
        out = []
        for name in names:
            dom = client.get(domain_path(name), detail=1)
            out.append((dom.get_int("domain/domid"), name, dom.get_str("domain/state"),
                        dom.get_int("domain/maxmem"), dom.get_int("domain/memory"),
                        dom.get_int("domain/vcpus"), dom.get_float("domain/cpu_time")))
        return out

    for label, fn in (("one request", one_request), ("reuse off, 3 requests a domain", request_per_domain),
                      ("libvirt 0.2.2's sequence", libvirt_0_2_2)):
        before = sim.requests
        fn()
        print(f"  {label}: {sim.requests - before} requests for {len(conn.list_all_domains())} domains")
    result = compare("List 500 domains with state and info through xend (simulated)",
                     ("virtkit: one request (detail=1)", one_request),
                     [("virtkit, reuse off: 3 requests a domain", request_per_domain),
                      ("libvirt 0.2.2: names, then each domain", libvirt_0_2_2)], min_time=3.0)
    conn.close()
    return result


def main() -> int:
    summary = conversions()
    with XendSimulator() as sim:
        start = time.perf_counter()
        for i in range(500):
            sim.add_domain(f"guest-{i:03d}", running=i % 5 != 0, memory=256 + i)
        print(f"\n500 domains in the simulator ({time.perf_counter() - start:.2f} s to set up); "
              f"one listing reply is {len(sexpr.dumps(tuple(sim.domain_sxpr(d) for d in sim.domains.values()), indent=4)) / 1e6:.2f} MB")
        summary += listing(sim)
    print("\nSummary (ratio = peer time / virtkit time; above 1 means virtkit is faster)")
    for line in summary:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
