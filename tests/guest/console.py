r"""Boot the test guest under QEMU and talk to its serial console.

The image comes from ``scripts/build-test-guest`` (see ``scripts/guest/README.md``
for what the guest prints). A test starts QEMU on it, reads the console line by
line with a timeout, types into the guest's shell and sends QMP commands::

    with QemuGuest(image, nic_model="virtio-net-pci") as guest:
        guest.wait_ready()
        guest.console.wait_for_shell()
        guest.console.send_line("echo hello-$((6*7))")
        guest.console.expect(r"^hello-42$")
        status, output = guest.console.run("cat /sys/block/vda/size")
        guest.console.expect(r"VIRTKIT-TICK n=(\d+)")  # no ^: see below
        guest.qmp("system_powerdown")
        assert guest.wait(timeout=10) == 0

Lines the guest prints on its own (ticks, the lease) may follow the echo of
half-typed input on the same line, so match them without ``^``; the output of
a command and the prompt always start a line.

``Console`` works on any pair of file descriptors (a pipe, a pty, a connected
socket), so tests that let virtkit start QEMU can read that guest's console the
same way. Everything here raises ``GuestError`` subclasses whose message ends
with the console transcript, so a failing test shows what the guest printed.

Each ``QemuGuest`` owns its QEMU process and temporary directory; ``close()``
(or leaving the ``with`` block) kills and reaps QEMU and removes the directory.
``started_guests()`` lists every one started, for a leak check.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-test-guest"

#: The kernel command line the tests use. The last console= names the device
#: /dev/console (and so the guest's messages and shell) is on; panic=-1 turns a
#: panic into a reboot, which -no-reboot turns into QEMU exiting.
DEFAULT_APPEND = "console=ttyS0 quiet panic=-1"
#: The smallest memory that boots reliably is 72 MiB; a margin on top.
DEFAULT_MEMORY_MIB = 96
READY_MARKER = "VIRTKIT-GUEST-READY"
PROMPT = "virtkit-guest#"  # a line of its own: PS1 ends with a newline

# Control sequences the shell's line editor writes (e.g. ESC [ 6 n, asking the
# terminal where the cursor is); stripped from the lines tests match against.
# Lines the guest prints unasked, left out of run()'s output.
_ASYNC_LINE = re.compile(r"^VIRTKIT-(TICK|LEASE|LEASE-FAIL) ")
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\x1b[=>]")


class GuestError(AssertionError):
    """Something about the guest went wrong; the message carries the transcript."""


class GuestImageError(GuestError):
    """The image (or QEMU) could not be built or installed."""


class ConsoleTimeout(GuestError):
    """The expected output did not appear in time."""


class ConsoleClosed(GuestError):
    """The console reached end of file (QEMU exited) before the expected output."""


class QmpError(GuestError):
    """QEMU answered a QMP command with an error, or the QMP socket failed."""


@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initrd: Path


def build_guest_image(cache_dir: Path | None = None, *, with_qemu: bool = True) -> GuestImage:
    """Run scripts/build-test-guest (a no-op when its cache is current) and return
    the image. With ``with_qemu`` it also installs QEMU when it is missing.
    Raises GuestImageError with the script's output when anything fails."""
    cmd = [str(BUILD_SCRIPT)]
    if cache_dir is not None:
        cmd += ["--cache-dir", str(cache_dir)]
    if with_qemu:
        cmd.append("--with-qemu")
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise GuestImageError(
            f"{' '.join(cmd)} failed with exit status {proc.returncode}:\n{proc.stderr}{proc.stdout}"
        )
    paths = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    try:
        image = GuestImage(Path(paths["VIRTKIT_GUEST_KERNEL"]), Path(paths["VIRTKIT_GUEST_INITRD"]))
    except KeyError as err:
        raise GuestImageError(f"{BUILD_SCRIPT.name} printed no {err}:\n{proc.stdout}") from None
    for path in (image.kernel, image.initrd):
        if not path.is_file():
            raise GuestImageError(f"{BUILD_SCRIPT.name} succeeded but {path} does not exist")
    if shutil.which("qemu-system-x86_64") is None:
        raise GuestImageError("qemu-system-x86_64 is not on PATH (install qemu-system-x86)")
    return image


@dataclass(frozen=True)
class Line:
    """One console line: its text (no CR/LF, control sequences stripped) and when
    it was complete, in seconds since the console's start time."""

    text: str
    time: float


class Console:
    """Line-oriented reader (and writer) of a guest's serial console.

    Lines are read on demand (no thread): every ``expect*``/``readline`` call
    reads what has arrived, up to its deadline. All lines stay in ``lines``;
    ``expect`` consumes them in order, so two expects never match the same line.
    """

    def __init__(self, read_fd: int, write_fd: int | None = None, *, start: float | None = None):
        self._rfd = read_fd
        self._wfd = write_fd
        os.set_blocking(read_fd, False)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._next = 0
        self.start = time.monotonic() if start is None else start
        self.lines: list[Line] = []
        self.raw = ""  # everything read, as received (after UTF-8 decoding)
        self.last: Line | None = None  # the line the last expect() matched
        self._commands = 0
        self.eof = False

    # -- reading

    def _read_some(self, deadline: float) -> bool:
        """Read what is available, waiting until `deadline` at most. False on
        timeout or end of file."""
        if self.eof:
            return False
        wait = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([self._rfd], [], [], wait)
        if not ready:
            return False
        try:
            data = os.read(self._rfd, 65536)
        except BlockingIOError:
            return True
        if not data:
            self.eof = True
            text = self._decoder.decode(b"", final=True)
        else:
            text = self._decoder.decode(data)
        self.raw += text
        self._partial += text
        now = time.monotonic() - self.start
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self.lines.append(Line(_clean(line), now))
        if self.eof and self._partial:
            self.lines.append(Line(_clean(self._partial), now))
            self._partial = ""
        return bool(data)

    def pump(self, seconds: float = 0.0) -> None:
        """Read whatever arrives within `seconds` without consuming anything."""
        deadline = time.monotonic() + seconds
        while self._read_some(deadline):
            pass

    @property
    def partial(self) -> str:
        """The text after the last newline (e.g. a prompt), control sequences stripped."""
        return _clean(self._partial)

    def readline(self, timeout: float) -> Line:
        """The next unconsumed line; ConsoleTimeout/ConsoleClosed if none comes."""
        deadline = time.monotonic() + timeout
        while self._next >= len(self.lines):
            if not self._read_some(deadline):
                self._fail_wait("a line", timeout)
        line = self.lines[self._next]
        self._next += 1
        return line

    def expect(
        self, pattern: str | re.Pattern[str], timeout: float = 30.0, *, from_start: bool = False
    ) -> re.Match[str]:
        """Consume lines until one matches `pattern` (re.search) and return the
        match; the matching Line is then ``self.last``. With ``from_start`` the
        search begins at the first line ever read, consumed or not (for output a
        guest prints once, such as the lease, when several tests share a guest)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = 0 if from_start else self._next
        while True:
            while index < len(self.lines):
                line = self.lines[index]
                index += 1
                self._next = max(self._next, index)
                match = regex.search(line.text)
                if match:
                    self.last = line
                    return match
            if not self._read_some(deadline):
                if self.eof or time.monotonic() >= deadline:
                    self._fail_wait(f"a line matching {regex.pattern!r}", timeout)

    def expect_prompt(self, timeout: float = 30.0, *, prompt: str = PROMPT) -> None:
        """Consume lines up to the next shell prompt line (prompts are not told
        apart: after typing a command, this is the prompt that follows it only if
        earlier prompts were consumed; run() and wait_for_shell() consume theirs)."""
        self.expect(rf"^{re.escape(prompt)}$", timeout)

    def wait_for_shell(self, timeout: float = 30.0) -> None:
        """Wait until the guest's shell has run a command typed now and shows its
        prompt: it is then idle and what is typed next reaches it. Call it once the
        ready marker is seen (input sent earlier may be lost while the kernel sets
        up the serial port)."""
        status, output = self.run(":", timeout)
        if status != 0 or output:
            raise GuestError(f"the shell answered ':' with {status} {output}\n{self.transcript()}")

    def run(self, command: str, timeout: float = 30.0) -> tuple[int, list[str]]:
        """Type `command` into the guest's shell, wait until it finishes and the
        prompt is back, and return its exit status and output lines. The guest's
        own tick and lease lines are left out of the output; the command must
        not read the console."""
        self._commands += 1
        tag = f"{self._commands}x{os.getpid()}"
        self.send_line(f"echo VIRTKIT-BEGIN-{tag}; {command}; echo VIRTKIT-END-{tag}-$?")
        deadline = time.monotonic() + timeout
        self.expect(rf"^VIRTKIT-BEGIN-{tag}$", timeout)
        end = re.compile(rf"(.*)VIRTKIT-END-{tag}-(\d+)$")
        output: list[str] = []
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            match = end.search(line.text)
            if match:
                if match[1]:  # output without a final newline
                    output.append(match[1])
                self.expect_prompt(max(0.0, deadline - time.monotonic()))
                return int(match[2]), output
            if not _ASYNC_LINE.match(line.text):
                output.append(line.text)

    def _fail_wait(self, what: str, timeout: float) -> None:
        if self.eof:
            raise ConsoleClosed(f"console closed while waiting for {what}\n{self.transcript()}")
        raise ConsoleTimeout(f"no {what} within {timeout:g} s\n{self.transcript()}")

    def transcript(self, last: int = 60) -> str:
        """The last `last` lines, each with its time, for error messages."""
        shown = self.lines[-last:]
        body = "\n".join(f"  [{line.time:7.2f}] {line.text}" for line in shown)
        if self._partial:
            body += f"\n  [partial] {self.partial}"
        skipped = len(self.lines) - len(shown)
        head = f"--- console ({skipped} earlier lines not shown) ---" if skipped else "--- console ---"
        return f"{head}\n{body}\n--- end of console ---"

    # -- writing

    def send(self, text: str) -> None:
        if self._wfd is None:
            raise GuestError("this console is read-only")
        data = text.encode()
        while data:
            written = os.write(self._wfd, data)
            data = data[written:]

    def send_line(self, text: str) -> None:
        """Type `text` and Enter (the serial line sends CR, as a terminal would)."""
        self.send(text + "\r")


def _clean(line: str) -> str:
    return _ESCAPES.sub("", line).replace("\r", "")


_STARTED: list[QemuGuest] = []


def started_guests() -> list[QemuGuest]:
    """Every guest started in this process, in order, closed or not (a leak check
    looks at ``closed`` and ``returncode``)."""
    return list(_STARTED)


class QemuGuest:
    """QEMU (TCG) running the test guest, its serial console on a pipe, QMP on a
    unix socket in a private temporary directory.

    ``nic_model`` adds ``-nic user,model=...`` (QEMU's user-mode network, whose
    DHCP server leases 10.0.2.15). ``extra_args`` go last on QEMU's command line.
    """

    def __init__(
        self,
        image: GuestImage,
        *,
        memory_mib: int = DEFAULT_MEMORY_MIB,
        machine: str = "pc",
        append: str = DEFAULT_APPEND,
        nic_model: str | None = None,
        extra_args: Sequence[str] = (),
        qemu: str = "qemu-system-x86_64",
    ) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="virtkit-guest-"))
        self.qmp_path = self.tmpdir / "qmp.sock"
        self.argv = [
            qemu, "-accel", "tcg", "-machine", machine, "-m", str(memory_mib),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(image.kernel), "-initrd", str(image.initrd), "-append", append,
            "-serial", "stdio",
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-nic", f"user,model={nic_model}" if nic_model else "none",
            *extra_args,
        ]
        self._stderr = open(self.tmpdir / "qemu.stderr", "w+b")
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                preexec_fn=_die_with_parent,
            )
        except BaseException:
            self._stderr.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise
        self.closed = False
        _STARTED.append(self)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.console = Console(self.proc.stdout.fileno(), self.proc.stdin.fileno(), start=started)

    def __enter__(self) -> QemuGuest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def stderr(self) -> str:
        self._stderr.flush()
        return (self.tmpdir / "qemu.stderr").read_text(errors="replace") if self.tmpdir.exists() else ""

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait for the ready marker; return the seconds from QEMU's start to it."""
        self.console.expect(READY_MARKER, timeout)
        assert self.console.last is not None
        return self.console.last.time

    def wait(self, timeout: float) -> int:
        """Wait for QEMU to exit on its own (reading the console meanwhile, so QEMU
        never blocks on a full pipe); return its exit status."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() >= deadline:
                raise ConsoleTimeout(
                    f"QEMU still running {timeout:g} s later\n{self.console.transcript()}"
                )
            self.console.pump(0.05)
        self.console.pump()
        return self.proc.returncode

    def qmp(self, command: str, timeout: float = 10.0, **arguments: Any) -> Any:
        """Run one QMP command on a fresh connection; return its "return" value."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.qmp_path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if self.proc.poll() is not None or time.monotonic() >= deadline:
                    raise QmpError(f"cannot connect to {self.qmp_path}\n{self.stderr()}") from None
                time.sleep(0.05)
        with sock:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            stream = sock.makefile("rwb")
            _qmp_reply(stream, "QMP")  # the greeting
            for execute, args in (("qmp_capabilities", {}), (command, arguments)):
                request: dict[str, Any] = {"execute": execute}
                if args:
                    request["arguments"] = args
                stream.write(json.dumps(request).encode() + b"\n")
                stream.flush()
                reply = _qmp_reply(stream, "return", "error")
                if "error" in reply:
                    raise QmpError(f"QMP {execute} failed: {reply['error']}")
            stream.close()
            return reply["return"]

    def close(self) -> None:
        """Kill QEMU if it still runs, reap it, remove the temporary directory."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        self._stderr.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.closed = True


def _die_with_parent() -> None:
    """In the child before exec: have the kernel kill QEMU if the test process
    dies without closing it (a crash, SIGKILL), so no guest outlives its run."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _qmp_reply(stream: Any, *keys: str) -> dict[str, Any]:
    """The next QMP message carrying one of `keys` (events are skipped)."""
    while True:
        line = stream.readline()
        if not line:
            raise QmpError("QMP connection closed")
        message: dict[str, Any] = json.loads(line)
        if any(key in message for key in keys):
            return message
