"""Capabilities XML: 0.2.1's documented example, libvirt 9's output, round trips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests import needs
from hypothesis import given

from tests.xml import strategies
from tests.xml._support import check_golden, goldens, ids, inputs, invalid
from virtkit.errors import XMLError
from virtkit.xml import _document, schema
from virtkit.xml.capabilities import Capabilities, GuestCaps, GuestDomain, format_capabilities, parse_capabilities

CAPS = inputs("capabilities")


@pytest.mark.parametrize("path", CAPS, ids=ids(CAPS))
def test_fixture_loads_and_matches_golden(path: Path) -> None:
    caps = parse_capabilities(path.read_bytes())
    out = format_capabilities(caps)
    schema.validate("capabilities", _document.parse_xml(out, "capabilities"))
    assert parse_capabilities(out) == caps
    check_golden(path, out)


@pytest.mark.parametrize("path", goldens("capabilities"), ids=ids(goldens("capabilities")))
def test_golden_outputs_are_canonical(path: Path) -> None:
    assert format_capabilities(parse_capabilities(path.read_text())) == path.read_text()


@pytest.mark.parametrize("path", invalid("capabilities"), ids=ids(invalid("capabilities")))
def test_invalid_fixture_is_refused(path: Path) -> None:
    with pytest.raises(XMLError):
        parse_capabilities(path.read_bytes())


def test_documented_example() -> None:
    caps = parse_capabilities((inputs("capabilities", prefix="docs-")[0]).read_text())
    assert caps == Capabilities(
        host_arch="x86_64",
        host_features=("vmx",),
        guests=(
            GuestCaps(os_type="xen", arch="x86_64", wordsize=64, emulator="/usr/lib64/xen/bin/qemu-dm",
                      domains=(GuestDomain("xen"),)),
            GuestCaps(os_type="hvm", arch="i686", wordsize=32, emulator="/usr/lib/xen/bin/qemu-dm",
                      loader="/usr/lib/xen/boot/hvmloader", machines=("pc", "isapc"), domains=(GuestDomain("xen"),)),
        ),
    )


def test_libvirt9_host_extras_are_kept_guest_attributes_tolerated() -> None:
    caps = parse_capabilities((inputs("capabilities", prefix="libvirt9-qemu")[0]).read_text())
    assert (caps.host_arch, caps.host_cpu_model, caps.host_cpu_vendor) == (
        "x86_64", "Skylake-Client-noTSX-IBRS", "Intel")
    assert [x.split(">")[0].split(" ")[0] for x in caps.host_extra] == [
        "<uuid", "<power_management", "<iommu", "<migration_features", "<secmodel"]
    assert "<feature name='vmx'/>" in caps.host_cpu_extra
    x86_64, i686 = caps.guests
    assert x86_64.machines == ("pc-i440fx-7.2", "pc", "pc-q35-7.2", "q35")  # maxCpus/canonical not kept
    assert x86_64.features == ("acpi", "apic", "cpuselection", "deviceboot", "disksnapshot")
    assert i686.domains == (GuestDomain("qemu"), GuestDomain("kvm", "/usr/bin/qemu-kvm", ("pc",)))
    out = format_capabilities(caps)
    for block in caps.host_extra + caps.host_cpu_extra:
        assert block in out


def test_live_virsh_capabilities_round_trip() -> None:
    needs.program("virsh", "libvirt-clients")
    out = subprocess.run(["virsh", "-c", "test:///default", "capabilities"], check=True,
                         capture_output=True, timeout=60).stdout
    caps = parse_capabilities(out)
    assert caps.host_arch == "i686" and [g.os_type for g in caps.guests] == ["hvm", "xen"]
    assert any(x.startswith("<topology>") for x in caps.host_extra)
    assert parse_capabilities(format_capabilities(caps)) == caps


@given(strategies.capabilities())
def test_round_trip(caps: Capabilities) -> None:
    out = format_capabilities(caps)
    schema.validate("capabilities", _document.parse_xml(out, "capabilities"))
    back = parse_capabilities(out)
    assert back == caps
    assert format_capabilities(back) == out
