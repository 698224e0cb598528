"""UUID parsing and formatting (python/virtkit/uuid.py, rust/src/uuid.rs)."""

from __future__ import annotations

import uuid as std_uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

import virtkit
from virtkit.errors import ErrorCode, InvalidArgumentError, InvalidUUIDError, VirtError
from virtkit.uuid import format_uuid, generate_uuid, generate_uuid_bytes, normalize_uuid, parse_uuid

raw_uuids = st.binary(min_size=16, max_size=16)


def spellings(raw: bytes) -> list[str]:
    """Every spelling libvirt accepted for the same 16 bytes."""
    pairs = [f"{b:02x}" for b in raw]
    canonical = str(std_uuid.UUID(bytes=raw))
    return [
        canonical,
        canonical.upper(),
        "".join(pairs),
        "".join(pairs).upper(),
        "-".join(pairs),
        " ".join(pairs),
        f"  {canonical}\n",
        "".join(p + ("-" if i % 3 == 0 else "") for i, p in enumerate(pairs)).rstrip("-"),
    ]


@given(raw_uuids)
def test_every_spelling_parses_to_the_same_bytes(raw: bytes) -> None:
    for text in spellings(raw):
        assert parse_uuid(text) == raw, text
        assert normalize_uuid(text) == str(std_uuid.UUID(bytes=raw))


@given(raw_uuids)
def test_format_is_canonical_and_round_trips(raw: bytes) -> None:
    text = format_uuid(raw)
    assert text == str(std_uuid.UUID(bytes=raw))
    assert text == text.lower() and len(text) == 36
    assert parse_uuid(text) == raw


@given(raw_uuids, st.data())
def test_near_misses_are_rejected(raw: bytes, data: st.DataObject) -> None:
    canonical = format_uuid(raw)
    digits = [i for i, c in enumerate(canonical) if c != "-"]
    kind = data.draw(st.sampled_from(["drop", "extra", "bad-digit", "split-pair", "braces"]))
    if kind == "drop":
        i = data.draw(st.sampled_from(digits))
        text = canonical[:i] + canonical[i + 1:]
    elif kind == "extra":
        text = canonical + data.draw(st.sampled_from("0af-x"))
        if text.endswith("-"):
            text += "0"  # a dash then a 33rd digit
    elif kind == "bad-digit":
        i = data.draw(st.sampled_from(digits))
        text = canonical[:i] + data.draw(st.sampled_from("gGzZ_.:{")) + canonical[i + 1:]
    elif kind == "split-pair":
        # A separator inside a byte pair (between its two digits).
        pairs = [f"{b:02x}" for b in raw]
        k = data.draw(st.integers(0, 15))
        pairs[k] = pairs[k][0] + "-" + pairs[k][1]
        text = "".join(pairs)
    else:
        text = "{" + canonical + "}"
    with pytest.raises(InvalidUUIDError) as info:
        parse_uuid(text)
    err = info.value
    assert err.code == ErrorCode.INVALID_ARG
    assert err.message.startswith("invalid UUID: ")
    assert isinstance(err, VirtError) and isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "too short"),
        ("4dea22b3-1d52-d8f3-2516-782e98ab3fa", "odd number of hex digits"),
        ("4dea22b3-1d52-d8f3-2516-782e98ab3fa0ff", "after 32 hex digits"),
        ("4dea22b3-1d52-d8f3-2516-782e98ab3fx0", "offset 34, found 'x'"),
        ("-4dea22b31d52d8f32516782e98ab3fa0", "offset 0"),
    ],
)
def test_rejection_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidUUIDError, match=reason):
        parse_uuid(text)


def test_raw_form_must_be_16_bytes() -> None:
    for bad in (b"", b"\x00" * 15, b"\x00" * 17):
        with pytest.raises(InvalidUUIDError, match="exactly 16 bytes"):
            format_uuid(bad)


def test_non_str_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_uuid(b"4dea22b31d52d8f32516782e98ab3fa0")  # type: ignore[arg-type]


def test_generated_uuids_are_random_version_4() -> None:
    seen = {generate_uuid_bytes() for _ in range(1000)}
    assert len(seen) == 1000
    for raw in seen:
        u = std_uuid.UUID(bytes=raw)
        assert u.version == 4 and u.variant == std_uuid.RFC_4122
    text = generate_uuid()
    assert std_uuid.UUID(text).version == 4 and text == text.lower()


def test_public_reexports() -> None:
    assert virtkit.parse_uuid is parse_uuid
    assert issubclass(InvalidUUIDError, InvalidArgumentError)
