"""Hypothesis strategies for valid XML models (domain, devices, network, capabilities, node).

"Valid" means: a model whose canonical XML the schemas accept and that
survives ``parse(format(m)) == m``. Values are drawn from what each field
documents (enumerations from the schemas, free text anywhere the format
allows it, escaping-hostile characters included). Verbatim ``extra`` strings
are produced the way the parser produces them (built with lxml, serialized by
``virtkit.xml._document.verbatim``), so they are in canonical form.

Other tests may reuse these: ``from tests.xml.strategies import domains``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from virtkit.xml._document import verbatim
from virtkit.xml.capabilities import Capabilities, GuestCaps, GuestDomain
from virtkit.xml.domain import (
    CharDevice,
    ClockTimer,
    DomainConfig,
    Disk,
    Graphics,
    Input,
    Interface,
    LifecycleAction,
    OSConfig,
    Sound,
    VcpuPin,
)
from virtkit.xml.network import DHCPHost, DHCPRange, DNSHost, IPConfig, NetworkConfig
from virtkit.xml.node import NodeConfig

__all__ = [
    "text",
    "tokens",
    "uuids",
    "macs",
    "ipv4s",
    "ipv6s",
    "verbatim_elements",
    "disks",
    "interfaces",
    "chardevs",
    "graphics",
    "inputs",
    "sounds",
    "devices",
    "os_configs",
    "domains",
    "networks",
    "capabilities",
    "nodes",
]

# ------------------------------------------------------------------ scalars

#: Any text XML 1.0 can carry (control characters except tab, newline and CR excluded).
_chars = st.characters(
    blacklist_categories=("Cs", "Cc", "Cn"), whitelist_characters="\t\n\r&<>'\"]"
)
text = st.text(_chars, max_size=20)
nonempty_text = st.text(_chars, min_size=1, max_size=20)
#: Names without blanks: device names, bridges, machine types...
tokens = st.text(
    st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_.:/&'<"),
    min_size=1,
    max_size=12,
)
uuids = st.binary(min_size=16, max_size=16)
macs = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(lambda bs: ":".join(f"{b:02x}" for b in bs))
ipv4s = st.lists(st.integers(0, 255), min_size=4, max_size=4).map(lambda bs: ".".join(map(str, bs)))
ipv6s = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(lambda ws: ":".join(f"{w:x}" for w in ws))
cpusets = st.lists(
    st.one_of(
        st.integers(0, 63).map(str),
        st.tuples(st.integers(0, 31), st.integers(32, 63)).map(lambda t: f"{t[0]}-{t[1]}"),
        st.integers(0, 63).map(lambda n: f"^{n}"),
    ),
    min_size=1,
    max_size=4,
).map(",".join)
ports = st.integers(0, 65535)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


# ----------------------------------------------------------- verbatim XML

_XML_NAMES = st.sampled_from(["a", "b", "item", "x-y", "n.1", "q_z"])
_ATTR_VALUES = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn"), whitelist_characters="&<>'\""), max_size=8
)


@st.composite
def _element(draw: st.DrawFn, names: st.SearchStrategy[str], depth: int = 0) -> Any:
    el = etree.Element(draw(names))
    for name in draw(st.lists(_XML_NAMES, max_size=3, unique=True)):
        el.set(name, draw(_ATTR_VALUES))
    if depth < 2:
        for _ in range(draw(st.integers(0, 2))):
            el.append(draw(_element(_XML_NAMES, depth + 1)))
    if not len(el) and draw(st.booleans()):
        # Non-blank text: canonical verbatim strings keep it as written.
        el.text = draw(st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=8))
    return el


def verbatim_elements(names: list[str] | st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Canonical verbatim strings of elements whose tag is drawn from ``names``."""
    name_strategy = st.sampled_from(names) if isinstance(names, list) else names
    return _element(name_strategy).map(verbatim)


@st.composite
def _namespaced_element(draw: st.DrawFn) -> str:
    el = etree.Element("{http://example.org/ns/1.0}meta", nsmap={"ex": "http://example.org/ns/1.0"})
    el.set("value", draw(_ATTR_VALUES))
    return verbatim(el)


# Names outside the modelled sets of each extension point.
_DOMAIN_EXTRA = st.one_of(
    verbatim_elements(["metadata", "cpu", "resource", "pm", "seclabel", "title", "memtune"]),
    _namespaced_element(),
)
_DEVICES_EXTRA = verbatim_elements(["controller", "memballoon", "video", "channel", "hostdev", "rng"])
_COMMON_DETAIL = ["address", "alias", "boot", "acpi"]

# ------------------------------------------------------------------ devices


@st.composite
def disks(draw: st.DrawFn) -> Disk:
    return Disk(
        type=draw(st.sampled_from(["file", "block"])),
        device=draw(st.sampled_from(["disk", "cdrom", "floppy"])),
        source=draw(_opt(nonempty_text)),
        target_dev=draw(tokens),
        target_bus=draw(_opt(st.sampled_from(["ide", "virtio", "xen", "scsi", "sata", "fdc", "usb"]))),
        driver_name=draw(_opt(tokens)),
        driver_type=draw(_opt(tokens)),
        readonly=draw(st.booleans()),
        shareable=draw(st.booleans()),
        driver_cache=draw(_opt(st.sampled_from(["default", "none", "writethrough", "writeback", "directsync",
                                                 "unsafe"]))),
        driver_io=draw(_opt(st.sampled_from(["threads", "native", "io_uring"]))),
        driver_discard=draw(_opt(st.sampled_from(["ignore", "unmap"]))),
        extra=tuple(draw(st.lists(verbatim_elements(_COMMON_DETAIL + ["serial", "backingStore", "iotune"]),
                                  max_size=2))),
    )


@st.composite
def interfaces(draw: st.DrawFn) -> Interface:
    kind = draw(st.sampled_from(["bridge", "network", "user", "ethernet", "mcast", "server", "client"]))
    source = address = port = None
    if kind in ("bridge", "ethernet"):
        source = draw(_opt(tokens))
    elif kind == "network":
        source = draw(nonempty_text)
    elif kind != "user":
        address = draw(ipv4s)
        port = draw(ports)
    return Interface(
        type=kind,
        mac=draw(_opt(macs)),
        source=source,
        source_address=address,
        source_port=port,
        ip_address=draw(_opt(ipv4s)),
        script=draw(_opt(text)),
        target_dev=draw(_opt(tokens)),
        model=draw(_opt(tokens)),
        source_bridge=draw(_opt(tokens)) if kind == "network" else None,
        extra=tuple(draw(st.lists(verbatim_elements(_COMMON_DETAIL + ["driver", "link", "mtu"]), max_size=2))),
    )


@st.composite
def chardevs(draw: st.DrawFn) -> CharDevice:
    kind = draw(st.sampled_from(["serial", "parallel", "console"]))
    dev_type = draw(st.sampled_from(["pty", "file", "pipe", "null", "stdio", "vc", "tcp", "udp", "unix", "dev"]))
    f: dict[str, Any] = {}
    if dev_type in ("pty", "file", "pipe", "dev"):
        f["source_path"] = draw(_opt(nonempty_text))
    elif dev_type == "unix":
        f["source_mode"] = draw(_opt(st.sampled_from(["bind", "connect"])))
        f["source_path"] = draw(nonempty_text)
    elif dev_type == "tcp":
        f["source_mode"] = draw(_opt(st.sampled_from(["bind", "connect"])))
        f["source_host"] = draw(tokens)
        f["source_service"] = draw(ports.map(str))
        f["protocol"] = draw(_opt(st.sampled_from(["raw", "telnet", "telnets", "tls"])))
    elif dev_type == "udp":
        if draw(st.booleans()):
            f["source_mode"] = "bind"
            f["source_host"] = draw(tokens)
            f["source_service"] = draw(ports.map(str))
        f["connect_host"] = draw(tokens)
        f["connect_service"] = draw(ports.map(str))
    return CharDevice(
        kind=kind,
        type=dev_type,
        target_port=draw(_opt(st.integers(0, 2**32 - 1))),
        target_type=draw(_opt(tokens)),
        target_model=draw(_opt(tokens)),
        tty=draw(_opt(nonempty_text)),
        extra=tuple(draw(st.lists(verbatim_elements(["alias", "address", "log"]), max_size=2))),
        **f,
    )


@st.composite
def graphics(draw: st.DrawFn) -> Graphics:
    extra = tuple(draw(st.lists(verbatim_elements(["alias", "gl", "image"]), max_size=2)))
    if draw(st.booleans()):
        return Graphics(type="sdl", display=draw(_opt(tokens)), xauth=draw(_opt(nonempty_text)), extra=extra)
    return Graphics(
        type="vnc",
        port=draw(_opt(st.integers(-1, 65535))),
        autoport=draw(_opt(st.booleans())),
        listen=draw(_opt(st.one_of(ipv4s, tokens))),
        keymap=draw(_opt(tokens)),
        passwd=draw(_opt(text)),
        extra=extra,
    )


@st.composite
def inputs(draw: st.DrawFn) -> Input:
    return Input(
        type=draw(st.sampled_from(["mouse", "tablet", "keyboard"])),
        bus=draw(_opt(st.sampled_from(["ps2", "usb", "xen", "virtio"]))),
        extra=tuple(draw(st.lists(verbatim_elements(_COMMON_DETAIL), max_size=2))),
    )


@st.composite
def sounds(draw: st.DrawFn) -> Sound:
    return Sound(
        model=draw(st.sampled_from(["sb16", "es1370", "pcspk", "ac97", "ich6", "ich7", "ich9", "usb"])),
        extra=tuple(draw(st.lists(verbatim_elements(_COMMON_DETAIL + ["codec"]), max_size=2))),
    )


#: Any one hot-pluggable device.
devices = st.one_of(disks(), interfaces(), chardevs(), graphics(), inputs(), sounds())

# --------------------------------------------------------------- the domain

_FEATURES = ["pae", "nonpae", "acpi", "apic", "hap", "viridian", "privnet", "pvspinlock", "vmport", "smm",
             "hyperv", "kvm", "gic", "ioapic", "vmcoreinfo"]


@st.composite
def _complex_feature(draw: st.DrawFn) -> str:
    el = etree.Element(draw(st.sampled_from(_FEATURES)))
    el.set("state", draw(st.sampled_from(["on", "off"])))
    if draw(st.booleans()):
        etree.SubElement(el, "relaxed").set("state", "on")
    return verbatim(el)


@st.composite
def os_configs(draw: st.DrawFn) -> OSConfig:
    loader = draw(_opt(text))
    return OSConfig(
        type=draw(st.sampled_from(["linux", "xen", "hvm"])),
        arch=draw(_opt(tokens)),
        machine=draw(_opt(tokens)),
        loader=loader,
        kernel=draw(_opt(text)),
        initrd=draw(_opt(text)),
        cmdline=draw(_opt(text)),
        root=draw(_opt(text)),
        boot=tuple(draw(st.lists(st.sampled_from(["fd", "hd", "cdrom", "network"]), max_size=4))),
        loader_type=None if loader is None else draw(_opt(st.sampled_from(["rom", "pflash"]))),
        loader_readonly=None if loader is None else draw(_opt(st.booleans())),
        loader_secure=None if loader is None else draw(_opt(st.booleans())),
        firmware=draw(_opt(st.sampled_from(["bios", "efi"]))),
        extra=tuple(draw(st.lists(verbatim_elements(["nvram", "bootmenu", "smbios", "bios"]), max_size=2))),
    )


@st.composite
def _timers(draw: st.DrawFn) -> ClockTimer:
    return ClockTimer(
        name=draw(st.sampled_from(["platform", "pit", "rtc", "hpet", "tsc", "kvmclock", "hypervclock"])),
        tickpolicy=draw(_opt(st.sampled_from(["delay", "catchup", "merge", "discard"]))),
        present=draw(_opt(st.booleans())),
        track=draw(_opt(st.sampled_from(["boot", "guest", "wall", "realtime"]))),
        frequency=draw(_opt(st.integers(0, 2**40))),
        mode=draw(_opt(st.sampled_from(["auto", "native", "emulate", "paravirt", "smpsafe"]))),
    )


_actions = _opt(st.sampled_from(list(LifecycleAction)))


@st.composite
def domains(draw: st.DrawFn, max_devices: int = 3) -> DomainConfig:
    """Valid :class:`DomainConfig` models, up to ``max_devices`` of each device kind."""
    lists = lambda s: st.lists(s, max_size=max_devices)  # noqa: E731
    clock = draw(_opt(st.sampled_from(["utc", "localtime"])))
    return DomainConfig(
        name=draw(nonempty_text),
        type=draw(st.sampled_from(["xen", "kvm", "qemu", "kqemu", "test"])),
        uuid=draw(_opt(uuids)),
        id=draw(_opt(st.integers(-1, 2**31 - 1))),
        memory=draw(st.integers(0, 2**50)),
        current_memory=draw(_opt(st.integers(0, 2**50))),
        vcpus=draw(st.integers(1, 4096)),
        vcpus_current=draw(_opt(st.integers(1, 4096))),
        cpuset=draw(_opt(cpusets)),
        vcpu_pins=tuple(draw(lists(st.builds(VcpuPin, st.integers(0, 4095), cpusets)))),
        os=draw(os_configs()),
        bootloader=draw(_opt(text)),
        bootloader_args=draw(_opt(text)),
        features=tuple(draw(st.lists(st.sampled_from(_FEATURES), max_size=4))),
        clock_offset=clock,
        on_poweroff=draw(_actions),
        on_reboot=draw(_actions),
        on_crash=draw(_actions),
        emulator=draw(_opt(text)),
        disks=tuple(draw(lists(disks()))),
        interfaces=tuple(draw(lists(interfaces()))),
        chardevs=tuple(draw(lists(chardevs()))),
        graphics=tuple(draw(lists(graphics()))),
        inputs=tuple(draw(lists(inputs()))),
        sounds=tuple(draw(lists(sounds()))),
        description=draw(_opt(text)),
        extra=tuple(draw(st.lists(_DOMAIN_EXTRA, max_size=2))),
        extra_devices=tuple(draw(st.lists(_DEVICES_EXTRA, max_size=2))),
        features_extra=tuple(draw(st.lists(_complex_feature(), max_size=2))),
        clock_adjustment=None if clock is None else draw(_opt(st.one_of(st.just("reset"),
                                                                          st.integers(-10**6, 10**6).map(str)))),
        clock_timers=() if clock is None else tuple(draw(st.lists(_timers(), max_size=3))),
        vcpu_placement=draw(_opt(st.sampled_from(["static", "auto"]))),
    )


# ------------------------------------------------------------------ network


@st.composite
def _ips(draw: st.DrawFn) -> IPConfig:
    if draw(st.booleans()):
        address, prefix, family = draw(ipv4s), draw(st.integers(0, 32)), draw(st.sampled_from([None, "ipv4"]))
        addresses = ipv4s
    else:
        address, prefix, family = draw(ipv6s), draw(st.integers(0, 128)), draw(st.sampled_from([None, "ipv6"]))
        addresses = ipv6s
    return IPConfig(
        address=address,
        prefix=prefix,
        family=family,
        dhcp_ranges=tuple(draw(st.lists(st.builds(DHCPRange, addresses, addresses), max_size=2))),
        dhcp_hosts=tuple(draw(st.lists(st.builds(DHCPHost, _opt(macs), _opt(text), _opt(addresses)),
                                       max_size=2))),
    )


@st.composite
def networks(draw: st.DrawFn) -> NetworkConfig:
    """Valid :class:`NetworkConfig` models."""
    mode = draw(st.sampled_from([None, "nat", "route"]))
    nat_ports = draw(_opt(st.tuples(ports, ports))) if mode else None
    nat_addresses = draw(_opt(st.tuples(ipv4s, ipv4s))) if mode else None
    return NetworkConfig(
        name=draw(nonempty_text),
        uuid=draw(_opt(uuids)),
        bridge=draw(_opt(tokens)),
        stp=draw(_opt(st.booleans())),
        delay=draw(_opt(st.integers(0, 2**32 - 1))),
        mac=draw(_opt(macs)),
        forward_mode=mode,
        forward_dev=draw(_opt(tokens)) if mode else None,
        domain_name=draw(_opt(text)),
        ips=tuple(draw(st.lists(_ips(), max_size=3))),
        dns_hosts=tuple(draw(st.lists(
            st.builds(DNSHost, st.one_of(ipv4s, ipv6s), st.lists(nonempty_text, min_size=1, max_size=3).map(tuple)),
            max_size=2))),
        extra=tuple(draw(st.lists(verbatim_elements(["mtu", "portgroup", "route", "metadata"]), max_size=2))),
        nat_port_start=None if nat_ports is None else nat_ports[0],
        nat_port_end=None if nat_ports is None else nat_ports[1],
        nat_address_start=None if nat_addresses is None else nat_addresses[0],
        nat_address_end=None if nat_addresses is None else nat_addresses[1],
    )


# ------------------------------------------------------------- capabilities

_names = st.sampled_from(["pae", "nonpae", "vmx", "svm", "acpi", "apic", "ia64_be", "cpuselection"])


@st.composite
def _guest_domains(draw: st.DrawFn) -> GuestDomain:
    return GuestDomain(draw(tokens), draw(_opt(text)), tuple(draw(st.lists(tokens, max_size=2))))


@st.composite
def _guests(draw: st.DrawFn) -> GuestCaps:
    return GuestCaps(
        os_type=draw(tokens),
        arch=draw(tokens),
        wordsize=draw(st.sampled_from([32, 64])),
        emulator=draw(_opt(text)),
        loader=draw(_opt(text)),
        machines=tuple(draw(st.lists(tokens, max_size=3))),
        domains=tuple(draw(st.lists(_guest_domains(), max_size=2))),
        features=tuple(draw(st.lists(_names, max_size=3))),
    )


@st.composite
def capabilities(draw: st.DrawFn) -> Capabilities:
    """Valid :class:`Capabilities` models."""
    return Capabilities(
        host_arch=draw(tokens),
        host_features=tuple(draw(st.lists(_names, max_size=3))),
        host_cpu_model=draw(_opt(text)),
        host_cpu_vendor=draw(_opt(text)),
        guests=tuple(draw(st.lists(_guests(), max_size=3))),
        host_extra=tuple(draw(st.lists(verbatim_elements(["uuid", "topology", "secmodel", "iommu"]), max_size=2))),
        host_cpu_extra=tuple(draw(st.lists(verbatim_elements(["microcode", "feature", "pages"]), max_size=2))),
    )


# --------------------------------------------------------------------- node


@st.composite
def nodes(draw: st.DrawFn) -> NodeConfig:
    """Valid :class:`NodeConfig` models (documents inline)."""
    count = _opt(st.integers(0, 2**32 - 1))
    return NodeConfig(
        cpu_model=draw(_opt(text)),
        cpu_mhz=draw(count),
        cpus=draw(count),
        nodes=draw(count),
        sockets=draw(count),
        cores=draw(count),
        threads=draw(count),
        memory=draw(_opt(st.integers(0, 2**63))),
        domains=tuple(draw(st.lists(domains(max_devices=1), max_size=2))),
        networks=tuple(draw(st.lists(networks(), max_size=2))),
    )
