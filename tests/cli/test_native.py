"""``domxml-from-native`` and ``domxml-to-native``: Xen's native formats on the command line.

End to end through the installed script, on any connection (they never ask
the hypervisor): golden outputs in ``data/golden/native-*.out`` and, for
failures, ``.err`` (first line exact). Inputs are the conversion corpus
(``tests/data``) and a few bad files in ``data/native``. Regenerate with
``VIRTKIT_REGENERATE=1`` and review the diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli._helpers import DATA, check_golden, check_golden_errors, mask, run
from virtkit.sexpr import join_continuations

CORPUS = Path(__file__).resolve().parents[1] / "data"
NATIVE = DATA / "native"
D = ["-c", "test:///default"]

#: name -> command line (run from tests/data). Every one must succeed.
CASES: dict[str, list[str]] = {
    "native-from-sxpr": D + ["domxml-from-native", "xen-sxpr", "sexpr2xmldata/sexpr2xml-curmem.sexpr"],
    "native-from-sxpr-v1": D + ["domxml-from-native", "xen-sxpr", "sexpr2xmldata/sexpr2xml-fv.sexpr",
                                "--xend-config-format", "1"],
    "native-from-xm": ["domxml-from-native", "--format", "xen-xm",
                       "--config", "xmconfigdata/test-fullvirt-serial-tcp.cfg"],
    "native-to-sxpr": D + ["domxml-to-native", "xen-sxpr", "xml2sexprdata/xml2sexpr-fv.xml"],
    "native-to-sxpr-v2": D + ["domxml-to-native", "xen-sxpr", "xml2sexprdata/xml2sexpr-fv.xml",
                              "--xend-config-format=2"],
    "native-to-xm": D + ["domxml-to-native", "--format", "xen-xm", "--xml",
                         "xmconfigdata/test-paravirt-new-pvfb.xml", "--xend-config-format", "3"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    result = run(CASES[name], cwd=CORPUS)
    assert result.rc == 0, result.err
    assert result.err == ""
    check_golden(f"{name}.out", mask(result.out))


def test_outputs_are_the_conversions() -> None:
    """What the commands print is the converters' output, as the corpus has it."""
    v2 = run(CASES["native-to-sxpr-v2"], cwd=CORPUS)
    expected = join_continuations((CORPUS / "xml2sexprdata" / "xml2sexpr-fv-v2.sexpr").read_bytes()).decode()
    assert v2.out == expected + "\n\n"
    xm = run(CASES["native-to-xm"], cwd=CORPUS)
    assert xm.out == (CORPUS / "xmconfigdata" / "test-paravirt-new-pvfb.cfg").read_text() + "\n"


#: name -> command line. Every one must fail with "error: ..." lines and status 1.
FAILURES: dict[str, list[str]] = {
    "native-unknown-format": D + ["domxml-from-native", "json", "sexpr2xmldata/sexpr2xml-fv.sexpr"],
    "native-missing-file": D + ["domxml-to-native", "xen-xm", "no-such.xml"],
    "native-bad-dialect": D + ["domxml-to-native", "xen-xm", "xml2sexprdata/xml2sexpr-fv.xml",
                               "--xend-config-format", "7"],
    "native-truncated-sxpr": D + ["domxml-from-native", "xen-sxpr", "$NATIVE/truncated.sexpr"],
    "native-xm-as-sxpr": D + ["domxml-from-native", "xen-sxpr", "xmconfigdata/test-fullvirt-utc.cfg"],
    "native-xm-unknown-key": D + ["domxml-from-native", "xen-xm", "$NATIVE/bad-key.cfg"],
    "native-qemu-only-device": D + ["domxml-to-native", "xen-sxpr", "$NATIVE/qemu-only.xml"],
    "native-not-xen": D + ["domxml-to-native", "xen-xm", "$CLIDATA/xml/new-domain.xml"],
    "native-missing-argument": D + ["domxml-to-native", "xen-xm"],
}


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_failure(name: str) -> None:
    args = [a.replace("$NATIVE", str(NATIVE)).replace("$CLIDATA", str(DATA)) for a in FAILURES[name]]
    result = run(args, cwd=CORPUS)
    assert result.rc == 1
    lines = result.err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), result.err
    check_golden_errors(f"{name}.err", mask(result.err))
    check_golden(f"{name}.out", mask(result.out))


def test_they_need_no_hypervisor(tmp_path: Path) -> None:
    """Even a connection that cannot open is never asked."""
    result = run(["-c", f"xen:///?socket={tmp_path}/no-xend", "domxml-to-native", "xen-sxpr",
                  "xml2sexprdata/xml2sexpr-pv-bootloader.xml"], cwd=CORPUS)
    assert result.rc == 0 and result.out.startswith("(vm (name 'pvtest')")


def test_in_the_interactive_grammar(session: object) -> None:
    out, err, ok = session(  # type: ignore[operator]
        f"domxml-from-native xen-xm {CORPUS}/xmconfigdata/test-paravirt-vcpu.cfg; "
        f"domxml-to-native xen-xm {CORPUS}/xmconfigdata/test-paravirt-vcpu.xml")
    assert ok and err == ""
    assert "<vcpu current='2'>4</vcpu>" in out and "vcpu_avail = 3\n" in out
