"""virtkit's errors: one exception tree, libvirt's numeric codes.

Every error virtkit raises is a :class:`VirtError` carrying an
:class:`ErrorCode` (what went wrong), an :class:`ErrorDomain` (which part of
the stack noticed it), an :class:`ErrorLevel`, a message and the extra fields
libvirt's ``virError`` has (``str1``..``str3``, ``int1``, ``int2``). The
numbers of both enums equal libvirt's, so scripts can compare them with the
values they know; both enums are append-only.

The tree (code each class sets by default)::

    VirtError                                       INTERNAL_ERROR
    +-- InvalidArgumentError (also ValueError)      INVALID_ARG
    |   +-- InvalidUUIDError                        INVALID_ARG
    |   +-- InvalidURIError                         INVALID_ARG: malformed URI
    +-- ConnectionFailedError                       NO_CONNECT: no driver / cannot open
    +-- InvalidConnectionError                      INVALID_CONN: used after close
    +-- NoSupportError                              NO_SUPPORT: the driver lacks the operation
    +-- OperationDeniedError (also PermissionError) OPERATION_DENIED: read-only connection
    +-- OperationInvalidError                       OPERATION_INVALID: wrong object state
    +-- OperationFailedError                        OPERATION_FAILED
    +-- NoDomainError (also LookupError)            NO_DOMAIN
    +-- NoNetworkError (also LookupError)           NO_NETWORK
    +-- DomainExistsError                           DOM_EXIST
    +-- NetworkExistsError                          NETWORK_EXIST
    +-- XMLError (also ValueError)                  XML_ERROR: malformed or invalid XML (.line, .element)
    |   +-- XMLSchemaError                          XML_INVALID_SCHEMA: fails the Relax-NG schema
    +-- ConfigSyntaxError (also ValueError)         CONF_SYNTAX: XM config files
    +-- SaveFileError                               READ_FAILED: a save file that cannot be restored
    +-- VirtSystemError (also OSError)              SYSTEM_ERROR: a system call failed (.errno)
    |   +-- XenCallError                            XEN_CALL, from XEN: a hypercall Xen refused (.errno)
    +-- RPCError                                    RPC: a protocol failure talking to a daemon
    +-- SExprError                                  SEXPR_SERIAL, from SEXPR
        +-- SExprSyntaxError (also ValueError)      malformed text: .offset, .expected
        +-- SExprValueError (also ValueError)       a value of the wrong type: .path

The Rust core (``virtkit._core``) raises these classes too: Python owns them,
the core maps its one error enum onto them in a single place.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

__all__ = [
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
    "XenCallError",
    "RPCError",
    "SExprError",
    "SExprSyntaxError",
    "SExprValueError",
]


class ErrorLevel(IntEnum):
    """How serious an error is (libvirt's ``virErrorLevel``)."""

    NONE = 0
    WARNING = 1
    ERROR = 2


class ErrorDomain(IntEnum):
    """Where an error comes from: numbers equal libvirt's ``virErrorDomain``. Append-only."""

    NONE = 0
    XEN = 1
    XEND = 2
    XENSTORE = 3
    SEXPR = 4
    XML = 5
    DOM = 6
    RPC = 7
    PROXY = 8
    CONF = 9
    QEMU = 10
    NET = 11
    TEST = 12
    REMOTE = 13
    OPENVZ = 14
    XENXM = 15
    STATS_LINUX = 16
    LXC = 17
    STORAGE = 18
    NETWORK = 19
    DOMAIN = 20
    UML = 21
    NODEDEV = 22
    XEN_INOTIFY = 23
    SECURITY = 24
    VBOX = 25
    INTERFACE = 26
    ONE = 27
    ESX = 28
    PHYP = 29
    SECRET = 30
    CPU = 31
    XENAPI = 32
    NWFILTER = 33
    HOOK = 34
    DOMAIN_SNAPSHOT = 35
    AUDIT = 36
    SYSINFO = 37
    STREAMS = 38
    VMWARE = 39
    EVENT = 40
    LIBXL = 41
    LOCKING = 42
    HYPERV = 43
    CAPABILITIES = 44
    URI = 45
    AUTH = 46
    DBUS = 47
    PARALLELS = 48
    DEVICE = 49
    SSH = 50
    LOCKSPACE = 51
    INITCTL = 52
    IDENTITY = 53
    CGROUP = 54
    ACCESS = 55
    SYSTEMD = 56
    BHYVE = 57
    CRYPTO = 58
    FIREWALL = 59
    POLKIT = 60
    THREAD = 61
    ADMIN = 62
    LOGGING = 63
    XENXL = 64
    PERF = 65
    LIBSSH = 66
    RESCTRL = 67
    FIREWALLD = 68
    DOMAIN_CHECKPOINT = 69
    TPM = 70
    BPF = 71
    CH = 72


class ErrorCode(IntEnum):
    """What went wrong: numbers equal libvirt's ``virErrorNumber``. Append-only."""

    OK = 0
    INTERNAL_ERROR = 1
    NO_MEMORY = 2
    NO_SUPPORT = 3
    UNKNOWN_HOST = 4
    NO_CONNECT = 5
    INVALID_CONN = 6
    INVALID_DOMAIN = 7
    INVALID_ARG = 8
    OPERATION_FAILED = 9
    GET_FAILED = 10
    POST_FAILED = 11
    HTTP_ERROR = 12
    SEXPR_SERIAL = 13
    NO_XEN = 14
    XEN_CALL = 15
    OS_TYPE = 16
    NO_KERNEL = 17
    NO_ROOT = 18
    NO_SOURCE = 19
    NO_TARGET = 20
    NO_NAME = 21
    NO_OS = 22
    NO_DEVICE = 23
    NO_XENSTORE = 24
    DRIVER_FULL = 25
    CALL_FAILED = 26
    XML_ERROR = 27
    DOM_EXIST = 28
    OPERATION_DENIED = 29
    OPEN_FAILED = 30
    READ_FAILED = 31
    PARSE_FAILED = 32
    CONF_SYNTAX = 33
    WRITE_FAILED = 34
    XML_DETAIL = 35
    INVALID_NETWORK = 36
    NETWORK_EXIST = 37
    SYSTEM_ERROR = 38
    RPC = 39
    GNUTLS_ERROR = 40
    WAR_NO_NETWORK = 41
    NO_DOMAIN = 42
    NO_NETWORK = 43
    INVALID_MAC = 44
    AUTH_FAILED = 45
    INVALID_STORAGE_POOL = 46
    INVALID_STORAGE_VOL = 47
    WAR_NO_STORAGE = 48
    NO_STORAGE_POOL = 49
    NO_STORAGE_VOL = 50
    WAR_NO_NODE = 51
    INVALID_NODE_DEVICE = 52
    NO_NODE_DEVICE = 53
    NO_SECURITY_MODEL = 54
    OPERATION_INVALID = 55
    WAR_NO_INTERFACE = 56
    NO_INTERFACE = 57
    INVALID_INTERFACE = 58
    MULTIPLE_INTERFACES = 59
    WAR_NO_NWFILTER = 60
    INVALID_NWFILTER = 61
    NO_NWFILTER = 62
    BUILD_FIREWALL = 63
    WAR_NO_SECRET = 64
    INVALID_SECRET = 65
    NO_SECRET = 66
    CONFIG_UNSUPPORTED = 67
    OPERATION_TIMEOUT = 68
    MIGRATE_PERSIST_FAILED = 69
    HOOK_SCRIPT_FAILED = 70
    INVALID_DOMAIN_SNAPSHOT = 71
    NO_DOMAIN_SNAPSHOT = 72
    INVALID_STREAM = 73
    ARGUMENT_UNSUPPORTED = 74
    STORAGE_PROBE_FAILED = 75
    STORAGE_POOL_BUILT = 76
    SNAPSHOT_REVERT_RISKY = 77
    OPERATION_ABORTED = 78
    AUTH_CANCELLED = 79
    NO_DOMAIN_METADATA = 80
    MIGRATE_UNSAFE = 81
    OVERFLOW = 82
    BLOCK_COPY_ACTIVE = 83
    OPERATION_UNSUPPORTED = 84
    SSH = 85
    AGENT_UNRESPONSIVE = 86
    RESOURCE_BUSY = 87
    ACCESS_DENIED = 88
    DBUS_SERVICE = 89
    STORAGE_VOL_EXIST = 90
    CPU_INCOMPATIBLE = 91
    XML_INVALID_SCHEMA = 92
    MIGRATE_FINISH_OK = 93
    AUTH_UNAVAILABLE = 94
    NO_SERVER = 95
    NO_CLIENT = 96
    AGENT_UNSYNCED = 97
    LIBSSH = 98
    DEVICE_MISSING = 99
    INVALID_NWFILTER_BINDING = 100
    NO_NWFILTER_BINDING = 101
    INVALID_DOMAIN_CHECKPOINT = 102
    NO_DOMAIN_CHECKPOINT = 103
    NO_DOMAIN_BACKUP = 104
    INVALID_NETWORK_PORT = 105
    NETWORK_PORT_EXIST = 106
    NO_NETWORK_PORT = 107
    NO_HOSTNAME = 108
    CHECKPOINT_INCONSISTENT = 109
    MULTIPLE_DOMAINS = 110


class VirtError(Exception):
    """The root of every error virtkit raises.

    Attributes mirror libvirt's ``virError``: ``code``, ``domain``,
    ``message``, ``level``, ``str1``, ``str2``, ``str3``, ``int1``, ``int2``.
    Subclasses fix a default code and domain; both can be overridden.
    """

    default_code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    default_domain: ClassVar[ErrorDomain] = ErrorDomain.NONE

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | int | None = None,
        domain: ErrorDomain | int | None = None,
        level: ErrorLevel = ErrorLevel.ERROR,
        str1: str | None = None,
        str2: str | None = None,
        str3: str | None = None,
        int1: int = -1,
        int2: int = -1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = _as_enum(ErrorCode, self.default_code if code is None else code)
        self.domain = _as_enum(ErrorDomain, self.default_domain if domain is None else domain)
        self.level = level
        self.str1 = str1
        self.str2 = str2
        self.str3 = str3
        self.int1 = int1
        self.int2 = int2

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, code={getattr(self.code, 'name', self.code)}, "
            f"domain={getattr(self.domain, 'name', self.domain)})"
        )

    # libvirt-python spellings, for scripts ported from it.
    def get_error_code(self) -> int:
        """The numeric error code (libvirt-python compatible)."""
        return int(self.code)

    def get_error_domain(self) -> int:
        """The numeric error domain (libvirt-python compatible)."""
        return int(self.domain)

    def get_error_message(self) -> str:
        """The message (libvirt-python compatible)."""
        return self.message

    def get_error_level(self) -> int:
        """The numeric level (libvirt-python compatible)."""
        return int(self.level)


def _as_enum(enum: type[IntEnum], value: int) -> IntEnum | int:
    try:
        return enum(value)
    except ValueError:
        # A number from a newer peer (e.g. a remote libvirt daemon): keep it.
        return value


class InvalidArgumentError(VirtError, ValueError):
    """An argument the caller passed is not acceptable."""

    default_code = ErrorCode.INVALID_ARG


class InvalidUUIDError(InvalidArgumentError):
    """A string or byte string that is not a UUID; the message says why."""


class InvalidURIError(InvalidArgumentError):
    """A connection URI that does not follow libvirt's grammar."""


class ConnectionFailedError(VirtError):
    """No driver handles the URI, or the driver could not open it."""

    default_code = ErrorCode.NO_CONNECT


class InvalidConnectionError(VirtError):
    """A connection (or an object of it) used after it was closed."""

    default_code = ErrorCode.INVALID_CONN


class NoSupportError(VirtError):
    """The driver does not implement the operation; the message names both."""

    default_code = ErrorCode.NO_SUPPORT


class OperationDeniedError(VirtError, PermissionError):
    """A mutating operation on a read-only connection."""

    default_code = ErrorCode.OPERATION_DENIED


class OperationInvalidError(VirtError):
    """The object is in the wrong state for the operation; the message names the state."""

    default_code = ErrorCode.OPERATION_INVALID


class OperationFailedError(VirtError):
    """The operation was attempted and failed."""

    default_code = ErrorCode.OPERATION_FAILED


class NoDomainError(VirtError, LookupError):
    """No domain with that name, id or UUID."""

    default_code = ErrorCode.NO_DOMAIN


class NoNetworkError(VirtError, LookupError):
    """No network with that name or UUID."""

    default_code = ErrorCode.NO_NETWORK


class DomainExistsError(VirtError):
    """A domain with that name or UUID already exists."""

    default_code = ErrorCode.DOM_EXIST


class NetworkExistsError(VirtError):
    """A network with that name or UUID already exists."""

    default_code = ErrorCode.NETWORK_EXIST


class XMLError(VirtError, ValueError):
    """Malformed or invalid XML. ``line`` and ``element`` say where, when known."""

    default_code = ErrorCode.XML_ERROR

    def __init__(self, message: str, *, line: int | None = None, element: str | None = None,
                 **kw: object) -> None:
        super().__init__(message, int1=-1 if line is None else line, str1=element,
                         **kw)  # type: ignore[arg-type]
        self.line = line
        self.element = element


class XMLSchemaError(XMLError):
    """A well-formed document that the Relax-NG schema refuses."""

    default_code = ErrorCode.XML_INVALID_SCHEMA


class ConfigSyntaxError(VirtError, ValueError):
    """A malformed XM config file; ``line`` says where."""

    default_code = ErrorCode.CONF_SYNTAX
    default_domain = ErrorDomain.CONF

    def __init__(self, message: str, *, line: int | None = None, **kw: object) -> None:
        super().__init__(message, int1=-1 if line is None else line, **kw)  # type: ignore[arg-type]
        self.line = line


class SaveFileError(VirtError):
    """A save file that is truncated, foreign or unreadable."""

    default_code = ErrorCode.READ_FAILED


class VirtSystemError(VirtError, OSError):
    """A system call failed; ``errno`` is set."""

    default_code = ErrorCode.SYSTEM_ERROR

    def __init__(self, message: str, *, errno: int | None = None, **kw: object) -> None:
        super().__init__(message, int1=-1 if errno is None else errno, **kw)  # type: ignore[arg-type]
        self.errno = errno


class XenCallError(VirtSystemError):
    """A hypercall Xen refused (``errno`` is what it returned, ``str1`` names
    the call, e.g. ``domctl pausedomain``), or a hypervisor whose interface
    version virtkit does not know (errno EACCES)."""

    default_code = ErrorCode.XEN_CALL
    default_domain = ErrorDomain.XEN


class RPCError(VirtError):
    """A protocol failure talking to a daemon (not an error the daemon reported)."""

    default_code = ErrorCode.RPC
    default_domain = ErrorDomain.RPC


class SExprError(VirtError):
    """Problems with xend's S-expressions."""

    default_code = ErrorCode.SEXPR_SERIAL
    default_domain = ErrorDomain.SEXPR


class SExprSyntaxError(SExprError, ValueError):
    """Malformed S-expression text.

    ``offset`` is the byte offset where the problem was seen and ``expected``
    says what the parser wanted there.
    """

    def __init__(self, message: str, *, offset: int = -1, expected: str = "", **kw: object) -> None:
        super().__init__(message, int1=offset, str1=expected, **kw)  # type: ignore[arg-type]
        self.offset = offset
        self.expected = expected


class SExprValueError(SExprError, ValueError):
    """A value is present but not of the requested type; ``path`` says where."""

    def __init__(self, message: str, *, path: str = "", **kw: object) -> None:
        super().__init__(message, str1=path, **kw)  # type: ignore[arg-type]
        self.path = path


# --- last error and error handlers (libvirt's virGetLastError / virSetErrorFunc) ---------

import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402

#: ``handler(error)`` called for every error virtkit raises through its public API.
ErrorHandler = Callable[[VirtError], None]

_local = threading.local()
_global_handler: ErrorHandler | None = None


def get_last_error() -> VirtError | None:
    """The last error raised by the public API in this thread, or None."""
    return getattr(_local, "error", None)


def reset_last_error() -> None:
    """Forget this thread's last error."""
    _local.error = None


def register_error_handler(handler: ErrorHandler | None) -> None:
    """Call ``handler(error)`` for every error raised by the public API (None removes it).

    A per-connection handler (``Connection.register_error_handler``) takes
    precedence for errors on that connection. Exceptions raised by a handler
    are ignored, so a faulty handler cannot hide the original error.
    """
    global _global_handler
    _global_handler = handler


def report(error: VirtError, handler: ErrorHandler | None = None) -> None:
    """Record ``error`` as this thread's last error and call the handler."""
    _local.error = error
    chosen = handler if handler is not None else _global_handler
    if chosen is not None:
        try:
            chosen(error)
        except Exception:  # noqa: BLE001 - a handler must not mask the error
            pass
