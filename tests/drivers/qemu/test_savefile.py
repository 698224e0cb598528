"""virtkit.drivers.qemu.savefile: the save file header, written and checked (no QEMU)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virtkit.drivers.qemu import savefile
from virtkit.drivers.qemu.savefile import SaveHeader, encode_header, read_header, stream_length_patch
from virtkit.errors import SaveFileError, VirtSystemError

XML = "<domain type='qemu'><name>g</name><memory>1024</memory></domain>"
STREAM = savefile.STREAM_MAGIC + b"\x05rest-of-the-stream"


def write(path: Path, header: SaveHeader, stream: bytes = STREAM, *, finish: bool = True) -> bytes:
    head = encode_header(header)
    data = bytearray(head + stream)
    if finish:
        offset, patch = stream_length_patch(len(stream))
        data[offset:offset + len(patch)] = patch
    path.write_bytes(bytes(data))
    return bytes(data)


def read(path: Path) -> SaveHeader:
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_header(fd, str(path))
    finally:
        os.close(fd)


def test_round_trip(tmp_path: Path) -> None:
    header = SaveHeader(xml=XML, running=True, pci_slots={"net0": 3, "balloon0": 4},
                        machine="pc-i440fx-7.2", hotplugged_vcpus=(1, 3))
    data = write(tmp_path / "f", header)
    got = read(tmp_path / "f")
    assert got.stream_offset % 4096 == 0 and got.stream_length == len(STREAM)
    assert data[got.stream_offset:] == STREAM
    assert (got.xml, got.running, got.pci_slots, got.machine, got.hotplugged_vcpus) == (
        XML, True, {"net0": 3, "balloon0": 4}, "pc-i440fx-7.2", (1, 3))
    assert read(tmp_path / "f") == got, "reading changes nothing"


@pytest.mark.parametrize(("mangle", "match"), [
    (lambda d: b"", "bad magic"),
    (lambda d: b"VirtkitQemuSav", "bad magic"),
    (lambda d: b"x" + d[1:], "bad magic"),
    (lambda d: d[:30], "header is truncated"),
    (lambda d: d[:16] + b"\x02\x00\x00\x00" + d[20:], "format version 2"),
    (lambda d: d[:24] + b"\xff\xff\xff\x00" + d[28:], "inconsistent header lengths"),
    (lambda d: d[:40] + b"\x00\x20" + d[42:], "inconsistent header lengths"),
    (lambda d: d[:-3], "truncated"),
    (lambda d: d + b"junk", "unexpected bytes"),
    (lambda d: d[:4096] + b"QEVX" + d[4100:], "not a QEMU migration stream"),
])
def test_bad_files_are_refused(tmp_path: Path, mangle: object, match: str) -> None:
    data = write(tmp_path / "good", SaveHeader(xml=XML, running=False))
    (tmp_path / "bad").write_bytes(mangle(data))  # type: ignore[operator]
    with pytest.raises(SaveFileError, match=match):
        read(tmp_path / "bad")


def test_an_unfinished_save_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "f", SaveHeader(xml=XML, running=True), finish=False)
    with pytest.raises(SaveFileError, match="did not complete"):
        read(tmp_path / "f")


@pytest.mark.parametrize("meta", [b"[]", b"{\"pci_slots\": {\"x\": 40}}",
                                  b"{\"pci_slots\": {\"x\": true}}", b"{\"machine\": 3}",
                                  b"{\"hotplugged_vcpus\": [0]}", b"\xff\xfe"])
def test_bad_metadata_is_refused(tmp_path: Path, meta: bytes) -> None:
    data = bytearray(write(tmp_path / "f", SaveHeader(xml=XML, running=True)))
    good_meta = encode_header(SaveHeader(xml=XML, running=True))[48:]
    meta_len = int.from_bytes(data[24:28], "little")
    padded = meta.ljust(meta_len) if len(meta) <= meta_len else meta[:meta_len]
    data[48:48 + meta_len] = padded
    assert good_meta[:meta_len] != padded
    (tmp_path / "f").write_bytes(bytes(data))
    with pytest.raises(SaveFileError, match="metadata"):
        read(tmp_path / "f")


def test_unreadable_file_is_a_system_error(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(VirtSystemError):
            read_header(fd, str(tmp_path))
    finally:
        os.close(fd)


@given(xml=st.text(max_size=300), running=st.booleans(),
       slots=st.dictionaries(st.text(min_size=1, max_size=12), st.integers(0, 31), max_size=8),
       machine=st.one_of(st.none(), st.text(max_size=20)),
       vcpus=st.lists(st.integers(1, 255), max_size=4),
       stream=st.binary(max_size=200))
def test_any_header_round_trips(tmp_path_factory: pytest.TempPathFactory, xml: str, running: bool,
                                slots: dict[str, int], machine: str | None, vcpus: list[int],
                                stream: bytes) -> None:
    path = tmp_path_factory.mktemp("rt") / "f"
    header = SaveHeader(xml=xml, running=running, pci_slots=slots, machine=machine,
                        hotplugged_vcpus=tuple(vcpus))
    write(path, header, savefile.STREAM_MAGIC + stream)
    got = read(path)
    assert (got.xml, got.running, got.pci_slots, got.machine, got.hotplugged_vcpus) == (
        xml, running, slots, machine, tuple(vcpus))


@given(cut=st.integers(0, 5000), junk=st.binary(max_size=64), where=st.integers(0, 5000))
def test_any_damage_is_a_save_file_error(tmp_path_factory: pytest.TempPathFactory, cut: int,
                                         junk: bytes, where: int) -> None:
    path = tmp_path_factory.mktemp("dmg") / "f"
    data = write(path, SaveHeader(xml=XML, running=True, pci_slots={"a": 1}))
    damaged = data[:where] + junk + data[where + len(junk):]
    damaged = damaged[:len(damaged) - cut] if cut else damaged
    path.write_bytes(damaged)
    try:
        read(path)
    except SaveFileError:
        return
    assert damaged == data or cut == 0, "a shorter file is always refused"
