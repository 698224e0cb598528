"""Reading and writing XML documents: the one safe parser, escaping, verbatim elements.

Private to :mod:`virtkit.xml`. Every document virtkit reads goes through
:func:`read_document`: parsed with a parser that never touches the network,
never expands entities, loads no DTD and drops comments and processing
instructions, then validated against the schema of its kind.

Writers build text directly (faster than building a tree, and it gives
libvirt's layout: two-space indentation, single-quoted attributes).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from virtkit import _lazy_re as lazy_re
from virtkit.xml._lazy import etree

from virtkit.errors import XMLError, XMLSchemaError
from virtkit.xml import schema

#: An lxml element (lxml ships no type information).
Element = Any
_T = TypeVar("_T")

_local = threading.local()


def _parser() -> Any:
    # lxml serializes concurrent use of one parser; one per thread avoids the wait.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            remove_comments=True,
            remove_pis=True,
            huge_tree=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


# An XML declaration naming an encoding: lxml refuses it in a str.
_DECLARATION = lazy_re.compile(r"\A\s*<\?xml[^>]*?\?>")
_SYNTAX_ELEMENT = lazy_re.compile(r"(?:mismatch: |[Tt]ag (?!mismatch)|element )([A-Za-z_][\w.:-]*)")


def parse_xml(text: str | bytes, kind: str) -> Element:
    """Parse ``text`` into its root element, without validating.

    Raises :class:`XMLError` (with ``line``, and ``element`` when libxml2
    names one) for text that is not well-formed XML or that carries a
    document type declaration; :class:`TypeError` for other argument types.
    """
    if isinstance(text, str):
        m = _DECLARATION.match(text)
        if m is not None:
            # Keep the line numbering: replace the declaration by its newlines.
            text = "\n" * m.group(0).count("\n") + text[m.end():]
    elif not isinstance(text, (bytes, bytearray, memoryview)):
        raise TypeError(f"{kind} XML must be str or bytes, not {type(text).__name__}")
    else:
        text = bytes(text)
    try:
        root = etree.fromstring(text, _parser())
    except etree.XMLSyntaxError as e:
        line = e.lineno if e.lineno else None
        msg = (e.msg or str(e)).strip()
        m2 = _SYNTAX_ELEMENT.search(msg)
        where = f" at line {line}" if line is not None else ""
        raise XMLError(
            f"{kind} XML is not well-formed{where}: {msg}",
            line=line,
            element=m2.group(1) if m2 else None,
        ) from None
    if root is None:
        raise XMLError(f"{kind} XML is empty")
    if root.getroottree().docinfo.doctype:
        raise XMLError(
            f"{kind} XML at line 1: a document type declaration (<!DOCTYPE>) is not accepted",
            line=1,
        )
    return root


def read_document(text: str | bytes, kind: str) -> Element:
    """Parse ``text`` and validate it against the schema of ``kind``; the root element.

    Raises :class:`XMLError` for malformed XML, :class:`XMLSchemaError` for a
    document the schema refuses.
    """
    root = parse_xml(text, kind)
    schema.validate(kind, root)
    return root


def fail(kind: str, el: Element, message: str, *, schema_error: bool = False) -> XMLError:
    """An error about element ``el`` of a ``kind`` document, naming its line."""
    line = el.sourceline if el is not None else None
    name = local_name(el.tag) if el is not None else None
    where = f" at line {line}" if line else ""
    cls = XMLSchemaError if schema_error else XMLError
    return cls(f"{kind} XML{where}, element <{name}>: {message}", line=line, element=name)


def local_name(tag: str) -> str:
    """The tag without its namespace."""
    return tag.rsplit("}", 1)[-1] if tag[:1] == "{" else tag


# ------------------------------------------------------------------ writing

_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
)


def text(value: str) -> str:
    """``value`` escaped for element content."""
    return value.translate(_TEXT_ESCAPES)


def attr(value: str) -> str:
    """``value`` escaped for a single-quoted attribute."""
    return value.translate(_ATTR_ESCAPES)


def attrs(*pairs: tuple[str, object]) -> str:
    """`` name='value'`` for each pair whose value is not None, in the given order.

    Booleans are written ``yes``/``no``; other values with :func:`str`.
    """
    out = []
    for name, value in pairs:
        if value is None:
            continue
        if value is True:
            value = "yes"
        elif value is False:
            value = "no"
        out.append(f" {name}='{attr(str(value))}'")
    return "".join(out)


def leaf(indent: str, tag: str, value: str) -> str:
    """``<tag>value</tag>`` (or ``<tag/>`` when empty), indented."""
    if value == "":
        return f"{indent}<{tag}/>"
    return f"{indent}<{tag}>{text(value)}</{tag}>"


# ---------------------------------------------------------------- verbatim

_TAG = lazy_re.compile(r"<[^<>]*\"[^<>]*>")
# A '"' in text content (libxml2 escapes '<' and '>' in text and attributes,
# so text is exactly what lies between '>' and '<').
_QUOTE_IN_TEXT = lazy_re.compile(r">[^<\"]*\"")
_DOUBLE_QUOTED = lazy_re.compile(r'"([^"]*)"')


def _requote(m: re.Match[str]) -> str:
    return "'" + m.group(1).replace("'", "&apos;").replace("&quot;", '"') + "'"


def verbatim(el: Element) -> str:
    """The element ``el`` with its content as one XML string, for ``extra`` fields.

    Attributes are single-quoted like the rest of virtkit's output; the
    element declares exactly the namespaces it uses; whitespace inside it is
    kept as written. Parsing the string back and calling this again gives
    the same string.
    """
    if el.nsmap:
        el = copy.deepcopy(el)
        etree.cleanup_namespaces(el)
    s: str = etree.tostring(el, encoding=str, with_tail=False)
    if '"' not in s:
        return s
    if "'" not in s and "&quot;" not in s and _QUOTE_IN_TEXT.search(s) is None:
        # Every '"' delimits an attribute value and no value holds a quote:
        # the common case, done in one pass.
        return s.replace('"', "'")
    return _TAG.sub(lambda m: _DOUBLE_QUOTED.sub(_requote, m.group(0)), s)


def parse_fragment(fragment: str) -> Element:
    """Parse a verbatim element string (as :func:`verbatim` writes it)."""
    return etree.fromstring(fragment, _parser())


# ------------------------------------------------------------ fast models


def constructor(cls: type[_T]) -> Callable[..., _T]:
    """A faster stand-in for ``cls(**fields)``, for the frozen dataclass models.

    A frozen dataclass's ``__init__`` sets every field through
    ``object.__setattr__``, which costs more than the rest of reading a
    device. The returned function fills the instance's ``__dict__`` directly
    (defaults first, then the given fields): the result is equal to, and
    indistinguishable from, ``cls(**fields)``. Only for classes without
    ``__post_init__`` or ``__slots__`` (checked here).
    """
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} cannot be built without its __init__")
    defaults: dict[str, object] = {}
    factories: dict[str, Callable[[], object]] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            factories[f.name] = f.default_factory
    new = object.__new__

    def build(**fields: object) -> _T:
        obj = new(cls)
        d = obj.__dict__
        d.update(defaults)
        d.update(fields)
        for name, factory in factories.items():
            if name not in fields:
                d[name] = factory()
        return obj

    return build
