"""Conformance: domains through the public API."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import virtkit
from virtkit import DomainState
from virtkit.xml.domain import parse_domain

from .conftest import Target, wait_for_state


def define(conn: virtkit.Connection, target: Target, name: str, cleanup: list[str], **kw: object) -> virtkit.Domain:
    cleanup.append(name)
    return conn.define_domain(target.domain_xml(name, **kw))  # type: ignore[arg-type]


def test_define_lookup_and_identity(conn: virtkit.Connection, target: Target,
                                    fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    name = fresh_name("id")
    dom = define(conn, target, name, cleanup, uuid="4dea22b31d52d8f32516782e98ab3fa0")
    assert dom.name == name
    assert dom.uuid_string == "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
    assert dom.uuid == bytes.fromhex("4dea22b31d52d8f32516782e98ab3fa0")
    assert dom.id == -1 and dom.state() == DomainState.SHUTOFF and not dom.is_active()
    assert dom.is_persistent()
    assert name in conn.list_defined_domains()
    assert conn.num_of_defined_domains() == len(conn.list_defined_domains())
    assert conn.lookup_domain_by_name(name) == dom
    assert conn.lookup_domain_by_uuid(dom.uuid) == dom
    assert conn.lookup_domain_by_uuid_string("4DEA22B3-1D52-D8F3-2516-782E98AB3FA0") == dom
    assert conn.lookup_domain(dom.uuid_string) == dom
    assert dom in conn.list_all_domains()


def test_lifecycle_with_state_checks(conn: virtkit.Connection, target: Target,
                                     fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("life"), cleanup)
    for call in (dom.suspend, dom.resume, dom.shutdown, dom.reboot, dom.destroy):
        with pytest.raises(virtkit.OperationInvalidError, match="not running|not paused"):
            call()
    dom.start()
    assert dom.id > 0 and dom.is_active()
    assert dom.id in conn.list_domain_ids()
    assert conn.lookup_domain_by_id(dom.id) == dom
    assert conn.lookup_domain(str(dom.id)) == dom
    with pytest.raises(virtkit.OperationInvalidError, match="already active"):
        dom.start()
    with pytest.raises(virtkit.OperationInvalidError, match="not paused"):
        dom.resume()
    dom.suspend()
    assert dom.state() == DomainState.PAUSED
    with pytest.raises(virtkit.OperationInvalidError, match="state: paused"):
        dom.suspend()
    dom.resume()
    assert dom.state() in (DomainState.RUNNING, DomainState.BLOCKED)
    dom.destroy()
    assert dom.state() == DomainState.SHUTOFF and dom.id == -1
    assert dom.name in conn.list_defined_domains()


def test_shutdown_turns_the_domain_off(conn: virtkit.Connection, target: Target,
                                        fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("shut"), cleanup)
    dom.start()
    dom.shutdown()
    wait_for_state(dom, DomainState.SHUTOFF, target.timeout)


def test_transient_domain_vanishes_when_destroyed(conn: virtkit.Connection, target: Target,
                                                   fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    name = fresh_name("transient")
    cleanup.append(name)
    dom = conn.create_domain(target.domain_xml(name))
    assert dom.is_active() and not dom.is_persistent()
    with pytest.raises(virtkit.OperationInvalidError, match="transient"):
        dom.undefine()
    dom.destroy()
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name(name)


def test_undefine_running_domain_keeps_it_running_as_transient(
        conn: virtkit.Connection, target: Target, fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("undef"), cleanup)
    dom.start()
    dom.undefine()
    assert dom.is_active() and not dom.is_persistent()
    dom.destroy()
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_name(dom.name)


def test_duplicate_names_and_uuids_are_refused(conn: virtkit.Connection, target: Target,
                                               fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("dup"), cleanup)
    with pytest.raises(virtkit.DomainExistsError):
        conn.define_domain(target.domain_xml(dom.name))  # same name, new UUID
    with pytest.raises(virtkit.DomainExistsError):
        conn.define_domain(target.domain_xml(fresh_name("dup"), uuid=dom.uuid_string))
    # Same name and UUID: an update of the definition.
    again = conn.define_domain(target.domain_xml(dom.name, uuid=dom.uuid_string, vcpus=2))
    assert again == dom and dom.info().nr_virt_cpu == 2


def test_unknown_objects_and_bad_input_get_clear_errors(conn: virtkit.Connection, target: Target) -> None:
    with pytest.raises(virtkit.NoDomainError, match="no-such-domain"):
        conn.lookup_domain_by_name("no-such-domain")
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_id(999_999)
    with pytest.raises(virtkit.NoDomainError):
        conn.lookup_domain_by_uuid("00000000-0000-0000-0000-000000000abc")
    with pytest.raises(virtkit.InvalidUUIDError):
        conn.lookup_domain_by_uuid("not-a-uuid")
    with pytest.raises(virtkit.InvalidUUIDError):
        conn.lookup_domain_by_uuid(b"short")
    with pytest.raises(virtkit.XMLError):
        conn.define_domain("<domain><name>x</name>")
    with pytest.raises(virtkit.XMLError):
        conn.define_domain("<domain type='test'><nome>x</nome></domain>")
    with pytest.raises(virtkit.InvalidArgumentError):
        conn.lookup_domain_by_id(-1)
    err = virtkit.get_last_error()
    assert isinstance(err, virtkit.InvalidArgumentError)
    assert conn.get_last_error() is err


def test_info_memory_and_vcpus(conn: virtkit.Connection, target: Target,
                               fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("mem"), cleanup, memory=131072, vcpus=2)
    info = dom.info()
    assert (info.state, info.max_memory, info.memory, info.nr_virt_cpu) == (
        DomainState.SHUTOFF, 131072, 131072, 2)
    assert dom.max_memory() == 131072
    dom.set_memory(98304)
    assert dom.info().memory == 98304
    with pytest.raises(virtkit.InvalidArgumentError, match="maximum"):
        dom.set_memory(262144)
    with pytest.raises(virtkit.InvalidArgumentError):
        dom.set_memory(0)
    dom.set_max_memory(196608)
    assert dom.max_memory() == 196608
    dom.set_vcpus(1)
    assert dom.info().nr_virt_cpu == 1
    with pytest.raises(virtkit.InvalidArgumentError):
        dom.set_vcpus(0)
    with pytest.raises(virtkit.InvalidArgumentError):
        dom.set_vcpus(conn.get_max_vcpus() + 1)
    dom.start()
    before = dom.info().cpu_time
    assert dom.info().state in (DomainState.RUNNING, DomainState.BLOCKED)
    assert dom.info().cpu_time >= before >= 0


def test_vcpu_pinning_is_applied_and_remembered(conn: virtkit.Connection, target: Target,
                                                 fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    ncpus = conn.get_node_info().cpus
    dom = define(conn, target, fresh_name("pin"), cleanup, vcpus=2)
    with pytest.raises(virtkit.OperationInvalidError):
        dom.vcpus()
    dom.start()
    infos = dom.vcpus()
    assert [v.number for v in infos] == [0, 1]
    assert all(len(v.affinity) == ncpus for v in infos)
    last = ncpus - 1
    dom.pin_vcpu(1, str(last))
    pinned = dom.vcpus()[1]
    assert pinned.affinity == tuple(i == last for i in range(ncpus))
    dom.pin_vcpu(0, [True] + [False] * (ncpus - 1))
    assert dom.vcpus()[0].affinity[0] and not any(dom.vcpus()[0].affinity[1:])
    assert "vcpupin" in dom.xml_desc()
    with pytest.raises(virtkit.InvalidArgumentError):
        dom.pin_vcpu(0, str(ncpus))  # no such host CPU
    with pytest.raises(virtkit.InvalidArgumentError):
        dom.pin_vcpu(5, "0")  # no such vCPU
    dom.destroy()
    dom.start()
    assert dom.vcpus()[1].affinity == tuple(i == last for i in range(ncpus)), "pinning survives a restart"


def test_xml_description_round_trips(conn: virtkit.Connection, target: Target,
                                     fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("xml"), cleanup, memory=131072, vcpus=1)
    inactive = parse_domain(dom.xml_desc())
    assert inactive.name == dom.name and inactive.uuid == dom.uuid
    assert inactive.memory == 131072 and inactive.id is None
    dom.start()
    live = parse_domain(dom.xml_desc())
    assert live.id == dom.id
    assert parse_domain(dom.xml_desc(inactive=True)).id is None
    # Re-defining from our own output is accepted and changes nothing.
    conn.define_domain(dom.xml_desc(inactive=True))
    assert parse_domain(dom.xml_desc(inactive=True)) == parse_domain(dom.xml_desc(inactive=True))


def test_save_and_restore_through_a_real_file(conn: virtkit.Connection, target: Target, tmp_path: Path,
                                              fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("save"), cleanup)
    path = tmp_path / "dom.save"
    with pytest.raises(virtkit.OperationInvalidError):
        dom.save(path)
    dom.start()
    dom.save(path)
    assert path.stat().st_size > 0
    assert dom.state() == DomainState.SHUTOFF
    # Digests, not contents: a real guest's save file is its whole memory.
    saved = _digest(path)
    restored = conn.restore_domain(path)
    assert restored == dom and restored.is_active()
    assert _digest(path) == saved, "restore never modifies the file"
    with pytest.raises(virtkit.DomainExistsError):
        conn.restore_domain(path)
    restored.destroy()
    bad = tmp_path / "bad.save"
    bad.write_bytes(b"not a save file")
    with pytest.raises(virtkit.SaveFileError):
        conn.restore_domain(bad)
    truncated = tmp_path / "truncated.save"
    with open(path, "rb") as src, open(truncated, "wb") as dst:
        dst.write(src.read(path.stat().st_size // 2))
    path.unlink()
    with pytest.raises(virtkit.SaveFileError):
        conn.restore_domain(truncated)
    with pytest.raises(virtkit.VirtSystemError):
        conn.restore_domain(tmp_path / "missing.save")


def _digest(path: Path) -> str:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def test_core_dump_writes_a_file_and_keeps_state(conn: virtkit.Connection, target: Target, tmp_path: Path,
                                                 fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("dump"), cleanup)
    dom.start()
    dom.suspend()
    dom.core_dump(tmp_path / "core")
    assert (tmp_path / "core").stat().st_size > 0
    assert dom.state() == DomainState.PAUSED


def test_autostart(conn: virtkit.Connection, target: Target,
                   fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("auto"), cleanup)
    assert dom.autostart is False
    dom.autostart = True
    assert dom.get_autostart() is True
    dom.set_autostart(False)
    assert not dom.autostart


def test_attach_and_detach_devices(conn: virtkit.Connection, target: Target, tmp_path: Path,
                                   fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("dev"), cleanup)
    image = tmp_path / "extra.img"
    image.write_bytes(b"\0" * 1024 * 1024)
    disk = f"<disk type='file' device='disk'><source file='{image}'/><target dev='vdb' bus='virtio'/></disk>"
    dom.attach_device(disk)
    assert any(d.target_dev == "vdb" for d in parse_domain(dom.xml_desc()).disks)
    with pytest.raises(virtkit.VirtError):
        dom.attach_device(disk)  # the target is taken
    dom.detach_device(disk)
    assert not any(d.target_dev == "vdb" for d in parse_domain(dom.xml_desc()).disks)
    with pytest.raises(virtkit.VirtError):
        dom.detach_device(disk)
    with pytest.raises(virtkit.XMLError):
        dom.attach_device("<disk type='file'><source file='/x'/>")
    nic = "<interface type='user'><mac address='52:54:00:12:34:56'/></interface>"
    dom.attach_device(nic)
    assert any(i.mac == "52:54:00:12:34:56" for i in parse_domain(dom.xml_desc()).interfaces)
    dom.detach_device(nic)


def test_read_only_connection_refuses_every_mutation(
        conn: virtkit.Connection, ro_conn: virtkit.Connection, target: Target, tmp_path: Path,
        fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    name = fresh_name("ro")
    define(conn, target, name, cleanup)
    dom = ro_conn.lookup_domain_by_name(name)
    disk = "<disk type='file'><source file='/x'/><target dev='vdz'/></disk>"
    mutations: list[Callable[[], object]] = [
        dom.start, dom.suspend, dom.resume, dom.shutdown, dom.reboot, dom.destroy, dom.undefine,
        lambda: dom.save(tmp_path / "s"), lambda: dom.core_dump(tmp_path / "c"),
        lambda: dom.set_memory(1024), lambda: dom.set_max_memory(1024), lambda: dom.set_vcpus(1),
        lambda: dom.pin_vcpu(0, "0"), lambda: dom.set_autostart(True),
        lambda: dom.attach_device(disk), lambda: dom.detach_device(disk),
        lambda: ro_conn.define_domain(target.domain_xml(fresh_name("ro"))),
        lambda: ro_conn.create_domain(target.domain_xml(fresh_name("ro"))),
        lambda: ro_conn.restore_domain(tmp_path / "s"),
        lambda: ro_conn.define_network(target.network_xml(fresh_name("ronet"))),
        lambda: ro_conn.create_network(target.network_xml(fresh_name("ronet"))),
    ]
    for mutate in mutations:
        with pytest.raises(virtkit.OperationDeniedError):
            mutate()
    assert conn.lookup_domain_by_name(name).state() == DomainState.SHUTOFF


def test_error_handlers_see_every_error(conn: virtkit.Connection) -> None:
    seen_conn: list[virtkit.VirtError] = []
    seen_global: list[virtkit.VirtError] = []
    virtkit.register_error_handler(seen_global.append)
    try:
        with pytest.raises(virtkit.NoDomainError):
            conn.lookup_domain_by_name("missing-for-handler")
        assert seen_global and seen_global[-1].code == virtkit.ErrorCode.NO_DOMAIN
        conn.register_error_handler(seen_conn.append)
        with pytest.raises(virtkit.NoDomainError):
            conn.lookup_domain_by_name("missing-again")
        assert len(seen_conn) == 1 and len(seen_global) == 1
        virtkit.reset_last_error()
        assert virtkit.get_last_error() is None
        conn.reset_last_error()
        assert conn.get_last_error() is None
    finally:
        virtkit.register_error_handler(None)
        conn.register_error_handler(None)


def test_console_path(conn: virtkit.Connection, target: Target,
                      fresh_name: Callable[[str], str], cleanup: list[str]) -> None:
    dom = define(conn, target, fresh_name("cons"), cleanup)
    with pytest.raises(virtkit.OperationInvalidError, match="not running"):
        dom.console_path()
    dom.start()
    try:
        path = dom.console_path()
    except virtkit.OperationInvalidError as e:
        assert "no serial console" in str(e)
    else:
        assert path.startswith("/dev/")
