"""Localization: messages go through gettext (domain ``virtkit``); the template is current."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from virtkit.cli import i18n

ROOT = Path(__file__).resolve().parents[2]


def write_mo(path: Path, catalog: dict[str, str]) -> None:
    """A GNU .mo file (the format msgfmt writes) holding ``catalog``."""
    items = sorted(catalog.items())
    ids = [k.encode() for k, _ in items]
    strs = [v.encode() for _, v in items]
    table_start = 7 * 4
    data_start = table_start + 16 * len(items)
    blob = b""
    id_entries, str_entries = [], []
    for s in ids:
        id_entries.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    for s in strs:
        str_entries.append((len(s), data_start + len(blob)))
        blob += s + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, len(items), table_start,
                         table_start + 8 * len(items), 0, 0)
    body = b"".join(struct.pack("<2I", *e) for e in id_entries + str_entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + body + blob)


@pytest.fixture(autouse=True)
def fresh_translations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(i18n, "_translate", None)


def test_c_locale_is_untranslated(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    assert i18n._("Name") == "Name"


def test_catalog_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mo(tmp_path / "fr" / "LC_MESSAGES" / "virtkit.mo",
             {"": "Content-Type: text/plain; charset=UTF-8\n", "Name": "Nom",
              "error: %s": "erreur : %s"})
    monkeypatch.setattr(i18n, "LOCALEDIR", str(tmp_path))
    monkeypatch.setenv("LANGUAGE", "fr")
    assert i18n._("Name") == "Nom"
    assert i18n._("error: %s") % "x" == "erreur : x"
    assert i18n._("State") == "State"  # untranslated messages fall back to English


def test_missing_catalog_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(i18n, "LOCALEDIR", str(tmp_path))
    monkeypatch.setenv("LANGUAGE", "de")
    assert i18n._("Name") == "Name"


def msgids(pot: str) -> set[str]:
    ids = set()
    for block in re.findall(r'^msgid ((?:".*"\n)+)', pot, flags=re.M):
        ids.add("".join(re.findall(r'"(.*)"', block)))
    return ids - {""}


def test_template_is_current(tmp_path: Path) -> None:
    if not (shutil.which("xgettext") or shutil.which("pygettext3")):
        pytest.fail("xgettext is not installed: apt-get install gettext")
    out = tmp_path / "virtkit.pot"
    subprocess.run([str(ROOT / "scripts" / "update-pot"), str(out)], check=True,
                   capture_output=True)
    fresh = msgids(out.read_text())
    committed = msgids((ROOT / "po" / "virtkit.pot").read_text())
    assert fresh == committed, "po/virtkit.pot is stale: run scripts/update-pot"
    for message in ("Failed to get option '%s': Option argument is empty",
                    "Domain '%s' suspended", "list domains", "CPU Affinity:", "Max memory:"):
        assert message in fresh
