"""The interactive shell: ``virtkit`` with no command.

On a terminal: a prompt (``virtkit # ``, ``virtkit > `` when read-only),
line editing and history through :mod:`readline` (kept in
``$XDG_CACHE_HOME/virtkit/history``, ``~/.cache/virtkit/history`` by default),
and TAB completion of command names, of a command's options and of the
values it expects: domain and network names asked from the live connection,
file names, command names for ``help``. ``quit``, ``exit`` or end of input
(Ctrl+D) leave; Ctrl+C abandons the current line. A failing command reports
its error and the shell goes on.

When standard input is not a terminal, the shell reads commands line by line
with no banner, prompt or history (unlike virsh, which prints its banner and
prompts even then), and exits with status 1 if any command failed.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from virtkit.cli.i18n import _
from virtkit.cli.main import run_line
from virtkit.cli.session import QuitRequested

if TYPE_CHECKING:
    from virtkit.cli.parser import Command, Opt
    from virtkit.cli.session import Session

__all__ = ["run_shell", "Completer", "history_path"]

#: Lines of history kept.
HISTORY_LENGTH = 500


def history_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "virtkit", "history")


def run_shell(session: Session) -> int:
    """Read and run commands until quit or end of input; the exit status."""
    if not sys.stdin.isatty():
        return _run_script(session)
    return _run_interactive(session)


def _run_script(session: Session) -> int:
    ok = True
    try:
        for line in sys.stdin:
            ok = run_line(session, line) and ok
    except QuitRequested:
        pass
    return 0 if ok else 1


def _run_interactive(session: Session) -> int:
    import readline
    import signal

    # Started from a context that ignores SIGINT (a background job of a
    # non-interactive shell, nohup), Python leaves it ignored and Ctrl+C would do
    # nothing: at a terminal, Ctrl+C abandons the line being typed.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    session.interactive = True
    completer = Completer(session)
    readline.set_completer(completer.complete)
    readline.set_completer_delims(" \t\n;\"'")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    path = history_path()
    try:
        readline.read_history_file(path)
    except OSError:
        pass
    readline.set_history_length(HISTORY_LENGTH)
    out = session.out
    out.write(_("Welcome to virtkit, the virtualization interactive terminal.\n\n"
                "Type:  'help' for help with commands\n"
                "       'quit' to quit\n\n"))
    try:
        while True:
            out.flush()
            prompt = "virtkit > " if session.readonly else "virtkit # "
            try:
                line = input(prompt)
            except EOFError:
                out.write("\n")
                break
            except KeyboardInterrupt:
                out.write("\n")
                continue
            if not line.strip():
                continue
            try:
                run_line(session, line)
            except QuitRequested:
                break
            except KeyboardInterrupt:
                out.write("\n")
    finally:
        _save_history(readline, path)
    return 0


def _save_history(readline: object, path: str) -> None:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        readline.write_history_file(path)  # type: ignore[attr-defined]
    except OSError:
        pass


class Completer:
    """readline's completion function for the shell.

    ``complete(text, state)`` is called with state 0, 1, 2... until it returns
    None; the candidates are computed once, at state 0, from the line buffer.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._matches: list[str] = []

    def complete(self, text: str, state: int) -> str | None:
        if state == 0:
            import readline

            line = readline.get_line_buffer()
            begin = readline.get_begidx()
            try:
                self._matches = self.candidates(line[:begin], text)
            except Exception:  # noqa: BLE001 - completion must never break the prompt
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None

    def candidates(self, before: str, text: str) -> list[str]:
        """Completions of ``text``, the word being typed after ``before``."""
        from virtkit.cli.commands import find, names

        segment = before.rsplit(";", 1)[-1]
        words = segment.split()
        if not words:
            return [n + " " for n in names() if n.startswith(text)]
        command = find(words[0])
        if command is None:
            return []
        given = words[1:]
        last = given[-1] if given else ""
        if last.startswith("--") and "=" not in last:
            opt = command.option(last[2:])
            if opt is not None and opt.takes_value:
                return self._values(opt, text)  # right after --opt: only its values
        out: list[str] = []
        pending = self._next_positional(command, given)
        if pending is not None and not text.startswith("-"):
            out += self._values(pending, text)
        if not text or text.startswith("-"):
            used = {w[2:].partition("=")[0] for w in given if w.startswith("--")}
            out += [f"--{o.name} " for o in command.options
                    if o.name not in used and f"--{o.name}".startswith(text)]
        return out

    def _next_positional(self, command: Command, given: list[str]) -> Opt | None:
        """The positional option the next word would fill, if any."""
        filled: set[str] = set()
        skip = False
        for word in given:
            if skip:
                skip = False
                continue
            if word.startswith("--") and len(word) > 2:
                name, eq, _value = word[2:].partition("=")
                opt = command.option(name)
                if opt is not None:
                    filled.add(opt.name)
                    skip = opt.takes_value and not eq
                continue
            for opt in command.options:
                if opt.positional and opt.name not in filled:
                    filled.add(opt.name)
                    break
        for opt in command.options:
            if opt.positional and opt.name not in filled:
                return opt
        return None

    def _values(self, opt: Opt, text: str) -> list[str]:
        if opt.kind == "domain":
            conn = self.session.connection()
            pool = [d.name for d in conn.list_all_domains()]
        elif opt.kind == "network":
            conn = self.session.connection()
            pool = conn.list_networks() + conn.list_defined_networks()
        elif opt.kind == "command":
            from virtkit.cli.commands import GROUPS, names

            pool = names() + list(GROUPS)
        elif opt.kind == "file":
            return _files(text)
        elif opt.kind == "uri":
            pool = ["test:///default", "qemu:///system", "qemu:///session", "xen:///"]
        else:
            return []
        return [v + " " for v in sorted(set(pool)) if v.startswith(text)]


def _files(text: str) -> list[str]:
    directory, _sep, prefix = text.rpartition("/")
    where = os.path.expanduser(directory + "/" if _sep else ".") if directory or _sep else "."
    if _sep and not directory:
        where = "/"
    try:
        entries = sorted(os.listdir(where))
    except OSError:
        return []
    out = []
    for name in entries:
        if not name.startswith(prefix) or (name.startswith(".") and not prefix.startswith(".")):
            continue
        full = (directory + "/" if _sep else "") + name
        is_dir = os.path.isdir(os.path.join(where, name))
        out.append(full + "/" if is_dir else full + " ")
    return out
