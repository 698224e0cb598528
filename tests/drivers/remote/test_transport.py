"""Packet framing: the frame buffer, the asyncio readers, the blocking channel, listeners."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virtkit.drivers.remote.protocol import (
    MESSAGE_MAX,
    REMOTE_PROGRAM,
    MessageStatus,
    MessageType,
    encode_packet,
)
from virtkit.drivers.remote.transport import (
    BlockingChannel,
    FrameBuffer,
    PacketProtocol,
    bind_unix_listener,
    check_length,
    read_packet,
)
from virtkit.errors import RPCError

bodies = st.lists(st.binary(min_size=24, max_size=300), max_size=6)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body) + 4) + body


@given(packets=bodies, cuts=st.lists(st.integers(1, 400), max_size=30))
def test_frame_buffer_reassembles_any_chunking(packets: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(b) for b in packets)
    frames = FrameBuffer(initial=32)
    out: list[bytes] = []
    pos = 0
    for size in cuts + [len(stream)]:
        chunk = stream[pos:pos + size]
        pos += len(chunk)
        while chunk:
            view = frames.writable()
            n = min(len(view), len(chunk))
            view[:n] = chunk[:n]
            view.release()
            frames.commit(n)
            chunk = chunk[n:]
            while (body := frames.next_packet()) is not None:
                out.append(body)
    assert out == packets
    assert len(frames) == 0


def test_frame_buffer_makes_room_for_a_whole_packet_and_shrinks_after() -> None:
    frames = FrameBuffer(initial=64)
    big = bytes(24) + os.urandom(100_000)
    data = frame(big)
    view = frames.writable()
    view[:4] = data[:4]
    view.release()
    frames.commit(4)
    view = frames.writable()
    assert len(view) >= len(data) - 4
    view[:len(data) - 4] = data[4:]
    view.release()
    frames.commit(len(data) - 4)
    assert frames.next_packet() == big
    assert len(frames.writable()) < 10_000  # the 100 kB buffer was dropped


@pytest.mark.parametrize(("length", "message"), [
    (0, "shorter than a header"),
    (27, "shorter than a header"),
    (4 + MESSAGE_MAX + 1, "exceeds the maximum"),
    (2**32 - 1, "exceeds the maximum"),
])
def test_bad_length_words(length: int, message: str) -> None:
    with pytest.raises(RPCError, match=message):
        check_length(length)
    frames = FrameBuffer()
    view = frames.writable()
    view[:4] = struct.pack(">I", length)
    view.release()
    frames.commit(4)
    with pytest.raises(RPCError, match=message):
        frames.next_packet()


def test_check_length_accepts_the_limits() -> None:
    assert check_length(28) == 24
    assert check_length(4 + MESSAGE_MAX) == MESSAGE_MAX
    assert check_length(1028, max_message=1024) == 1024
    with pytest.raises(RPCError):
        check_length(1029, max_message=1024)


# --- asyncio side ---------------------------------------------------------------------------


def test_read_packet_from_stream_reader() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(frame(b"a" * 24) + frame(b"b" * 30))
        reader.feed_eof()
        assert await read_packet(reader) == b"a" * 24
        assert await read_packet(reader) == b"b" * 30
        assert await read_packet(reader) is None  # clean end of stream

        for data, message in [(b"\0\0", "middle of a packet length"),
                              (frame(b"c" * 40)[:20], "after 16 of 40"),
                              (b"\0\0\0\1", "shorter than a header")]:
            reader = asyncio.StreamReader()
            reader.feed_data(data)
            reader.feed_eof()
            with pytest.raises(RPCError, match=message):
                await read_packet(reader)
    asyncio.run(main())


class Sink:
    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.closed: list[BaseException | None] = []

    def packet_received(self, body: bytes) -> None:
        self.packets.append(body)

    def connection_closed(self, exc: BaseException | None) -> None:
        self.closed.append(exc)


def test_packet_protocol_over_a_socket_pair() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        sink = Sink()
        protocol = PacketProtocol(max_message=1024)
        protocol.sink = sink
        await loop.connect_accepted_socket(lambda: protocol, ours)
        theirs.sendall(frame(b"x" * 24) + frame(b"y" * 100)[:50])
        await asyncio.sleep(0.05)
        theirs.sendall(frame(b"y" * 100)[50:])
        await asyncio.sleep(0.05)
        assert sink.packets == [b"x" * 24, b"y" * 100]
        protocol.write(b"reply")
        await asyncio.sleep(0.05)
        assert theirs.recv(10) == b"reply"
        theirs.sendall(struct.pack(">I", 4 + 1025))  # over max_message: closed
        await asyncio.sleep(0.05)
        assert len(sink.closed) == 1 and isinstance(sink.closed[0], RPCError)
        assert theirs.recv(1) == b""
        theirs.close()
    asyncio.run(main())


# --- blocking side --------------------------------------------------------------------------


def test_channel_reports_a_closed_peer() -> None:
    ours, theirs = socket.socketpair()
    channel = BlockingChannel(ours)
    theirs.close()
    with pytest.raises(RPCError, match="closed by the daemon|cannot"):
        channel.call(REMOTE_PROGRAM, 1, 3, b"", timeout=5)
    assert channel.closed
    with pytest.raises(RPCError, match="closed"):
        channel.call(REMOTE_PROGRAM, 1, 3, b"")


def test_channel_refuses_a_reply_for_another_procedure() -> None:
    ours, theirs = socket.socketpair()
    channel = BlockingChannel(ours)
    theirs.sendall(encode_packet(REMOTE_PROGRAM, 1, 99, MessageType.REPLY, 1, MessageStatus.OK))
    with pytest.raises(RPCError, match="expected 0x20008086 procedure 3"):
        channel.call(REMOTE_PROGRAM, 1, 3, b"", timeout=5)
    theirs.close()


def test_channel_poll_returns_when_idle() -> None:
    ours, theirs = socket.socketpair()
    seen: list[int] = []
    channel = BlockingChannel(ours, on_message=lambda h, b: seen.append(h.procedure))
    assert channel.poll(0.0) == 0
    assert channel.poll(0.05) == 0
    theirs.sendall(encode_packet(REMOTE_PROGRAM, 1, 318, MessageType.MESSAGE, 0,
                                 MessageStatus.OK))
    assert channel.poll(1.0) == 1
    assert seen == [318]
    assert not channel.closed
    channel.close()
    theirs.close()


def test_connect_unix_failure(tmp_path: Path) -> None:
    with pytest.raises(RPCError, match="cannot connect"):
        BlockingChannel.connect_unix(tmp_path / "nobody.sock")


# --- listening sockets ----------------------------------------------------------------------


def test_bind_unix_listener(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    sock = bind_unix_listener(path, 0o640)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        with pytest.raises(RPCError, match="another server is listening"):
            bind_unix_listener(path, 0o600)
    finally:
        sock.close()
    # Now stale: replaced.
    sock = bind_unix_listener(path, 0o600)
    sock.close()
    os.unlink(path)
    path.write_text("data")
    with pytest.raises(RPCError, match="not a socket"):
        bind_unix_listener(path, 0o600)
    with pytest.raises(RPCError, match="cannot listen"):
        bind_unix_listener(tmp_path / "missing-dir" / "s.sock", 0o600)
