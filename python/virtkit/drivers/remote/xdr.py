"""XDR (RFC 4506) types, declared as data and compiled to fast codecs.

A wire structure is declared by composing small type objects::

    DOMAIN = Struct("nonnull_domain", [("name", String(4 << 20)),
                                       ("uuid", FixedOpaque(16)),
                                       ("id", Int())])
    DOMAIN.encode({"name": "fv0", "uuid": b"\\x00" * 16, "id": 3})   # -> bytes
    DOMAIN.decode(data)                                               # -> dict

Python values per type (section numbers are RFC 4506's):

=========================  ============================================  ===============
type                       Python value                                  RFC 4506
=========================  ============================================  ===============
Int, UInt, Hyper, UHyper   int (range-checked)                           4.1-4.5
Bool                       bool (encodes 0/1 and True/False)             4.4
Enum                       int, one of the declared values               4.3
Float, Double              float                                         4.6, 4.7
Char, UChar, Short, UShort int; rpcgen's C types, one 4-byte word each   (rpcgen)
FixedOpaque(n)             bytes of exactly n                            4.9
VarOpaque(max)             bytes, at most max                            4.10
String(max)                str (UTF-8, ``surrogateescape``), max bytes   4.11
CharArray(n) / VarCharArray(max)
                           str; rpcgen's ``char x[n]`` / ``char x<max>``
                           (one 4-byte word per byte), NUL-terminated    (rpcgen)
FixedArray(t, n)           list of n values                              4.12
VarArray(t, max)           list of at most max values                    4.13
Struct(name, fields)       dict keyed by field name                      4.14
Union(name, disc, arms)    tuple ``(discriminant, value)``               4.15
Void                       None                                          4.16
Optional(t)                None or the value of t ("pointer")            4.19
=========================  ============================================  ===============

Every type compiles itself, on first use, into one generated Python function
for encoding and one for decoding (``exec`` of source built from the
declaration, like ``dataclasses`` does): nested structures are inlined, and
each run of adjacent fixed-size fields (integers, floats, fixed opaques) is
packed or unpacked by a single precompiled :class:`struct.Struct`. There is no
per-field function call on the hot path.

Decoding never trusts the data: every length is checked against its declared
maximum and against the bytes actually left before anything is allocated,
discriminants and enums must be declared ones, and leftover bytes are an
error. Anything wrong raises :class:`~virtkit.errors.RPCError` naming the
structure and field; no ``IndexError`` or ``struct.error`` escapes. Encoding
checks values the same way (a failure is re-checked by a slow, precise
validator so the message names the offending field).
"""

from __future__ import annotations

import abc
import math
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from virtkit.errors import RPCError

__all__ = [
    "XDRType",
    "Int",
    "UInt",
    "Hyper",
    "UHyper",
    "Bool",
    "Enum",
    "Float",
    "Double",
    "Char",
    "UChar",
    "Short",
    "UShort",
    "FixedOpaque",
    "VarOpaque",
    "String",
    "CharArray",
    "VarCharArray",
    "FixedArray",
    "VarArray",
    "Struct",
    "Union",
    "Optional",
    "Void",
    "VOID",
    "UNLIMITED",
]

#: The largest length XDR can express (RFC 4506 4.10: 2**32 - 1).
UNLIMITED = 0xFFFFFFFF

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes, int], "tuple[Any, int]"]

_PAD = (b"", b"\0\0\0", b"\0\0", b"\0")  # indexed by length & 3
_U32 = struct.Struct(">I")


def _padded(n: int) -> int:
    return (n + 3) & ~3


class _Gen:
    """Builds the source of one generated function."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ns: dict[str, Any] = {
            "_E": RPCError,
            "_PAD": _PAD,
            "_pu32": _U32.pack,
            "_uu32": _U32.unpack_from,
            "_unpack_from": struct.unpack_from,
            "_pack": struct.pack,
            "_len": len,
            "_str": str,
            "_bytes": bytes,
            "_list": list,
            "_range": range,
            "enumerate": enumerate,
            "repr": repr,
        }
        self.depth = 1
        self.counter = 0

    def tmp(self, prefix: str = "t") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def const(self, value: Any, prefix: str = "k") -> str:
        name = self.tmp("_" + prefix)
        self.ns[name] = value
        return name

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    @contextmanager
    def block(self, header: str) -> Iterator[None]:
        self.line(header)
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def fail(self, message_expr: str) -> None:
        self.line(f"raise _E({message_expr})")

    def build(self, header: str, name: str) -> Any:
        source = header + "\n" + "\n".join(self.lines) + "\n"
        code = compile(source, f"<xdr {name}>", "exec")
        exec(code, self.ns)  # noqa: S102 - source generated from declarations above
        return self.ns[header.split()[1].split("(")[0]]


class XDRType(abc.ABC):
    """Base of every XDR type: declaration, compiled codec and a slow validator.

    Subclasses say how they encode and decode by emitting Python statements
    (``_emit_encode`` appends ``bytes`` to the local ``a``; ``_emit_decode``
    reads from ``buf`` at ``off``, advances ``off`` and assigns ``target``).
    """

    #: Encoded size in bytes when it never varies, else None.
    fixed_size: int | None = None
    #: Fewest bytes any value can take (used to bound array counts before allocating).
    min_size: int = 4
    #: Name used in error messages.
    name: str = "value"

    _encoder: Encoder | None = None
    _decoder: Decoder | None = None

    # -- public API -------------------------------------------------------------------------

    def encode(self, value: Any) -> bytes:
        """Encode ``value``; RPCError (naming the field) when it does not fit the declaration."""
        enc = self._encoder
        if enc is None:
            enc = self._encoder = self._compile_encoder()
        try:
            return enc(value)
        except Exception as exc:  # noqa: BLE001 - re-checked below for a precise message
            self.check(value, self.name)  # raises naming the field, element indexes included
            if isinstance(exc, RPCError):
                raise
            raise RPCError(f"cannot encode {self.name}: {exc}") from exc

    def decode(self, data: bytes | bytearray | memoryview, offset: int = 0) -> Any:
        """Decode one value filling ``data[offset:]`` exactly; RPCError otherwise."""
        value, end = self.decode_from(data, offset)
        if end != len(data):
            raise RPCError(
                f"{len(data) - end} unexpected trailing bytes after {self.name}")
        return value

    def decode_from(self, data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, int]:
        """Decode one value at ``offset``; returns it and the offset just past it."""
        if type(data) is not bytes:
            data = bytes(data)
        dec = self._decoder
        if dec is None:
            dec = self._decoder = self._compile_decoder()
        try:
            value, end = dec(data, offset)
        except RPCError:
            raise
        except (struct.error, IndexError, ValueError, OverflowError) as exc:
            raise RPCError(
                f"truncated XDR data: {self.name} needs more than the "
                f"{max(len(data) - offset, 0)} bytes available ({exc})") from None
        if end > len(data):
            raise RPCError(
                f"truncated XDR data: {self.name} needs {end - offset} bytes, "
                f"{len(data) - offset} available")
        return value, end

    @abc.abstractmethod
    def check(self, value: Any, path: str) -> None:
        """Raise RPCError naming ``path`` when ``value`` cannot be encoded as this type."""

    def encoder(self) -> Encoder:
        """The compiled encoder function (no error translation; for hot loops)."""
        if self._encoder is None:
            self._encoder = self._compile_encoder()
        return self._encoder

    def decoder(self) -> Decoder:
        """The compiled decoder ``(buf, offset) -> (value, end)`` (no error translation)."""
        if self._decoder is None:
            self._decoder = self._compile_decoder()
        return self._decoder

    # -- compilation ------------------------------------------------------------------------

    def _compile_encoder(self) -> Encoder:
        g = _Gen()
        g.line("parts = []")
        g.line("a = parts.append")
        self._emit_encode(g, "v", self.name)
        g.line("return b''.join(parts)")
        fn: Encoder = g.build("def _enc(v):", self.name)
        return fn

    def _compile_decoder(self) -> Decoder:
        g = _Gen()
        self._emit_decode(g, "r", self.name)
        g.line("return r, off")
        fn: Decoder = g.build("def _dec(buf, off):", self.name)
        return fn

    @abc.abstractmethod
    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        """Emit the lines that append the encoding of ``expr`` to ``parts``."""

    @abc.abstractmethod
    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        """Emit the lines that decode one value into ``target`` and advance ``off``."""

    def __repr__(self) -> str:
        return f"<XDR {type(self).__name__} {self.name}>"


# --- fixed-size scalars ---------------------------------------------------------------------


class _Scalar(XDRType):
    """A value packed by one ``struct`` code; may join a run of its neighbours."""

    code: str = "i"
    lo: float = -(2**31)
    hi: float = 2**31 - 1
    #: True when the range is narrower than what ``struct`` itself enforces.
    narrow: bool = False
    fixed_size = 4
    min_size = 4

    def __init__(self) -> None:
        self.name = type(self).__name__.lower()

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, int):
            raise RPCError(f"{path}: expected an integer, got {type(value).__name__}")
        if not self.lo <= value <= self.hi:
            raise RPCError(f"{path}: {value} is out of range for {self.name} "
                           f"[{int(self.lo)}, {int(self.hi)}]")

    # Scalars encode/decode within runs (see _emit_run_*); alone they are a run of one.
    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        _emit_run_encode(g, [(expr, self, path)])

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        _emit_run_decode(g, [(target, self, path)])

    def _enc_check(self, g: _Gen, var: str, path: str) -> None:
        """Statements validating ``var`` before packing (narrow ranges only)."""
        if self.narrow:
            with g.block(f"if not {int(self.lo)} <= {var} <= {int(self.hi)}:"):
                g.fail(f"{path!r} + ': ' + _str({var}) + ' is out of range'")

    def _dec_fix(self, g: _Gen, var: str, path: str) -> None:
        """Statements validating/converting ``var`` after unpacking."""
        if self.narrow:
            with g.block(f"if not {int(self.lo)} <= {var} <= {int(self.hi)}:"):
                g.fail(f"{path!r} + ': ' + _str({var}) + ' is out of range'")


class Int(_Scalar):
    """Signed 32-bit integer (RFC 4506 4.1)."""

    code, lo, hi = "i", -(2**31), 2**31 - 1


class UInt(_Scalar):
    """Unsigned 32-bit integer (RFC 4506 4.2)."""

    code, lo, hi = "I", 0, 2**32 - 1


class Hyper(_Scalar):
    """Signed 64-bit integer (RFC 4506 4.5)."""

    code, lo, hi = "q", -(2**63), 2**63 - 1
    fixed_size = 8
    min_size = 8


class UHyper(_Scalar):
    """Unsigned 64-bit integer (RFC 4506 4.5)."""

    code, lo, hi = "Q", 0, 2**64 - 1
    fixed_size = 8
    min_size = 8


class Char(_Scalar):
    """rpcgen's ``char``: a signed byte sent as a 4-byte integer."""

    code, lo, hi, narrow = "i", -128, 127, True


class UChar(_Scalar):
    """rpcgen's ``unsigned char``: a byte sent as a 4-byte integer."""

    code, lo, hi, narrow = "I", 0, 255, True


class Short(_Scalar):
    """rpcgen's ``short``: sent as a 4-byte integer."""

    code, lo, hi, narrow = "i", -(2**15), 2**15 - 1, True


class UShort(_Scalar):
    """rpcgen's ``unsigned short``: sent as a 4-byte integer."""

    code, lo, hi, narrow = "I", 0, 2**16 - 1, True


class Bool(_Scalar):
    """Boolean (RFC 4506 4.4): 0 or 1 on the wire, ``bool`` in Python."""

    code, lo, hi, narrow = "I", 0, 1, True

    def check(self, value: Any, path: str) -> None:
        if value not in (0, 1) or not isinstance(value, int):
            raise RPCError(f"{path}: expected a bool, got {value!r}")

    def _enc_check(self, g: _Gen, var: str, path: str) -> None:
        with g.block(f"if {var} is not True and {var} is not False and {var} not in (0, 1):"):
            g.fail(f"{path!r} + ': expected a bool'")
        g.line(f"{var} = 1 if {var} else 0")

    def _dec_fix(self, g: _Gen, var: str, path: str) -> None:
        with g.block(f"if {var} > 1:"):
            g.fail(f"{path!r} + ': bool is ' + _str({var}) + ', not 0 or 1'")
        g.line(f"{var} = {var} == 1")


class Enum(_Scalar):
    """Enumeration (RFC 4506 4.3): a signed int restricted to the declared values.

    ``values`` is a mapping name -> number or an ``IntEnum`` class; decoding
    returns the plain ``int`` and refuses undeclared numbers.
    """

    code, narrow = "i", True

    def __init__(self, name: str, values: Mapping[str, int] | type[Any]) -> None:
        self.name = name
        if isinstance(values, Mapping):
            numbers = set(values.values())
        else:
            numbers = {int(member) for member in values}
        for n in numbers:
            if not -(2**31) <= n < 2**31:
                raise ValueError(f"enum {name}: {n} does not fit in 32 bits")
        self.values = frozenset(numbers)
        self.lo, self.hi = min(numbers), max(numbers)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, int) or value not in self.values:
            raise RPCError(f"{path}: {value!r} is not a value of enum {self.name}")

    def _enc_check(self, g: _Gen, var: str, path: str) -> None:
        allowed = g.const(self.values, "enum")
        with g.block(f"if {var} not in {allowed}:"):
            g.fail(f"{path!r} + ': ' + _str({var}) + ' is not a value of enum {self.name}'")

    def _dec_fix(self, g: _Gen, var: str, path: str) -> None:
        allowed = g.const(self.values, "enum")
        with g.block(f"if {var} not in {allowed}:"):
            g.fail(f"{path!r} + ': ' + _str({var}) + ' is not a value of enum {self.name}'")


class Float(_Scalar):
    """IEEE single-precision float (RFC 4506 4.6)."""

    code = "f"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, (int, float)):
            raise RPCError(f"{path}: expected a float, got {type(value).__name__}")
        if math.isfinite(value) and abs(value) > 3.4028234663852886e38:
            raise RPCError(f"{path}: {value} is too large for a single-precision float")


class Double(_Scalar):
    """IEEE double-precision float (RFC 4506 4.7)."""

    code = "d"
    fixed_size = 8
    min_size = 8

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, (int, float)):
            raise RPCError(f"{path}: expected a float, got {type(value).__name__}")


class FixedOpaque(XDRType):
    """Fixed-length opaque data (RFC 4506 4.9): ``bytes`` of exactly ``size``."""

    def __init__(self, size: int, name: str | None = None) -> None:
        if size < 0:
            raise ValueError("opaque size must be >= 0")
        self.size = size
        self.name = name or f"opaque[{size}]"
        self.fixed_size = self.min_size = _padded(size)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise RPCError(f"{path}: expected bytes, got {type(value).__name__}")
        if len(value) != self.size:
            raise RPCError(f"{path}: expected exactly {self.size} bytes, got {len(value)}")

    @property
    def code(self) -> str:
        pad = _padded(self.size) - self.size
        return f"{self.size}s" + (f"{pad}x" if pad else "")

    def _enc_check(self, g: _Gen, var: str, path: str) -> None:
        with g.block(f"if _len({var}) != {self.size}:"):
            g.fail(f"{path!r} + ': expected exactly {self.size} bytes'")

    def _dec_fix(self, g: _Gen, var: str, path: str) -> None:
        pass

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        _emit_run_encode(g, [(expr, self, path)])

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        _emit_run_decode(g, [(target, self, path)])


# A run member: scalar or fixed opaque, packed with one struct code.
_RunMember = _Scalar | FixedOpaque


def _emit_run_encode(g: _Gen, members: Sequence[tuple[str, _RunMember, str]]) -> None:
    """Pack adjacent fixed-size members with one precompiled struct."""
    fmt = ">" + "".join(t.code for _, t, _ in members)
    packer = g.const(struct.Struct(fmt).pack, "pack")
    names = []
    for expr, t, path in members:
        var = g.tmp("e")
        g.line(f"{var} = {expr}")
        t._enc_check(g, var, path)
        names.append(var)
    g.line(f"a({packer}({', '.join(names)}))")


def _emit_run_decode(g: _Gen, members: Sequence[tuple[str, _RunMember, str]]) -> None:
    """Unpack adjacent fixed-size members with one precompiled struct."""
    s = struct.Struct(">" + "".join(t.code for _, t, _ in members))
    unpacker = g.const(s.unpack_from, "unpack")
    names = [target for target, _, _ in members]
    g.line(f"{', '.join(names)}, = {unpacker}(buf, off)")
    g.line(f"off += {s.size}")
    for target, t, path in members:
        t._dec_fix(g, target, path)


# --- variable-length data -------------------------------------------------------------------


def _emit_length(g: _Gen, var: str, maximum: int, unit: int, path: str, what: str) -> None:
    """Read a length word into ``var``; check it against ``maximum`` and the bytes left."""
    g.line(f"{var}, = _uu32(buf, off)")
    g.line("off += 4")
    if maximum < UNLIMITED:
        with g.block(f"if {var} > {maximum}:"):
            g.fail(f"{path!r} + ': ' + _str({var}) + ' {what} exceed the maximum of {maximum}'")
    with g.block(f"if {var} * {unit} > _len(buf) - off:"):
        g.fail(f"{path!r} + ': ' + _str({var}) + ' {what} announced but only ' + "
               f"_str(_len(buf) - off) + ' bytes left'")


class VarOpaque(XDRType):
    """Variable-length opaque data (RFC 4506 4.10): ``bytes`` of at most ``max_size``."""

    def __init__(self, max_size: int = UNLIMITED, name: str | None = None) -> None:
        self.max_size = max_size
        self.name = name or f"opaque<{max_size}>"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise RPCError(f"{path}: expected bytes, got {type(value).__name__}")
        if len(value) > self.max_size:
            raise RPCError(f"{path}: {len(value)} bytes exceed the maximum of {self.max_size}")

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        b, n = g.tmp("b"), g.tmp("n")
        g.line(f"{b} = {expr}")
        g.line(f"{n} = _len({b})")
        with g.block(f"if {n} > {self.max_size}:"):
            g.fail(f"{path!r} + ': ' + _str({n}) + ' bytes exceed the maximum of {self.max_size}'")
        g.line(f"a(_pu32({n})); a({b}); a(_PAD[{n} & 3])")

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        n = g.tmp("n")
        _emit_length(g, n, self.max_size, 1, path, "bytes")
        g.line(f"{target} = buf[off:off + {n}]")
        g.line(f"off += ({n} + 3) & ~3")


class String(XDRType):
    """String (RFC 4506 4.11): ``str`` whose UTF-8 encoding has at most ``max_size`` bytes.

    Undecodable bytes from a peer survive a round trip (``surrogateescape``).
    """

    def __init__(self, max_size: int = UNLIMITED, name: str | None = None) -> None:
        self.max_size = max_size
        self.name = name or f"string<{max_size}>"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise RPCError(f"{path}: expected str, got {type(value).__name__}")
        try:
            size = len(value.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError as exc:
            raise RPCError(f"{path}: cannot be encoded as UTF-8 ({exc.reason})") from None
        if size > self.max_size:
            raise RPCError(f"{path}: {size} bytes exceed the maximum of {self.max_size}")

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        b, n = g.tmp("b"), g.tmp("n")
        g.line(f"{b} = {expr}.encode('utf-8', 'surrogateescape')")
        g.line(f"{n} = _len({b})")
        if self.max_size < UNLIMITED:
            with g.block(f"if {n} > {self.max_size}:"):
                g.fail(f"{path!r} + ': ' + _str({n}) + ' bytes exceed the maximum of "
                       f"{self.max_size}'")
        g.line(f"a(_pu32({n})); a({b}); a(_PAD[{n} & 3])")

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        n = g.tmp("n")
        _emit_length(g, n, self.max_size, 1, path, "bytes")
        g.line(f"{target} = buf[off:off + {n}].decode('utf-8', 'surrogateescape')")
        g.line(f"off += ({n} + 3) & ~3")


class CharArray(XDRType):
    """rpcgen's ``char x[size]`` holding a C string: ``size`` words, one byte each.

    The Python value is the ``str`` before the first NUL (UTF-8,
    ``surrogateescape``); encoding pads it with NULs and needs room for one.
    Bytes may arrive signed (-128..-1) or unsigned (128..255).
    """

    def __init__(self, size: int, name: str | None = None) -> None:
        self.size = size
        self.name = name or f"char[{size}]"
        self.fixed_size = self.min_size = 4 * size
        self._struct = struct.Struct(f">{size}i")

    def check(self, value: Any, path: str) -> None:
        _check_cstring(value, self.size - 1, path)

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        conv = g.const(_cstring_to_words, "cs")
        packer = g.const(self._struct.pack, "pack")
        g.line(f"a({packer}(*{conv}({expr}, {self.size}, {self.size}, {path!r})))")

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        conv = g.const(_words_to_cstring, "cs")
        unpacker = g.const(self._struct.unpack_from, "unpack")
        g.line(f"{target} = {conv}({unpacker}(buf, off), {path!r})")
        g.line(f"off += {4 * self.size}")


class VarCharArray(XDRType):
    """rpcgen's ``char x<max>`` holding a C string, NUL included (libvirt's security labels)."""

    def __init__(self, max_size: int, name: str | None = None) -> None:
        self.max_size = max_size
        self.name = name or f"char<{max_size}>"

    def check(self, value: Any, path: str) -> None:
        _check_cstring(value, self.max_size - 1, path)

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        conv = g.const(_cstring_to_words, "cs")
        w = g.tmp("w")
        g.line(f"{w} = {conv}({expr}, 0, {self.max_size}, {path!r})")
        g.line(f"a(_pu32(_len({w}))); a(_pack('>%di' % _len({w}), *{w}))")

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        conv = g.const(_words_to_cstring, "cs")
        n = g.tmp("n")
        _emit_length(g, n, self.max_size, 4, path, "chars")
        g.line(f"{target} = {conv}(_unpack_from('>%di' % {n}, buf, off), {path!r})")
        g.line(f"off += 4 * {n}")


def _check_cstring(value: Any, max_chars: int, path: str) -> None:
    if not isinstance(value, str):
        raise RPCError(f"{path}: expected str, got {type(value).__name__}")
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise RPCError(f"{path}: cannot be encoded as UTF-8 ({exc.reason})") from None
    if b"\0" in raw:
        raise RPCError(f"{path}: a C string cannot contain NUL")
    if len(raw) > max_chars:
        raise RPCError(f"{path}: {len(raw)} bytes exceed the maximum of {max_chars}")


def _cstring_to_words(value: str, size: int, max_size: int, path: str) -> list[int]:
    """``value`` as signed chars plus a terminating NUL, padded with NULs to ``size``."""
    raw = value.encode("utf-8", "surrogateescape")
    if b"\0" in raw:
        raise RPCError(f"{path}: a C string cannot contain NUL")
    if len(raw) + 1 > max_size:
        raise RPCError(f"{path}: {len(raw)} bytes exceed the maximum of {max_size - 1}")
    words = [c - 256 if c > 127 else c for c in raw]
    words.append(0)
    if size > len(words):
        words.extend([0] * (size - len(words)))
    return words


def _words_to_cstring(words: Sequence[int], path: str) -> str:
    out = bytearray()
    for w in words:
        if not -128 <= w <= 255:
            raise RPCError(f"{path}: {w} is not a char")
        if w == 0:
            break
        out.append(w & 0xFF)
    return out.decode("utf-8", "surrogateescape")


# --- composites -----------------------------------------------------------------------------


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


class FixedArray(XDRType):
    """Fixed-length array (RFC 4506 4.12): a list of exactly ``size`` elements."""

    def __init__(self, element: XDRType, size: int, name: str | None = None) -> None:
        self.element = element
        self.size = size
        self.name = name or f"{element.name}[{size}]"
        if element.fixed_size is not None:
            self.fixed_size = element.fixed_size * size
        self.min_size = element.min_size * size

    def check(self, value: Any, path: str) -> None:
        if not _is_sequence(value):
            raise RPCError(f"{path}: expected a list, got {type(value).__name__}")
        if len(value) != self.size:
            raise RPCError(f"{path}: expected exactly {self.size} elements, got {len(value)}")
        for i, item in enumerate(value):
            self.element.check(item, f"{path}[{i}]")

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        _emit_elements_encode(g, self.element, expr, path, fixed=self.size)

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        _emit_elements_decode(g, self.element, target, str(self.size), path)


class VarArray(XDRType):
    """Variable-length array (RFC 4506 4.13): a list of at most ``max_size`` elements."""

    def __init__(self, element: XDRType, max_size: int = UNLIMITED,
                 name: str | None = None) -> None:
        if isinstance(element, Void):
            raise ValueError("an array of void is not XDR")
        self.element = element
        self.max_size = max_size
        self.name = name or f"{element.name}<{max_size}>"

    def check(self, value: Any, path: str) -> None:
        if not _is_sequence(value):
            raise RPCError(f"{path}: expected a list, got {type(value).__name__}")
        if len(value) > self.max_size:
            raise RPCError(
                f"{path}: {len(value)} elements exceed the maximum of {self.max_size}")
        for i, item in enumerate(value):
            self.element.check(item, f"{path}[{i}]")

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        seq = g.tmp("s")
        g.line(f"{seq} = {expr}")
        with g.block(f"if _len({seq}) > {self.max_size}:"):
            g.fail(f"{path!r} + ': ' + _str(_len({seq})) + ' elements exceed the maximum of "
                   f"{self.max_size}'")
        g.line(f"a(_pu32(_len({seq})))")
        _emit_elements_encode(g, self.element, seq, path, fixed=None)

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        n = g.tmp("n")
        _emit_length(g, n, self.max_size, self.element.min_size, path, "elements")
        _emit_elements_decode(g, self.element, target, n, path)


def _emit_elements_encode(g: _Gen, element: XDRType, seq: str, path: str,
                          fixed: int | None) -> None:
    if fixed is not None:
        with g.block(f"if _len({seq}) != {fixed}:"):
            g.fail(f"{path!r} + ': expected exactly {fixed} elements'")
    if isinstance(element, _Scalar) and not element.narrow:
        # Whole array in one pack call.
        g.line(f"a(_pack('>%d{element.code}' % _len({seq}), *{seq}))")
        return
    item = g.tmp("x")
    with g.block(f"for {item} in {seq}:"):
        element._emit_encode(g, item, path + "[]")


def _emit_elements_decode(g: _Gen, element: XDRType, target: str, count: str,
                          path: str) -> None:
    if isinstance(element, _Scalar):
        size = element.fixed_size or 4
        g.line(f"{target} = _list(_unpack_from('>%d{element.code}' % {count}, buf, off))")
        g.line(f"off += {size} * {count}")
        if element.narrow:
            item = g.tmp("x")
            idx = g.tmp("i")
            with g.block(f"for {idx}, {item} in enumerate({target}):"):
                element._dec_fix(g, item, path + "[]")
                if isinstance(element, Bool):
                    g.line(f"{target}[{idx}] = {item}")
        return
    item = g.tmp("x")
    out = g.tmp("l")
    g.line(f"{out} = []")
    with g.block(f"for _ in _range({count}):"):
        element._emit_decode(g, item, path + "[]")
        g.line(f"{out}.append({item})")
    g.line(f"{target} = {out}")


class Struct(XDRType):
    """Structure (RFC 4506 4.14): a dict with one key per declared field, in order."""

    def __init__(self, name: str, fields: Sequence[tuple[str, XDRType]]) -> None:
        self.name = name
        self.fields: tuple[tuple[str, XDRType], ...] = tuple(fields)
        seen: set[str] = set()
        for field, _ in self.fields:
            if field in seen:
                raise ValueError(f"struct {name}: duplicate field {field!r}")
            seen.add(field)
        sizes = [t.fixed_size for _, t in self.fields]
        self.fixed_size = None if None in sizes else sum(s or 0 for s in sizes)
        self.min_size = sum(t.min_size for _, t in self.fields)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise RPCError(f"{path}: expected a dict for struct {self.name}, "
                           f"got {type(value).__name__}")
        for field, t in self.fields:
            if field not in value:
                raise RPCError(f"{path}: missing field {field!r} of struct {self.name}")
            t.check(value[field], f"{path}.{field}")

    def _groups(self) -> list[list[tuple[str, XDRType]]]:
        """Fields split into runs of fixed-size members and single other fields."""
        groups: list[list[tuple[str, XDRType]]] = []
        run: list[tuple[str, XDRType]] = []
        for field, t in self.fields:
            if isinstance(t, (_Scalar, FixedOpaque)):
                run.append((field, t))
                continue
            if run:
                groups.append(run)
                run = []
            groups.append([(field, t)])
        if run:
            groups.append(run)
        return groups

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        if not self.fields:
            return
        src = g.tmp("v")
        g.line(f"{src} = {expr}")
        for group in self._groups():
            first = group[0][1]
            if isinstance(first, (_Scalar, FixedOpaque)):
                members = [(f"{src}[{f!r}]", t, f"{path}.{f}") for f, t in group]
                _emit_run_encode(g, members)  # type: ignore[arg-type]
            else:
                f, t = group[0]
                t._emit_encode(g, f"{src}[{f!r}]", f"{path}.{f}")

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        names: list[tuple[str, str]] = []
        for group in self._groups():
            first = group[0][1]
            if isinstance(first, (_Scalar, FixedOpaque)):
                members = [(g.tmp("f"), t, f"{path}.{f}") for f, t in group]
                _emit_run_decode(g, members)  # type: ignore[arg-type]
                names.extend((f, var) for (f, _), (var, _, _) in zip(group, members))
            else:
                f, t = group[0]
                var = g.tmp("f")
                t._emit_decode(g, var, f"{path}.{f}")
                names.append((f, var))
        g.line(f"{target} = {{{', '.join(f'{f!r}: {var}' for f, var in names)}}}")


class Union(XDRType):
    """Discriminated union (RFC 4506 4.15): the tuple ``(discriminant, value)``.

    ``arms`` maps each discriminant value to the arm's type (``VOID`` for an
    empty arm, whose value is None); ``default`` takes every other value of
    the discriminant, and without it they are refused.
    """

    def __init__(self, name: str, discriminant: XDRType, arms: Mapping[int, XDRType],
                 default: XDRType | None = None) -> None:
        if not isinstance(discriminant, (Int, UInt, Enum, Bool)):
            raise ValueError("a union discriminant is an int, unsigned int, enum or bool")
        self.name = name
        self.discriminant = discriminant
        self.arms = {int(k): v for k, v in arms.items()}
        self.default = default
        for value in self.arms:
            discriminant.check(value, f"{name} arm")
        sizes = {t.fixed_size for t in self.arms.values()}
        if default is not None:
            sizes.add(default.fixed_size)
        only = sizes.pop() if len(sizes) == 1 else None
        self.fixed_size = None if only is None else 4 + only
        self.min_size = 4 + min([t.min_size for t in self.arms.values()]
                                + ([default.min_size] if default else []))

    def _arm(self, disc: Any) -> XDRType | None:
        return self.arms.get(disc, self.default)

    def check(self, value: Any, path: str) -> None:
        if not _is_sequence(value) or len(value) != 2:
            raise RPCError(f"{path}: expected a (discriminant, value) pair for union {self.name}")
        disc, arm_value = value
        self.discriminant.check(disc, f"{path}.discriminant")
        arm = self._arm(disc)
        if arm is None:
            raise RPCError(f"{path}: {disc!r} is not a declared arm of union {self.name}")
        arm.check(arm_value, f"{path}[{disc}]")

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        d, x = g.tmp("d"), g.tmp("x")
        g.line(f"{d}, {x} = {expr}")
        keyword = "if"
        for disc, arm in self.arms.items():
            with g.block(f"{keyword} {d} == {disc!r}:"):
                g.line(f"a(_pu32({disc!r} & 0xFFFFFFFF))")
                arm._emit_encode(g, x, f"{path}[{disc}]")
                g.line("pass")
            keyword = "elif"
        with g.block("else:" if self.arms else "if True:"):
            if self.default is None:
                g.fail(f"{path!r} + ': ' + repr({d}) + ' is not a declared arm of union "
                       f"{self.name}'")
            else:
                self.discriminant._emit_encode(g, d, f"{path}.discriminant")
                self.default._emit_encode(g, x, f"{path}[default]")
                g.line("pass")

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        d, x = g.tmp("d"), g.tmp("x")
        self.discriminant._emit_decode(g, d, f"{path}.discriminant")
        keyword = "if"
        for disc, arm in self.arms.items():
            with g.block(f"{keyword} {d} == {disc!r}:"):
                arm._emit_decode(g, x, f"{path}[{disc}]")
            keyword = "elif"
        with g.block("else:" if self.arms else "if True:"):
            if self.default is None:
                g.fail(f"{path!r} + ': ' + _str({d}) + ' is not a declared arm of union "
                       f"{self.name}'")
            else:
                self.default._emit_decode(g, x, f"{path}[default]")
        g.line(f"{target} = ({d}, {x})")


class Optional(XDRType):
    """Optional data (RFC 4506 4.19, a "pointer"): None or a value of ``element``."""

    def __init__(self, element: XDRType, name: str | None = None) -> None:
        self.element = element
        self.name = name or f"*{element.name}"

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            self.element.check(value, path)

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        x = g.tmp("x")
        g.line(f"{x} = {expr}")
        with g.block(f"if {x} is None:"):
            g.line("a(b'\\0\\0\\0\\0')")
        with g.block("else:"):
            g.line("a(b'\\0\\0\\0\\1')")
            self.element._emit_encode(g, x, path)

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        flag = g.tmp("p")
        g.line(f"{flag}, = _uu32(buf, off)")
        g.line("off += 4")
        with g.block(f"if {flag} == 0:"):
            g.line(f"{target} = None")
        with g.block(f"elif {flag} == 1:"):
            self.element._emit_decode(g, target, path)
        with g.block("else:"):
            g.fail(f"{path!r} + ': optional-data flag is ' + _str({flag}) + ', not 0 or 1'")


class Void(XDRType):
    """Void (RFC 4506 4.16): no bytes; the value is None."""

    fixed_size = 0
    min_size = 0

    def __init__(self) -> None:
        self.name = "void"

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            raise RPCError(f"{path}: void takes no value, got {type(value).__name__}")

    def _emit_encode(self, g: _Gen, expr: str, path: str) -> None:
        with g.block(f"if {expr} is not None:"):
            g.fail(f"{path!r} + ': void takes no value'")

    def _emit_decode(self, g: _Gen, target: str, path: str) -> None:
        g.line(f"{target} = None")


#: The one Void instance.
VOID = Void()
