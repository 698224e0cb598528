"""Test-node XML (libvirt's test driver format): typed model.

A node file describes a fake host for ``test:///PATH``: CPU facts, memory,
and domains and networks given inline or by file reference (relative to the
node file), e.g.::

    <node>
      <cpu><mhz>6000</mhz><model>i986</model><active>50</active>
           <nodes>4</nodes><sockets>4</sockets><cores>4</cores><threads>2</threads></cpu>
      <memory>8192000</memory>
      <domain file="guest1.xml"/>
      <domain type="test"><name>inline</name>...</domain>
      <network file="net.xml"/>
    </node>

Domains in a node file start running, as in libvirt's test driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virtkit.errors import XMLError
from virtkit.xml import _document
from virtkit.xml.domain import DomainConfig, _domain, _write_domain, parse_domain
from virtkit.xml.network import NetworkConfig, _network, _write_network, parse_network


@dataclass(frozen=True)
class NodeConfig:
    """A whole ``<node>`` document, file references resolved."""

    cpu_model: str | None = None
    cpu_mhz: int | None = None
    #: ``<active>``: CPUs online.
    cpus: int | None = None
    nodes: int | None = None
    sockets: int | None = None
    cores: int | None = None
    threads: int | None = None
    #: KiB.
    memory: int | None = None
    domains: tuple[DomainConfig, ...] = ()
    networks: tuple[NetworkConfig, ...] = ()


# ======================================================================
# Parsing and formatting
# ======================================================================

__all__ = ["NodeConfig", "parse_node", "format_node"]

_KIND = "node"
_CPU_FIELDS = {
    "mhz": "cpu_mhz",
    "active": "cpus",
    "nodes": "nodes",
    "sockets": "sockets",
    "cores": "cores",
    "threads": "threads",
}


def parse_node(text: str | bytes, base_dir: Path | None = None) -> NodeConfig:
    """Parse a test-node document (the format of libvirt's test driver).

    Validated against ``schemas/node.rng`` (inline domains and networks
    against the domain and network schemas it includes). ``<domain file>``
    and ``<network file>`` name documents relative to ``base_dir`` (the
    directory of the node file; the current directory when None), which are
    read and parsed with :func:`~virtkit.xml.domain.parse_domain` and
    :func:`~virtkit.xml.network.parse_network`. Domains and networks keep
    document order, inline and referenced ones interleaved.

    Raises :class:`virtkit.errors.XMLError` (or :class:`~virtkit.errors.XMLSchemaError`)
    for a bad node document or a bad referenced document (the message then
    starts with the referenced file's path), and :class:`~virtkit.errors.XMLError`
    for a referenced file that cannot be read.
    """
    root = _document.read_document(text, _KIND)
    base = Path.cwd() if base_dir is None else Path(base_dir)
    f: dict[str, Any] = {}
    domains: list[DomainConfig] = []
    networks: list[NetworkConfig] = []
    for child in root:
        tag = child.tag
        if tag == "domain":
            ref = child.get("file")
            if ref is None:
                domains.append(_domain(child, "domain"))
            else:
                domains.append(_referenced(child, base / ref, parse_domain))
        elif tag == "network":
            ref = child.get("file")
            if ref is None:
                networks.append(_network(child))
            else:
                networks.append(_referenced(child, base / ref, parse_network))
        elif tag == "memory":
            f["memory"] = int(child.text)
        else:  # <cpu>
            for c in child:
                if c.tag == "model":
                    f["cpu_model"] = c.text or ""
                else:
                    f[_CPU_FIELDS[c.tag]] = int(c.text)
    return NodeConfig(domains=tuple(domains), networks=tuple(networks), **f)


def _referenced(el: Any, path: Path, parse: Any) -> Any:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _document.fail(_KIND, el, f"cannot read {str(path)!r}: {e.strerror or e}") from None
    try:
        return parse(data)
    except XMLError as e:
        raise type(e)(f"{path}: {e.message}", line=e.line, element=e.element) from None


def format_node(cfg: NodeConfig) -> str:
    """The canonical XML of ``cfg``, domains and networks inline.

    The result is loadable by libvirt's test driver (``test:///PATH``) as
    well as by :func:`parse_node`; ``parse_node(format_node(cfg)) == cfg``
    for every valid model.
    """
    out = ["<node>"]
    cpu = [
        (tag, value)
        for tag, value in (
            ("mhz", cfg.cpu_mhz), ("model", cfg.cpu_model), ("active", cfg.cpus), ("nodes", cfg.nodes),
            ("sockets", cfg.sockets), ("cores", cfg.cores), ("threads", cfg.threads),
        )
        if value is not None
    ]
    if cpu:
        out.append("  <cpu>")
        out.extend(_document.leaf("    ", tag, str(value)) for tag, value in cpu)
        out.append("  </cpu>")
    if cfg.memory is not None:
        out.append(f"  <memory>{cfg.memory}</memory>")
    for dom in cfg.domains:
        _write_domain(out, dom, "  ")
    for net in cfg.networks:
        _write_network(out, net, "  ")
    out.append("</node>")
    out.append("")
    return "\n".join(out)
