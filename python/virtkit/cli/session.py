"""One command-line session: the connection, the output streams, the global flags.

A :class:`Session` lives as long as the process (one command, a sequence or
the interactive shell). It opens its connection lazily, the first time a
command needs it, so ``help`` or a usage mistake never touches the hypervisor.

Failures travel as :class:`CommandError`: a context line as virsh prints it
(``failed to get domain 'x'``, ``Failed to start domain 'x'``) and, usually,
the :class:`~virtkit.errors.VirtError` that caused it. :meth:`Session.report`
prints both as ``error: ...`` lines on stderr.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, TextIO

from virtkit.cli.i18n import _

if TYPE_CHECKING:
    from virtkit.connection import Connection
    from virtkit.domain import Domain
    from virtkit.errors import VirtError
    from virtkit.network import Network

__all__ = ["Session", "CommandError", "QuitRequested", "env_default_uri"]


class QuitRequested(Exception):
    """``quit`` or ``exit``: leave the shell (or stop a command sequence)."""


class CommandError(Exception):
    """A command failed: ``context`` says what was attempted, ``cause`` why it failed."""

    def __init__(self, context: str | None, cause: BaseException | None = None) -> None:
        super().__init__(context or (str(cause) if cause is not None else ""))
        self.context = context
        self.cause = cause


def env_default_uri() -> str | None:
    """The URI from ``VIRTKIT_DEFAULT_URI`` or ``VIRSH_DEFAULT_CONNECT_URI``; None
    leaves the choice to :func:`virtkit.open` (``LIBVIRT_DEFAULT_URI``, then its default)."""
    for var in ("VIRTKIT_DEFAULT_URI", "VIRSH_DEFAULT_CONNECT_URI"):
        value = os.environ.get(var)
        if value:
            return value
    return None


class Session:
    """State shared by the commands of one process."""

    def __init__(self, *, uri: str | None = None, readonly: bool = False, quiet: bool = False,
                 timing: bool = False, debug: int | None = None,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.uri = uri
        self.readonly = readonly
        self.quiet = quiet
        self.timing = timing
        #: None when --debug was not given; else its level (0 = most verbose).
        self.debug = debug
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        #: Set by the running command when it printed a JSON document.
        self.json_output = False
        #: True while the interactive shell runs.
        self.interactive = False
        self._conn: Connection | None = None

    # --- the connection ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connection(self) -> Connection:
        """The open connection, opened on first use."""
        if self._conn is None:
            self._conn = self._open(self.uri, self.readonly)
        return self._conn

    def reconnect(self, uri: str | None, readonly: bool) -> None:
        """Close the current connection and open ``uri`` (the session's default when None)."""
        self.close()
        self.uri = uri if uri is not None else self.uri
        self.readonly = readonly
        self._conn = self._open(self.uri, readonly)

    def _open(self, uri: str | None, readonly: bool) -> Connection:
        import virtkit
        from virtkit.errors import VirtError

        try:
            return virtkit.open_read_only(uri) if readonly else virtkit.open(uri)
        except VirtError as e:
            raise CommandError(_("failed to connect to the hypervisor"), e) from None

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    # --- objects by the names users give -----------------------------------------------

    def domain(self, ident: str) -> Domain:
        """The domain named by ``ident``: an id, a UUID or a name (tried in that order)."""
        from virtkit.errors import VirtError

        conn = self.connection()
        try:
            return conn.lookup_domain(ident)
        except VirtError as e:
            raise CommandError(_("failed to get domain '%s'") % ident, e) from None

    def network(self, ident: str) -> Network:
        """The network named by ``ident``: a UUID or a name."""
        from virtkit.errors import VirtError

        conn = self.connection()
        try:
            return conn.lookup_network(ident)
        except VirtError as e:
            raise CommandError(_("failed to get network '%s'") % ident, e) from None

    # --- output -------------------------------------------------------------------------

    def print(self, text: str) -> None:
        """Print ``text`` (a whole line or lines, newline included) on stdout."""
        self.out.write(text)

    def extra(self, text: str) -> None:
        """Print ``text`` unless --quiet: messages, headers, the blank line after a command."""
        if not self.quiet:
            self.out.write(text)

    def report(self, error: BaseException) -> None:
        """Print ``error`` as ``error: ...`` lines on stderr (with codes under --debug)."""
        from virtkit.cli.parser import UsageError

        lines: list[str] = []
        if isinstance(error, CommandError):
            if error.context:
                lines.append(error.context)
            if error.cause is not None:
                lines.append(self._describe(error.cause))
        elif isinstance(error, UsageError):
            lines.append(str(error))
        else:
            lines.append(self._describe(error))
        if not lines:
            lines.append(_("unknown failure"))
        self.out.flush()
        for line in lines:
            self.err.write(_("error: %s") % line + "\n")
        self.err.flush()

    def _describe(self, error: BaseException) -> str:
        from virtkit.errors import VirtError

        if isinstance(error, VirtError):
            text = error.message
            if self.debug is not None:
                text += " " + _debug_codes(error)
            return text
        if isinstance(error, OSError) and error.strerror:
            text = error.strerror if not error.filename else f"{error.filename}: {error.strerror}"
        else:
            text = _("internal error: %(type)s: %(message)s") % {
                "type": type(error).__name__, "message": error}
        if self.debug is not None:
            tb = error.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                text += f" [{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}]"
        return text


def _debug_codes(error: VirtError) -> str:
    code = getattr(error.code, "name", None)
    domain = getattr(error.domain, "name", None)
    return (f"[code={code or '?'} ({int(error.code)}), "
            f"domain={domain or '?'} ({int(error.domain)})]")
