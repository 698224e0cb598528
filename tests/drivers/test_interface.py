"""The driver contract (python/virtkit/drivers/interface.py) and its use by the public layer."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import virtkit
import virtkit.connection
import virtkit.domain
import virtkit.network
from virtkit.drivers.interface import OPERATIONS, Driver
from virtkit.drivers.test import TestDriver
from virtkit.uri import parse_uri


def test_test_driver_implements_every_operation() -> None:
    assert TestDriver.supported_operations() == frozenset(OPERATIONS)


def test_every_operation_is_reachable_from_the_public_api() -> None:
    sources = "".join(inspect.getsource(m) for m in (virtkit.connection, virtkit.domain, virtkit.network))
    used = set(re.findall(r'"([a-z_]+)"', sources)) & set(OPERATIONS)
    assert used == set(OPERATIONS), f"operations no public call reaches: {set(OPERATIONS) - used}"


def test_operation_metadata() -> None:
    for name, spec in OPERATIONS.items():
        assert spec.target == ("domain" if name.startswith("domain_") else
                               "network" if name.startswith("network_") else "connection")
        words = set(name.split("_"))
        looks_mutating = bool(words & {
            "create", "define", "restore", "set", "pin", "start", "suspend", "resume", "shutdown",
            "reboot", "destroy", "undefine", "save", "core", "attach", "detach"})
        assert spec.mutating == looks_mutating, name


class _Partial(Driver):
    name = "partial"

    def get_type(self) -> str:
        return "Partial"


def test_missing_operations_answer_no_support_naming_driver_and_operation() -> None:
    drv = _Partial(parse_uri("test:///default"), False)
    assert _Partial.supported_operations() == {"get_type"}
    assert drv.get_type() == "Partial"
    with pytest.raises(virtkit.NoSupportError, match="partial driver does not implement get_node_info") as info:
        drv.get_node_info()
    assert info.value.code == virtkit.ErrorCode.NO_SUPPORT
    conn = virtkit.Connection(drv, parse_uri("test:///default"), False)
    with pytest.raises(virtkit.NoSupportError, match="list_domain_ids"):
        conn.list_domain_ids()
    assert isinstance(conn.get_last_error(), virtkit.NoSupportError)


def test_base_signatures_are_kept_by_the_test_driver() -> None:
    for name in OPERATIONS:
        base = inspect.signature(getattr(Driver, name))
        impl = inspect.signature(getattr(TestDriver, name))
        assert list(base.parameters) == list(impl.parameters), name


