"""The interactive shell, through a real pseudo-terminal, and its completer."""

from __future__ import annotations

import os
import pty
import re
import select
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli._helpers import DATA, STATES_URI, clean_env, virtkit_script

PROMPT = b"virtkit # "


class Terminal:
    """``virtkit ARGS`` on a pty: type into it, read what it shows."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.chdir(cwd)
            os.execve(virtkit_script(), ["virtkit", *args], env)
        self.seen = b""
        self.status: int | None = None

    def read_until(self, pattern: bytes, timeout: float = 15) -> bytes:
        """Everything shown from now until ``pattern`` (a regex) appears."""
        deadline = time.monotonic() + timeout
        buf = b""
        while not re.search(pattern, buf):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {pattern!r}; saw {buf!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                raise AssertionError(f"terminal closed waiting for {pattern!r}; saw {buf!r}")
            buf += data
        self.seen += buf
        assert b"Traceback" not in buf, buf
        return buf

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def wait(self, timeout: float = 15) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:  # drain, so the child never blocks on a full pty
                if select.select([self.fd], [], [], 0.05)[0]:
                    self.seen += os.read(self.fd, 4096)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError("the shell did not exit")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), TERM="dumb", INPUTRC="/dev/null")
    term = Terminal(["-c", STATES_URI], env, DATA)
    term.read_until(PROMPT)
    yield term
    term.close()


def test_banner_prompt_and_commands(shell: Terminal) -> None:
    assert b"Welcome to virtkit" in shell.seen
    shell.type(b"domstate alpha\r")
    out = shell.read_until(PROMPT)
    assert b"running" in out
    shell.type(b"destroy gamma; list --all\r")
    out = shell.read_until(PROMPT)
    assert b"Domain 'gamma' destroyed" in out
    assert re.search(rb" -    gamma +shut off", out)
    shell.type(b"quit\r")
    assert shell.wait() == 0


def test_errors_do_not_leave_the_shell(shell: Terminal) -> None:
    for line in (b"nosuchcmd", b"dominfo nosuch", b"dominfo", b"define /no/such/file",
                 b"setmem alpha abc", b"domstate 'unterminated", b"console alpha"):
        shell.type(line + b"\r")
        out = shell.read_until(PROMPT)
        assert b"error: " in out, out
    shell.type(b"domid alpha\r")
    assert b"1" in shell.read_until(PROMPT)
    shell.type(b"exit\r")
    assert shell.wait() == 0


def test_end_of_input_leaves(shell: Terminal) -> None:
    shell.type(b"\x04")  # Ctrl+D on an empty line
    assert shell.wait() == 0


def test_ctrl_c_abandons_the_line(shell: Terminal) -> None:
    shell.type(b"destroy alpha")
    # Wait for readline to echo the line: a Ctrl+C sent with the text could be
    # flushed by the terminal before readline reads, and land between its
    # signal check and its wait (a lost wake-up the test would mistake for a hang).
    shell.read_until(b"destroy alpha")
    shell.type(b"\x03")
    shell.read_until(PROMPT)
    shell.type(b"domstate alpha\r")
    assert b"running" in shell.read_until(PROMPT)


def test_tab_completes_commands_options_and_names(shell: Terminal) -> None:
    shell.type(b"domst\t")
    shell.read_until(b"domstate ")
    shell.type(b"ga\t")
    shell.read_until(b"gamma ")
    shell.type(b"--js\t")
    shell.read_until(b"--json ")
    shell.type(b"\r")
    out = shell.read_until(PROMPT)
    assert b'"state": "running"' in out
    shell.type(b"net-info na\t")
    shell.read_until(b"nat ")
    shell.type(b"\r")
    assert b"Bridge:         virbr6" in shell.read_until(PROMPT)
    shell.type(b"help net-l\t")
    shell.read_until(b"net-list ")
    shell.type(b"\r")
    assert b"net-list - list networks" in shell.read_until(PROMPT)


def test_history_is_kept(tmp_path: Path) -> None:
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), TERM="dumb", INPUTRC="/dev/null")
    first = Terminal(["-c", "test:///default"], env, DATA)
    try:
        first.read_until(PROMPT)
        first.type(b"domuuid test\r")
        first.read_until(PROMPT)
        first.type(b"quit\r")
        assert first.wait() == 0
    finally:
        first.close()
    assert b"domuuid test" in (tmp_path / "cache" / "virtkit" / "history").read_bytes()
    second = Terminal(["-c", "test:///default"], env, DATA)
    try:
        second.read_until(PROMPT)
        second.type(b"\x1b[A\x1b[A")  # up arrow twice: "quit", then the command before it
        second.read_until(b"domuuid test")
        second.type(b"\r")
        assert b"6695eb01-f6a4-8304-79aa-97f2502e193f" in second.read_until(PROMPT)
        second.type(b"quit\r")
        assert second.wait() == 0
    finally:
        second.close()


def test_read_only_prompt(tmp_path: Path) -> None:
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), TERM="dumb", INPUTRC="/dev/null")
    term = Terminal(["-r", "-c", "test:///default"], env, DATA)
    try:
        term.read_until(b"virtkit > ")
        term.type(b"destroy test\r")
        assert b"operation forbidden" in term.read_until(b"virtkit > ")
        term.type(b"quit\r")
        assert term.wait() == 0
    finally:
        term.close()


# --- the completer, in-process --------------------------------------------------------------

@pytest.fixture
def completer() -> Iterator[object]:
    from virtkit.cli.session import Session
    from virtkit.cli.shell import Completer

    session = Session(uri=STATES_URI)
    yield Completer(session)
    session.close()


@pytest.mark.parametrize(("before", "text", "expected"), [
    ("", "net-l", ["net-list "]),
    ("", "qu", ["quit "]),
    ("list ", "--a", ["--all "]),
    ("list --all ", "--a", []),
    ("dominfo ", "a", ["a-very-long-domain-name-for-column-width-tests ", "alpha "]),
    ("dominfo --domain ", "g", ["gamma "]),
    ("dominfo alpha ", "", ["--domain ", "--json "]),
    ("suspend gamma; domstate ", "al", ["alpha "]),
    ("net-start ", "", ["isolated-long-network-name ", "nat ", "--network "]),
    ("help ", "vcpu", ["vcpuinfo ", "vcpupin "]),
    ("connect ", "test", ["test:///default "]),
    ("nosuch ", "", []),
    ("vcpupin alpha 0 ", "", ["--domain ", "--vcpu ", "--cpulist "]),
])
def test_candidates(completer: object, before: str, text: str, expected: list[str]) -> None:
    assert completer.candidates(before, text) == expected  # type: ignore[attr-defined]


def test_file_candidates(completer: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA)
    assert completer.candidates("define ", "xml/new-d") == ["xml/new-domain.xml "]  # type: ignore[attr-defined]
    assert completer.candidates("define ", "xm") == ["xml/"]  # type: ignore[attr-defined]


def test_console_relays_a_real_pty(tmp_path: Path) -> None:
    """``create`` a domain whose serial console is a pty we hold, then ``console``:
    what the "guest" writes reaches the terminal, what is typed reaches the guest,
    and Ctrl+] leaves."""
    import tty

    guest, console = os.openpty()
    tty.setraw(console)
    xml = tmp_path / "con.xml"
    xml.write_text(
        "<domain type='test'><name>con</name><memory>65536</memory><vcpu>1</vcpu>"
        "<os><type>hvm</type></os><devices><serial type='pty'>"
        f"<source path='{os.ttyname(console)}'/><target port='0'/></serial></devices></domain>")
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"), TERM="dumb", INPUTRC="/dev/null")
    term = Terminal(["-c", "test:///default", f"create {xml}; console con"], env, DATA)
    try:
        term.read_until(rb"Escape character is \^\]")
        time.sleep(0.2)
        os.write(guest, b"guest says hello\r\n")
        term.read_until(b"guest says hello")
        term.type(b"ping")
        deadline = time.monotonic() + 10
        got = b""
        while b"ping" not in got and time.monotonic() < deadline:
            if select.select([guest], [], [], 0.5)[0]:
                got += os.read(guest, 100)
        assert b"ping" in got
        term.type(b"\x1d")
        assert term.wait() == 0
        assert b"Traceback" not in term.seen
    finally:
        term.close()
        os.close(guest)
        os.close(console)
