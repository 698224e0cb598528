"""virtkit: manage virtual machines and virtual networks on one Linux host.

This package re-exports a curated API; the Rust core lives in the private
module ``virtkit._core``.
"""

from __future__ import annotations

from virtkit._core import __version__ as _core_version
from virtkit.connection import LIB_VERSION, Connection, NodeInfo, open, open_read_only
from virtkit.domain import Domain, DomainInfo, DomainState, VcpuInfo, VcpuState
from virtkit.errors import (
    ConfigSyntaxError,
    ConnectionFailedError,
    DomainExistsError,
    ErrorCode,
    ErrorDomain,
    ErrorLevel,
    InvalidArgumentError,
    InvalidConnectionError,
    InvalidURIError,
    InvalidUUIDError,
    NetworkExistsError,
    NoDomainError,
    NoNetworkError,
    NoSupportError,
    OperationDeniedError,
    OperationFailedError,
    OperationInvalidError,
    RPCError,
    SaveFileError,
    SExprError,
    SExprSyntaxError,
    SExprValueError,
    VirtError,
    VirtSystemError,
    XMLError,
    XMLSchemaError,
    get_last_error,
    register_error_handler,
    reset_last_error,
)
from virtkit.network import Network
from virtkit.uuid import format_uuid, generate_uuid, normalize_uuid, parse_uuid

__version__ = _core_version

__all__ = [
    "__version__",
    "LIB_VERSION",
    # connections and objects
    "open",
    "open_read_only",
    "Connection",
    "NodeInfo",
    "Domain",
    "DomainInfo",
    "DomainState",
    "VcpuInfo",
    "VcpuState",
    "Network",
    # errors
    "ErrorCode",
    "ErrorDomain",
    "ErrorLevel",
    "VirtError",
    "InvalidArgumentError",
    "InvalidUUIDError",
    "InvalidURIError",
    "ConnectionFailedError",
    "InvalidConnectionError",
    "NoSupportError",
    "OperationDeniedError",
    "OperationInvalidError",
    "OperationFailedError",
    "NoDomainError",
    "NoNetworkError",
    "DomainExistsError",
    "NetworkExistsError",
    "XMLError",
    "XMLSchemaError",
    "ConfigSyntaxError",
    "SaveFileError",
    "VirtSystemError",
    "RPCError",
    "SExprError",
    "SExprSyntaxError",
    "SExprValueError",
    "get_last_error",
    "reset_last_error",
    "register_error_handler",
    # UUIDs
    "format_uuid",
    "generate_uuid",
    "normalize_uuid",
    "parse_uuid",
]
