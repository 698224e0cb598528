"""QemuDriver in this process, with QEMUs that run only their firmware (no guest OS).

Through the public layer (a :class:`virtkit.Connection` on the driver), as the
daemon uses it: life cycle, live XML, runtime files, and adoption of running
QEMUs when the driver is closed and opened again (what a daemon restart does).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import virtkit
from tests.drivers.qemu.guests import guest_xml, qemu_pids_mentioning
from virtkit import DomainState
from virtkit.connection import Connection
from virtkit.drivers.qemu.driver import QemuDriver
from virtkit.drivers.qemu.kvm import kvm_status
from virtkit.drivers.qemu.status import DomainStatus, DriverDirs
from virtkit.errors import ErrorCode
from virtkit.uri import parse_uri
from virtkit.xml.domain import parse_domain

pytestmark = pytest.mark.qemu

URI = parse_uri("qemu:///session")


class Opener:
    """Opens the driver on one set of directories, as often as a test needs."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.driver: QemuDriver | None = None

    def open(self) -> Connection:
        self.close()
        self.driver = QemuDriver.open_with_paths(URI, self.base / "config", self.base / "state",
                                                 self.base / "run")
        return Connection(self.driver, URI, False)

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()
            self.driver = None

    @property
    def runtime(self) -> Path:
        return self.base / "run" / "qemu"

    def pid(self, name: str) -> int:
        return int((self.runtime / f"{name}.pid").read_text())


@pytest.fixture
def opener(tmp_path: Path) -> Iterator[Opener]:
    o = Opener(tmp_path)
    yield o
    conn = o.open()
    for dom in conn.list_all_domains():
        if dom.is_active():
            dom.destroy()
    o.close()
    assert not qemu_pids_mentioning(str(tmp_path)), "no QEMU outlives the test"
    assert not list(o.runtime.iterdir()), "no runtime file is left behind"


def gone(pid: int) -> bool:
    """No such process, not even a zombie: it was reaped."""
    return not os.path.exists(f"/proc/{pid}")


def test_life_cycle_and_runtime_files(opener: Opener) -> None:
    conn = opener.open()
    dom = conn.define_domain(guest_xml("fw", None, extra_devices="<graphics type='vnc'/>"))
    assert dom.id == -1 and dom.state() == DomainState.SHUTOFF
    dom.start()
    assert dom.id == 1 and dom.state() == DomainState.RUNNING
    assert conn.list_domain_ids() == [1] and conn.lookup_domain_by_id(1) == dom
    pid = opener.pid("fw")
    status = DomainStatus.loads((opener.runtime / "fw.status").read_bytes())
    assert (status.pid, status.id, status.name) == (pid, 1, "fw")
    assert status.live_config() == parse_domain(dom.xml_desc())
    assert dom.console_path().startswith("/dev/pts/")
    assert "port='59" in dom.xml_desc() and "<graphics type='vnc'/>" in dom.xml_desc(inactive=True)
    dom.suspend()
    assert dom.state() == DomainState.PAUSED
    dom.resume()
    assert dom.state() == DomainState.RUNNING
    assert dom.info().cpu_time > 0
    dom.destroy()
    assert dom.state() == DomainState.SHUTOFF and dom.id == -1
    assert gone(pid), "destroy returns once QEMU is gone and reaped"
    assert sorted(p.name for p in opener.runtime.iterdir()) == []
    assert "starting domain fw" in (opener.base / "state/qemu/log/fw.log").read_text()


def test_a_reopened_driver_adopts_running_qemus(opener: Opener) -> None:
    conn = opener.open()
    keep = conn.define_domain(guest_xml("keep", None))
    keep.start()
    paused = conn.create_domain(guest_xml("paused", None))
    paused.suspend()
    lost = conn.define_domain(guest_xml("lost", None))
    lost.start()
    lost_t = conn.create_domain(guest_xml("lost-transient", None))
    ids = {d.name: d.id for d in conn.list_all_domains()}
    pids = {name: opener.pid(name) for name in ids}
    opener.close()  # the guests keep running
    assert all(not gone(pid) for pid in pids.values())
    for name in ("lost", "lost-transient"):
        os.kill(pids[name], 9)
        os.waitpid(pids[name], 0)  # our child: reaped here, as init would

    conn = opener.open()
    state = {d.name: (d.id, d.state()) for d in conn.list_all_domains()}
    assert state == {"keep": (ids["keep"], DomainState.RUNNING),
                     "paused": (ids["paused"], DomainState.PAUSED),
                     "lost": (-1, DomainState.SHUTOFF)}
    assert not conn.lookup_domain_by_name("paused").is_persistent()
    assert not (opener.runtime / "lost.status").exists()
    assert sorted(qemu_pids_mentioning(str(opener.base))) == sorted(
        [pids["keep"], pids["paused"]]), "nothing started twice"
    conn.lookup_domain_by_name("paused").resume()
    fresh = conn.lookup_domain_by_name("lost")
    fresh.start()
    assert fresh.id == max(ids["keep"], ids["paused"]) + 1, "ids continue above the adopted ones"
    # Adopted QEMUs are watched like our own: destroy returns when they are gone.
    adopted = conn.lookup_domain_by_name("keep")
    adopted.destroy()
    assert adopted.state() == DomainState.SHUTOFF


def test_a_status_file_naming_another_process_is_not_adopted(opener: Opener) -> None:
    conn = opener.open()
    dom = conn.define_domain(guest_xml("imposter", None))
    opener.close()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        status = DomainStatus(name="imposter", uuid=dom.uuid_string, id=9, pid=sleeper.pid,
                              start_time_ns=1, monitor=str(opener.runtime / "imposter.monitor"),
                              live_xml=guest_xml("imposter", None, uuid=dom.uuid_string),
                              emulator="/usr/bin/qemu-system-x86_64")
        status.save(_dirs(opener))
        conn = opener.open()
        assert conn.lookup_domain_by_name("imposter").state() == DomainState.SHUTOFF
        assert sleeper.poll() is None, "a stranger is never signalled"
        assert not (opener.runtime / "imposter.status").exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def _dirs(opener: Opener) -> DriverDirs:
    return DriverDirs.under(opener.base / "config", opener.base / "state", opener.base / "run")


def test_autostart_starts_a_domain_once(opener: Opener) -> None:
    conn = opener.open()
    dom = conn.define_domain(guest_xml("auto", None))
    dom.autostart = True
    assert (opener.base / "config/qemu/autostart/auto").exists()
    opener.close()
    conn = opener.open()
    assert conn.lookup_domain_by_name("auto").state() == DomainState.RUNNING
    pid = opener.pid("auto")
    conn = opener.open()  # already running: adopted, not started again
    assert opener.pid("auto") == pid
    assert qemu_pids_mentioning(str(opener.base)) == [pid]
    conn.lookup_domain_by_name("auto").autostart = False


def test_kvm_needs_a_usable_kvm_device(opener: Opener) -> None:
    status = kvm_status()
    conn = opener.open()
    if status.usable:
        # On a host whose KVM runs guests, a kvm domain is accepted.
        dom = conn.define_domain(guest_xml("k", None).replace("type='qemu'", "type='kvm'"))
        dom.undefine()
        return
    with pytest.raises(virtkit.VirtError, match="KVM") as err:
        conn.define_domain(guest_xml("k", None).replace("type='qemu'", "type='kvm'"))
    assert err.value.code == ErrorCode.CONFIG_UNSUPPORTED
    assert "TCG" in err.value.message or "qemu" in err.value.message


def test_a_qemu_that_fails_to_start_is_reported_with_its_words(opener: Opener,
                                                              tmp_path: Path) -> None:
    conn = opener.open()
    image = tmp_path / "disk.raw"
    image.write_bytes(b"\0" * 65536)
    disk = (f"<disk type='file' device='disk'><source file='{image}'/>"
            "<target dev='vda' bus='virtio'/></disk>")
    dom = conn.define_domain(guest_xml("fails", None, extra_devices=disk))
    image.unlink()
    started = time.monotonic()
    with pytest.raises(virtkit.VirtError, match=r"(?s)QEMU exited while starting.*Could not open .*disk.raw"):
        dom.start()
    assert time.monotonic() - started < 30
    assert dom.state() == DomainState.SHUTOFF and conn.list_domain_ids() == []


def test_session_taps_and_networks_fail_clearly(opener: Opener) -> None:
    # In the host's namespace: nothing here may create a link (no such bridge, no networks).
    conn = opener.open()
    bridge = "vk-no-such-br"
    nic = f"<interface type='bridge'><source bridge='{bridge}'/></interface>"
    dom = conn.define_domain(guest_xml("tap", None, extra_devices=nic))
    assert "52:54:00:" in dom.xml_desc(), "a MAC is chosen when the domain is defined"
    with pytest.raises(virtkit.OperationFailedError, match=f"bridge '{bridge}': no such device"):
        dom.start()
    assert dom.state() == DomainState.SHUTOFF and "<target dev=" not in dom.xml_desc()
    on_net = conn.define_domain(guest_xml("tap-net", None, extra_devices=(
        "<interface type='network'><source network='default'/></interface>")))
    with pytest.raises(virtkit.NoSupportError, match="qemu:///session has no virtual networks"):
        on_net.start()
    assert conn.list_networks() == [] and conn.list_defined_networks() == []
    with pytest.raises(virtkit.NoNetworkError, match="qemu:///system"):
        conn.lookup_network_by_name("default")
    with pytest.raises(virtkit.NoSupportError, match="qemu:///system"):
        conn.define_network("<network><name>n</name><bridge name='vk-never'/></network>")
    for d in (dom, on_net):
        d.undefine()


def test_taps_need_cap_net_admin(opener: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    from virtkit.drivers.qemu import networking

    monkeypatch.setattr(networking, "can_admin_network", lambda: False)  # a user's daemon
    conn = opener.open()
    dom = conn.define_domain(guest_xml("unpriv", None, extra_devices=(
        "<interface type='bridge'><source bridge='vk-no-such-br'/></interface>")))
    with pytest.raises(virtkit.OperationDeniedError, match="CAP_NET_ADMIN.*type user"):
        dom.start()
    dom.undefine()
