"""The ``virtkit`` command against ``xen:///`` in dom0, in virsh's formats,
compared with what xl and xenstore report."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Iterator

import pytest

import virtkit

from .guests import (clean_dom0, dom0_ready, max_memory_ok, pv_xml, sh, wait_console, wait_for,  # noqa: F401
                     xl_list, xl_uuid, xl_vcpus, xs_read)


def vk(*args: str) -> str:
    return sh(["virtkit", "-c", "xen:///", *args])


def fields(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines())
            if k.strip()}


@pytest.fixture(scope="module")
def guest() -> Iterator[virtkit.Domain]:
    """One running guest for the module (a start costs seconds under TCG)."""
    with virtkit.open("xen:///") as c:
        dom = c.define_domain(pv_xml("vkt-cli", vcpus=2, tick=1))
        dom.start()
        wait_console("vkt-cli", r"VIRTKIT-TICK n=1 ")
        yield dom
    clean_dom0()


def test_list_dominfo_vcpuinfo_vcpupin_setmem(guest: virtkit.Domain) -> None:
    conn = guest.connection
    conn.define_domain(pv_xml("vkt-cli-off"))
    xl = xl_list()
    rows = [ln.split() for ln in vk("list").splitlines()[2:] if ln.strip()]
    assert rows[0] == ["0", "Domain-0", "running"]
    assert [(int(r[0]), r[1]) for r in rows] == sorted((v["id"], k) for k, v in xl.items())
    assert rows[1][2] in ("running", "idle")
    every = [ln.split() for ln in vk("list", "--all").splitlines()[2:] if ln.strip()]
    assert ["-", "vkt-cli-off", "shut", "off"] in every

    info = fields(vk("dominfo", "vkt-cli"))
    assert info["Id"] == str(xl["vkt-cli"]["id"]) and info["Name"] == "vkt-cli"
    assert info["UUID"] == xl_uuid("vkt-cli") and info["OS Type"] == "linux"
    assert info["State"] in ("running", "idle") and info["Persistent"] == "yes"
    assert info["CPU(s)"] == str(xl_list()["vkt-cli"]["vcpus"])
    # xl prints MiB rounded down; the hypervisor counts pages.
    assert int(info["Used memory"][:-4]) // 1024 == xl_list()["vkt-cli"]["mem"]
    assert info["Max memory"].endswith(" KiB") and max_memory_ok(
        int(info["Max memory"][:-4]), int(xs_read(f"/local/domain/{guest.id}/memory/static-max") or 0))

    # vcpuinfo: one block per vCPU, affinity as y/- per host CPU (xl: "all").
    blocks = [fields(b) for b in vk("vcpuinfo", "vkt-cli").strip().split("\n\n")]
    assert [b["VCPU"] for b in blocks] == ["0", "1"]
    assert [b["CPU Affinity"] for b in blocks] == ["yy", "yy"]
    assert [x["hard"] for x in xl_vcpus("vkt-cli")] == ["all", "all"]
    assert all(b["State"] in ("running", "blocked") and int(b["CPU"]) in (0, 1) for b in blocks)

    vk("vcpupin", "vkt-cli", "0", "1")
    assert [x["hard"] for x in xl_vcpus("vkt-cli")] == ["1", "all"]
    blocks = [fields(b) for b in vk("vcpuinfo", "vkt-cli").strip().split("\n\n")]
    assert [b["CPU Affinity"] for b in blocks] == ["-y", "yy"]
    assert blocks[0]["CPU"] == "1"

    vk("setmem", "vkt-cli", "98304")
    assert xs_read(f"/local/domain/{guest.id}/memory/target") == "98304"
    wait_for("the balloon", lambda: xl_list()["vkt-cli"]["mem"] <= 97)
    assert int(fields(vk("dominfo", "vkt-cli"))["Used memory"][:-4]) // 1024 == \
        xl_list()["vkt-cli"]["mem"]

    # Errors as virsh prints them.
    proc = subprocess.run(["virtkit", "-c", "xen:///", "dominfo", "vkt-nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("error: ")


def test_console_shows_the_guest_and_ctrl_bracket_leaves(guest: virtkit.Domain) -> None:
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("virtkit", ["virtkit", "-c", "xen:///", "console", "vkt-cli"])
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while not re.search(rb"VIRTKIT-TICK n=\d+", seen) and time.monotonic() < deadline:
            if select.select([fd], [], [], 1)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        assert re.search(rb"VIRTKIT-TICK n=\d+", seen), seen[-2000:]
        os.write(fd, b"\x1d")  # Ctrl+]
        deadline = time.monotonic() + 20
        status = None
        while status is None and time.monotonic() < deadline:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(raw)
            else:
                if select.select([fd], [], [], 0.2)[0]:
                    try:
                        seen += os.read(fd, 4096)
                    except OSError:
                        pass
        assert status == 0, seen[-2000:]
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
