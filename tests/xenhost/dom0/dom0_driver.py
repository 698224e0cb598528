"""``xen:///`` as root in a dom0 without xend: xenstore + xl (+ /etc/xen) serve it.

Run inside dom0 by tests/xenhost/test_dom0.py. Every fact virtkit reports is
compared with what xl, xenstore or the guest's own console say.
"""

from __future__ import annotations

import os
import re

import pytest

import virtkit
from virtkit import DomainState
from virtkit.xml.capabilities import parse_capabilities
from virtkit.xml.domain import parse_domain

from .guests import (READY, clean_dom0, conn, dom0_ready, last_tick, max_memory_ok,  # noqa: F401
                     pv_xml, sh, wait_console,
                     wait_for, xl_config, xl_list, xl_uuid, xl_vcpus, xs_read)

ACTIVE = (DomainState.RUNNING, DomainState.BLOCKED)


def test_domain_started_by_hand_with_xl_is_listed_and_read(conn: virtkit.Connection) -> None:
    name = "vkt-hand"
    with open("/tmp/vkt-hand.cfg", "w") as f:  # outside /etc/xen: not a definition
        f.write(xl_config(name, vcpus=2))
    sh("xl create /tmp/vkt-hand.cfg")
    row = xl_list()[name]
    dom = next(d for d in conn.list_all_domains() if d.name == name)
    assert dom.id == row["id"] and dom.id in conn.list_domain_ids()
    assert dom.uuid_string == xl_uuid(name)
    assert conn.lookup_domain_by_id(row["id"]) == dom == conn.lookup_domain_by_name(name)
    assert conn.lookup_domain_by_uuid_string(dom.uuid_string) == dom
    assert not dom.is_persistent() and name not in conn.list_defined_domains()
    info = dom.info()
    assert info.state in ACTIVE
    assert info.memory // 1024 == xl_list()[name]["mem"]  # xl: MiB rounded down
    assert max_memory_ok(info.max_memory,
                         int(xs_read(f"/local/domain/{dom.id}/memory/static-max") or 0))
    # Online vCPUs, as xl counts them (the guest brings its second one up while it boots).
    assert info.nr_virt_cpu == xl_list()[name]["vcpus"] or \
        dom.info().nr_virt_cpu == xl_list()[name]["vcpus"]
    assert dom.os_type() == "linux"
    tty = xs_read(f"/local/domain/{dom.id}/console/tty")
    assert tty and dom.console_path() == tty
    config = parse_domain(dom.xml_desc())
    assert (config.name, config.id, config.uuid, config.vcpus) == (name, dom.id, dom.uuid, 2)
    dom.destroy()
    assert name not in xl_list()
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name(name)
    os.unlink("/tmp/vkt-hand.cfg")


def test_define_writes_an_xl_config_atomically_and_undefine_removes_it(
        conn: virtkit.Connection) -> None:
    name = "vkt-def"
    dom = conn.define_domain(pv_xml(name, vcpus=2))
    path = f"/etc/xen/{name}.cfg"
    text = open(path).read()
    assert re.search(rf'^name = "{name}"$', text, re.M), text
    assert re.search(r"^memory = 128$", text, re.M) and re.search(r"^vcpus = 2$", text, re.M), text
    assert f'uuid = "{dom.uuid_string}"' in text
    # xl itself accepts the file as it is.
    assert f'"name": "{name}"' in sh(["xl", "create", "--dryrun", "-q", path])
    before = os.stat(path).st_ino
    conn.define_domain(pv_xml(name, vcpus=1, uuid=dom.uuid_string))
    assert os.stat(path).st_ino != before, "a redefinition replaces the file by a rename"
    assert re.search(r"^vcpus = 1$", open(path).read(), re.M)
    assert sorted(e for e in os.listdir("/etc/xen") if e.startswith("vkt-") or "vkt-" in e) \
        == [f"{name}.cfg"], "no temporary file left behind"
    assert dom.info().state == DomainState.SHUTOFF and dom.is_persistent()
    dom.autostart = True
    assert os.path.realpath(f"/etc/xen/auto/{name}.cfg") == path
    dom.autostart = False
    assert not os.path.lexists(f"/etc/xen/auto/{name}.cfg")
    dom.undefine()
    assert not os.path.exists(path)
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name(name)


def test_lifecycle_memory_vcpus_and_pinning_of_a_pv_guest(conn: virtkit.Connection) -> None:
    name = "vkt-life"
    dom = conn.define_domain(pv_xml(name, vcpus=2))
    dom.start()
    row = xl_list()[name]
    assert dom.id == row["id"] > 0 and dom.info().state in ACTIVE
    wait_console(name, READY)

    # suspend / resume: the hypervisor's pause flag, as xl shows it.
    dom.suspend()
    assert "p" in xl_list()[name]["state"] and dom.info().state == DomainState.PAUSED
    dom.resume()
    assert "p" not in xl_list()[name]["state"] and dom.info().state in ACTIVE

    # Memory: the balloon target in xenstore, then the guest gives the pages back.
    dom.set_memory(98304)
    assert xs_read(f"/local/domain/{dom.id}/memory/target") == "98304"
    wait_for("the guest's balloon to reach 96 MiB", lambda: xl_list()[name]["mem"] <= 97)
    assert dom.info().memory // 1024 == xl_list()[name]["mem"]
    dom.set_max_memory(114688)
    assert xs_read(f"/local/domain/{dom.id}/memory/static-max") == "114688"
    assert max_memory_ok(dom.info().max_memory, 114688)
    assert max_memory_ok(dom.max_memory(), 114688)
    assert re.search(r"^maxmem = 112$", open(f"/etc/xen/{name}.cfg").read(), re.M)

    # vCPUs: offline one (the guest takes it down), then back.
    vcpus = dom.vcpus()
    assert [v.number for v in vcpus] == [0, 1]
    dom.set_vcpus(1)
    assert xs_read(f"/local/domain/{dom.id}/cpu/1/availability") == "offline"
    wait_for("vCPU 1 to go offline", lambda: dom.info().nr_virt_cpu == 1)
    assert xl_list()[name]["vcpus"] == 1
    assert dom.vcpus()[1].state == virtkit.VcpuState.OFFLINE
    # Back to 2: the request reaches xenstore (the test guest has no udev to online
    # a hot-added CPU, so it stays down inside the guest).
    dom.set_vcpus(2)
    assert xs_read(f"/local/domain/{dom.id}/cpu/1/availability") == "online"

    # Pinning: what xl vcpu-list shows, and remembered in the config file.
    ncpus = conn.get_node_info().cpus
    assert ncpus == 2
    dom.pin_vcpu(1, "1")
    assert xl_vcpus(name)[1]["hard"] == "1"
    assert dom.vcpus()[1].affinity == (False, True)
    assert "vcpupin" in dom.xml_desc()
    assert re.search(r"^cpus = \[.*\"1\".*\]$", open(f"/etc/xen/{name}.cfg").read(), re.M)

    # The console: xenconsoled's pty, from xenstore.
    assert dom.console_path() == xs_read(f"/local/domain/{dom.id}/console/tty")
    live = parse_domain(dom.xml_desc())
    assert live.id == dom.id and live.current_memory_kib == 98304

    # Reboot: written to control/shutdown, the guest's kernel reboots, xl starts it again.
    old_id = dom.id
    dom.reboot()
    wait_console(name, "VIRTKIT-XEN-GUEST-REBOOT")
    wait_for("the rebooted guest to run again",
             lambda: xl_list().get(name, {}).get("id", old_id) != old_id)
    dom = conn.lookup_domain_by_name(name)
    assert dom.id == xl_list()[name]["id"] != old_id

    # Destroy of a running domain; the definition stays.
    dom.destroy()
    assert name not in xl_list() and name in conn.list_defined_domains()
    assert dom.state() == DomainState.SHUTOFF and dom.id == -1 and dom.is_persistent()
    dom.undefine()


def test_save_restore_and_disk_hotplug(conn: virtkit.Connection, tmp_path: object) -> None:
    name = "vkt-save"
    dom = conn.create_domain(pv_xml(name, tick=1))
    assert not dom.is_persistent()
    wait_console(name, r"VIRTKIT-TICK n=2 ")

    # Disk hot-plug: the guest's blkfront connects (its frontend state 4 in xenstore).
    sh("truncate -s 16M /tmp/vkt-disk.img")
    disk = ("<disk type='file' device='disk'><source file='/tmp/vkt-disk.img'/>"
            "<target dev='xvdb'/></disk>")
    dom.attach_device(disk)
    front = f"/local/domain/{dom.id}/device/vbd/51728/state"
    wait_for("the guest's blkfront to connect", lambda: xs_read(front) == "4")
    assert any(d.target_dev == "xvdb" for d in parse_domain(dom.xml_desc()).disks)
    dom.detach_device(disk)
    wait_for("the disk to go", lambda: xs_read(front) is None)
    assert not any(d.target_dev == "xvdb" for d in parse_domain(dom.xml_desc()).disks)
    os.unlink("/tmp/vkt-disk.img")

    # Save: the domain goes; restore: the guest goes on counting where it was.
    path = "/var/tmp/vkt-save.save"  # on disk: /tmp is a tmpfs in 512 MiB of dom0
    dom.save(path)
    assert name not in xl_list() and os.path.getsize(path) > 64 * 2**20
    before = last_tick(name)
    restored = conn.restore_domain(path)
    assert restored.uuid == dom.uuid and restored.id == xl_list()[name]["id"]
    wait_console(name, rf"VIRTKIT-TICK n={before + 2} ")
    os.unlink(path)

    # Shutdown: written to control/shutdown, the guest powers itself off.
    restored.shutdown()
    wait_console(name, "VIRTKIT-XEN-GUEST-POWEROFF")
    wait_for("the domain to go", lambda: name not in xl_list())
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name(name)  # transient: gone with its last run


def test_capabilities_and_node_info_on_the_nested_cpu(conn: virtkit.Connection) -> None:
    info = dict(line.split(":", 1) for line in sh("xl info").splitlines() if ":" in line)
    info = {k.strip(): v.strip() for k, v in info.items()}
    # The nested host's CPU has no VME (word 0, bit 1 of Xen's featureset).
    assert not int(info["hw_caps"].split(":")[0], 16) & 2, info["hw_caps"]
    caps = parse_capabilities(conn.get_capabilities())
    assert caps.host_arch == "x86_64"
    assert "vme" not in caps.host_features and "lm" in caps.host_features
    kinds = {(g.os_type, g.arch) for g in caps.guests}
    assert ("xen", "x86_64") in kinds and ("hvm", "x86_64") in kinds
    node = conn.get_node_info()
    assert node.cpus == int(info["nr_cpus"]) and node.memory // 1024 == int(info["total_memory"])
    major, minor = int(info["xen_major"]), int(info["xen_minor"])
    assert conn.get_version() // 1000 == major * 1000 + minor == 4017
    assert conn.get_type() == "Xen"
