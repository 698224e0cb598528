"""Capabilities XML (the format of libvirt 0.2.1's docs): typed model.

The ``<host>`` block gives the CPU architecture and features; each
``<guest>`` block one kind of guest the hypervisor can run.
"""

from __future__ import annotations

from dataclasses import dataclass


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
