"""ConfigDir (python/virtkit/drivers/xen/configdir.py): the definitions kept
between listings, and the UUID of a file that sets none. (Reading and writing
the files against xl itself is tested in dom0: tests/xenhost/dom0/.)"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from virtkit.drivers.xen import configdir
from virtkit.drivers.xen.configdir import ConfigDir, derived_uuid


def cfg(name: str, memory: int = 128) -> str:
    return (f'name = "{name}"\nmemory = {memory}\nvcpus = 1\n'
            f'kernel = "/boot/vmlinuz"\n')


def settle(path: Path) -> None:
    """Date the directory's last change back, past the racy window."""
    past = time.time_ns() - 10 * configdir.RACY_NS
    os.utime(path, ns=(past, past))


def test_derived_uuid_is_uuid5_of_the_name() -> None:
    namespace = uuid.UUID("6f0b3c2e-8a4d-4c1b-9a55-2d7e0f1c9b42")
    for name in ("vm1", "Domain-0", "é ü", "x" * 300, ""):
        assert derived_uuid(name) == uuid.uuid5(namespace, name).bytes


def test_definitions_kept_while_the_directory_is_unchanged(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.cfg").write_text(cfg("a"))
    settle(tmp_path)
    configs = ConfigDir(str(tmp_path))
    assert [d.name for d in configs.definitions()] == ["a"]
    reads: list[str] = []
    real_files = configs._files
    monkeypatch.setattr(configs, "_files", lambda: reads.append("listdir") or real_files())
    assert [d.name for d in configs.definitions()] == ["a"]
    assert reads == [], "an unchanged directory is not listed again"
    # A file added, then removed, by hand: seen by the next listing.
    (tmp_path / "b.cfg").write_text(cfg("b"))
    assert [d.name for d in configs.definitions()] == ["a", "b"]
    (tmp_path / "b.cfg").unlink()
    assert [d.name for d in configs.definitions()] == ["a"]
    assert len(reads) == 2
    # A change within the racy window is not trusted to show: listed again.
    assert configs._defs is None
    configs.definitions()
    assert len(reads) == 3
    # An edit in place (directory unchanged) shows once the files are checked again.
    settle(tmp_path)
    configs.definitions()
    key = os.stat(tmp_path).st_mtime_ns
    (tmp_path / "a.cfg").write_text(cfg("a", memory=256))
    assert os.stat(tmp_path).st_mtime_ns == key
    assert configs.get("a").config.memory == 128 * 1024  # type: ignore[union-attr]
    monkeypatch.setattr(configdir, "REVALIDATE_SECONDS", 0.0)
    assert configs.get("a").config.memory == 256 * 1024  # type: ignore[union-attr]


def test_a_write_through_the_directory_is_seen_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.cfg").write_text(cfg("a"))
    settle(tmp_path)
    configs = ConfigDir(str(tmp_path))
    a = configs.get("a")
    assert a is not None
    import dataclasses

    configs.write(dataclasses.replace(a.config, name="c", uuid=derived_uuid("c")))
    assert sorted(d.name for d in configs.definitions()) == ["a", "c"]
    configs.remove(configs.get("c"))  # type: ignore[arg-type]
    assert [d.name for d in configs.definitions()] == ["a"]
