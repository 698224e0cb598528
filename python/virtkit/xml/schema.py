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
import threading
from typing import TYPE_CHECKING, Any

from virtkit import _lazy_re as lazy_re
from virtkit.xml._lazy import etree

if TYPE_CHECKING:
    from pathlib import Path

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
    from importlib import resources
    from pathlib import Path

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
        self._loose: Any = None
        self._elements: dict[str, Any] = {}
        self._required: dict[str, list[str]] | None = None
        self._shapes: dict[str, _Shape] | None = None

    def _loose_tree(self) -> Any:
        if self._loose is None:
            self._loose = _loosen(_flatten(self.tree))
        return self._loose

    def diagnostic(self) -> Any:
        if self._diagnostic is None:
            self._diagnostic = etree.RelaxNG(self._loose_tree())
        return self._diagnostic

    def missing_child(self, root: Any) -> tuple[Any, str] | None:
        """The first element of ``root`` (document order) lacking a child that
        every pattern of its name requires, with that child's name."""
        if self._required is None:
            self._required = _required_children(_flatten(self.tree))
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            required = self._required.get(el.tag)
            if required:
                present = {c.tag for c in el}
                for name in required:
                    if name not in present:
                        return el, name
        return None

    def explain(self, root: Any) -> tuple[Any, str] | None:
        """The first element of ``root`` with an attribute, attribute value or
        child that no pattern of its name allows, and what is wrong."""
        if self._shapes is None:
            self._shapes = _shapes(_flatten(self.tree))
        for el in root.iter():
            if not isinstance(el.tag, str):
                continue
            shape = self._shapes.get(el.tag)
            if shape is None:
                continue
            for name, value in el.items():
                if name not in shape.attributes:
                    if not shape.any_attribute:
                        return el, f"attribute {name!r} is not allowed on <{_local(el.tag)}>"
                    continue
                values = shape.attributes[name]
                if values is not None and value.strip() not in values:
                    allowed = ", ".join(sorted(values))
                    return el, f"{value!r} is not a valid {name} (allowed: {allowed})"
            for child in el:
                if isinstance(child.tag, str) and child.tag not in shape.children and not shape.any_child:
                    return child, f"<{_local(child.tag)}> is not allowed inside <{_local(el.tag)}>"
        return None

    def element_validator(self, name: str) -> Any:
        """A (loosened) validator for a lone element ``name``, or None when the
        grammar defines that element only inside another one's content."""
        if name not in self._elements:
            self._elements[name] = _element_validator(self._loose_tree(), name)
        return self._elements[name]


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
    root = tree.getroot() if hasattr(tree, "getroot") else tree
    with schema.lock:
        if schema.rng.validate(tree):
            return
        entries = list(schema.rng.error_log)
        # Find the innermost element that fails on its own; libxml2's report
        # for its ancestors only says that something inside failed.
        culprit = _blame(schema, root)
        if culprit is not None:
            root, entries = culprit
        else:
            diagnostic = schema.diagnostic()
            if not diagnostic.validate(tree):
                entries = list(diagnostic.error_log) + entries
            else:
                # Only counts are wrong: look for a missing required child.
                missing = schema.missing_child(root)
                if missing is not None:
                    el, name = missing
                    raise XMLSchemaError(
                        f"{kind} XML does not match the schema at line {el.sourceline}, element "
                        f"<{_local(el.tag)}>: a required <{name}> element is missing",
                        line=el.sourceline,
                        element=_local(el.tag),
                    )
    line, element, detail = _describe(root, entries)
    if not entries or min(_rank(e) for e in entries) >= 2:
        # libxml2 only says the content failed: say which attribute or child.
        with schema.lock:
            explained = schema.explain(root)
        if explained is not None:
            el, detail = explained
            line, element = el.sourceline, _local(el.tag)
    where = f"line {line}" if line is not None else "an unknown line"
    elem = f", element <{element}>" if element else ""
    raise XMLSchemaError(
        f"{kind} XML does not match the schema at {where}{elem}: {detail}",
        line=line,
        element=element,
    )


# ----------------------------------------------------------------- reporting

_EXTRA_CONTENT = lazy_re.compile(r"^Element (\S+) has extra content: (\S+)")
_EXTRA_IN_INTERLEAVE = lazy_re.compile(r"^Extra element (\S+) in interleave")
_EXPECTING = lazy_re.compile(r"^Expecting an element (\S+), got nothing")
_STEP_INDEX = lazy_re.compile(r"\[\d+\]$")


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


# libxml2's messages, most telling first.
_RANKS = (
    ("Invalid attribute", "Error validating value", "doesn't allow value", "Error validating datatype",
     "failed to validate attributes", "Did not expect element"),
    ("Expecting an element",),
    ("has extra content",),
    ("in interleave",),
)


def _rank(entry: Any) -> int:
    for i, needles in enumerate(_RANKS):
        if any(n in entry.message for n in needles):
            return i
    return len(_RANKS)


def _describe(root: Any, entries: list[Any]) -> tuple[int | None, str | None, str]:
    """The line, element and message to report from libxml2's error entries."""
    ordered = sorted(entries, key=_rank)  # stable: innermost first within a rank
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


def _blame(schema: _Schema, el: Any) -> tuple[Any, list[Any]] | None:
    """The innermost descendant of ``el`` that its own (loosened) pattern
    refuses, as a detached copy with the validator's error entries."""
    for child in el:
        if not isinstance(child.tag, str):
            continue
        validator = schema.element_validator(child.tag)
        if validator is None:
            continue
        alone = copy.deepcopy(child)  # a document of its own; line numbers kept
        if validator.validate(alone):
            continue
        entries = list(validator.error_log)
        return _blame(schema, alone) or (alone, entries)
    return None


def _element_validator(loose: Any, name: str) -> Any:
    root = loose.getroot()
    patterns = []
    # Every pattern of that name, wherever it sits: an element valid in its own
    # context then matches one of them, so the search never blames it wrongly.
    for pattern in root.iter(_RNG + "element"):
        if pattern.get("name") == name:
            patterns.append(pattern)
    if not patterns:
        return None
    grammar = etree.Element(_RNG + "grammar", nsmap={None: _RNG[1:-1]})
    for attr, value in root.attrib.items():
        grammar.set(attr, value)
    start = etree.SubElement(grammar, _RNG + "start")
    choice = etree.SubElement(start, _RNG + "choice")
    for pattern in patterns:
        choice.append(copy.deepcopy(pattern))
    for define in root.iter(_RNG + "define"):
        grammar.append(copy.deepcopy(define))
    return etree.RelaxNG(grammar)


class _Shape:
    """What the patterns of one element name allow, all contexts together."""

    def __init__(self) -> None:
        self.children: set[str] = set()
        self.any_child = False
        #: attribute name -> allowed values (None: any value)
        self.attributes: dict[str, set[str] | None] = {}
        self.any_attribute = False


def _shapes(tree: Any) -> dict[str, _Shape]:
    root = tree.getroot()
    defines: dict[str, Any] = {}
    for d in root.iter(_RNG + "define"):
        defines.setdefault(d.get("name"), d)

    def values(node: Any, seen: frozenset[str]) -> set[str] | None:
        out: set[str] = set()
        for c in node:
            tag = c.tag
            if not isinstance(tag, str):
                continue
            if tag == _RNG + "value":
                out.add((c.text or "").strip())
            elif tag == _RNG + "choice":
                sub = values(c, seen)
                if sub is None:
                    return None
                out |= sub
            elif tag == _RNG + "ref" and c.get("name") not in seen and c.get("name") in defines:
                sub = values(defines[c.get("name")], seen | {c.get("name")})
                if sub is None:
                    return None
                out |= sub
            else:
                return None
        return out or None

    def walk(node: Any, shape: _Shape, seen: frozenset[str]) -> None:
        for c in node:
            tag = c.tag
            if not isinstance(tag, str):
                continue
            if tag == _RNG + "element":
                name = c.get("name")
                if name:
                    shape.children.add(name)
                else:
                    names = [n.text.strip() for n in c.iter(_RNG + "name") if n.getparent().tag == _RNG + "choice"
                             or n.getparent() is c]
                    if c.find(_RNG + "anyName") is not None or c.find(_RNG + "nsName") is not None:
                        shape.any_child = True
                    shape.children.update(names)
            elif tag == _RNG + "attribute":
                name = c.get("name")
                if not name:
                    shape.any_attribute = True
                    continue
                allowed = values(c, seen)
                if name in shape.attributes:
                    previous = shape.attributes[name]
                    shape.attributes[name] = None if previous is None or allowed is None else previous | allowed
                else:
                    shape.attributes[name] = allowed
            elif tag == _RNG + "ref":
                name = c.get("name")
                if name not in seen and name in defines:
                    walk(defines[name], shape, seen | {name})
            else:
                walk(c, shape, seen)

    shapes: dict[str, _Shape] = {}
    for pattern in root.iter(_RNG + "element"):
        name = pattern.get("name")
        if name:
            walk(pattern, shapes.setdefault(name, _Shape()), frozenset())
    return shapes


def _required_children(tree: Any) -> dict[str, list[str]]:
    """For each element name, the children that all its patterns require."""
    root = tree.getroot()
    defines: dict[str, Any] = {}
    for d in root.iter(_RNG + "define"):
        defines.setdefault(d.get("name"), d)
    optional = {_RNG + t for t in ("optional", "zeroOrMore", "choice", "attribute", "text", "data", "value",
                                   "empty", "list", "notAllowed", "externalRef")}

    def required(node: Any, seen: frozenset[str]) -> list[str]:
        tag = node.tag
        if not isinstance(tag, str) or tag in optional:
            return []
        if tag == _RNG + "element":
            name = node.get("name")
            return [name] if name else []
        if tag == _RNG + "ref":
            name = node.get("name")
            if name in seen or name not in defines:
                return []
            out: list[str] = []
            for c in defines[name]:
                out += required(c, seen | {name})
            return out
        out = []
        for c in node:  # group, interleave, oneOrMore
            out += required(c, seen)
        return out

    result: dict[str, list[str]] = {}
    for pattern in root.iter(_RNG + "element"):
        name = pattern.get("name")
        if not name:
            continue
        children: list[str] = []
        for c in pattern:
            children += required(c, frozenset())
        if name in result:
            result[name] = [n for n in result[name] if n in children]
        else:
            result[name] = children
    return result


# --------------------------------------------------------- diagnostic variant


def _flatten(tree: Any) -> Any:
    """A copy of the schema ``tree`` with its includes and external references inlined.

    Our grammars prefix their definitions (``dom.``, ``net.``...), so merging
    them cannot clash.
    """
    from pathlib import Path

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
