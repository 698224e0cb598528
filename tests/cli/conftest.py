"""Fixtures for the command-line tests (helpers are in ``_helpers``)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest


@pytest.fixture
def session() -> Iterator[Callable[..., tuple[str, str, bool]]]:
    """``session(line, uri=..., quiet=...)`` runs a command string in-process and
    returns (stdout, stderr, ok)."""
    from virtkit.cli.main import run_line
    from virtkit.cli.session import QuitRequested, Session

    opened: list[Session] = []

    def go(line: str, uri: str = "test:///default", **kw: object) -> tuple[str, str, bool]:
        out, err = io.StringIO(), io.StringIO()
        s = Session(uri=uri, out=out, err=err, **kw)  # type: ignore[arg-type]
        opened.append(s)
        try:
            ok = run_line(s, line)
        except QuitRequested:
            ok = True
        return out.getvalue(), err.getvalue(), ok

    yield go
    for s in opened:
        s.close()
