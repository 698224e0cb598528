"""Fixture discovery and golden-file checks shared by the XML tests.

Fixtures live in ``data/<kind>/``: ``NAME.xml`` must load, ``NAME-invalid.xml``
must fail with :class:`~virtkit.errors.XMLError` (schema failures are a
subclass), and ``NAME.out.xml`` is the golden canonical output of ``NAME.xml``.
Set ``VIRTKIT_REGENERATE=1`` to rewrite the golden files (review the diff).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).parent / "data"
REGENERATE = os.environ.get("VIRTKIT_REGENERATE") == "1"


def inputs(kind: str, prefix: str | None = None, exclude_prefix: str | None = None) -> list[Path]:
    """Valid input fixtures of ``kind`` (not golden outputs, not ``-invalid``)."""
    return [
        p
        for p in sorted((DATA / kind).glob("*.xml"))
        if not p.name.endswith((".out.xml", "-invalid.xml"))
        and (prefix is None or p.name.startswith(prefix))
        and (exclude_prefix is None or not p.name.startswith(exclude_prefix))
    ]


def invalid(kind: str) -> list[Path]:
    return sorted((DATA / kind).glob("*-invalid.xml"))


def goldens(kind: str) -> list[Path]:
    return sorted((DATA / kind).glob("*.out.xml"))


def golden_path(path: Path) -> Path:
    return path.with_name(path.name[: -len(".xml")] + ".out.xml")


def check_golden(path: Path, output: str) -> None:
    """Compare ``output`` with the golden file of input ``path`` (or rewrite it)."""
    golden = golden_path(path)
    if REGENERATE:
        golden.write_text(output, encoding="utf-8")
        return
    assert golden.exists(), f"{golden.name} is missing: run with VIRTKIT_REGENERATE=1 and review it"
    expected = golden.read_text(encoding="utf-8")
    assert output == expected, f"{path.name}: formatted output differs from {golden.name}"


def ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]
