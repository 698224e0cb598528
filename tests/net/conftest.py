"""Fixtures for real networks in namespaces (see :mod:`tests.net.namespaces`).

- ``host_unchanged`` (session, automatic for every test here): the host's links,
  routes (all tables), nftables ruleset and the list of namespaces are the same
  after the session as before it.
- ``world`` (session): the daemon and outside namespaces; deleted at the end,
  asserting that no process was left in them.
- ``agent`` (per test): the network manager's process in the daemon namespace,
  with fresh directories; at the end every network is destroyed and the daemon
  namespace must be back to its baseline (links, no nftables table of ours, no
  process, no status file).
- ``client`` (per test): ``client(bridge, mac=None, hostname=None)`` makes a
  guest stand-in on a bridge; removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.net.namespaces import Agent, Client, World, run

HAVE = {p: shutil.which(p) for p in ("ip", "nft", "dnsmasq", "busybox")}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    why = None
    if os.geteuid() != 0:
        why = "networks in namespaces need root"
    elif missing := [p for p, found in HAVE.items() if not found]:
        why = f"missing programs: {', '.join(missing)} (scripts/test installs them)"
    if why is None:
        return
    # Loud, not silent: every namespace test fails with the reason (the test
    # command runs as root and installs these programs, so this is a broken machine).
    here = Path(__file__).parent
    for item in items:
        if "netns" in item.keywords and Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.usefixtures("_cannot_run_here"))
            item.stash[_WHY] = why


_WHY = pytest.StashKey[str]()


@pytest.fixture
def _cannot_run_here(request: pytest.FixtureRequest) -> None:
    pytest.fail(f"this machine cannot run the network tests: {request.node.stash[_WHY]}")


def _host_snapshot() -> dict[str, object]:
    links = json.loads(run("ip", "-d", "-j", "link", "show").stdout or "[]")
    routes = run("ip", "route", "show", "table", "all").stdout
    routes6 = run("ip", "-6", "route", "show", "table", "all").stdout
    ruleset = run("nft", "list", "ruleset", check=False).stdout if HAVE["nft"] else ""
    namespaces = run("ip", "netns", "list").stdout
    prefix = f"vk{os.getpid()}-"
    return {
        "links": sorted((link["ifname"], link.get("linkinfo", {}).get("info_kind", ""),
                         link.get("master", "")) for link in links),
        "routes": routes,
        "routes6": routes6,
        "nft ruleset": ruleset,
        "our namespaces": [n for n in namespaces.split("\n") if n.startswith(prefix)],
    }


@pytest.fixture(scope="session", autouse=True)
def host_unchanged() -> Iterator[None]:
    if os.geteuid() != 0 or not HAVE["ip"]:
        yield
        return
    before = _host_snapshot()
    yield
    after = _host_snapshot()
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert not changed, f"the test session changed the host's network: {changed}"


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    w = World()
    try:
        yield w
    finally:
        left = w.close()
    assert not left, f"processes were left in the test namespaces: {left}"


@pytest.fixture
def agent_dirs(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "etc", tmp_path / "state"


@pytest.fixture
def start_agent(world: World, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """``start_agent(env=None)``: an agent process (more than one for restart tests)."""
    agents: list[Agent] = []

    def start(env: dict[str, str] | None = None) -> Agent:
        a = Agent(world.daemon, tmp_path / f"agent{len(agents)}.log", env=env)
        agents.append(a)
        return a

    yield start
    for a in agents:
        if a.proc.poll() is None:
            a.shutdown()
    state = tmp_path / "state"
    leftovers = {
        "links": sorted(set(world.daemon.links()) - world.baseline_links),
        "nft tables": world.daemon.nft_tables(),
        "processes": world.daemon.pids(),
        "status files": sorted(p.name for p in state.glob("*.status")) if state.exists() else [],
    }
    world.daemon.kill_all()
    for link in leftovers["links"]:
        world.daemon.ip("link", "del", link, check=False)
    for table in leftovers["nft tables"]:
        world.daemon.exec("nft", "delete", "table", *table.split(), check=False)
    assert not any(leftovers.values()), \
        f"left behind in the daemon namespace: {leftovers}\n{agents[-1].log_tail() if agents else ''}"


@pytest.fixture
def agent(start_agent: Callable[..., Agent], agent_dirs: tuple[Path, Path]) -> Agent:
    """An agent with a manager open on fresh directories (no default network)."""
    a = start_agent()
    a.open(str(agent_dirs[0]), str(agent_dirs[1]))
    return a


@pytest.fixture
def client(world: World, tmp_path: Path, start_agent: Callable[..., Agent]
           ) -> Iterator[Callable[..., Client]]:
    # Depends on start_agent so that clients go first (their veths leave the daemon ns)
    # before the agent's leftovers are checked.
    made: list[Client] = []

    def make(bridge: str, *, mac: str | None = None, hostname: str | None = None) -> Client:
        c = Client(world, bridge, mac=mac, hostname=hostname, workdir=tmp_path)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()
