"""Fixtures for tests on the nested Xen host (see tests/xenhost/harness.py).

One host boots per test session, on first use, and serves every test that asks
for it. When this machine cannot build or boot it, the fixture fails with the
reason and the end of the host's console: it never skips, so a run that should
have exercised Xen never passes quietly.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.xenhost.harness import (
    REPO,
    XenHost,
    XenHostError,
    XenImage,
    build_xen_image,
    started_hosts,
)


_RUN_TIMINGS: dict[str, float] = {}  # host-side steps, printed with the hosts' timings


@pytest.fixture(scope="session")
def xen_image() -> XenImage:
    """The image, built by scripts/build-xen-host or taken from its cache."""
    started = time.monotonic()
    try:
        image = build_xen_image()
    except XenHostError as err:
        pytest.fail(f"cannot build the Xen host image:\n{err}", pytrace=False)
    _RUN_TIMINGS["scripts/build-xen-host"] = time.monotonic() - started
    return image


@pytest.fixture(scope="session")
def xen_host(xen_image: XenImage) -> Iterator[XenHost]:
    """The booted Xen host (oxenstored unless a test restarted it with the other
    daemon: tests that care call ``xen_host.restart(xenstored=...)`` when
    ``xen_host.xenstored`` is not the one they need)."""
    try:
        host = XenHost(xen_image)
    except XenHostError as err:
        pytest.fail(f"the Xen host did not boot:\n{err}", pytrace=False)
    try:
        yield host
    finally:
        host.close()
        host.timings["QEMU peak RSS (MiB, not s)"] = host.peak_rss_mib
    assert host.returncode is not None, "QEMU of the Xen host was not reaped"
    assert not host.tmpdir.exists(), f"{host.tmpdir} left behind"


@pytest.fixture(scope="session")
def virtkit_wheel() -> Iterator[Path]:
    """A wheel built from the current checkout, the way `pip install .` builds it
    (isolated build environment, same maturin, so cargo reuses target/ and this
    takes ~5 s after an install; --no-build-isolation would rebuild the crate)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="virtkit-wheel-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--disable-pip-version-check", "-w", tmp, str(REPO)],
            capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wheels = sorted(Path(tmp).glob("virtkit-*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            pytest.fail(f"building the virtkit wheel failed ({proc.returncode}):\n"
                        f"{proc.stderr}{proc.stdout}", pytrace=False)
        _RUN_TIMINGS["build the virtkit wheel (pip wheel)"] = time.monotonic() - started
        yield wheels[0]


@pytest.fixture
def dom0_virtkit(xen_host: XenHost, virtkit_wheel: Path) -> XenHost:
    """The Xen host with the fresh wheel (and pytest) installed in dom0's Python.
    Installed once per boot: after a test restarted the host, the next test
    that asks for this installs again."""
    try:
        steps = xen_host.ensure_virtkit(virtkit_wheel)
    except XenHostError as err:
        pytest.fail(f"installing virtkit into dom0 failed:\n{err}", pytrace=False)
    for step, value in steps.items():
        xen_host.timings[f"install_virtkit (boot {xen_host.boots}): {step}"] = value
    return xen_host


@pytest.fixture(autouse=True)
def no_domain_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test that used the host: only Domain-0 runs (anything else is
    destroyed, and the test fails)."""
    yield
    if "xen_host" not in request.fixturenames:
        return
    host: XenHost = request.getfixturevalue("xen_host")
    if host.closed or host.returncode is not None:
        return
    leftovers = [name for name in host.domains() if name != "Domain-0"]
    for name in leftovers:
        host.run(["xl", "destroy", name])
    assert not leftovers, f"domains left running: {leftovers}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What the Xen host's boots and operations took, for the CI log."""
    rows = dict(_RUN_TIMINGS)
    for host in started_hosts():
        rows.update(host.timings)
    if rows:
        terminalreporter.section("nested Xen host: seconds (and sizes) measured in this run")
        for name, seconds in rows.items():
            terminalreporter.write_line(f"{name:40} {seconds:8.2f}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every host closed and its QEMU reaped, even if a fixture went wrong."""
    for host in started_hosts():
        if not host.closed:
            host.close()
