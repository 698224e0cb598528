"""The hand-written stub python/virtkit/_core.pyi matches the built module."""

from __future__ import annotations

import subprocess
import sys


def test_stub_matches_the_built_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "virtkit._core"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stub_is_shipped_with_the_package() -> None:
    import virtkit

    from pathlib import Path

    package = Path(virtkit.__file__).parent
    assert (package / "_core.pyi").is_file()
    assert (package / "py.typed").is_file()
