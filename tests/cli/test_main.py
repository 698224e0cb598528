"""End to end: the installed ``virtkit`` script against golden outputs.

Each case runs one process (so test:///default starts fresh) with the data
directory as working directory, and compares stdout and stderr with
``data/golden/NAME.out`` and ``NAME.err`` after masking CPU times and the
checkout's path. Of stderr, only the first line (the command line's own
words) must match exactly; later lines quote the API's message and are
counted. Regenerate with ``VIRTKIT_REGENERATE=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from tests.cli._helpers import (
    DATA,
    STATES_URI,
    XML,
    check_golden,
    check_golden_errors,
    clean_env,
    mask,
    run,
    virtkit_script,
)

D = ["-c", "test:///default"]
S = ["-c", STATES_URI]
UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"
NET_UUID = "dd8fe884-6c02-601e-7551-cca97df1c5df"

#: name -> command line. Every one must succeed.
CASES: dict[str, list[str]] = {
    "list": D + ["list"],
    "list-all": D + ["list", "--all"],
    "list-inactive": D + ["list", "--inactive"],
    "list-name": D + ["list", "--all", "--name"],
    "list-uuid": D + ["list", "--uuid"],
    "list-id": D + ["list", "--id"],
    "list-json": D + ["list", "--all", "--json"],
    "list-quiet": ["-q"] + D + ["list", "--all"],
    "dominfo": D + ["dominfo", "test"],
    "dominfo-by-id": D + ["dominfo", "1"],
    "dominfo-by-uuid": D + ["dominfo", "--domain", UUID],
    "dominfo-json": D + ["dominfo", "--json", "test"],
    "domstate": D + ["domstate", "test"],
    "domstate-json": D + ["domstate", "test", "--json"],
    "domid": D + ["domid", "test"],
    "domname": D + ["domname", "1"],
    "domuuid": D + ["domuuid", "test"],
    "nodeinfo": D + ["nodeinfo"],
    "nodeinfo-json": D + ["nodeinfo", "--json"],
    "vcpuinfo": D + ["vcpuinfo", "test"],
    "vcpuinfo-json": D + ["vcpuinfo", "--json", "--domain=test"],
    "net-list": D + ["net-list"],
    "net-list-all-json": D + ["net-list", "--all", "--json"],
    "net-info": D + ["net-info", "default"],
    "net-name": D + ["net-name", NET_UUID],
    "net-uuid": D + ["net-uuid", "default"],
    "version": D + ["version"],
    "dumpxml": D + ["dumpxml", "test"],
    "dumpxml-inactive": D + ["dumpxml", "--inactive", "test"],
    "net-dumpxml": D + ["net-dumpxml", "default"],
    "capabilities": D + ["capabilities"],
    "help": ["help"],
    "help-domstate": ["help", "domstate"],
    "help-network": ["help", "network"],
    "lifecycle": D + ["suspend test; domstate test; list; resume test; domstate test; "
                      "shutdown test; list --all; domid test; start test; list; reboot test; "
                      "domstate test; destroy test; list --all; undefine test; list --all"],
    "resources": D + ["setmem test 1048576; setmaxmem test 4G; setvcpus test 1; dominfo test; "
                      "setvcpus test 3; vcpupin test 0 2-3,^3; vcpupin --domain test --vcpu 2 "
                      "--cpulist 8-15; vcpuinfo test"],
    "autostart": D + ["autostart test; dominfo test; autostart --disable test; "
                      "net-autostart default; net-list; net-info default; "
                      "net-autostart default --disable; net-list"],
    "domains-from-xml": D + ["create xml/new-domain.xml; list; destroy new1; list --all; "
                             "define xml/new-domain.xml; list --all; vcpuinfo new1; start new1; "
                             "dominfo new1; attach-device new1 xml/disk.xml; dumpxml new1; "
                             "detach-device new1 xml/disk.xml; destroy new1; undefine new1; "
                             "list --all"],
    "networks-from-xml": D + ["net-create xml/new-network.xml; net-list --all; net-destroy net2; "
                              "net-list --all; net-define xml/new-network.xml; net-list --inactive; "
                              "net-start net2; net-list; net-dumpxml net2; net-undefine net2; "
                              "net-list --all; net-destroy net2; net-list --all"],
    "states": S + ["list --all; destroy gamma; suspend alpha; list --all; list --inactive; list; "
                   "list --all --json; dominfo gamma; dominfo alpha; vcpuinfo gamma; "
                   "vcpuinfo --json gamma; net-destroy nat; net-list --all; net-list --inactive; "
                   "net-list --all --json; nodeinfo"],
    "states-quiet": ["-q"] + S + ["destroy gamma; suspend alpha; list --all; net-destroy nat; "
                                  "net-list --all; dominfo alpha"],
    "connect": ["-c", "test:///default", f"connect {STATES_URI}; list; connect; list"],
    "sequence-with-quit": D + ["domstate test; quit; domstate nosuch"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    result = run(CASES[name], cwd=DATA)
    assert result.rc == 0, result.err
    assert result.err == ""
    check_golden(f"{name}.out", mask(result.out))


#: name -> command line. Every one must fail with "error: ..." lines and status 1.
FAILURES: dict[str, list[str]] = {
    "unknown-command": D + ["nosuchcmd"],
    "missing-argument": D + ["dominfo"],
    "option-without-value": D + ["dominfo", "--domain"],
    "empty-option-value": D + ["domstate", "--domain="],
    "unknown-option": D + ["list", "--bogus"],
    "surplus-argument": D + ["domstate", "test", "extra"],
    "repeated-option": D + ["domstate", "--domain", "test", "--domain", "test"],
    "flag-with-value": D + ["list", "--all=yes"],
    "missing-file-argument": D + ["define"],
    "bad-xml-file": D + ["define", "xml/bad.xml"],
    "schema-invalid-xml": D + ["create", "xml/invalid-domain.xml"],
    "missing-file": D + ["define", "xml/no-such-file.xml"],
    "directory-not-file": D + ["net-define", "xml"],
    "unknown-domain": D + ["dominfo", "nosuch"],
    "unknown-domain-id": D + ["domstate", "42"],
    "unknown-network": D + ["net-info", "nosuch"],
    "net-name-not-uuid": D + ["net-name", "default"],
    "read-only-destroy": ["-r"] + D + ["destroy", "test"],
    "read-only-define": ["--readonly"] + D + ["define", "xml/new-domain.xml"],
    "non-numeric-memory": D + ["setmem", "test", "abc"],
    "negative-memory": D + ["setmem", "test", "-5"],
    "bad-memory-unit": D + ["setmaxmem", "test", "12parsecs"],
    "memory-above-max": D + ["setmem", "test", "16G"],
    "negative-vcpus": D + ["setvcpus", "test", "-1"],
    "zero-vcpus": D + ["setvcpus", "test", "0"],
    "too-many-vcpus": D + ["setvcpus", "test", "1000"],
    "non-numeric-vcpu": D + ["vcpupin", "test", "x", "0"],
    "cpu-beyond-host": D + ["vcpupin", "test", "0", "99"],
    "malformed-cpulist": D + ["vcpupin", "test", "0", "1-x"],
    "vcpu-beyond-domain": D + ["vcpupin", "test", "5", "0"],
    "wrong-state-resume": D + ["resume", "test"],
    "wrong-state-start": D + ["start", "test"],
    "wrong-state-net-start": D + ["net-start", "default"],
    "not-a-save-file": D + ["restore", "xml/new-domain.xml"],
    "save-to-missing-dir": D + ["save", "test", "no-such-dir/test.save"],
    "device-bad-xml": D + ["attach-device", "test", "xml/bad.xml"],
    "console-none": D + ["console", "test"],
    "help-unknown": ["help", "nosuch"],
    "unterminated-quote": D + ["domstate 'test"],
    "connect-bad-uri": ["connect", "foo"],
    "unknown-driver": ["-c", "bogus:///x", "list"],
    "missing-node-file": ["-c", "test:///no/such/node.xml", "list"],
    "global-option-missing-value": ["-c"],
    "global-option-unknown": ["--bogus", "list"],
    "global-bad-debug-level": ["-d", "9", "list"],
    "debug-shows-codes": ["-d", "0"] + D + ["dominfo", "nosuch"],
    "sequence-with-failure": D + ["domstate nosuch; domstate test"],
}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failure(name: str) -> None:
    result = run(FAILURES[name], cwd=DATA)
    assert result.rc == 1
    lines = result.err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), result.err
    check_golden_errors(f"{name}.err", mask(result.err))
    check_golden(f"{name}.out", mask(result.out))


def test_non_utf8_argument() -> None:
    proc = subprocess.run([virtkit_script(), "-c", "test:///default", "dominfo", b"\xff\xfe"],
                          capture_output=True, env=clean_env())
    assert proc.returncode == 1
    assert proc.stderr.startswith(b"error: failed to get domain")
    assert b"Traceback" not in proc.stderr


def test_nasty_inputs_never_traceback(tmp_path: Path) -> None:
    (tmp_path / "binary.xml").write_bytes(b"\x00\xff\xfe<domain>\x00")
    (tmp_path / "huge.xml").write_bytes(b"<domain>" + b" " * (11 * 1024 * 1024))
    unreadable = tmp_path / "unreadable.xml"
    unreadable.write_text("<domain/>")
    unreadable.chmod(0)
    for args in (["define", "binary.xml"], ["create", "huge.xml"], ["define", "/dev/null"],
                 ["net-create", "binary.xml"], ["restore", "/dev/null"], ["dominfo", "-"],
                 ["dominfo", "--", "--domain"], ["vcpupin", "test", "0", ""],
                 ["setmem", "test", "99999999999999999999999999T"], ["vcpupin", "test",
                 "99999999999999999999999", "0"], ["domstate", "\\"], ["domstate test; \\"],
                 ["list", "--"], ["-", "list"], ["list; ; ;"], ["#only a comment"]):
        result = run(D + args, cwd=tmp_path)
        assert result.rc in (0, 1), (args, result)
        if result.rc:
            assert result.err.startswith("error: "), (args, result.err)


def test_save_restore_dump_write_files(tmp_path: Path) -> None:
    result = run(D + ["save test t.save; list --all; restore t.save; list; dump test t.core"],
                 cwd=tmp_path)
    assert result.rc == 0, result.err
    check_golden("save-restore-dump.out", result.out)
    assert (tmp_path / "t.save").stat().st_size > 0
    assert (tmp_path / "t.core").stat().st_size > 0


def test_timing() -> None:
    result = run(["-t"] + D + ["domstate test"])
    assert result.rc == 0
    assert re.fullmatch(r"running\n\n\(Time: \d+\.\d{3} ms\)\n\n", result.out), result.out


def test_timing_keeps_json_stdout_clean() -> None:
    result = run(["-t"] + D + ["nodeinfo --json"])
    assert json.loads(result.out)["cpus"] == 16
    assert "(Time: " in result.err


@pytest.mark.parametrize("command", ["list --all", "dominfo test", "nodeinfo", "vcpuinfo test",
                                     "net-list --all", "domstate test"])
def test_json_is_one_document(command: str) -> None:
    result = run(D + [command + " --json"])
    assert result.rc == 0
    json.loads(result.out)  # the whole of stdout is one document


def test_version_and_help() -> None:
    import virtkit

    assert run(["-v"]).out == f"{virtkit.__version__}\n"
    assert run(["--version"]).out == f"{virtkit.__version__}\n"
    assert virtkit.__version__ in run(["-V"]).out
    for flag in ("-h", "--help"):
        result = run([flag])
        assert result.rc == 0 and "--connect" in result.out and "--readonly" in result.out


def test_combined_short_options() -> None:
    assert run(["-qc", "test:///default", "list"]).out == " 1   test   running\n"
    assert run(["-rq", "-ctest:///default", "domstate", "test"]).out == "running\n"
    assert run(["--connect=test:///default", "--quiet", "domid", "test"]).out == "1\n"


@pytest.mark.parametrize("var", ["VIRTKIT_DEFAULT_URI", "VIRSH_DEFAULT_CONNECT_URI",
                                 "LIBVIRT_DEFAULT_URI"])
def test_default_uri_from_environment(var: str) -> None:
    result = run(["-q", "list", "--all"], env=clean_env(**{var: STATES_URI}))
    assert "gamma" in result.out


def test_default_uri_precedence() -> None:
    env = clean_env(VIRTKIT_DEFAULT_URI=STATES_URI, VIRSH_DEFAULT_CONNECT_URI="bogus:///")
    assert "alpha" in run(["-q", "list"], env=env).out
    env = clean_env(VIRSH_DEFAULT_CONNECT_URI=STATES_URI, LIBVIRT_DEFAULT_URI="bogus:///")
    assert "alpha" in run(["-q", "list"], env=env).out
    assert "test" in run(["-q", "list"], env=clean_env()).out
    # -c wins over everything
    env = clean_env(VIRTKIT_DEFAULT_URI="bogus:///")
    assert run(["-q", "-c", "test:///default", "domstate", "test"], env=env).out == "running\n"


def test_commands_from_stdin_without_terminal() -> None:
    result = run(D, stdin="domstate test\nnosuch\nlist --name\n")
    assert result.out == "running\n\ntest\n\n"
    assert result.err == "error: unknown command: 'nosuch'\n"
    assert result.rc == 1
    assert run(D, stdin="domstate test\nquit\nnosuch\n").rc == 0


def test_broken_pipe_is_quiet() -> None:
    script = virtkit_script()
    proc = subprocess.run(f"'{script}' -c test:///default help | head -c 10 >/dev/null",
                          shell=True, capture_output=True, text=True, env=clean_env())
    assert proc.stderr == ""


def test_progress_bar_only_on_terminal(tmp_path: Path) -> None:
    # Not a terminal: nothing but the message.
    result = run(D + ["save test t.save"], cwd=tmp_path)
    assert result.err == "" and result.out == "Domain 'test' saved to t.save\n\n"
    # On a terminal the bar may be drawn (it is erased when done); the output stays clean.
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(tmp_path)
        os.execve(virtkit_script(), ["virtkit", *D, "save test t2.save"], clean_env())
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0
    assert "Domain 'test' saved to t2.save" in text and "Traceback" not in text
