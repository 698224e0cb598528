"""virtkit: manage virtual machines and virtual networks on one Linux host.

This package re-exports a curated API; the Rust core lives in the private
module ``virtkit._core``.
"""

from __future__ import annotations

from virtkit._core import __version__ as _core_version
from virtkit.errors import (
    ErrorCode,
    ErrorDomain,
    ErrorLevel,
    InvalidArgumentError,
    InvalidUUIDError,
    SExprError,
    SExprSyntaxError,
    SExprValueError,
    VirtError,
)
from virtkit.uuid import format_uuid, generate_uuid, normalize_uuid, parse_uuid

__version__ = _core_version

__all__ = [
    "__version__",
    "ErrorCode",
    "ErrorDomain",
    "ErrorLevel",
    "VirtError",
    "InvalidArgumentError",
    "InvalidUUIDError",
    "SExprError",
    "SExprSyntaxError",
    "SExprValueError",
    "format_uuid",
    "generate_uuid",
    "normalize_uuid",
    "parse_uuid",
]
