"""Whole-process time of ``virtkit list --all`` against ``virsh list --all``.

Two nodes: ``test:///default`` (one domain) and a generated node file of
1000 running domains (libvirt's node-file format, inline ``<domain>``
elements, which both programs read). Runs alternate between the two
programs so that machine noise hits both alike; the median and the best
wall time of each are reported, with the ratio virtkit / virsh (targets:
at most 2 on the default node, at most 1 with 1000 domains).

The console script is taken from the interpreter's scripts directory, not
through a version-manager shim (pyenv's shims are shell scripts that would
add their own start-up to every run). A bare ``python -c pass`` and ``python
-S -c pass`` are timed too: the interpreter's own floor.

    python3 benches/bench_cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

DOMAIN = """  <domain type='test'>
    <name>guest-{i:04d}</name>
    <uuid>{uuid}</uuid>
    <memory>{mem}</memory>
    <vcpu>{vcpus}</vcpu>
    <os><type>hvm</type></os>
  </domain>
"""


def write_node(path: Path, count: int) -> None:
    parts = ["<node>\n"]
    for i in range(count):
        uuid = f"{0x5a5a0000 + i:08x}-0000-4000-8000-{i:012x}"
        parts.append(DOMAIN.format(i=i, uuid=uuid, mem=131072 + 1024 * (i % 64), vcpus=1 + i % 4))
    parts.append("</node>\n")
    path.write_text("".join(parts))


def tool(name: str) -> str:
    path = shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
    if path is None:
        sys.exit(f"bench_cli: '{name}' not found (pip install . / apt-get install libvirt-clients)")
    return path


def once(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def side_by_side(title: str, commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # warm the page cache
        once(cmd)
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name].append(once(cmd))
    print(f"\n{title}  ({runs} runs each, alternating)")
    for name, ts in times.items():
        print(f"  {name:<40} median {statistics.median(ts) * 1000:8.1f} ms   "
              f"best {min(ts) * 1000:8.1f} ms")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    virtkit, virsh = tool("virtkit"), tool("virsh")
    print(f"virtkit: {virtkit}\nvirsh:   {virsh}")
    ratios: list[str] = []
    floor = side_by_side("Interpreter start-up (the floor under any Python CLI)", {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -S -c pass (no site)": [sys.executable, "-S", "-c", "pass"],
    }, args.runs)
    del floor
    with tempfile.TemporaryDirectory() as tmp:
        node = Path(tmp) / "node-1000.xml"
        write_node(node, 1000)
        for label, uri in (("default node", "test:///default"),
                           ("1000 running domains", f"test://{node}")):
            ours = [virtkit, "-c", uri, "list", "--all"]
            theirs = [virsh, "-c", uri, "list", "--all"]
            out_ours = subprocess.run(ours, capture_output=True, text=True, check=True).stdout
            out_theirs = subprocess.run(theirs, capture_output=True, text=True, check=True).stdout
            if out_ours != out_theirs:
                sys.exit(f"bench_cli: outputs differ on the {label}")
            rows = out_ours.count("\n") - 3
            times = side_by_side(f"list --all, {label} ({rows} domains, same output)",
                                 {"virtkit": ours, "virsh": theirs},
                                 args.runs if rows < 100 else max(5, args.runs // 2))
            ratio = statistics.median(times["virtkit"]) / statistics.median(times["virsh"])
            best = min(times["virtkit"]) / min(times["virsh"])
            ratios.append(f"  {label:<24} virtkit/virsh = {ratio:5.2f} (median), {best:5.2f} (best)")
    print("\nRatios (lower is better; targets <= 2 default node, <= 1 with 1000 domains)")
    print("\n".join(ratios))


if __name__ == "__main__":
    main()
