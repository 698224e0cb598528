"""Test-node XML: libvirt's test-driver node files, file references, and libvirt itself as a peer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from tests import needs
from hypothesis import given

from tests.xml import strategies
from tests.xml._support import DATA, check_golden, goldens, ids, inputs, invalid
from virtkit.errors import XMLError, XMLSchemaError
from virtkit.xml import _document, schema
from virtkit.xml.node import NodeConfig, format_node, parse_node

NODE_DIR = DATA / "node"
NODES = inputs("node")


@pytest.mark.parametrize("path", NODES, ids=ids(NODES))
def test_fixture_loads_and_matches_golden(path: Path) -> None:
    cfg = parse_node(path.read_bytes(), path.parent)
    out = format_node(cfg)
    schema.validate("node", _document.parse_xml(out, "node"))
    assert parse_node(out) == cfg
    check_golden(path, out)


@pytest.mark.parametrize("path", goldens("node"), ids=ids(goldens("node")))
def test_golden_outputs_are_canonical(path: Path) -> None:
    assert format_node(parse_node(path.read_text())) == path.read_text()


@pytest.mark.parametrize("path", invalid("node"), ids=ids(invalid("node")))
def test_invalid_fixture_is_refused(path: Path) -> None:
    with pytest.raises(XMLError) as info:
        parse_node(path.read_bytes(), path.parent)
    assert info.value.line is not None


def test_file_references_are_resolved_against_base_dir() -> None:
    cfg = parse_node((NODE_DIR / "testnode-files.xml").read_text(), NODE_DIR)
    assert (cfg.cpu_mhz, cfg.cpu_model, cfg.cpus, cfg.nodes, cfg.sockets, cfg.cores, cfg.threads) == (
        6000, "i986", 50, 4, 4, 4, 2)
    assert cfg.memory == 8192000
    assert [d.name for d in cfg.domains] == ["guest-pv"]
    assert [n.name for n in cfg.networks] == ["private"]


def test_inline_and_referenced_keep_order() -> None:
    cfg = parse_node((NODE_DIR / "testnode-inline.xml").read_bytes(), NODE_DIR)
    assert [d.name for d in cfg.domains] == ["inline-one", "guest-pv"]
    assert cfg.domains[0].memory == 512 * 1024
    assert cfg.networks[0].name == "default"


def test_base_dir_none_means_current_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(NODE_DIR)
    cfg = parse_node((NODE_DIR / "testnode-files.xml").read_text())
    assert cfg.domains[0].name == "guest-pv"


def test_missing_file_names_the_path() -> None:
    with pytest.raises(XMLError, match="absent.xml"):
        parse_node((NODE_DIR / "missing-file-invalid.xml").read_text(), NODE_DIR)


def test_error_in_referenced_file_names_it(tmp_path: Path) -> None:
    (tmp_path / "bad.xml").write_text("<domain><name>x</name><memory>lots</memory><os><type>hvm</type></os></domain>")
    with pytest.raises(XMLSchemaError) as info:
        parse_node("<node><domain file='bad.xml'/></node>", tmp_path)
    assert str(tmp_path / "bad.xml") in str(info.value)
    assert info.value.element == "memory"


def test_inline_domain_is_validated() -> None:
    with pytest.raises(XMLSchemaError):
        parse_node((NODE_DIR / "inline-domain-bad-invalid.xml").read_text(), NODE_DIR)


def _virsh(uri: str, *args: str) -> str:
    return subprocess.run(["virsh", "-c", uri, *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


@pytest.mark.parametrize("name", ["testnode-files.xml", "testnode-inline.xml"])
def test_libvirt_loads_our_fixtures(name: str) -> None:
    needs.program("virsh", "libvirt-clients")
    uri = f"test://{NODE_DIR / name}"
    cfg = parse_node((NODE_DIR / name).read_text(), NODE_DIR)
    listed = _virsh(uri, "list", "--all", "--name").split()
    assert listed == [d.name for d in cfg.domains]
    assert _virsh(uri, "net-list", "--all", "--name").split() == [n.name for n in cfg.networks]


def test_libvirt_loads_what_format_node_writes(tmp_path: Path) -> None:
    needs.program("virsh", "libvirt-clients")
    cfg = parse_node((NODE_DIR / "testnode-inline.xml").read_text(), NODE_DIR)
    path = tmp_path / "node.xml"
    path.write_text(format_node(cfg))
    uri = f"test://{path}"
    assert _virsh(uri, "list", "--all", "--name").split() == ["inline-one", "guest-pv"]
    info = _virsh(uri, "nodeinfo")
    assert "2400 MHz" in info and "16777216 KiB" in info
    # What libvirt reads back from our file is what we wrote (modulo its own additions).
    dumped = _virsh(uri, "dumpxml", "inline-one")
    assert "<memory unit='KiB'>524288</memory>" in dumped


@given(strategies.nodes())
def test_round_trip(cfg: NodeConfig) -> None:
    out = format_node(cfg)
    schema.validate("node", _document.parse_xml(out, "node"))
    back = parse_node(out)
    assert back == cfg
    assert format_node(back) == out
