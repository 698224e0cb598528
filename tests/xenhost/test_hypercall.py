"""Hypercalls (virtkit._core.XenHypervisor) inside the real Xen 4.17 dom0.

Each test runs Python in dom0 (the wheel built from this checkout) and checks
what the hypercalls answer against what Xen's own toolstack says (``xl info``,
``xl list``, ``xl vcpu-list``, xenstore), and what the guest itself printed.
"""

from __future__ import annotations

import json
import re
import textwrap
import time
from typing import Any

import pytest

from tests.xenhost.harness import DOM0_USER, GUEST_READY_MARKER, XenHost

pytestmark = pytest.mark.xenhost

PRELUDE = """\
import json, sys, time
from virtkit._core import XenHypervisor
from virtkit.errors import XenCallError, VirtSystemError, InvalidArgumentError
hv = XenHypervisor.open()
def dom(i):
    return dict(domid=i.domid, uuid=i.uuid.hex(), state=i.state, flags=i.flags,
                shutdown_reason=i.shutdown_reason, hvm=i.hvm, memory_kib=i.memory_kib,
                max_memory_kib=i.max_memory_kib, online_vcpus=i.online_vcpus,
                vcpus=i.vcpus, cpu_time_ns=i.cpu_time_ns, tot_pages=i.tot_pages)
def vcpu(v):
    return dict(vcpu=v.vcpu, online=v.online, blocked=v.blocked, running=v.running,
                cpu_time_ns=v.cpu_time_ns, cpu=v.cpu, affinity=v.affinity)
def err(fn, *args):
    try:
        fn(*args)
    except (XenCallError, VirtSystemError, InvalidArgumentError) as e:
        return dict(cls=type(e).__name__, errno=getattr(e, "errno", None), code=int(e.code),
                    domain=int(e.domain), str1=e.str1, message=str(e))
    return None
"""


def in_dom0(host: XenHost, body: str, *, user: str = "root", timeout: float = 60) -> Any:
    """Run PRELUDE + body with dom0's python3; body sets ``out``, printed as JSON."""
    code = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    status, stdout, stderr = host.run(["python3", "-c", code], timeout, user=user)
    assert status == 0, f"python3 in dom0 failed ({status}):\n{stdout}{stderr}"
    return json.loads(stdout.strip().splitlines()[-1])


def xl_info(host: XenHost) -> dict[str, str]:
    out = host.check_output(["xl", "info"])
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def xl_list(host: XenHost) -> dict[int, dict[str, Any]]:
    """``xl list -v``: by domid, name, memory (MiB), vCPUs, state letters, UUID."""
    out = host.check_output(["xl", "list", "-v"])
    rows = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        # Name ID Mem VCPUs State Time(s) UUID Reason-Code Security-Label
        rows[int(f[1])] = dict(name=f[0], mem=int(f[2]), vcpus=int(f[3]), state=f[4],
                               uuid=f[6].replace("-", ""))
    return rows


@pytest.fixture
def guests(dom0_virtkit: XenHost) -> Any:
    """Create PV test guests by name; destroyed at the end."""
    made: list[str] = []

    def create(name: str, **config: Any) -> int:
        dom0_virtkit.create_guest(name, memory_mib=128, **config)
        made.append(name)
        return dom0_virtkit.domains()[name]

    yield create
    running = dom0_virtkit.domains()
    for name in made:
        if name in running:
            dom0_virtkit.run(["xl", "destroy", name], timeout=60)


def test_open_detects_the_4_17_interface_in_two_calls(dom0_virtkit: XenHost) -> None:
    out = in_dom0(dom0_virtkit, """
        out = dict(domctl=hv.domctl_version, sysctl=hv.sysctl_version, release=hv.release,
                   probes=hv.probes, page_size=hv.page_size, bufdev=hv.buffer_device, repr=repr(hv))
    """)
    assert (out["domctl"], out["sysctl"], out["release"]) == (0x15, 0x15, "4.17")
    assert out["probes"] == [["sysctl", 0x15, 0], ["domctl", 0x15, 0]]
    assert out["page_size"] == 4096
    assert out["bufdev"] is True, "dom0's kernel has /dev/xen/hypercall: buffers come from it"
    assert out["repr"].startswith("XenHypervisor(xen=4.17, domctl=0x15, sysctl=0x15)")


def test_a_wrong_interface_version_is_refused_with_eacces_and_detection_goes_on(
        dom0_virtkit: XenHost) -> None:
    out = in_dom0(dom0_virtkit, """
        hv2 = XenHypervisor.open(prefer=(0x14, 0x14))
        out = dict(probes=hv2.probes, domctl=hv2.domctl_version, sysctl=hv2.sysctl_version,
                   n=len(hv2.domain_list()))
    """)
    eacces = 13
    assert out["probes"] == [["sysctl", 0x14, eacces], ["sysctl", 0x15, 0],
                             ["domctl", 0x14, eacces], ["domctl", 0x15, 0]]
    assert (out["domctl"], out["sysctl"]) == (0x15, 0x15)
    assert out["n"] >= 1


def test_not_root_is_a_clear_error(dom0_virtkit: XenHost) -> None:
    code = ("from virtkit._core import XenHypervisor\n"
            "from virtkit.errors import VirtSystemError\n"
            "try:\n    XenHypervisor.open()\n"
            "except VirtSystemError as e:\n    print(e.errno, e)\n")
    out = dom0_virtkit.check_output(["python3", "-c", code], user=DOM0_USER)
    assert out.startswith("13 cannot open Xen's privileged command interface /dev/xen/privcmd"), out


def test_xen_version_matches_xl_info(dom0_virtkit: XenHost) -> None:
    out = in_dom0(dom0_virtkit, "out = hv.xen_version()")
    major, minor, extra = out
    assert f"{major}.{minor}{extra}" == xl_info(dom0_virtkit)["xen_version"]
    assert (major, minor) == (4, 17)


def test_physinfo_matches_xl_info(dom0_virtkit: XenHost) -> None:
    info = xl_info(dom0_virtkit)
    out = in_dom0(dom0_virtkit, """
        p = hv.physinfo()
        out = {k: getattr(p, k) for k in ("nr_cpus", "cores_per_socket", "threads_per_core",
               "nr_nodes", "cpu_khz", "total_pages", "free_pages", "total_kib", "free_kib",
               "max_cpu_id", "capabilities", "page_size")}
    """)
    assert out["nr_cpus"] == int(info["nr_cpus"]) == dom0_virtkit.cpus
    assert out["cores_per_socket"] == int(info["cores_per_socket"])
    assert out["threads_per_core"] == int(info["threads_per_core"])
    assert out["nr_nodes"] == int(info["nr_nodes"])
    assert out["cpu_khz"] == round(float(info["cpu_mhz"]) * 1000)  # xl prints kHz / 1000
    assert out["total_kib"] // 1024 == int(info["total_memory"])
    assert out["total_pages"] * 4 == out["total_kib"]
    assert abs(out["free_kib"] // 1024 - int(info["free_memory"])) <= 4
    assert out["max_cpu_id"] >= out["nr_cpus"] - 1
    caps = info["virt_caps"].split()
    assert ("hvm" in caps) == bool(out["capabilities"] & 1)
    assert ("pv" in caps) == bool(out["capabilities"] & 2)
    assert ("hap" in caps) == bool(out["capabilities"] & 8)


def test_domain_list_matches_xl_list(dom0_virtkit: XenHost, guests: Any) -> None:
    host = dom0_virtkit
    guests("vk-hc1")
    guests("vk-hc2", vcpus=2)
    out = in_dom0(host, "out = [dom(i) for i in hv.domain_list()]")
    xl = xl_list(host)
    assert [d["domid"] for d in out] == sorted(xl), (out, xl)
    for d in out:
        row = xl[d["domid"]]
        assert d["memory_kib"] // 1024 == row["mem"], (d, row)
        assert d["online_vcpus"] == row["vcpus"], (d, row)
        assert d["uuid"] == row["uuid"], (d, row)
        assert d["hvm"] is False
        assert d["max_memory_kib"] >= d["memory_kib"]
        letters = row["state"]
        if "p" in letters:
            assert d["state"] == 3
        elif "b" in letters:
            assert d["state"] in (1, 2)  # it may wake between the two reads
    names = {row["name"]: domid for domid, row in xl.items()}
    assert out[0]["domid"] == 0 and xl[0]["name"] == "Domain-0"
    by_id = {d["domid"]: d for d in out}
    assert by_id[names["vk-hc2"]]["vcpus"] == 2
    assert by_id[names["vk-hc1"]]["memory_kib"] // 1024 == 128
    # The UUIDs are xenstore's too (/local/domain/N/vm = /vm/UUID).
    for name in ("vk-hc1", "vk-hc2"):
        vm = host.check_output(["xenstore-read", f"/local/domain/{names[name]}/vm"]).strip()
        assert vm.replace("-", "") == "/vm/" + by_id[names[name]]["uuid"]
    # One domain by id: the same record; a missing one: ESRCH; a bad id: InvalidArgumentError.
    one = in_dom0(host, f"""
        out = dict(one=dom(hv.domain_info({names['vk-hc1']})), missing=err(hv.domain_info, 4000),
                   bad=err(hv.domain_info, 40000), neg=err(hv.domain_info, -1))
    """)
    mine = by_id[names["vk-hc1"]]
    assert {k: one["one"][k] for k in ("domid", "uuid", "memory_kib", "vcpus")} == \
        {k: mine[k] for k in ("domid", "uuid", "memory_kib", "vcpus")}
    missing = one["missing"]
    assert (missing["cls"], missing["errno"], missing["str1"]) == ("XenCallError", 3,
                                                                   "domctl getdomaininfo")
    assert (missing["code"], missing["domain"]) == (15, 1)  # XEN_CALL from XEN
    assert "cannot read domain 4000" in missing["message"]
    assert one["bad"]["cls"] == one["neg"]["cls"] == "InvalidArgumentError"


def test_pause_and_unpause_are_seen_by_xl(dom0_virtkit: XenHost, guests: Any) -> None:
    host = dom0_virtkit
    domid = guests("vk-hc-pause")
    out = in_dom0(host, f"hv.pause({domid}); out = dom(hv.domain_info({domid}))")
    assert out["state"] == 3
    assert "p" in xl_list(host)[domid]["state"]
    out = in_dom0(host, f"hv.unpause({domid}); out = dom(hv.domain_info({domid}))")
    assert out["state"] != 3
    assert "p" not in xl_list(host)[domid]["state"]
    # The guest runs on: its console keeps ticking after the unpause.
    host.wait_guest_console("vk-hc-pause", GUEST_TICK_AFTER(2), timeout=60)


def GUEST_TICK_AFTER(n: int) -> str:
    return rf"VIRTKIT-TICK n=({n}|[{n + 1}-9]|[1-9][0-9]+) "


def test_vcpu_pinning_is_seen_by_xl_vcpu_list(dom0_virtkit: XenHost, guests: Any) -> None:
    host = dom0_virtkit
    domid = guests("vk-hc-pin", vcpus=2)
    out = in_dom0(host, f"""
        out = dict(before=hv.get_vcpu_affinity({domid}, 1),
                   effective=hv.set_vcpu_affinity({domid}, 1, [1]),
                   after=hv.get_vcpu_affinity({domid}, 1),
                   info=vcpu(hv.vcpu_info({domid}, 1)),
                   beyond=err(hv.set_vcpu_affinity, {domid}, 1, [64]),
                   empty=err(hv.set_vcpu_affinity, {domid}, 1, []),
                   novcpu=err(hv.vcpu_info, {domid}, 5))
    """)
    assert out["before"] == [0, 1]
    assert out["effective"] == out["after"] == [1]
    assert out["info"]["affinity"] == [1]
    assert (out["beyond"]["errno"], out["empty"]["errno"]) == (22, 22)
    assert "CPU 64 does not exist" in out["beyond"]["message"]
    assert out["novcpu"]["cls"] == "XenCallError"
    rows = [line.split() for line in host.check_output(["xl", "vcpu-list", "vk-hc-pin"]).splitlines()[1:]]
    # Name ID VCPU CPU State Time(s) Affinity (Hard / Soft)
    hard = {int(r[2]): r[-3] for r in rows}
    assert hard == {0: "all", 1: "1"}, rows
    in_dom0(host, f"hv.set_vcpu_affinity({domid}, 1, [0, 1]); out = 0")
    rows = [line.split() for line in host.check_output(["xl", "vcpu-list", "vk-hc-pin"]).splitlines()[1:]]
    assert {int(r[2]): r[-3] for r in rows} == {0: "all", 1: "all"}


def test_vcpu_info_cpu_time_grows(dom0_virtkit: XenHost, guests: Any) -> None:
    host = dom0_virtkit
    domid = guests("vk-hc-vcpu", vcpus=2)
    host.wait_guest_console("vk-hc-vcpu", GUEST_TICK_AFTER(1), timeout=120)
    out = in_dom0(host, f"""
        a = [vcpu(v) for v in hv.vcpu_infos({domid})]
        time.sleep(2)
        b = [vcpu(v) for v in hv.vcpu_infos({domid})]
        out = dict(a=a, b=b, total=dom(hv.domain_info({domid}))["cpu_time_ns"])
    """)
    assert [v["vcpu"] for v in out["a"]] == [0, 1]
    assert all(v["online"] for v in out["b"])
    assert out["b"][0]["cpu_time_ns"] > out["a"][0]["cpu_time_ns"]
    assert all(0 <= v["cpu"] < host.cpus for v in out["b"])
    assert out["total"] >= sum(v["cpu_time_ns"] for v in out["b"])
    rows = [line.split() for line in host.check_output(["xl", "vcpu-list", "vk-hc-vcpu"]).splitlines()[1:]]
    xl_seconds = {int(r[2]): float(r[5]) for r in rows}
    for v in out["b"]:
        assert xl_seconds[v["vcpu"]] >= v["cpu_time_ns"] / 1e9 - 0.1


def test_max_mem(dom0_virtkit: XenHost, guests: Any) -> None:
    host = dom0_virtkit
    domid = guests("vk-hc-mem")
    out = in_dom0(host, f"""
        before = dom(hv.domain_info({domid}))["max_memory_kib"]
        hv.set_max_mem({domid}, 200 * 1024)
        after = dom(hv.domain_info({domid}))["max_memory_kib"]
        out = dict(before=before, after=after, missing=err(hv.set_max_mem, 4000, 1024))
    """)
    assert out["before"] >= 128 * 1024
    assert out["after"] == 200 * 1024
    assert out["missing"]["errno"] == 3
    # A fresh process (another handle) reads the same from Xen.
    again = in_dom0(host, f"out = dom(hv.domain_info({domid}))['max_memory_kib']")
    assert again == 200 * 1024


def test_destroy(dom0_virtkit: XenHost, guests: Any) -> None:
    host = dom0_virtkit
    domid = guests("vk-hc-destroy")
    out = in_dom0(host, f"""
        hv.destroy({domid})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(d.domid == {domid} for d in hv.domain_list()):
            time.sleep(0.1)
        left = [dom(d) for d in hv.domain_list() if d.domid == {domid}]
        out = dict(left=left, again=err(hv.destroy, {domid}))
    """)
    # Xen drops it once its last page is released (xenconsoled unmaps its ring on @releaseDomain).
    assert out["left"] == [] or out["left"][0]["state"] == 4, out
    # xl clears the toolstack's side (xenstore, backends) of a domain Xen no longer has.
    host.run(["xl", "destroy", "vk-hc-destroy"], timeout=60)
    assert "vk-hc-destroy" not in host.domains()
    assert domid not in xl_list(host)


def test_calls_after_close_and_gil_release(dom0_virtkit: XenHost) -> None:
    """Another Python thread runs while a hypercall is under way. With the
    switch interval at 60 s no thread is forced off the GIL during the test, so
    the spinning thread (which gives the GIL back after each step) can move its
    counter between the line before a call and the line after it only if the
    call released the GIL. The control, a builtin that keeps the GIL
    (``sum(range(...))``), must show no such move."""
    out = in_dom0(dom0_virtkit, """
        import os, threading
        sys.setswitchinterval(60)
        counter = [0]
        stop = []
        def spin():
            while not stop:
                counter[0] += 1
                os.sched_yield()  # releases the GIL (and takes it again)
        def overlaps(call):
            moved = 0
            for _ in range(300):
                before = counter[0]
                call()
                moved += counter[0] != before
            return moved
        spinner = threading.Thread(target=spin)
        spinner.start()
        lists = []
        hyper = overlaps(lambda: lists.append(len(hv.domain_list())))
        control = overlaps(lambda: sum(range(5000)))
        stop.append(1)
        spinner.join()
        hv.close(); hv.close()
        out = dict(hyper=hyper, control=control, lists=len(lists), nonempty=min(lists),
                   closed=err(hv.domain_list), repr=repr(hv))
    """)
    assert out["lists"] == 300 and out["nonempty"] >= 1, out
    assert out["control"] == 0, out
    assert out["hyper"] > 0, out
    assert out["closed"]["errno"] == 9 and "closed" in out["closed"]["message"]
    assert out["repr"] == "XenHypervisor(closed)"


def test_the_xen_driver_serves_running_domains_through_hypercalls(dom0_virtkit: XenHost,
                                                                 guests: Any) -> None:
    """xen:/// in dom0 (no xend) puts the hypervisor's backend first in its
    chain: listing, info, suspend/resume of a running guest go through it and
    agree with xl."""
    host = dom0_virtkit
    domid = guests("vk-hc-drv", vcpus=2)
    # Both vCPUs online (the guest brings up its second one while it boots).
    host.wait_guest_console("vk-hc-drv", GUEST_READY_MARKER, timeout=300)
    out = in_dom0(host, f"""
        import virtkit
        with virtkit.open("xen:///") as conn:
            drv = conn._driver
            names = [b.name for b in drv.backends]
            hb = drv.backend("hypervisor")
            listed = sorted((d.name, d.id) for d in conn.list_all_domains() if d.id >= 0)
            dom = conn.lookup_domain_by_name("vk-hc-drv")
            info = dom.info()
            dom.suspend()
            paused = int(dom.state())
            xen_paused = hv.domain_info({domid}).state
            dom.resume()
            resumed = int(dom.state())
            out = dict(names=names, live=type(hb).__name__, listed=listed, id=dom.id,
                       info=[int(info.state), info.max_memory, info.memory, info.nr_virt_cpu],
                       paused=paused, xen_paused=xen_paused, resumed=resumed,
                       refresh=drv._current.__qualname__)
    """, timeout=300)  # opening xen:/// took 22 s in a loaded nested dom0 (imports, xl)
    assert out["names"][0] == "hypervisor" and out["live"] == "HypervisorBackend", out
    # References are brought up to date through the hypervisor (one getdomaininfo).
    assert out["refresh"] == "HypervisorBackend.current"
    assert out["listed"] == sorted([name, i] for name, i in host.domains().items())
    assert out["id"] == domid
    row = xl_list(host)[domid]
    assert out["info"][2] // 1024 == row["mem"] and out["info"][3] == row["vcpus"] == 2
    assert out["paused"] == 3 and out["xen_paused"] == 3
    assert out["resumed"] in (1, 2)
    assert "p" not in xl_list(host)[domid]["state"]
