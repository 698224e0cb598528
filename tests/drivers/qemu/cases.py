"""The qemuxml2argv golden cases, shared by the golden test and the live QEMU test.

Each case in ``data/qemuxml2argv/`` is ``NAME.xml`` plus either ``NAME.args``
(the expected QEMU arguments, one per line) or ``NAME.err`` (``CODE: message
fragment``). An optional ``NAME.ctx`` (JSON) overrides fields of the default
:class:`CommandContext`. ``NAME-invalid.xml`` must fail schema validation.
Regenerate the ``.args`` files with ``VIRTKIT_REGENERATE=1`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virtkit.drivers.qemu.command import CommandContext, Tap
from virtkit.xml.domain import DomainConfig, parse_domain

DATA = Path(__file__).parent / "data" / "qemuxml2argv"


@dataclass(frozen=True)
class Case:
    name: str

    @property
    def xml(self) -> Path:
        return DATA / f"{self.name}.xml"

    @property
    def args_file(self) -> Path:
        return DATA / f"{self.name}.args"

    @property
    def err_file(self) -> Path:
        return DATA / f"{self.name}.err"

    @property
    def ctx_file(self) -> Path:
        return DATA / f"{self.name}.ctx"

    @property
    def expects_error(self) -> bool:
        return self.err_file.exists()

    def config(self) -> DomainConfig:
        """The parsed XML with stable MACs filled in where the XML has none."""
        return stable_macs(parse_domain(self.xml.read_text()))

    def context_overrides(self) -> dict[str, Any]:
        if not self.ctx_file.exists():
            return {}
        raw: dict[str, Any] = json.loads(self.ctx_file.read_text())
        if "taps" in raw:
            raw["taps"] = {int(k): Tap(**v) for k, v in raw["taps"].items()}
        return raw

    def context(self) -> CommandContext:
        fields: dict[str, Any] = {
            "qmp_socket": f"/run/virtkit/qemu/{self.name}.qmp",
            "pidfile": f"/run/virtkit/qemu/{self.name}.pid",
        }
        fields.update(self.context_overrides())
        return CommandContext(**fields)

    def expected_error(self) -> tuple[str, str]:
        code, _, fragment = self.err_file.read_text().strip().partition(": ")
        return code, fragment


def stable_macs(cfg: DomainConfig) -> DomainConfig:
    """Like fill_missing_macs, but deterministic (52:54:00:ff:00:NN) for golden files."""
    ifaces = tuple(
        i if i.mac is not None else dataclasses.replace(i, mac=f"52:54:00:ff:00:{n:02x}")
        for n, i in enumerate(cfg.interfaces)
    )
    return dataclasses.replace(cfg, interfaces=ifaces)


def all_cases() -> list[Case]:
    return [Case(p.stem) for p in sorted(DATA.glob("*.xml")) if not p.stem.endswith("-invalid")]


def invalid_cases() -> list[Path]:
    return sorted(DATA.glob("*-invalid.xml"))
