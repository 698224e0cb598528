"""virtkit: manage virtual machines and virtual networks on one Linux host.

This package re-exports a curated API; the Rust core lives in the private
module ``virtkit._core``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from virtkit._core import __version__

# Public names, imported on first use (PEP 562): ``import virtkit`` stays cheap,
# which keeps every ``virtkit`` command fast to start.

if TYPE_CHECKING:
    from virtkit.connection import (
        LIB_VERSION,
        Connection,
        NodeInfo,
        open,
        open_read_only,
    )
    from virtkit.domain import (
        Domain,
        DomainInfo,
        DomainState,
        DomainStats,
        VcpuInfo,
        VcpuState,
    )
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
    from virtkit.network import (
        Network,
    )
    from virtkit.uuid import (
        format_uuid,
        generate_uuid,
        normalize_uuid,
        parse_uuid,
    )

_LAZY: dict[str, str] = {
    "LIB_VERSION": "virtkit.connection",
    "Connection": "virtkit.connection",
    "NodeInfo": "virtkit.connection",
    "open": "virtkit.connection",
    "open_read_only": "virtkit.connection",
    "Domain": "virtkit.domain",
    "DomainInfo": "virtkit.domain",
    "DomainState": "virtkit.domain",
    "DomainStats": "virtkit.domain",
    "VcpuInfo": "virtkit.domain",
    "VcpuState": "virtkit.domain",
    "ConfigSyntaxError": "virtkit.errors",
    "ConnectionFailedError": "virtkit.errors",
    "DomainExistsError": "virtkit.errors",
    "ErrorCode": "virtkit.errors",
    "ErrorDomain": "virtkit.errors",
    "ErrorLevel": "virtkit.errors",
    "InvalidArgumentError": "virtkit.errors",
    "InvalidConnectionError": "virtkit.errors",
    "InvalidURIError": "virtkit.errors",
    "InvalidUUIDError": "virtkit.errors",
    "NetworkExistsError": "virtkit.errors",
    "NoDomainError": "virtkit.errors",
    "NoNetworkError": "virtkit.errors",
    "NoSupportError": "virtkit.errors",
    "OperationDeniedError": "virtkit.errors",
    "OperationFailedError": "virtkit.errors",
    "OperationInvalidError": "virtkit.errors",
    "RPCError": "virtkit.errors",
    "SaveFileError": "virtkit.errors",
    "SExprError": "virtkit.errors",
    "SExprSyntaxError": "virtkit.errors",
    "SExprValueError": "virtkit.errors",
    "VirtError": "virtkit.errors",
    "VirtSystemError": "virtkit.errors",
    "XMLError": "virtkit.errors",
    "XMLSchemaError": "virtkit.errors",
    "get_last_error": "virtkit.errors",
    "register_error_handler": "virtkit.errors",
    "reset_last_error": "virtkit.errors",
    "Network": "virtkit.network",
    "format_uuid": "virtkit.uuid",
    "generate_uuid": "virtkit.uuid",
    "normalize_uuid": "virtkit.uuid",
    "parse_uuid": "virtkit.uuid",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'virtkit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "DomainStats",
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
