"""The command table: every command, its options, help text and handler.

Each :class:`~virtkit.cli.parser.Command` lists its options in positional
order; a handler receives the :class:`~virtkit.cli.session.Session` and the
bound :class:`~virtkit.cli.parser.Args`. Handlers print what today's virsh
prints (see :mod:`virtkit.cli.output` for the layouts) and raise
:class:`~virtkit.cli.session.CommandError` with virsh's context line when the
API refuses. They import what they need when they run: the XML layer, JSON
and the progress bar are loaded only by the commands that use them.

The commands are those of libvirt 0.2.2's virsh, each taking a domain by id,
UUID or name, plus ``net-info``, ``net-dhcp-leases``, ``domifaddr`` and
``list --name/--uuid/--id`` from today's virsh and ``--json`` on the listing
and info commands.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from virtkit.cli.i18n import N_, _
from virtkit.cli.parser import Args, Command, Opt
from virtkit.cli.session import CommandError, QuitRequested, Session

if TYPE_CHECKING:
    from virtkit.domain import Domain
    from virtkit.network import Network

__all__ = ["COMMANDS", "find", "GROUPS"]

T = TypeVar("T")

#: Largest XML file a command reads (virsh's limit too).
MAX_XML_FILE = 10 * 1024 * 1024

#: Help groups: keyword -> title (marked for translation).
GROUPS = {
    "domain": N_("Domain Management"),
    "monitor": N_("Domain Monitoring"),
    "host": N_("Host and Hypervisor"),
    "network": N_("Networking"),
    "virtkit": N_("Virtkit itself"),
}


# --- helpers ------------------------------------------------------------------------------

def _attempt(context: str | None, call: Callable[[], T]) -> T:
    """Run an API call; a VirtError becomes a CommandError with ``context``."""
    from virtkit.errors import VirtError

    try:
        return call()
    except VirtError as e:
        raise CommandError(context, e) from None


def _read_xml(path: str) -> str:
    """The text of an XML file the user named, or virsh's error for it."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_XML_FILE + 1)
    except IsADirectoryError as e:
        raise CommandError(_("Failed to read file '%(path)s': %(reason)s")
                           % {"path": path, "reason": e.strerror}) from None
    except OSError as e:
        raise CommandError(_("Failed to open file '%(path)s': %(reason)s")
                           % {"path": path, "reason": e.strerror}) from None
    if len(data) > MAX_XML_FILE:
        raise CommandError(_("Failed to read file '%(path)s': larger than %(limit)d bytes")
                           % {"path": path, "limit": MAX_XML_FILE})
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CommandError(_("Failed to read file '%(path)s': not UTF-8 text (byte %(offset)d)")
                           % {"path": path, "offset": e.start}) from None


def _yes_no(value: bool) -> str:
    return _("yes") if value else _("no")


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _json(s: Session, document: object) -> None:
    from virtkit.cli.output import to_json

    s.json_output = True
    s.print(to_json(document))


def _dom_arg(s: Session, a: Args) -> Domain:
    return s.domain(a.text("domain"))


def _net_arg(s: Session, a: Args) -> Network:
    return s.network(a.text("network"))


#: virsh's words for each state (equal to DomainState.label; marked here for translation).
STATE_LABELS = {
    0: N_("no state"), 1: N_("running"), 2: N_("idle"), 3: N_("paused"), 4: N_("in shutdown"),
    5: N_("shut off"), 6: N_("crashed"), 7: N_("pmsuspended"),
}


def _state_label(state: int) -> str:
    label = STATE_LABELS.get(int(state))
    return _(label) if label is not None else _("unknown")


_DOMAIN = Opt("domain", "domain", N_("domain name, id or uuid"), required=True, positional=True)
_NETWORK = Opt("network", "network", N_("network name or uuid"), required=True, positional=True)
_JSON = Opt("json", "bool", N_("print one JSON document instead of the table"))


# --- domains: listing and information ------------------------------------------------------------

def cmd_list(s: Session, a: Args) -> None:
    from virtkit.errors import NoDomainError

    conn = s.connection()
    everything = a.flag("all")
    want_active = everything or not a.flag("inactive")
    want_inactive = everything or a.flag("inactive")
    listing = _attempt(_("Failed to list domains"), conn.list_all_domains)
    entries: list[tuple[int, Domain, int]] = []
    for dom in listing:
        try:
            state = int(dom.state())
            dom_id = dom.id
        except NoDomainError:
            continue  # went away while listing
        except Exception as e:  # noqa: BLE001 - reported like any API failure
            raise CommandError(_("Failed to list domains"), e) from None
        active = dom_id >= 0
        if (active and want_active) or (not active and want_inactive):
            entries.append((dom_id, dom, state))
    entries.sort(key=lambda e: (e[0] < 0, e[0] if e[0] >= 0 else 0, e[1].name))
    if a.flag("json"):
        _json(s, [{"id": i if i >= 0 else None, "name": d.name, "uuid": d.uuid_string,
                   "state": _state_label(st), "state_code": st} for i, d, st in entries])
        return
    if a.flag("name") or a.flag("uuid") or a.flag("id"):
        lines: list[str] = []
        for i, d, _st in entries:
            if a.flag("id") and i < 0:
                continue
            cols = ([str(i)] if a.flag("id") else []) + ([d.name] if a.flag("name") else []) + \
                   ([d.uuid_string] if a.flag("uuid") else [])
            lines.append(" ".join(cols) + "\n")
        s.print("".join(lines))
        return
    from virtkit.cli.output import table

    rows = [(str(i) if i >= 0 else "-", d.name, _state_label(st)) for i, d, st in entries]
    s.print(table((_("Id"), _("Name"), _("State")), rows, quiet=s.quiet))


def cmd_dominfo(s: Session, a: Args) -> None:
    from virtkit.cli.output import cpu_seconds, fields

    dom = _dom_arg(s, a)
    failed = _("Failed to get information of domain '%s'") % dom.name
    info = _attempt(failed, dom.info)
    dom_id = _attempt(failed, lambda: dom.id)
    os_type = _attempt(failed, dom.os_type)
    persistent = _attempt(failed, dom.is_persistent)
    autostart = _attempt(failed, dom.get_autostart)
    if a.flag("json"):
        _json(s, {
            "id": dom_id if dom_id >= 0 else None, "name": dom.name, "uuid": dom.uuid_string,
            "os_type": os_type, "state": _state_label(info.state), "state_code": int(info.state),
            "cpus": info.nr_virt_cpu, "cpu_time_ns": info.cpu_time,
            "max_memory_kib": info.max_memory, "used_memory_kib": info.memory,
            "persistent": persistent, "autostart": autostart, "managed_save": False,
        })
        return
    pairs = [
        (_("Id:"), str(dom_id) if dom_id >= 0 else "-"),
        (_("Name:"), dom.name),
        (_("UUID:"), dom.uuid_string),
        (_("OS Type:"), os_type),
        (_("State:"), _state_label(info.state)),
        (_("CPU(s):"), str(info.nr_virt_cpu)),
    ]
    if info.cpu_time:
        pairs.append((_("CPU time:"), cpu_seconds(info.cpu_time)))
    pairs += [
        (_("Max memory:"), _("%d KiB") % info.max_memory),
        (_("Used memory:"), _("%d KiB") % info.memory),
        (_("Persistent:"), _yes_no(persistent)),
        (_("Autostart:"), _("enable") if autostart else _("disable")),
        # No driver keeps managed-save images, so there is never one.
        (_("Managed save:"), _("no")),
    ]
    s.print(fields(pairs, 15))


def cmd_domstate(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    state = int(_attempt(_("Failed to get state of domain '%s'") % dom.name, dom.state))
    if a.flag("json"):
        _json(s, {"name": dom.name, "state": _state_label(state), "state_code": state})
        return
    s.print(_state_label(state) + "\n")


#: ``domifaddr --source`` words -> virtkit.domain.InterfaceAddressSource values.
ADDRESS_SOURCES = {"lease": 0, "agent": 1, "arp": 2}


def _protocol(ip_type: int) -> str:
    return "ipv6" if int(ip_type) == 1 else "ipv4"


def cmd_domifaddr(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    word = a.optional_text("source") or "lease"
    if word not in ADDRESS_SOURCES:
        raise CommandError(_("Unknown data source '%s' (known: lease, agent, arp)") % word)
    only = a.optional_text("interface")
    ifaces = _attempt(_("Failed to query for interfaces addresses"),
                      lambda: dom.interface_addresses(ADDRESS_SOURCES[word]))
    ifaces = [i for i in ifaces if only is None or i.name == only or i.hwaddr == only]
    if a.flag("json"):
        _json(s, [{"name": i.name, "hwaddr": i.hwaddr,
                   "addresses": [{"protocol": _protocol(x.type), "address": x.addr,
                                  "prefix": x.prefix} for x in i.addrs]} for i in ifaces])
        return
    # virsh's own fixed-width layout (not its table layout): 79 dashes under the header.
    out = [" %-10s %-20s %-8s     %s\n" % (_("Name"), _("MAC address"), _("Protocol"),
                                          _("Address")), "-" * 79 + "\n"]
    for i in ifaces:
        for n, x in enumerate(i.addrs or ()):
            first = n == 0 or a.flag("full")
            out.append(" %-10s %-17s    %-12s %s\n" % (
                i.name if first else "-", (i.hwaddr or "-") if first else "-",
                _protocol(x.type), f"{x.addr}/{x.prefix}"))
    s.print("".join(out))


def cmd_domid(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    dom_id = _attempt(_("failed to get domain '%s'") % a.text("domain"), lambda: dom.id)
    s.print((str(dom_id) if dom_id >= 0 else "-") + "\n")


def cmd_domname(s: Session, a: Args) -> None:
    s.print(_dom_arg(s, a).name + "\n")


def cmd_domuuid(s: Session, a: Args) -> None:
    s.print(_dom_arg(s, a).uuid_string + "\n")


#: vCPU number, host CPU, state, CPU time (ns), affinity; None where unknown (inactive).
_VcpuRow = tuple[int, int | None, str | None, int | None, tuple[bool, ...]]


def cmd_vcpuinfo(s: Session, a: Args) -> None:
    from virtkit.cli.output import cpu_seconds, fields
    from virtkit.cpuset import cpumap_to_yn

    dom = _dom_arg(s, a)
    failed = _("Failed to get vCPU information of domain '%s'") % dom.name
    entries: list[_VcpuRow]
    if _attempt(failed, dom.is_active):
        vcpus = _attempt(failed, dom.vcpus)
        entries = [(v.number, v.cpu, _vcpu_state(int(v.state)), v.cpu_time, v.affinity)
                   for v in vcpus]
    else:
        entries = _inactive_vcpus(s, dom, failed)
    if a.flag("json"):
        from virtkit.cpuset import format_cpulist

        _json(s, [{"vcpu": n, "cpu": cpu, "state": state, "cpu_time_ns": t,
                   "affinity": cpumap_to_yn(aff), "cpulist": format_cpulist(aff)}
                  for n, cpu, state, t, aff in entries])
        return
    blocks: list[str] = []
    for n, cpu, state, t, aff in entries:
        if state is None:
            # Today's virsh prints these N/A lines for an inactive domain, "CPU time"
            # without its colon included; kept so that both parse alike.
            pairs = [(_("VCPU:"), str(n)), (_("CPU:"), _("N/A")), (_("State:"), _("N/A")),
                     (_("CPU time"), _("N/A")), (_("CPU Affinity:"), cpumap_to_yn(aff))]
        else:
            pairs = [(_("VCPU:"), str(n)), (_("CPU:"), str(cpu)), (_("State:"), state),
                     (_("CPU time:"), cpu_seconds(t or 0)),
                     (_("CPU Affinity:"), cpumap_to_yn(aff))]
        blocks.append(fields(pairs, 15))
    s.print("\n".join(blocks))  # a blank line between blocks, as virsh prints them


def _vcpu_state(state: int) -> str:
    return {0: _("offline"), 1: _("running"), 2: _("blocked")}.get(state, _("unknown"))


def _inactive_vcpus(s: Session, dom: Domain, failed: str) -> list[_VcpuRow]:
    """What an inactive domain's definition says about its vCPUs (no CPU, state or time)."""
    from virtkit.cpuset import parse_cpulist
    from virtkit.errors import VirtError
    from virtkit.xml.domain import parse_domain

    conn = s.connection()
    try:
        config = parse_domain(dom.xml_desc(inactive=True))
        ncpus = conn.get_node_info().cpus
        default = parse_cpulist(config.cpuset, ncpus) if config.cpuset else (True,) * ncpus
        pins = {p.vcpu: parse_cpulist(p.cpuset, ncpus) for p in config.vcpu_pins}
    except VirtError as e:
        raise CommandError(failed, e) from None
    return [(n, None, None, None, pins.get(n, default)) for n in range(config.vcpus)]


def cmd_dumpxml(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    xml = _attempt(_("Failed to get the XML description of domain '%s'") % dom.name,
                   lambda: dom.xml_desc(inactive=a.flag("inactive")))
    s.print(_ensure_newline(xml))


#: ``domxml-from-native``/``domxml-to-native`` formats (virsh's names).
NATIVE_FORMATS = ("xen-sxpr", "xen-xm")


def _native_args(a: Args) -> tuple[str, int]:
    """The native format and the xend_config_format of a conversion command."""
    fmt = a.text("format")
    if fmt not in NATIVE_FORMATS:
        raise CommandError(_("unsupported native format '%(format)s' (known: %(known)s)")
                           % {"format": fmt, "known": ", ".join(NATIVE_FORMATS)})
    dialect = a.get("xend-config-format", 4)
    assert isinstance(dialect, int)
    if dialect not in (1, 2, 3, 4):
        raise CommandError(_("xend config format must be 1, 2, 3 or 4, not %d") % dialect)
    return fmt, dialect


def cmd_domxml_from_native(s: Session, a: Args) -> None:
    from virtkit.xml.domain import format_domain

    path = a.text("config")
    text = _read_xml(path)
    fmt, dialect = _native_args(a)
    failed = _("Failed to convert %(file)s from %(format)s") % {"file": path, "format": fmt}

    def convert() -> str:
        if fmt == "xen-sxpr":
            from virtkit.drivers.xen.sxpr import parse_sxpr

            return format_domain(parse_sxpr(text, dialect))
        from virtkit.drivers.xen.xm import parse_xm

        return format_domain(parse_xm(text, dialect))

    s.print(_ensure_newline(_attempt(failed, convert)))


def cmd_domxml_to_native(s: Session, a: Args) -> None:
    from virtkit.xml.domain import parse_domain

    path = a.text("xml")
    text = _read_xml(path)
    fmt, dialect = _native_args(a)
    failed = _("Failed to convert %(file)s to %(format)s") % {"file": path, "format": fmt}

    def convert() -> str:
        config = parse_domain(text)
        if fmt == "xen-sxpr":
            from virtkit.drivers.xen.sxpr import format_sxpr

            return format_sxpr(config, dialect)
        from virtkit.drivers.xen.xm import format_xm

        return format_xm(config, dialect)

    s.print(_ensure_newline(_attempt(failed, convert)))


# --- domains: life cycle ------------------------------------------------------------------------

def cmd_create(s: Session, a: Args) -> None:
    path = a.text("file")
    xml = _read_xml(path)
    conn = s.connection()
    dom = _attempt(_("Failed to create domain from %s") % path, lambda: conn.create_domain(xml))
    s.extra(_("Domain '%(name)s' created from %(file)s\n") % {"name": dom.name, "file": path})


def cmd_define(s: Session, a: Args) -> None:
    path = a.text("file")
    xml = _read_xml(path)
    conn = s.connection()
    dom = _attempt(_("Failed to define domain from %s") % path, lambda: conn.define_domain(xml))
    s.extra(_("Domain '%(name)s' defined from %(file)s\n") % {"name": dom.name, "file": path})


def _domain_action(method: str, failed: str, done: str) -> Callable[[Session, Args], None]:
    def handler(s: Session, a: Args) -> None:
        dom = _dom_arg(s, a)
        _attempt(_(failed) % dom.name, getattr(dom, method))
        s.extra(_(done) % dom.name + "\n")

    handler.__name__ = f"cmd_{method}"
    return handler


cmd_undefine = _domain_action("undefine", N_("Failed to undefine domain '%s'"),
                              N_("Domain '%s' has been undefined"))


def cmd_start(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    failed = _("Failed to start domain '%s'") % dom.name
    if _attempt(failed, dom.is_active):
        raise CommandError(_("Domain is already active"))  # virsh checks this first too
    _attempt(failed, dom.start)
    s.extra(_("Domain '%s' started\n") % dom.name)


cmd_suspend = _domain_action("suspend", N_("Failed to suspend domain '%s'"),
                             N_("Domain '%s' suspended"))
cmd_resume = _domain_action("resume", N_("Failed to resume domain '%s'"),
                            N_("Domain '%s' resumed"))
cmd_shutdown = _domain_action("shutdown", N_("Failed to shutdown domain '%s'"),
                              N_("Domain '%s' is being shutdown"))
cmd_reboot = _domain_action("reboot", N_("Failed to reboot domain '%s'"),
                            N_("Domain '%s' is being rebooted"))
cmd_destroy = _domain_action("destroy", N_("Failed to destroy domain '%s'"),
                             N_("Domain '%s' destroyed"))


def cmd_save(s: Session, a: Args) -> None:
    from virtkit.cli.progress import file_watcher, label_for, run_with_progress

    dom = _dom_arg(s, a)
    path = a.text("file")
    failed = _("Failed to save domain '%(name)s' to %(file)s") % {"name": dom.name, "file": path}
    try:
        total: int | None = dom.info().memory * 1024
    except Exception:  # noqa: BLE001 - only an estimate for the bar
        total = None
    _attempt(failed, lambda: run_with_progress(label_for("save"), lambda: dom.save(path), s.err,
                                               file_watcher(path), total))
    s.extra(_("Domain '%(name)s' saved to %(file)s\n") % {"name": dom.name, "file": path})


def cmd_restore(s: Session, a: Args) -> None:
    from virtkit.cli.progress import label_for, run_with_progress

    path = a.text("file")
    conn = s.connection()
    try:
        total: int | None = os.path.getsize(path)
    except OSError:
        total = None
    _attempt(_("Failed to restore domain from %s") % path,
             lambda: run_with_progress(label_for("restore"), lambda: conn.restore_domain(path),
                                       s.err, None, total))
    s.extra(_("Domain restored from %s\n") % path)


def cmd_dump(s: Session, a: Args) -> None:
    from virtkit.cli.progress import file_watcher, label_for, run_with_progress

    dom = _dom_arg(s, a)
    path = a.text("file")
    failed = _("Failed to core dump domain '%(name)s' to %(file)s") % {"name": dom.name,
                                                                      "file": path}
    try:
        total: int | None = dom.info().memory * 1024
    except Exception:  # noqa: BLE001 - only an estimate for the bar
        total = None
    _attempt(failed, lambda: run_with_progress(label_for("dump"), lambda: dom.core_dump(path),
                                               s.err, file_watcher(path), total))
    s.extra(_("Domain '%(name)s' dumped to %(file)s\n") % {"name": dom.name, "file": path})


# --- domains: resources and devices ----------------------------------------------------------

def cmd_setmem(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    size = a.number("size")
    _attempt(_("Unable to change MemorySize"), lambda: dom.set_memory(size))


def cmd_setmaxmem(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    size = a.number("size")
    _attempt(_("Unable to change MaxMemorySize"), lambda: dom.set_max_memory(size))


def cmd_setvcpus(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    count = a.number("count")
    _attempt(_("Unable to change the vCPU count of domain '%s'") % dom.name,
             lambda: dom.set_vcpus(count))


def cmd_vcpupin(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    cpulist = a.optional_text("cpulist")
    if cpulist is None:
        which = a.get("vcpu")
        _vcpupin_table(s, dom, which if isinstance(which, int) else None)
        return
    if "vcpu" not in a:
        raise CommandError(_("vcpupin: Missing vCPU number in pin mode."))
    vcpu = a.number("vcpu")
    _attempt(_("Failed to pin vCPU %(vcpu)d of domain '%(name)s'") % {"vcpu": vcpu, "name": dom.name},
             lambda: dom.pin_vcpu(vcpu, cpulist))


def _vcpupin_table(s: Session, dom: Domain, vcpu: int | None) -> None:
    """``vcpupin DOMAIN [VCPU]`` with no CPU list: today's virsh table of each
    vCPU's affinity as a CPU list (the running domain's, else its definition's)."""
    from virtkit.cli.output import table
    from virtkit.cpuset import format_cpulist

    failed = _("Failed to get the vCPU affinity of domain '%s'") % dom.name
    if _attempt(failed, dom.is_active):
        kind = _("live")
        pins = [(v.number, v.affinity) for v in _attempt(failed, dom.vcpus)]
    else:
        kind = _("persistent")
        pins = [(n, aff) for n, _cpu, _state, _time, aff in _inactive_vcpus(s, dom, failed)]
    if vcpu is not None:
        if not 0 <= vcpu < len(pins):
            raise CommandError(_("vcpu %(vcpu)d is out of range of %(kind)s cpu count %(count)d")
                               % {"vcpu": vcpu, "kind": kind, "count": len(pins)})
        pins = [p for p in pins if p[0] == vcpu]
    s.print(table((_("VCPU"), _("CPU Affinity")),
                  [(str(n), format_cpulist(aff)) for n, aff in pins], quiet=s.quiet))


def cmd_autostart(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    enable = not a.flag("disable")
    failed = (_("Failed to mark domain '%s' as autostarted") if enable
              else _("Failed to unmark domain '%s' as autostarted")) % dom.name
    _attempt(failed, lambda: dom.set_autostart(enable))
    done = _("Domain '%s' marked as autostarted\n") if enable \
        else _("Domain '%s' unmarked as autostarted\n")
    s.extra(done % dom.name)


def cmd_attach_device(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    path = a.text("file")
    xml = _read_xml(path)
    _attempt(_("Failed to attach device from %s") % path, lambda: dom.attach_device(xml))
    s.extra(_("Device attached successfully\n"))


def cmd_detach_device(s: Session, a: Args) -> None:
    dom = _dom_arg(s, a)
    path = a.text("file")
    xml = _read_xml(path)
    _attempt(_("Failed to detach device from %s") % path, lambda: dom.detach_device(xml))
    s.extra(_("Device detached successfully\n"))


def cmd_console(s: Session, a: Args) -> None:
    import sys

    from virtkit.cli.console import attach, console_path

    dom = _dom_arg(s, a)
    path = _attempt(_("Failed to open the console of domain '%s'") % dom.name,
                    lambda: console_path(dom))
    stdin, stdout = sys.stdin, sys.stdout
    if not (stdin.isatty() and stdout.isatty()):
        raise CommandError(_("Cannot run interactive console without a controlling TTY"))
    s.extra(_("Connected to domain '%s'\n") % dom.name)
    s.extra(_("Escape character is ^] (Ctrl + ])\n"))
    s.out.flush()
    try:
        attach(path, stdin.fileno(), stdout.fileno())
    except OSError as e:
        raise CommandError(_("Failed to open the console of domain '%s'") % dom.name, e) from None
    s.print("\n")


# --- host -----------------------------------------------------------------------------------

def cmd_nodeinfo(s: Session, a: Args) -> None:
    from virtkit.cli.output import fields

    conn = s.connection()
    info = _attempt(_("failed to get node information"), conn.get_node_info)
    if a.flag("json"):
        _json(s, {"cpu_model": info.model, "cpus": info.cpus, "mhz": info.mhz,
                  "sockets": info.sockets, "cores": info.cores, "threads": info.threads,
                  "numa_cells": info.nodes, "memory_kib": info.memory})
        return
    s.print(fields([
        (_("CPU model:"), info.model),
        (_("CPU(s):"), str(info.cpus)),
        (_("CPU frequency:"), _("%d MHz") % info.mhz),
        (_("CPU socket(s):"), str(info.sockets)),
        (_("Core(s) per socket:"), str(info.cores)),
        (_("Thread(s) per core:"), str(info.threads)),
        (_("NUMA cell(s):"), str(info.nodes)),
        (_("Memory size:"), _("%d KiB") % info.memory),
    ], 20))


def cmd_capabilities(s: Session, a: Args) -> None:
    conn = s.connection()
    s.print(_ensure_newline(_attempt(_("failed to get capabilities"), conn.get_capabilities)))


def _version_text(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def cmd_version(s: Session, a: Args) -> None:
    from virtkit.connection import LIB_VERSION

    conn = s.connection()
    hv_type = _attempt(_("failed to get hypervisor type"), conn.get_type)
    lib = conn.get_lib_version()
    s.print(_("Compiled against library: virtkit %s\n") % _version_text(LIB_VERSION))
    s.print(_("Using library: virtkit %s\n") % _version_text(lib))
    s.print(_("Using API: %(type)s %(version)s\n") % {"type": hv_type, "version": _version_text(lib)})
    hv = _attempt(_("failed to get the hypervisor version"), conn.get_version)
    if hv:
        s.print(_("Running hypervisor: %(type)s %(version)s\n")
                % {"type": hv_type, "version": _version_text(hv)})
    else:
        s.print(_("Cannot extract running %s hypervisor version\n") % hv_type)


# --- networks -------------------------------------------------------------------------------

def cmd_net_list(s: Session, a: Args) -> None:
    conn = s.connection()
    everything = a.flag("all")
    failed = _("Failed to list networks")
    names: list[tuple[str, bool]] = []
    if everything or not a.flag("inactive"):
        names += [(n, True) for n in _attempt(failed, conn.list_networks)]
    if everything or a.flag("inactive"):
        names += [(n, False) for n in _attempt(failed, conn.list_defined_networks)]
    names.sort()
    rows: list[tuple[str, str, bool, bool, bool]] = []
    from virtkit.errors import NoNetworkError

    for name, active in names:
        try:
            net = conn.lookup_network_by_name(name)
            rows.append((name, net.uuid_string, active, net.get_autostart(), net.is_persistent()))
        except NoNetworkError:
            continue  # went away while listing
        except Exception as e:  # noqa: BLE001 - reported like any API failure
            raise CommandError(failed, e) from None
    if a.flag("json"):
        _json(s, [{"name": n, "uuid": u, "state": "active" if act else "inactive",
                   "autostart": auto, "persistent": pers} for n, u, act, auto, pers in rows])
        return
    if a.flag("name"):
        s.print("".join(n + "\n" for n, *_rest in rows))
        return
    from virtkit.cli.output import table

    s.print(table(
        (_("Name"), _("State"), _("Autostart"), _("Persistent")),
        [(n, _("active") if act else _("inactive"), _yes_no(auto), _yes_no(pers))
         for n, _u, act, auto, pers in rows],
        quiet=s.quiet))


def cmd_net_info(s: Session, a: Args) -> None:
    from virtkit.cli.output import fields

    net = _net_arg(s, a)
    failed = _("Failed to get information of network %s") % net.name
    active = _attempt(failed, net.is_active)
    persistent = _attempt(failed, net.is_persistent)
    autostart = _attempt(failed, net.get_autostart)
    pairs = [(_("Name:"), net.name), (_("UUID:"), net.uuid_string), (_("Active:"), _yes_no(active)),
             (_("Persistent:"), _yes_no(persistent)), (_("Autostart:"), _yes_no(autostart))]
    bridge: str | None = None
    try:
        bridge = net.bridge_name()
        pairs.append((_("Bridge:"), bridge))
    except Exception:  # noqa: BLE001 - virsh leaves the line out when there is no bridge
        pass
    if a.flag("json"):
        _json(s, {"name": net.name, "uuid": net.uuid_string, "active": active,
                  "persistent": persistent, "autostart": autostart, "bridge": bridge})
        return
    s.print(fields(pairs, 15))


def _expiry(seconds: int) -> str:
    """virsh's lease expiry: local time, to the second."""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def cmd_net_dhcp_leases(s: Session, a: Args) -> None:
    net = _net_arg(s, a)
    mac = a.optional_text("mac")
    leases = _attempt(_("Failed to get leases info for %s") % net.name,
                      lambda: net.dhcp_leases(mac))
    leases = sorted(leases, key=lambda x: (x.mac or x.iaid or "", x.ipaddr))
    if a.flag("json"):
        _json(s, [{"expiry_time": x.expiry_time, "mac": x.mac, "iaid": x.iaid,
                   "protocol": _protocol(x.type), "address": x.ipaddr, "prefix": x.prefix,
                   "hostname": x.hostname, "client_id": x.client_id, "interface": x.iface}
                  for x in leases])
        return
    from virtkit.cli.output import table

    s.print(table(
        (_("Expiry Time"), _("MAC address"), _("Protocol"), _("IP address"), _("Hostname"),
         _("Client ID or DUID")),
        [(_expiry(x.expiry_time), x.mac or "-", _protocol(x.type), f"{x.ipaddr}/{x.prefix}",
          x.hostname or "-", x.client_id or "-") for x in leases],
        quiet=s.quiet))


def cmd_net_create(s: Session, a: Args) -> None:
    path = a.text("file")
    xml = _read_xml(path)
    conn = s.connection()
    net = _attempt(_("Failed to create network from %s") % path, lambda: conn.create_network(xml))
    s.extra(_("Network %(name)s created from %(file)s\n") % {"name": net.name, "file": path})


def cmd_net_define(s: Session, a: Args) -> None:
    path = a.text("file")
    xml = _read_xml(path)
    conn = s.connection()
    net = _attempt(_("Failed to define network from %s") % path, lambda: conn.define_network(xml))
    s.extra(_("Network %(name)s defined from %(file)s\n") % {"name": net.name, "file": path})


def _network_action(method: str, failed: str, done: str) -> Callable[[Session, Args], None]:
    def handler(s: Session, a: Args) -> None:
        net = _net_arg(s, a)
        _attempt(_(failed) % net.name, getattr(net, method))
        s.extra(_(done) % net.name + "\n")

    handler.__name__ = f"cmd_net_{method}"
    return handler


cmd_net_undefine = _network_action("undefine", N_("Failed to undefine network %s"),
                                   N_("Network %s has been undefined"))
cmd_net_start = _network_action("start", N_("Failed to start network %s"), N_("Network %s started"))
cmd_net_destroy = _network_action("destroy", N_("Failed to destroy network %s"),
                                  N_("Network %s destroyed"))


def cmd_net_dumpxml(s: Session, a: Args) -> None:
    net = _net_arg(s, a)
    xml = _attempt(_("Failed to get the XML description of network %s") % net.name,
                   lambda: net.xml_desc(inactive=a.flag("inactive")))
    s.print(_ensure_newline(xml))


def cmd_net_name(s: Session, a: Args) -> None:
    ident = a.text("network")
    conn = s.connection()
    net = _attempt(_("failed to get network '%s'") % ident,
                   lambda: conn.lookup_network_by_uuid_string(ident))
    s.print(net.name + "\n")


def cmd_net_uuid(s: Session, a: Args) -> None:
    s.print(_net_arg(s, a).uuid_string + "\n")


def cmd_net_autostart(s: Session, a: Args) -> None:
    net = _net_arg(s, a)
    enable = not a.flag("disable")
    failed = (_("Failed to mark network %s as autostarted") if enable
              else _("Failed to unmark network %s as autostarted")) % net.name
    _attempt(failed, lambda: net.set_autostart(enable))
    done = _("Network %s marked as autostarted\n") if enable \
        else _("Network %s unmarked as autostarted\n")
    s.extra(done % net.name)


# --- virtkit itself ----------------------------------------------------------------------------

def cmd_help(s: Session, a: Args) -> None:
    topic = a.optional_text("command")
    if topic is None:
        s.print(_grouped_help(None))
        return
    if topic in GROUPS:
        s.print(_grouped_help(topic))
        return
    command = find(topic)
    if command is None:
        raise CommandError(_("command or command group '%s' doesn't exist") % topic)
    s.print(command_help(command))


def _grouped_help(only: str | None) -> str:
    out = [] if only else [_("Grouped commands:\n\n")]
    for key, title in GROUPS.items():
        if only and key != only:
            continue
        out.append(_(" %(title)s (help keyword '%(key)s'):\n") % {"title": _(title), "key": key})
        for command in sorted((c for c in COMMANDS if c.group == key), key=lambda c: c.name):
            out.append(f"    {command.name:<30} {_(command.summary)}\n")
        out.append("\n")
    return "".join(out)


def command_help(command: Command) -> str:
    """The help page of one command, in virsh's layout."""
    out = [_("  NAME\n"), f"    {command.name} - {_(command.summary)}\n\n",
           _("  SYNOPSIS\n"), f"    {command.synopsis()}\n\n"]
    if command.aliases:
        out += [_("  ALIASES\n"), f"    {', '.join(command.aliases)}\n\n"]
    out += [_("  DESCRIPTION\n"), f"    {_(command.description)}\n\n"]
    if command.options:
        out.append(_("  OPTIONS\n"))
        for opt in command.options:
            if opt.kind == "bool":
                spec = f"--{opt.name}"
            elif opt.positional:
                spec = f"[--{opt.name}] <{_kind_word(opt.kind)}>"
            else:
                spec = f"--{opt.name} <{_kind_word(opt.kind)}>"
            out.append(f"    {spec:<15}  {_(opt.help)}\n")
        out.append("\n")
    return "".join(out)


def _kind_word(kind: str) -> str:
    return "number" if kind in ("int", "size") else "string"


def cmd_quit(s: Session, a: Args) -> None:
    raise QuitRequested


def cmd_connect(s: Session, a: Args) -> None:
    s.reconnect(a.optional_text("name"), a.flag("readonly"))


# --- the table --------------------------------------------------------------------------------

_FILE = Opt("file", "file", N_("file containing an XML description"), required=True,
            positional=True)

COMMANDS: tuple[Command, ...] = (
    # domain management
    Command("attach-device", cmd_attach_device, N_("attach a device described by an XML file"),
            N_("Add a device (disk, interface...) described by an XML file to a domain."),
            (_DOMAIN, Opt("file", "file", N_("XML file describing the device"), True, True))),
    Command("autostart", cmd_autostart, N_("start a domain with the host"),
            N_("Mark a defined domain to start when the host starts, or unmark it."),
            (_DOMAIN, Opt("disable", "bool", N_("do not start the domain with the host")))),
    Command("console", cmd_console, N_("attach to the domain's serial console"),
            N_("Connect the terminal to the serial console of a domain; Ctrl+] leaves."),
            (_DOMAIN,)),
    Command("create", cmd_create, N_("create and start a domain from an XML file"),
            N_("Create a transient domain from an XML description and start it."), (_FILE,)),
    Command("define", cmd_define, N_("define a domain from an XML file without starting it"),
            N_("Define (make persistent) a domain from an XML description, or update one."),
            (_FILE,)),
    Command("destroy", cmd_destroy, N_("stop a domain at once"),
            N_("Stop a running domain immediately, like pulling the power cord."), (_DOMAIN,)),
    Command("detach-device", cmd_detach_device, N_("detach a device described by an XML file"),
            N_("Remove from a domain the device an XML file describes."),
            (_DOMAIN, Opt("file", "file", N_("XML file describing the device"), True, True))),
    Command("domid", cmd_domid, N_("print a domain's id"),
            N_("Print the runtime id of a domain given by name or UUID ('-' when it is "
               "not running)."), (_DOMAIN,)),
    Command("domname", cmd_domname, N_("print a domain's name"),
            N_("Print the name of a domain given by id or UUID."), (_DOMAIN,)),
    Command("domuuid", cmd_domuuid, N_("print a domain's UUID"),
            N_("Print the UUID of a domain given by name or id."), (_DOMAIN,)),
    Command("domxml-from-native", cmd_domxml_from_native,
            N_("convert a native guest configuration to domain XML"),
            N_("Convert a Xen configuration (xen-sxpr: an S-expression as xend reports it; "
               "xen-xm: an XM config file) to domain XML, without touching the hypervisor."),
            (Opt("format", "string", N_("source format: xen-sxpr or xen-xm"), True, True),
             Opt("config", "file", N_("file with the native configuration"), True, True),
             Opt("xend-config-format", "int",
                 N_("xend's dialect, 1 (Xen 3.0.2) to 4 (Xen 3.1 and later, the default)"))),
            needs_connection=False),
    Command("domxml-to-native", cmd_domxml_to_native,
            N_("convert domain XML to a native guest configuration"),
            N_("Convert domain XML to a Xen configuration (xen-sxpr: the S-expression xend is "
               "given; xen-xm: an XM config file), without touching the hypervisor."),
            (Opt("format", "string", N_("target format: xen-sxpr or xen-xm"), True, True),
             Opt("xml", "file", N_("file containing a domain XML description"), True, True),
             Opt("xend-config-format", "int",
                 N_("xend's dialect, 1 (Xen 3.0.2) to 4 (Xen 3.1 and later, the default)"))),
            needs_connection=False),
    Command("dump", cmd_dump, N_("write a domain's memory to a file for analysis"),
            N_("Dump the memory of a domain to a core file; the domain keeps running."),
            (_DOMAIN, Opt("file", "file", N_("where to write the core dump"), True, True))),
    Command("dumpxml", cmd_dumpxml, N_("print a domain's XML description"),
            N_("Print the XML description of a domain on standard output."),
            (_DOMAIN, Opt("inactive", "bool",
                          N_("print the definition the next start uses")))),
    Command("reboot", cmd_reboot, N_("reboot a domain"),
            N_("Ask a running domain to reboot."), (_DOMAIN,)),
    Command("restore", cmd_restore, N_("restore a domain from a saved state file"),
            N_("Bring back a domain saved with 'save'; it comes back running."),
            (Opt("file", "file", N_("the state file to restore"), True, True),)),
    Command("resume", cmd_resume, N_("resume a suspended domain"),
            N_("Let a suspended (paused) domain run again."), (_DOMAIN,)),
    Command("save", cmd_save, N_("save a domain's state to a file"),
            N_("Save the memory and device state of a running domain to a file and stop it."),
            (_DOMAIN, Opt("file", "file", N_("where to save the state"), True, True))),
    Command("setmaxmem", cmd_setmaxmem, N_("change a domain's maximum memory"),
            N_("Change the maximum memory of a domain; a bare number is KiB, suffixes "
               "such as M or GiB are accepted."),
            (_DOMAIN, Opt("size", "size", N_("new maximum memory (KiB unless a unit is given)"),
                          True, True, ("kilobytes",)))),
    Command("setmem", cmd_setmem, N_("change a domain's memory allocation"),
            N_("Change the current memory of a domain, up to its maximum; a bare number "
               "is KiB, suffixes such as M or GiB are accepted."),
            (_DOMAIN, Opt("size", "size", N_("new memory size (KiB unless a unit is given)"),
                          True, True, ("kilobytes",)))),
    Command("setvcpus", cmd_setvcpus, N_("change a domain's number of vCPUs"),
            N_("Change the number of virtual CPUs of a domain."),
            (_DOMAIN, Opt("count", "int", N_("number of virtual CPUs"), True, True))),
    Command("shutdown", cmd_shutdown, N_("shut a domain down gracefully"),
            N_("Ask a running domain to power off; the guest may take time or ignore it."),
            (_DOMAIN,)),
    Command("start", cmd_start, N_("start a defined, inactive domain"),
            N_("Start a domain that is defined and shut off."), (_DOMAIN,)),
    Command("suspend", cmd_suspend, N_("suspend a domain"),
            N_("Pause a running domain: it keeps its memory but gets no CPU time."),
            (_DOMAIN,)),
    Command("undefine", cmd_undefine, N_("forget a domain's definition"),
            N_("Remove the definition of a domain; a running domain goes on as transient."),
            (_DOMAIN,)),
    Command("vcpupin", cmd_vcpupin, N_("restrict a vCPU to some host CPUs"),
            N_("Pin a virtual CPU of a domain to the host CPUs of a list such as 0-3,^2,6; "
               "without a list, print the host CPUs each vCPU (or the one given) may use."),
            (_DOMAIN, Opt("vcpu", "int", N_("the virtual CPU number"), False, True),
             Opt("cpulist", "string", N_("host CPU list, e.g. 0-3,^2,6"), False, True))),
    # domain monitoring
    Command("domifaddr", cmd_domifaddr, N_("a running domain's interface addresses"),
            N_("Print the IP addresses of a running domain's interfaces, from the DHCP leases "
               "of the networks they are on."),
            (_DOMAIN,
             Opt("interface", "string", N_("only this interface (its device name or MAC)")),
             Opt("full", "bool", N_("print the name and MAC on every address line")),
             Opt("source", "string", N_("where the addresses come from: lease (the default), "
                                        "agent or arp")),
             _JSON), group="monitor"),
    Command("dominfo", cmd_dominfo, N_("domain information"),
            N_("Print the id, name, UUID, state, CPUs and memory of a domain."),
            (_DOMAIN, _JSON), group="monitor"),
    Command("domstate", cmd_domstate, N_("domain state"),
            N_("Print the state of a domain (running, paused, shut off...)."),
            (_DOMAIN, _JSON), group="monitor"),
    Command("list", cmd_list, N_("list domains"),
            N_("List the running domains, or the inactive ones, or all of them."),
            (Opt("inactive", "bool", N_("list the inactive domains")),
             Opt("all", "bool", N_("list the active and the inactive domains")),
             Opt("name", "bool", N_("print only the names, one a line")),
             Opt("uuid", "bool", N_("print only the UUIDs, one a line")),
             Opt("id", "bool", N_("print only the ids of the running domains")),
             _JSON), group="monitor"),
    Command("vcpuinfo", cmd_vcpuinfo, N_("domain vCPU information"),
            N_("Print, for each virtual CPU of a domain, the host CPU it runs on, its state, "
               "CPU time and affinity."), (_DOMAIN, _JSON), group="monitor"),
    # host and hypervisor
    Command("capabilities", cmd_capabilities, N_("capabilities of the host and hypervisor"),
            N_("Print the capabilities XML document: the host CPU and the guests the "
               "hypervisor can run."), group="host"),
    Command("connect", cmd_connect, N_("connect (reconnect) to a hypervisor"),
            N_("Close the current connection and open one to the given URI (the default "
               "one when no URI is given)."),
            (Opt("name", "uri", N_("hypervisor connection URI"), positional=True),
             Opt("readonly", "bool", N_("open a read-only connection"))),
            group="host", needs_connection=False),
    Command("nodeinfo", cmd_nodeinfo, N_("node information"),
            N_("Print the CPU model, CPU count and topology, frequency and memory of the "
               "host."), (_JSON,), group="host"),
    Command("version", cmd_version, N_("show version"),
            N_("Print the versions of virtkit, its API and the running hypervisor."),
            group="host"),
    # networks
    Command("net-autostart", cmd_net_autostart, N_("start a network with the host"),
            N_("Mark a defined network to start when the host starts, or unmark it."),
            (_NETWORK, Opt("disable", "bool", N_("do not start the network with the host"))),
            group="network"),
    Command("net-create", cmd_net_create, N_("create and start a network from an XML file"),
            N_("Create a transient network from an XML description and start it."),
            (_FILE,), group="network"),
    Command("net-define", cmd_net_define, N_("define a network from an XML file"),
            N_("Define (make persistent) a network from an XML description, without "
               "starting it."), (_FILE,), group="network"),
    Command("net-destroy", cmd_net_destroy, N_("stop a network"),
            N_("Take an active network down."), (_NETWORK,), group="network"),
    Command("net-dhcp-leases", cmd_net_dhcp_leases, N_("the DHCP leases of a network"),
            N_("Print the unexpired leases the network's DHCP server has handed out."),
            (_NETWORK, Opt("mac", "string", N_("only the leases of this MAC address")), _JSON),
            group="network"),
    Command("net-dumpxml", cmd_net_dumpxml, N_("print a network's XML description"),
            N_("Print the XML description of a network on standard output."),
            (_NETWORK, Opt("inactive", "bool", N_("print the defined configuration"))),
            group="network"),
    Command("net-info", cmd_net_info, N_("network information"),
            N_("Print the name, UUID, state and bridge of a network."), (_NETWORK, _JSON),
            group="network"),
    Command("net-list", cmd_net_list, N_("list networks"),
            N_("List the active networks, or the inactive ones, or all of them."),
            (Opt("inactive", "bool", N_("list the inactive networks")),
             Opt("all", "bool", N_("list the active and the inactive networks")),
             Opt("name", "bool", N_("print only the names, one a line")),
             _JSON), group="network"),
    Command("net-name", cmd_net_name, N_("print a network's name"),
            N_("Print the name of the network with the given UUID."),
            (Opt("network", "network", N_("network UUID"), True, True),), group="network"),
    Command("net-start", cmd_net_start, N_("start a defined, inactive network"),
            N_("Bring up a network that is defined and inactive."), (_NETWORK,),
            group="network"),
    Command("net-undefine", cmd_net_undefine, N_("forget a network's definition"),
            N_("Remove the definition of a network; an active network stays up as transient."),
            (_NETWORK,), group="network"),
    Command("net-uuid", cmd_net_uuid, N_("print a network's UUID"),
            N_("Print the UUID of the network with the given name."),
            (Opt("network", "network", N_("network name"), True, True),), group="network"),
    # virtkit itself
    Command("help", cmd_help, N_("print help"),
            N_("Print the list of commands, the commands of a group, or the help page of "
               "one command."),
            (Opt("command", "command", N_("command or group name"), positional=True),),
            group="virtkit", needs_connection=False),
    Command("quit", cmd_quit, N_("quit this interactive terminal"),
            N_("Leave the interactive shell."), group="virtkit", needs_connection=False,
            aliases=("exit",)),
)

_BY_NAME: dict[str, Command] = {}
for _command in COMMANDS:
    _BY_NAME[_command.name] = _command
    for _alias in _command.aliases:
        _BY_NAME[_alias] = _command


def find(name: str) -> Command | None:
    """The command called ``name`` (or one of its aliases), or None."""
    return _BY_NAME.get(name)


def names() -> list[str]:
    """Every command name and alias, sorted (for completion)."""
    return sorted(_BY_NAME)
