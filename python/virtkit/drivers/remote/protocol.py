"""libvirt's remote protocol: constants, packet header, errors and the procedure table.

Written from the documented wire format (libvirt's "RPC infrastructure"
page, https://libvirt.org/kbase/internals/rpc.html) and the published
procedure numbers and structure layouts; the declarations below are ours.

A packet on the wire::

    +--------+----------------------------------------+-----------------+
    | length | header (24 bytes)                      | payload (XDR)   |
    | u32 BE | prog u32, vers u32, proc i32, type i32,| args, ret, error|
    |        | serial u32, status i32                 | or event msg    |
    +--------+----------------------------------------+-----------------+

``length`` counts itself. The payload of a ``CALL`` is the procedure's
argument struct; of a ``REPLY`` with status ``OK`` its return struct, with
status ``ERROR`` the :data:`REMOTE_ERROR` struct; of a ``MESSAGE`` (an event)
the event's struct. Values are the Python forms described in
:mod:`virtkit.drivers.remote.xdr` (structs are dicts, field names our
snake_case spelling of libvirt's).

The procedure table (:data:`PROCEDURES`, by number :data:`BY_NUMBER`, by
name :data:`BY_NAME`) is data: number, name, argument and return types,
whether a read-only connection may call it, and its kind (call, event,
stream). A daemon handler implements a procedure by defining a method of
the same name (see :mod:`virtkit.drivers.remote.server`).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

from virtkit.drivers.remote.xdr import (
    VOID,
    CharArray,
    Double,
    Enum,
    FixedOpaque,
    Hyper,
    Int,
    Optional,
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
    XDRType,
)
from virtkit.errors import (
    ConnectionFailedError,
    DomainExistsError,
    ErrorCode,
    ErrorDomain,
    ErrorLevel,
    InvalidArgumentError,
    InvalidConnectionError,
    NetworkExistsError,
    NoDomainError,
    NoNetworkError,
    NoSupportError,
    OperationDeniedError,
    OperationFailedError,
    OperationInvalidError,
    RPCError,
    VirtError,
)

# --- programs, message types, limits ------------------------------------------------------

#: The main program ("remote") and its only version.
REMOTE_PROGRAM = 0x20008086
REMOTE_PROTOCOL_VERSION = 1
#: The keepalive program: PING and PONG, both sent as MESSAGE packets.
KEEPALIVE_PROGRAM = 0x6B656570
KEEPALIVE_PROTOCOL_VERSION = 1
KEEPALIVE_PING = 1
KEEPALIVE_PONG = 2


class MessageType(IntEnum):
    """The header's ``type`` field."""

    CALL = 0  # client -> server: arguments of a call
    REPLY = 1  # server -> client: return value or error of a call
    MESSAGE = 2  # either way, asynchronous: events, keepalive
    STREAM = 3  # either way: stream data for the call with the same serial
    CALL_WITH_FDS = 4  # a CALL followed by passed file descriptors
    REPLY_WITH_FDS = 5  # a REPLY followed by passed file descriptors


class MessageStatus(IntEnum):
    """The header's ``status`` field."""

    OK = 0  # calls always; replies without error; a stream's end
    ERROR = 1  # a reply (or stream) carrying REMOTE_ERROR
    CONTINUE = 2  # stream data, more follows


#: Size of the length word and of the header.
LENGTH_SIZE = 4
HEADER_SIZE = 24
#: Largest header + payload (the length word excluded), as libvirt >= 5.x (32 MiB).
MESSAGE_MAX = 32 * 1024 * 1024
PAYLOAD_MAX = MESSAGE_MAX - HEADER_SIZE
#: Longest string in any structure (REMOTE_STRING_MAX).
STRING_MAX = 4 * 1024 * 1024

# Array limits of the structures below (libvirt's REMOTE_*_MAX values).
DOMAIN_LIST_MAX = 16384
NETWORK_LIST_MAX = 16384
CPUMAP_MAX = 2048
CPUMAPS_MAX = 8388608
VCPUINFO_MAX = 16384
AUTH_TYPE_LIST_MAX = 20
ALL_DOMAIN_STATS_MAX = 262144
SECURITY_LABEL_MAX = 4096 + 1
SECURITY_MODEL_MAX = 256 + 1
SECURITY_DOI_MAX = 256 + 1
DOMAIN_MESSAGES_MAX = 2048
NETWORK_DHCP_LEASES_MAX = 65536
DOMAIN_INTERFACE_MAX = 2048
DOMAIN_IP_ADDR_MAX = 2048


class AuthType(IntEnum):
    """Authentication schemes the server may ask for (``auth_list``)."""

    NONE = 0
    SASL = 1
    POLKIT = 2


class Feature(IntEnum):
    """``connect_supports_feature`` numbers (libvirt's ``virDrvFeature``) the protocol uses."""

    MIGRATION_V1 = 1
    REMOTE = 2
    MIGRATION_V2 = 3
    MIGRATION_P2P = 4
    MIGRATION_DIRECT = 5
    MIGRATION_V3 = 6
    MIGRATE_CHANGE_PROTECTION = 7
    FD_PASSING = 8
    TYPED_PARAM_STRING = 9
    PROGRAM_KEEPALIVE = 10
    XML_MIGRATABLE = 11
    MIGRATION_OFFLINE = 12
    MIGRATION_PARAMS = 13
    REMOTE_EVENT_CALLBACK = 14
    REMOTE_CLOSE_CALLBACK = 15
    NETWORK_UPDATE_HAS_CORRECT_ORDER = 16


class TypedParamType(IntEnum):
    """Discriminant of a typed parameter's value (``virTypedParameterType``)."""

    INT = 1
    UINT = 2
    LLONG = 3
    ULLONG = 4
    DOUBLE = 5
    BOOLEAN = 6
    STRING = 7


#: ``connect_open`` flag asking for a read-only connection (VIR_CONNECT_RO).
CONNECT_RO = 1

# --- header -------------------------------------------------------------------------------


class Header(NamedTuple):
    """The 24-byte packet header."""

    program: int
    version: int
    procedure: int
    type: int
    serial: int
    status: int


_HEADER = struct.Struct(">IIiiIi")
_PACKET = struct.Struct(">IIIiiIi")  # length word + header
_TYPES = frozenset(int(t) for t in MessageType)
_STATUSES = frozenset(int(s) for s in MessageStatus)


def decode_header(body: bytes) -> Header:
    """The header at the start of ``body`` (a packet without its length word).

    Raises RPCError when fewer than 24 bytes are present or the type or status
    is not one the protocol defines.
    """
    if len(body) < HEADER_SIZE:
        raise RPCError(f"packet of {len(body)} bytes is shorter than the {HEADER_SIZE}-byte header")
    header = Header._make(_HEADER.unpack_from(body))
    if header.type not in _TYPES:
        raise RPCError(f"unknown message type {header.type} in packet header")
    if header.status not in _STATUSES:
        raise RPCError(f"unknown message status {header.status} in packet header")
    return header


def encode_header(header: Header) -> bytes:
    """The 24 header bytes."""
    try:
        return _HEADER.pack(*header)
    except struct.error as exc:
        raise RPCError(f"cannot encode packet header {header}: {exc}") from None


def encode_packet(program: int, version: int, procedure: int, type: int, serial: int,
                  status: int, payload: bytes = b"") -> bytes:
    """A whole packet, length word included; RPCError when the payload is too large."""
    if len(payload) > PAYLOAD_MAX:
        raise RPCError(f"payload of {len(payload)} bytes exceeds the maximum of {PAYLOAD_MAX}")
    try:
        head = _PACKET.pack(LENGTH_SIZE + HEADER_SIZE + len(payload), program, version,
                            procedure, type, serial, status)
    except struct.error as exc:
        raise RPCError(f"cannot encode packet header: {exc}") from None
    return head + payload


# --- shared structures --------------------------------------------------------------------

INT = Int()
UINT = UInt()
HYPER = Hyper()
UHYPER = UHyper()
NONNULL_STRING = String(STRING_MAX, "nonnull_string")
STRING = Optional(NONNULL_STRING, "string")
UUID = FixedOpaque(16, "uuid")

#: A domain reference: ``{"name": str, "uuid": bytes(16), "id": int}`` (id -1 when inactive).
NONNULL_DOMAIN = Struct("nonnull_domain", [("name", NONNULL_STRING), ("uuid", UUID),
                                           ("id", INT)])
#: A network reference: ``{"name": str, "uuid": bytes(16)}``.
NONNULL_NETWORK = Struct("nonnull_network", [("name", NONNULL_STRING), ("uuid", UUID)])
DOMAIN = Optional(NONNULL_DOMAIN, "domain")
NETWORK = Optional(NONNULL_NETWORK, "network")

#: An error reply's payload; see :func:`error_to_wire` and :func:`error_from_wire`.
REMOTE_ERROR = Struct("error", [
    ("code", INT),
    ("domain", INT),
    ("message", STRING),
    ("level", INT),
    ("dom", DOMAIN),  # unused by libvirt, always None
    ("str1", STRING),
    ("str2", STRING),
    ("str3", STRING),
    ("int1", INT),
    ("int2", INT),
    ("net", NETWORK),  # unused by libvirt, always None
])

VCPU_INFO = Struct("vcpu_info", [("number", UINT), ("state", INT), ("cpu_time", UHYPER),
                                 ("cpu", INT)])

#: A typed parameter's value: ``(TypedParamType, value)``.
TYPED_PARAM_VALUE = Union("typed_param_value", INT, {
    TypedParamType.INT: INT,
    TypedParamType.UINT: UINT,
    TypedParamType.LLONG: HYPER,
    TypedParamType.ULLONG: UHYPER,
    TypedParamType.DOUBLE: Double(),
    TypedParamType.BOOLEAN: INT,
    TypedParamType.STRING: NONNULL_STRING,
})
TYPED_PARAM = Struct("typed_param", [("field", NONNULL_STRING), ("value", TYPED_PARAM_VALUE)])

DOMAIN_STATS_RECORD = Struct("domain_stats_record", [
    ("dom", NONNULL_DOMAIN),
    ("params", VarArray(TYPED_PARAM, ALL_DOMAIN_STATS_MAX)),
])

AUTH_TYPE = Enum("auth_type", AuthType)

#: One lease of ``network_get_dhcp_leases`` (``type``: 0 IPv4, 1 IPv6; ``expirytime``
#: in seconds since the epoch).
NETWORK_DHCP_LEASE = Struct("network_dhcp_lease", [
    ("iface", NONNULL_STRING),
    ("expirytime", HYPER),
    ("type", INT),
    ("mac", STRING),
    ("iaid", STRING),
    ("ipaddr", NONNULL_STRING),
    ("prefix", UINT),
    ("hostname", STRING),
    ("clientid", STRING),
])

#: An interface of ``domain_interface_addresses`` and its addresses.
DOMAIN_IP_ADDR = Struct("domain_ip_addr", [("type", INT), ("addr", NONNULL_STRING),
                                           ("prefix", UINT)])
DOMAIN_INTERFACE = Struct("domain_interface", [
    ("name", NONNULL_STRING),
    ("hwaddr", STRING),
    ("addrs", VarArray(DOMAIN_IP_ADDR, DOMAIN_IP_ADDR_MAX)),
])

# --- errors -------------------------------------------------------------------------------

_INT32 = range(-(2**31), 2**31)

#: Error codes that come back as a specific class; any other code is a plain VirtError.
ERROR_CLASSES: Mapping[int, type[VirtError]] = {
    ErrorCode.NO_DOMAIN: NoDomainError,
    ErrorCode.NO_NETWORK: NoNetworkError,
    ErrorCode.OPERATION_INVALID: OperationInvalidError,
    ErrorCode.OPERATION_DENIED: OperationDeniedError,
    ErrorCode.NO_SUPPORT: NoSupportError,
    ErrorCode.DOM_EXIST: DomainExistsError,
    ErrorCode.NETWORK_EXIST: NetworkExistsError,
    ErrorCode.INVALID_ARG: InvalidArgumentError,
    ErrorCode.OPERATION_FAILED: OperationFailedError,
    ErrorCode.NO_CONNECT: ConnectionFailedError,
    ErrorCode.INVALID_CONN: InvalidConnectionError,
}

_UNKNOWN_CAUSE = "an error occurred, but the cause is unknown"


def _wire_string(value: str | None) -> str | None:
    """``value`` made encodable: unencodable characters replaced, cut to STRING_MAX bytes."""
    if value is None:
        return None
    return value.encode("utf-8", "replace")[:STRING_MAX].decode("utf-8", "ignore")


def _wire_int(value: int) -> int:
    return int(value) if int(value) in _INT32 else -1


def error_to_wire(error: VirtError) -> dict[str, Any]:
    """``error`` as a :data:`REMOTE_ERROR` value; always encodable (long text is cut)."""
    return {
        "code": _wire_int(error.code),
        "domain": _wire_int(error.domain),
        "message": _wire_string(error.message),
        "level": _wire_int(error.level),
        "dom": None,
        "str1": _wire_string(error.str1),
        "str2": _wire_string(error.str2),
        "str3": _wire_string(error.str3),
        "int1": _wire_int(error.int1),
        "int2": _wire_int(error.int2),
        "net": None,
    }


def error_from_wire(wire: Mapping[str, Any]) -> VirtError:
    """The exception a :data:`REMOTE_ERROR` value stands for.

    The class comes from :data:`ERROR_CLASSES` (VirtError for other codes);
    code and domain numbers virtkit does not know are kept as plain ints.
    """
    code = int(wire["code"])
    cls = ERROR_CLASSES.get(code, VirtError)
    try:
        level = ErrorLevel(wire["level"])
    except ValueError:
        level = ErrorLevel.ERROR
    message = wire["message"]
    return cls(
        _UNKNOWN_CAUSE if message is None else message,
        code=code,
        domain=int(wire["domain"]),
        level=level,
        str1=wire["str1"],
        str2=wire["str2"],
        str3=wire["str3"],
        int1=int(wire["int1"]),
        int2=int(wire["int2"]),
    )


# --- procedures ---------------------------------------------------------------------------


class Kind(IntEnum):
    """What a procedure number is used for."""

    CALL = 0  # a call answered by one reply
    EVENT = 1  # an event the server sends as a MESSAGE; ``args`` is its struct
    STREAM = 2  # a call whose reply opens a data stream on the same serial


@dataclass(frozen=True, slots=True)
class Procedure:
    """One procedure of the remote program."""

    number: int
    #: Our name; the handler method a daemon defines to implement it.
    name: str
    #: Type of the call's payload (for events: of the message).
    args: XDRType
    #: Type of a successful reply's payload.
    ret: XDRType
    #: True when a read-only connection may call it.
    readonly: bool
    kind: Kind = Kind.CALL
    #: False for the few procedures allowed before ``connect_open``.
    needs_open: bool = True


Fields = Sequence[tuple[str, XDRType]]
_D: Fields = [("dom", NONNULL_DOMAIN)]
_N: Fields = [("net", NONNULL_NETWORK)]
_FLAGS: Fields = [("flags", UINT)]


def _struct(name: str, fields: Fields | None) -> XDRType:
    return VOID if not fields else Struct(name, fields)


def _p(number: int, name: str, args: Fields | None, ret: Fields | None, readonly: bool,
       kind: Kind = Kind.CALL) -> Procedure:
    """One row of the table: field lists become structs named after the procedure."""
    suffix = "_msg" if kind is Kind.EVENT else "_args"
    return Procedure(number, name, _struct(name + suffix, args), _struct(name + "_ret", ret),
                     readonly, kind, name not in _BEFORE_OPEN)


_BEFORE_OPEN = frozenset({"connect_open", "connect_close", "auth_list",
                          "connect_supports_feature"})

_LIFECYCLE_MSG = Struct("domain_event_lifecycle_msg", [("dom", NONNULL_DOMAIN),
                                                       ("event", INT), ("detail", INT)])
_REBOOT_MSG = Struct("domain_event_reboot_msg", [("dom", NONNULL_DOMAIN)])
_NAMES = VarArray(NONNULL_STRING, DOMAIN_LIST_MAX)
_NET_NAMES = VarArray(NONNULL_STRING, NETWORK_LIST_MAX)
_RO, _RW = True, False

#: Every procedure virtkit speaks, in number order. Rows:
#: (number, name, argument fields, return fields, read-only safe[, kind]).
PROCEDURES: tuple[Procedure, ...] = (
    # connection and node
    _p(1, "connect_open", [("name", STRING), ("flags", UINT)], None, _RO),
    _p(2, "connect_close", None, None, _RO),
    _p(3, "connect_get_type", None, [("type", NONNULL_STRING)], _RO),
    _p(4, "connect_get_version", None, [("hv_ver", UHYPER)], _RO),
    _p(5, "connect_get_max_vcpus", [("type", STRING)], [("max_vcpus", INT)], _RO),
    _p(6, "node_get_info", None, [("model", CharArray(32)), ("memory", UHYPER), ("cpus", INT),
                                ("mhz", INT), ("nodes", INT), ("sockets", INT),
                                ("cores", INT), ("threads", INT)], _RO),
    _p(7, "connect_get_capabilities", None, [("capabilities", NONNULL_STRING)], _RO),
    # domains
    _p(8, "domain_attach_device", [*_D, ("xml", NONNULL_STRING)], None, _RW),
    _p(9, "domain_create", _D, None, _RW),
    _p(10, "domain_create_xml", [("xml_desc", NONNULL_STRING), *_FLAGS], _D, _RW),
    _p(11, "domain_define_xml", [("xml", NONNULL_STRING)], _D, _RW),
    _p(12, "domain_destroy", _D, None, _RW),
    _p(13, "domain_detach_device", [*_D, ("xml", NONNULL_STRING)], None, _RW),
    _p(14, "domain_get_xml_desc", [*_D, *_FLAGS], [("xml", NONNULL_STRING)], _RO),
    _p(15, "domain_get_autostart", _D, [("autostart", INT)], _RO),
    _p(16, "domain_get_info", _D, [("state", UChar()), ("max_mem", UHYPER), ("memory", UHYPER),
                                 ("nr_virt_cpu", UShort()), ("cpu_time", UHYPER)], _RO),
    _p(17, "domain_get_max_memory", _D, [("memory", UHYPER)], _RO),
    _p(18, "domain_get_max_vcpus", _D, [("num", INT)], _RO),
    _p(19, "domain_get_os_type", _D, [("type", NONNULL_STRING)], _RO),
    _p(20, "domain_get_vcpus", [*_D, ("maxinfo", INT), ("maplen", INT)],
     [("info", VarArray(VCPU_INFO, VCPUINFO_MAX)), ("cpumaps", VarOpaque(CPUMAPS_MAX))], _RO),
    _p(21, "connect_list_defined_domains", [("maxnames", INT)], [("names", _NAMES)], _RO),
    _p(22, "domain_lookup_by_id", [("id", INT)], _D, _RO),
    _p(23, "domain_lookup_by_name", [("name", NONNULL_STRING)], _D, _RO),
    _p(24, "domain_lookup_by_uuid", [("uuid", UUID)], _D, _RO),
    _p(25, "connect_num_of_defined_domains", None, [("num", INT)], _RO),
    _p(26, "domain_pin_vcpu", [*_D, ("vcpu", UINT), ("cpumap", VarOpaque(CPUMAP_MAX))], None,
     _RW),
    _p(27, "domain_reboot", [*_D, *_FLAGS], None, _RW),
    _p(28, "domain_resume", _D, None, _RW),
    _p(29, "domain_set_autostart", [*_D, ("autostart", INT)], None, _RW),
    _p(30, "domain_set_max_memory", [*_D, ("memory", UHYPER)], None, _RW),
    _p(31, "domain_set_memory", [*_D, ("memory", UHYPER)], None, _RW),
    _p(32, "domain_set_vcpus", [*_D, ("nvcpus", UINT)], None, _RW),
    _p(33, "domain_shutdown", _D, None, _RW),
    _p(34, "domain_suspend", _D, None, _RW),
    _p(35, "domain_undefine", _D, None, _RW),
    # networks (and the domain lists numbered among them)
    _p(36, "connect_list_defined_networks", [("maxnames", INT)], [("names", _NET_NAMES)], _RO),
    _p(37, "connect_list_domains", [("maxids", INT)],
     [("ids", VarArray(INT, DOMAIN_LIST_MAX))], _RO),
    _p(38, "connect_list_networks", [("maxnames", INT)], [("names", _NET_NAMES)], _RO),
    _p(39, "network_create", _N, None, _RW),
    _p(40, "network_create_xml", [("xml", NONNULL_STRING)], _N, _RW),
    _p(41, "network_define_xml", [("xml", NONNULL_STRING)], _N, _RW),
    _p(42, "network_destroy", _N, None, _RW),
    _p(43, "network_get_xml_desc", [*_N, *_FLAGS], [("xml", NONNULL_STRING)], _RO),
    _p(44, "network_get_autostart", _N, [("autostart", INT)], _RO),
    _p(45, "network_get_bridge_name", _N, [("name", NONNULL_STRING)], _RO),
    _p(46, "network_lookup_by_name", [("name", NONNULL_STRING)], _N, _RO),
    _p(47, "network_lookup_by_uuid", [("uuid", UUID)], _N, _RO),
    _p(48, "network_set_autostart", [*_N, ("autostart", INT)], None, _RW),
    _p(49, "network_undefine", _N, None, _RW),
    _p(50, "connect_num_of_defined_networks", None, [("num", INT)], _RO),
    _p(51, "connect_num_of_domains", None, [("num", INT)], _RO),
    _p(52, "connect_num_of_networks", None, [("num", INT)], _RO),
    _p(53, "domain_core_dump", [*_D, ("to", NONNULL_STRING), *_FLAGS], None, _RW),
    _p(54, "domain_restore", [("from", NONNULL_STRING)], None, _RW),
    _p(55, "domain_save", [*_D, ("to", NONNULL_STRING)], None, _RW),
    _p(59, "connect_get_hostname", None, [("hostname", NONNULL_STRING)], _RO),
    _p(60, "connect_supports_feature", [("feature", INT)], [("supported", INT)], _RO),
    _p(66, "auth_list", None, [("types", VarArray(AUTH_TYPE, AUTH_TYPE_LIST_MAX))], _RO),
    # events, legacy style
    _p(105, "connect_domain_event_register", None, [("cb_registered", INT)], _RO),
    _p(106, "connect_domain_event_deregister", None, [("cb_registered", INT)], _RO),
    _p(107, "domain_event_lifecycle", [("dom", NONNULL_DOMAIN), ("event", INT), ("detail", INT)],
     None, _RO, Kind.EVENT),
    _p(110, "connect_get_uri", None, [("uri", NONNULL_STRING)], _RO),
    _p(121, "domain_get_security_label", _D,
     [("label", VarCharArray(SECURITY_LABEL_MAX)), ("enforcing", INT)], _RO),
    _p(122, "node_get_security_model", None,
     [("model", VarCharArray(SECURITY_MODEL_MAX)), ("doi", VarCharArray(SECURITY_DOI_MAX))],
     _RO),
    _p(149, "connect_is_secure", None, [("secure", INT)], _RO),
    _p(150, "domain_is_active", _D, [("active", INT)], _RO),
    _p(151, "domain_is_persistent", _D, [("persistent", INT)], _RO),
    _p(152, "network_is_active", _N, [("active", INT)], _RO),
    _p(153, "network_is_persistent", _N, [("persistent", INT)], _RO),
    _p(157, "connect_get_lib_version", None, [("lib_ver", UHYPER)], _RO),
    _p(160, "domain_attach_device_flags", [*_D, ("xml", NONNULL_STRING), *_FLAGS], None, _RW),
    _p(161, "domain_detach_device_flags", [*_D, ("xml", NONNULL_STRING), *_FLAGS], None, _RW),
    _p(167, "connect_domain_event_register_any", [("event_id", INT)], None, _RO),
    _p(168, "connect_domain_event_deregister_any", [("event_id", INT)], None, _RO),
    _p(169, "domain_event_reboot", _D, None, _RO, Kind.EVENT),
    _p(183, "domain_has_managed_save_image", [*_D, *_FLAGS], [("result", INT)], _RO),
    _p(187, "domain_snapshot_num", [*_D, *_FLAGS], [("num", INT)], _RO),
    _p(196, "domain_create_with_flags", [*_D, *_FLAGS], _D, _RW),
    _p(199, "domain_set_vcpus_flags", [*_D, ("nvcpus", UINT), *_FLAGS], None, _RW),
    _p(200, "domain_get_vcpus_flags", [*_D, *_FLAGS], [("num", INT)], _RO),
    _p(201, "domain_open_console", [*_D, ("dev_name", STRING), *_FLAGS], None, _RW, Kind.STREAM),
    _p(202, "domain_is_updated", _D, [("updated", INT)], _RO),
    _p(204, "domain_set_memory_flags", [*_D, ("memory", UHYPER), *_FLAGS], None, _RW),
    _p(212, "domain_get_state", [*_D, *_FLAGS], [("state", INT), ("reason", INT)], _RO),
    _p(225, "domain_pin_vcpu_flags",
     [*_D, ("vcpu", UINT), ("cpumap", VarOpaque(CPUMAP_MAX)), *_FLAGS], None, _RW),
    _p(231, "domain_undefine_flags", [*_D, *_FLAGS], None, _RW),
    _p(234, "domain_destroy_flags", [*_D, *_FLAGS], None, _RW),
    _p(258, "domain_shutdown_flags", [*_D, *_FLAGS], None, _RW),
    _p(273, "connect_list_all_domains", [("need_results", INT), *_FLAGS],
     [("domains", VarArray(NONNULL_DOMAIN, DOMAIN_LIST_MAX)), ("ret", UINT)], _RO),
    _p(283, "connect_list_all_networks", [("need_results", INT), *_FLAGS],
     [("nets", VarArray(NONNULL_NETWORK, NETWORK_LIST_MAX)), ("ret", UINT)], _RO),
    # events with callback ids (VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK)
    _p(313, "connect_network_event_register_any", [("event_id", INT), ("net", NETWORK)],
     [("callback_id", INT)], _RO),
    _p(314, "connect_network_event_deregister_any", [("callback_id", INT)], None, _RO),
    _p(315, "network_event_lifecycle", [("callback_id", INT), ("net", NONNULL_NETWORK),
                                      ("event", INT), ("detail", INT)], None, _RO, Kind.EVENT),
    _p(316, "connect_domain_event_callback_register_any", [("event_id", INT), ("dom", DOMAIN)],
     [("callback_id", INT)], _RO),
    _p(317, "connect_domain_event_callback_deregister_any", [("callback_id", INT)], None, _RO),
    _p(318, "domain_event_callback_lifecycle", [("callback_id", INT), ("msg", _LIFECYCLE_MSG)],
     None, _RO, Kind.EVENT),
    _p(319, "domain_event_callback_reboot", [("callback_id", INT), ("msg", _REBOOT_MSG)],
     None, _RO, Kind.EVENT),
    _p(341, "network_get_dhcp_leases",
       [*_N, ("mac", STRING), ("need_results", INT), *_FLAGS],
       [("leases", VarArray(NETWORK_DHCP_LEASE, NETWORK_DHCP_LEASES_MAX)), ("ret", UINT)], _RO),
    _p(344, "connect_get_all_domain_stats",
     [("doms", VarArray(NONNULL_DOMAIN, DOMAIN_LIST_MAX)), ("stats", UINT), *_FLAGS],
     [("ret_stats", VarArray(DOMAIN_STATS_RECORD, DOMAIN_LIST_MAX))], _RO),
    _p(350, "domain_define_xml_flags", [("xml", NONNULL_STRING), *_FLAGS], _D, _RW),
    _p(353, "domain_interface_addresses", [*_D, ("source", UINT), *_FLAGS],
       [("ifaces", VarArray(DOMAIN_INTERFACE, DOMAIN_INTERFACE_MAX))], _RO),
    # close callback (VIR_DRV_FEATURE_REMOTE_CLOSE_CALLBACK)
    _p(360, "connect_register_close_callback", None, None, _RO),
    _p(361, "connect_unregister_close_callback", None, None, _RO),
    _p(362, "connect_event_connection_closed", [("reason", INT)], None, _RO, Kind.EVENT),
    _p(426, "domain_get_messages", [*_D, *_FLAGS],
       [("msgs", VarArray(NONNULL_STRING, DOMAIN_MESSAGES_MAX))], _RO),
    _p(432, "network_define_xml_flags", [("xml", NONNULL_STRING), *_FLAGS], _N, _RW),
    _p(437, "network_create_xml_flags", [("xml", NONNULL_STRING), *_FLAGS], _N, _RW),
)

BY_NUMBER: Mapping[int, Procedure] = {p.number: p for p in PROCEDURES}
BY_NAME: Mapping[str, Procedure] = {p.name: p for p in PROCEDURES}
assert len(BY_NUMBER) == len(BY_NAME) == len(PROCEDURES), "duplicate procedure"

#: The keepalive program's two procedures, both MESSAGEs without payload.
KEEPALIVE_PROCEDURES: Mapping[int, str] = {KEEPALIVE_PING: "ping", KEEPALIVE_PONG: "pong"}


def procedure(name: str) -> Procedure:
    """The procedure called ``name``; InvalidArgumentError when there is none."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise InvalidArgumentError(f"unknown remote procedure {name!r}") from None


def procedure_name(number: int) -> str:
    """A procedure's name, or ``"#<number>"`` for one virtkit does not declare."""
    proc = BY_NUMBER.get(number)
    return proc.name if proc is not None else f"#{number}"
