"""The xenstore client and the driver with C xenstored (the other daemon Debian
ships). After tests/xenhost/test_host.py, whose last test boots the host with
C xenstored, so no further boot is needed in a whole run; run alone, this
restarts the host itself. oxenstored: tests/xenhost/test_dom0.py."""

from __future__ import annotations

import pytest

from tests.xenhost.harness import XenHost
from tests.xenhost.test_dom0 import run_xenstore_checks

pytestmark = pytest.mark.xenhost


def test_xenstore_client_with_c_xenstored(xen_host: XenHost, virtkit_wheel: object) -> None:
    run_xenstore_checks(xen_host, virtkit_wheel, "xenstored")
