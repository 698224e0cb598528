"""virsh's output formats (today's virsh, libvirt 9), and the JSON documents.

Tables (``list``, ``net-list``) follow virsh's table layout: every cell is
preceded by one space; a column is as wide as its widest cell (header
included, display width), and cells are padded with two more spaces except in
the last column, which is not padded; under the header, a rule of dashes as
long as the sum of (column width + 3). ``--quiet`` drops the header and the
rule, and the widths then count the data cells only.

Key/value reports pad the label to a fixed width and add one space:
``dominfo`` and ``vcpuinfo`` to 15 (so values start at column 17),
``nodeinfo`` to 20.

libvirt 0.2.2's virsh used fixed widths instead (``%3s %-20s %s`` for
``list``, 34 dashes; ``%-20s %-10s %-10s`` for ``net-list`` without the
Persistent column) and ``kB`` for memory; today's layout is what scripts
are written against, so it is the one kept.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["table", "fields", "to_json", "display_width", "cpu_seconds"]


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (wide East Asian characters count two)."""
    if text.isascii():
        return len(text)
    import unicodedata

    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, quiet: bool = False) -> str:
    """A virsh table: header, rule and rows (rows only when ``quiet``)."""
    lines = ([] if quiet else [list(headers)]) + [list(r) for r in rows]
    ncols = len(headers)
    widths = [0] * ncols
    for line in lines:
        for i, cell in enumerate(line):
            w = display_width(cell)
            if w > widths[i]:
                widths[i] = w
    out: list[str] = []
    for n, line in enumerate(lines):
        parts: list[str] = []
        for i, cell in enumerate(line):
            parts.append(" ")
            parts.append(cell)
            if i < ncols - 1:
                parts.append(" " * (widths[i] - display_width(cell) + 2))
        out.append("".join(parts))
        if n == 0 and not quiet:
            out.append("-" * sum(w + 3 for w in widths))
    return "".join(line + "\n" for line in out)


def fields(pairs: Sequence[tuple[str, str]], width: int) -> str:
    """``label`` padded to ``width``, one space, ``value``: one line per pair."""
    return "".join(f"{label:<{width}} {value}\n" for label, value in pairs)


def cpu_seconds(nanoseconds: int) -> str:
    """virsh's CPU time: seconds with one decimal and an ``s``."""
    return f"{nanoseconds / 1e9:.1f}s"


def to_json(document: object) -> str:
    """One JSON document, indented, with a final newline."""
    import json

    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
