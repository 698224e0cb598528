"""Hypothesis strategies generated from XDR declarations.

``values(t)`` draws Python values that type ``t`` can encode and that decode
back equal (lists for arrays, tuples for unions, bools for Bool). Sizes are
capped so that a 4 MiB string maximum does not mean 4 MiB examples.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from virtkit.drivers.remote import xdr

#: Longest generated string, opaque or array.
CAP = 12

_TEXT = st.characters(codec="utf-8")  # no lone surrogates: they are not UTF-8


def _text(max_bytes: int, *, nul: bool = True) -> st.SearchStrategy[str]:
    alphabet = _TEXT if nul else st.characters(codec="utf-8", exclude_characters="\0")
    return st.text(alphabet, max_size=min(max_bytes, CAP)).filter(
        lambda s: len(s.encode("utf-8")) <= max_bytes)


def values(t: xdr.XDRType) -> st.SearchStrategy[Any]:
    """A strategy for values of ``t``."""
    if isinstance(t, xdr.Bool):
        return st.booleans()
    if isinstance(t, xdr.Enum):
        return st.sampled_from(sorted(t.values))
    if isinstance(t, xdr.Float):
        return st.floats(width=32, allow_nan=False)
    if isinstance(t, xdr.Double):
        return st.floats(allow_nan=False)
    if isinstance(t, xdr._Scalar):
        return st.integers(int(t.lo), int(t.hi))
    if isinstance(t, xdr.FixedOpaque):
        return st.binary(min_size=t.size, max_size=t.size)
    if isinstance(t, xdr.VarOpaque):
        return st.binary(max_size=min(t.max_size, CAP))
    if isinstance(t, xdr.String):
        return _text(t.max_size)
    if isinstance(t, xdr.CharArray):
        return _text(t.size - 1, nul=False)
    if isinstance(t, xdr.VarCharArray):
        return _text(t.max_size - 1, nul=False)
    if isinstance(t, xdr.FixedArray):
        return st.lists(values(t.element), min_size=t.size, max_size=t.size)
    if isinstance(t, xdr.VarArray):
        return st.lists(values(t.element), max_size=min(t.max_size, 4))
    if isinstance(t, xdr.Struct):
        return st.fixed_dictionaries({name: values(ft) for name, ft in t.fields})
    if isinstance(t, xdr.Union):
        arms = [st.tuples(st.just(d), values(arm)) for d, arm in t.arms.items()]
        if t.default is not None:
            declared = set(t.arms)
            others = st.integers(int(t.discriminant.lo), int(t.discriminant.hi)).filter(
                lambda d: d not in declared)
            arms.append(st.tuples(others, values(t.default)))
        return st.one_of(arms)
    if isinstance(t, xdr.Optional):
        return st.none() | values(t.element)
    if isinstance(t, xdr.Void):
        return st.none()
    raise TypeError(f"no strategy for {t!r}")
