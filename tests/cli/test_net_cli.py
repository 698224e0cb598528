"""``net-dhcp-leases``, ``domifaddr`` and ``net-info --json``: goldens on the test driver's
deterministic leases, and byte-for-byte against the real virsh through virtkitd.

The test driver's lease of domain ``test`` (see ``_fake_lease`` in
python/virtkit/drivers/test/driver.py) never expires: its expiry time is 0,
which both programs print in local time, so every run here uses ``TZ=UTC``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.cli._helpers import DATA, check_golden, check_golden_errors, clean_env, mask, run
from tests.daemon.private import PrivateDaemon

D = ["-c", "test:///default"]
UTC = clean_env(TZ="UTC")

CASES: dict[str, list[str]] = {
    "net-dhcp-leases": D + ["net-dhcp-leases", "default"],
    "net-dhcp-leases-mac": D + ["net-dhcp-leases", "default", "--mac", "AA:BB:CC:DD:EE:FF"],
    "net-dhcp-leases-other-mac": D + ["net-dhcp-leases", "default", "--mac", "52:54:00:00:00:01"],
    "net-dhcp-leases-json": D + ["net-dhcp-leases", "--json", "default"],
    "domifaddr": D + ["domifaddr", "test"],
    "domifaddr-json": D + ["domifaddr", "test", "--json"],
    "domifaddr-interface": D + ["domifaddr", "test", "--interface", "testnet0", "--full"],
    "net-info-json": D + ["net-info", "--json", "default"],
    "leases-follow-domains": D + ["destroy test; net-dhcp-leases default; "
                                  "start test; net-dhcp-leases default"],
}

FAILURES: dict[str, list[str]] = {
    "net-dhcp-leases-bad-mac": D + ["net-dhcp-leases", "default", "--mac", "aa:bb"],
    "net-dhcp-leases-inactive": D + ["net-destroy default; net-dhcp-leases default"],
    "domifaddr-arp": D + ["domifaddr", "test", "--source", "arp"],
    "domifaddr-unknown-source": D + ["domifaddr", "test", "--source", "dns"],
    "domifaddr-inactive": D + ["destroy test; domifaddr test"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    result = run(CASES[name], env=UTC, cwd=DATA)
    assert result.rc == 0, result.err
    assert result.err == ""
    check_golden(f"{name}.out", mask(result.out))


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failure(name: str) -> None:
    result = run(FAILURES[name], env=UTC, cwd=DATA)
    assert result.rc == 1
    check_golden_errors(f"{name}.err", mask(result.err))
    check_golden(f"{name}.out", mask(result.out))


@pytest.mark.parametrize("command", ["net-dhcp-leases default", "domifaddr test",
                                     "net-info default"])
def test_json_is_one_document(command: str) -> None:
    result = run(D + [command + " --json"], env=UTC)
    assert result.rc == 0
    json.loads(result.out)


# --- against the real virsh, both through one virtkitd ------------------------------------------

@pytest.fixture(scope="module")
def daemon() -> Iterator[PrivateDaemon]:
    d = PrivateDaemon().start()
    try:
        yield d
    finally:
        d.cleanup()


@pytest.mark.parametrize("command", [["net-dhcp-leases", "default"],
                                     ["net-dhcp-leases", "default", "--mac", "aa:bb:cc:dd:ee:ff"],
                                     ["domifaddr", "test"], ["domifaddr", "test", "--full"]])
def test_same_bytes_as_virsh(command: list[str], daemon: PrivateDaemon,
                             tmp_path_factory: pytest.TempPathFactory) -> None:
    virsh = shutil.which("virsh")
    if virsh is None:
        pytest.fail("virsh is not installed: apt-get install libvirt-clients")
    home = tmp_path_factory.mktemp("virsh-home")
    env = dict(UTC, LC_ALL="C", HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_CACHE_HOME=str(home / "cache"), XDG_RUNTIME_DIR=str(home))
    theirs = subprocess.run([virsh, "-c", daemon.uri, *command], env=env, capture_output=True,
                            text=True, timeout=60)
    ours = run(["-c", daemon.uri, *command], env=UTC)
    assert theirs.returncode == ours.rc == 0, theirs.stderr + ours.err
    assert ours.out == theirs.stdout
    assert "192.168.122.157/24" in ours.out
