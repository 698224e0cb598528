"""Regular expressions compiled on first use.

Compiling a pattern costs far more than importing the module that holds it
(``re``'s parser and compiler run in Python), and in a slow place, such as
an emulated Xen dom0, the patterns of the modules a command imports cost a
noticeable share of its start-up, although most are only for error
messages it never sees. :func:`compile` returns a stand-in for
``re.compile(pattern, flags)`` that compiles on its first use.
"""

from __future__ import annotations

import re
from typing import Any, AnyStr

__all__ = ["compile"]


class _Pattern:
    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: str | bytes, flags: int) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern[Any] | None = None

    def __getattr__(self, attr: str) -> Any:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(*self._args)
        return getattr(compiled, attr)

    def __repr__(self) -> str:
        return f"lazy re.compile{self._args!r}"


def compile(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:  # noqa: A001 - re's name
    """``re.compile(pattern, flags)``, compiled when first used."""
    return _Pattern(pattern, flags)  # type: ignore[return-value]
