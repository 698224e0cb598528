"""Fixtures for tests that boot the real test guest (see tests/guest/console.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.guest.console import GuestError, GuestImage, build_guest_image, started_guests


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    """The kernel and initramfs, built by scripts/build-test-guest or taken from
    its cache. A failed build fails the test with the script's output."""
    try:
        return build_guest_image()
    except GuestError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="module", autouse=True)
def no_guest_left_behind() -> Iterator[None]:
    """After each module: every guest it started closed, its QEMU reaped, its
    temporary directory gone."""
    already = len(started_guests())
    yield
    mine = started_guests()[already:]
    leaked = [g for g in mine if not g.closed]
    for guest in leaked:
        guest.close()
    assert not leaked, f"guests not closed by their tests: {[g.argv for g in leaked]}"
    unreaped = [g.proc.pid for g in mine if g.proc.returncode is None]
    assert not unreaped, f"QEMU processes not reaped: {unreaped}"
    stale = [str(g.tmpdir) for g in mine if g.tmpdir.exists()]
    assert not stale, f"temporary directories left behind: {stale}"
