"""The command grammar: command strings, option binding, sizes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virtkit.cli.commands import COMMANDS, find
from virtkit.cli.parser import UsageError, bind, parse_size, split_commands


@pytest.mark.parametrize(("text", "expected"), [
    ("list --all", [["list", "--all"]]),
    ("  list\t--all  ", [["list", "--all"]]),
    ("suspend a; list;domstate a", [["suspend", "a"], ["list"], ["domstate", "a"]]),
    ("a\nb", [["a"], ["b"]]),
    ("domstate 'my dom'", [["domstate", "my dom"]]),
    ('domstate "my \\"dom\\""', [["domstate", 'my "dom"']]),
    ("domstate my\\ dom", [["domstate", "my dom"]]),
    ("domstate 'te'st", [["domstate", "test"]]),
    ("domstate ''", [["domstate", ""]]),
    ("domstate 'a;b'", [["domstate", "a;b"]]),
    ("list # a comment; not a command", [["list"]]),
    ("list a#b", [["list", "a#b"]]),
    ("; ;", []),
    ("", []),
])
def test_split_commands(text: str, expected: list[list[str]]) -> None:
    assert split_commands(text) == expected


@pytest.mark.parametrize("text", ["domstate 'x", 'domstate "x', "domstate x\\"])
def test_split_commands_errors(text: str) -> None:
    with pytest.raises(UsageError):
        split_commands(text)


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1),
                min_size=1, max_size=5))
def test_quoted_words_round_trip(words: list[str]) -> None:
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    assert split_commands(quoted) == [words]


@given(st.text())
def test_split_commands_never_crashes(text: str) -> None:
    try:
        split_commands(text)
    except UsageError:
        pass


def cmd(name: str):  # type: ignore[no-untyped-def]
    command = find(name)
    assert command is not None
    return command


def test_bind_by_position_and_by_name() -> None:
    vcpupin = cmd("vcpupin")
    expected = {"domain": "test", "vcpu": 1, "cpulist": "0-3"}
    assert bind(vcpupin, ["test", "1", "0-3"]) == expected
    assert bind(vcpupin, ["--cpulist", "0-3", "test", "--vcpu=1"]) == expected
    assert bind(vcpupin, ["--vcpu", "1", "--domain", "test", "0-3"]) == expected


def test_bind_flags_and_double_dash() -> None:
    assert bind(cmd("list"), ["--all", "--json"]) == {"all": True, "json": True}
    assert bind(cmd("domstate"), ["--", "--json"]) == {"domain": "--json"}


def test_bind_aliases() -> None:
    assert bind(cmd("setmem"), ["test", "--kilobytes", "1024"]) == {"domain": "test", "size": 1024}


@pytest.mark.parametrize(("name", "words", "message"), [
    ("dominfo", [], "command 'dominfo' requires <domain> option"),
    ("dominfo", ["--domain"], "expected syntax: --domain <string>"),
    ("dominfo", ["--domain="], "Failed to get option 'domain': Option argument is empty"),
    ("dominfo", ["a", "b"], "unexpected data 'b'"),
    ("dominfo", ["--nope"], "command 'dominfo' doesn't support option --nope"),
    ("list", ["--all", "--all"], "option --all already provided"),
    ("list", ["--all=1"], "option --all takes no value"),
    ("setvcpus", ["a", "-1"], "Numeric value '-1' for <count> option is malformed or out of range"),
    ("setvcpus", ["a", "٣"], "Numeric value '٣' for <count> option is malformed or out of range"),
    ("setmem", ["a", "x"], "Scaled numeric value 'x' for <size> option is malformed or out of range"),
])
def test_bind_errors(name: str, words: list[str], message: str) -> None:
    with pytest.raises(UsageError) as e:
        bind(cmd(name), words)
    assert str(e.value) == message


@pytest.mark.parametrize(("text", "kib"), [
    ("1024", 1024), ("1k", 1), ("1KiB", 1), ("1000KB", 977), ("512M", 524288),
    ("2G", 2097152), ("2 GiB", 2097152), ("1T", 1024**3), ("1GB", 976563), ("1b", 1),
    ("0", 0), ("2048bytes", 2),
])
def test_parse_size(text: str, kib: int) -> None:
    assert parse_size(text) == kib


@pytest.mark.parametrize("text", ["", "M", "-1", "1.5G", "1X", "0x10", "١٢"])
def test_parse_size_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_table_is_consistent() -> None:
    """Every command of virsh 0.2.2 is there; option names are unique; positional
    options come first in table order where a command mixes them."""
    virsh_022 = {
        "help", "quit", "connect", "list", "dominfo", "domstate", "domid", "domname", "domuuid",
        "create", "define", "undefine", "start", "suspend", "resume", "shutdown", "reboot",
        "destroy", "save", "restore", "dump", "dumpxml", "setmem", "setmaxmem", "setvcpus",
        "vcpuinfo", "vcpupin", "nodeinfo", "capabilities", "version", "autostart",
        "attach-device", "detach-device", "net-list", "net-create", "net-define",
        "net-undefine", "net-start", "net-destroy", "net-dumpxml", "net-name", "net-uuid",
        "net-autostart", "console",
    }
    names = {c.name for c in COMMANDS}
    assert virsh_022 <= names
    for command in COMMANDS:
        opts = [o.name for o in command.options]
        assert len(opts) == len(set(opts)), command.name
        assert all(o.kind != "bool" or not o.positional for o in command.options)
        if any(o.kind == "domain" for o in command.options):
            assert command.options[0].name == "domain"
    json_commands = {c.name for c in COMMANDS if c.option("json")}
    assert {"list", "dominfo", "nodeinfo", "vcpuinfo", "net-list", "domstate"} <= json_commands
