"""XM config files as libvirt's virConf read them: a small Python subset.

A file is a sequence of statements ``name = value``, separated by newlines or
``;``. Names start with a letter or ``_`` and go on with letters, digits and
``_``. A value is an integer (optional sign), a string in ``"..."`` or
``'...'`` (no escape sequences, no newline) or ``\"\"\"...\"\"\"`` (newlines
allowed), or a list ``[ v, v, ... ]`` of such values, which may span lines,
hold comments and end with a comma. ``#`` starts a comment (``xen-protocols.md``
section 4.2).

:func:`parse_conf` returns a :class:`ConfFile` that keeps the file's text:
:meth:`ConfFile.dumps` gives back exactly what was read, and after
:meth:`~ConfFile.set` or :meth:`~ConfFile.remove` only the statements changed
are rewritten (``name = value``, strings double-quoted, lists as
``[ "a", "b" ]``); comments, blank lines and the other statements stay as
they were, and new statements go at the end.

Malformed text raises :class:`~virtkit.errors.ConfigSyntaxError` with the
``line`` (1-based) and a message naming the column and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Union

from virtkit.errors import ConfigSyntaxError

__all__ = ["ConfValue", "ConfEntry", "ConfFile", "parse_conf", "format_value"]

#: A value: an integer, a string, or a list of values.
ConfValue = Union[int, str, list["ConfValue"]]

#: Largest file accepted (XM files are a few hundred bytes).
MAX_SIZE = 1024 * 1024


@dataclass
class ConfEntry:
    """One ``name = value`` statement: its value, its line, its text as read."""

    name: str
    value: ConfValue
    #: 1-based line where the statement starts.
    line: int
    #: The statement's source text (None once changed: it is then rewritten).
    text: str | None


class ConfFile:
    """A parsed XM config file that can be changed and written back."""

    def __init__(self) -> None:
        #: Raw text (comments, blanks, separators) and statements, in file order.
        self._parts: list[str | ConfEntry] = []

    # --- reading -----------------------------------------------------------------

    def entries(self) -> Iterator[ConfEntry]:
        """The statements, in file order (a name set twice appears twice)."""
        for part in self._parts:
            if isinstance(part, ConfEntry):
                yield part

    def entry(self, name: str) -> ConfEntry | None:
        """The statement that sets ``name`` (the last one, as Python would see it)."""
        found = None
        for e in self.entries():
            if e.name == name:
                found = e
        return found

    def get(self, name: str) -> ConfValue | None:
        """The value of ``name``, or None when the file does not set it."""
        e = self.entry(name)
        return None if e is None else e.value

    def names(self) -> list[str]:
        """Every name the file sets, each once, in order of first appearance."""
        seen: dict[str, None] = {}
        for e in self.entries():
            seen.setdefault(e.name, None)
        return list(seen)

    def __contains__(self, name: object) -> bool:
        return any(e.name == name for e in self.entries())

    # --- changing ----------------------------------------------------------------

    def set(self, name: str, value: ConfValue) -> None:
        """Set ``name`` to ``value``: its statement is rewritten in place (the
        last one when the file sets it twice), or appended at the end."""
        format_value(value)  # refuse what cannot be written before changing anything
        if not _is_name(name):
            raise ValueError(f"{name!r} is not a valid config name")
        e = self.entry(name)
        if e is not None:
            if e.value != value or type(e.value) is not type(value):
                e.value = value
                e.text = None
            return
        parts = self._parts
        if parts and not (isinstance(parts[-1], str) and parts[-1].endswith("\n")):
            parts.append("\n")
        line = 1 + sum(p.count("\n") if isinstance(p, str) else (p.text or "").count("\n")
                       for p in parts)
        parts.append(ConfEntry(name, value, line, None))
        parts.append("\n")

    def remove(self, name: str) -> None:
        """Remove every statement setting ``name`` (with its line, when it had one to itself)."""
        parts = self._parts
        i = 0
        while i < len(parts):
            part = parts[i]
            if isinstance(part, ConfEntry) and part.name == name:
                del parts[i]
                before = parts[i - 1] if i > 0 else "\n"
                if i < len(parts) and isinstance(parts[i], str) and isinstance(before, str) \
                        and (before == "" or before.endswith("\n")):
                    # Drop the rest of the line (separator, blanks, trailing comment).
                    rest = parts[i]
                    assert isinstance(rest, str)
                    nl = rest.find("\n")
                    parts[i] = "" if nl < 0 else rest[nl + 1:]
                continue
            i += 1

    # --- writing -----------------------------------------------------------------

    def dumps(self) -> str:
        """The file's text: unchanged statements as read, changed ones rewritten."""
        out: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
            elif part.text is not None:
                out.append(part.text)
            else:
                out.append(f"{part.name} = {format_value(part.value)}")
        return "".join(out)


def format_value(value: ConfValue) -> str:
    """A value as libvirt writes it: ``42``, ``"text"``, ``[ "a", "b" ]``.

    A string holding ``"`` is written in ``'...'``; one holding a newline or
    both quotes in ``\"\"\"...\"\"\"``. Raises ValueError for a string no
    quoting can carry (a newline and ``\"\"\"`` together) or another type.
    """
    if isinstance(value, bool):
        raise ValueError("booleans are not config values (use 0 or 1)")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if "\n" not in value and "\r" not in value:
            if '"' not in value:
                return f'"{value}"'
            if "'" not in value:
                return f"'{value}'"
        if '"""' in value or value.endswith('"'):
            raise ValueError(f"string {value!r} cannot be written in a config file")
        return f'"""{value}"""'
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(format_value(v) for v in value) + " ]"
    raise ValueError(f"{type(value).__name__} is not a config value")


def _is_name(name: str) -> bool:
    return bool(name) and (name[0].isascii() and (name[0].isalpha() or name[0] == "_")) and all(
        c.isascii() and (c.isalnum() or c == "_") for c in name)


def parse_conf(text: str | bytes) -> ConfFile:
    """Parse an XM config file; ConfigSyntaxError (with ``line``) when malformed."""
    if isinstance(text, bytes):
        raw = text
        if len(raw) > MAX_SIZE:
            raise ConfigSyntaxError(f"config file is larger than {MAX_SIZE} bytes", line=1)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            line = raw[:e.start].count(b"\n") + 1
            raise ConfigSyntaxError(f"line {line}: not UTF-8 text (byte {e.start})", line=line) from None
    if len(text) > MAX_SIZE:
        raise ConfigSyntaxError(f"config file is larger than {MAX_SIZE} characters", line=1)
    return _Parser(text).parse()


class _Parser:
    """A hand-written, non-recursive-descent reader (lists do not nest)."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)

    # positions and errors
    def line_col(self, pos: int) -> tuple[int, int]:
        line = self.s.count("\n", 0, pos) + 1
        col = pos - (self.s.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def fail(self, message: str, pos: int | None = None) -> ConfigSyntaxError:
        line, col = self.line_col(self.i if pos is None else pos)
        return ConfigSyntaxError(f"line {line}, column {col}: {message}", line=line)

    def here(self) -> str:
        if self.i >= self.n:
            return "end of file"
        c = self.s[self.i]
        return "end of line" if c == "\n" else repr(c)

    # lexing helpers
    def skip_blanks(self) -> None:
        s, i, n = self.s, self.i, self.n
        while i < n and s[i] in " \t\r":
            i += 1
        self.i = i

    def skip_comment(self) -> None:
        if self.i < self.n and self.s[self.i] == "#":
            nl = self.s.find("\n", self.i)
            self.i = self.n if nl < 0 else nl

    def skip_space_and_comments(self) -> None:
        """Blanks, newlines and comments (inside a list)."""
        while True:
            self.skip_blanks()
            self.skip_comment()
            if self.i < self.n and self.s[self.i] == "\n":
                self.i += 1
                continue
            return

    def parse(self) -> ConfFile:
        conf = ConfFile()
        parts = conf._parts
        s, n = self.s, self.n
        raw_start = 0
        while True:
            # Raw text: blanks, comments, newlines and ';' between statements.
            while True:
                self.skip_blanks()
                self.skip_comment()
                if self.i < n and s[self.i] in "\n;":
                    self.i += 1
                    continue
                break
            if self.i >= n:
                break
            start = self.i
            if raw_start < start:
                parts.append(s[raw_start:start])
            name = self.name()
            self.skip_blanks()
            if self.i >= n or s[self.i] != "=":
                raise self.fail(f"expected '=' after {name!r}, found {self.here()}")
            self.i += 1
            self.skip_blanks()
            value = self.value()
            end = self.i
            self.skip_blanks()
            self.skip_comment()
            if self.i < n and s[self.i] not in "\n;":
                raise self.fail(f"expected the end of the statement, found {self.here()}")
            parts.append(ConfEntry(name, value, self.line_col(start)[0], s[start:end]))
            raw_start = end
        if raw_start < n:
            parts.append(s[raw_start:])
        return conf

    def name(self) -> str:
        s, i, n = self.s, self.i, self.n
        c = s[i]
        if not (c.isascii() and (c.isalpha() or c == "_")):
            raise self.fail(f"expected a name, found {self.here()}")
        j = i + 1
        while j < n and s[j].isascii() and (s[j].isalnum() or s[j] == "_"):
            j += 1
        self.i = j
        return s[i:j]

    def value(self) -> ConfValue:
        if self.i >= self.n:
            raise self.fail("expected a value, found end of file")
        c = self.s[self.i]
        if c == "[":
            return self.list_value()
        return self.scalar()

    def scalar(self) -> int | str:
        s, i, n = self.s, self.i, self.n
        c = s[i]
        if c in "\"'":
            if s.startswith('"""', i):
                end = s.find('"""', i + 3)
                if end < 0:
                    raise self.fail('unterminated """ string', i)
                self.i = end + 3
                return s[i + 3:end]
            j = i + 1
            while j < n and s[j] != c and s[j] != "\n":
                j += 1
            if j >= n or s[j] != c:
                raise self.fail(f"unterminated string (no closing {c})", i)
            self.i = j + 1
            return s[i + 1:j]
        if c in "+-" or c.isdigit():
            j = i + 1 if c in "+-" else i
            k = j
            while k < n and s[k].isascii() and s[k].isdigit():
                k += 1
            if k == j:
                raise self.fail(f"expected digits after {c!r}", i)
            if k < n and (s[k].isalnum() or s[k] in "._"):
                raise self.fail(f"malformed number {s[i:k + 1]!r}", i)
            self.i = k
            return int(s[i:k])
        raise self.fail(f"expected a value (number, string or list), found {self.here()}")

    def list_value(self) -> list[ConfValue]:
        start = self.i
        self.i += 1
        items: list[ConfValue] = []
        while True:
            self.skip_space_and_comments()
            if self.i >= self.n:
                raise self.fail("unterminated list (no closing ']')", start)
            if self.s[self.i] == "]":
                self.i += 1
                return items
            if self.s[self.i] == "[":
                raise self.fail("lists cannot be nested")
            items.append(self.scalar())
            self.skip_space_and_comments()
            if self.i >= self.n:
                raise self.fail("unterminated list (no closing ']')", start)
            if self.s[self.i] == ",":
                self.i += 1
            elif self.s[self.i] == "]":
                continue
            else:
                raise self.fail(f"expected ',' or ']' in the list, found {self.here()}")
