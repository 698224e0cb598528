"""What the network manager keeps on disk: definitions, autostart marks, status files.

Two directories, as libvirt's network driver has them:

- ``config_dir``: ``NAME.xml`` per defined network (its inactive definition)
  and ``autostart/NAME.xml``, a symbolic link to ``../NAME.xml``, for each
  network marked for autostart (libvirt's layout). ``.initialized`` records
  that the default network was considered once (it is not recreated after
  the user undefines it).
- ``state_dir``: ``NAME.status`` per active network (:class:`NetworkStatus`,
  JSON) and the network's dnsmasq files (:mod:`virtkit.net.dnsmasq`).

Writes replace files atomically (a temporary in the same directory, then
``rename``), so a crash leaves the old file or the new one. Definitions are
also ``fsync``-ed (they must survive a power cut); status files are not:
they describe running things, which a power cut ends anyway, and skipping
the flush keeps ``net-start`` fast.

A status file is written *before* the first change to the system (state
``starting``, naming the bridge and table about to be made), updated when
the network is up (``active``, with dnsmasq's pid) and before teardown
(``stopping``), and removed last. Whatever a crash interrupts, the status
file names every object that may exist, so a restarted manager can finish
the job (:mod:`virtkit.net.manager`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from virtkit import _files
from virtkit.errors import ErrorDomain, VirtError, VirtSystemError
from virtkit.xml.network import NetworkConfig, format_network, parse_network

__all__ = ["NetworkStatus", "NetworkStore", "STATUS_VERSION", "write_atomically"]

STATUS_VERSION = 1


def write_atomically(path: Path, data: bytes, *, durable: bool = True, mode: int = 0o600) -> None:
    """Replace ``path`` by ``data`` (see the module docstring); VirtSystemError on failure."""
    _files.write_atomically(path, data, durable=durable, mode=mode, domain=ErrorDomain.NETWORK)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise VirtSystemError(f"cannot remove '{path}': {e.strerror}", errno=e.errno,
                              domain=ErrorDomain.NETWORK) from None


@dataclass
class NetworkStatus:
    """The run-time record of one active (or starting, or stopping) network."""

    name: str
    #: Canonical UUID.
    uuid: str
    #: ``starting``, ``active`` or ``stopping``.
    state: str
    bridge: str
    #: The live configuration, as XML (bridge filled in).
    live_xml: str
    #: Our nftables table, or None before it is made.
    table: str | None = None
    dnsmasq_pid: int | None = None
    version: int = STATUS_VERSION

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def loads(cls, data: bytes) -> NetworkStatus:
        """Parse a status file; ValueError when it is not one of this version."""
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("version") != STATUS_VERSION:
            raise ValueError("not a status file of this version")
        return cls(**raw)

    def live_config(self) -> NetworkConfig:
        return parse_network(self.live_xml)


class NetworkStore:
    """The files of :mod:`virtkit.net.manager` (see the module docstring)."""

    def __init__(self, config_dir: str | os.PathLike[str], state_dir: str | os.PathLike[str]) -> None:
        self.config_dir = Path(config_dir)
        self.state_dir = Path(state_dir)

    @property
    def autostart_dir(self) -> Path:
        return self.config_dir / "autostart"

    @property
    def initialized_mark(self) -> Path:
        return self.config_dir / ".initialized"

    def create(self) -> None:
        """Make the directories (mode 0700: leases and configurations are private)."""
        for d in (self.config_dir, self.autostart_dir, self.state_dir):
            try:
                d.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as e:
                raise VirtSystemError(f"cannot create directory '{d}': {e.strerror}",
                                      errno=e.errno, domain=ErrorDomain.NETWORK) from None
        for d in (self.config_dir, self.state_dir):
            for p in d.iterdir():
                if _files.is_temporary(p):
                    _unlink(p)

    # --- definitions --------------------------------------------------------------------

    def config_file(self, name: str) -> Path:
        return self.config_dir / f"{name}.xml"

    def autostart_link(self, name: str) -> Path:
        return self.autostart_dir / f"{name}.xml"

    def save_config(self, cfg: NetworkConfig) -> None:
        write_atomically(self.config_file(cfg.name), format_network(cfg).encode())

    def remove_config(self, name: str) -> None:
        self.set_autostart(name, False)
        _unlink(self.config_file(name))

    def load_configs(self) -> tuple[list[NetworkConfig], list[str]]:
        """Every saved definition, and messages about files that could not be loaded."""
        out: list[NetworkConfig] = []
        problems: list[str] = []
        for p in sorted(self.config_dir.glob("*.xml")):
            try:
                cfg = parse_network(p.read_bytes())
            except (OSError, VirtError) as e:
                problems.append(f"ignoring '{p}': {e}")
                continue
            if cfg.name != p.stem:
                problems.append(f"ignoring '{p}': it defines network '{cfg.name}'")
                continue
            out.append(cfg)
        return out, problems

    def autostart(self, name: str) -> bool:
        return self.autostart_link(name).is_symlink() or self.autostart_link(name).exists()

    def set_autostart(self, name: str, on: bool) -> None:
        link = self.autostart_link(name)
        if on:
            if link.is_symlink() or link.exists():
                return
            try:
                link.symlink_to(Path("..") / f"{name}.xml")
            except OSError as e:
                raise VirtSystemError(f"cannot create autostart link '{link}': {e.strerror}",
                                      errno=e.errno, domain=ErrorDomain.NETWORK) from None
        else:
            _unlink(link)

    # --- status files -------------------------------------------------------------------

    def status_file(self, name: str) -> Path:
        return self.state_dir / f"{name}.status"

    def save_status(self, status: NetworkStatus) -> None:
        write_atomically(self.status_file(status.name), status.dumps(), durable=False)

    def remove_status(self, name: str) -> None:
        _unlink(self.status_file(name))

    def load_statuses(self) -> tuple[list[NetworkStatus], list[Path]]:
        """Every readable status file, and the paths of unreadable ones."""
        out: list[NetworkStatus] = []
        bad: list[Path] = []
        for p in sorted(self.state_dir.glob("*.status")):
            try:
                out.append(NetworkStatus.loads(p.read_bytes()))
            except (OSError, ValueError, TypeError):
                bad.append(p)
        return out, bad
