"""Edits of a domain's configuration that every driver makes the same way:
vCPU pins, and devices attached to or detached from a configuration."""

from __future__ import annotations

import dataclasses

from virtkit.errors import OperationFailedError
from virtkit.xml.domain import (
    CharDevice,
    Device,
    Disk,
    DomainConfig,
    Graphics,
    Input,
    Interface,
    Sound,
    VcpuPin,
)

__all__ = ["DEVICE_FIELDS", "attach_device", "detach_device", "same_device", "with_pin"]


def with_pin(c: DomainConfig, pin: VcpuPin) -> DomainConfig:
    """``c`` with ``pin`` replacing any pin of the same vCPU."""
    pins = sorted([p for p in c.vcpu_pins if p.vcpu != pin.vcpu] + [pin], key=lambda p: p.vcpu)
    return dataclasses.replace(c, vcpu_pins=tuple(pins))


DEVICE_FIELDS: dict[type, str] = {
    Disk: "disks", Interface: "interfaces", CharDevice: "chardevs",
    Graphics: "graphics", Input: "inputs", Sound: "sounds",
}


def same_device(a: object, b: object) -> bool:
    """Whether ``b`` (from a detach request) designates the configured device ``a``."""
    if isinstance(a, Disk) and isinstance(b, Disk):
        return a.target_dev == b.target_dev
    if isinstance(a, Interface) and isinstance(b, Interface):
        return a.mac == b.mac if b.mac else a.type == b.type
    return a == b


def attach_device(c: DomainConfig, device: Device) -> DomainConfig:
    """``c`` with ``device`` added; OperationFailedError when its disk target or MAC is taken."""
    field_name = DEVICE_FIELDS[type(device)]
    existing = getattr(c, field_name)
    if isinstance(device, Disk) and any(d.target_dev == device.target_dev for d in existing):
        raise OperationFailedError(f"target {device.target_dev} already exists in domain "
                                   f"'{c.name}'")
    if isinstance(device, Interface) and device.mac and any(i.mac == device.mac for i in existing):
        raise OperationFailedError(f"an interface with MAC {device.mac} already exists in "
                                   f"domain '{c.name}'")
    return dataclasses.replace(c, **{field_name: existing + (device,)})


def detach_device(c: DomainConfig, device: Device) -> DomainConfig:
    """``c`` without the device ``device`` designates; OperationFailedError when none does."""
    field_name = DEVICE_FIELDS[type(device)]
    existing = getattr(c, field_name)
    for i, d in enumerate(existing):
        if same_device(d, device):
            return dataclasses.replace(c, **{field_name: existing[:i] + existing[i + 1:]})
    raise OperationFailedError(f"no matching device found in domain '{c.name}' to detach")
