"""HVM guests in the xl config files of ConfigDir: xl's ``kernel``/``ramdisk``/
``extra`` are QEMU's direct kernel boot (XM's ``kernel`` was the loader), the
loader is ``firmware_override`` and the device model ``device_model_override``.
(Booting such a file with xl is tested in dom0: tests/xenhost/dom0/dom0_lifecycle.py.)"""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path

from virtkit.drivers.xen.configdir import DEFAULT_HVMLOADER, ConfigDir
from virtkit.xml.domain import parse_domain

HVM = ("<domain type='xen'><name>h</name><uuid>{uuid}</uuid><memory>131072</memory>"
       "<vcpu>1</vcpu><os><type>hvm</type><loader>{loader}</loader>{boot}<boot dev='hd'/></os>"
       "<devices><emulator>/usr/libexec/xen-qemu-system-i386</emulator>"
       "<serial type='pty'/></devices></domain>")
BOOT = "<kernel>/k/vmlinuz</kernel><initrd>/k/initrd</initrd><cmdline>console=ttyS0</cmdline>"


def keys(path: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+) = (.*)$", open(path).read(), re.M))


def test_direct_kernel_boot_is_xls_kernel_and_the_hvmloader_is_left_to_xl(
        tmp_path: Path) -> None:
    configs = ConfigDir(str(tmp_path))
    d = configs.write(parse_domain(HVM.format(uuid=uuid.uuid4(), loader=DEFAULT_HVMLOADER,
                                              boot=BOOT)))
    k = keys(d.path)
    assert k["builder"] == '"hvm"' and k["kernel"] == '"/k/vmlinuz"'
    assert k["ramdisk"] == '"/k/initrd"' and k["extra"] == '"console=ttyS0"'
    assert k["device_model_override"] == '"/usr/libexec/xen-qemu-system-i386"'
    assert "firmware_override" not in k and "device_model" not in k
    os_ = d.config.os
    assert (os_.type, os_.loader, os_.kernel, os_.initrd, os_.cmdline) == \
        ("hvm", DEFAULT_HVMLOADER, "/k/vmlinuz", "/k/initrd", "console=ttyS0")
    assert d.config.emulator == "/usr/libexec/xen-qemu-system-i386"

    # Another loader is xl's firmware_override; no direct boot drops the keys.
    d = configs.write(dataclasses.replace(d.config, os=dataclasses.replace(
        os_, loader="/opt/fw/loader", kernel=None, initrd=None, cmdline=None)), d)
    k = keys(d.path)
    assert k["firmware_override"] == '"/opt/fw/loader"'
    assert not {"kernel", "ramdisk", "extra"} & set(k), k
    assert (d.config.os.loader, d.config.os.kernel) == ("/opt/fw/loader", None)


def test_an_xl_hvm_file_written_by_hand(tmp_path: Path) -> None:
    (tmp_path / "x.cfg").write_text(
        'name = "x"\ntype = "hvm"\nmemory = 256\nkernel = "/k/vmlinuz"\n'
        'ramdisk = "/k/initrd"\ncmdline = "quiet"\nfirmware_override = "/opt/fw/loader"\n'
        'device_model_override = "/opt/qemu"\n')
    d = ConfigDir(str(tmp_path)).get("x")
    assert d is not None
    os_ = d.config.os
    assert (os_.type, os_.loader, os_.kernel, os_.initrd, os_.cmdline) == \
        ("hvm", "/opt/fw/loader", "/k/vmlinuz", "/k/initrd", "quiet")
    assert d.config.emulator == "/opt/qemu"
