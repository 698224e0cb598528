"""Interface hot-plug on ``xen:///`` (xl's network-attach/-detach, the config
file's ``vif`` list) into the real PV guest, with dom0's bridge ``xenbr0``.

Run inside dom0 by tests/xenhost/test_dom0.py. What counts is what Xen and the
guest say: the guest's netfront writes its frontend state (4, connected) to
xenstore, dom0's backend and hotplug script theirs, and the backend's
``vifD.N`` is a port of the bridge.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import virtkit
from virtkit.xml.domain import parse_domain

from .guests import (clean_dom0, conn, dom0_ready, pv_xml, sh, wait_for,  # noqa: F401
                     xl_list, xs_read)

BRIDGE = "xenbr0"
MAC_A = "00:16:3e:5a:00:0a"
MAC_B = "00:16:3e:5a:00:0b"


def nic_xml(mac: str) -> str:
    return (f"<interface type='bridge'><source bridge='{BRIDGE}'/>"
            f"<mac address='{mac}'/></interface>")


def bridge_ports() -> set[str]:
    return set(os.listdir(f"/sys/class/net/{BRIDGE}/brif"))


def vif_connected(domid: int, devid: int) -> bool:
    """The guest's netfront and dom0's netback both connected (state 4), and
    the hotplug script put the backend's interface on the bridge."""
    front = f"/local/domain/{domid}/device/vif/{devid}"
    back = f"/local/domain/0/backend/vif/{domid}/{devid}"
    return (xs_read(f"{front}/state") == "4" and xs_read(f"{back}/state") == "4"
            and xs_read(f"{back}/hotplug-status") == "connected"
            and f"vif{domid}.{devid}" in bridge_ports())


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virtkit", "-c", "xen:///", *args], capture_output=True, text=True,
                          timeout=300)


def test_nic_hotplug_into_a_pv_guest_and_into_its_definition(
        conn: virtkit.Connection, tmp_path: Path) -> None:
    name = "vkt-nic"
    path = f"/etc/xen/{name}.cfg"
    dom = conn.define_domain(pv_xml(name))

    # The CLI, into the inactive domain's definition: the file's vif list, which xl reads.
    nic_b = tmp_path / "nic-b.xml"
    nic_b.write_text(nic_xml(MAC_B))
    out = cli("attach-device", name, str(nic_b))
    assert out.returncode == 0 and "Device attached successfully" in out.stdout, out
    assert re.search(rf'^vif = \[ *"mac={MAC_B},bridge={BRIDGE}" *\]$', open(path).read(),
                     re.M), open(path).read()
    assert MAC_B in sh(["xl", "create", "--dryrun", "-q", path])
    assert [(n.mac, n.source) for n in parse_domain(dom.xml_desc()).interfaces] == \
        [(MAC_B, BRIDGE)]
    # ... and the start has it: the guest's netfront connects to it.
    dom.start()
    domid = dom.id
    wait_for("the guest's netfront to connect", lambda: vif_connected(domid, 0))
    assert xs_read(f"/local/domain/{domid}/device/vif/0/mac") == MAC_B

    # The API, into the running guest: its netfront connects, vifD.1 joins the bridge.
    dom.attach_device(nic_xml(MAC_A))
    wait_for("the guest's second netfront to connect", lambda: vif_connected(domid, 1))
    assert xs_read(f"/local/domain/{domid}/device/vif/1/mac") == MAC_A
    assert xs_read(f"/local/domain/0/backend/vif/{domid}/1/bridge") == BRIDGE
    nics = parse_domain(dom.xml_desc()).interfaces
    assert [(n.type, n.mac, n.source, n.target_dev) for n in nics] == \
        [("bridge", MAC_B, BRIDGE, f"vif{domid}.0"), ("bridge", MAC_A, BRIDGE, f"vif{domid}.1")]
    assert MAC_A not in open(path).read(), "a live attach, not the definition"

    # A second interface with that MAC: refused before xl runs, a clear CLI error.
    nic_a = tmp_path / "nic-a.xml"
    nic_a.write_text(nic_xml(MAC_A))
    twice = cli("attach-device", name, str(nic_a))
    assert twice.returncode == 1 and "Traceback" not in twice.stderr, twice
    assert f"already has an interface with MAC {MAC_A}" in twice.stderr, twice.stderr
    assert len(sh(["xl", "network-list", name]).splitlines()) == 3, "still two interfaces"

    # The CLI, out of the running guest: the frontend goes, the port leaves the bridge.
    out = cli("detach-device", name, str(nic_a))
    assert out.returncode == 0 and "Device detached successfully" in out.stdout, out
    wait_for("the interface to go", lambda: xs_read(f"/local/domain/{domid}/device/vif/1")
             is None and f"vif{domid}.1" not in bridge_ports())
    assert [n.mac for n in parse_domain(dom.xml_desc()).interfaces] == [MAC_B]
    assert vif_connected(domid, 0), "the other interface stays"
    dom.destroy()
    assert not {p for p in bridge_ports() if p.startswith(f"vif{domid}.")}

    # The API, out of the definition.
    dom.detach_device(nic_xml(MAC_B))
    assert not re.search(r"^vif\b", open(path).read(), re.M), open(path).read()
    assert not parse_domain(dom.xml_desc()).interfaces
    dom.undefine()
