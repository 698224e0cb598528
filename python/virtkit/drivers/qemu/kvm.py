"""Whether ``/dev/kvm`` can really run a guest.

A domain of type ``kvm`` runs QEMU with ``accel=kvm``. That needs more than an
openable ``/dev/kvm``: some hosts expose a KVM device that passes the classic
checks yet cannot run an ordinary guest. The case seen on this project's
machines is **PVM** (the ``kvm_pvm`` module, "pagetable-based virtual
machine"): a KVM back end for hosts without hardware virtualization (no VMX or
SVM, e.g. inside a cloud VM), built for guests whose kernel was made for PVM.
Under PVM, ``KVM_GET_API_VERSION`` answers 12 and ``KVM_CREATE_VM`` succeeds,
so QEMU starts happily, but an unmodified guest's code is run through KVM's
instruction emulator one instruction at a time, about a thousand times slower
than native: SeaBIOS is still in its first steps after a minute and a Linux
guest never prints a line.

The probe (:func:`probe_kvm`) therefore runs guest code. On x86 it:

1. opens the device read-write and checks ``KVM_GET_API_VERSION`` == 12;
2. creates a VM (``KVM_CREATE_VM``) with one 4 KiB page at the top of the
   first 4 GiB and one vCPU;
3. runs, from the reset vector as a BIOS would, a few bytes that switch to
   32-bit protected mode and count down a 20,000-iteration ``loop``, then
   write ``0x42`` to I/O port ``0x10`` and halt; it checks that KVM reports
   exactly that I/O exit and then the halt;
4. reads the vCPU's binary statistics (``KVM_GET_STATS_FD``, Linux 5.14 and
   later) and looks at ``insn_emulation``: with hardware virtualization the
   loop runs natively and the counter stays near zero; when it is at least
   half the iteration count, guest code is being emulated in software and the
   device is declared unusable.

Protected mode is used (not real mode) because old Intel CPUs without
"unrestricted guest" legitimately emulate real-mode code; they run protected
mode natively. The whole probe takes about a millisecond on real KVM and
~20 ms under PVM; :func:`kvm_status` caches the result per process.

When the statistics interface is missing (kernels before 5.14), the probe
falls back to static signals: the CPU must advertise ``vmx`` or ``svm`` and
the ``kvm_pvm`` module must not be the only KVM back end. On other
architectures only steps 1 and 2 are done; the result says so.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import platform
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from virtkit.errors import ErrorCode, ErrorDomain, VirtError

__all__ = ["KvmStatus", "probe_kvm", "kvm_status", "require_kvm", "clear_cache"]

# ioctl request numbers (linux/kvm.h; KVMIO is 0xAE).
_KVM_GET_API_VERSION = 0xAE00
_KVM_CREATE_VM = 0xAE01
_KVM_CHECK_EXTENSION = 0xAE03
_KVM_GET_VCPU_MMAP_SIZE = 0xAE04
_KVM_CREATE_VCPU = 0xAE41
_KVM_SET_USER_MEMORY_REGION = 0x4020AE46  # _IOW(KVMIO, 0x46, 32-byte struct)
_KVM_SET_TSS_ADDR = 0xAE47
_KVM_RUN = 0xAE80
_KVM_GET_STATS_FD = 0xAECE
_KVM_CAP_BINARY_STATS_FD = 203

_KVM_API_VERSION = 12
_KVM_EXIT_IO = 2
_KVM_EXIT_HLT = 5
_EXIT_NAMES = {0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 3: "HYPERCALL", 4: "DEBUG", 5: "HLT",
               6: "MMIO", 8: "SHUTDOWN", 9: "FAIL_ENTRY", 17: "INTERNAL_ERROR"}

#: Iterations of the probe loop.
PROBE_LOOPS = 20_000
_PORT = 0x10
_MAGIC = 0x42
_PAGE_BASE = 0xFFFFF000  # the 4 KiB page holding the reset vector (0xfffffff0)
_TSS_ADDR = 0x7FFBD000  # three pages KVM may need for real mode on old Intel CPUs; unused here

_X86 = frozenset(("x86_64", "i386", "i486", "i586", "i686", "amd64"))


@dataclass(frozen=True)
class KvmStatus:
    """The outcome of probing a KVM device."""

    #: True when guests of domain type ``kvm`` can run.
    usable: bool
    #: One sentence: why it is (or is not) usable.
    reason: str
    #: ``KVM_GET_API_VERSION``'s answer, when the device could be opened.
    api_version: int | None = None
    #: The KVM back end module, when recognizable: ``kvm_intel``, ``kvm_amd`` or ``kvm_pvm``.
    backend: str | None = None
    #: Instructions KVM emulated in software while the probe loop ran
    #: (None when not measured).
    emulated_instructions: int | None = None


def _backend(sys_module: Path) -> str | None:
    present = [m for m in ("kvm_intel", "kvm_amd") if (sys_module / m).exists()]
    if present:
        return present[0]
    if (sys_module / "kvm_pvm").exists():
        return "kvm_pvm"
    return None


def _cpu_flags(cpuinfo: Path) -> frozenset[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def _probe_code() -> bytes:
    """The 4 KiB page mapped at 0xfffff000: GDT, protected-mode loop, reset vector."""
    page = bytearray(0x1000)
    # GDT at +0x800: the null descriptor and one flat 32-bit code segment (selector 0x08).
    gdt = bytes(8) + bytes((0xFF, 0xFF, 0x00, 0x00, 0x00, 0x9A, 0xCF, 0x00))
    page[0x800:0x800 + len(gdt)] = gdt
    # The GDT pseudo-descriptor at +0x810: limit, linear base.
    page[0x810:0x816] = struct.pack("<HI", len(gdt) - 1, _PAGE_BASE + 0x800)
    # 32-bit code at +0x900: mov ecx, N / loop $ / mov al, 0x42 / out 0x10, al / hlt.
    code32 = (b"\xB9" + PROBE_LOOPS.to_bytes(4, "little") + b"\xE2\xFE"
              + bytes((0xB0, _MAGIC, 0xE6, _PORT, 0xF4)))
    page[0x900:0x900 + len(code32)] = code32
    # Real-mode entry at +0xf00 (CS base 0xffff0000, so offset 0xff00):
    # lgdt cs:[0xf810] (32-bit operand) / set CR0.PE / far jump to 0x08:code32.
    entry = b"\x66\x2E\x0F\x01\x16" + struct.pack("<H", 0xF810)
    entry += b"\x0F\x20\xC0" + b"\x0C\x01" + b"\x0F\x22\xC0"
    entry += b"\x66\xEA" + struct.pack("<IH", _PAGE_BASE + 0x900, 0x08)
    page[0xF00:0xF00 + len(entry)] = entry
    # Reset vector at +0xff0: jmp near to the entry.
    page[0xFF0:0xFF3] = b"\xE9" + struct.pack("<h", 0xF00 - 0xFF3)
    return bytes(page)


def _ioctl(fd: int, request: int, arg: int | bytes = 0) -> int | bytes:
    while True:
        try:
            return fcntl.ioctl(fd, request, arg)
        except InterruptedError:
            continue


def _read_stats(vcpu: int) -> dict[str, int]:
    """The vCPU's binary statistics (``KVM_GET_STATS_FD``): scalar values by name."""
    sfd = int(_ioctl(vcpu, _KVM_GET_STATS_FD))
    try:
        size = os.fstat(sfd).st_size or (1 << 20)
        data = os.pread(sfd, max(size, 1 << 16), 0)
    finally:
        os.close(sfd)
    _flags, name_size, num_desc, _id_off, desc_off, data_off = struct.unpack_from("=6I", data, 0)
    stats: dict[str, int] = {}
    step = 16 + name_size
    for i in range(num_desc):
        base = desc_off + i * step
        _fl, _exp, count, offset, _bucket = struct.unpack_from("=IhHII", data, base)
        name = data[base + 16:base + 16 + name_size].split(b"\0", 1)[0].decode("ascii", "replace")
        if count == 1:
            stats[name] = struct.unpack_from("=Q", data, data_off + offset)[0]
    return stats


class _ProbeFailed(Exception):
    pass


def _run_guest_code(kvm: int, vm: int) -> int | None:
    """Run the probe page in ``vm``; return ``insn_emulation`` (None if unmeasurable).

    Raises _ProbeFailed with a reason when the guest did not do what it should.
    """
    try:
        _ioctl(vm, _KVM_SET_TSS_ADDR, _TSS_ADDR)
    except OSError:
        pass  # only needed (and only accepted) by some back ends
    mem = mmap.mmap(-1, 0x1000, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                    mmap.PROT_READ | mmap.PROT_WRITE)
    run: mmap.mmap | None = None
    vcpu = -1
    view = None
    try:
        mem[:] = _probe_code()
        view = (ctypes.c_char * 0x1000).from_buffer(mem)
        region = struct.pack("=IIQQQ", 0, 0, _PAGE_BASE, 0x1000, ctypes.addressof(view))
        _ioctl(vm, _KVM_SET_USER_MEMORY_REGION, region)
        vcpu = int(_ioctl(vm, _KVM_CREATE_VCPU, 0))
        run_size = int(_ioctl(kvm, _KVM_GET_VCPU_MMAP_SIZE))
        run = mmap.mmap(vcpu, run_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        seen: list[str] = []
        for expected in (_KVM_EXIT_IO, _KVM_EXIT_HLT):
            _ioctl(vcpu, _KVM_RUN)
            reason = struct.unpack_from("=I", run, 8)[0]
            seen.append(_EXIT_NAMES.get(reason, str(reason)))
            if reason != expected:
                raise _ProbeFailed(f"the probe guest stopped with exit {'/'.join(seen)} "
                                   f"instead of IO then HLT")
            if reason == _KVM_EXIT_IO:
                direction, size, port, _count, offset = struct.unpack_from("=BBHIQ", run, 32)
                value = run[offset] if size == 1 and offset < run_size else None
                if direction != 1 or port != _PORT or value != _MAGIC:
                    raise _ProbeFailed("the probe guest's I/O exit carried the wrong port or value")
        try:
            stats = _read_stats(vcpu)
        except OSError:
            return None
        return stats.get("insn_emulation")
    finally:
        if run is not None:
            run.close()
        if vcpu >= 0:
            os.close(vcpu)
        del view
        # The VM (closed by the caller) may still reference the page; KVM copes
        # with a slot whose memory is gone, and the VM never runs again.
        try:
            mem.close()
        except BufferError:
            pass


def probe_kvm(device: str = "/dev/kvm", *, sys_module: str = "/sys/module",
              cpuinfo: str = "/proc/cpuinfo", machine: str | None = None) -> KvmStatus:
    """Probe ``device`` now (no cache): can it run guests of domain type ``kvm``?

    See the module docstring for the steps. Never raises for a missing or
    unusable device: the answer says why in ``reason``. ``sys_module``,
    ``cpuinfo`` and ``machine`` (the host architecture, default
    :func:`platform.machine`) exist for tests.
    """
    arch = machine or platform.machine()
    backend = _backend(Path(sys_module))
    try:
        kvm = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            why = f"{device} does not exist (no KVM module loaded, or no hardware virtualization)"
        elif e.errno in (errno.EACCES, errno.EPERM):
            why = f"{device} is not accessible to this process (permission denied)"
        else:
            why = f"{device} cannot be opened: {e.strerror}"
        return KvmStatus(False, why, backend=backend)
    vm = -1
    try:
        try:
            api = int(_ioctl(kvm, _KVM_GET_API_VERSION))
        except OSError as e:
            return KvmStatus(False, f"{device} is not a KVM device (KVM_GET_API_VERSION: {e.strerror})",
                             backend=backend)
        if api != _KVM_API_VERSION:
            return KvmStatus(False, f"{device} speaks KVM API version {api}, not {_KVM_API_VERSION}",
                             api, backend)
        try:
            vm = int(_ioctl(kvm, _KVM_CREATE_VM, 0))
        except OSError as e:
            return KvmStatus(False, f"{device} cannot create a virtual machine (KVM_CREATE_VM: "
                             f"{e.strerror})", api, backend)
        if arch not in _X86:
            return KvmStatus(True, f"{device} answers API version {api} and creates VMs "
                             f"(guest code is not test-run on {arch})", api, backend)
        try:
            emulated = _run_guest_code(kvm, vm)
        except _ProbeFailed as e:
            return KvmStatus(False, f"{device} cannot run guest code: {e}", api, backend)
        except OSError as e:
            return KvmStatus(False, f"{device} cannot run guest code: {e.strerror or e}", api, backend)
    finally:
        if vm >= 0:
            os.close(vm)
        os.close(kvm)

    pvm_note = " (the kvm_pvm module, PVM, is the KVM back end)" if backend == "kvm_pvm" else ""
    if emulated is not None:
        if emulated >= PROBE_LOOPS // 2:
            return KvmStatus(
                False,
                f"{device} runs guest code through KVM's software instruction emulator "
                f"({emulated} instructions emulated for a {PROBE_LOOPS}-iteration loop){pvm_note}; "
                f"an ordinary guest would not boot",
                api, backend, emulated)
        return KvmStatus(True, f"{device} ran the probe guest natively "
                         f"({emulated} instructions emulated)", api, backend, emulated)
    # No statistics interface: fall back to static signals.
    flags = _cpu_flags(Path(cpuinfo))
    if not flags & {"vmx", "svm"}:
        return KvmStatus(False, f"the CPU advertises neither vmx nor svm, so {device} cannot use "
                         f"hardware virtualization{pvm_note}", api, backend)
    if backend == "kvm_pvm":
        return KvmStatus(False, f"{device} is backed by PVM (kvm_pvm), which runs only PVM-enabled "
                         "guest kernels", api, backend)
    return KvmStatus(True, f"{device} ran the probe guest and the CPU has hardware virtualization "
                     "(emulation counters unavailable on this kernel)", api, backend)


_cache_lock = threading.Lock()
_cache: dict[object, KvmStatus] = {}


def _cache_key(device: str) -> object:
    try:
        st = os.stat(device)
    except OSError as e:
        return (device, e.errno)
    return (device, st.st_rdev, st.st_ino, st.st_mode, st.st_uid)


def kvm_status(device: str = "/dev/kvm") -> KvmStatus:
    """:func:`probe_kvm`, cached per process while ``device`` stays the same node."""
    key = _cache_key(device)
    with _cache_lock:
        status = _cache.get(key)
        if status is None:
            status = probe_kvm(device)
            _cache[key] = status
        return status


def clear_cache() -> None:
    """Forget cached probe results (tests; after loading a KVM module)."""
    with _cache_lock:
        _cache.clear()


def require_kvm(device: str = "/dev/kvm") -> KvmStatus:
    """The status of a usable ``device``; raise when guests of type ``kvm`` cannot run.

    Raises :class:`~virtkit.errors.VirtError` with code ``CONFIG_UNSUPPORTED``
    and domain ``QEMU``, whose message says why and suggests type ``qemu``.
    """
    status = kvm_status(device)
    if not status.usable:
        raise VirtError(
            f"domain type 'kvm' needs a usable KVM device, but {status.reason}; "
            "use domain type 'qemu' (software emulation, TCG) instead",
            code=ErrorCode.CONFIG_UNSUPPORTED, domain=ErrorDomain.QEMU)
    return status
