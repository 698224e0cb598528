"""Capabilities XML (the format of libvirt 0.2.1's docs): typed model.

The ``<host>`` block gives the CPU architecture and features; each
``<guest>`` block one kind of guest the hypervisor can run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from virtkit.xml import _document


@dataclass(frozen=True)
class GuestDomain:
    """``<domain type>`` inside a guest's ``<arch>``, with an optional emulator override."""

    type: str
    emulator: str | None = None
    machines: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuestCaps:
    """One ``<guest>``: OS type, architecture, emulator, machines, loader, domains, features."""

    os_type: str
    arch: str
    wordsize: int
    emulator: str | None = None
    loader: str | None = None
    machines: tuple[str, ...] = ()
    domains: tuple[GuestDomain, ...] = ()
    #: ``<features>`` children (``pae``, ``nonpae``, ``acpi``, ``apic``...).
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    """A whole ``<capabilities>`` document."""

    host_arch: str
    host_features: tuple[str, ...] = ()
    #: Host CPU model and vendor, when known (today's libvirt adds them).
    host_cpu_model: str | None = None
    host_cpu_vendor: str | None = None
    guests: tuple[GuestCaps, ...] = ()
    #: Unmodelled children of ``<host>`` that today's libvirt writes
    #: (``<uuid>``, ``<power_management>``, ``<iommu>``, ``<topology>``,
    #: ``<secmodel>``, ``<migration_features>``...), verbatim.
    host_extra: tuple[str, ...] = ()
    #: Unmodelled children of ``<host><cpu>`` (``<microcode>``,
    #: ``<signature>``, ``<topology>``, ``<feature name>``, ``<pages>``...), verbatim.
    host_cpu_extra: tuple[str, ...] = ()


# ======================================================================
# Parsing and formatting
# ======================================================================

__all__ = ["GuestDomain", "GuestCaps", "Capabilities", "parse_capabilities", "format_capabilities"]

_KIND = "capabilities"


def parse_capabilities(text: str | bytes) -> Capabilities:
    """Parse a ``<capabilities>`` document (libvirt 0.2.1's format, or today's).

    Validated against ``schemas/capabilities.rng`` first. What today's libvirt
    adds is handled so (decided once, documented in the schema too):

    - extra children of ``<host>`` and of ``<host><cpu>`` are *kept*, verbatim,
      in ``host_extra`` and ``host_cpu_extra``, and written back;
    - the ``maxCpus``/``canonical`` attributes of ``<machine>`` and the
      ``default``/``toggle`` attributes of guest features are *tolerated*:
      accepted, not kept (the model holds machine and feature names).

    The ``<emulator>``, ``<loader>`` and ``<machine>`` of a guest are read from
    inside ``<arch>``, where libvirt writes them.

    Raises :class:`virtkit.errors.XMLError` for malformed XML and
    :class:`virtkit.errors.XMLSchemaError` for a document the schema refuses.
    """
    root = _document.read_document(text, _KIND)
    f: dict[str, Any] = {}
    host_extra: list[str] = []
    guests: list[GuestCaps] = []
    for child in root:
        if child.tag == "guest":
            guests.append(_guest(child))
            continue
        for h in child:  # <host>
            if h.tag != "cpu":
                host_extra.append(_document.verbatim(h))
                continue
            cpu_extra: list[str] = []
            for c in h:
                tag = c.tag
                if tag == "arch":
                    f["host_arch"] = (c.text or "").strip()
                elif tag == "features":
                    f["host_features"] = tuple(_document.local_name(x.tag) for x in c)
                elif tag == "model":
                    f["host_cpu_model"] = c.text or ""
                elif tag == "vendor":
                    f["host_cpu_vendor"] = c.text or ""
                else:
                    cpu_extra.append(_document.verbatim(c))
            f["host_cpu_extra"] = tuple(cpu_extra)
    f["host_extra"] = tuple(host_extra)
    f["guests"] = tuple(guests)
    return Capabilities(**f)


def _guest(el: Any) -> GuestCaps:
    f: dict[str, Any] = {}
    for child in el:
        tag = child.tag
        if tag == "os_type":
            f["os_type"] = (child.text or "").strip()
        elif tag == "features":
            f["features"] = tuple(_document.local_name(x.tag) for x in child)
        else:  # <arch>
            f["arch"] = child.get("name").strip()
            machines: list[str] = []
            domains: list[GuestDomain] = []
            for c in child:
                t = c.tag
                if t == "wordsize":
                    f["wordsize"] = int(c.text)
                elif t == "emulator":
                    f["emulator"] = c.text or ""
                elif t == "loader":
                    f["loader"] = c.text or ""
                elif t == "machine":
                    machines.append((c.text or "").strip())
                else:  # <domain>
                    emulator = None
                    dom_machines: list[str] = []
                    for d in c:
                        if d.tag == "emulator":
                            emulator = d.text or ""
                        else:
                            dom_machines.append((d.text or "").strip())
                    domains.append(GuestDomain(c.get("type").strip(), emulator, tuple(dom_machines)))
            f["machines"] = tuple(machines)
            f["domains"] = tuple(domains)
    return GuestCaps(**f)


def format_capabilities(caps: Capabilities) -> str:
    """The canonical XML of ``caps`` (libvirt's layout and element order).

    ``parse_capabilities(format_capabilities(caps)) == caps`` for every valid model.
    """
    a = _document.attrs
    leaf = _document.leaf
    out = ["<capabilities>", "  <host>", "    <cpu>", leaf("      ", "arch", caps.host_arch)]
    if caps.host_cpu_model is not None:
        out.append(leaf("      ", "model", caps.host_cpu_model))
    if caps.host_cpu_vendor is not None:
        out.append(leaf("      ", "vendor", caps.host_cpu_vendor))
    if caps.host_features:
        out.append("      <features>")
        out.extend(f"        <{name}/>" for name in caps.host_features)
        out.append("      </features>")
    out.extend("      " + x for x in caps.host_cpu_extra)
    out.append("    </cpu>")
    out.extend("    " + x for x in caps.host_extra)
    out.append("  </host>")
    for g in caps.guests:
        out.append("  <guest>")
        out.append(leaf("    ", "os_type", g.os_type))
        out.append(f"    <arch{a(('name', g.arch))}>")
        out.append(f"      <wordsize>{g.wordsize}</wordsize>")
        if g.emulator is not None:
            out.append(leaf("      ", "emulator", g.emulator))
        if g.loader is not None:
            out.append(leaf("      ", "loader", g.loader))
        out.extend(leaf("      ", "machine", m) for m in g.machines)
        for d in g.domains:
            if d.emulator is None and not d.machines:
                out.append(f"      <domain{a(('type', d.type))}/>")
                continue
            out.append(f"      <domain{a(('type', d.type))}>")
            if d.emulator is not None:
                out.append(leaf("        ", "emulator", d.emulator))
            out.extend(leaf("        ", "machine", m) for m in d.machines)
            out.append("      </domain>")
        out.append("    </arch>")
        if g.features:
            out.append("    <features>")
            out.extend(f"      <{name}/>" for name in g.features)
            out.append("    </features>")
        out.append("  </guest>")
    out.append("</capabilities>")
    out.append("")
    return "\n".join(out)
