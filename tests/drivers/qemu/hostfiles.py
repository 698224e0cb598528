"""Small host-side stand-ins for the live QEMU tests: images, a kernel header, raw QMP.

Nothing here needs qemu-img: a raw image is a sized file, a qcow2 image is
written by hand (a version 2 header, one refcount table and block, an empty L1
table), and the "kernel" is a Linux boot-protocol header that QEMU loads but,
started paused, never runs.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from pathlib import Path
from typing import Any

_CLUSTER = 1 << 16


def make_raw(path: Path, size: int = 1 << 20) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def make_qcow2(path: Path, size: int = 64 << 20) -> Path:
    """A valid, empty qcow2 (version 2) image of ``size`` bytes."""
    # Clusters: 0 header, 1 refcount table, 2 refcount block, 3 L1 table.
    l1_entries = -(-size // (_CLUSTER * (_CLUSTER // 8)))
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb", 2,        # magic, version
        0, 0,                 # backing file offset, size
        16, size,             # cluster bits, virtual size
        0,                    # no encryption
        l1_entries, 3 * _CLUSTER,   # L1 size, L1 offset
        1 * _CLUSTER, 1,      # refcount table offset, clusters
        0, 0,                 # snapshots
    )
    image = bytearray(4 * _CLUSTER)
    image[:len(header)] = header
    struct.pack_into(">Q", image, _CLUSTER, 2 * _CLUSTER)
    for i in range(4):
        struct.pack_into(">H", image, 2 * _CLUSTER + 2 * i, 1)
    path.write_bytes(bytes(image))
    return path


def make_kernel(path: Path) -> Path:
    """A Linux x86 boot-protocol 2.06 header with an empty body."""
    k = bytearray(4096)
    k[0x1F1] = 4                                   # setup sectors
    k[0x1FE:0x200] = b"\x55\xaa"
    k[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", k, 0x206, 0x0206)       # protocol version
    k[0x211] = 0x01                                # loaded high
    struct.pack_into("<I", k, 0x22C, 0x37FFFFFF)   # highest initrd address
    struct.pack_into("<I", k, 0x238, 2048)         # command line size
    path.write_bytes(bytes(k))
    return path


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    with socket.socket(type=socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RawQMP:
    """A minimal QMP exchange over a UNIX socket (greeting, capabilities, commands)."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(timeout)
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw", encoding="utf-8")
        self.greeting = json.loads(self.file.readline())
        self.events: list[dict[str, Any]] = []
        self.command("qmp_capabilities")

    def command(self, name: str, **arguments: Any) -> Any:
        msg: dict[str, Any] = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.file.write(json.dumps(msg) + "\n")
        self.file.flush()
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError(f"QMP closed while waiting for {name}")
            reply = json.loads(line)
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']}")
            return reply["return"]

    def close(self) -> None:
        self.file.close()
        self.sock.close()
