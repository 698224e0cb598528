"""Helpers and fixtures for the tests run inside dom0 (see the package docstring).

The test guest is the image's PV guest (``/var/lib/virtkit/guest-vmlinux`` and
``guest-initrd.gz``): it prints ``VIRTKIT-XEN-GUEST-READY`` once booted,
``VIRTKIT-TICK n=N`` every ``virtkit.tick`` seconds, and a marker when asked to
power off or reboot; xenconsoled logs its console to
``/var/log/xen/console/guest-NAME.log``. Facts are checked against what ``xl``,
xenstore and the guest itself say, not only against virtkit's word.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

import virtkit

GUEST_DIR = "/var/lib/virtkit"
CONSOLE_DIR = "/var/log/xen/console"
READY = "VIRTKIT-XEN-GUEST-READY"
PREFIX = "vkt-"  # every domain and config file the dom0 tests make

T = TypeVar("T")


def sh(cmd: str | list[str], *, check: bool = True, timeout: float = 300,
       user: str | None = None) -> str:
    """Run a command in dom0 and return its standard output."""
    argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd!r} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def pv_xml(name: str, *, memory: int = 131072, vcpus: int = 1, tick: int = 0,
           uuid: str | None = None, devices: str = "", extra_args: str = "",
           after_os: str = "") -> str:
    """Domain XML of the PV test guest (``extra_args`` appended to its kernel's
    command line, ``after_os`` elements such as ``<on_crash>`` after ``<os>``)."""
    uuid_el = f"<uuid>{uuid}</uuid>" if uuid else ""
    args = f"console=hvc0 quiet panic=-1 virtkit.tick={tick} {extra_args}".strip()
    return (f"<domain type='xen'><name>{name}</name>{uuid_el}<memory>{memory}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type>linux</type>"
            f"<kernel>{GUEST_DIR}/guest-vmlinux</kernel><initrd>{GUEST_DIR}/guest-initrd.gz</initrd>"
            f"<cmdline>{args}</cmdline></os>{after_os}"
            f"<devices><console type='pty'/>{devices}</devices></domain>")


def xl_config(name: str, *, memory_mib: int = 128, vcpus: int = 1, tick: int = 0) -> str:
    """An xl config of the PV test guest, as one would write by hand."""
    return (f'name = "{name}"\ntype = "pv"\nmemory = {memory_mib}\nvcpus = {vcpus}\n'
            f'kernel = "{GUEST_DIR}/guest-vmlinux"\nramdisk = "{GUEST_DIR}/guest-initrd.gz"\n'
            f'extra = "console=hvc0 quiet panic=-1 virtkit.tick={tick}"\n')


#: What libxl adds to a domain's maximum in the hypervisor (LIBXL_MAXMEM_CONSTANT, KiB):
#: the hypervisor's max_pages, which hypercalls read, is xenstore's static-max plus this.
LIBXL_SLACK_KIB = 1024


def max_memory_ok(reported: int, static_max_kib: int) -> bool:
    """A maximum as virtkit reports it: xenstore's static-max (xenstore + xl), or the
    hypervisor's max_pages when the hypercall backend answers (libvirt 0.2.2's
    reading), which libxl keeps LIBXL_SLACK_KIB above it."""
    return reported in (static_max_kib, static_max_kib + LIBXL_SLACK_KIB)


def xl_list() -> dict[str, dict[str, Any]]:
    """``xl list``: name -> id, mem (MiB), vcpus, state letters, time."""
    out = {}
    for line in sh("xl list").splitlines()[1:]:
        f = line.split()
        out[" ".join(f[:-5])] = {"id": int(f[-5]), "mem": int(f[-4]), "vcpus": int(f[-3]),
                                 "state": f[-2], "time": float(f[-1])}
    return out


def xl_vcpus(name: str) -> list[dict[str, Any]]:
    """``xl vcpu-list NAME``: vcpu, cpu (-1 when none), state, hard affinity."""
    rows = []
    for line in sh(["xl", "vcpu-list", name]).splitlines()[1:]:
        f = line.split()
        slash = f.index("/")
        rows.append({"vcpu": int(f[2]), "cpu": int(f[3]) if f[3].isdigit() else -1,
                     "state": f[4], "hard": f[slash - 1]})
    return rows


def xl_uuid(name: str) -> str:
    return str(json.loads(sh(["xl", "list", "-l", name]))[0]["config"]["c_info"]["uuid"])


def xs_read(path: str) -> str | None:
    proc = subprocess.run(["xenstore-read", path], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def console_log(name: str) -> str:
    try:
        with open(f"{CONSOLE_DIR}/guest-{name}.log", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


#: Upper bounds for waits (never timing assertions): TCG inside a loaded machine
#: was measured 3-5 times slower than on a quiet one.
WAIT = 400.0


def wait_for(what: str, check: Callable[[], T | None], timeout: float = WAIT,
             interval: float = 0.25) -> T:
    """Poll ``check`` until it returns something true; AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_console(name: str, pattern: str, *, count: int = 1, timeout: float = WAIT) -> list[str]:
    """Wait until guest NAME's console log has ``count`` lines matching ``pattern``."""
    def found() -> list[str] | None:
        lines = re.findall(f".*(?:{pattern}).*", console_log(name))
        return lines if len(lines) >= count else None
    try:
        return wait_for(f"{count} line(s) matching {pattern!r} on {name}'s console", found,
                        timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; console log:\n{console_log(name)[-2000:]}") from None


def last_tick(name: str) -> int:
    ticks = re.findall(r"VIRTKIT-TICK n=(\d+)", console_log(name))
    return int(ticks[-1]) if ticks else -1


def clean_dom0() -> list[str]:
    """Destroy every test domain, remove their configs; return the names found running."""
    left = [n for n in xl_list() if n.startswith(PREFIX)]
    for name in left:
        subprocess.run(["xl", "destroy", name], capture_output=True)
    for entry in os.listdir("/etc/xen"):
        if entry.startswith(PREFIX):
            os.unlink(f"/etc/xen/{entry}")
    for entry in os.listdir(CONSOLE_DIR) if os.path.isdir(CONSOLE_DIR) else ():
        if entry.startswith(f"guest-{PREFIX}"):  # a later guest of that name starts afresh
            os.unlink(f"{CONSOLE_DIR}/{entry}")
    if os.path.isdir("/etc/xen/auto"):
        for entry in os.listdir("/etc/xen/auto"):
            if entry.startswith(PREFIX):
                os.unlink(f"/etc/xen/auto/{entry}")
    return left


@pytest.fixture
def conn() -> Iterator[virtkit.Connection]:
    """``xen:///`` as root in dom0 (no xend here: xenstore and xl serve it). After the
    test, test domains still running are destroyed and their configs removed."""
    with virtkit.open("xen:///") as c:
        yield c
    clean_dom0()


@pytest.fixture(scope="session", autouse=True)
def dom0_ready() -> None:
    """What the guests' devices need in dom0: loop devices for file-backed disks
    (Xen's block hotplug script sets up a loop device), a bridge for vifs, and
    the ``ip`` and ``brctl`` that Xen's vif-bridge script runs (dom0's minbase
    has no iproute2: busybox's applets, linked into /usr/local/sbin at run time)."""
    sh("modprobe loop")
    for tool in ("ip", "brctl"):
        if shutil.which(tool) is None:
            os.symlink(shutil.which("busybox") or "/bin/busybox", f"/usr/local/sbin/{tool}")
    # dom0's minbase has no iproute2: busybox's ip applet.
    if subprocess.run(["busybox", "ip", "link", "show", "xenbr0"],
                      capture_output=True).returncode != 0:
        sh("busybox brctl addbr xenbr0 && busybox ip link set xenbr0 up")
    clean_dom0()
