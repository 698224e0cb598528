"""Watch a network's bridge and ping a guest: when did each step of its start happen?

Run inside the daemon's namespace (``ip netns exec NS python -m tests.drivers.qemu.probe
--bridge BR --ping ADDRESS``); it prints one JSON object per line, each with
``t``, the CLOCK_MONOTONIC time (the same clock in every process of the host,
so the caller compares it with its own ``time.monotonic()``):

- ``{"event": "ready"}`` once it listens;
- ``{"event": "dhcp", "type": "DISCOVER|OFFER|REQUEST|ACK|NAK", "mac": ...}`` for
  each DHCP message seen on the bridge (an AF_PACKET socket bound to it);
- ``{"event": "arp", "op": 1|2, "sender": ...}`` for ARP from or to the address;
- ``{"event": "reply", "rtt": seconds}`` for the first ICMP echo reply from
  ``ADDRESS``, which is pinged every ``--interval`` seconds from the start;
  then the probe exits (or after ``--timeout`` seconds with ``{"event": "timeout"}``).
  ``--ping auto`` pings the address of the first DHCP OFFER seen (``ip`` in its event).

No packet capture tool is needed (the host may have no tcpdump or ping).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
_DHCP_TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK",
               7: "RELEASE", 8: "INFORM"}


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"t": time.monotonic(), "event": event, **fields}), flush=True)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo(ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    payload = struct.pack("!d", time.monotonic())
    return struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload


def _dhcp(frame: bytes) -> tuple[str, str, bytes] | None:
    """(message type, client MAC, offered address) of a DHCP frame, else None."""
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != 17:  # UDP
        return None
    udp = 14 + ihl
    sport, dport = struct.unpack("!HH", frame[udp:udp + 4])
    if {sport, dport} != {67, 68}:
        return None
    bootp = udp + 8
    mac = frame[bootp + 28:bootp + 34].hex(":")
    options = bootp + 240
    while options + 2 <= len(frame):
        code = frame[options]
        if code == 255:
            break
        if code == 0:
            options += 1
            continue
        length = frame[options + 1]
        if code == 53 and length >= 1:
            return _DHCP_TYPES.get(frame[options + 2], "?"), mac, frame[bootp + 16:bootp + 20]
        options += 2 + length
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--ping", required=True)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    target = socket.inet_aton(args.ping) if args.ping != "auto" else None
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind((args.bridge, 0))
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xFFFF
    emit("ready")
    deadline = time.monotonic() + args.timeout
    next_ping = time.monotonic()
    seq = 0
    while True:
        now = time.monotonic()
        if now >= deadline:
            emit("timeout")
            return 1
        if now >= next_ping and target is not None:
            seq = (seq + 1) & 0xFFFF
            try:
                icmp.sendto(_echo(ident, seq), (socket.inet_ntoa(target), 0))
            except OSError:
                pass  # no route yet
            next_ping = now + args.interval
        ready, _, _ = select.select([sniff, icmp], [], [], max(0.0, min(next_ping, deadline) - now))
        for sock in ready:
            data = sock.recv(65536)
            if sock is sniff:
                got = _dhcp(data)
                if got is not None:
                    emit("dhcp", type=got[0], mac=got[1], ip=socket.inet_ntoa(got[2]))
                    if target is None and got[0] == "OFFER":
                        target = got[2]
                elif data[12:14] == b"\x08\x06" and len(data) >= 42 and \
                        target is not None and target in (data[28:32], data[38:42]):
                    emit("arp", op=data[21], sender=socket.inet_ntoa(data[28:32]))
            else:
                ihl = (data[0] & 0x0F) * 4
                kind, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl:ihl + 8])
                if kind == 0 and rid == ident and target is not None and data[12:16] == target:
                    sent = struct.unpack("!d", data[ihl + 8:ihl + 16])[0]
                    emit("reply", rtt=time.monotonic() - sent)
                    return 0


if __name__ == "__main__":
    sys.exit(main())
