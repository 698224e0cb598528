"""virtkit._core.XenHypervisor on a host without Xen: a clear error, never a crash.

The calls themselves run inside the nested Xen host (tests/xenhost/test_hypercall.py).
"""

from __future__ import annotations

import errno
import os

import pytest

from virtkit import _core
from virtkit.errors import ErrorCode, ErrorDomain, VirtError, VirtSystemError, XenCallError

ON_XEN = os.path.exists("/dev/xen/privcmd") or os.path.exists("/proc/xen/privcmd")


def test_open_without_xen_is_a_clear_system_error() -> None:
    if ON_XEN:
        # A dom0 (or a guest with privcmd): it opens as root, or says why not.
        try:
            _core.XenHypervisor.open().close()
        except VirtSystemError as e:
            assert e.errno in (errno.EACCES, errno.EPERM) or isinstance(e, XenCallError), e
        return
    with pytest.raises(VirtSystemError) as info:
        _core.XenHypervisor.open()
    err = info.value
    assert err.errno == errno.ENOENT
    assert isinstance(err, OSError)
    assert err.code == ErrorCode.SYSTEM_ERROR
    assert "not a Xen control domain (dom0)" in err.message
    assert "/dev/xen/privcmd, /proc/xen/privcmd" in err.message
    with pytest.raises(VirtSystemError):
        _core.XenHypervisor.open(prefer=(0x15, 0x15))


def test_xen_call_error_is_a_system_error_from_xen() -> None:
    err = XenCallError("cannot pause domain 3: domctl pausedomain: No such process",
                       errno=errno.ESRCH, str1="domctl pausedomain")
    assert isinstance(err, VirtSystemError) and isinstance(err, VirtError)
    assert (err.code, err.domain, err.errno, err.int1) == (
        ErrorCode.XEN_CALL, ErrorDomain.XEN, errno.ESRCH, errno.ESRCH)


def test_classes_cannot_be_made_from_python() -> None:
    for cls in (_core.XenHypervisor, _core.XenDomainInfo, _core.XenVcpuInfo, _core.XenPhysInfo):
        with pytest.raises(TypeError):
            cls()


def test_open_takes_prefer_as_a_keyword_pair() -> None:
    with pytest.raises(TypeError):
        _core.XenHypervisor.open((0x15, 0x15))  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _core.XenHypervisor.open(prefer="0x15")  # type: ignore[arg-type]
