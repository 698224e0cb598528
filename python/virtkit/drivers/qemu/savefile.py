"""The QEMU driver's save file: a header, the domain's XML, then QEMU's migration stream.

``virsh save`` (:meth:`QemuDriver.domain_save`) writes one file that
``virsh restore`` turns back into the running guest, on the same or another
daemon. Its layout (integers little-endian)::

    offset  size  field
         0    16  MAGIC, b"VirtkitQemuSave\\n"
        16     4  format version (VERSION)
        20     4  flags: bit 0 set when the guest was running (restore resumes it)
        24     4  length of the metadata (UTF-8 JSON object)
        28     4  length of the domain XML (UTF-8)
        32     8  length of QEMU's migration stream; 0 while the save is under way
        40     8  offset of the stream (a multiple of 4096, after metadata and XML)
        48        metadata, then XML, then zero padding up to the stream
    offset        QEMU's migration stream (it starts with "QEVM", version 3)

The metadata says what the XML alone cannot: the PCI slot of every device
(``pci_slots``: a restore must rebuild the very machine the stream describes,
hot-plugged devices included), the machine type QEMU resolved (``machine``:
``pc`` names a different machine in the next QEMU release) and the vCPUs
added while it ran (``hotplugged_vcpus``). Unknown keys are ignored, so later
versions may add some.

The stream length is written last, once QEMU reports the migration complete,
so a save that was interrupted (daemon killed, disk full) is refused as
incomplete, and a file cut short is refused as truncated, before any QEMU
starts. :func:`read_header` checks everything it can without QEMU; what only
QEMU can check (a stream corrupted in the middle) fails the incoming
migration, which the driver reports as a :class:`~virtkit.errors.SaveFileError`
too.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from virtkit.errors import SaveFileError, VirtSystemError

__all__ = [
    "MAGIC",
    "VERSION",
    "STREAM_MAGIC",
    "SaveHeader",
    "encode_header",
    "stream_length_patch",
    "read_header",
]

MAGIC = b"VirtkitQemuSave\n"
VERSION = 1
#: The first bytes of a QEMU migration stream: "QEVM" and stream version 3.
STREAM_MAGIC = b"QEVM\x00\x00\x00\x03"

_FIXED = struct.Struct("<16sIIIIQQ")
_STREAM_LENGTH_OFFSET = 32
_ALIGN = 4096
_MAX_META = 1 << 20
_MAX_XML = 16 << 20
_FLAG_RUNNING = 1


@dataclass(frozen=True)
class SaveHeader:
    """Everything in a save file before QEMU's stream."""

    xml: str
    running: bool
    pci_slots: dict[str, int] = field(default_factory=dict)
    machine: str | None = None
    #: vCPUs added while the saved QEMU ran (by number): the restored QEMU starts
    #: without them (same ``-smp cpus``) and gets them by ``device_add``.
    hotplugged_vcpus: tuple[int, ...] = ()
    #: Where QEMU's stream starts and how long it is (0 until the save completes).
    stream_offset: int = 0
    stream_length: int = 0


def _align(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def encode_header(header: SaveHeader) -> bytes:
    """The bytes before the stream (padding included), with the stream length
    of ``header``; the stream starts right after them."""
    meta: dict[str, Any] = {"pci_slots": header.pci_slots,
                            "hotplugged_vcpus": list(header.hotplugged_vcpus)}
    if header.machine is not None:
        meta["machine"] = header.machine
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    xml_bytes = header.xml.encode()
    offset = _align(_FIXED.size + len(meta_bytes) + len(xml_bytes))
    fixed = _FIXED.pack(MAGIC, VERSION, _FLAG_RUNNING if header.running else 0,
                        len(meta_bytes), len(xml_bytes), header.stream_length, offset)
    body = fixed + meta_bytes + xml_bytes
    return body + bytes(offset - len(body))


def stream_length_patch(length: int) -> tuple[int, bytes]:
    """``(offset, bytes)`` to write once the stream is complete."""
    return _STREAM_LENGTH_OFFSET, struct.pack("<Q", length)


def _corrupt(path: str, what: str) -> SaveFileError:
    return SaveFileError(f"'{path}' is not a usable virtkit QEMU save file: {what}")


def _read_exactly(fd: int, offset: int, size: int) -> bytes:
    data = os.pread(fd, size, offset)
    while len(data) < size:
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            break
        data += more
    return data


def read_header(fd: int, path: str) -> SaveHeader:
    """Read and check the header of the save file open on ``fd`` (``path`` is for
    messages); the file position is left alone (reads use ``pread``).

    Raises SaveFileError when the file is not a save file of a version this
    driver reads, when its header is inconsistent, when the save never
    completed, or when the stream is truncated or does not start like a QEMU
    migration stream; VirtSystemError when the file cannot be read.
    """
    try:
        size = os.fstat(fd).st_size
        fixed = _read_exactly(fd, 0, _FIXED.size)
    except OSError as e:
        raise VirtSystemError(f"cannot read save file '{path}': {e.strerror}",
                              errno=e.errno) from None
    if fixed[:len(MAGIC)] != MAGIC:
        raise _corrupt(path, "no virtkit QEMU save header (bad magic)")
    if len(fixed) < _FIXED.size:
        raise _corrupt(path, "the header is truncated")
    _, version, flags, meta_len, xml_len, stream_length, offset = _FIXED.unpack(fixed)
    if version != VERSION:
        raise _corrupt(path, f"format version {version}; this virtkit reads version {VERSION}")
    if meta_len > _MAX_META or xml_len > _MAX_XML or \
            offset != _align(_FIXED.size + meta_len + xml_len):
        raise _corrupt(path, "inconsistent header lengths")
    if stream_length == 0:
        raise _corrupt(path, "the save did not complete (no stream length was recorded)")
    if size < offset + stream_length:
        raise _corrupt(path, f"truncated: {size} bytes, the header announces "
                             f"{offset + stream_length}")
    if size > offset + stream_length:
        raise _corrupt(path, f"{size - offset - stream_length} unexpected bytes after the stream")
    try:
        body = _read_exactly(fd, _FIXED.size, meta_len + xml_len)
        start = _read_exactly(fd, offset, len(STREAM_MAGIC))
    except OSError as e:
        raise VirtSystemError(f"cannot read save file '{path}': {e.strerror}",
                              errno=e.errno) from None
    if len(body) < meta_len + xml_len:
        raise _corrupt(path, "the header is truncated")
    if start != STREAM_MAGIC:
        raise _corrupt(path, "the saved state is not a QEMU migration stream (version 3)")
    try:
        meta = json.loads(body[:meta_len])
        xml = body[meta_len:].decode()
    except (ValueError, UnicodeDecodeError):
        raise _corrupt(path, "unreadable metadata or XML") from None
    if not isinstance(meta, dict):
        raise _corrupt(path, "the metadata is not a JSON object")
    slots = meta.get("pci_slots", {})
    machine = meta.get("machine")
    if not isinstance(slots, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 32
            for k, v in slots.items()):
        raise _corrupt(path, "bad PCI slots in the metadata")
    if machine is not None and not isinstance(machine, str):
        raise _corrupt(path, "bad machine type in the metadata")
    vcpus = meta.get("hotplugged_vcpus", [])
    if not isinstance(vcpus, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1024 for v in vcpus):
        raise _corrupt(path, "bad vCPU numbers in the metadata")
    return SaveHeader(xml=xml, running=bool(flags & _FLAG_RUNNING), pci_slots=slots,
                      machine=machine, hotplugged_vcpus=tuple(vcpus), stream_offset=offset,
                      stream_length=stream_length)
