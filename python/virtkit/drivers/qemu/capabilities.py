"""What this host can run under QEMU: binaries, machine types, accelerators.

Discovery (:func:`discover`) looks for ``qemu-system-<arch>`` in ``PATH`` and
``/usr/bin`` and asks each binary three questions: ``-version``, ``-machine
help`` (the machine types, the default marked) and ``-accel help`` (the
accelerators compiled in). Binaries whose name carries a variant suffix
(Debian's ``qemu-system-x86_64-microvm``) or an architecture virtkit does not
know are skipped. KVM counts only when :mod:`virtkit.drivers.qemu.kvm` finds the
device usable (not merely present) and the guest architecture matches the
host's.

The result, :class:`QemuCapabilities`, becomes libvirt's capabilities document
(0.2.1's discovery API; :meth:`QemuCapabilities.to_capabilities`): the host CPU
(architecture, the ``vmx``/``svm``/``pae`` flags of ``/proc/cpuinfo``, vendor and
model name) and one ``<guest>`` per (``hvm``, architecture) with its emulator,
machine types (the default first) and domain types (``qemu``, plus ``kvm`` when
usable). :meth:`QemuCapabilities.resolve` checks a domain against it before
start: emulator, machine type and domain type, each with a clear error.

Results are cached per process; the key is every binary's path, inode, size and
modification time, so an upgraded QEMU is noticed on the next call.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from virtkit.drivers.qemu.kvm import KvmStatus, kvm_status
from virtkit.errors import ErrorCode, ErrorDomain, VirtError
from virtkit.xml.capabilities import Capabilities, GuestCaps, GuestDomain
from virtkit.xml.domain import DomainConfig

__all__ = [
    "MachineType",
    "QemuBinary",
    "QemuCapabilities",
    "ResolvedGuest",
    "discover",
    "capabilities",
    "clear_cache",
    "find_binaries",
    "probe_binary",
    "parse_version",
    "parse_machine_help",
    "parse_accel_help",
    "host_cpu",
    "normalize_arch",
]

#: Where binaries are looked for besides ``PATH``.
DEFAULT_DIRS = ("/usr/bin",)

#: ``qemu-system-<suffix>`` -> the guest architectures it runs, native one first.
BINARY_ARCHES: dict[str, tuple[str, ...]] = {
    "i386": ("i686",),
    "x86_64": ("x86_64", "i686"),
    "aarch64": ("aarch64", "armv7l"),
    "arm": ("armv7l",),
    "ppc": ("ppc",),
    "ppc64": ("ppc64", "ppc64le", "ppc"),
    "riscv32": ("riscv32",),
    "riscv64": ("riscv64",),
    "s390x": ("s390x",),
    "mips": ("mips",),
    "mipsel": ("mipsel",),
    "mips64": ("mips64",),
    "mips64el": ("mips64el",),
    "sparc": ("sparc",),
    "sparc64": ("sparc64",),
    "alpha": ("alpha",),
    "loongarch64": ("loongarch64",),
}

#: Guest architecture -> word size in bits.
WORDSIZE: dict[str, int] = {
    "i686": 32, "x86_64": 64, "aarch64": 64, "armv7l": 32, "ppc": 32, "ppc64": 64,
    "ppc64le": 64, "riscv32": 32, "riscv64": 64, "s390x": 64, "mips": 32, "mipsel": 32,
    "mips64": 64, "mips64el": 64, "sparc": 32, "sparc64": 64, "alpha": 64, "loongarch64": 64,
}

#: Host architecture -> guest architectures KVM can run on it.
KVM_GUEST_ARCHES: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86_64", "i686"),
    "i686": ("i686",),
    "aarch64": ("aarch64",),
    "ppc64le": ("ppc64le", "ppc64"),
    "ppc64": ("ppc64",),
    "s390x": ("s390x",),
    "riscv64": ("riscv64",),
}

#: Guest features per architecture, as libvirt lists them for HVM guests.
_GUEST_FEATURES: dict[str, tuple[str, ...]] = {
    "i686": ("pae", "nonpae", "acpi", "apic"),
    "x86_64": ("acpi", "apic"),
}

#: Host CPU flags reported in the capabilities (libvirt's set for the host ``<cpu>``).
_HOST_FLAGS = ("vmx", "svm", "pae")
_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon",
            "CentaurHauls": "Centaur", "Shanghai": "Zhaoxin"}

_RUN_TIMEOUT = 15.0
_BINARY = re.compile(r"qemu-system-([a-z0-9_]+)\Z")


def _unsupported(message: str) -> VirtError:
    return VirtError(message, code=ErrorCode.CONFIG_UNSUPPORTED, domain=ErrorDomain.QEMU)


# ====================================================================== models


@dataclass(frozen=True)
class MachineType:
    """One line of ``-machine help``."""

    name: str
    description: str = ""
    #: The versioned machine this name stands for (``pc`` -> ``pc-i440fx-7.2``).
    alias_of: str | None = None
    #: QEMU marks this one ``(default)``.
    is_default: bool = False
    deprecated: bool = False


@dataclass(frozen=True)
class QemuBinary:
    """One ``qemu-system-*`` binary and what it says about itself."""

    path: str
    #: The suffix of its name (``x86_64``, ``i386``...).
    target: str
    version: tuple[int, int, int]
    #: The first line of ``-version``.
    version_text: str
    machines: tuple[MachineType, ...]
    #: Accelerators compiled in (``tcg``, ``kvm``, ``xen``...), whether usable or not.
    accelerators: tuple[str, ...]

    @property
    def guest_arches(self) -> tuple[str, ...]:
        """Guest architectures it emulates, native first."""
        return BINARY_ARCHES.get(self.target, ())

    @property
    def default_machine(self) -> MachineType | None:
        """The machine QEMU uses without ``-machine``, if it marks one."""
        for m in self.machines:
            if m.is_default:
                return m
        return None

    def canonical_machine(self, name: str) -> str | None:
        """``name`` with an alias resolved (``pc`` -> ``pc-i440fx-7.2``); None if unknown."""
        for m in self.machines:
            if m.name == name:
                return m.alias_of or m.name
        return None

    def machine_names(self) -> tuple[str, ...]:
        """Every machine name (aliases too), the default first, otherwise in QEMU's order."""
        default = self.default_machine
        names = [m.name for m in self.machines if m is not default]
        return ((default.name,) if default else ()) + tuple(names)


@dataclass(frozen=True)
class ResolvedGuest:
    """What :meth:`QemuCapabilities.resolve` decided for one domain."""

    emulator: str
    #: The machine type to start (the config's, or the binary's default, canonical).
    machine: str
    #: ``tcg`` or ``kvm``.
    accel: str
    binary: QemuBinary


@dataclass(frozen=True)
class QemuCapabilities:
    """Everything discovery found."""

    host_arch: str
    host_features: tuple[str, ...]
    host_cpu_model: str | None
    host_cpu_vendor: str | None
    binaries: tuple[QemuBinary, ...]
    kvm: KvmStatus
    #: Binaries that were found but could not be used, with the reason.
    problems: tuple[str, ...] = field(default=())

    def binary_for(self, arch: str) -> QemuBinary | None:
        """The binary for guest ``arch``: a native one if any, else one that also runs it."""
        for native in (True, False):
            for b in self.binaries:
                arches = b.guest_arches
                if (arches[:1] == (arch,)) if native else (arch in arches):
                    return b
        return None

    def guest_arches(self) -> tuple[str, ...]:
        """Guest architectures some binary runs, in a stable order."""
        seen: dict[str, None] = {}
        for b in self.binaries:
            for a in b.guest_arches:
                seen.setdefault(a, None)
        return tuple(sorted(seen))

    def kvm_for(self, arch: str, binary: QemuBinary) -> bool:
        """Whether guests of ``arch`` can use KVM with ``binary``."""
        return (self.kvm.usable and "kvm" in binary.accelerators
                and arch in KVM_GUEST_ARCHES.get(self.host_arch, ()))

    def domain_types(self, arch: str) -> tuple[str, ...]:
        """``('qemu',)`` or ``('qemu', 'kvm')`` for guests of ``arch`` (empty if none runs it)."""
        b = self.binary_for(arch)
        if b is None:
            return ()
        return ("qemu", "kvm") if self.kvm_for(arch, b) else ("qemu",)

    def to_capabilities(self) -> Capabilities:
        """The capabilities document (the model of :mod:`virtkit.xml.capabilities`)."""
        guests = []
        for arch in self.guest_arches():
            b = self.binary_for(arch)
            if b is None or arch not in WORDSIZE:
                continue
            guests.append(GuestCaps(
                os_type="hvm",
                arch=arch,
                wordsize=WORDSIZE[arch],
                emulator=b.path,
                machines=b.machine_names(),
                domains=tuple(GuestDomain(type=t) for t in self.domain_types(arch)),
                features=_GUEST_FEATURES.get(arch, ()),
            ))
        return Capabilities(
            host_arch=self.host_arch,
            host_features=self.host_features,
            host_cpu_model=self.host_cpu_model,
            host_cpu_vendor=self.host_cpu_vendor,
            guests=tuple(guests),
        )

    def resolve(self, config: DomainConfig,
                probe: Callable[[str], QemuBinary] | None = None) -> ResolvedGuest:
        """Check that ``config`` can start here; return emulator, machine and accelerator.

        Raises VirtError(CONFIG_UNSUPPORTED, domain QEMU) naming the problem: a
        domain type other than qemu/kvm, an architecture no binary runs, an
        emulator that does not exist or runs another architecture, a machine
        type the emulator does not know, KVM asked for but not usable (with the
        probe's reason). ``probe`` examines an emulator named in the config
        that discovery did not find (default :func:`probe_binary`).
        """
        if config.type not in ("qemu", "kvm"):
            raise _unsupported(f"domain type {config.type!r} cannot run under QEMU (use 'qemu' or 'kvm')")
        arch = config.os.arch or self.host_arch
        if config.emulator:
            binary = self._named_binary(config.emulator, probe or probe_binary)
            if binary.guest_arches and arch not in binary.guest_arches:
                raise _unsupported(f"emulator {config.emulator} runs {', '.join(binary.guest_arches)} "
                                   f"guests, not {arch}")
        else:
            found = self.binary_for(arch)
            if found is None:
                raise _unsupported(f"no QEMU binary runs {arch} guests on this host "
                                   f"(looked for qemu-system-* in PATH and {', '.join(DEFAULT_DIRS)})")
            binary = found
        if config.os.machine:
            machine = config.os.machine
            if binary.machines and binary.canonical_machine(machine) is None:
                known = ", ".join(binary.machine_names()[:8])
                raise _unsupported(f"machine type {machine!r} is unknown to {binary.path} "
                                   f"(it knows {known}...)")
        else:
            default = binary.default_machine
            if default is None:
                raise _unsupported(f"{binary.path} marks no default machine type; name one in <os><type>")
            machine = default.alias_of or default.name
        accel = "tcg"
        if config.type == "kvm":
            if "kvm" not in binary.accelerators:
                raise _unsupported(f"domain type 'kvm': {binary.path} was built without KVM support")
            if arch not in KVM_GUEST_ARCHES.get(self.host_arch, ()):
                raise _unsupported(f"domain type 'kvm': a {self.host_arch} host cannot run {arch} guests "
                                   "with KVM; use domain type 'qemu'")
            if not self.kvm.usable:
                raise _unsupported(f"domain type 'kvm' needs a usable KVM device, but {self.kvm.reason}; "
                                   "use domain type 'qemu' (software emulation, TCG) instead")
            accel = "kvm"
        return ResolvedGuest(binary.path, machine, accel, binary)

    def _named_binary(self, path: str, probe: Callable[[str], QemuBinary]) -> QemuBinary:
        real = os.path.realpath(path)
        for b in self.binaries:
            if os.path.realpath(b.path) == real:
                return b
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise _unsupported(f"emulator {path} does not exist or is not executable")
        return probe(path)


# ====================================================================== parsing

_VERSION = re.compile(r"version\s+(\d+)\.(\d+)(?:\.(\d+))?")
_MACHINE_LINE = re.compile(r"([A-Za-z0-9][\w.+-]*)(?:\s+(.*))?\Z")
_MARKER = re.compile(r"\s*\((default|deprecated|alias of ([\w.+-]+))\)\s*\Z")


def parse_version(text: str) -> tuple[int, int, int]:
    """``(7, 2, 22)`` from ``-version`` output; ValueError if there is no version."""
    m = _VERSION.search(text)
    if m is None:
        raise ValueError("no 'version X.Y' in the output")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def parse_machine_help(text: str) -> tuple[MachineType, ...]:
    """The machine types of ``-machine help`` output, in QEMU's order.

    Tolerates what different QEMU versions print: a header line or none,
    ``(alias of X)``, ``(default)`` and ``(deprecated)`` in any order (the
    default may sit on an alias line), names without a description, blank
    lines, CRLF and indented continuation lines (ignored).
    """
    machines: list[MachineType] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line[0].isspace() or (line.endswith(":") and " " in line):
            continue  # blank, continuation, or "Supported machines are:"
        m = _MACHINE_LINE.match(line)
        if m is None:
            continue
        name, rest = m.group(1), (m.group(2) or "").strip()
        alias_of = None
        is_default = deprecated = False
        while True:
            mk = _MARKER.search(rest)
            if mk is None:
                break
            if mk.group(1) == "default":
                is_default = True
            elif mk.group(1) == "deprecated":
                deprecated = True
            else:
                alias_of = mk.group(2)
            rest = rest[:mk.start()].rstrip()
        machines.append(MachineType(name, rest, alias_of, is_default, deprecated))
    # Only one default: the first QEMU marks.
    seen_default = False
    result = []
    for mt in machines:
        if mt.is_default and seen_default:
            mt = MachineType(mt.name, mt.description, mt.alias_of, False, mt.deprecated)
        seen_default = seen_default or mt.is_default
        result.append(mt)
    return tuple(result)


def parse_accel_help(text: str) -> tuple[str, ...]:
    """Accelerator names from ``-accel help`` output (one word per line after the header)."""
    names = []
    for raw in text.splitlines():
        line = raw.strip()
        if re.fullmatch(r"[a-z][a-z0-9_-]*", line):
            names.append(line)
    return tuple(dict.fromkeys(names))


# ====================================================================== discovery


#: Directory -> (its mtime, the qemu-system-<arch> names in it): a start looks for
#: binaries each time, and listing /usr/bin is most of that; an unchanged
#: directory (same mtime) has the same names.
_DIR_NAMES: dict[str, tuple[int, list[str]]] = {}


def _qemu_names(directory: str) -> list[str]:
    try:
        mtime = os.stat(directory).st_mtime_ns
        cached = _DIR_NAMES.get(directory)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    matching = [n for n in names if (m := _BINARY.match(n)) is not None
                and m.group(1) in BINARY_ARCHES]
    _DIR_NAMES[directory] = (mtime, matching)
    return matching


def find_binaries(search_path: Sequence[str] | None = None) -> list[str]:
    """Paths of ``qemu-system-<arch>`` binaries (known arches only), one per real file.

    ``search_path`` defaults to ``PATH`` followed by :data:`DEFAULT_DIRS`.
    """
    if search_path is None:
        dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d] + list(DEFAULT_DIRS)
    else:
        dirs = list(search_path)
    found: dict[str, str] = {}
    for d in dirs:
        for name in _qemu_names(d):
            path = os.path.join(d, name)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                continue
            found.setdefault(os.path.realpath(path), path)
    return sorted(found.values(), key=lambda p: os.path.basename(p))


def _run(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LC_ALL="C")
    return subprocess.run([path, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=_RUN_TIMEOUT, env=env, check=False)


def probe_binary(path: str) -> QemuBinary:
    """Ask the binary at ``path`` for its version, machine types and accelerators.

    Raises VirtError(CONFIG_UNSUPPORTED, domain QEMU) when it does not answer
    ``-version`` like a QEMU (a timeout, a crash, no version). A binary without
    ``-accel help`` (QEMU before 4.0) is taken to have TCG only.
    """
    name = os.path.basename(path)
    m = _BINARY.match(name)
    target = m.group(1) if m else ""
    try:
        version_run = _run(path, "-version")
        first = (version_run.stdout.strip().splitlines() or [""])[0]
        version = parse_version(version_run.stdout)
        if version_run.returncode != 0:
            raise ValueError(f"exit status {version_run.returncode}")
        machines = parse_machine_help(_run(path, "-machine", "help").stdout)
        accel_run = _run(path, "-accel", "help")
    except (OSError, subprocess.TimeoutExpired, ValueError) as e:
        raise _unsupported(f"{path} does not answer like a QEMU binary: {e}") from e
    accelerators = parse_accel_help(accel_run.stdout) if accel_run.returncode == 0 else ("tcg",)
    return QemuBinary(path, target, version, first, machines, accelerators)


def normalize_arch(machine: str) -> str:
    """libvirt's name for a ``uname -m`` value (``i586`` -> ``i686``, ``arm64`` -> ``aarch64``)."""
    if re.fullmatch(r"i[3-6]86", machine):
        return "i686"
    if machine == "amd64":
        return "x86_64"
    if machine == "arm64":
        return "aarch64"
    if machine.startswith("armv7"):
        return "armv7l"
    return machine


def host_cpu(cpuinfo: str = "/proc/cpuinfo", machine: str | None = None
             ) -> tuple[str, tuple[str, ...], str | None, str | None]:
    """``(arch, features, model, vendor)`` of the host CPU.

    ``features`` are those of ``vmx``, ``svm`` and ``pae`` that ``/proc/cpuinfo``
    lists; ``model`` is its "model name" and ``vendor`` the short vendor name
    (``Intel``, ``AMD``...); both None when the file does not say.
    """
    arch = normalize_arch(machine or platform.machine())
    flags: set[str] = set()
    model = vendor = None
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "model name" and model is None:
            model = value.strip() or None
        elif key == "vendor_id" and vendor is None:
            raw = value.strip()
            vendor = _VENDORS.get(raw, raw or None)
    return arch, tuple(f for f in _HOST_FLAGS if f in flags), model, vendor


_cache_lock = threading.Lock()
_cache: dict[object, QemuCapabilities] = {}


def _stamp(paths: Sequence[str]) -> tuple[tuple[str, int, int, int], ...]:
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        out.append((p, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def discover(search_path: Sequence[str] | None = None, *, kvm: KvmStatus | None = None,
             cpuinfo: str = "/proc/cpuinfo", machine: str | None = None) -> QemuCapabilities:
    """Discover the QEMU binaries and build :class:`QemuCapabilities` (cached per process).

    The cache key is the binaries found (path, inode, size, mtime), the KVM
    status and the other arguments. ``kvm`` defaults to the cached probe of
    ``/dev/kvm``; the keyword arguments exist for tests.
    """
    paths = find_binaries(search_path)
    status = kvm if kvm is not None else kvm_status()
    key = (_stamp(paths), status, cpuinfo, machine)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    binaries: list[QemuBinary] = []
    problems: list[str] = []
    for p in paths:
        try:
            binaries.append(probe_binary(p))
        except VirtError as e:
            problems.append(e.message)
    arch, features, model, vendor = host_cpu(cpuinfo, machine)
    caps = QemuCapabilities(arch, features, model, vendor, tuple(binaries), status, tuple(problems))
    with _cache_lock:
        _cache[key] = caps
    return caps


def capabilities() -> Capabilities:
    """This host's capabilities document for QEMU/KVM guests (``virsh capabilities``)."""
    return discover().to_capabilities()


def clear_cache() -> None:
    """Forget discovered capabilities (tests)."""
    with _cache_lock:
        _cache.clear()

