"""The QEMU driver's files: atomic writes, saved definitions (golden), status files.

No QEMU runs here. Regenerate the golden definitions with ``VIRTKIT_REGENERATE=1``
and review the diff.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from virtkit.drivers.qemu.status import (
    ConfigStore,
    DomainStatus,
    DriverDirs,
    remove_stale_temporaries,
    write_atomically,
)
from virtkit.errors import VirtSystemError
from virtkit.xml.domain import parse_domain

DATA = Path(__file__).parent / "data" / "status"
REGENERATE = os.environ.get("VIRTKIT_REGENERATE") == "1"

DEFINITION = """<domain type='qemu'>
  <name>golden</name>
  <uuid>0d7f0ad1-3a4e-4f0e-9c61-1d4b8a1e2b3c</uuid>
  <memory unit='MiB'>96</memory>
  <currentMemory unit='MiB'>64</currentMemory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>/boot/vmlinuz</kernel>
    <cmdline>console=ttyS0</cmdline></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>
    <serial type='pty'/>
    <console type='pty'/>
    <graphics type='vnc' port='-1' autoport='yes'/>
  </devices>
</domain>
"""


@pytest.fixture
def dirs(tmp_path: Path) -> DriverDirs:
    d = DriverDirs.under(tmp_path / "config", tmp_path / "state", tmp_path / "run")
    d.create()
    return d


def test_saved_definition_matches_golden(dirs: DriverDirs) -> None:
    config = parse_domain(DEFINITION)
    # A live id is never saved.
    import dataclasses
    ConfigStore(dirs).save(dataclasses.replace(config, id=7))
    saved = dirs.config_file("golden").read_text()
    golden = DATA / "golden.xml"
    if REGENERATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(saved)
    assert golden.exists(), "run with VIRTKIT_REGENERATE=1 and review the file"
    assert saved == golden.read_text()
    assert oct(dirs.config_file("golden").stat().st_mode & 0o777) == "0o600"
    [loaded] = ConfigStore(dirs).load_all()
    assert loaded == config


def test_write_replaces_whole_files_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.xml"
    write_atomically(target, b"old")
    write_atomically(target, b"new" * 100_000)
    assert target.read_bytes() == b"new" * 100_000
    assert [p.name for p in tmp_path.iterdir()] == ["f.xml"]


def test_a_failed_rename_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "f.xml"
    write_atomically(target, b"old")

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(VirtSystemError, match="No space left"):
        write_atomically(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.xml"]


_WRITER = """
import os, sys, time
from pathlib import Path
from virtkit.drivers.qemu.status import ConfigStore, DriverDirs
from virtkit.xml.domain import parse_domain
real_fsync = os.fsync
def stuck(fd):  # the data is written, not yet renamed: the moment a crash hurts
    sys.stdout.write("writing\\n"); sys.stdout.flush(); time.sleep(600)
os.fsync = stuck
dirs = DriverDirs(Path(sys.argv[1]), Path(sys.argv[1]), Path(sys.argv[1]))
ConfigStore(dirs).save(parse_domain(sys.stdin.read()))
"""


def test_a_crash_mid_write_leaves_the_old_definition(dirs: DriverDirs) -> None:
    store = ConfigStore(dirs)
    old = parse_domain(DEFINITION)
    store.save(old)
    before = dirs.config_file("golden").read_bytes()
    new_xml = DEFINITION.replace("<vcpu>2</vcpu>", "<vcpu>4</vcpu>")
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(dirs.config)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(new_xml.encode())
    proc.stdin.close()
    try:
        assert proc.stdout.readline() == b"writing\n"
        proc.send_signal(signal.SIGKILL)  # kill -9 in the middle of the write
    finally:
        proc.wait()
        proc.stdout.close()
    assert dirs.config_file("golden").read_bytes() == before
    leftovers = [p for p in dirs.config.iterdir() if p.name.startswith(".golden.xml.tmp-")]
    assert len(leftovers) == 1 and b"<vcpu>4</vcpu>" in leftovers[0].read_bytes()
    # The next open ignores and removes the torn temporary, and loads the old definition.
    assert store.load_all() == [old]
    assert not [p for p in dirs.config.iterdir() if p.name.startswith(".")]


def test_invalid_definitions_are_skipped(dirs: DriverDirs) -> None:
    (dirs.config / "broken.xml").write_text("<domain")
    (dirs.config / "other-name.xml").write_text(DEFINITION)  # names domain 'golden'
    assert ConfigStore(dirs).load_all() == []


def test_autostart_marks(dirs: DriverDirs) -> None:
    store = ConfigStore(dirs)
    assert not store.autostart("a")
    store.set_autostart("a", True)
    assert store.autostart("a") and dirs.autostart_mark("a").exists()
    store.set_autostart("a", False)
    store.set_autostart("a", False)
    assert not store.autostart("a")


def test_status_round_trip_and_refusals(dirs: DriverDirs) -> None:
    status = DomainStatus(name="g", uuid="0d7f0ad1-3a4e-4f0e-9c61-1d4b8a1e2b3c", id=3,
                          pid=1234, start_time_ns=5_000_000_000,
                          monitor=str(dirs.runtime / "g.monitor"), live_xml=DEFINITION,
                          emulator="/usr/bin/qemu-system-x86_64")
    status.save(dirs)
    assert DomainStatus.loads(dirs.status_file("g").read_bytes()) == status
    assert status.live_config().name == "golden"
    for bad in (b"[]", b'{"version": 99}', b'{"version": 1, "name": "g"}',
                status.dumps().replace(b'"id": 3', b'"id": "3"')):
        with pytest.raises(ValueError):
            DomainStatus.loads(bad)


def test_monitor_path_fits_a_socket_address() -> None:
    d = DriverDirs.under("/c", "/s", "/run/" + "x" * 40)
    assert d.monitor("short", "ab" * 16).name == "short.monitor"
    long = d.monitor("n" * 80, "ab" * 16)
    assert long.name == "ab" * 16 + ".monitor" and len(str(long)) < 108


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    (tmp_path / ".a.xml.tmp-1-2").write_bytes(b"torn")
    (tmp_path / "a.xml").write_bytes(b"whole")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".a.xml.tmp-1-2"]
    assert [p.name for p in tmp_path.iterdir()] == ["a.xml"]
