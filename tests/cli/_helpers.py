"""Helpers shared by the command-line tests.

End-to-end tests run the installed ``virtkit`` console script as a real
process (``run``), and every run asserts that no Python traceback reached
stderr. In-process tests drive :func:`virtkit.cli.main.run_line` with string
streams (``session``), which is much faster.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
NODES = DATA / "nodes"
XML = DATA / "xml"
STATES_URI = f"test://{NODES / 'states.xml'}"

#: Set to regenerate golden files instead of comparing (review the diff!).
REGENERATE = os.environ.get("VIRTKIT_REGENERATE") == "1"


def virtkit_script() -> str:
    """The installed console script (not a pyenv shim), or a loud failure."""
    scripts = sysconfig.get_path("scripts")
    path = shutil.which("virtkit", path=scripts) or shutil.which("virtkit")
    if path is None:
        pytest.fail("the 'virtkit' console script is not installed: run 'pip install .' first")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI process: no URI defaults, C locale, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTKIT_DEFAULT_URI", "VIRSH_DEFAULT_CONNECT_URI", "LIBVIRT_DEFAULT_URI",
                        "LANGUAGE", "LC_ALL", "LC_MESSAGES")}
    env["LANG"] = "C.UTF-8"
    env.update(extra)
    return env


@dataclass
class Result:
    rc: int
    out: str
    err: str


def run(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | str | None = None,
        stdin: str | None = None, program: str | None = None, timeout: float = 30) -> Result:
    """Run ``virtkit ARGS`` (or ``program ARGS``) and check no traceback escaped."""
    proc = subprocess.run([program or virtkit_script(), *args], capture_output=True, text=True,
                          env=env if env is not None else clean_env(), cwd=cwd,
                          input=stdin if stdin is not None else "", timeout=timeout)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout
    return Result(proc.returncode, proc.stdout, proc.stderr)


_CPU_TIME = re.compile(r"^(CPU time:\s+)\d+\.\ds$", re.M)
_CPU_TIME_NS = re.compile(r'("cpu_time_ns": )\d+')


def mask(text: str) -> str:
    """Hide what changes from run to run: CPU times (they grow while a domain runs)
    and where the checkout is (the API makes file paths absolute)."""
    text = text.replace(str(DATA), "$DATA")
    text = _CPU_TIME.sub(r"\1<seconds>s", text)
    return _CPU_TIME_NS.sub(r"\1<ns>", text)


def check_golden(name: str, actual: str) -> None:
    """Compare ``actual`` with ``golden/NAME`` (or write it under VIRTKIT_REGENERATE=1)."""
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}: run with VIRTKIT_REGENERATE=1 and review it")
    assert actual == path.read_text(), f"output differs from {path}"


def check_golden_errors(name: str, actual: str) -> None:
    """Like check_golden for stderr, but only the first line (the command line's own
    words: a usage error or virsh's context line) must be equal; the lines after it
    quote the API's error, owned by other layers, so only their number is checked."""
    path = GOLDEN / name
    if REGENERATE:
        check_golden(name, actual)
        return
    if not path.exists():
        pytest.fail(f"missing golden file {path}: run with VIRTKIT_REGENERATE=1 and review it")
    expected = path.read_text().splitlines()
    lines = actual.splitlines()
    assert lines[:1] == expected[:1], f"first error line differs from {path}"
    assert len(lines) == len(expected), f"number of error lines differs from {path}"
