"""Public API on the built-in test driver, against libvirt-python on libvirt's test driver.

Both run in this one process, side by side: calls per second of look-up by
name, look-up by UUID string, info, list all, XML description and
define+undefine; then, with 1000 defined domains, the time to list them all
and read every info. Ratios are virtkit's rate over libvirt-python's (above 1
means virtkit is faster).

Needs libvirt-python (``benches/run`` installs Debian's libvirt-dev and
pkg-config, then ``pip install libvirt-python``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import libvirt

import virtkit

sys.path.insert(0, str(Path(__file__).parent))
from _harness import human, measure  # noqa: E402

UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def domain_xml(name: str) -> str:
    return (f"<domain type='test'><name>{name}</name><memory>131072</memory><vcpu>1</vcpu>"
            "<os><type>hvm</type></os></domain>")


def row(label: str, ours: Callable[[], object], theirs: Callable[[], object], summary: list[str],
        min_time: float = 0.3) -> None:
    t_ours = measure(ours, min_time=min_time)
    t_theirs = measure(theirs, min_time=min_time)
    ratio = t_theirs / t_ours
    print(f"  {label:<28} virtkit {1 / t_ours:>11,.0f}/s  libvirt-python {1 / t_theirs:>11,.0f}/s"
          f"   ratio {ratio:5.2f}x")
    summary.append(f"{label}: {ratio:.2f}x libvirt-python's rate")


def main() -> int:
    libvirt.registerErrorHandler(lambda *a: None, None)
    ours = virtkit.open("test:///default")
    theirs = libvirt.open("test:///default")
    dom = ours.lookup_domain_by_name("test")
    ldom = theirs.lookupByName("test")
    summary: list[str] = []
    print("Single calls (calls per second)")
    row("lookup by name", lambda: ours.lookup_domain_by_name("test"),
        lambda: theirs.lookupByName("test"), summary)
    row("lookup by UUID string", lambda: ours.lookup_domain_by_uuid_string(UUID),
        lambda: theirs.lookupByUUIDString(UUID), summary)
    row("info", dom.info, ldom.info, summary)
    row("list all domains", ours.list_all_domains, theirs.listAllDomains, summary)
    row("XML description", dom.xml_desc, ldom.XMLDesc, summary)
    xml = domain_xml("bench-define")
    row("define + undefine", lambda: ours.define_domain(xml).undefine(),
        lambda: theirs.defineXML(xml).undefine(), summary)

    print("\n1000 defined domains: list all, then info of every one")
    for i in range(1000):
        ours.define_domain(domain_xml(f"bulk-{i:04d}"))
        theirs.defineXML(domain_xml(f"bulk-{i:04d}"))

    def ours_bulk() -> object:
        return [d.info() for d in ours.list_all_domains()]

    def theirs_bulk() -> object:
        return [d.info() for d in theirs.listAllDomains()]

    assert len(ours_bulk()) == len(theirs_bulk()) == 1001  # type: ignore[arg-type]
    t_ours = measure(ours_bulk, min_time=1.0)
    t_theirs = measure(theirs_bulk, min_time=1.0)
    print(f"  virtkit {human(t_ours)}   libvirt-python {human(t_theirs)}   ratio {t_theirs / t_ours:5.2f}x")
    summary.append(f"1000-domain list + info: {t_theirs / t_ours:.2f}x libvirt-python's speed")
    for i in range(1000):
        ours.lookup_domain_by_name(f"bulk-{i:04d}").undefine()
    print("\nSummary (ratio = virtkit rate / libvirt-python rate)")
    for line in summary:
        print("  " + line)
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    status = main()
    print(f"\n(took {time.perf_counter() - start:.1f} s)")
    sys.exit(status)
