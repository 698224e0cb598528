"""A remote-protocol server that logs every procedure its clients call.

For whoever builds the daemon: see which procedures a client (stock
``virsh``, libvirt-python, virtkit's own client) sends, in what order, with
which arguments, and what was answered::

    python -m tests.drivers.remote.logging_server /tmp/virtkit-log.sock
    virsh -c 'qemu+unix:///session?socket=/tmp/virtkit-log.sock' list --all

By default the calls are answered by the fake in-memory handler (one domain
``fv0``, one network ``default``) so that clients get far enough; ``--bare``
answers only what the server does itself (auth, open, close, features), which
shows what a client tries first. One line per call on stdout::

    [conn 1 #3] connect_open(name='qemu:///session', flags=0) -> ok
    [conn 1 #9] domain_get_info(dom=fv0) -> ok {'state': 1, ...}
    [conn 1 #12] node_get_security_model() -> NO_SUPPORT: this function is ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import uuid
from typing import Any, TextIO

from virtkit.drivers.remote.server import CallRecord, RemoteServer

from tests.drivers.remote.fake_handler import FakeHandler


def _short(value: Any) -> str:
    """Domain and network references by name; long strings cut."""
    if isinstance(value, dict):
        if set(value) in ({"name", "uuid", "id"}, {"name", "uuid"}):
            return str(value["name"])
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, bytes) and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    return repr(value)


def format_record(record: CallRecord) -> str:
    """One log line for a call."""
    if isinstance(record.args, dict):
        args = ", ".join(f"{k}={_short(v)}" for k, v in record.args.items())
    else:
        args = ""
    head = f"[conn {record.conn_id} #{record.serial}] {record.name}({args})"
    if record.error is not None:
        code = getattr(record.error.code, "name", record.error.code)
        return f"{head} -> {code}: {record.error.message}"
    if record.result is None:
        return f"{head} -> ok"
    return f"{head} -> ok {_short(record.result)}"


class Logger:
    """The server's ``trace`` callback: prints and remembers the calls."""

    def __init__(self, out: TextIO | None = sys.stdout) -> None:
        self.out = out
        self.records: list[CallRecord] = []

    def __call__(self, record: CallRecord) -> None:
        self.records.append(record)
        if self.out is not None:
            print(format_record(record), file=self.out, flush=True)

    def names(self) -> list[str]:
        """The procedure names called so far, in order."""
        return [r.name for r in self.records]


class _BareHandler:
    """Implements nothing: only the server's built-in procedures answer."""


async def serve(path: str, *, bare: bool = False, readonly: bool = False) -> None:
    """Serve on ``path`` until interrupted."""
    handler: object = _BareHandler() if bare else FakeHandler()
    server = RemoteServer(handler, trace=Logger())
    await server.listen_unix(path, mode=0o666 if readonly else 0o600, readonly=readonly)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.close()))
    print(f"listening on {path} ({'read-only' if readonly else 'read-write'}); "
          f"virsh -c 'qemu+unix:///session?socket={path}' ...", file=sys.stderr, flush=True)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.drivers.remote.logging_server",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("socket", help="path of the UNIX socket to listen on")
    parser.add_argument("--bare", action="store_true",
                        help="answer only the built-in procedures")
    parser.add_argument("--readonly", action="store_true", help="a read-only socket")
    parser.add_argument("--debug", action="store_true", help="log the server's internals")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    asyncio.run(serve(args.socket, bare=args.bare, readonly=args.readonly))
    return 0


if __name__ == "__main__":
    sys.exit(main())
