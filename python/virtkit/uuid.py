"""UUIDs as libvirt spells them, parsed and formatted by the Rust core.

Accepted spellings (all mean the same 16 bytes): the canonical 36-character
form, 32 hex digits without dashes (as Xen reports them), and dashes or
spaces between byte pairs; surrounding blanks are ignored, case does not
matter. Anything else raises :class:`virtkit.errors.InvalidUUIDError` with
the reason. Output is always canonical: lower-case, dashed.
"""

from __future__ import annotations

from virtkit import _core

__all__ = ["parse_uuid", "format_uuid", "normalize_uuid", "generate_uuid", "generate_uuid_bytes"]

#: ``parse_uuid(text) -> bytes``: the 16 raw bytes of any accepted spelling.
parse_uuid = _core.uuid_parse
#: ``format_uuid(raw) -> str``: the canonical form of 16 raw bytes.
format_uuid = _core.uuid_format
#: ``normalize_uuid(text) -> str``: the canonical form of any accepted spelling.
normalize_uuid = _core.uuid_normalize
#: ``generate_uuid_bytes() -> bytes``: a random version-4 UUID from the OS's randomness.
generate_uuid_bytes = _core.uuid_generate


def generate_uuid() -> str:
    """A random version-4 UUID in canonical form, from the OS's randomness."""
    return _core.uuid_format(_core.uuid_generate())
