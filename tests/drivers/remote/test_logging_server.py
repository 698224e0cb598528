"""The logging server tool: runnable as a module, one line per call, clean shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from virtkit.drivers.remote.server import CallRecord
from virtkit.errors import NoDomainError

from tests.drivers.remote.logging_server import format_record

REPO = Path(__file__).resolve().parents[3]


def test_format_record() -> None:
    dom = {"name": "fv0", "uuid": bytes(16), "id": 1}
    ok = CallRecord(1, 7, 16, "domain_get_info", {"dom": dom}, {"state": 1})
    assert format_record(ok) == "[conn 1 #7] domain_get_info(dom=fv0) -> ok {'state': 1}"
    failed = CallRecord(2, 3, 23, "domain_lookup_by_name", {"name": "x"},
                        error=NoDomainError("Domain not found"))
    assert format_record(failed) == ("[conn 2 #3] domain_lookup_by_name(name='x') -> "
                                     "NO_DOMAIN: Domain not found")
    void = CallRecord(1, 1, 2, "connect_close", None)
    assert format_record(void) == "[conn 1 #1] connect_close() -> ok"


def test_logging_server_logs_what_virsh_sends(sockdir: Path) -> None:
    virsh = shutil.which("virsh")
    if virsh is None:
        pytest.fail("virsh is not installed (Debian package libvirt-clients)")
    path = sockdir / "log.sock"
    server = subprocess.Popen([sys.executable, "-m", "tests.drivers.remote.logging_server",
                               str(path)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not path.exists() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.05)
        assert path.exists(), server.stderr.read() if server.stderr else ""
        env = dict(os.environ, LC_ALL="C", HOME=str(sockdir))
        result = subprocess.run([virsh, "-c", f"qemu+unix:///session?socket={path}", "list",
                                 "--all"], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=20)
    assert server.returncode == 0, err
    assert not path.exists()
    lines = out.splitlines()
    assert lines[0] == "[conn 1 #0] auth_list() -> ok {'types': [0]}"
    assert "[conn 1 #2] connect_open(name='qemu:///session', flags=0) -> ok" in lines
    assert any(line.startswith("[conn 1 #6] connect_list_all_domains(need_results=1, flags=3)")
               for line in lines)
    assert lines[-1] == "[conn 1 #9] connect_close() -> ok"
