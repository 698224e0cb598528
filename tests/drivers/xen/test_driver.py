"""``xen:///`` over xend (python/virtkit/drivers/xen/driver.py), through the public API.

Every dialect (xend_config_format 1-4), what each lacked (NO_SUPPORT), the
batching of listings, Xen devices hot-plugged, and domains xend reported in
the corpus. The conformance suite runs the rest (tests/conformance, target
``xen``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtkit
from virtkit import DomainState
from virtkit.drivers.xen.driver import disk_devid
from virtkit.sexpr import join_continuations
from virtkit.xml.domain import parse_domain

from . import corpus
from .xend_simulator import XendSimulator

PV = ("<domain type='xen'><name>{name}</name><memory>131072</memory><vcpu>2</vcpu>"
      "<os><type>linux</type><kernel>/boot/vmlinuz-xen</kernel></os>"
      "<devices><disk type='file'><source file='/images/{name}.img'/><target dev='xvda'/></disk>"
      "<interface type='bridge'><source bridge='xenbr0'/><mac address='00:16:3e:00:00:0{n}'/></interface>"
      "</devices></domain>")


@pytest.fixture
def sim() -> Iterator[XendSimulator]:
    with XendSimulator() as s:
        yield s


@pytest.fixture
def conn(sim: XendSimulator) -> Iterator[virtkit.Connection]:
    with virtkit.open(sim.uri) as c:
        yield c


@pytest.mark.parametrize("fmt", [1, 2, 3, 4])
def test_transient_domains_in_every_dialect(fmt: int) -> None:
    with XendSimulator(xend_config_format=fmt) as sim, virtkit.open(sim.uri) as conn:
        dom = conn.create_domain(PV.format(name="t", n=1))
        assert dom.is_active() and dom.id > 0 and not dom.is_persistent()
        assert [f["op"] for _, _, f in sim.log if f][-3:] == ["create", "wait_for_devices", "unpause"]
        assert conn.lookup_domain_by_id(dom.id) == dom
        assert conn.lookup_domain_by_uuid(dom.uuid) == dom
        xml = parse_domain(dom.xml_desc())
        assert xml.interfaces[0].target_dev == f"vif{dom.id}.0"
        dom.suspend()
        assert dom.state() == DomainState.PAUSED
        assert sim.domains[dom.uuid_string].domid == dom.id
        states = [c[1] for c in sim.domain_sxpr(sim.domains[dom.uuid_string]) if c[0] == "state"]
        assert states == ["--p---"]
        dom.resume()
        dom.destroy()
        with pytest.raises(virtkit.NoDomainError):
            conn.lookup_domain_by_name("t")


@pytest.mark.parametrize("fmt", [1, 2])
def test_xend_before_3_0_4_keeps_no_inactive_domains(fmt: int) -> None:
    with XendSimulator(xend_config_format=fmt) as sim, virtkit.open(sim.uri) as conn:
        assert conn.list_defined_domains() == []
        with pytest.raises(virtkit.NoSupportError, match="keeps no inactive domains"):
            conn.define_domain(PV.format(name="d", n=1))
        dom = conn.create_domain(PV.format(name="t", n=1))
        assert dom.get_autostart() is False and not dom.is_persistent()
        with pytest.raises(virtkit.OperationInvalidError, match="transient"):
            dom.set_autostart(True)


@pytest.mark.parametrize("fmt", [3, 4])
def test_managed_domains_from_3_0_4(sim: XendSimulator, fmt: int) -> None:
    with XendSimulator(xend_config_format=fmt) as sim, virtkit.open(sim.uri) as conn:
        dom = conn.define_domain(PV.format(name="m", n=1))
        assert not dom.is_active() and dom.is_persistent() and conn.list_defined_domains() == ["m"]
        assert Path(sim.domains_dir, dom.uuid_string, "config.sxp").exists()
        dom.set_autostart(True)
        assert dom.get_autostart() and "(on_xend_start start)" in \
            Path(sim.domains_dir, dom.uuid_string, "config.sxp").read_text().replace("\n", " ").replace("    ", "")
        dom.start()
        assert dom.is_persistent() and dom.get_autostart()
        with pytest.raises(virtkit.NoSupportError, match="cannot undefine the running domain"):
            dom.undefine()
        dom.shutdown()
        assert dom.state() == DomainState.SHUTOFF
        dom.undefine()
        assert conn.list_defined_domains() == []


def test_listing_500_domains_takes_one_request(sim: XendSimulator, conn: virtkit.Connection) -> None:
    for i in range(500):
        sim.add_domain(f"guest{i:03d}", running=i % 2 == 0, managed=True)
    before = sim.requests
    listing = conn.list_all_domains()
    rows = [(d.id, d.name, d.state()) for d in listing]  # what 'virtkit list --all' reads
    infos = [d.info() for d in listing]
    assert sim.requests == before + 1
    assert len(rows) == 501 and rows[0] == (0, "Domain-0", DomainState.RUNNING)
    assert sum(1 for i, _, s in rows if i < 0 and s == DomainState.SHUTOFF) == 250
    assert all(i.max_memory == 128 * 1024 for i in infos[1:])
    dom = listing[1]
    dom.suspend()  # a change drops the replies kept from the listing
    assert dom.state() == DomainState.PAUSED


def test_all_domain_stats_over_xend_one_domain_at_a_time(sim: XendSimulator,
                                                          conn: virtkit.Connection) -> None:
    """xend has no batch of its own: Connection.all_domain_stats lists, then
    asks each domain (the vCPUs of the running ones only)."""
    sim.add_domain("up", running=True, managed=True)
    sim.add_domain("down", running=False, managed=True)
    stats = conn.all_domain_stats()
    listing = conn.list_all_domains()
    assert [s.domain for s in stats] == listing
    assert [s.info.state for s in stats] == [d.info().state for d in listing]
    by_name = {s.domain.name: s for s in stats}
    assert by_name["down"].info.state == DomainState.SHUTOFF and by_name["down"].vcpus == []
    # The simulator's CPU time runs on between the two reads.
    assert [v._replace(cpu_time=0) for v in by_name["up"].vcpus] == \
        [v._replace(cpu_time=0) for v in listing[1].vcpus()] and by_name["up"].vcpus


def test_one_request_per_domain_is_what_libvirt_0_2_did(sim: XendSimulator) -> None:
    """The old way, for comparison (and the benchmark): names, then each domain."""
    from virtkit.drivers.xen.xend import XendClient, domain_path

    for i in range(20):
        sim.add_domain(f"g{i}")
    client = XendClient(socket_path=sim.socket_path)
    names = [c.text for c in client.get("/xend/domain").children]
    details = [client.get(domain_path(n or ""), detail=1) for n in names]
    assert len(details) == 21 and client.requests == 22


def test_xen_devices_attach_and_detach(sim: XendSimulator, conn: virtkit.Connection, tmp_path: Path) -> None:
    dom = conn.define_domain(PV.format(name="dev", n=1))
    disk = f"<disk type='file'><source file='{tmp_path}/b.img'/><target dev='xvdb'/></disk>"
    nic = "<interface type='bridge'><source bridge='xenbr1'/><mac address='00:16:3e:00:00:09'/></interface>"
    for running in (False, True):
        if running:
            dom.start()
        dom.attach_device(disk)
        dom.attach_device(nic)
        xml = parse_domain(dom.xml_desc())
        assert [d.target_dev for d in xml.disks] == ["xvda", "xvdb"]
        assert [n.mac for n in xml.interfaces] == ["00:16:3e:00:00:01", "00:16:3e:00:00:09"]
        posts = [f for m, _, f in sim.log if m == "POST"]
        assert posts[-1]["op"] == "device_create" and posts[-1]["config"].startswith("(vif (mac ")
        with pytest.raises(virtkit.VirtError, match="already connected"):
            dom.attach_device(disk)
        dom.detach_device(disk)
        assert [f for m, _, f in sim.log if m == "POST"][-1] == {
            "op": "device_destroy", "type": "vbd", "dev": str(disk_devid("xvdb"))}
        dom.detach_device(nic)
        assert [f for m, _, f in sim.log if m == "POST"][-1] == {"op": "device_destroy", "type": "vif", "dev": "1"}
        xml = parse_domain(dom.xml_desc())
        assert [d.target_dev for d in xml.disks] == ["xvda"] and len(xml.interfaces) == 1
        with pytest.raises(virtkit.OperationFailedError, match="no disk 'xvdb'"):
            dom.detach_device(disk)
    with pytest.raises(virtkit.NoSupportError) as info:
        dom.attach_device("<disk type='file'><source file='/x'/><target dev='vdb' bus='virtio'/></disk>")
    assert info.value.code == virtkit.ErrorCode.CONFIG_UNSUPPORTED and "devices/disk[1] (vdb)" in str(info.value)


def test_disk_device_numbers_are_xends() -> None:
    assert [disk_devid(n) for n in ("xvda", "xvdb", "xvda1", "hda", "hdb", "hdc", "sda", "sdb")] == [
        51712, 51728, 51713, 768, 832, 5632, 2048, 2064]
    assert disk_devid("xvdzz") == "xvdzz"


@pytest.mark.parametrize("version,cpumap", [((3, 3, ".1"), "[0,3]"), ((3, 4, ".2"), "0,3"),
                                             ((4, 1, ".2"), "0,3")])
def test_vcpu_pinning_spelling_follows_xen(version: tuple[int, int, str], cpumap: str) -> None:
    with XendSimulator(xen_version=version) as sim, virtkit.open(sim.uri) as conn:
        dom = conn.create_domain(PV.format(name="p", n=1))
        dom.pin_vcpu(1, "0,3")
        assert [f for m, _, f in sim.log if m == "POST"][-1] == {"op": "pincpu", "vcpu": "1", "cpumap": cpumap}
        assert dom.vcpus()[1].affinity == (True, False, False, True)
        assert conn.get_version() == version[0] * 1_000_000 + version[1] * 1000 + int(version[2][1:])


def test_domains_xend_reported_in_the_corpus(sim: XendSimulator, conn: virtkit.Connection) -> None:
    for case in ("curmem", "fv-serial-tcp", "net-e1000"):
        sim.add_sxpr((corpus.SEXPR2XML / f"sexpr2xml-{case}.sexpr").read_bytes())
    for name, case in (("rhel5", "curmem"), ("fvtest", "fv-serial-tcp"), ("pvtest", "net-e1000")):
        dom = conn.lookup_domain_by_name(name)
        expected = parse_domain((corpus.SEXPR2XML / f"sexpr2xml-{case}.xml").read_bytes())
        got = parse_domain(dom.xml_desc())
        if case == "fv-serial-tcp":  # xend 3.1+ (format 4) shows no 5900+id fallback port
            expected = dataclasses.replace(expected, graphics=(
                dataclasses.replace(expected.graphics[0], port=-1),))
        assert got == expected, case
    assert conn.lookup_domain_by_name("rhel5").info().cpu_time > 0


def test_node_capabilities_and_domain_0(conn: virtkit.Connection) -> None:
    info = conn.get_node_info()
    assert (info.model, info.memory, info.cpus, info.mhz) == ("x86_64", 8 * 1024 * 1024, 4, 2400)
    caps = conn.get_capabilities()
    assert "<os_type>hvm</os_type>" in caps and "<os_type>xen</os_type>" in caps
    dom0 = conn.lookup_domain_by_id(0)
    assert dom0.name == "Domain-0" and dom0.os_type() == "linux" and dom0.is_active()
    with pytest.raises(virtkit.OperationInvalidError, match="cannot be saved"):
        dom0.save("/tmp/never")


def test_restore_refuses_what_is_not_a_save_file(conn: virtkit.Connection, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"garbage")
    with pytest.raises(virtkit.SaveFileError, match="not a valid guest state file"):
        conn.restore_domain(bad)
    with pytest.raises(virtkit.VirtSystemError) as info:
        conn.restore_domain(tmp_path / "missing")
    assert info.value.errno == 2


def test_reboot_and_restart_actions_give_a_new_id(conn: virtkit.Connection) -> None:
    dom = conn.create_domain(PV.format(name="r", n=1).replace(
        "<devices>", "<on_poweroff>restart</on_poweroff><devices>"))
    first = dom.id
    dom.reboot()
    assert dom.id > first and dom.is_active()
    dom.shutdown()  # on_poweroff restart
    assert dom.is_active()
    dom.destroy()


def test_corpus_sexpr_files_serve_as_xend_replies(sim: XendSimulator) -> None:
    """Every sexpr2xml case loads into the simulator and reads back through the driver."""
    from virtkit.drivers.xen.sxpr import parse_sxpr

    for case in corpus.sexpr2xml_cases():
        with XendSimulator(xend_config_format=corpus.sexpr2xml_format(case)) as one:
            text = (corpus.SEXPR2XML / f"sexpr2xml-{case}.sexpr").read_bytes()
            one.add_sxpr(text)
            with virtkit.open(one.uri) as conn:
                direct = parse_sxpr(join_continuations(text), corpus.sexpr2xml_format(case), lenient=True)
                dom = conn.lookup_domain_by_name(direct.name)
                assert parse_domain(dom.xml_desc()) == dataclasses.replace(direct, id=dom.id if dom.id >= 0
                                                                           else None), case
