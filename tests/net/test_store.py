"""Definitions, autostart links and status files on disk (no namespace needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virtkit.net.store import NetworkStatus, NetworkStore, write_atomically
from virtkit.xml.network import parse_network


def test_configs_and_autostart_links(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path / "etc", tmp_path / "state")
    store.create()
    cfg = parse_network("<network><name>n</name><uuid>11111111-2222-3333-4444-555555555555"
                        "</uuid><bridge name='virbr3'/></network>")
    store.save_config(cfg)
    store.set_autostart("n", True)
    assert os.readlink(tmp_path / "etc" / "autostart" / "n.xml") == "../n.xml"
    assert store.autostart("n")
    (tmp_path / "etc" / "broken.xml").write_text("<network>")
    (tmp_path / "etc" / "other.xml").write_text("<network><name>x</name></network>")
    configs, problems = store.load_configs()
    assert configs == [cfg]
    assert len(problems) == 2 and any("defines network 'x'" in p for p in problems)
    store.remove_config("n")
    assert not store.autostart("n") and not (tmp_path / "etc" / "n.xml").exists()


def test_status_round_trip_and_stale_temporaries(tmp_path: Path) -> None:
    store = NetworkStore(tmp_path / "etc", tmp_path / "state")
    store.create()
    st = NetworkStatus(name="n", uuid="11111111-2222-3333-4444-555555555555", state="active",
                       bridge="virbr0", live_xml="<network><name>n</name></network>",
                       table="virtkit-virbr0", dnsmasq_pid=42)
    store.save_status(st)
    (tmp_path / "state" / "junk.status").write_text("{")
    loaded, bad = store.load_statuses()
    assert loaded == [st] and [p.name for p in bad] == ["junk.status"]
    assert loaded[0].live_config().name == "n"
    (tmp_path / "state" / ".n.status.tmp-1-2").write_text("partial")
    store.create()
    assert not (tmp_path / "state" / ".n.status.tmp-1-2").exists()
    with pytest.raises(ValueError):
        NetworkStatus.loads(b'{"version": 99}')


def test_write_atomically_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_atomically(target, b"old")
    with pytest.raises(OSError):
        write_atomically(tmp_path / "missing-dir" / "f", b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
