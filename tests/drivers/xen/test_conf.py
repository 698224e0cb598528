"""virConf files (python/virtkit/drivers/xen/conf.py): reading, rewriting, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virtkit.drivers.xen.conf import ConfFile, format_value, parse_conf
from virtkit.errors import ConfigSyntaxError

from . import corpus


@pytest.mark.parametrize("case", corpus.xmconfig_cases())
def test_corpus_files_read_back_byte_for_byte(case: str) -> None:
    text = (corpus.XMCONFIG / f"test-{case}.cfg").read_text()
    assert parse_conf(text).dumps() == text


def test_the_python_subset() -> None:
    conf = parse_conf(
        "# comment\n"
        "a = 1; b = -2 ;c=+3\n"
        "s1 = 'single'  # trailing comment\n"
        's2 = "double"\n'
        's3 = """three\nlines"""\n'
        "l = [ 'x', \"y\", 7,\n  # inside\n  ]\n"
        "empty = []\n"
        "_under_9 = 'ok'\n"
    )
    assert [(e.name, e.value, e.line) for e in conf.entries()] == [
        ("a", 1, 2), ("b", -2, 2), ("c", 3, 2), ("s1", "single", 3), ("s2", "double", 4),
        ("s3", "three\nlines", 5), ("l", ["x", "y", 7], 7), ("empty", [], 10), ("_under_9", "ok", 11)]
    assert "l" in conf and conf.get("missing") is None


def test_rewrite_changes_only_what_changed() -> None:
    text = "# head\nname = 'a'  # keep\nmemory = 128 ; vcpus = 1\n\n# tail\n"
    conf = parse_conf(text)
    conf.set("name", "a")  # same value: untouched, quotes and comment kept
    conf.set("memory", 256)
    conf.set("disk", ["phy:/dev/x,xvda,w"])
    conf.remove("vcpus")
    assert conf.dumps() == ("# head\nname = 'a'  # keep\nmemory = 256 ; \n\n# tail\n"
                            'disk = [ "phy:/dev/x,xvda,w" ]\n')
    conf.remove("name")
    assert conf.dumps().startswith("# head\nmemory = 256")


def test_writer_spellings() -> None:
    assert format_value(3) == "3"
    assert format_value("x") == '"x"'
    assert format_value('say "hi"') == "'say \"hi\"'"
    assert format_value("two\nlines") == '"""two\nlines"""'
    assert format_value(["a", 1]) == '[ "a", 1 ]'
    assert format_value('both \' and " here') == '"""both \' and " here"""'
    for bad in (True, 1.5, None, 'ends with both \' and "', "a\nb\"\"\"c"):
        with pytest.raises(ValueError):
            format_value(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("text,line,words", [
    ("a = ", 1, "expected a value"),
    ("a 1", 1, "expected '='"),
    ("\n\n1a = 2", 3, "expected a name"),
    ("a = 'open\n'", 1, "unterminated string"),
    ('a = """never', 1, 'unterminated """ string'),
    ("a = [1,\n 2\n", 1, "unterminated list"),
    ("a = [[1]]", 1, "cannot be nested"),
    ("a = 12abc", 1, "malformed number"),
    ("a = -", 1, "expected digits"),
    ("a = 1 2", 1, "end of the statement"),
    ("a = yes", 1, "expected a value"),
])
def test_syntax_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        parse_conf(text)
    assert info.value.line == line and words in str(info.value)
    assert f"line {line}, column" in str(info.value)


def test_not_utf8_and_too_large() -> None:
    with pytest.raises(ConfigSyntaxError, match="line 2: not UTF-8"):
        parse_conf(b"a = 1\nb = '\xff'\n")
    with pytest.raises(ConfigSyntaxError, match="larger than"):
        parse_conf("a = 1\n" * 300_000)


@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_file_or_a_located_error(text: str) -> None:
    try:
        conf = parse_conf(text)
    except ConfigSyntaxError as e:
        assert e.line is not None and 1 <= e.line <= text.count("\n") + 1
    else:
        assert conf.dumps() == text


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_scalars = st.one_of(st.integers(-10**12, 10**12),
                     st.text(st.characters(blacklist_categories=("Cs",)), max_size=10).filter(
                         lambda s: not (('"' in s or "\n" in s or "\r" in s) and ("'" in s or "\n" in s or "\r" in s)
                                        and (s.endswith('"') or '"""' in s))))
_values = st.one_of(_scalars, st.lists(_scalars, max_size=4))


@given(st.dictionaries(_names, _values, max_size=8), st.text(st.sampled_from("# \nabc"), max_size=30))
def test_written_values_read_back(entries: dict[str, object], prefix: str) -> None:
    base = "".join(f"# {line}\n" for line in prefix.splitlines())
    conf = parse_conf(base)
    for name, value in entries.items():
        conf.set(name, value)  # type: ignore[arg-type]
    again = parse_conf(conf.dumps())
    assert {e.name: e.value for e in again.entries()} == entries
    assert again.dumps() == conf.dumps()
    assert conf.dumps().startswith(base)


def test_new_file_from_scratch() -> None:
    conf = ConfFile()
    conf.set("name", "x")
    conf.set("vif", [])
    assert conf.dumps() == 'name = "x"\nvif = [ ]\n'
    with pytest.raises(ValueError):
        conf.set("bad name", 1)
