"""The command-line grammar: command strings, options, positional arguments.

Two ways to give commands, as virsh takes them:

- an argument vector (``virtkit dominfo test``): each word is one token;
- a command string (``virtkit 'suspend test; domstate test'``, or a line of
  the interactive shell): words are split on blanks, ``'...'`` quotes
  literally, ``"..."`` quotes with backslash escapes, ``\\`` escapes one
  character, ``;`` or a newline separates commands and ``#`` starts a comment.

A command's options are given by name (``--domain test``, ``--domain=test``)
or, for those that allow it, by position in the order of the command's table
entry; ``--`` makes every later word positional. Boolean options are given by
name only. Every mistake raises :class:`UsageError` with virsh's wording.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from virtkit.cli.i18n import _

if TYPE_CHECKING:
    from virtkit.cli.session import Session

__all__ = ["Opt", "Command", "Args", "UsageError", "split_commands", "bind"]

#: Option kinds. ``bool`` takes no value; the others take one word. Kinds name
#: what completion offers (``domain``, ``network``, ``file``, ``command``) and how
#: the value is checked (``int``: a non-negative integer; ``size``: a scaled size).
KINDS = frozenset({"bool", "string", "domain", "network", "file", "int", "size", "uri", "command"})


class UsageError(Exception):
    """A command line that does not fit the command's grammar."""


class Opt(NamedTuple):
    """One option of a command."""

    name: str
    kind: str
    #: Help text, marked with N_ (translated when shown).
    help: str
    required: bool = False
    #: May be given by position (in table order) as well as by name.
    positional: bool = False
    #: Other names accepted for it (virsh's renamed options: ``--kilobytes``...).
    aliases: tuple[str, ...] = ()

    @property
    def takes_value(self) -> bool:
        return self.kind != "bool"

    def synopsis(self) -> str:
        """``<domain>``, ``[--inactive]``, ``[<uri>]``, ``--size <size>``..."""
        if not self.takes_value:
            return f"[--{self.name}]"
        text = f"<{self.name}>" if self.positional else f"--{self.name} <{_kind_word(self.kind)}>"
        return text if self.required else f"[{text}]"


class Command(NamedTuple):
    """One entry of the command table."""

    name: str
    handler: Callable[[Session, Args], None]
    #: One line, marked with N_.
    summary: str
    #: A paragraph, marked with N_.
    description: str
    options: tuple[Opt, ...] = ()
    #: Help group keyword: ``domain``, ``monitor``, ``host``, ``network``, ``virtkit``.
    group: str = "domain"
    #: False for commands that never touch the hypervisor (help, quit...).
    needs_connection: bool = True
    aliases: tuple[str, ...] = ()

    def option(self, name: str) -> Opt | None:
        for opt in self.options:
            if opt.name == name or name in opt.aliases:
                return opt
        return None

    def synopsis(self) -> str:
        return " ".join([self.name] + [opt.synopsis() for opt in self.options])


class Args(dict[str, object]):
    """The options of one invocation, by name: True for flags, str/int for values."""

    def text(self, name: str) -> str:
        value = self[name]
        assert isinstance(value, str)
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.get(name)
        return value if isinstance(value, str) else None

    def flag(self, name: str) -> bool:
        return self.get(name) is True

    def number(self, name: str) -> int:
        value = self[name]
        assert isinstance(value, int) and not isinstance(value, bool)
        return value


def _kind_word(kind: str) -> str:
    return {"int": "number", "size": "number", "bool": ""}.get(kind, "string")


# --- command strings ------------------------------------------------------------------

def split_commands(text: str) -> list[list[str]]:
    """Split a command string into commands, each a list of words."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: list[str] = []
    in_word = False
    i, n = 0, len(text)

    def end_word() -> None:
        nonlocal in_word
        if in_word:
            words.append("".join(word))
            word.clear()
            in_word = False

    def end_command() -> None:
        end_word()
        if words:
            commands.append(words.copy())
            words.clear()

    while i < n:
        c = text[i]
        if c in " \t\r":
            end_word()
        elif c in ";\n":
            end_command()
        elif c == "#" and not in_word:
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c == "\\":
            i += 1
            if i >= n:
                raise UsageError(_("dangling \\ at the end of the command"))
            word.append(text[i])
            in_word = True
        elif c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise UsageError(_("missing closing ' in the command"))
            word.append(text[i + 1:end])
            in_word = True
            i = end
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise UsageError(_('missing closing " in the command'))
                c = text[i]
                if c == '"':
                    break
                if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                    i += 1
                    c = text[i]
                word.append(c)
                i += 1
            in_word = True
        else:
            word.append(c)
            in_word = True
        i += 1
    end_command()
    return commands


# --- binding words to a command's options ---------------------------------------------------

def bind(command: Command, words: Iterable[str]) -> Args:
    """Match ``words`` (after the command name) to ``command``'s options.

    Raises UsageError for an unknown option, a missing or empty value, a
    repeated option, surplus words, a missing required option or a value that
    is not a number where one is needed.
    """
    args = Args()
    positional = [opt for opt in command.options if opt.positional]
    only_positional = False
    tokens = list(words)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not only_positional and token == "--":
            only_positional = True
            continue
        if not only_positional and token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            opt = command.option(name)
            if opt is None:
                raise UsageError(_("command '%(command)s' doesn't support option --%(option)s")
                                 % {"command": command.name, "option": name})
            if opt.name in args:
                raise UsageError(_("option --%s already provided") % opt.name)
            if not opt.takes_value:
                if eq:
                    raise UsageError(_("option --%s takes no value") % opt.name)
                args[opt.name] = True
                continue
            if not eq:
                if i >= len(tokens):
                    raise UsageError(_("expected syntax: --%(option)s <%(kind)s>")
                                     % {"option": opt.name, "kind": _kind_word(opt.kind)})
                value = tokens[i]
                i += 1
            args[opt.name] = _convert(opt, value)
            continue
        for opt in positional:
            if opt.name not in args:
                args[opt.name] = _convert(opt, token)
                break
        else:
            raise UsageError(_("unexpected data '%s'") % token)
    for opt in command.options:
        if opt.required and opt.name not in args:
            raise UsageError(_("command '%(command)s' requires <%(option)s> option")
                             % {"command": command.name, "option": opt.name})
    return args


def _convert(opt: Opt, value: str) -> object:
    if value == "":
        raise UsageError(_("Failed to get option '%s': Option argument is empty") % opt.name)
    if opt.kind == "int":
        if not value.isascii() or not value.isdigit():
            raise UsageError(_("Numeric value '%(value)s' for <%(option)s> option is malformed "
                               "or out of range") % {"value": value, "option": opt.name})
        return int(value)
    if opt.kind == "size":
        return parse_size(value, opt.name)
    return value


#: Size suffixes (case-insensitive) and their multiplier in bytes; a bare number is KiB.
_SCALES = {
    "b": 1, "byte": 1, "bytes": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}


def parse_size(value: str, option: str = "size") -> int:
    """A size in KiB from ``2097152``, ``512M``, ``2GiB``, ``1000000KB``...

    A bare number is KiB (as virsh reads it); byte counts that are not a whole
    number of KiB round up.
    """
    text = value.strip()
    digits = len(text) - len(text.lstrip("0123456789"))
    number, suffix = text[:digits], text[digits:].strip().lower()
    scale = _SCALES.get(suffix) if suffix else 1024
    if not number or not number.isascii() or scale is None:
        raise UsageError(_("Scaled numeric value '%(value)s' for <%(option)s> option is malformed "
                           "or out of range") % {"value": value, "option": option})
    return (int(number) * scale + 1023) // 1024
