"""CPU lists and maps, in libvirt's syntax.

A CPU list is text such as ``0-3,^2,6`` (ranges, exclusions with ``^``); a CPU
map is a tuple of booleans, one per host CPU. virsh prints maps as ``yyn-``
strings (``y`` for a set CPU).
"""

from __future__ import annotations

from collections.abc import Iterable

from virtkit.errors import InvalidArgumentError

__all__ = ["parse_cpulist", "format_cpulist", "cpumap_from", "cpumap_to_yn"]


def parse_cpulist(text: str, ncpus: int) -> tuple[bool, ...]:
    """Parse ``0-3,^2,6`` into a map of ``ncpus`` booleans.

    Raises InvalidArgumentError for malformed lists, CPUs beyond the host,
    or a list that selects no CPU.
    """
    selected: set[int] = set()
    excluded: set[int] = set()
    if not text.strip():
        raise InvalidArgumentError("empty CPU list")
    for item in text.split(","):
        item = item.strip()
        negate = item.startswith("^")
        if negate:
            item = item[1:]
        lo, sep, hi = item.partition("-")
        try:
            start = int(lo)
            end = int(hi) if sep else start
        except ValueError:
            raise InvalidArgumentError(f"malformed CPU list {text!r} at {item!r}") from None
        if start < 0 or end < start:
            raise InvalidArgumentError(f"malformed CPU list {text!r}: bad range {item!r}")
        if end >= ncpus:
            raise InvalidArgumentError(
                f"CPU {end} in {text!r} does not exist (this host has CPUs 0-{ncpus - 1})")
        (excluded if negate else selected).update(range(start, end + 1))
    chosen = selected - excluded
    if not chosen:
        raise InvalidArgumentError(f"CPU list {text!r} selects no CPU")
    return tuple(i in chosen for i in range(ncpus))


def format_cpulist(cpumap: Iterable[bool]) -> str:
    """The shortest ``0-3,6`` form of a CPU map."""
    out: list[str] = []
    run_start = -1
    cpus = list(cpumap)
    for i, on in enumerate(cpus + [False]):
        if on and run_start < 0:
            run_start = i
        elif not on and run_start >= 0:
            out.append(str(run_start) if i - 1 == run_start else f"{run_start}-{i - 1}")
            run_start = -1
    return ",".join(out)


def cpumap_from(value: str | Iterable[bool] | Iterable[int], ncpus: int) -> tuple[bool, ...]:
    """Normalize a CPU list string, a sequence of booleans or of CPU numbers to a map."""
    if isinstance(value, str):
        return parse_cpulist(value, ncpus)
    items = list(value)
    if all(isinstance(v, bool) for v in items):
        if len(items) > ncpus and any(items[ncpus:]):
            raise InvalidArgumentError(f"CPU map names CPUs beyond the host's {ncpus}")
        cpumap = tuple(bool(v) for v in items[:ncpus]) + (False,) * max(0, ncpus - len(items))
    else:
        numbers = set()
        for v in items:
            if not isinstance(v, int) or v < 0 or v >= ncpus:
                raise InvalidArgumentError(f"CPU {v!r} does not exist (this host has CPUs 0-{ncpus - 1})")
            numbers.add(v)
        cpumap = tuple(i in numbers for i in range(ncpus))
    if not any(cpumap):
        raise InvalidArgumentError("CPU map selects no CPU")
    return cpumap


def cpumap_to_yn(cpumap: Iterable[bool]) -> str:
    """virsh's ``yyn-`` rendering: ``y`` for set, ``-`` for clear."""
    return "".join("y" if on else "-" for on in cpumap)
