"""The error model (python/virtkit/errors.py)."""

from __future__ import annotations

import pytest

from virtkit.errors import ErrorCode, ErrorDomain, ErrorLevel, InvalidUUIDError, SExprSyntaxError, VirtError


@pytest.mark.parametrize(
    ("member", "number"),
    [
        # A sample of libvirt's public numbers (virterror.h), which scripts compare against.
        (ErrorCode.OK, 0),
        (ErrorCode.INTERNAL_ERROR, 1),
        (ErrorCode.NO_SUPPORT, 3),
        (ErrorCode.INVALID_ARG, 8),
        (ErrorCode.SEXPR_SERIAL, 13),
        (ErrorCode.XML_ERROR, 27),
        (ErrorCode.OPERATION_DENIED, 29),
        (ErrorCode.NO_DOMAIN, 42),
        (ErrorCode.NO_NETWORK, 43),
        (ErrorCode.OPERATION_INVALID, 55),
        (ErrorCode.MULTIPLE_DOMAINS, 110),
        (ErrorDomain.XEND, 2),
        (ErrorDomain.SEXPR, 4),
        (ErrorDomain.QEMU, 10),
        (ErrorDomain.TEST, 12),
        (ErrorDomain.REMOTE, 13),
        (ErrorDomain.NETWORK, 19),
        (ErrorDomain.DOMAIN, 20),
        (ErrorDomain.CH, 72),
    ],
)
def test_numbers_equal_libvirts(member: int, number: int) -> None:
    assert member == number


def test_enums_are_dense_and_unique() -> None:
    for enum in (ErrorCode, ErrorDomain):
        values = [m.value for m in enum]
        assert values == list(range(len(values)))


def test_error_carries_libvirt_fields() -> None:
    e = VirtError("boom", code=ErrorCode.NO_DOMAIN, domain=ErrorDomain.TEST, str1="x", int1=3)
    assert (e.code, e.domain, e.level, e.message, e.str1, e.int1) == (
        ErrorCode.NO_DOMAIN, ErrorDomain.TEST, ErrorLevel.ERROR, "boom", "x", 3)
    assert e.get_error_code() == 42 and e.get_error_domain() == 12
    assert str(e) == "boom"
    unknown = VirtError("from a newer peer", code=999)
    assert unknown.code == 999


def test_subclasses_fix_code_and_domain() -> None:
    assert InvalidUUIDError("x").code == ErrorCode.INVALID_ARG
    e = SExprSyntaxError("bad", offset=4, expected="')'")
    assert (e.code, e.domain, e.offset, e.int1) == (ErrorCode.SEXPR_SERIAL, ErrorDomain.SEXPR, 4, 4)
