"""Lifecycle actions and an HVM guest on ``xen:///``.

Run inside dom0 by tests/xenhost/test_dom0.py. ``on_poweroff``, ``on_reboot``
and ``on_crash`` go into the xl config file, and the ``xl`` process watching
the domain carries them out when the real guest powers off, reboots or
crashes (``xl sysrq DOM c``: the PV guest's kernel panics, and Xen's PV
kernel reports the panic as a crash; the guest's command line has
``sysrq_always_enabled``, since Debian's kernels leave sysrq's crash off). The
HVM guest is the same kernel booted directly by QEMU (``qemu-system-xen``, the
device model); its kernel's first lines on the emulated serial port come
minutes later under nested TCG, so the test checks that its vCPU runs.
"""

from __future__ import annotations

import json
import os
import re

import pytest

import virtkit
from virtkit import DomainState
from virtkit.xml.domain import LifecycleAction, parse_domain

from .guests import (GUEST_DIR, READY, clean_dom0, conn, console_log,  # noqa: F401
                     dom0_ready, pv_xml, sh, wait_console, wait_for, xl_list, xs_read)

ACTIVE = (DomainState.RUNNING, DomainState.BLOCKED)


def actions_xml(name: str, poweroff: str, reboot: str, crash: str,
                uuid: str | None = None) -> str:
    return pv_xml(name, uuid=uuid, extra_args="sysrq_always_enabled",
                  after_os=f"<on_poweroff>{poweroff}</on_poweroff>"
                           f"<on_reboot>{reboot}</on_reboot><on_crash>{crash}</on_crash>")


def xl_actions(path: str) -> tuple[str, str, str]:
    """What xl makes of the file's actions (``xl create --dryrun``)."""
    config = json.loads(sh(["xl", "create", "--dryrun", "-q", path]))
    # libxl's JSON leaves out an action at its type's default value, destroy.
    return (config.get("on_poweroff", "destroy"), config.get("on_reboot", "destroy"),
            config.get("on_crash", "destroy"))


def readies(name: str) -> int:
    return console_log(name).count(READY)


def crash(name: str) -> None:
    """Make the guest's kernel panic (sysrq 'c', written to its control/sysrq)."""
    sh(["xl", "sysrq", name, "c"])


def new_id(name: str, old: int) -> int | None:
    """The domain's id once it runs again under another (xl builds it paused first)."""
    row = xl_list().get(name)
    return row["id"] if row is not None and row["id"] != old and \
        ("r" in row["state"] or "b" in row["state"]) else None


def test_lifecycle_actions_are_written_and_honoured(conn: virtkit.Connection) -> None:
    name = "vkt-act"
    path = f"/etc/xen/{name}.cfg"
    dom = conn.define_domain(actions_xml(name, "restart", "destroy", "preserve"))
    text = open(path).read()
    for key, value in (("on_poweroff", "restart"), ("on_reboot", "destroy"),
                       ("on_crash", "preserve")):
        assert re.search(rf'^{key} = "{value}"$', text, re.M), text
    assert xl_actions(path) == ("restart", "destroy", "preserve")
    config = parse_domain(dom.xml_desc())
    assert (config.on_poweroff, config.on_reboot, config.on_crash) == \
        (LifecycleAction.RESTART, LifecycleAction.DESTROY, LifecycleAction.PRESERVE)

    # on_poweroff=restart: the guest powers off, xl starts it again under a new id.
    dom.start()
    first = dom.id
    wait_console(name, READY)
    dom.shutdown()
    wait_console(name, "VIRTKIT-XEN-GUEST-POWEROFF")
    second = wait_for("the domain to come back", lambda: new_id(name, first))
    assert dom.id == second and dom.info().state in ACTIVE
    live = parse_domain(dom.xml_desc())
    assert live.id == second and (live.on_poweroff, live.on_reboot, live.on_crash) == \
        (LifecycleAction.RESTART, LifecycleAction.DESTROY, LifecycleAction.PRESERVE)

    # on_crash=preserve: the crashed domain stays, crashed, with its id.
    crash(name)
    wait_console(name, "sysrq triggered crash")
    wait_for("the domain to be crashed", lambda: "c" in xl_list()[name]["state"])
    assert dom.state() == DomainState.CRASHED and dom.info().state == DomainState.CRASHED
    assert dom.id == second == xl_list()[name]["id"]
    dom.destroy()
    assert name not in xl_list() and dom.state() == DomainState.SHUTOFF and dom.id == -1

    # on_reboot=destroy: the guest reboots, and the domain ends (still defined).
    before = readies(name)
    dom.start()
    wait_console(name, READY, count=before + 1)
    dom.reboot()
    wait_console(name, "VIRTKIT-XEN-GUEST-REBOOT")
    wait_for("the domain to go", lambda: name not in xl_list())
    assert dom.state() == DomainState.SHUTOFF and dom.is_persistent()

    # on_crash=restart: the crashed domain comes back under a new id.
    dom = conn.define_domain(actions_xml(name, "destroy", "restart", "restart",
                                         uuid=dom.uuid_string))
    assert xl_actions(path) == ("destroy", "restart", "restart")
    dom.start()
    first = dom.id
    crash(name)  # the kernel's sysrq watch fires as soon as it is set: no need to wait
    third = wait_for("the crashed domain to come back", lambda: new_id(name, first))
    assert dom.id == third and dom.state() in ACTIVE
    dom.destroy()

    dom.undefine()

    # on_crash=destroy, of a transient domain (whose actions dumpxml reads from
    # libxl's record of it): the crashed domain goes.
    dom = conn.create_domain(actions_xml(name, "destroy", "restart", "destroy"))
    live = parse_domain(dom.xml_desc())
    assert (live.on_poweroff, live.on_reboot, live.on_crash) == \
        (LifecycleAction.DESTROY, LifecycleAction.RESTART, LifecycleAction.DESTROY)
    crash(name)
    wait_for("the crashed domain to go", lambda: name not in xl_list())
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name(name)


HVMLOADER = "/usr/lib/xen/boot/hvmloader"  # not on Debian's path: xl uses its own
DEVICE_MODEL = "/usr/libexec/xen-qemu-system-i386"  # qemu-system-xen's


def hvm_xml(name: str) -> str:
    return (f"<domain type='xen'><name>{name}</name><memory>131072</memory><vcpu>1</vcpu>"
            f"<os><type>hvm</type><loader>{HVMLOADER}</loader>"
            f"<kernel>{GUEST_DIR}/guest-vmlinuz</kernel>"
            f"<initrd>{GUEST_DIR}/guest-initrd.gz</initrd>"
            f"<cmdline>console=ttyS0 panic=-1</cmdline><boot dev='hd'/></os>"
            f"<features><acpi/><apic/><pae/></features>"
            f"<devices><emulator>{DEVICE_MODEL}</emulator><serial type='pty'/>"
            f"<console type='pty'/></devices></domain>")


def test_an_hvm_guest_booted_by_qemu(conn: virtkit.Connection) -> None:
    name = "vkt-hvm"
    path = f"/etc/xen/{name}.cfg"
    dom = conn.define_domain(hvm_xml(name))
    text = open(path).read()
    # xl's HVM keys: kernel/ramdisk/extra are QEMU's direct kernel boot, not the loader.
    assert re.search(r'^builder = "hvm"$', text, re.M), text
    assert re.search(rf'^kernel = "{GUEST_DIR}/guest-vmlinuz"$', text, re.M), text
    assert re.search(rf'^device_model_override = "{DEVICE_MODEL}"$', text, re.M), text
    assert "firmware_override" not in text and HVMLOADER not in text, text
    xl_view = json.loads(sh(["xl", "create", "--dryrun", "-q", path]))
    assert xl_view["c_info"]["type"] == "hvm", xl_view
    assert xl_view["b_info"]["kernel"] == f"{GUEST_DIR}/guest-vmlinuz", xl_view
    assert dom.os_type() == "hvm"

    dom.start()
    domid = dom.id
    row = xl_list()[name]
    assert domid == row["id"] > 0 and dom.info().state in ACTIVE
    assert dom.os_type() == "hvm"
    info = dom.info()
    assert info.nr_virt_cpu == 1 and info.max_memory >= 131072
    # The device model: qemu-system-xen for this domain, booting the kernel itself.
    pid = int(xs_read(f"/local/domain/{domid}/image/device-model-pid") or 0)
    argv = open(f"/proc/{pid}/cmdline").read().split("\0")
    assert os.path.realpath(f"/proc/{pid}/exe") == os.path.realpath(DEVICE_MODEL)
    assert argv[argv.index("-xen-domid") + 1] == str(domid), argv
    assert argv[argv.index("-kernel") + 1] == f"{GUEST_DIR}/guest-vmlinuz", argv
    assert argv[argv.index("-initrd") + 1] == f"{GUEST_DIR}/guest-initrd.gz", argv
    config = parse_domain(dom.xml_desc())
    assert (config.os.type, config.os.kernel, config.os.loader, config.emulator, config.id) == \
        ("hvm", f"{GUEST_DIR}/guest-vmlinuz", HVMLOADER, DEVICE_MODEL, domid)
    # Its serial port is a pty xenstore names (where the guest's kernel writes,
    # minutes later under nested TCG: not waited for); its vCPU runs meanwhile.
    serial = xs_read(f"/local/domain/{domid}/serial/0/tty")
    assert serial and serial.startswith("/dev/pts/")
    spent = info.cpu_time
    wait_for("the HVM guest's vCPU to run", lambda: dom.info().cpu_time > spent + 10**9)

    dom.destroy()
    assert name not in xl_list() and dom.state() == DomainState.SHUTOFF
    wait_for("the device model to exit", lambda: not os.path.exists(f"/proc/{pid}"))
    assert xs_read(f"/local/domain/{domid}/name") is None
    assert parse_domain(dom.xml_desc()).os.type == "hvm"
    dom.undefine()
