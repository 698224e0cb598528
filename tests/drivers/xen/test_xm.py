"""XM config files ⇄ domain model (python/virtkit/drivers/xen/xm.py).

Named like libvirt's xmconfigtest: "parse" reads each ``test-NAME.cfg`` and
compares with ``test-NAME.xml``; "format" writes the XML as a config file and
compares with the ``.cfg`` (exactly, or structurally as ``corpus.py`` records).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import virtkit
from virtkit.drivers.xen.conf import parse_conf
from virtkit.drivers.xen.xm import format_xm, parse_xm
from virtkit.errors import ConfigSyntaxError, ErrorCode, NoSupportError
from virtkit.xml.domain import Disk, DomainConfig, OSConfig, format_domain, parse_domain

from . import corpus
from .strategies import xen_domains

HOST_ARCH = "i686"  # the host of libvirt's harness, whose capabilities filled <type arch machine>


@pytest.mark.parametrize("case", corpus.xmconfig_cases())
def test_xmconfig_parse(case: str) -> None:
    got = parse_xm((corpus.XMCONFIG / f"test-{case}.cfg").read_bytes(), corpus.xmconfig_format(case),
                   host_arch=HOST_ARCH)
    expected = parse_domain((corpus.XMCONFIG / f"test-{case}.xml").read_bytes())
    assert parse_domain(format_domain(got)) == got
    if corpus.status(corpus.XMCONFIG_PARSE_STATUS, case) == "exact":
        assert got == expected
    else:
        if case in corpus.XMCONFIG_PARSE_STATUS:
            assert got != expected, "recorded as structural, yet exact"
        assert corpus.normalize_model(got) == corpus.normalize_model(expected)


@pytest.mark.parametrize("case", corpus.xmconfig_cases())
def test_xmconfig_format(case: str) -> None:
    config = parse_domain((corpus.XMCONFIG / f"test-{case}.xml").read_bytes())
    got = format_xm(config, corpus.xmconfig_format(case))
    expected = (corpus.XMCONFIG / f"test-{case}.cfg").read_text()
    if corpus.status(corpus.XMCONFIG_FORMAT_STATUS, case) == "exact":
        assert got == expected
    else:
        if case in corpus.XMCONFIG_FORMAT_STATUS:
            assert got != expected, "recorded as structural, yet exact"
        assert corpus.normalize_xm(got) == corpus.normalize_xm(expected)


def test_rewrite_keeps_comments_layout_and_foreign_keys() -> None:
    original = (
        "# Managed by hand: keep this comment\n"
        "name = \"guest\"   # the name\n"
        "memory = 256\n"
        "\n"
        "on_xend_start = \"start\"  # xend's own key, not the XML's\n"
        "vcpus = 1\n"
        "kernel = \"/boot/vmlinuz\"\n"
        "disk = [ 'phy:/dev/vg/guest,xvda,w',\n"
        "         # a spare, for later\n"
        "]\n"
    )
    config = parse_xm(original)
    assert [d.target_dev for d in config.disks] == ["xvda"]
    bigger = dataclasses.replace(config, memory=512 * 1024, vcpus=2)
    out = format_xm(bigger, into=original)
    assert out.startswith("# Managed by hand: keep this comment\nname = \"guest\"   # the name\nmemory = 512\n")
    assert "on_xend_start = \"start\"  # xend's own key, not the XML's\n" in out
    assert "vcpus = 2\n" in out and "# a spare, for later" in out  # unchanged list kept as written
    assert "maxmem = 512" in out
    assert parse_xm(out) == dataclasses.replace(bigger, clock_offset="utc")
    # Unchanged content: the file comes back byte for byte.
    assert format_xm(config, into=original).startswith("# Managed by hand")


@pytest.mark.parametrize("text,line,words", [
    ("name = \"x\"\nmemroy = 512\n", 2, "unknown key 'memroy'"),
    ("name = \"x\"\nmemory = \"lots\"\n", 2, "memory: expected an integer"),
    ("name = \"x\"\ndisk = [ \"phy:/dev/sda\" ]\n", 2, "SOURCE,TARGET,MODE"),
    ("name = \"x\"\ndisk = [ \"phy:/dev/sda,xvda,q\" ]\n", 2, "unknown mode"),
    ("name = \"x\"\nvif = [ \"mac=00:16:3e:00:00:01,colour=blue\" ]\n", 2, "unknown option"),
    ("name = \"x\"\nvif = [ \"mac=nope\" ]\n", 2, "not a MAC address"),
    ("name = \"x\"\non_crash = \"explode\"\n", 2, "unknown lifecycle action"),
    ("name = \"x\"\nuuid = \"nope\"\n", 2, "uuid"),
    ("name = \"x\"\nbuilder = \"hvm\"\nserial = \"bogus:thing\"\n", 3, "serial"),
    ("name = \"x\"\nserial = \"pty\"\n", 2, "only HVM guests"),
    ("name = \"x\"\nmemory = 512\nvcpus = [ 1 ]\n", 3, "vcpus"),
    ("name = \"x\"\npci = [ \"01:00.0\" ]\n", 2, "unknown key 'pci'"),
    ("name = \"x\"\nmemory = 512 256\n", 2, "end of the statement"),
    ("name = \"x\"\ndisk = [ \"a,b,w\"\n", 2, "unterminated list"),
    ("name = \"x\"\nextra = \"a\x1fb\"\n", 2, "extra: character U+001F, which domain XML cannot carry"),
])
def test_bad_files_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigSyntaxError) as info:
        parse_xm(text)
    assert info.value.line == line and words in str(info.value)
    assert info.value.code == ErrorCode.CONF_SYNTAX


def test_serial_lists_keep_port_numbers() -> None:
    text = 'name = "x"\nbuilder = "hvm"\nkernel = "/l"\nserial = [ "none", "/dev/ttyS1" ]\n'
    cfg = parse_xm(text)
    assert [(c.kind, c.target_port) for c in cfg.chardevs] == [("serial", 1), ("console", 0)]
    assert 'serial = [ "none", "/dev/ttyS1" ]\n' in format_xm(cfg)


def test_a_file_without_name_is_refused() -> None:
    with pytest.raises(ConfigSyntaxError, match="sets no 'name'"):
        parse_xm("memory = 128\n")


def test_qemu_only_configuration_writes_nothing() -> None:
    original = "name = \"x\"\nmemory = 128\nkernel = \"/k\"\n"
    bad = DomainConfig(name="x", type="xen", memory=131072, os=OSConfig(type="linux", kernel="/k"),
                       disks=(Disk(source="/a", target_dev="vda", target_bus="virtio"),))
    conf = parse_conf(original)
    with pytest.raises(virtkit.NoSupportError, match=r"devices/disk\[1\] \(vda\): bus 'virtio'"):
        format_xm(bad, into=conf)
    assert conf.dumps() == original
    with pytest.raises(virtkit.NoSupportError, match="holds a ','"):
        format_xm(DomainConfig(name="x", type="xen", memory=131072, os=OSConfig(type="linux", kernel="/k"),
                               disks=(Disk(source="/a,b", target_dev="xvda"),)))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4).flatmap(lambda f: st.tuples(st.just(f), xen_domains(f, "xm"))))
def test_xml_to_xm_to_xml_keeps_every_modelled_field(case: tuple[int, DomainConfig]) -> None:
    fmt, config = case
    xml = format_domain(config)
    assert parse_xm(format_xm(parse_domain(xml), fmt), fmt) == config


@given(st.text(max_size=200))
def test_arbitrary_text_gives_a_model_or_an_error_with_its_line(text: str) -> None:
    try:
        parse_xm(text)
    except ConfigSyntaxError as e:
        assert e.line is not None or "sets no 'name'" in str(e)


_values = st.one_of(st.integers(-3, 70000), st.text(max_size=12).filter(lambda s: "\n" not in s and '"' not in s),
                    st.lists(st.text(max_size=20).filter(lambda s: "\n" not in s and '"' not in s), max_size=3))
_keys = st.sampled_from(sorted(__import__("virtkit.drivers.xen.xm", fromlist=["READ_KEYS"]).READ_KEYS))


@given(st.dictionaries(_keys, _values, max_size=10))
def test_arbitrary_keys_and_values_give_a_model_or_an_error_with_its_line(entries: dict[str, object]) -> None:
    from virtkit.drivers.xen.conf import ConfFile

    conf = ConfFile()
    conf.set("name", "fuzz")
    for key, value in entries.items():
        conf.set(key, value)  # type: ignore[arg-type]
    try:
        config = parse_xm(conf.dumps())
    except ConfigSyntaxError as e:
        assert e.line is not None or "sets no 'name'" in str(e)
    else:
        assert parse_domain(format_domain(config)) == config


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(1, 4), st.deferred(lambda: __import__("tests.xml.strategies", fromlist=["domains"]).domains()))
def test_any_domain_converts_or_is_refused_cleanly(fmt: int, config: DomainConfig) -> None:
    try:
        text = format_xm(config, fmt)
    except NoSupportError as e:
        assert e.code == ErrorCode.CONFIG_UNSUPPORTED
    else:
        parse_xm(text, fmt)


@pytest.mark.parametrize("cpus", ['":"', '"0-"', '["1", "x"]'])
def test_cpus_that_are_no_cpu_list_are_refused_with_their_line(cpus: str) -> None:
    text = f'name = "g"\nmemory = 64\ncpus = {cpus}\n'
    with pytest.raises(ConfigSyntaxError) as info:
        parse_xm(text)
    assert info.value.line == 3 and "CPU list" in str(info.value)


def test_cpus_with_spaces_are_read_as_a_cpu_list() -> None:
    assert parse_xm('name = "g"\nmemory = 64\ncpus = "0-1, 3"\n').cpuset == "0-1,3"
