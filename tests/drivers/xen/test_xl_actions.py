"""xl_actions (python/virtkit/drivers/xen/xl.py): a transient domain's lifecycle
actions from libxl's record of it. (Against real xl: tests/xenhost/dom0/dom0_lifecycle.py.)"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from virtkit.drivers.interface import DomainRef
from virtkit.drivers.xen.xl import xl_actions
from virtkit.xml.domain import LifecycleAction


def test_actions_from_libxls_record(tmp_path: Path) -> None:
    u = uuid.uuid4()
    dom = DomainRef("t", u.bytes, 7)
    pattern = str(tmp_path / "userdata-d.{id}.{uuid}.libxl-json")
    assert xl_actions(dom, pattern) == {}  # no record
    record = tmp_path / f"userdata-d.7.{u}.libxl-json"
    # libxl leaves out an action at its default (destroy); soft_reset has no XML word.
    record.write_text(json.dumps({"c_info": {}, "on_reboot": "restart",
                                  "on_crash": "coredump_restart", "on_soft_reset": "soft_reset"})
                      + "\n\0")  # as libxl writes it
    assert xl_actions(dom, pattern) == {"on_poweroff": LifecycleAction.DESTROY,
                                        "on_reboot": LifecycleAction.RESTART,
                                        "on_crash": LifecycleAction.COREDUMP_RESTART}
    record.write_text("{not json")
    assert xl_actions(dom, pattern) == {}
