r"""A real Xen 4.17 host for the tests: Xen and a Debian dom0 booted under QEMU (TCG).

``scripts/build-xen-host`` builds the image (cached); ``XenHost`` boots it and
talks to dom0 through a test agent on a virtio-serial port
(``scripts/xen-host/dom0/virtkit-agent``)::

    image = build_xen_image()
    with XenHost(image) as host:                       # boots; ~40-60 s under TCG
        status, out, err = host.run("xl list")         # as root in dom0
        host.run(["id"], user=DOM0_USER)               # as the non-root user
        host.put(local_path, "/tmp/file"); host.get("/tmp/file", local_path)
        host.install_virtkit(wheel)                    # then python3 -c 'import virtkit'
        host.create_guest("g1")                        # xl create of the PV test guest
        host.wait_guest_console("g1", "VIRTKIT-XEN-GUEST-READY")
        host.restart(xenstored="xenstored")            # a fresh boot with C xenstored

QEMU's serial port (Xen's and dom0's console, interleaved) is logged to
``host.console_log`` whether or not anyone reads it, and served on
``host.console_socket``: ``socat -,raw,echo=0 UNIX:<path>`` gives a root shell
in dom0 for debugging. Failures raise ``XenHostError`` subclasses whose message
ends with the console's last lines.

Each ``XenHost`` owns its QEMU process and its temporary directory (the disk
overlay, the sockets, the console log); ``close()`` powers dom0 off, reaps QEMU
(killing it if it does not stop) and removes the directory. QEMU also dies with
the test process. The cached image is never written: dom0's disk is a qcow2
overlay on it, new at every boot.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-xen-host"

DOM0_USER = "vkuser"  # the non-root user in dom0 (uid 1000)
DOM0_GUEST_DIR = "/var/lib/virtkit"  # guest-vmlinux, guest-initrd.gz inside dom0
DOM0_SITE = "/usr/local/lib/python3.11/dist-packages"  # where install_virtkit puts virtkit
GUEST_CONSOLE_DIR = "/var/log/xen/console"  # xenconsoled's guest-NAME.log files
READY_MARKER = "VIRTKIT-DOM0-READY"
GUEST_READY_MARKER = "VIRTKIT-XEN-GUEST-READY"
XENSTOREDS = ("oxenstored", "xenstored")

DEFAULT_MEMORY_MIB = 1536
DEFAULT_DOM0_MEMORY_MIB = 512
DEFAULT_BOOT_TIMEOUT = 240.0  # about 45 s on a quiet machine; TCG slows down a lot under load
AGENT_MARGIN = 30.0  # on top of a command's own timeout, for the agent's round trip
SMALL_FILE = 64 * 1024  # larger files move through the 9p share, smaller ones through the agent


class XenHostError(AssertionError):
    """Something about the Xen host went wrong; the message ends with the console."""


class XenImageError(XenHostError):
    """The image could not be built (or QEMU is missing)."""


class AgentError(XenHostError):
    """The agent in dom0 answered with an error, or the channel to it failed."""


class CommandTimeout(XenHostError):
    """A command in dom0 ran past its timeout (the agent killed it)."""


class CommandFailed(XenHostError):
    """A command run with check=True exited non-zero."""


@dataclass(frozen=True)
class XenImage:
    """The outputs of scripts/build-xen-host."""

    xen: Path
    dom0_kernel: Path
    dom0_initrd: Path
    dom0_image: Path
    guest_kernel: Path
    guest_initrd: Path
    stamp: Path

    def info(self) -> dict[str, Any]:
        """What the image was built from (package versions, kernel releases, build time)."""
        result: dict[str, Any] = json.loads(self.stamp.read_text())
        return result


def build_xen_image(cache_dir: Path | None = None, *, timeout: float = 1800) -> XenImage:
    """Run scripts/build-xen-host (about 0.2 s when its cache is current, a few
    minutes from scratch) and return the image. Raises XenImageError with the
    script's output when anything fails."""
    cmd = [str(BUILD_SCRIPT)]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=timeout)
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr
        raise XenImageError(f"{' '.join(cmd)} ran longer than {timeout:g} s:\n{stderr}") from None
    if proc.returncode != 0:
        raise XenImageError(
            f"{' '.join(cmd)} failed with exit status {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        image = XenImage(*(Path(paths[f"VIRTKIT_XEN_{key}"]) for key in (
            "XEN", "DOM0_KERNEL", "DOM0_INITRD", "DOM0_IMAGE", "GUEST_KERNEL", "GUEST_INITRD",
            "STAMP")))
    except KeyError as err:
        raise XenImageError(f"{BUILD_SCRIPT.name} printed no {err}:\n{proc.stdout}") from None
    for path in (image.xen, image.dom0_kernel, image.dom0_initrd, image.dom0_image, image.stamp):
        if not path.is_file():
            raise XenImageError(f"{BUILD_SCRIPT.name} succeeded but {path} does not exist")
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            raise XenImageError(f"{tool} is not on PATH (install qemu-system-x86 and qemu-utils)")
    return image


class Result(NamedTuple):
    """What a command in dom0 did: exit status (-N: killed by signal N), output."""

    status: int
    stdout: str
    stderr: str


_STARTED: list[XenHost] = []


def started_hosts() -> list[XenHost]:
    """Every host started in this process, closed or not (for a leak check)."""
    return list(_STARTED)


class XenHost:
    """Xen + dom0 under QEMU (TCG), with the test agent in dom0.

    ``xenstored`` picks dom0's xenstore daemon for this boot: ``"oxenstored"``
    (Debian's default) or ``"xenstored"`` (the C one). ``extra_xen_args`` and
    ``extra_dom0_args`` are appended to the hypervisor's and dom0 kernel's
    command lines. The constructor boots and waits until the agent answers;
    ``timings`` records how long each phase took.
    """

    def __init__(
        self,
        image: XenImage,
        *,
        xenstored: str = "oxenstored",
        memory_mib: int = DEFAULT_MEMORY_MIB,
        dom0_memory_mib: int = DEFAULT_DOM0_MEMORY_MIB,
        cpus: int = 2,
        extra_xen_args: str = "",
        extra_dom0_args: str = "",
        boot_timeout: float = DEFAULT_BOOT_TIMEOUT,
        extra_qemu_args: Sequence[str] = (),
        qemu: str = "qemu-system-x86_64",
    ) -> None:
        self.image = image
        self.memory_mib = memory_mib
        self.dom0_memory_mib = dom0_memory_mib
        self.cpus = cpus
        self.extra_xen_args = extra_xen_args
        self.extra_dom0_args = extra_dom0_args
        self.qemu = qemu
        self.extra_qemu_args = list(extra_qemu_args)
        self.tmpdir = Path(tempfile.mkdtemp(prefix="virtkit-xenhost-"))
        self.console_log = self.tmpdir / "console.log"
        self.console_socket = self.tmpdir / "console.sock"
        self.agent_socket = self.tmpdir / "agent.sock"
        self.overlay = self.tmpdir / "dom0.qcow2"
        self.share = self.tmpdir / "share"  # dom0's /mnt/host (9p)
        self.share.mkdir(mode=0o700)
        self.proc: subprocess.Popen[bytes] | None = None
        self.closed = False
        self.timings: dict[str, float] = {}
        self.boots = 0
        self.peak_rss_mib = 0.0  # QEMU's largest peak resident memory over the boots so far
        self._transfers = 0
        self._virtkit_installed: tuple[int, Path, tuple[str, ...]] | None = None
        self._agent: _Agent | None = None
        self._stderr: Any = None
        _STARTED.append(self)
        try:
            self._boot(xenstored, boot_timeout)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ life cycle

    def __enter__(self) -> XenHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def qemu_argv(self, xenstored: str) -> list[str]:
        img = self.image
        xen_args = (f"dom0_mem={self.dom0_memory_mib}M,max:{self.dom0_memory_mib}M "
                    f"dom0_max_vcpus={self.cpus} bootscrub=false console=com1 com1=115200,8n1 "
                    f"{self.extra_xen_args}").strip()
        dom0_args = (f"console=hvc0 root=/dev/vda rw quiet panic=-1 virtkit.share "
                     f"virtkit.xenstored={xenstored} {self.extra_dom0_args}").strip()
        for path in (img.dom0_kernel, img.dom0_initrd):
            if any(c in str(path) for c in " ,"):
                raise XenImageError(f"QEMU's -initrd list cannot hold {path} (space or comma)")
        if "," in dom0_args:
            raise XenHostError(f"dom0's command line cannot hold a comma (-initrd list): {dom0_args}")
        return [
            self.qemu, "-accel", "tcg", "-machine", "pc", "-cpu", "qemu64,+svm,+npt",
            "-m", str(self.memory_mib), "-smp", str(self.cpus),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(img.xen), "-append", xen_args,
            "-initrd", f"{img.dom0_kernel} {dom0_args},{img.dom0_initrd}",
            "-drive", f"file={self.overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
            "-chardev", f"socket,id=serial0,path={self.console_socket},server=on,wait=off,"
                        f"logfile={self.console_log},logappend=on",
            "-serial", "chardev:serial0",
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=agent0,path={self.agent_socket},server=on,wait=off",
            "-device", "virtserialport,bus=vser0.0,chardev=agent0,name=org.virtkit.agent",
            "-fsdev", f"local,id=share0,path={self.share},security_model=none",
            "-device", "virtio-9p-pci,fsdev=share0,mount_tag=virtkit.share",
            *self.extra_qemu_args,
        ]

    def _boot(self, xenstored: str, timeout: float) -> None:
        if xenstored not in XENSTOREDS:
            raise ValueError(f"xenstored must be one of {XENSTOREDS}, not {xenstored!r}")
        self.xenstored = xenstored
        self.overlay.unlink(missing_ok=True)
        proc = subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.image.dom0_image.resolve()),
             "-F", "raw", str(self.overlay)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise XenHostError(f"qemu-img create failed: {proc.stderr}")
        self.boots += 1
        with open(self.console_log, "a") as f:
            f.write(f"\n===== virtkit: boot {self.boots}, xenstored={xenstored} =====\n")
        self._console_offset = self.console_log.stat().st_size
        self.argv = self.qemu_argv(xenstored)
        self._stderr = open(self.tmpdir / "qemu.stderr", "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, preexec_fn=_die_with_parent)
        deadline = self.started + timeout
        ready = self.wait_console(f"{READY_MARKER}.*", timeout)
        self.timings["ready_marker"] = time.monotonic() - self.started
        self.ready_line = ready.group(0)
        if f"xenstored={xenstored}" not in self.ready_line:
            raise XenHostError(f"dom0 came up with another xenstored: {self.ready_line}\n"
                               f"{self.console_tail()}")
        # The agent starts right after the boot script that printed the marker.
        self._agent = _Agent(self.agent_socket)
        while True:
            try:
                self._agent.call({"op": "ping"}, timeout=2.0)
                break
            except AgentTimeout:
                if self.returncode is not None or time.monotonic() > deadline:
                    raise self._error(f"the agent in dom0 did not answer within {timeout:g} s") from None
        self.timings["boot"] = time.monotonic() - self.started

    def restart(self, *, xenstored: str | None = None, timeout: float = DEFAULT_BOOT_TIMEOUT) -> None:
        """Power dom0 off and boot again, on a fresh overlay (nothing written in dom0
        survives), optionally with the other xenstore daemon. A running xenstored
        cannot be swapped: the dom0 kernel's own xenstore connection and watches
        would be lost."""
        self._stop()
        self._boot(xenstored or self.xenstored, timeout)

    def _stop(self, timeout: float = 20.0) -> None:
        rss = self.qemu_peak_rss_mib()
        if rss is not None:
            self.peak_rss_mib = max(self.peak_rss_mib, rss)
        if self.proc is not None and self.proc.poll() is None and self._agent is not None:
            try:
                self._agent.call({"op": "poweroff"}, timeout=5.0)
                self.proc.wait(timeout=timeout)
            except (XenHostError, subprocess.TimeoutExpired):
                pass
        if self._agent is not None:
            self._agent.close()
            self._agent = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self) -> None:
        """Power dom0 off (QEMU exits with it), reap QEMU (SIGKILL after 20 s),
        remove the temporary directory. Safe to call twice."""
        if self.closed:
            return
        try:
            self._stop()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.closed = True

    def qemu_peak_rss_mib(self) -> float | None:
        """QEMU's peak resident memory so far (VmHWM), None when it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        return int(match[1]) / 1024 if match else None

    # ------------------------------------------------------------ console

    def console_text(self, *, this_boot: bool = True) -> str:
        """QEMU's serial output so far (Xen's and dom0's console)."""
        try:
            with open(self.console_log, "rb") as f:
                if this_boot:
                    f.seek(self._console_offset)
                data = f.read()
        except OSError:
            return ""
        return data.decode("utf-8", "replace").replace("\r", "")

    def console_tail(self, lines: int = 60) -> str:
        shown = self.console_text().splitlines()[-lines:]
        stderr = ""
        path = self.tmpdir / "qemu.stderr"
        if path.exists() and path.stat().st_size:
            stderr = "--- QEMU's stderr ---\n" + path.read_text(errors="replace")[-2000:]
        status = self.returncode
        state = "running" if status is None else f"exited with status {status}"
        return (f"--- console of the Xen host (QEMU {state}), last {len(shown)} lines ---\n"
                + "\n".join(shown) + "\n--- end of console ---\n" + stderr)

    def _error(self, message: str, cls: type[XenHostError] = XenHostError) -> XenHostError:
        return cls(f"{message}\n{self.console_tail()}")

    def wait_console(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until a line of this boot's console matches `pattern` (re.search)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.console_text().splitlines():
                match = regex.search(line)
                if match:
                    return match
            if self.returncode is not None:
                raise self._error(f"QEMU exited while waiting for {pattern!r} on the console")
            if time.monotonic() > deadline:
                raise self._error(f"no console line matching {pattern!r} within {timeout:g} s")
            time.sleep(0.2)

    # ------------------------------------------------------------ agent

    def _call(self, header: dict[str, Any], body: bytes = b"", *, timeout: float) -> tuple[dict[str, Any], bytes]:
        if self._agent is None or self.returncode is not None:
            raise self._error("the Xen host is not running", AgentError)
        try:
            reply, data = self._agent.call(header, body, timeout=timeout)
        except AgentTimeout as err:
            raise self._error(str(err), AgentError) from None
        if "error" in reply:
            raise AgentError(f"the agent in dom0 failed {header.get('op')} "
                             f"{header.get('argv') or header.get('path') or ''}: {reply['error']}")
        return reply, data

    def run(
        self,
        cmd: str | Sequence[str],
        timeout: float = 60.0,
        *,
        user: str = "root",
        input: bytes | str = b"",
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        check: bool = False,
    ) -> Result:
        """Run a command in dom0 and return (status, stdout, stderr). A string
        runs under /bin/sh -c; a sequence is the argv. `user` is "root" or
        DOM0_USER. The agent kills the command's whole session after `timeout`
        seconds and this raises CommandTimeout; with `check`, a non-zero status
        raises CommandFailed."""
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        data = input.encode() if isinstance(input, str) else input
        header = {"op": "run", "argv": argv, "user": user, "timeout": timeout, "env": env or {},
                  "cwd": cwd}
        reply, body = self._call(header, data, timeout=timeout + AGENT_MARGIN)
        split = reply["stdout_len"]
        result = Result(reply["status"], body[:split].decode("utf-8", "replace"),
                        body[split:].decode("utf-8", "replace"))
        shown = cmd if isinstance(cmd, str) else shlex.join(argv)
        if reply["timed_out"]:
            raise CommandTimeout(f"{shown!r} (as {user}) ran past {timeout:g} s and was killed; "
                                 f"output so far:\n{result.stdout}{result.stderr}")
        if check and result.status != 0:
            raise CommandFailed(f"{shown!r} (as {user}) exited with {result.status}:\n"
                                f"{result.stdout}{result.stderr}")
        return result

    def check_output(self, cmd: str | Sequence[str], timeout: float = 60.0, **kwargs: Any) -> str:
        """run(..., check=True) and return its stdout."""
        return self.run(cmd, timeout, check=True, **kwargs).stdout

    def put_bytes(self, data: bytes, remote_path: str, *, mode: int = 0o644, timeout: float = 300.0) -> None:
        """Write `data` to `remote_path` in dom0 (atomically: a temporary file
        beside it, then a rename). Up to SMALL_FILE bytes go in the agent's
        request itself; larger files through the 9p share (virtio-serial moves
        about 0.7 MB/s into dom0 under TCG, 9p tens of MB/s)."""
        if len(data) <= SMALL_FILE:
            self._call({"op": "put", "path": remote_path, "mode": mode}, data, timeout=timeout)
            return
        name = self._share_name()
        (self.share / name).write_bytes(data)
        try:
            self.run(["install", "-m", f"{mode:o}", f"/mnt/host/{name}", remote_path], timeout,
                     check=True)
        finally:
            (self.share / name).unlink(missing_ok=True)

    def get_bytes(self, remote_path: str, *, timeout: float = 300.0) -> bytes:
        """The contents of a dom0 file (through the 9p share when it is large)."""
        size = self.run(["stat", "-c", "%s", remote_path], check=True).stdout.strip()
        if int(size) <= SMALL_FILE:
            return self._call({"op": "get", "path": remote_path}, timeout=timeout)[1]
        name = self._share_name()
        try:
            self.run(["cp", remote_path, f"/mnt/host/{name}"], timeout, check=True)
            return (self.share / name).read_bytes()
        finally:
            (self.share / name).unlink(missing_ok=True)

    def _share_name(self) -> str:
        self._transfers += 1
        return f"transfer-{self._transfers}"

    def put(self, local_path: str | os.PathLike[str], remote_path: str, *, mode: int | None = None) -> None:
        """Copy a host file into dom0 (keeping its permission bits unless `mode`)."""
        local = Path(local_path)
        self.put_bytes(local.read_bytes(), remote_path,
                       mode=local.stat().st_mode & 0o7777 if mode is None else mode)

    def get(self, remote_path: str, local_path: str | os.PathLike[str]) -> None:
        """Copy a dom0 file to the host."""
        Path(local_path).write_bytes(self.get_bytes(remote_path))

    # ------------------------------------------------------------ virtkit

    def install_virtkit(self, wheel: str | os.PathLike[str], *,
                        requirements: Sequence[str] = ("pytest",)) -> dict[str, float]:
        """Install a virtkit wheel, its dependencies and `requirements` into dom0's
        Python (Debian's 3.11, site directory DOM0_SITE), with the `virtkit` and
        `virtkitd` commands in /usr/local/bin. The dependencies are fetched on the
        host with pip (same ABI: CPython 3.11, x86_64, glibc 2.36) and cached by
        their requirement strings; the wheel itself is sent fresh every time.
        Returns the seconds each step took."""
        timings: dict[str, float] = {}
        t = time.monotonic()
        wheel = Path(wheel)
        if not re.search(r"-cp311-|-abi3-|-py3-none-", wheel.name):
            raise XenHostError(f"{wheel.name} is not for CPython 3.11, dom0's Python")
        metadata, entry_points = _wheel_metadata(wheel)
        deps = [req for req in metadata.get_all("Requires-Dist", []) if "extra ==" not in req]
        site = _dependency_site(sorted(deps) + sorted(requirements))
        timings["dependencies"] = time.monotonic() - t

        t = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="virtkit-wheel-") as tmp:
            stage = Path(tmp)
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(stage)
            subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(stage)],
                           check=True, capture_output=True)
            packed = io.BytesIO()
            with tarfile.open(fileobj=packed, mode="w") as tar:
                for top in (site, stage):
                    for child in sorted(top.iterdir()):
                        tar.add(child, arcname=child.name, filter=_for_dom0)
        tarball = packed.getvalue()
        timings["pack"] = time.monotonic() - t

        t = time.monotonic()
        (self.share / "virtkit-install.tar").write_bytes(tarball)
        timings["MiB"] = len(tarball) / 2**20
        # One big sequential copy out of the share (tar's own 10 KiB reads
        # would each be a 9p round trip), then tar into the tmpfs rc.boot
        # mounted on DOM0_SITE.
        self.run("cp /mnt/host/virtkit-install.tar /tmp/", timeout=300, check=True)
        (self.share / "virtkit-install.tar").unlink()
        timings["transfer"] = time.monotonic() - t

        t = time.monotonic()
        wrappers = "".join(
            f"printf '%s\\n' '#!/usr/bin/python3' 'import sys' 'from {module} import {func}' "
            f"'sys.exit({func}())' >/usr/local/bin/{name} && chmod 755 /usr/local/bin/{name}\n"
            for name, (module, func) in entry_points.items())
        self.run(f"set -e; rm -rf {DOM0_SITE}/virtkit {DOM0_SITE}/virtkit-*.dist-info; "
                 f"mkdir -p {DOM0_SITE}; tar -xf /tmp/virtkit-install.tar -C {DOM0_SITE} "
                 f"--no-same-owner; rm /tmp/virtkit-install.tar\n{wrappers}", timeout=300, check=True)
        timings["unpack"] = time.monotonic() - t
        t = time.monotonic()
        self.run(["python3", "-c", "import virtkit, virtkit._core"], check=True)
        timings["import check"] = time.monotonic() - t
        self._virtkit_installed = (self.boots, wheel.resolve(), tuple(requirements))
        return timings

    def ensure_virtkit(self, wheel: str | os.PathLike[str], *,
                       requirements: Sequence[str] = ("pytest",)) -> dict[str, float]:
        """install_virtkit unless this boot already has this wheel (a restart()
        loses it). Returns install_virtkit's timings, or {} when nothing was done."""
        if self._virtkit_installed == (self.boots, Path(wheel).resolve(), tuple(requirements)):
            return {}
        return self.install_virtkit(wheel, requirements=requirements)

    # ------------------------------------------------------------ guests

    def guest_config(self, name: str, *, type: str = "pv", memory_mib: int = 128, vcpus: int = 1,
                     extra_args: str = "", **keys: str | int) -> str:
        """An xl config (text) for the test guest (`type` pv, pvh or hvm): its
        kernel and initramfs from DOM0_GUEST_DIR, console on hvc0 (ttyS0 for
        hvm). `keys` are added as further xl keys (JSON-quoted values: strings
        and lists of strings are what xl expects)."""
        hvm = type == "hvm"
        lines = {
            "name": name, "type": type, "memory": memory_mib, "vcpus": vcpus,
            # HVM: QEMU's direct kernel boot wants the bzImage; the console is
            # the emulated serial port (xenconsoled logs it all the same).
            "kernel": f"{DOM0_GUEST_DIR}/guest-{'vmlinuz' if hvm else 'vmlinux'}",
            "ramdisk": f"{DOM0_GUEST_DIR}/guest-initrd.gz",
            "extra": f"console={'ttyS0' if hvm else 'hvc0'} quiet panic=-1 {extra_args}".strip(),
            **keys,
        }
        return "".join(f"{key} = {json.dumps(value)}\n" for key, value in lines.items())

    def create_guest(self, name: str, timeout: float = 120.0, **config: Any) -> float:
        """Write /etc/xen/NAME.cfg (guest_config(name, **config)) and `xl create` it.
        Returns the seconds xl create took."""
        path = f"/etc/xen/{name}.cfg"
        self.put_bytes(self.guest_config(name, **config).encode(), path)
        t = time.monotonic()
        self.run(["xl", "create", path], timeout, check=True)
        return time.monotonic() - t

    def wait_guest_console(self, name: str, pattern: str, timeout: float = 120.0) -> str:
        """Wait until the guest's console log (xenconsoled's, in dom0) has a line
        matching the extended regex `pattern`; return that line. The wait runs in
        dom0 (one agent round trip)."""
        log = f"{GUEST_CONSOLE_DIR}/guest-{name}.log"
        script = (f"end=$(($(date +%s) + {int(timeout)})); "
                  f"until grep -E -m1 -e {shlex.quote(pattern)} {log} 2>/dev/null; do "
                  f"[ $(date +%s) -ge $end ] && exit 1; sleep 0.2; done")
        result = self.run(script, timeout + 5)
        if result.status != 0:
            console = self.run(f"tail -n 40 {log} 2>&1").stdout
            raise self._error(f"guest {name}'s console showed no line matching {pattern!r} "
                              f"within {timeout:g} s; its console log:\n{console}")
        return result.stdout.strip()

    def domains(self) -> dict[str, int]:
        """Names and ids of the running domains, from `xl list`."""
        out = self.check_output(["xl", "list"])
        domains = {}
        for line in out.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 2:
                domains[fields[0]] = int(fields[1])
        return domains


# ---------------------------------------------------------------- the agent channel


class AgentTimeout(AgentError):
    """No complete reply within the timeout."""


class _Agent:
    """Client end of the agent's wire format (see scripts/xen-host/dom0/virtkit-agent).
    Replies whose id is not the awaited one are skipped, and partial frames stay in
    the buffer across calls, so a timed-out call never desynchronises the next."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.buf = bytearray()
        self.next_id = 1

    def close(self) -> None:
        self.sock.close()

    def _frame(self) -> tuple[dict[str, Any], bytes] | None:
        end = self.buf.find(b"\n")
        if end < 0:
            return None
        header = json.loads(self.buf[:end])
        size = int(header.get("len") or 0)
        if len(self.buf) < end + 1 + size:
            return None
        body = bytes(self.buf[end + 1:end + 1 + size])
        del self.buf[:end + 1 + size]
        return header, body

    def call(self, header: dict[str, Any], body: bytes = b"", *, timeout: float) -> tuple[dict[str, Any], bytes]:
        request_id = self.next_id
        self.next_id += 1
        header = dict(header, id=request_id, len=len(body))
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(json.dumps(header).encode() + b"\n" + body)
        except (TimeoutError, socket.timeout):
            raise AgentTimeout(f"could not send {header['op']} to the agent within {timeout:g} s") from None
        while True:
            frame = self._frame()
            if frame is not None:
                if frame[0].get("id") == request_id:
                    return frame
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AgentTimeout(f"the agent did not answer {header['op']} within {timeout:g} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except (TimeoutError, socket.timeout):
                continue
            if not data:
                raise AgentTimeout("the agent's socket closed (QEMU exited?)")
            self.buf += data


# ---------------------------------------------------------------- helpers


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills QEMU if the test process dies."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _wheel_metadata(wheel: Path) -> tuple[Any, dict[str, tuple[str, str]]]:
    from email.parser import Parser

    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(zf.read(meta_name).decode())
        entry_points: dict[str, tuple[str, str]] = {}
        ep_name = meta_name.replace("METADATA", "entry_points.txt")
        if ep_name in names:
            section = None
            for line in zf.read(ep_name).decode().splitlines():
                line = line.strip()
                if line.startswith("["):
                    section = line.strip("[]")
                elif "=" in line and section == "console_scripts":
                    name, _, target = (part.strip() for part in line.partition("="))
                    module, _, func = target.partition(":")
                    entry_points[name] = (module, func)
    return metadata, entry_points


def _for_dom0(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Owned by root, readable by all (dom0's non-root user imports virtkit
    too); the dependency cache's own marker files left out."""
    if Path(member.name).name in (".complete", "requirements.json"):
        return None
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
    return member


def build_wheel(dest: str | os.PathLike[str]) -> Path:
    """The virtkit wheel of this checkout, built into ``dest`` the way `pip install .`
    builds it (for the benchmarks that boot the host; XenHostError with pip's
    output when the build fails)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--disable-pip-version-check", "-w", str(dest), str(REPO)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wheels = sorted(Path(dest).glob("virtkit-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise XenHostError(f"building the virtkit wheel failed ({proc.returncode}):\n"
                           f"{proc.stderr}{proc.stdout}")
    return wheels[0]


def cache_dir() -> Path:
    return Path(os.environ.get("VIRTKIT_CACHE") or Path.home() / ".cache" / "virtkit")


def _dependency_site(requirements: list[str]) -> Path:
    """A directory holding `requirements` installed for CPython 3.11 on
    x86_64 glibc (pip install --target, byte-compiled), cached by the list."""
    key = hashlib.sha256(json.dumps(["cp311-x86_64-linux-gnu", requirements]).encode()).hexdigest()[:16]
    root = cache_dir() / "xen-host-deps"
    site = root / key
    if (site / ".complete").exists():
        return site
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-warn-script-location", "--only-binary=:all:", "--target", str(tmp),
             *requirements], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise XenHostError(f"pip could not fetch {requirements} for dom0:\n{proc.stderr}")
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # scripts whose #! names the host's Python
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(tmp)],
                       capture_output=True)
        (tmp / "requirements.json").write_text(json.dumps(requirements) + "\n")
        (tmp / ".complete").write_text("")
        shutil.rmtree(site, ignore_errors=True)
        os.replace(tmp, site)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return site
