"""virtkit.drivers.qemu.mac: generated addresses and filling them into a config."""

from __future__ import annotations

import re

import pytest

from virtkit.drivers.qemu import mac
from virtkit.drivers.qemu.mac import QEMU_MAC_PREFIX, fill_missing_macs, generate_mac
from virtkit.xml.domain import DomainConfig, Interface

_MAC = re.compile(r"52:54:00(:[0-9a-f]{2}){3}\Z")


def test_generated_macs_are_qemu_unicast_lower_case() -> None:
    macs = {generate_mac() for _ in range(200)}
    assert all(_MAC.match(m) for m in macs)
    assert QEMU_MAC_PREFIX == "52:54:00"
    assert len(macs) > 190  # 24 random bits: collisions in 200 draws are very unlikely


def test_generate_avoids_taken_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([b"\xaa\xbb\xcc", b"\xaa\xbb\xcc", b"\x00\x00\x01"])
    monkeypatch.setattr(mac.secrets, "token_bytes", lambda n: next(draws))
    # Taken addresses compare case-insensitively; a clash draws again.
    assert generate_mac({"52:54:00:AA:BB:CC"}) == "52:54:00:00:00:01"


def test_fill_leaves_a_complete_config_alone() -> None:
    cfg = DomainConfig(name="x", interfaces=(Interface(mac="52:54:00:01:02:03"),))
    assert fill_missing_macs(cfg) is cfg
    empty = DomainConfig(name="y")
    assert fill_missing_macs(empty) is empty


def test_fill_adds_distinct_addresses_and_keeps_existing_ones() -> None:
    cfg = DomainConfig(name="x", interfaces=(
        Interface(), Interface(mac="52:54:00:01:02:03"), Interface(type="network", source="default")))
    filled = fill_missing_macs(cfg)
    macs = [i.mac for i in filled.interfaces]
    assert macs[1] == "52:54:00:01:02:03"
    assert all(m is not None and _MAC.match(m) for m in macs)
    assert len(set(macs)) == 3
    assert filled.interfaces[2].source == "default"
    assert cfg.interfaces[0].mac is None  # the input is untouched
