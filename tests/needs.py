"""Loud requirements: a test that needs something this machine lacks fails and
says what is missing (and which package brings it), instead of skipping."""

from __future__ import annotations

import shutil

import pytest


def program(name: str, package: str) -> str:
    """The path of ``name``; the test fails when it is not installed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"this test needs '{name}' (Debian package {package}), which is not installed; "
                    f"./scripts/test installs it", pytrace=False)
    return path
