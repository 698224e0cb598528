"""virtkit.drivers.qemu.capabilities: discovery with the real QEMU and with fake binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests import needs

from virtkit.drivers.qemu import capabilities as caps
from virtkit.drivers.qemu.kvm import KvmStatus, kvm_status
from virtkit.errors import ErrorCode, ErrorDomain, VirtError
from virtkit.xml.capabilities import format_capabilities, parse_capabilities
from virtkit.xml.domain import DomainConfig, OSConfig

REAL_QEMU = shutil.which("qemu-system-x86_64")
KVM_OK = KvmStatus(True, "fake: usable", 12, "kvm_intel", 0)
KVM_BAD = KvmStatus(False, "fake: /dev/kvm is made of cheese", 12, "kvm_pvm", 20010)

MACHINES_7_2 = """\
Supported machines are:
microvm              microvm (i386)
pc                   Standard PC (i440FX + PIIX, 1996) (alias of pc-i440fx-7.2)
pc-i440fx-7.2        Standard PC (i440FX + PIIX, 1996) (default)
pc-i440fx-1.4        Standard PC (i440FX + PIIX, 1996) (deprecated)
q35                  Standard PC (Q35 + ICH9, 2009) (alias of pc-q35-7.2)
pc-q35-7.2           Standard PC (Q35 + ICH9, 2009)
isapc                ISA-only PC
none                 empty machine
"""


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    caps.clear_cache()


def fake_qemu(directory: Path, name: str, *, version: str = "QEMU emulator version 7.2.0",
              machines: str = MACHINES_7_2, accel: str | None = "Accelerators supported in QEMU binary:\ntcg\nkvm\n",
              log: Path | None = None, version_status: int = 0) -> Path:
    """A shell script answering -version, -machine help and -accel help like a QEMU."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    accel_branch = (f"printf '%s' {_sh(accel)}; exit 0" if accel is not None
                    else "echo \"qemu: -accel help: invalid option\" >&2; exit 1")
    lines = [
        "#!/bin/sh",
        f'echo "$*" >> {log}' if log else ":",
        'case "$*" in',
        f'  "-version") printf \'%s\\n\' {_sh(version)}; exit {version_status} ;;',
        f'  "-machine help") printf \'%s\' {_sh(machines)}; exit 0 ;;',
        f'  "-accel help") {accel_branch} ;;',
        "esac",
        "exit 1",
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


# ---------------------------------------------------------------- parsers


def test_parse_version_spellings() -> None:
    assert caps.parse_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n") == (7, 2, 22)
    assert caps.parse_version("QEMU PC emulator version 0.9.1, Copyright (c) 2003-2008 Fabrice Bellard") == (0, 9, 1)
    assert caps.parse_version("QEMU emulator version 2.5 (qemu-kvm)") == (2, 5, 0)
    with pytest.raises(ValueError):
        caps.parse_version("bash: qemu: command not found")


def test_parse_machine_help_current_format() -> None:
    ms = {m.name: m for m in caps.parse_machine_help(MACHINES_7_2)}
    assert list(ms) == ["microvm", "pc", "pc-i440fx-7.2", "pc-i440fx-1.4", "q35", "pc-q35-7.2", "isapc", "none"]
    assert ms["pc"].alias_of == "pc-i440fx-7.2" and not ms["pc"].is_default
    assert ms["pc-i440fx-7.2"].is_default and ms["pc-i440fx-7.2"].description == "Standard PC (i440FX + PIIX, 1996)"
    assert ms["pc-i440fx-1.4"].deprecated
    assert ms["microvm"].description == "microvm (i386)"  # a parenthesis that is not a marker stays


def test_parse_machine_help_odd_outputs() -> None:
    text = ("\r\n"
            "pc         Standard PC (alias of pc-1.1) (default)\r\n"  # old: default on the alias line
            "pc-1.1     Standard PC\r\n"
            "   continued description line\r\n"
            "bare\r\n"
            "x86-odd    Something (deprecated) (alias of pc-1.1)\r\n"
            "second     Another default (default)\r\n")
    ms = caps.parse_machine_help(text)
    assert [m.name for m in ms] == ["pc", "pc-1.1", "bare", "x86-odd", "second"]
    assert ms[0].is_default and ms[0].alias_of == "pc-1.1"
    assert not ms[4].is_default, "only the first default counts"
    assert ms[2].description == "" and ms[3].deprecated and ms[3].alias_of == "pc-1.1"
    assert caps.parse_machine_help("") == ()


def test_parse_accel_help() -> None:
    assert caps.parse_accel_help("Accelerators supported in QEMU binary:\ntcg\nkvm\nkvm\n") == ("tcg", "kvm")
    assert caps.parse_accel_help("") == ()


def test_host_cpu_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU\n"
                    "flags\t\t: fpu vme pae vmx lm\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert caps.host_cpu(str(info), "x86_64") == ("x86_64", ("vmx", "pae"), "Intel(R) Xeon(R) CPU", "Intel")
    info.write_text("vendor_id\t:   Shanghai  \nflags\t: svm\n")
    assert caps.host_cpu(str(info), "i586") == ("i686", ("svm",), None, "Zhaoxin")
    assert caps.host_cpu(str(tmp_path / "missing"), "arm64") == ("aarch64", (), None, None)


# ---------------------------------------------------------------- fake binaries


def test_discovery_with_fake_binaries(tmp_path: Path) -> None:
    bin1, bin2 = tmp_path / "bin1", tmp_path / "bin2"
    fake_qemu(bin1, "qemu-system-x86_64")
    fake_qemu(bin1, "qemu-system-i386", accel=None)  # QEMU < 4.0: no -accel help
    fake_qemu(bin1, "qemu-system-x86_64-microvm")  # a variant: skipped
    fake_qemu(bin1, "qemu-system-frobnitz")  # an unknown architecture: skipped
    fake_qemu(bin1, "qemu-system-aarch64", version="garbage")  # no version: a problem
    (bin1 / "qemu-system-ppc").write_text("#!/bin/sh\n")  # not executable: skipped
    bin2.mkdir()
    (bin2 / "qemu-system-x86_64").symlink_to(bin1 / "qemu-system-x86_64")  # the same file again

    found = caps.find_binaries([str(bin1), str(bin2), str(tmp_path / "nowhere")])
    assert [os.path.basename(p) for p in found] == ["qemu-system-aarch64", "qemu-system-i386",
                                                    "qemu-system-x86_64"]
    q = caps.discover([str(bin1), str(bin2)], kvm=KVM_OK, machine="x86_64")
    assert [b.target for b in q.binaries] == ["i386", "x86_64"]
    assert len(q.problems) == 1 and "qemu-system-aarch64" in q.problems[0]
    i386, x86 = q.binaries
    assert i386.accelerators == ("tcg",) and x86.accelerators == ("tcg", "kvm")
    assert x86.version == (7, 2, 0) and x86.version_text == "QEMU emulator version 7.2.0"
    assert x86.default_machine is not None and x86.default_machine.name == "pc-i440fx-7.2"
    assert x86.canonical_machine("pc") == "pc-i440fx-7.2" and x86.canonical_machine("vax") is None
    assert x86.machine_names()[0] == "pc-i440fx-7.2"
    # i686 goes to the native i386 binary; KVM for x86_64 (binary has kvm), not for i686 (its binary lacks it).
    assert q.binary_for("i686") is i386 and q.binary_for("x86_64") is x86
    assert q.domain_types("x86_64") == ("qemu", "kvm")
    assert q.domain_types("i686") == ("qemu",)
    assert q.domain_types("s390x") == ()


def test_capabilities_document(tmp_path: Path) -> None:
    fake_qemu(tmp_path, "qemu-system-x86_64")
    fake_qemu(tmp_path, "qemu-system-aarch64")
    info = tmp_path / "cpuinfo"
    info.write_text("vendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t: pae svm\n")
    q = caps.discover([str(tmp_path)], kvm=KVM_OK, cpuinfo=str(info), machine="x86_64")
    doc = q.to_capabilities()
    assert (doc.host_arch, doc.host_features, doc.host_cpu_vendor) == ("x86_64", ("svm", "pae"), "AMD")
    by_arch = {g.arch: g for g in doc.guests}
    # aarch64 runs aarch64 and armv7l; x86_64 runs x86_64 and (no i386 binary here) i686.
    assert sorted(by_arch) == ["aarch64", "armv7l", "i686", "x86_64"]
    assert by_arch["i686"].emulator == str(tmp_path / "qemu-system-x86_64")
    assert by_arch["i686"].wordsize == 32 and by_arch["i686"].features == ("pae", "nonpae", "acpi", "apic")
    assert [d.type for d in by_arch["x86_64"].domains] == ["qemu", "kvm"]
    assert [d.type for d in by_arch["aarch64"].domains] == ["qemu"], "no KVM for a foreign architecture"
    assert all(g.os_type == "hvm" for g in doc.guests)
    assert parse_capabilities(format_capabilities(doc)) == doc  # valid against the schema


def test_unusable_kvm_is_not_advertised(tmp_path: Path) -> None:
    fake_qemu(tmp_path, "qemu-system-x86_64")
    q = caps.discover([str(tmp_path)], kvm=KVM_BAD, machine="x86_64")
    assert q.domain_types("x86_64") == ("qemu",)


def test_cache_follows_the_binaries(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    path = fake_qemu(tmp_path / "bin", "qemu-system-x86_64", log=log)
    first = caps.discover([str(tmp_path / "bin")], kvm=KVM_OK)
    assert caps.discover([str(tmp_path / "bin")], kvm=KVM_OK) is first
    calls = log.read_text().count("-version")
    assert calls == 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "upgraded"
    second = caps.discover([str(tmp_path / "bin")], kvm=KVM_OK)
    assert second is not first and log.read_text().count("-version") == 2


def test_probe_binary_refuses_a_non_qemu(tmp_path: Path) -> None:
    bad = fake_qemu(tmp_path, "qemu-system-x86_64", version_status=3)
    with pytest.raises(VirtError) as info:
        caps.probe_binary(str(bad))
    assert info.value.code == ErrorCode.CONFIG_UNSUPPORTED and info.value.domain == ErrorDomain.QEMU


# ---------------------------------------------------------------- resolve


def _dom(**kw: object) -> DomainConfig:
    base: dict[str, object] = {"name": "t", "type": "qemu", "memory": 65536, "os": OSConfig()}
    base.update(kw)
    return DomainConfig(**base)  # type: ignore[arg-type]


def test_resolve(tmp_path: Path) -> None:
    x86 = fake_qemu(tmp_path / "bin", "qemu-system-x86_64")
    i386 = fake_qemu(tmp_path / "bin", "qemu-system-i386")
    q = caps.discover([str(tmp_path / "bin")], kvm=KVM_OK, machine="x86_64")

    r = q.resolve(_dom())
    assert (r.emulator, r.machine, r.accel) == (str(x86), "pc-i440fx-7.2", "tcg")
    r = q.resolve(_dom(type="kvm", os=OSConfig(arch="i686", machine="q35")))
    assert (r.emulator, r.machine, r.accel) == (str(i386), "q35", "kvm")
    r = q.resolve(_dom(emulator=str(x86), os=OSConfig(arch="i686")))
    assert r.emulator == str(x86)

    other = fake_qemu(tmp_path / "elsewhere", "qemu-system-x86_64")  # not discovered: probed
    assert q.resolve(_dom(emulator=str(other))).binary.path == str(other)

    q_bad = caps.discover([str(tmp_path / "bin")], kvm=KVM_BAD, machine="x86_64")
    for query, cfg, fragment in (
        (q, _dom(type="xen"), "cannot run under QEMU"),
        (q, _dom(os=OSConfig(arch="s390x")), "no QEMU binary runs s390x guests"),
        (q, _dom(emulator="/usr/bin/qemu"), "/usr/bin/qemu does not exist"),
        (q, _dom(emulator=str(i386), os=OSConfig(arch="x86_64")), "runs i686 guests, not x86_64"),
        (q, _dom(os=OSConfig(machine="vax-11")), "machine type 'vax-11' is unknown"),
        (q_bad, _dom(type="kvm"), "fake: /dev/kvm is made of cheese"),
    ):
        with pytest.raises(VirtError, match=fragment) as info:
            query.resolve(cfg)
        assert info.value.code == ErrorCode.CONFIG_UNSUPPORTED and info.value.domain == ErrorDomain.QEMU


def test_resolve_kvm_needs_the_binary_to_have_it(tmp_path: Path) -> None:
    fake_qemu(tmp_path, "qemu-system-x86_64", accel="Accelerators supported in QEMU binary:\ntcg\n")
    q = caps.discover([str(tmp_path)], kvm=KVM_OK, machine="x86_64")
    with pytest.raises(VirtError, match="built without KVM"):
        q.resolve(_dom(type="kvm"))


def test_resolve_kvm_needs_a_matching_host(tmp_path: Path) -> None:
    fake_qemu(tmp_path, "qemu-system-x86_64")
    q = caps.discover([str(tmp_path)], kvm=KVM_OK, machine="aarch64")
    with pytest.raises(VirtError, match="aarch64 host cannot run x86_64 guests with KVM"):
        q.resolve(_dom(type="kvm", os=OSConfig(arch="x86_64")))


# ---------------------------------------------------------------- the real QEMU


def test_real_qemu() -> None:
    needs.program("qemu-system-x86_64", "qemu-system-x86")
    q = caps.discover()
    x86 = q.binary_for("x86_64")
    assert x86 is not None and os.path.realpath(x86.path) == os.path.realpath(REAL_QEMU or "")
    # What we parsed matches what QEMU prints.
    raw = subprocess.run([x86.path, "-version"], capture_output=True, text=True, check=True).stdout
    assert f"{x86.version[0]}.{x86.version[1]}" in raw
    listed = subprocess.run([x86.path, "-machine", "help"], capture_output=True, text=True, check=True).stdout
    assert len(x86.machines) == len([ln for ln in listed.splitlines()[1:] if ln.strip()])
    assert {"pc", "q35", "isapc"} <= set(x86.machine_names())
    assert x86.default_machine is not None
    assert x86.canonical_machine("pc") == x86.default_machine.name  # QEMU's default is today's pc
    assert "tcg" in x86.accelerators
    # KVM is advertised exactly when the probe says it is usable (PVM here: not).
    assert ("kvm" in q.domain_types("x86_64")) == (kvm_status().usable and "kvm" in x86.accelerators)
    doc = q.to_capabilities()
    assert parse_capabilities(format_capabilities(doc)) == doc
    assert doc.host_arch == caps.normalize_arch(os.uname().machine)


def test_real_resolve_matches_kvm_usability() -> None:
    needs.program("qemu-system-x86_64", "qemu-system-x86")
    q = caps.discover()
    assert q.resolve(_dom()).accel == "tcg"
    if kvm_status().usable:
        assert q.resolve(_dom(type="kvm")).accel == "kvm"
    else:
        with pytest.raises(VirtError, match="needs a usable KVM device"):
            q.resolve(_dom(type="kvm"))
