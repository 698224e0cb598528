"""The Xen host as today's toolstack reports it: ``xl info`` → node info, version, capabilities.

``xl info`` prints the hypervisor's physinfo and version (``key : value``
lines: ``machine``, ``nr_cpus``, ``cores_per_socket``, ``threads_per_core``,
``nr_nodes``, ``cpu_mhz``, ``total_memory``/``free_memory`` in MiB,
``hw_caps``, ``virt_caps``, ``xen_major``/``xen_minor``/``xen_extra``,
``xen_caps``...). :class:`HostFacts` reads them once and answers:

- :meth:`HostFacts.node_info`: libvirt's ``virNodeInfo`` (sockets are what
  the CPU count leaves once nodes, cores and threads are divided out, as
  libvirt computed them when Xen 3.2 dropped ``sockets_per_node``);
- :meth:`HostFacts.version`: major * 1,000,000 + minor * 1,000 + the digits
  of ``xen_extra`` (``.5`` → 4017005);
- :meth:`HostFacts.capabilities`: one ``<guest>`` per entry of ``xen_caps``
  (``xen-3.0-x86_64`` PV, ``hvm-3.0-x86_32p`` HVM...), HVM ones only when
  ``virt_caps`` says the host can run them, and the host's CPU features
  decoded from ``hw_caps`` — the CPUID words Xen itself saw — never assumed.
  A nested host's CPU may lack bits every real x86 CPU has (this project's
  test host has no ``vme``): a feature absent from ``hw_caps`` is simply not
  listed, and nothing here requires any.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virtkit.connection import NodeInfo
    from virtkit.xml.capabilities import Capabilities

__all__ = ["HostFacts", "parse_xl_info", "cpu_features"]

#: hw_caps word (Xen's featureset order: 1.edx, 1.ecx, e1d, e1c, ...), bit, name.
_FEATURE_BITS: tuple[tuple[int, int, str], ...] = (
    (0, 1, "vme"), (0, 3, "pse"), (0, 6, "pae"), (0, 9, "apic"), (0, 25, "sse"), (0, 26, "sse2"),
    (1, 0, "pni"), (1, 5, "vmx"), (1, 31, "hypervisor"),
    (2, 20, "nx"), (2, 29, "lm"),
    (3, 2, "svm"),
)
#: Architectures of xen_caps spellings.
_ARCHES = {"x86_32": "i686", "x86_32p": "i686", "x86_64": "x86_64", "ia64": "ia64",
           "powerpc64": "ppc64", "armv7l": "armv7l", "aarch64": "aarch64"}
_HVM_LOADER = "/usr/lib/xen/boot/hvmloader"
_DEVICE_MODEL = "/usr/lib/xen/bin/qemu-system-i386"


def parse_xl_info(text: str) -> dict[str, str]:
    """``xl info``'s ``key : value`` lines as a dict (values stripped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out.setdefault(key.strip(), value.strip())
    return out


def cpu_features(hw_caps: str) -> tuple[str, ...]:
    """The CPU features set in ``hw_caps`` (``178bf3fd:80002001:...``), in a fixed order;
    words that are missing or not hexadecimal count as all clear."""
    words: list[int] = []
    for part in hw_caps.replace(" ", ":").split(":"):
        try:
            words.append(int(part, 16))
        except ValueError:
            words.append(0)
    return tuple(name for word, bit, name in _FEATURE_BITS
                 if word < len(words) and words[word] >> bit & 1)


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        try:
            return int(float(value))  # type: ignore[arg-type]
        except ValueError:
            return default


@dataclass(frozen=True)
class HostFacts:
    """``xl info``'s facts (see the module docstring)."""

    info: Mapping[str, str]

    @classmethod
    def from_xl_info(cls, text: str) -> HostFacts:
        return cls(parse_xl_info(text))

    def get(self, key: str) -> str | None:
        return self.info.get(key)

    @property
    def hostname(self) -> str:
        return self.info.get("host") or os.uname().nodename

    def version(self) -> int:
        from virtkit.drivers.xen.spellings import version_number

        return version_number(_int(self.info.get("xen_major")), _int(self.info.get("xen_minor")),
                              self.info.get("xen_extra") or "")

    def node_info(self) -> NodeInfo:
        from virtkit.connection import NodeInfo

        i = self.info
        cpus = max(_int(i.get("nr_cpus"), 1), 1)
        nodes = max(_int(i.get("nr_nodes"), 1), 1)
        cores = max(_int(i.get("cores_per_socket"), 1), 1)
        threads = max(_int(i.get("threads_per_core"), 1), 1)
        sockets = max(1, cpus // (nodes * cores * threads))
        return NodeInfo(i.get("machine") or "unknown", _int(i.get("total_memory")) * 1024, cpus,
                        _int(i.get("cpu_mhz")), nodes, sockets, cores, threads)

    @property
    def free_memory_kib(self) -> int:
        return _int(self.info.get("free_memory")) * 1024

    def capabilities(self) -> Capabilities:
        from virtkit.xml.capabilities import Capabilities, GuestCaps, GuestDomain

        machine = self.info.get("machine") or "x86_64"
        host_arch = "i686" if machine in ("i386", "i486", "i586", "i686") else machine
        virt = set((self.info.get("virt_caps") or "").split())
        # Before Xen 4.14 virt_caps said "hvm" only when HVM guests could run;
        # it says so still, next to "pv". No virt_caps at all: trust xen_caps.
        hvm_ok = not virt or "hvm" in virt
        # One <guest> per (kind, arch); x86_32 and x86_32p HVM merge into one with both features.
        kinds: dict[tuple[str, str], list[str]] = {}
        for cap in (self.info.get("xen_caps") or "").split():
            parts = cap.split("-", 2)
            if len(parts) != 3 or parts[0] not in ("xen", "hvm"):
                continue
            kind, arch_spec = parts[0], parts[2]
            if kind == "hvm" and not hvm_ok:
                continue
            arch = _ARCHES.get(arch_spec, arch_spec.rstrip("p"))
            features = kinds.setdefault((kind, arch), [])
            if arch_spec.endswith("p"):
                features.append("pae")
            elif kind == "hvm" and arch == "i686":
                features.append("nonpae")
        guests = []
        for (kind, arch), features in kinds.items():
            wordsize = 64 if arch in ("x86_64", "ia64", "ppc64", "aarch64") else 32
            if kind == "hvm":
                guests.append(GuestCaps(os_type="hvm", arch=arch, wordsize=wordsize,
                                        emulator=_DEVICE_MODEL, loader=_HVM_LOADER,
                                        machines=("xenfv",), domains=(GuestDomain("xen"),),
                                        features=tuple(features) + ("acpi", "apic")))
            else:
                guests.append(GuestCaps(os_type="xen", arch=arch, wordsize=wordsize,
                                        machines=("xenpv",), domains=(GuestDomain("xen"),),
                                        features=tuple(features)))
        return Capabilities(host_arch=host_arch,
                            host_features=cpu_features(self.info.get("hw_caps") or ""),
                            guests=tuple(guests))
