"""Remote protocol: header codec, error mapping, and every declared procedure struct."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from virtkit.drivers.remote import protocol
from virtkit.drivers.remote.protocol import (
    BY_NAME,
    BY_NUMBER,
    PROCEDURES,
    REMOTE_ERROR,
    Header,
    Kind,
    MessageStatus,
    MessageType,
    decode_header,
    encode_header,
    encode_packet,
    error_from_wire,
    error_to_wire,
)
from virtkit.drivers.remote.xdr import VOID, XDRType
from virtkit.errors import (
    DomainExistsError,
    ErrorCode,
    ErrorDomain,
    ErrorLevel,
    InvalidArgumentError,
    NoDomainError,
    NoNetworkError,
    NoSupportError,
    OperationDeniedError,
    OperationInvalidError,
    RPCError,
    VirtError,
)

from tests.drivers.remote.strategies import values

# --- header -------------------------------------------------------------------------------

headers = st.builds(
    Header,
    program=st.integers(0, 2**32 - 1),
    version=st.integers(0, 2**32 - 1),
    procedure=st.integers(-(2**31), 2**31 - 1),
    type=st.sampled_from(list(MessageType)),
    serial=st.integers(0, 2**32 - 1),
    status=st.sampled_from(list(MessageStatus)),
)


@given(header=headers, payload=st.binary(max_size=64))
def test_header_round_trip(header: Header, payload: bytes) -> None:
    wire = encode_header(header)
    assert len(wire) == protocol.HEADER_SIZE
    assert decode_header(wire + payload) == header
    packet = encode_packet(*header, payload)
    assert int.from_bytes(packet[:4], "big") == len(packet) == 28 + len(payload)
    assert decode_header(packet[4:]) == header
    assert packet[28:] == payload


def test_header_layout() -> None:
    header = Header(0x20008086, 1, 16, MessageType.REPLY, 7, MessageStatus.ERROR)
    assert encode_header(header).hex() == "20008086" "00000001" "00000010" "00000001" \
        "00000007" "00000001"


@pytest.mark.parametrize(("body", "message"), [
    (b"", "shorter than the 24-byte header"),
    (b"\0" * 23, "shorter than the 24-byte header"),
    (b"\0" * 12 + b"\0\0\0\6" + b"\0" * 8, "unknown message type 6"),
    (b"\0" * 20 + b"\0\0\0\3", "unknown message status 3"),
    (b"\0" * 12 + b"\xff\xff\xff\xff" + b"\0" * 8, "unknown message type -1"),
])
def test_header_refused(body: bytes, message: str) -> None:
    with pytest.raises(RPCError, match=message):
        decode_header(body)


def test_encode_refuses_oversized_payload_and_bad_fields() -> None:
    with pytest.raises(RPCError, match="exceeds the maximum"):
        encode_packet(1, 1, 1, 0, 1, 0, bytes(protocol.PAYLOAD_MAX + 1))
    with pytest.raises(RPCError):
        encode_packet(-1, 1, 1, 0, 1, 0)
    with pytest.raises(RPCError):
        encode_header(Header(1, 1, 2**31, 0, 0, 0))


# --- the procedure table ------------------------------------------------------------------

# Numbers are libvirt's (remote_protocol.x); a mistake here breaks compatibility.
KNOWN_NUMBERS = {
    "connect_open": 1, "connect_close": 2, "connect_get_type": 3, "connect_get_version": 4,
    "connect_get_max_vcpus": 5, "node_get_info": 6, "connect_get_capabilities": 7,
    "domain_attach_device": 8, "domain_create": 9, "domain_create_xml": 10,
    "domain_define_xml": 11, "domain_destroy": 12, "domain_detach_device": 13,
    "domain_get_xml_desc": 14, "domain_get_autostart": 15, "domain_get_info": 16,
    "domain_get_max_memory": 17, "domain_get_max_vcpus": 18, "domain_get_os_type": 19,
    "domain_get_vcpus": 20, "connect_list_defined_domains": 21, "domain_lookup_by_id": 22,
    "domain_lookup_by_name": 23, "domain_lookup_by_uuid": 24,
    "connect_num_of_defined_domains": 25, "domain_pin_vcpu": 26, "domain_reboot": 27,
    "domain_resume": 28, "domain_set_autostart": 29, "domain_set_max_memory": 30,
    "domain_set_memory": 31, "domain_set_vcpus": 32, "domain_shutdown": 33,
    "domain_suspend": 34, "domain_undefine": 35, "connect_list_defined_networks": 36,
    "connect_list_domains": 37, "connect_list_networks": 38, "network_create": 39,
    "network_create_xml": 40, "network_define_xml": 41, "network_destroy": 42,
    "network_get_xml_desc": 43, "network_get_autostart": 44, "network_get_bridge_name": 45,
    "network_lookup_by_name": 46, "network_lookup_by_uuid": 47, "network_set_autostart": 48,
    "network_undefine": 49, "connect_num_of_defined_networks": 50,
    "connect_num_of_domains": 51, "connect_num_of_networks": 52, "domain_core_dump": 53,
    "domain_restore": 54, "domain_save": 55, "connect_get_hostname": 59,
    "connect_supports_feature": 60, "auth_list": 66, "connect_domain_event_register": 105,
    "connect_domain_event_deregister": 106, "domain_event_lifecycle": 107,
    "connect_get_uri": 110, "domain_get_security_label": 121, "node_get_security_model": 122,
    "connect_is_secure": 149, "domain_is_active": 150, "domain_is_persistent": 151,
    "network_is_active": 152, "network_is_persistent": 153, "connect_get_lib_version": 157,
    "domain_attach_device_flags": 160, "domain_detach_device_flags": 161,
    "connect_domain_event_register_any": 167, "connect_domain_event_deregister_any": 168,
    "domain_has_managed_save_image": 183, "domain_snapshot_num": 187,
    "domain_create_with_flags": 196, "domain_set_vcpus_flags": 199,
    "domain_get_vcpus_flags": 200, "domain_open_console": 201,
    "domain_set_memory_flags": 204, "domain_get_state": 212, "domain_pin_vcpu_flags": 225,
    "domain_undefine_flags": 231, "domain_destroy_flags": 234, "domain_shutdown_flags": 258,
    "connect_list_all_domains": 273, "connect_list_all_networks": 283,
    "connect_network_event_register_any": 313, "connect_network_event_deregister_any": 314,
    "network_event_lifecycle": 315, "connect_domain_event_callback_register_any": 316,
    "connect_domain_event_callback_deregister_any": 317,
    "domain_event_callback_lifecycle": 318, "network_get_dhcp_leases": 341,
    "connect_get_all_domain_stats": 344, "domain_define_xml_flags": 350,
    "domain_interface_addresses": 353, "connect_register_close_callback": 360,
    "connect_unregister_close_callback": 361, "connect_event_connection_closed": 362,
    "domain_get_messages": 426,
}

MUTATING = [
    "domain_create", "domain_create_xml", "domain_define_xml", "domain_destroy",
    "domain_undefine", "domain_suspend", "domain_resume", "domain_shutdown", "domain_reboot",
    "domain_set_memory", "domain_set_vcpus", "domain_pin_vcpu", "domain_save",
    "domain_restore", "domain_core_dump", "domain_set_autostart", "domain_attach_device",
    "domain_detach_device", "domain_open_console", "network_create", "network_destroy",
    "network_define_xml", "network_undefine", "network_set_autostart", "network_create_xml",
]


def test_known_numbers() -> None:
    for name, number in KNOWN_NUMBERS.items():
        assert BY_NAME[name].number == number, name
        assert BY_NUMBER[number].name == name


def test_table_is_consistent() -> None:
    assert [p.number for p in PROCEDURES] == sorted({p.number for p in PROCEDURES})
    assert len(BY_NAME) == len(PROCEDURES)
    for proc in PROCEDURES:
        assert proc.name.isidentifier() and proc.name == proc.name.lower()
        if proc.kind is Kind.EVENT:
            assert proc.ret is VOID
    assert not BY_NAME["connect_open"].needs_open
    assert BY_NAME["domain_get_info"].needs_open


def test_read_only_flags() -> None:
    for name in MUTATING:
        assert not BY_NAME[name].readonly, name
    for name in ("domain_get_info", "connect_list_all_domains", "domain_lookup_by_name",
                 "connect_open", "connect_close", "auth_list", "node_get_info",
                 "connect_domain_event_callback_register_any", "connect_get_all_domain_stats"):
        assert BY_NAME[name].readonly, name


def test_unknown_procedure_name() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown remote procedure"):
        protocol.procedure("domain_frobnicate")
    assert protocol.procedure_name(16) == "domain_get_info"
    assert protocol.procedure_name(99999) == "#99999"


def test_domain_get_info_wire_layout() -> None:
    # unsigned char and unsigned short each take a whole XDR word.
    ret = BY_NAME["domain_get_info"].ret
    wire = ret.encode({"state": 1, "max_mem": 2, "memory": 3, "nr_virt_cpu": 4, "cpu_time": 5})
    assert wire.hex() == ("00000001" "0000000000000002" "0000000000000003" "00000004"
                          "0000000000000005")


def test_dhcp_lease_and_interface_address_wire_layouts() -> None:
    # libvirt's remote_network_dhcp_lease: iface, expirytime (hyper), type, mac, iaid,
    # ipaddr, prefix, hostname, clientid; optional strings are a 0/1 word first.
    lease = {"iface": "br", "expirytime": 7, "type": 0, "mac": "m", "iaid": None,
             "ipaddr": "ip", "prefix": 24, "hostname": None, "clientid": None}
    ret = BY_NAME["network_get_dhcp_leases"].ret
    wire = ret.encode({"leases": [lease], "ret": 1})
    assert wire.hex() == ("00000001" "00000002" "62720000" "0000000000000007" "00000000"
                          "00000001" "00000001" "6d000000" "00000000" "00000002" "69700000"
                          "00000018" "00000000" "00000000" "00000001")
    args = BY_NAME["network_get_dhcp_leases"].args
    assert [name for name, _ in args.fields] == ["net", "mac", "need_results", "flags"]  # type: ignore[attr-defined]
    iface = {"name": "vnet0", "hwaddr": None, "addrs": [{"type": 1, "addr": "a", "prefix": 64}]}
    wire = BY_NAME["domain_interface_addresses"].ret.encode({"ifaces": [iface]})
    assert wire.hex() == ("00000001" "00000005" "766e657430000000" "00000000"
                          "00000001" "00000001" "00000001" "61000000" "00000040")
    args = BY_NAME["domain_interface_addresses"].args
    assert [name for name, _ in args.fields] == ["dom", "source", "flags"]  # type: ignore[attr-defined]


def test_node_get_info_model_is_32_words() -> None:
    ret = BY_NAME["node_get_info"].ret
    value = {"model": "x86_64", "memory": 1, "cpus": 2, "mhz": 3, "nodes": 4, "sockets": 5,
             "cores": 6, "threads": 7}
    wire = ret.encode(value)
    assert len(wire) == 32 * 4 + 8 + 6 * 4
    assert wire[:8] == b"\0\0\0x\0\0\0\x38"
    assert ret.decode(wire) == value


STRUCTS = [(f"{p.name}.{part}", t) for p in PROCEDURES
           for part, t in (("args", p.args), ("ret", p.ret))] + [("error", REMOTE_ERROR)]


@pytest.mark.parametrize(("label", "t"), STRUCTS, ids=[label for label, _ in STRUCTS])
@settings(max_examples=30)  # the types themselves are exercised in depth by test_xdr
@given(data=st.data())
def test_procedure_struct_round_trip(label: str, t: XDRType,
                                     data: st.DataObject) -> None:
    value = data.draw(values(t))
    wire = t.encode(value)
    assert t.decode(wire) == value
    for cut in {0, len(wire) // 2, len(wire) - 1}:
        if 0 <= cut < len(wire):
            with pytest.raises(RPCError):
                t.decode(wire[:cut])


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "cls"), [
    (ErrorCode.NO_DOMAIN, NoDomainError),
    (ErrorCode.NO_NETWORK, NoNetworkError),
    (ErrorCode.OPERATION_INVALID, OperationInvalidError),
    (ErrorCode.OPERATION_DENIED, OperationDeniedError),
    (ErrorCode.NO_SUPPORT, NoSupportError),
    (ErrorCode.DOM_EXIST, DomainExistsError),
    (ErrorCode.INTERNAL_ERROR, VirtError),
    (ErrorCode.XML_ERROR, VirtError),
])
def test_error_classes(code: ErrorCode, cls: type[VirtError]) -> None:
    wire = error_to_wire(VirtError("boom", code=code, domain=ErrorDomain.QEMU))
    error = error_from_wire(REMOTE_ERROR.decode(REMOTE_ERROR.encode(wire)))
    assert type(error) is cls
    assert error.code == code
    assert error.domain == ErrorDomain.QEMU
    assert error.message == "boom"


def test_error_fields_survive() -> None:
    original = VirtError("Domain not found", code=ErrorCode.NO_DOMAIN, domain=ErrorDomain.DOM,
                         level=ErrorLevel.WARNING, str1="a", str2=None, str3="c", int1=5,
                         int2=-7)
    error = error_from_wire(REMOTE_ERROR.decode(REMOTE_ERROR.encode(error_to_wire(original))))
    assert isinstance(error, NoDomainError)
    assert (error.level, error.str1, error.str2, error.str3, error.int1, error.int2) == (
        ErrorLevel.WARNING, "a", None, "c", 5, -7)


def test_unknown_numbers_are_kept() -> None:
    wire = {"code": 4242, "domain": 999, "message": None, "level": 77, "dom": None,
            "str1": None, "str2": None, "str3": None, "int1": 0, "int2": 0, "net": None}
    error = error_from_wire(wire)
    assert type(error) is VirtError
    assert error.code == 4242 and error.domain == 999
    assert error.level == ErrorLevel.ERROR
    assert "unknown" in error.message


@given(message=st.text(), str1=st.none() | st.text(), int1=st.integers(), int2=st.integers())
def test_error_to_wire_always_encodes(message: str, str1: str | None, int1: int,
                                      int2: int) -> None:
    error = VirtError(message, str1=str1, int1=int1, int2=int2)
    wire = error_to_wire(error)
    REMOTE_ERROR.encode(wire)
    assert wire["int1"] == (int1 if -(2**31) <= int1 < 2**31 else -1)


def test_error_to_wire_cuts_huge_messages() -> None:
    wire = error_to_wire(VirtError("é" * protocol.STRING_MAX))
    assert len(wire["message"].encode()) <= protocol.STRING_MAX
    REMOTE_ERROR.encode(wire)


def test_readme_lists_every_procedure() -> None:
    readme = Path(protocol.__file__).with_name("README.md")
    if not readme.exists():  # an installed wheel may leave it out; the checkout has it
        readme = Path(__file__).resolve().parents[3] / "python/virtkit/drivers/remote/README.md"
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| (yes|no) \| (\w*) \|$", readme.read_text(),
                      re.M)
    kinds = {Kind.CALL: "", Kind.EVENT: "event", Kind.STREAM: "stream"}
    assert rows == [(str(p.number), p.name, "yes" if p.readonly else "no", kinds[p.kind])
                    for p in PROCEDURES]
