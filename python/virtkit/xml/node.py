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

from virtkit.xml.domain import DomainConfig
from virtkit.xml.network import NetworkConfig


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
