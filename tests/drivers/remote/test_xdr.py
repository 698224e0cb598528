"""XDR codec: RFC 4506 encodings, round trips for every type, hostile input."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from virtkit.drivers.remote import xdr
from virtkit.drivers.remote.xdr import (
    VOID,
    Bool,
    Char,
    CharArray,
    Double,
    Enum,
    FixedArray,
    FixedOpaque,
    Float,
    Hyper,
    Int,
    Optional,
    Short,
    String,
    Struct,
    UChar,
    UHyper,
    UInt,
    Union,
    UShort,
    VarArray,
    VarCharArray,
    VarOpaque,
)
from virtkit.errors import RPCError

from tests.drivers.remote.strategies import values

# One of each type, nested the ways the protocol nests them.
POINT = Struct("point", [("x", Int()), ("y", Int())])
NAMED = Struct("named", [("name", String(16)), ("uuid", FixedOpaque(16)), ("id", Int())])
EVERYTHING = Struct("everything", [
    ("i", Int()), ("u", UInt()), ("h", Hyper()), ("uh", UHyper()), ("b", Bool()),
    ("e", Enum("colour", {"RED": 0, "GREEN": 1, "BLUE": 7})),
    ("f", Float()), ("d", Double()),
    ("c", Char()), ("uc", UChar()), ("s", Short()), ("us", UShort()),
    ("fo", FixedOpaque(5)), ("vo", VarOpaque(9)), ("str", String(10)),
    ("ca", CharArray(8)), ("vca", VarCharArray(8)),
    ("fa", FixedArray(Int(), 3)), ("va", VarArray(NAMED, 3)), ("vs", VarArray(UShort(), 5)),
    ("opt", Optional(POINT)), ("optstr", Optional(String(4))),
    ("un", Union("shape", Int(), {1: POINT, 2: String(8), 3: VOID})),
    ("und", Union("tagged", UInt(), {0: Int()}, default=Hyper())),
    ("nested", Struct("inner", [("p", POINT), ("bools", VarArray(Bool(), 4))])),
])

ALL_TYPES = [
    Int(), UInt(), Hyper(), UHyper(), Bool(), Enum("e", {"A": -3, "B": 5}), Float(), Double(),
    Char(), UChar(), Short(), UShort(), FixedOpaque(0), FixedOpaque(3), FixedOpaque(16),
    VarOpaque(), VarOpaque(7), String(), String(5), CharArray(4), VarCharArray(6),
    FixedArray(Int(), 2), FixedArray(NAMED, 2), VarArray(Hyper(), 6), VarArray(String(3)),
    Optional(Int()), Optional(NAMED), VOID, POINT, NAMED, EVERYTHING,
    Union("u", Enum("k", {"X": 0, "Y": 1}), {0: VOID, 1: String(3)}),
    Union("b", Bool(), {True: Int(), False: VOID}),
]


def ids(t: xdr.XDRType) -> str:
    return t.name


# --- exact wire forms (RFC 4506 examples and rules) ---------------------------------------


@pytest.mark.parametrize(("t", "value", "wire"), [
    (Int(), -1, b"\xff\xff\xff\xff"),
    (Int(), 1, b"\0\0\0\1"),
    (UInt(), 2**32 - 1, b"\xff\xff\xff\xff"),
    (Hyper(), -2, b"\xff" * 7 + b"\xfe"),
    (UHyper(), 2**40, b"\0\0\1\0\0\0\0\0"),
    (Bool(), True, b"\0\0\0\1"),
    (Bool(), False, b"\0\0\0\0"),
    (Enum("e", {"A": -3}), -3, b"\xff\xff\xff\xfd"),
    (Float(), 1.5, struct.pack(">f", 1.5)),
    (Double(), -0.25, struct.pack(">d", -0.25)),
    (Char(), -2, b"\xff\xff\xff\xfe"),
    (UChar(), 255, b"\0\0\0\xff"),
    (UShort(), 65535, b"\0\0\xff\xff"),
    (FixedOpaque(3), b"abc", b"abc\0"),
    (FixedOpaque(4), b"abcd", b"abcd"),
    (VarOpaque(), b"", b"\0\0\0\0"),
    (VarOpaque(), b"abcde", b"\0\0\0\5abcde\0\0\0"),
    (String(), "sillyprog", b"\0\0\0\x09sillyprog\0\0\0"),  # RFC 4506 section 7
    (String(), "é", b"\0\0\0\2\xc3\xa9\0\0"),
    (CharArray(3), "a", b"\0\0\0a\0\0\0\0\0\0\0\0"),
    (VarCharArray(4), "ab", b"\0\0\0\3\0\0\0a\0\0\0b\0\0\0\0"),
    (CharArray(2), "\xff", None),  # two UTF-8 bytes and a NUL do not fit in 2 chars
    (FixedArray(Int(), 2), [1, -1], b"\0\0\0\1\xff\xff\xff\xff"),
    (VarArray(UShort()), [1, 2], b"\0\0\0\2\0\0\0\1\0\0\0\2"),
    (Optional(Int()), None, b"\0\0\0\0"),
    (Optional(Int()), 7, b"\0\0\0\1\0\0\0\7"),
    (POINT, {"x": 1, "y": 2}, b"\0\0\0\1\0\0\0\2"),
    (Union("u", Int(), {1: Int(), 2: VOID}), (2, None), b"\0\0\0\2"),
    (Union("u", Int(), {1: Int()}), (1, 9), b"\0\0\0\1\0\0\0\x09"),
    (VOID, None, b""),
])
def test_wire_form(t: xdr.XDRType, value: Any, wire: bytes | None) -> None:
    if wire is None:  # a value too long for its char array: refused below
        with pytest.raises(RPCError):
            t.encode(value)
        return
    assert t.encode(value) == wire
    assert t.decode(wire) == value


def test_char_array_accepts_signed_and_unsigned_bytes() -> None:
    # rpcgen sends char as a signed int on x86 and unsigned elsewhere.
    signed = struct.pack(">4i", -61, -87, 0, 0)  # "é" as signed chars
    unsigned = struct.pack(">4i", 0xC3, 0xA9, 0, 0)
    assert CharArray(4).decode(signed) == CharArray(4).decode(unsigned) == "é"
    assert CharArray(4).encode("é") == signed


def test_fixed_size_and_min_size() -> None:
    assert POINT.fixed_size == 8
    assert NAMED.fixed_size is None
    assert NAMED.min_size == 4 + 16 + 4
    assert CharArray(32).fixed_size == 128
    assert EVERYTHING.fixed_size is None


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("t", ALL_TYPES, ids=ids)
@given(data=st.data())
def test_round_trip(t: xdr.XDRType, data: st.DataObject) -> None:
    value = data.draw(values(t))
    wire = t.encode(value)
    assert len(wire) % 4 == 0
    if t.fixed_size is not None:
        assert len(wire) == t.fixed_size
    assert len(wire) >= t.min_size
    assert t.decode(wire) == value
    t.check(value, "value")  # the slow validator agrees


@given(raw=st.binary(max_size=40))
@example(raw=b"\xff\xfe\x80abc")
def test_string_keeps_undecodable_bytes(raw: bytes) -> None:
    wire = VarOpaque().encode(raw)
    text = String().decode(wire)
    assert String().encode(text) == wire


def test_nan_round_trips() -> None:
    assert math.isnan(Double().decode(Double().encode(math.nan)))
    assert math.isnan(Float().decode(Float().encode(math.nan)))


def test_decode_accepts_bytearray_and_memoryview_and_offset() -> None:
    wire = b"xxxx" + POINT.encode({"x": 3, "y": 4})
    assert POINT.decode(bytearray(wire), 4) == {"x": 3, "y": 4}
    assert POINT.decode(memoryview(wire), 4) == {"x": 3, "y": 4}
    assert POINT.decode_from(wire + b"tail", 4) == ({"x": 3, "y": 4}, 12)


# --- refused values (encoding) --------------------------------------------------------------


@pytest.mark.parametrize(("t", "value", "message"), [
    (Int(), 2**31, "out of range"),
    (Int(), "1", "expected an integer"),
    (UInt(), -1, "out of range"),
    (UHyper(), 2**64, "out of range"),
    (UChar(), 256, "out of range"),
    (Char(), 128, "out of range"),
    (Short(), -40000, "out of range"),
    (Bool(), 2, "bool"),
    (Enum("e", {"A": 1}), 2, "not a value of enum e"),
    (Float(), 1e39, "too large"),
    (FixedOpaque(4), b"abc", "exactly 4 bytes"),
    (FixedOpaque(4), "abcd", "expected bytes"),
    (VarOpaque(2), b"abc", "exceed the maximum of 2"),
    (String(3), "abcd", "exceed the maximum of 3"),
    (String(3), "€a", "4 bytes exceed the maximum of 3"),
    (String(), b"bytes", "expected str"),
    (String(), "\ud800", "cannot be encoded"),
    (CharArray(3), "abc", "exceed the maximum of 2"),
    (CharArray(8), "a\0b", "NUL"),
    (VarArray(Int(), 1), [1, 2], "exceed the maximum of 1"),
    (VarArray(Int()), "12", "expected a list"),
    (FixedArray(Int(), 2), [1], "exactly 2 elements"),
    (POINT, {"x": 1}, "missing field 'y'"),
    (POINT, [1, 2], "expected a dict"),
    (NAMED, {"name": "n", "uuid": b"u" * 16, "id": 2**40}, "named.id"),
    (Union("u", Int(), {1: Int()}), (2, 5), "not a declared arm"),
    (Union("u", Int(), {1: Int()}), 5, "pair"),
    (Optional(Int()), "x", "expected an integer"),
    (VOID, 0, "void"),
])
def test_encode_refuses(t: xdr.XDRType, value: Any, message: str) -> None:
    with pytest.raises(RPCError, match=message):
        t.encode(value)


def test_encode_error_names_the_nested_field() -> None:
    value = {"name": "n", "uuid": b"u" * 16, "id": 1}
    with pytest.raises(RPCError, match=r"list\[1\]\.uuid"):
        VarArray(NAMED, name="list").encode([value, {**value, "uuid": b"short"}])


# --- hostile input (decoding) ---------------------------------------------------------------


@pytest.mark.parametrize("t", [t for t in ALL_TYPES if t is not VOID], ids=ids)
@given(data=st.data())
def test_every_truncation_is_an_rpc_error(t: xdr.XDRType, data: st.DataObject) -> None:
    wire = t.encode(data.draw(values(t)))
    for cut in range(len(wire)):
        with pytest.raises(RPCError):
            t.decode(wire[:cut])


@pytest.mark.parametrize("t", ALL_TYPES, ids=ids)
@given(data=st.data())
def test_trailing_bytes_are_an_rpc_error(t: xdr.XDRType, data: st.DataObject) -> None:
    wire = t.encode(data.draw(values(t)))
    with pytest.raises(RPCError, match="trailing"):
        t.decode(wire + b"\0\0\0\0")


@pytest.mark.parametrize("t", ALL_TYPES, ids=ids)
@given(raw=st.binary(max_size=200))
def test_random_bytes_decode_or_raise_rpc_error(t: xdr.XDRType, raw: bytes) -> None:
    try:
        value = t.decode(raw)
    except RPCError:
        return
    t.encode(value)  # whatever decodes can be sent back


@given(data=st.data())
def test_corrupted_bytes_decode_or_raise_rpc_error(data: st.DataObject) -> None:
    wire = bytearray(EVERYTHING.encode(data.draw(values(EVERYTHING))))
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    try:
        EVERYTHING.decode(bytes(wire))
    except RPCError:
        pass


@pytest.mark.parametrize(("t", "wire", "message"), [
    (VarOpaque(), b"\xff\xff\xff\xff", "announced but only 0 bytes left"),
    (VarArray(Hyper()), b"\0\1\0\0" + b"\0" * 16, "65536 elements announced"),
    (VarArray(NAMED, 100), b"\0\0\1\0", "256 elements exceed the maximum of 100"),
    (String(8), b"\0\0\0\x09sillyprog\0\0\0", "9 bytes exceed the maximum of 8"),
    (VarCharArray(4), b"\0\0\0\5" + b"\0" * 20, "5 chars exceed the maximum of 4"),
    (CharArray(1), b"\0\0\1\0", "256 is not a char"),
    (Optional(Int()), b"\0\0\0\2\0\0\0\0", "optional-data flag is 2"),
    (Bool(), b"\0\0\0\2", "bool is 2"),
    (Enum("e", {"A": 1}), b"\0\0\0\2", "not a value of enum e"),
    (UChar(), b"\0\0\1\0", "out of range"),
    (Union("u", Int(), {1: Int()}), b"\0\0\0\2\0\0\0\0", "not a declared arm"),
    (FixedArray(UShort(), 2), b"\0\0\0\1\0\1\0\0", "out of range"),
    (POINT, b"\0\0\0\1", "truncated"),
])
def test_decode_refuses(t: xdr.XDRType, wire: bytes, message: str) -> None:
    with pytest.raises(RPCError, match=message):
        t.decode(wire)


def test_huge_counts_are_refused_before_allocating() -> None:
    # 2**32-1 elements announced in an 8-byte buffer: refused at once.
    with pytest.raises(RPCError, match="announced"):
        VarArray(Int()).decode(b"\xff\xff\xff\xff\0\0\0\0")
    with pytest.raises(RPCError, match="announced"):
        VarArray(VarArray(Int())).decode(b"\0\0\0\1\xff\xff\xff\xfe")


def test_declarations_are_checked() -> None:
    with pytest.raises(ValueError):
        Struct("s", [("a", Int()), ("a", Int())])
    with pytest.raises(ValueError):
        Union("u", String(), {1: Int()})
    with pytest.raises(ValueError):
        VarArray(VOID)
    with pytest.raises(ValueError):
        Enum("e", {"BIG": 2**31})
