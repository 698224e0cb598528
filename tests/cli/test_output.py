"""virsh's layouts: tables, key/value reports, CPU times."""

from __future__ import annotations

from virtkit.cli.commands import STATE_LABELS
from virtkit.cli.output import cpu_seconds, display_width, fields, table
from virtkit.domain import DomainState


def test_table_layout() -> None:
    assert table(("Id", "Name", "State"), [("1", "test", "running")]) == (
        " Id   Name   State\n"
        "----------------------\n"
        " 1    test   running\n")


def test_table_grows_with_content_and_keeps_last_column_unpadded() -> None:
    text = table(("Id", "Name", "State"), [("1", "alpha", "paused"), ("-", "a-long-name", "shut off")])
    assert text.splitlines() == [
        " Id   Name          State",
        "------------------------------",
        " 1    alpha         paused",
        " -    a-long-name   shut off",
    ]


def test_empty_table_and_quiet() -> None:
    assert table(("Id", "Name", "State"), []) == " Id   Name   State\n--------------------\n"
    assert table(("Id", "Name", "State"), [("1", "test", "running")], quiet=True) == \
        " 1   test   running\n"
    assert table(("Id", "Name", "State"), [], quiet=True) == ""


def test_wide_characters_count_two_columns() -> None:
    assert display_width("abc") == 3
    assert display_width("日本") == 4
    assert display_width("é") == 1
    text = table(("Name", "State"), [("日本", "running"), ("ab", "paused")])
    assert text.splitlines()[2:] == [" 日本   running", " ab     paused"]


def test_fields() -> None:
    assert fields([("Id:", "1"), ("Security model:", "x")], 15) == \
        "Id:             1\nSecurity model: x\n"


def test_cpu_seconds() -> None:
    assert cpu_seconds(0) == "0.0s"
    assert cpu_seconds(1_795_634_115_800_000_000) == "1795634115.8s"
    assert cpu_seconds(49_999_999) == "0.0s"


def test_state_labels_equal_the_api() -> None:
    assert {int(s): s.label for s in DomainState} == STATE_LABELS
