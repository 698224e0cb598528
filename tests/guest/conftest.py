"""Fixtures for tests that boot the real test guest (see tests/guest/console.py)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.guest.console import GuestError, GuestImage, build_guest_image, live_guests


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The kernel and initramfs, built by scripts/build-test-guest or taken from
    its cache. A failed build fails the test with the script's output."""
    try:
        return build_guest_image()
    except GuestError as err:
        pytest.fail(str(err), pytrace=False)


def _qemu_children() -> list[str]:
    """QEMU processes whose parent is this test process."""
    found = []
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == me and fields.get("Name", "").startswith("qemu"):
            found.append(f"{status.parent.name} ({fields['Name'].strip()}, {fields.get('State', '?').strip()})")
    return found


@pytest.fixture(scope="module", autouse=True)
def no_guest_left_behind() -> Iterator[None]:
    """After each module: every guest closed, no QEMU child left (running or
    zombie), no temporary directory of a guest left."""
    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob("virtkit-guest-*"))
    yield
    leftover = live_guests()
    for guest in leftover:
        guest.close()
    children = _qemu_children()
    assert not leftover, f"guests not closed by their tests: {[g.argv for g in leftover]}"
    assert not children, f"QEMU processes left behind: {children}"
    stale = set(tmp.glob("virtkit-guest-*")) - before
    assert not stale, f"temporary directories left behind: {sorted(map(str, stale))}"
