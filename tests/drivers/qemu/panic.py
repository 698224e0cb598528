"""The test guest able to report a crash: its initramfs plus the pvpanic driver.

The cloud kernel of the test guest (scripts/guest) builds QEMU's pvpanic
driver as modules (``pvpanic.ko``, ``pvpanic-mmio.ko``, the latter binding the
ISA device through ACPI ``QEMU0001``) that the guest's initramfs does not
carry. :func:`pvpanic_image` fetches them from the same kernel package the
build script used (``apt-get download``, as it does), appends a second cpio
archive holding them to a copy of the initramfs (the kernel unpacks
concatenated archives in turn) and caches the result next to the guest. In the
guest::

    insmod /lib/modules/virtkit/pvpanic.ko
    insmod /lib/modules/virtkit/pvpanic-mmio.ko
    echo c > /proc/sysrq-trigger      # a real kernel panic, reported to QEMU

QEMU then emits ``GUEST_PANICKED`` (the driver's ``<on_crash>``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from tests.guest.console import GuestImage, GuestImageError

__all__ = ["pvpanic_image", "LOAD_PVPANIC", "CRASH"]

MODULES = ("pvpanic.ko", "pvpanic-mmio.ko")
#: Shell command loading the driver in the guest.
LOAD_PVPANIC = "; ".join(f"insmod /lib/modules/virtkit/{m}" for m in MODULES)
#: Shell command that panics the guest's kernel.
CRASH = "echo c > /proc/sysrq-trigger"


def _newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the kernel's "newc" format (root-owned, time stamp 0)."""
    out = bytearray()

    def pad() -> None:
        out.extend(bytes(-len(out) % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out += b"070701" + "".join(f"{v:08X}" for v in fields).encode() + encoded
        pad()
        out += data
        pad()
    return bytes(out)


def pvpanic_image(image: GuestImage) -> GuestImage:
    """``image`` with the pvpanic modules in its initramfs (built once, then cached).

    Raises GuestImageError when the kernel package cannot be fetched or lacks them.
    """
    cache = image.kernel.parent
    try:
        stamp = json.loads((cache / "stamp.json").read_text())
        package, release = stamp["kernel"], stamp["kernel_release"]
    except (OSError, ValueError, KeyError) as e:
        raise GuestImageError(f"cannot read the guest's stamp.json in {cache}: {e}") from None
    base = image.initrd.read_bytes()
    key = hashlib.sha256(base + package.encode()).hexdigest()[:16]
    target = cache / f"initramfs-pvpanic-{key}.cpio.gz"
    if target.is_file():
        return GuestImage(image.kernel, target)
    with tempfile.TemporaryDirectory(prefix="vk-pvpanic-") as tmp:
        work = Path(tmp)
        proc = subprocess.run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
                               package], cwd=work, capture_output=True, text=True)
        debs = list(work.glob("*.deb"))
        if proc.returncode != 0 or len(debs) != 1:
            raise GuestImageError(f"apt-get download {package} failed:\n{proc.stderr}{proc.stdout}")
        where = f"./lib/modules/{release}/kernel/drivers/misc/pvpanic/"
        tar = subprocess.run(f"dpkg-deb --fsys-tarfile '{debs[0]}' | tar -x -C '{work}' "
                             + " ".join(f"'{where}{m}'" for m in MODULES),
                             shell=True, capture_output=True, text=True)
        if tar.returncode != 0:
            raise GuestImageError(f"{package} has no pvpanic modules:\n{tar.stderr}")
        entries = [("lib", 0o40755, b""), ("lib/modules", 0o40755, b""),
                   ("lib/modules/virtkit", 0o40755, b"")]
        for m in MODULES:
            entries.append((f"lib/modules/virtkit/{m}", 0o100644, (work / where / m).read_bytes()))
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_bytes(base + _newc(entries))
        os.replace(partial, target)
    return GuestImage(image.kernel, target)
