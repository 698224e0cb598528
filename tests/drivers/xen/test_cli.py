"""The unchanged command line on ``xen:///?socket=PATH``, against the xend simulator.

One session of the installed ``virtkit`` script (list, define, start,
dominfo, setmem, vcpupin, dumpxml...) in virsh's formats, compared with
``data/cli-session.out`` after masking CPU times and paths. Regenerate with
``VIRTKIT_REGENERATE=1`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli._helpers import REGENERATE, mask, run

from . import corpus
from .xend_simulator import XendSimulator

HERE = Path(__file__).parent / "data"

SESSION = ("list --all; define guest.xml; list --all; start guest; list; dominfo guest; "
           "setmem guest 131072; setmaxmem guest 196608; setvcpus guest 1; dominfo guest; "
           "vcpupin guest 0 2; vcpuinfo guest; suspend guest; domstate guest; list; resume guest; "
           "dumpxml guest; domid guest; domuuid guest; autostart guest; dominfo guest; "
           "attach-device guest disk.xml; nodeinfo; version; destroy guest; "
           "dumpxml --inactive guest; list --all; undefine guest; list --all")


def _check(name: str, text: str) -> None:
    path = HERE / name
    if REGENERATE:
        path.write_text(text)
        return
    assert text == path.read_text(), f"output differs from {path}"


def test_a_virsh_session_over_xend() -> None:
    with XendSimulator() as sim:
        sim.add_sxpr((corpus.SEXPR2XML / "sexpr2xml-curmem.sexpr").read_bytes())
        result = run(["-c", sim.uri, SESSION], cwd=HERE)
        assert result.rc == 0, result.err
        assert result.err == ""
        _check("cli-session.out", mask(result.out).replace(sim.socket_path, "$SOCKET"))


@pytest.mark.parametrize("args,first", [
    (["list"], "error: failed to connect to the hypervisor"),
    (["dominfo", "nosuch"], "error: failed to get domain 'nosuch'"),
])
def test_failures_read_like_virshs(args: list[str], first: str) -> None:
    with XendSimulator() as sim:
        if args == ["list"]:
            sim.refuse()
        result = run(["-c", sim.uri] + args, cwd=HERE)
        assert result.rc == 1 and result.err.splitlines()[0] == first
