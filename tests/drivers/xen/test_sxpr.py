"""xend S-expressions ⇄ domain model (python/virtkit/drivers/xen/sxpr.py).

Named like libvirt's tests: ``sexpr2xml`` reads each ``sexpr2xmldata`` case
and compares with its XML, ``xml2sexpr`` writes each ``xml2sexprdata`` case
and compares with its S-expression; each case exactly or structurally as
``corpus.py`` records (and the case's era requires).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import virtkit
from virtkit import sexpr
from virtkit.drivers.xen.sxpr import format_device_sxpr, format_sxpr, parse_sxpr
from virtkit.errors import ErrorCode, ErrorDomain, NoSupportError, SExprError, SExprSyntaxError
from virtkit.xml.domain import Disk, DomainConfig, Graphics, Interface, OSConfig, format_domain, parse_domain

from . import corpus
from .strategies import xen_domains


# ------------------------------------------------------------------ sexpr2xml

@pytest.mark.parametrize("case", corpus.sexpr2xml_cases())
def test_sexpr2xml(case: str) -> None:
    data = sexpr.join_continuations((corpus.SEXPR2XML / f"sexpr2xml-{case}.sexpr").read_bytes())
    got = parse_sxpr(data, corpus.sexpr2xml_format(case), lenient=True)
    expected = parse_domain((corpus.SEXPR2XML / f"sexpr2xml-{case}.xml").read_bytes())
    # Our output is valid domain XML that reads back as the same model.
    assert parse_domain(format_domain(got)) == got
    if corpus.status(corpus.SEXPR2XML_STATUS, case) == "exact":
        assert got == expected
    else:
        ignored = corpus.SEXPR2XML_IGNORED.get(case, set())
        assert corpus.normalize_model(got, ignored) == corpus.normalize_model(expected, ignored)


def test_sexpr2xml_statuses_are_earned() -> None:
    """A case recorded as structural really differs (else it should say exact)."""
    for case in corpus.sexpr2xml_cases():
        if case not in corpus.SEXPR2XML_STATUS or corpus.SEXPR2XML_STATUS[case] == "exact":
            continue
        data = sexpr.join_continuations((corpus.SEXPR2XML / f"sexpr2xml-{case}.sexpr").read_bytes())
        got = parse_sxpr(data, corpus.sexpr2xml_format(case), lenient=True)
        expected = parse_domain((corpus.SEXPR2XML / f"sexpr2xml-{case}.xml").read_bytes())
        assert got != expected, case


# ------------------------------------------------------------------ xml2sexpr

@pytest.mark.parametrize("case", corpus.xml2sexpr_cases())
def test_xml2sexpr(case: str) -> None:
    config = parse_domain(corpus.xml2sexpr_input(case).read_bytes())
    got = format_sxpr(config, corpus.xml2sexpr_format(case))
    expected = sexpr.join_continuations((corpus.XML2SEXPR / f"xml2sexpr-{case}.sexpr").read_bytes()).decode()
    assert "\n" not in got and got.startswith("(vm ")
    if corpus.status(corpus.XML2SEXPR_STATUS, case) == "exact":
        assert got == expected
    else:
        if case in corpus.XML2SEXPR_STATUS:
            assert got != expected, "recorded as structural, yet exact"
        assert corpus.normalize_sxpr(got) == corpus.normalize_sxpr(expected)


def test_dialects_differ_as_xend_versions_did() -> None:
    config = parse_domain((corpus.XML2SEXPR / "xml2sexpr-fv.xml").read_bytes())
    v1, v2, v3, v4 = (format_sxpr(config, f) for f in (1, 2, 3, 4))
    assert "(cdrom '/root/boot.iso')" in v1 and "ioemu:hda" in v1 and "(vnc 1))" in v1
    assert "(dev 'hdc:cdrom')" in v2 and "(vncdisplay 17)(keymap 'ja')" in v2
    assert v3 == v2  # the framebuffer change of format 3 is for PV guests
    assert "(device (vfb (type vnc)(vncunused 0)(vncdisplay 17)(keymap 'ja')))" in v4
    assert "(type ioemu)" in v3 and "(type ioemu)" not in v4
    pv = parse_domain((corpus.XML2SEXPR / "xml2sexpr-net-bridged.xml").read_bytes())
    pv = dataclasses.replace(pv, graphics=(Graphics(type="vnc", port=5901, listen="0.0.0.0"),))
    assert "(image (linux (kernel '/var/lib/xen/vmlinuz.2Dn2YT')" in format_sxpr(pv, 2)
    assert "(vnc 1)(vncunused 0)(vncdisplay 1)(vnclisten '0.0.0.0')" in format_sxpr(pv, 2)
    assert "(device (vkbd))(device (vfb (type vnc)(vncunused 0)(vncdisplay 1)" in format_sxpr(pv, 3)


def test_reader_accepts_every_dialect_and_both_roots() -> None:
    text = ("(domain (domid 7)(name x)(memory 64)(maxmem 128)(vcpus 4)(vcpu_avail 5)"
            "(uuid 4dea22b31d52d8f32516782e98ab3fa0)(bootloader '')(features )"
            "(image (hvm (kernel /hvmloader)(boot dc)(cdrom /c.iso)(fda /f.img)(apic 1)"
            "(serial (pty 'file:/tmp/s b'))(usbdevice tablet)(soundhw all)(localtime 1)"
            "(vnc 1)(vncunused 0)(vncdisplay 3)))"
            "(device (vbd (dev ioemu:hda)(uname phy:/dev/sda)(mode w!)))"
            "(device (vif (bridge br0)(type netfront)))(device (pci (dev 1)))(cpus ((1 2) () (3))))")
    cfg = parse_sxpr(text, 1)
    assert (cfg.id, cfg.memory, cfg.current_memory, cfg.vcpus, cfg.vcpus_current) == (7, 131072, 65536, 4, 2)
    assert cfg.bootloader is None and cfg.os.boot == ("cdrom", "hd") and cfg.clock_offset == "localtime"
    assert [(d.target_dev, d.device, d.type, d.shareable) for d in cfg.disks] == [
        ("hda", "disk", "block", True), ("hdc", "cdrom", "file", False), ("fda", "floppy", "file", False)]
    assert [(c.kind, c.type, c.target_port) for c in cfg.chardevs] == [
        ("serial", "pty", 0), ("serial", "file", 1), ("console", "pty", 0)]
    assert cfg.chardevs[1].source_path == "/tmp/s b"
    assert [s.model for s in cfg.sounds] == ["sb16", "es1370", "pcspk"]
    assert cfg.interfaces[0].model == "netfront" and cfg.interfaces[0].target_dev == "vif7.0"
    assert cfg.graphics[0].port == 5903 and cfg.inputs == (
        cfg.inputs[0], cfg.inputs[1]) and cfg.inputs[0].type == "tablet"
    assert [(p.vcpu, p.cpuset) for p in cfg.vcpu_pins] == [(0, "1-2"), (2, "3")]
    assert parse_sxpr(text.replace("(domain", "(vm", 1), 1) == cfg


# ------------------------------------------------------------- round trips

@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 4).flatmap(lambda f: st.tuples(st.just(f), xen_domains(f, "sxpr"))))
def test_xml_to_sexpr_to_xml_keeps_every_modelled_field(case: tuple[int, DomainConfig]) -> None:
    fmt, config = case
    xml = format_domain(config)
    assert parse_sxpr(format_sxpr(parse_domain(xml), fmt), fmt) == config


# ------------------------------------------------------- bad input, robustness

@pytest.mark.parametrize("text,where", [
    (b"(domain (name x)(memory 64)", "byte 27"),
    (b"(domain (name x) (memory 64)))", "byte 29"),
    (b"(domain (name 'x)(memory 64))", "byte 14"),
    (b"", "end of input"),
    (b"(domain (name 'a\x01')(memory 1))", r"byte 16: character U\+0001, which domain XML cannot carry"),
])
def test_malformed_sexpr_names_the_offset(text: bytes, where: str) -> None:
    with pytest.raises(SExprSyntaxError, match=where):
        parse_sxpr(text)


@pytest.mark.parametrize("text,path", [
    ("(domain (memory 64))", "domain/name"),
    ("(domain (name x))", "domain/memory"),
    ("(domain (name x)(memory lots))", "domain/memory"),
    ("(domain (name x)(memory 64)(uuid nope))", "domain/uuid"),
    ("(domain (name x)(memory 64)(on_crash explode))", "domain/on_crash"),
    ("(domain (name x)(memory 64)(vcpus 0))", "domain/vcpus"),
    ("(domain (name x)(memory 64)(image (hvm (serial 'bogus:thing'))))", "domain/image/hvm/serial"),
    ("(domain (name x)(memory 64)(device (vif (mac zz))))", "domain/device/vif/mac"),
    ("(domain (name (x))(memory 64))", "domain/name"),
    ("(node (name x))", "(node ...)"),
])
def test_bad_values_name_their_path(text: str, path: str) -> None:
    with pytest.raises(SExprError) as info:
        parse_sxpr(text)
    assert path in str(info.value)


def test_enormous_nesting_is_an_error_not_a_crash() -> None:
    deep = b"(domain (name x)(memory 1)" + b"(a " * 200_000 + b")" * 200_000 + b")"
    cfg = parse_sxpr(deep)
    assert cfg.name == "x"
    with pytest.raises(SExprSyntaxError):
        parse_sxpr(deep[:-1])


@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_model_or_a_located_error(data: bytes) -> None:
    try:
        parse_sxpr(data)
    except SExprSyntaxError as e:
        assert e.offset >= 0
    except SExprError as e:
        assert "domain" in str(e) or "(" in str(e)


_KEYS = ["name", "memory", "maxmem", "vcpus", "vcpu_avail", "uuid", "domid", "image", "device", "cpus",
         "on_crash", "localtime", "bootloader", "hvm", "linux", "vbd", "vif", "vfb", "dev", "uname", "mode",
         "mac", "serial", "boot", "soundhw", "kernel", "vnc", "vncdisplay", "usbdevice", "type"]
_atoms = st.one_of(st.sampled_from(_KEYS), st.integers(-5, 70000).map(str), st.text(max_size=6))
_trees = st.recursive(_atoms, lambda kids: st.tuples(st.sampled_from(_KEYS)).flatmap(
    lambda head: st.lists(kids, max_size=4).map(lambda rest: head + tuple(rest))), max_leaves=25)


@given(st.lists(_trees, max_size=8))
def test_arbitrary_domain_trees_give_a_model_or_a_located_error(children: list[object]) -> None:
    text = sexpr.dumps(("domain",) + tuple(children))  # type: ignore[arg-type]
    try:
        cfg = parse_sxpr(text)
    except SExprError as e:
        assert "domain" in str(e)
    else:
        assert parse_domain(format_domain(cfg)) == cfg


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.integers(1, 4), st.deferred(lambda: __import__("tests.xml.strategies", fromlist=["domains"]).domains()))
def test_any_domain_converts_or_is_refused_cleanly(fmt: int, config: DomainConfig) -> None:
    """Every valid domain XML gives an S-expression xend reads, or CONFIG_UNSUPPORTED."""
    try:
        text = format_sxpr(config, fmt)
    except NoSupportError as e:
        assert e.code == ErrorCode.CONFIG_UNSUPPORTED and e.domain == ErrorDomain.XEN
        assert str(e).startswith("unsupported configuration: ")
    else:
        parse_sxpr(text, fmt)


@pytest.mark.parametrize("change,place", [
    (dict(type="kvm"), "domain/@type"),
    (dict(os=OSConfig(type="hvm")), "os/loader"),
    (dict(os=OSConfig(type="linux")), "os"),
    (dict(disks=(Disk(source="/a", target_dev="vda", target_bus="virtio"),)), "devices/disk[1] (vda)"),
    (dict(interfaces=(Interface(type="user"),)), "devices/interface[1]"),
    (dict(interfaces=(Interface(type="network", source="default"),)), "devices/interface[1]"),
    (dict(graphics=(Graphics(type="spice"),)), "devices/graphics[1] (spice)"),
    (dict(features=("vmport",)), "features/vmport"),
    (dict(extra_devices=("<video/>",)), "devices/video"),
])
def test_qemu_only_configurations_are_refused_naming_the_place(change: dict[str, object], place: str) -> None:
    base = DomainConfig(name="x", type="xen", memory=65536,
                        os=OSConfig(type="linux", kernel="/boot/vmlinuz"))
    with pytest.raises(virtkit.NoSupportError) as info:
        format_sxpr(dataclasses.replace(base, **change))  # type: ignore[arg-type]
    assert info.value.code == ErrorCode.CONFIG_UNSUPPORTED
    assert place in str(info.value)


def test_device_sexprs_for_hotplug() -> None:
    pv = DomainConfig(name="x", type="xen", memory=65536, os=OSConfig(type="linux", kernel="/k"))
    hvm = DomainConfig(name="x", type="xen", memory=65536, os=OSConfig(type="hvm", loader="/l"))
    disk = Disk(type="block", source="/dev/vg/a", target_dev="xvdb")
    assert format_device_sxpr(disk, pv) == "(vbd (dev 'xvdb')(uname 'phy:/dev/vg/a')(mode 'w'))"
    assert format_device_sxpr(Disk(source="/x", target_dev="hdb", driver_name="tap"), hvm, 2) == \
        "(tap (dev 'hdb:disk')(uname 'tap:aio:/x')(mode 'w'))"
    nic = Interface(type="bridge", source="xenbr0", mac="00:16:3e:00:00:01", model="e1000")
    assert format_device_sxpr(nic, hvm, 3) == \
        "(vif (mac '00:16:3e:00:00:01')(bridge 'xenbr0')(model 'e1000')(type ioemu))"
    with pytest.raises(virtkit.NoSupportError):
        format_device_sxpr(Disk(source="/f", target_dev="fda", device="floppy"), hvm)


def test_serial_ports_keep_their_numbers() -> None:
    text = ("(domain (name x)(memory 64)(image (hvm (kernel /l)(serial (none /dev/ttyS1))"
            "(parallel none))))")
    cfg = parse_sxpr(text)
    assert [(c.kind, c.type, c.source_path, c.target_port) for c in cfg.chardevs] == [
        ("serial", "dev", "/dev/ttyS1", 1), ("console", "dev", "/dev/ttyS1", 0)]
    assert "(parallel none)(serial (none /dev/ttyS1))" in format_sxpr(cfg)
    assert parse_sxpr(format_sxpr(cfg)) == cfg


def test_quoting_survives_hostile_strings() -> None:
    name = "it's a \\ (test) \"domain\""
    cfg = DomainConfig(name=name, type="xen", memory=65536, description="line\nbreak",
                       os=OSConfig(type="linux", kernel="/k '(x)'"))
    back = parse_sxpr(format_sxpr(cfg))
    assert back.name == name and back.os.kernel == "/k '(x)'" and back.description == "line\nbreak"
