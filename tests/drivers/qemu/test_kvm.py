"""virtkit.drivers.qemu.kvm: the KVM usability probe.

On this project's machines /dev/kvm is backed by PVM (kvm_pvm): the probe must
say it is unusable, and why. On a host with hardware virtualization the same
probe must say usable. Both outcomes are checked against independent facts
(the CPU flags and the loaded modules), not only against the probe's word.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virtkit.drivers.qemu import kvm
from virtkit.errors import ErrorCode, ErrorDomain, VirtError

HAS_KVM = os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def needs_kvm(test):  # type: ignore[no-untyped-def]
    """These tests probe a real /dev/kvm: without one they fail and say so."""
    import functools

    @functools.wraps(test)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not HAS_KVM:
            pytest.fail("this test needs an accessible /dev/kvm (the machines this project "
                        "runs on have one, PVM-backed)", pytrace=False)
        return test(*args, **kwargs)
    return wrapper


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@needs_kvm
def test_probe_agrees_with_the_host() -> None:
    before = _open_fds()
    status = kvm.probe_kvm()
    assert _open_fds() == before, "the probe leaked file descriptors"
    assert status.api_version == 12
    flags = kvm._cpu_flags(Path("/proc/cpuinfo"))
    if status.emulated_instructions is not None:
        # Measured: the verdict follows the emulation count.
        assert status.usable == (status.emulated_instructions < kvm.PROBE_LOOPS // 2)
    if os.path.exists("/sys/module/kvm_pvm") and not flags & {"vmx", "svm"}:
        assert not status.usable
        assert "PVM" in status.reason or "emulat" in status.reason
    if status.usable:
        assert flags & {"vmx", "svm"}, "usable KVM on x86 without VMX/SVM?"


def test_missing_device() -> None:
    status = kvm.probe_kvm("/nonexistent/kvm")
    assert not status.usable and "does not exist" in status.reason and status.api_version is None


def test_not_a_kvm_device() -> None:
    status = kvm.probe_kvm("/dev/null")
    assert not status.usable and "not a KVM device" in status.reason


@needs_kvm
def test_other_architectures_skip_the_guest_run() -> None:
    status = kvm.probe_kvm(machine="aarch64")
    assert status.usable and "not test-run on aarch64" in status.reason
    assert status.emulated_instructions is None


@needs_kvm
@pytest.mark.parametrize(("flags", "module", "usable"), [
    ("fpu pae", "kvm_pvm", False),
    ("fpu vmx pae", "kvm_pvm", False),
    ("fpu svm", "kvm_amd", True),
    ("fpu pae", "kvm_intel", False),
])
def test_fallback_without_statistics(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str,
                                     module: str, usable: bool) -> None:
    """Kernels before 5.14 have no KVM_GET_STATS_FD: static signals decide."""
    def no_stats(vcpu: int) -> dict[str, int]:
        raise OSError(25, "Inappropriate ioctl for device")

    monkeypatch.setattr(kvm, "_read_stats", no_stats)
    (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    (tmp_path / "module" / module).mkdir(parents=True)
    status = kvm.probe_kvm(sys_module=str(tmp_path / "module"), cpuinfo=str(tmp_path / "cpuinfo"))
    if status.reason.startswith("/dev/kvm cannot run guest code"):
        pytest.fail(f"this machine's KVM cannot run guest code, so the fallback is not "
                    f"reached: {status.reason}", pytrace=False)
    assert status.usable == usable, status.reason
    assert status.backend == module


def test_require_kvm_raises_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = kvm.KvmStatus(False, "it is made of cheese")
    monkeypatch.setattr(kvm, "kvm_status", lambda device="/dev/kvm": bad)
    with pytest.raises(VirtError) as info:
        kvm.require_kvm()
    assert info.value.code == ErrorCode.CONFIG_UNSUPPORTED
    assert info.value.domain == ErrorDomain.QEMU
    assert "it is made of cheese" in info.value.message and "'qemu'" in info.value.message
    good = kvm.KvmStatus(True, "fine")
    monkeypatch.setattr(kvm, "kvm_status", lambda device="/dev/kvm": good)
    assert kvm.require_kvm() is good


def test_status_is_cached_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_probe(device: str = "/dev/kvm", **kw: object) -> kvm.KvmStatus:
        calls.append(device)
        return kvm.KvmStatus(False, "fake")

    monkeypatch.setattr(kvm, "probe_kvm", fake_probe)
    kvm.clear_cache()
    try:
        assert kvm.kvm_status("/dev/null") is kvm.kvm_status("/dev/null")
        assert calls == ["/dev/null"]
        kvm.clear_cache()
        kvm.kvm_status("/dev/null")
        assert calls == ["/dev/null", "/dev/null"]
    finally:
        kvm.clear_cache()


def test_probe_page_layout() -> None:
    page = kvm._probe_code()
    assert len(page) == 4096
    assert page[0xFF0] == 0xE9  # reset vector: jmp near
    assert page[0xF00:0xF02] == b"\x66\x2e"  # lgdt with operand-size and CS prefixes
    assert page[0x900] == 0xB9 and int.from_bytes(page[0x901:0x905], "little") == kvm.PROBE_LOOPS
