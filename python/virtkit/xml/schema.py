"""The Relax-NG schemas shipped with virtkit, loaded once and cached.

The schemas live in ``virtkit/schemas/*.rng`` inside the installed package
(the checkout's top-level ``schemas`` points there). Each kind of document has
one:

==============  =====================  ==========================================
kind            file                   root element
==============  =====================  ==========================================
``domain``      ``domain.rng``         ``<domain>``
``device``      ``device.rng``         one device of ``<devices>`` (hot-plug)
``network``     ``network.rng``        ``<network>``
``capabilities````capabilities.rng``   ``<capabilities>``
``node``        ``node.rng``           ``<node>`` (libvirt's test-driver file)
==============  =====================  ==========================================

A schema is compiled the first time it is needed and kept for the life of the
process. Validation takes a lock per schema: lxml keeps a validator's error
log on the validator object, so two threads must not use one at once.

When a document fails, libxml2's own report is often vague (inside an
``<interleave>`` it says only "Extra element devices in interleave", without a
line). :func:`validate` then validates again against a *diagnostic* variant of
the same schema, built on first use, in which every ``<interleave>`` is
loosened into "any number of any of its parts, in any order": that variant
reports the innermost element that cannot match at all, with its line. If the
diagnostic variant accepts the document, the fault is one of multiplicity (an
element repeated or missing), and the original report is used, with the
element's line looked up in the document.
"""

from __future__ import annotations

import copy
import re
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from virtkit.errors import XMLSchemaError

__all__ = ["KINDS", "schema_dir", "schema_path", "get_schema", "validate", "is_valid"]

#: Document kinds and their schema files.
KINDS: dict[str, str] = {
    "domain": "domain.rng",
    "device": "device.rng",
    "network": "network.rng",
    "capabilities": "capabilities.rng",
    "node": "node.rng",
}

_RNG = "{http://relaxng.org/ns/structure/1.0}"


def schema_dir() -> Path:
    """The directory holding the installed ``.rng`` files."""
    return Path(str(resources.files("virtkit").joinpath("schemas")))


def schema_path(kind: str) -> Path:
    """The ``.rng`` file of ``kind``; :class:`KeyError` for an unknown kind."""
    try:
        return schema_dir() / KINDS[kind]
    except KeyError:
        raise KeyError(f"no schema for documents of kind {kind!r}; kinds: {', '.join(KINDS)}") from None


class _Schema:
    """One compiled schema, its diagnostic variant (built lazily) and a lock."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        path = schema_path(kind)
        # The schema files are ours and local: a plain parse (their includes are
        # resolved relative to the file) with network access off.
        parser = etree.XMLParser(no_network=True, remove_comments=True)
        self.tree = etree.parse(str(path), parser)
        self.rng = etree.RelaxNG(self.tree)
        self.lock = threading.Lock()
        self._diagnostic: Any = None

    def diagnostic(self) -> Any:
        if self._diagnostic is None:
            self._diagnostic = etree.RelaxNG(_loosen(_flatten(self.tree)))
        return self._diagnostic


_schemas: dict[str, _Schema] = {}
_schemas_lock = threading.Lock()


def _get(kind: str) -> _Schema:
    schema = _schemas.get(kind)
    if schema is None:
        with _schemas_lock:
            schema = _schemas.get(kind)
            if schema is None:
                schema = _schemas[kind] = _Schema(kind)
    return schema


def get_schema(kind: str) -> Any:
    """The compiled :class:`lxml.etree.RelaxNG` of ``kind`` (cached).

    Do not call it from several threads at once: use :func:`validate`.
    """
    return _get(kind).rng


def is_valid(kind: str, tree: Any) -> bool:
    """Whether ``tree`` (an lxml element or element tree) matches the schema of ``kind``."""
    schema = _get(kind)
    with schema.lock:
        return bool(schema.rng.validate(tree))


def validate(kind: str, tree: Any) -> None:
    """Check ``tree`` (an lxml element or element tree) against the schema of ``kind``.

    Raises :class:`virtkit.errors.XMLSchemaError` naming the line and the
    element at fault, and what is wrong there; :class:`KeyError` for an
    unknown kind.
    """
    schema = _get(kind)
    with schema.lock:
        if schema.rng.validate(tree):
            return
        entries = list(schema.rng.error_log)
        diagnostic = schema.diagnostic()
        if not diagnostic.validate(tree):
            entries = list(diagnostic.error_log) + entries
    root = tree.getroot() if hasattr(tree, "getroot") else tree
    line, element, detail = _describe(root, entries)
    where = f"line {line}" if line is not None else "an unknown line"
    elem = f", element <{element}>" if element else ""
    raise XMLSchemaError(
        f"{kind} XML does not match the schema at {where}{elem}: {detail}",
        line=line,
        element=element,
    )


# ----------------------------------------------------------------- reporting

_EXTRA_CONTENT = re.compile(r"^Element (\S+) has extra content: (\S+)")
_EXTRA_IN_INTERLEAVE = re.compile(r"^Extra element (\S+) in interleave")
_EXPECTING = re.compile(r"^Expecting an element (\S+), got nothing")
_STEP_INDEX = re.compile(r"\[\d+\]$")
# libxml2's messages that only restate that a parent failed because a child did.
_CONSEQUENTIAL = ("failed to validate content", "Invalid sequence in interleave", "Expecting element")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _element_at(root: Any, path: str | None) -> Any:
    if not path:
        return None
    try:
        found = root.getroottree().xpath(path)
    except etree.XPathError:
        return None
    return found[0] if found and isinstance(found, list) and hasattr(found[0], "tag") else None


def _describe(root: Any, entries: list[Any]) -> tuple[int | None, str | None, str]:
    """The line, element and message to report from libxml2's error entries."""

    def useful(e: Any) -> bool:
        return not any(s in e.message for s in _CONSEQUENTIAL)

    ordered = [e for e in entries if useful(e)] + [e for e in entries if not useful(e)]
    for entry in ordered:
        message = entry.message.strip()
        el = _element_at(root, entry.path)
        m = _EXTRA_CONTENT.match(message)
        if m is not None:
            # The path points at the child where matching stopped; the fault is
            # in the content of the parent the message names.
            parent = el.getparent() if el is not None else None
            line = parent.sourceline if parent is not None else entry.line or None
            return line, m.group(1), (
                f"content not allowed here (matching stopped at <{m.group(2)}>"
                + (f", line {el.sourceline}" if el is not None else "") + ")"
            )
        m = _EXTRA_IN_INTERLEAVE.match(message)
        if m is not None:
            name = m.group(1)
            culprit = _repeated_child(root, name)
            line = culprit.sourceline if culprit is not None else None
            return line, name, f"<{name}> is not allowed here, or appears more often than allowed"
        m = _EXPECTING.match(message)
        if m is not None:
            line = el.sourceline if el is not None else entry.line or None
            element = _local(el.tag) if el is not None else None
            return line, element, f"a required <{m.group(1)}> element is missing"
        element = None
        line = entry.line or None
        if el is not None:
            element = _local(el.tag)
            line = el.sourceline or line
        elif entry.path:
            element = _STEP_INDEX.sub("", entry.path.rsplit("/", 1)[-1]) or None
        if message.startswith(("Error validating value", "Error validating datatype")) and el is not None:
            message = f"{message.rstrip()} {el.text.strip()!r}" if el.text else message.rstrip()
        return line, element, message
    return None, None, "the document does not match the schema"


def _repeated_child(root: Any, name: str) -> Any:
    """The first element named ``name`` that repeats a sibling, else the first one."""
    first = None
    for el in root.iter(name):
        if first is None:
            first = el
        parent = el.getparent()
        if parent is not None and sum(1 for c in parent if c.tag == name) > 1:
            same = [c for c in parent if c.tag == name]
            return same[1]
    return first


# --------------------------------------------------------- diagnostic variant


def _flatten(tree: Any) -> Any:
    """A copy of the schema ``tree`` with its includes and external references inlined.

    Our grammars prefix their definitions (``dom.``, ``net.``...), so merging
    them cannot clash.
    """
    base = Path(tree.docinfo.URL or schema_dir() / "x.rng").parent
    tree = copy.deepcopy(tree)
    root = tree.getroot()
    merged: set[str] = set()

    def load(href: str) -> Any:
        parser = etree.XMLParser(no_network=True, remove_comments=True)
        grammar = _flatten(etree.parse(str(base / href), parser)).getroot()
        library = grammar.get("datatypeLibrary")
        if library is not None:
            # Moved into another grammar, its parts must keep their datatypes.
            for child in grammar:
                if isinstance(child.tag, str) and child.get("datatypeLibrary") is None:
                    child.set("datatypeLibrary", library)
        return grammar

    def merge_defines(grammar: Any, href: str) -> None:
        if href in merged:
            return
        merged.add(href)
        for child in grammar:
            if child.tag == _RNG + "define":
                root.append(child)

    for inc in list(root.iter(_RNG + "include")):
        grammar = load(inc.get("href"))
        override = inc.find(_RNG + "start")
        for child in list(grammar):
            if child.tag == _RNG + "start" and override is not None:
                continue
            root.append(child)
        if override is not None:
            root.append(override)
        inc.getparent().remove(inc)
    for ext in list(root.iter(_RNG + "externalRef")):
        href = ext.get("href")
        grammar = load(href)
        merge_defines(grammar, href)
        start = grammar.find(_RNG + "start")
        ext.getparent().replace(ext, copy.deepcopy(start[0]))
    return tree


def _loosen(tree: Any) -> Any:
    """A copy of the schema ``tree`` whose interleaves accept any order and count.

    Each ``<interleave>`` becomes ``<zeroOrMore><choice>`` of the element
    patterns it can contain (looking through optional, zeroOrMore,
    oneOrMore, group, choice, nested interleave and references to
    non-element definitions). Used only to explain a failure.
    """
    tree = copy.deepcopy(tree)
    root = tree.getroot()
    defines: dict[str, Any] = {}
    for d in root.iter(_RNG + "define"):
        defines.setdefault(d.get("name"), d)
    wrappers = {_RNG + t for t in ("optional", "zeroOrMore", "oneOrMore", "group", "choice", "interleave")}

    def alternatives(node: Any, seen: frozenset[str]) -> list[Any]:
        tag = node.tag
        if tag == _RNG + "element" or tag == _RNG + "externalRef":
            return [node]
        if tag == _RNG + "ref":
            name = node.get("name")
            body = [c for c in defines.get(name, ()) if isinstance(c.tag, str)]
            if len(body) == 1 and body[0].tag == _RNG + "element":
                return [node]
            if name in seen:
                return []
            out: list[Any] = []
            for c in body:
                out += alternatives(c, seen | {name})
            return out
        if tag in wrappers:
            out = []
            for c in node:
                if isinstance(c.tag, str):
                    out += alternatives(c, seen)
            return out
        return []

    while True:
        interleaves = list(root.iter(_RNG + "interleave"))
        if not interleaves:
            break
        inter = interleaves[-1]  # innermost first
        choice = etree.Element(_RNG + "choice")
        keys: set[object] = set()
        for alt in alternatives(inter, frozenset()):
            key: object = ("ref", alt.get("name")) if alt.tag == _RNG + "ref" else id(alt)
            if key not in keys:
                keys.add(key)
                choice.append(copy.deepcopy(alt))
        loose = etree.Element(_RNG + "zeroOrMore")
        if len(choice):
            loose.append(choice)
        else:
            loose = etree.Element(_RNG + "empty")
        parent = inter.getparent()
        parent.replace(inter, loose)
    return tree
