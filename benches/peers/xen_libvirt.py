"""The benchmark peer inside the nested Xen dom0: libvirt 9.0's libxl driver.

Debian 12's ``libvirt-daemon-driver-xen`` (with ``libvirt-daemon``,
``libvirt-clients`` and ``python3-libvirt``) is not in the test image (its cache
key hashes scripts/build-xen-host and scripts/xen-host/, which stay as they
are), so ``measure_libvirt(host)`` brings it into a booted dom0 at run time and
measures it there, in the same run as virtkit:

1. On the host: dom0's dpkg status is read from the running dom0, and apt
   (this machine's sources: the mirror is never named here) computes exactly
   the packages missing from it (``--no-install-recommends``) and downloads
   them into ``${VIRTKIT_CACHE:-~/.cache/virtkit}/xen-libvirt-peer/debs-KEY/``,
   KEY being the hash of the names and versions apt resolved. A resolution
   that would upgrade a Xen package of dom0 is refused (hypervisor and
   toolstack stay one version).
2. On the host: the VME shim (``xen_libvirt_vme_shim.c`` beside this file,
   which says why libvirt 9.0's libxl driver needs it on this nested CPU) is
   compiled with the host's ``cc`` against the ``libxl.h`` of the
   ``libxen-dev`` whose version is dom0's Xen (downloaded with
   ``apt-get download``, unpacked, never installed), cached as
   ``shim-KEY.so``. Host and dom0 are both Debian 12 x86_64.
3. In dom0: the .debs and the shim arrive through the 9p share; ``dpkg -i``
   installs them with a ``policy-rc.d`` that forbids starting services
   (trigger processing deferred, then ``ldconfig``), and the ``libvirt-qemu``
   user that ``libvirt-daemon-system`` would have created is added: Debian's
   ``libvirt-daemon`` depends on the QEMU driver, whose state initialisation
   fails without that user, and libvirtd exits when any driver fails. dom0's
   root is a per-boot overlay, so none of this outlives the boot.
4. In dom0: ``libvirtd --daemon`` (Debian 12's libvirt 9.0 ships only the
   monolithic daemon, no ``virtxend``), with the shim in ``LD_PRELOAD`` and
   warnings logged to /var/log/libvirt/libvirtd.log.

Then, in dom0, through libvirt-python and virsh (``xen:///``), with
``N`` = 0 and each of ``guest_counts`` PV guests besides dom0 (the test
guest's kernel and initramfs, 128 MiB, one vCPU, as
``XenHost.guest_config``; started through libvirt, ``createXML``, because
the libxl driver does not list domains ``xl`` started):

- ``all_info_s[N]``: ``conn.listAllDomains()`` and ``info()`` of each;
- ``one_info_s``: one guest's ``dom.info()`` (with the most guests running;
  ``one_info_by_guests_s`` has it for each N >= 1);
- ``virsh_list_s``: ``virsh -c xen:/// list --all`` as a process (most guests;
  ``virsh_list_by_guests_s`` for each N);
- ``all_stats``: seconds of ``conn.getAllDomainStats()``, or the error text
  when the driver does not support it (``all_stats_by_guests`` for each N);
- ``start_s``: ``createXML`` of a guest until it returns (the domain runs);
  ``shutdown_s``: ``dom.shutdown()`` of a booted guest until libvirt no longer
  finds the domain; ``destroy_s``: ``dom.destroy()`` until it returns (the
  domain is gone then). Medians over ``lifecycle_runs`` runs, with no other
  guest running (``lifecycle_samples_s``: every sample);
- ``install``: seconds of each step of bringing the peer in and their
  ``total`` (``dpkg`` is most of it under TCG), the MiB sent, the number of
  packages and the versions installed (``{"already_installed": true}`` when
  this boot had them); ``daemon_start_s``: libvirtd until ``xen:///`` answers.

The per-call figures use benches/_harness.py's ``measure`` (copied into dom0
as /root/_harness.py, as bench_xen_hypercall.py does): a calibrated loop,
best of 5 (3 for processes). Guests are waited for (their console's
VIRTKIT-XEN-GUEST-READY line) before anything is measured, so no guest is
booting during a measurement. At the end the guests are destroyed and
libvirtd is stopped (the host is shared with the rest of the run), whatever
happened. Anything missing fails with ``PeerError`` and the reason.

Standalone check: ``python3 benches/peers/xen_libvirt.py`` (as root) boots the
host with 2 GiB (eight 128 MiB guests beside dom0's 512 MiB), installs the
wheel built from this checkout, measures and prints the figures as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.xenhost.harness import DOM0_GUEST_DIR, GUEST_READY_MARKER, XenHost, cache_dir  # noqa: E402

#: What a Debian 12 Xen host runs for libvirt: the libxl driver, the daemon
#: that loads it, virsh, and the Python binding the measurements use.
PEER_PACKAGES = ("libvirt-daemon-driver-xen", "libvirt-daemon", "libvirt-clients", "python3-libvirt")
SHIM_SOURCE = Path(__file__).resolve().with_name("xen_libvirt_vme_shim.c")
HARNESS = ROOT / "benches" / "_harness.py"

DOM0_WORK = "/var/lib/virtkit-libvirt-peer"  # the .debs and the shim, in dom0
DOM0_SHIM = "/usr/local/lib/xen_libvirt_vme_shim.so"
DOM0_PIDFILE = "/run/virtkit-peer-libvirtd.pid"
DOM0_LOG = "/var/log/libvirt/libvirtd.log"
DOM0_SCRIPT_PATH = "/root/xen_libvirt_dom0.py"
GUEST_PREFIX = "vk-lv"  # every guest this module starts; cleanup destroys these only
GUEST_MEMORY_MIB = 128
URI = "xen:///"


class PeerError(RuntimeError):
    """The peer could not be installed, started or measured; the message says why."""


# ------------------------------------------------------------------ host side


def _peer_cache() -> Path:
    path = cache_dir() / "xen-libvirt-peer"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(cmd: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              **kwargs)
    except FileNotFoundError as err:
        raise PeerError(f"{what}: {err.filename} is not installed on this host") from None
    if proc.returncode != 0:
        raise PeerError(f"{what} failed (exit status {proc.returncode}): {shlex.join(cmd)}\n"
                        f"{proc.stderr}{proc.stdout}")
    return proc


def installed_packages(status: bytes) -> dict[str, str]:
    """Package name -> version of what a dpkg status file says is installed."""
    packages = {}
    for stanza in status.decode(errors="replace").split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.M))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            packages[fields["Package"]] = fields.get("Version", "")
    return packages


def _apt_options(status_file: Path, archives: Path) -> list[str]:
    return ["-o", f"Dir::State::status={status_file}", "-o", f"Dir::Cache::archives={archives}",
            # Nothing of the host's dpkg is touched: a private status and archive.
            "-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"]


def _install_dir(stage: Path, final: Path) -> None:
    """Move a finished cache entry into place; when another run finished the
    same entry first, keep theirs (it may be in use) and drop ours."""
    if final.exists() and not (final / ".complete").exists():
        shutil.rmtree(final, ignore_errors=True)  # left by an interrupted run
    try:
        os.replace(stage, final)
    except OSError:
        if not (final / ".complete").exists():
            raise
        shutil.rmtree(stage, ignore_errors=True)


def resolve(status: bytes, work: Path) -> list[dict[str, str]]:
    """What apt would install on a system with this dpkg status: a list of
    {"package", "version", "upgrades"} (upgrades: the installed version, or "")."""
    status_file = work / "dom0-status"
    status_file.write_bytes(status)
    archives = work / "archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    proc = _run(["apt-get", "install", "--simulate", "--no-install-recommends", "-q",
                 *_apt_options(status_file, archives), *PEER_PACKAGES],
                "apt-get install --simulate of the libvirt peer for dom0")
    plan = []
    for line in proc.stdout.splitlines():
        match = re.match(r"Inst (\S+) (?:\[(\S+)\] )?\((\S+) ", line)
        if match:
            plan.append({"package": match[1], "version": match[3], "upgrades": match[2] or ""})
    if not plan:
        raise PeerError(f"apt resolved nothing to install for {PEER_PACKAGES} in dom0 (already "
                        f"installed, or apt's lists lack them?):\n{proc.stdout}")
    touched_xen = [p for p in plan if p["upgrades"] and re.match(r"(lib)?xen", p["package"])]
    if touched_xen:
        raise PeerError("installing the libvirt peer would upgrade dom0's Xen packages "
                        f"(hypervisor and toolstack would differ): {touched_xen}")
    return plan


def fetch_debs(status: bytes) -> tuple[Path, list[dict[str, str]], dict[str, float]]:
    """The .debs dom0 lacks for the peer, from the cache or downloaded by apt.
    Returns their directory, apt's plan and the seconds each step took."""
    timings = {}
    root = _peer_cache()
    with tempfile.TemporaryDirectory(prefix=".resolve-", dir=root) as tmp:
        started = time.monotonic()
        plan = resolve(status, Path(tmp))
        timings["resolve"] = time.monotonic() - started
        key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
        debs = root / f"debs-{key}"
        started = time.monotonic()
        if not (debs / ".complete").exists():
            archives = Path(tmp) / "archives"
            _run(["apt-get", "install", "--download-only", "--no-install-recommends", "-q", "-y",
                  *_apt_options(Path(tmp) / "dom0-status", archives), *PEER_PACKAGES],
                 "apt-get install --download-only of the libvirt peer for dom0")
            got = sorted(archives.glob("*.deb"))
            if len(got) != len(plan):
                raise PeerError(f"apt downloaded {len(got)} .debs for a plan of {len(plan)}: "
                                f"{[p.name for p in got]} vs {plan}")
            stage = Path(tmp) / "debs"
            stage.mkdir()
            for deb in got:
                shutil.move(str(deb), stage / deb.name)
            (stage / "plan.json").write_text(json.dumps(plan, indent=1) + "\n")
            (stage / ".complete").write_text("")
            _install_dir(stage, debs)
        timings["download"] = time.monotonic() - started
    return debs, plan, timings


def build_shim(dom0_packages: dict[str, str]) -> Path:
    """The VME shim compiled for dom0's libxenlight (cached)."""
    xen = {name: version for name, version in dom0_packages.items() if name.startswith("libxenmisc")}
    if len(xen) != 1:
        raise PeerError(f"cannot tell dom0's libxenlight package from its dpkg status: {xen}")
    (xen_version,) = xen.values()
    root = _peer_cache()
    headers = root / f"libxen-dev-{xen_version.replace(':', '%3a')}"
    if not (headers / ".complete").exists():
        with tempfile.TemporaryDirectory(prefix=".libxen-dev-", dir=root) as tmp:
            _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root",
                  f"libxen-dev={xen_version}"],
                 f"apt-get download libxen-dev={xen_version} (the libxl.h of dom0's Xen)", cwd=tmp)
            (deb,) = Path(tmp).glob("libxen-dev_*.deb")
            stage = Path(tmp) / "tree"
            _run(["dpkg-deb", "-x", str(deb), str(stage)], f"unpacking {deb.name}")
            (stage / ".complete").write_text("")
            _install_dir(stage, headers)
    include = headers / "usr" / "include"
    link = headers / "usr" / "lib" / "x86_64-linux-gnu" / "libxenlight.so"
    if not (include / "libxl.h").is_file() or not link.is_symlink():
        raise PeerError(f"libxen-dev {xen_version} has no libxl.h or libxenlight.so link in {headers}")
    soname = os.readlink(link)  # libxenlight.so.4.17: the library dom0 loads
    cc = os.environ.get("CC", "cc")
    cc_version = _run([cc, "--version"], "the host's C compiler").stdout.splitlines()[0]
    key = hashlib.sha256(json.dumps([SHIM_SOURCE.read_text(), xen_version, soname, cc_version])
                         .encode()).hexdigest()[:16]
    shim = root / f"shim-{key}.so"
    if not shim.exists():
        tmp_so = root / f".shim-{key}.{os.getpid()}.so"
        _run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{include}",
              f"-DXENLIGHT_SONAME=\"{soname}\"", "-o", str(tmp_so), str(SHIM_SOURCE), "-ldl"],
             f"compiling {SHIM_SOURCE.name}")
        os.replace(tmp_so, shim)
    return shim


def _dom0(host: XenHost, script: str, what: str, timeout: float = 120) -> str:
    result = host.run(script, timeout)
    if result.status != 0:
        raise PeerError(f"{what} failed in dom0 (exit status {result.status}):\n"
                        f"{result.stdout}{result.stderr}")
    return result.stdout


def install_peer(host: XenHost) -> dict[str, Any]:
    """Install the peer's packages and the shim into dom0 (nothing when this
    boot already has them). Returns seconds per step and what was installed."""
    timings: dict[str, Any] = {}
    started = time.monotonic()
    present = host.run(["dpkg-query", "-W", "-f", "${Status}", *PEER_PACKAGES]).stdout
    if present.count("install ok installed") == len(PEER_PACKAGES) and \
            host.run(["test", "-f", DOM0_SHIM]).status == 0:
        return {"already_installed": True}
    t = time.monotonic()
    status = host.get_bytes("/var/lib/dpkg/status")
    timings["read dpkg status"] = time.monotonic() - t
    debs, plan, fetch_timings = fetch_debs(status)
    timings.update(fetch_timings)
    t = time.monotonic()
    shim = build_shim(installed_packages(status))
    timings["shim"] = time.monotonic() - t

    t = time.monotonic()
    names = sorted(p.name for p in debs.glob("*.deb"))
    bundle = host.share / "libvirt-peer.tar"
    with tarfile.open(bundle, "w") as tar:
        for name in names:
            tar.add(debs / name, arcname=f"debs/{name}")
        tar.add(shim, arcname="xen_libvirt_vme_shim.so")
    timings["MiB"] = bundle.stat().st_size / 2**20
    try:
        # One sequential copy out of the share, then tar in dom0.
        _dom0(host, f"set -e; rm -rf {DOM0_WORK}; mkdir -p {DOM0_WORK}; "
                    f"cp /mnt/host/libvirt-peer.tar {DOM0_WORK}/; cd {DOM0_WORK}; "
                    f"tar -xf libvirt-peer.tar --no-same-owner; rm libvirt-peer.tar",
              "copying the peer's packages into dom0", timeout=300)
    finally:
        bundle.unlink(missing_ok=True)
    timings["transfer"] = time.monotonic() - t

    t = time.monotonic()
    # policy-rc.d 101: no maintainer script may start a service. Triggers
    # (ldconfig, update-initramfs) are deferred; ldconfig runs by hand, the
    # initramfs is never rebuilt (dom0 boots from its own). Documentation,
    # manual pages and translations are not unpacked: nothing reads them.
    out = _dom0(host, f"""set -e
had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
[ $had_policy = 1 ] || printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
rc=0
DEBIAN_FRONTEND=noninteractive dpkg -i --no-triggers --force-unsafe-io \
    --path-exclude='/usr/share/doc/*' --path-exclude='/usr/share/man/*' \
    --path-exclude='/usr/share/locale/*' {DOM0_WORK}/debs/*.deb >{DOM0_WORK}/dpkg.log 2>&1 || rc=$?
[ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
if [ $rc != 0 ]; then tail -n 40 {DOM0_WORK}/dpkg.log; exit $rc; fi
ldconfig
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd --system --gid libvirt-qemu \
    --home-dir /var/lib/libvirt --no-create-home --shell /usr/sbin/nologin libvirt-qemu
install -m 755 {DOM0_WORK}/xen_libvirt_vme_shim.so {DOM0_SHIM}
rm -rf {DOM0_WORK}/debs
dpkg-query -W -f '${{Package}} ${{Version}}\\n' {' '.join(PEER_PACKAGES)}
""", "installing the libvirt peer (dpkg -i)", timeout=1800)
    timings["dpkg"] = time.monotonic() - t
    timings["total"] = time.monotonic() - started
    timings["packages"] = len(plan)
    timings["versions"] = dict(line.split(" ", 1) for line in out.strip().splitlines())
    return timings


def start_daemon(host: XenHost, timeout: float = 300) -> float:
    """Start libvirtd with the VME shim preloaded; wait until xen:/// answers.
    Returns the seconds it took."""
    stop_daemon(host)
    started = time.monotonic()
    script = f"""
mkdir -p /var/log/libvirt /run/libvirt
: >{DOM0_LOG}
LD_PRELOAD={DOM0_SHIM} LIBVIRT_LOG_OUTPUTS="3:file:{DOM0_LOG}" \
    libvirtd --daemon --pid-file={DOM0_PIDFILE} || {{ echo "libvirtd --daemon: exit $?"; cat {DOM0_LOG}; exit 1; }}
end=$(($(date +%s) + {int(timeout)}))
until virsh -q -c {URI} version >/dev/null 2>&1; do
    if ! kill -0 "$(cat {DOM0_PIDFILE} 2>/dev/null)" 2>/dev/null; then
        echo "libvirtd exited; its log:"; cat {DOM0_LOG}; exit 1
    fi
    if [ "$(date +%s)" -ge $end ]; then
        echo "libvirtd does not answer on {URI} after {int(timeout)} s; its log:"; cat {DOM0_LOG}; exit 1
    fi
    sleep 0.2
done
"""
    _dom0(host, script, "starting libvirtd with the VME shim", timeout=timeout + 30)
    return time.monotonic() - started


def stop_daemon(host: XenHost, timeout: float = 60) -> None:
    """Stop the libvirtd this module started (its pid file), if it runs."""
    _dom0(host, f"""
pid=$(cat {DOM0_PIDFILE} 2>/dev/null) || exit 0
kill -TERM "$pid" 2>/dev/null || {{ rm -f {DOM0_PIDFILE}; exit 0; }}
end=$(($(date +%s) + {int(timeout)}))
while kill -0 "$pid" 2>/dev/null; do
    if [ "$(date +%s)" -ge $end ]; then kill -KILL "$pid"; break; fi
    sleep 0.2
done
rm -f {DOM0_PIDFILE}
""", "stopping libvirtd", timeout=timeout + 30)


def destroy_guests(host: XenHost) -> list[str]:
    """Destroy every domain named GUEST_PREFIX* (through libvirt when it runs,
    then xl for any left). Returns the names destroyed by xl."""
    host.run(f"for d in $(virsh -q -c {URI} list --name 2>/dev/null | grep '^{GUEST_PREFIX}'); do "
             f"virsh -q -c {URI} destroy \"$d\" >/dev/null 2>&1; done", timeout=300)
    left = [name for name in host.domains() if name.startswith(GUEST_PREFIX)]
    for name in left:
        host.run(["xl", "destroy", name], timeout=120)
    return left


# ------------------------------------------------------------------ dom0 side

DOM0_SCRIPT = r'''
import json, os, statistics, subprocess, sys, time
sys.path.insert(0, "/root")
from _harness import measure
import libvirt

cfg = json.loads(sys.argv[1])
PREFIX, MEM, GUEST_DIR, URI = cfg["prefix"], cfg["memory_mib"], cfg["guest_dir"], cfg["uri"]
MARKER, CONSOLE = cfg["ready_marker"], "/var/log/xen/console/guest-{}.log"
MIN = float(os.environ.get("BENCH_MIN_TIME", "0.5"))
libvirt.registerErrorHandler(lambda ctx, err: None, None)  # errors are raised, not printed too

conn = libvirt.open(URI)
made = []

def xml(name):
    return f"""<domain type='xen'>
  <name>{name}</name>
  <memory unit='MiB'>{MEM}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='xenpv'>linux</type>
    <kernel>{GUEST_DIR}/guest-vmlinux</kernel>
    <initrd>{GUEST_DIR}/guest-initrd.gz</initrd>
    <cmdline>console=hvc0 quiet panic=-1 virtkit.tick=0</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices><console type='pty'><target type='xen' port='0'/></console></devices>
</domain>"""

def start(name):
    free_mib = conn.getFreeMemory() // 2**20
    if free_mib < MEM + 8:
        raise SystemExit(f"no room for guest {name}: {free_mib} MiB free in the hypervisor")
    try:
        os.unlink(CONSOLE.format(name))  # a log from an earlier guest of that name
    except FileNotFoundError:
        pass
    t = time.perf_counter()
    dom = conn.createXML(xml(name), 0)
    took = time.perf_counter() - t
    made.append(name)
    return dom, took

def wait_ready(name, timeout=300):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(CONSOLE.format(name)) as f:
                if MARKER in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"guest {name} showed no {MARKER} within {timeout} s")

def gone(uuid):
    try:
        conn.lookupByUUIDString(uuid)
        return False
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
        return True

def finish(name):
    if name in made:
        made.remove(name)

out = {"libvirt_version": conn.getLibVersion(), "hypervisor_version": conn.getVersion()}
try:
    # Lifecycle, no other guest running.
    starts, shutdowns, destroys = [], [], []

    def started(name):
        """Start ``name`` (its time into ``starts``), wait for its guest: (dom, UUID)."""
        dom, took = start(name)
        starts.append(took)
        wait_ready(name)
        return dom, dom.UUIDString()

    for run in range(cfg["lifecycle_runs"]):
        name = f"{PREFIX}-life"
        dom, uuid = started(name)
        t = time.perf_counter()
        dom.shutdown()
        while not gone(uuid):
            if time.perf_counter() - t > 300:
                raise SystemExit(f"{name} did not shut down within 300 s")
            time.sleep(0.005)
        shutdowns.append(time.perf_counter() - t)
        finish(name)
        dom, uuid = started(name)
        t = time.perf_counter()
        dom.destroy()
        destroys.append(time.perf_counter() - t)
        finish(name)
        if not gone(uuid):
            raise SystemExit(f"{name} is still there after destroy")
    out["start_s"] = statistics.median(starts)
    out["shutdown_s"] = statistics.median(shutdowns)
    out["destroy_s"] = statistics.median(destroys)
    out["lifecycle_samples_s"] = {"start": starts, "shutdown": shutdowns, "destroy": destroys}

    def all_info():
        return [(d.name(), d.info()) for d in conn.listAllDomains()]

    def virsh_list():
        subprocess.run(["virsh", "-c", URI, "list", "--all"], check=True, stdout=subprocess.DEVNULL)

    def all_stats():
        try:
            t = time.perf_counter()
            conn.getAllDomainStats()
            return time.perf_counter() - t
        except libvirt.libvirtError as err:
            return str(err)

    guests = []
    out["all_info_s"], out["one_info_by_guests_s"] = {}, {}
    out["virsh_list_by_guests_s"], out["all_stats_by_guests"], out["domains"] = {}, {}, {}
    for count in [0] + sorted(cfg["guest_counts"]):
        while len(guests) < count:
            name = f"{PREFIX}{len(guests) + 1}"
            dom, _ = start(name)
            guests.append(dom)
            wait_ready(name)
        listed = conn.listAllDomains()
        if len(listed) != count + 1:
            raise SystemExit(f"libvirt lists {len(listed)} domains, expected {count} guests + dom0: "
                             f"{[d.name() for d in listed]}")
        out["domains"][count] = len(listed)
        out["all_info_s"][count] = measure(all_info, min_time=MIN)
        if guests:
            out["one_info_by_guests_s"][count] = measure(guests[-1].info, min_time=MIN)
        out["virsh_list_by_guests_s"][count] = measure(virsh_list, min_time=MIN, repeat=3)
        out["all_stats_by_guests"][count] = all_stats()
    top = max(cfg["guest_counts"])
    out["one_info_s"] = out["one_info_by_guests_s"][top]
    out["virsh_list_s"] = out["virsh_list_by_guests_s"][top]
    out["all_stats"] = out["all_stats_by_guests"][top]
finally:
    for name in list(made):
        try:
            conn.lookupByName(name).destroy()
        except libvirt.libvirtError as err:
            print(f"could not destroy {name}: {err}", file=sys.stderr)
print(json.dumps(out))
'''


def measure_libvirt(host: XenHost, guest_counts: tuple[int, ...] = (1, 4, 8), *,
                    lifecycle_runs: int = 3, timeout: float = 3600) -> dict[str, Any]:
    """Install libvirt 9.0's libxl driver into ``host``'s dom0, start libvirtd
    with the VME shim and measure it there (see the module's docstring for the
    keys). The guests are destroyed and libvirtd stopped before this returns
    or raises. Raises PeerError with the reason when the peer cannot be
    installed, started or measured."""
    counts = tuple(sorted(set(guest_counts)))
    if not counts or min(counts) < 1:
        raise ValueError(f"guest_counts must be positive numbers, not {guest_counts}")
    result: dict[str, Any] = {"install": install_peer(host)}
    try:
        result["daemon_start_s"] = start_daemon(host)
        host.put(HARNESS, "/root/_harness.py")
        host.put_bytes(DOM0_SCRIPT.encode(), DOM0_SCRIPT_PATH)
        config = {"prefix": GUEST_PREFIX, "memory_mib": GUEST_MEMORY_MIB, "guest_dir": DOM0_GUEST_DIR,
                  "uri": URI, "ready_marker": GUEST_READY_MARKER, "guest_counts": list(counts),
                  "lifecycle_runs": lifecycle_runs}
        run = host.run(["python3", DOM0_SCRIPT_PATH, json.dumps(config)], timeout)
        if run.status != 0:
            log = host.run(f"tail -n 30 {DOM0_LOG}").stdout
            raise PeerError(f"measuring libvirt in dom0 failed (exit status {run.status}):\n"
                            f"{run.stdout}{run.stderr}\nlibvirtd's log:\n{log}")
        measured = json.loads(run.stdout.strip().splitlines()[-1])
    finally:
        try:
            left = destroy_guests(host)
        finally:
            stop_daemon(host)
    for key in ("all_info_s", "one_info_by_guests_s", "virsh_list_by_guests_s",
                "all_stats_by_guests", "domains"):
        measured[key] = {int(n): value for n, value in measured[key].items()}
    result.update(measured)
    if left:
        result["destroyed_by_xl"] = left
    return result


def main() -> None:
    from tests.xenhost.harness import build_wheel, build_xen_image

    image = build_xen_image()
    with tempfile.TemporaryDirectory(prefix="virtkit-wheel-") as tmp:
        wheel = build_wheel(tmp)
        started = time.monotonic()
        with XenHost(image, memory_mib=2048) as host:
            print(f"Xen host up in {time.monotonic() - started:.0f} s", file=sys.stderr)
            host.install_virtkit(wheel, requirements=())
            result = measure_libvirt(host)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
