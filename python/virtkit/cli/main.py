"""``virtkit``: the entry point of the command line.

    virtkit [OPTIONS] COMMAND [ARGS...]      one command, words as given
    virtkit [OPTIONS] 'CMD [ARGS]; CMD...'   a command string (one argument)
    virtkit [OPTIONS]                        the interactive shell

Global options, read up to the first word that is not one (as getopt with
``+`` does): ``-c/--connect URI``, ``-r/--readonly``, ``-t/--timing``,
``-q/--quiet``, ``-d/--debug LEVEL``, ``-h/--help``, ``-v/--version`` (and
``-V`` for the long version). The URI defaults to ``VIRTKIT_DEFAULT_URI``,
then ``VIRSH_DEFAULT_CONNECT_URI``, then :func:`virtkit.open`'s own default.

Exit status: 0 when every command succeeded, 1 otherwise. Every failure is
reported as ``error: ...`` lines on stderr; no Python traceback is ever
printed, whatever the input.

After each command that ran (successfully or not) a blank line follows on
stdout unless ``--quiet``, as virsh prints it; a command that printed a JSON
document is not followed by one, so stdout holds exactly that document.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

from virtkit.cli.i18n import _
from virtkit.cli.parser import UsageError, split_commands
from virtkit.cli.session import CommandError, QuitRequested, Session, env_default_uri

__all__ = ["main", "run_command", "run_line"]


class GlobalOptions(NamedTuple):
    uri: str | None
    readonly: bool
    timing: bool
    quiet: bool
    debug: int | None
    help: bool
    version: str | None
    rest: list[str]


_SHORT_WITH_VALUE = {"c": "connect", "d": "debug"}
_SHORT_FLAGS = {"r": "readonly", "t": "timing", "q": "quiet", "h": "help", "v": "version",
                "V": "long-version"}
_LONG_WITH_VALUE = {"connect", "debug"}
_LONG_FLAGS = {"readonly", "timing", "quiet", "help", "version"}


def parse_global(argv: list[str]) -> GlobalOptions:
    """Read the global options; stop at the first word that is not one."""
    values: dict[str, str] = {}
    flags: set[str] = set()
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            i += 1
            break
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            if name in _LONG_WITH_VALUE:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(_("option '--%s' requires an argument") % name)
                    value = argv[i]
                values[name] = value
            elif name in _LONG_FLAGS and not eq:
                flags.add(name)
            else:
                raise UsageError(_("unsupported option '%s'. See --help.") % word)
            i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            j = 1
            while j < len(word):
                letter = word[j]
                if letter in _SHORT_WITH_VALUE:
                    value = word[j + 1:]
                    if not value:
                        i += 1
                        if i >= len(argv):
                            raise UsageError(_("option '-%s' requires an argument") % letter)
                        value = argv[i]
                    values[_SHORT_WITH_VALUE[letter]] = value
                    break
                if letter not in _SHORT_FLAGS:
                    raise UsageError(_("unsupported option '-%s'. See --help.") % letter)
                flags.add(_SHORT_FLAGS[letter])
                j += 1
            i += 1
            continue
        break
    debug: int | None = None
    if "debug" in values:
        text = values["debug"]
        if not (text.isascii() and text.isdigit() and int(text) <= 4):
            raise UsageError(_("option --debug takes a level from 0 to 4, not '%s'") % text)
        debug = int(text)
    version = "long" if "long-version" in flags else "short" if "version" in flags else None
    return GlobalOptions(uri=values.get("connect"), readonly="readonly" in flags,
                         timing="timing" in flags, quiet="quiet" in flags, debug=debug,
                         help="help" in flags, version=version, rest=argv[i:])


def usage() -> str:
    return _(
        "Usage:\n"
        "  virtkit [OPTIONS]... [COMMAND_STRING]\n"
        "  virtkit [OPTIONS]... COMMAND [ARGS]...\n"
        "\n"
        "Options:\n"
        "  -c, --connect=URI    hypervisor connection URI\n"
        "  -d, --debug=NUM      debug level [0-4]; shows error codes\n"
        "  -h, --help           this help\n"
        "  -q, --quiet          quiet mode: no headers, messages or blank lines\n"
        "  -r, --readonly       connect read-only\n"
        "  -t, --timing         print the time each command took\n"
        "  -v, --version        print the short version\n"
        "  -V                   print the long version\n"
        "\n"
        "Without a command, virtkit starts an interactive shell.\n"
        "The URI defaults to $VIRTKIT_DEFAULT_URI, then $VIRSH_DEFAULT_CONNECT_URI,\n"
        "then $LIBVIRT_DEFAULT_URI, then test:///default.\n"
        "'virtkit help' lists the commands; 'virtkit help COMMAND' describes one.\n")


def _version_text(long: bool) -> str:
    from virtkit import __version__

    if not long:
        return f"{__version__}\n"
    return _("virtkit command line tool %s, a rebuild of libvirt 0.2.2's virsh\n") % __version__


# --- running commands -------------------------------------------------------------------------

def run_command(session: Session, words: list[str]) -> bool:
    """Run one command (its name and words); report any failure; True on success.

    Raises QuitRequested for ``quit``/``exit``; KeyboardInterrupt passes through.
    """
    from virtkit.cli.commands import find
    from virtkit.cli.parser import bind

    command = find(words[0])
    if command is None:
        session.report(UsageError(_("unknown command: '%s'") % words[0]))
        return False
    try:
        args = bind(command, words[1:])
    except UsageError as e:
        session.report(e)
        return False
    if session.timing:
        import time

        started = time.perf_counter()
    session.json_output = False
    ok = True
    try:
        command.handler(session, args)
    except (QuitRequested, KeyboardInterrupt):
        raise
    except (CommandError, UsageError) as e:
        session.report(e)
        ok = False
    except Exception as e:  # noqa: BLE001 - an API error or a bug: reported, never a traceback
        session.report(e)
        ok = False
    if not session.json_output:
        session.extra("\n")
    if session.timing:
        elapsed = (time.perf_counter() - started) * 1000
        stream = session.err if session.json_output else session.out
        stream.write(_("(Time: %.3f ms)\n\n") % elapsed)
    return ok


def run_line(session: Session, text: str) -> bool:
    """Run a command string (``cmd args; cmd args``); True when every command succeeded.

    Raises QuitRequested when one of them is ``quit``.
    """
    try:
        commands = split_commands(text)
    except UsageError as e:
        session.report(e)
        return False
    ok = True
    for words in commands:
        ok = run_command(session, words) and ok
    return ok


def main(argv: list[str] | None = None) -> int:
    """The console script: run the command line ``argv`` (default ``sys.argv[1:]``)."""
    err = sys.stderr
    try:
        opts = parse_global(sys.argv[1:] if argv is None else list(argv))
    except UsageError as e:
        err.write(_("error: %s") % e + "\n")
        return 1
    if opts.help:
        sys.stdout.write(usage())
        return 0
    if opts.version:
        sys.stdout.write(_version_text(opts.version == "long"))
        return 0
    session = Session(uri=opts.uri or env_default_uri(), readonly=opts.readonly,
                      quiet=opts.quiet, timing=opts.timing, debug=opts.debug)
    try:
        if not opts.rest:
            from virtkit.cli.shell import run_shell

            return run_shell(session)
        if len(opts.rest) == 1:
            ok = run_line(session, opts.rest[0])
        else:
            ok = run_command(session, opts.rest)
        return 0 if ok else 1
    except QuitRequested:
        return 0
    except KeyboardInterrupt:
        _quiet_stdout()
        err.write(_("error: interrupted") + "\n")
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except Exception as e:  # noqa: BLE001 - the last line of defence: never a traceback
        session.report(e)
        return 1
    finally:
        try:
            session.close()
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
        except Exception:  # noqa: BLE001
            pass


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
