"""A plain pure-Python recursive S-expression parser: the baseline peer.

It reads the same dialect as virtkit (bare atoms, quoted strings with
backslash escapes) and builds nested lists of str, recursing once per list.
"""

from __future__ import annotations


def parse(text: str) -> object:
    value, pos = _parse(text, _skip(text, 0))
    return value


def _skip(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _parse(text: str, pos: int) -> tuple[object, int]:
    c = text[pos]
    if c == "(":
        items = []
        pos = _skip(text, pos + 1)
        while text[pos] != ")":
            item, pos = _parse(text, pos)
            items.append(item)
            pos = _skip(text, pos)
        return items, pos + 1
    if c in "'\"":
        out = []
        pos += 1
        while text[pos] != c:
            if text[pos] == "\\":
                pos += 1
            out.append(text[pos])
            pos += 1
        return "".join(out), pos + 1
    start = pos
    n = len(text)
    while pos < n and text[pos] not in " \t\r\n()":
        pos += 1
    return text[start:pos], pos
