"""``virtkitd``: the daemon serving libvirt's remote protocol for one URI.

::

    virtkitd [--session | --system] [--driver {qemu,test,xen}] [--timeout SECONDS]
             [--socket-dir DIR] [--state-dir DIR] [--config-dir DIR]
             [--pidfile PATH] [--daemon] [--workers N] [-v]

One daemon per URI: ``--session`` (the default for users other than root)
serves ``qemu:///session`` from the XDG directories, ``--system`` (the
default for root) serves ``qemu:///system`` from ``/run/virtkit``,
``/var/lib/virtkit`` and ``/etc/virtkit`` (see :mod:`virtkit.daemon.paths`);
the ``--*-dir`` options move them, e.g. for a private daemon in tests. It
listens on ``virtkit-sock`` (read-write, owner only) and ``virtkit-sock-ro``
(read-only operations only) and holds a lock on ``virtkitd.pid`` so that one
daemon serves a socket directory; sockets left by a killed daemon are
replaced.

``--driver`` chooses the backend (:mod:`virtkit.daemon.backends`).
``--timeout`` makes the daemon exit after that many seconds with no client
(and no running guest that needs it), as libvirt's session daemons do.
``--daemon`` detaches: the command returns once the sockets accept clients
(status 0) or the daemon failed to start (status 1, the reason on stderr);
the library starts session daemons this way.

SIGTERM and SIGINT stop the daemon cleanly (sockets and pidfile removed).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from virtkit.daemon.backends import BACKENDS, BackendPool, BackendUnavailableError, load_backend
from virtkit.daemon.handler import Handler
from virtkit.daemon.paths import DaemonPaths, session_paths, system_paths
from virtkit.drivers.remote.server import RemoteServer
from virtkit.errors import VirtError

__all__ = ["main", "parse_args", "Daemon", "AlreadyRunningError"]

log = logging.getLogger("virtkitd")

#: Keepalive as libvirtd's defaults: a PING after 5 s of silence, drop after 5 missed.
KEEPALIVE_INTERVAL = 5.0
KEEPALIVE_COUNT = 5


class AlreadyRunningError(VirtError):
    """Another daemon holds the socket directory's lock."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with ``mode`` resolved to ``session`` or ``system``."""
    parser = argparse.ArgumentParser(
        prog="virtkitd", description="Serve libvirt's remote protocol for qemu:///session "
        "or qemu:///system (stock virsh can connect).")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--system", dest="mode", action="store_const", const="system",
                       help="serve qemu:///system (/run/virtkit; the default for root)")
    which.add_argument("--session", dest="mode", action="store_const", const="session",
                       help="serve qemu:///session for this user (the default otherwise)")
    parser.add_argument("--driver", choices=sorted(BACKENDS), default="qemu",
                        help="the hypervisor backend (default: qemu)")
    parser.add_argument("--socket-dir", metavar="DIR", help="where the sockets and pidfile go")
    parser.add_argument("--state-dir", metavar="DIR", help="where persistent state goes")
    parser.add_argument("--config-dir", metavar="DIR", help="where configuration is read from")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", default=None,
                        help="exit after SECONDS without clients or running guests")
    parser.add_argument("--pidfile", metavar="PATH",
                        help="also write the pid here (the lock stays in the socket dir)")
    parser.add_argument("--daemon", action="store_true",
                        help="detach; return once the sockets accept clients")
    parser.add_argument("--workers", type=int, default=16, metavar="N",
                        help="threads for slow operations (default: 16)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v: info, -vv: debug)")
    opts = parser.parse_args(argv)
    if opts.mode is None:
        opts.mode = "system" if os.geteuid() == 0 else "session"
    if opts.timeout is not None and opts.timeout <= 0:
        parser.error("--timeout must be positive")
    if opts.workers < 1:
        parser.error("--workers must be at least 1")
    return opts


def daemon_paths(opts: argparse.Namespace) -> DaemonPaths:
    """The directories the options name."""
    base = system_paths() if opts.mode == "system" else session_paths()
    return base.with_overrides(socket_dir=opts.socket_dir, state_dir=opts.state_dir,
                               config_dir=opts.config_dir)


# --- single instance ------------------------------------------------------------------------

class PidLock:
    """``virtkitd.pid``: holds our pid and an exclusive ``flock`` while we run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock; AlreadyRunningError naming the other daemon's pid when taken."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            other = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise AlreadyRunningError(
                    f"another virtkitd (pid {other}) is already serving "
                    f"{self.path.parent}") from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Remove the pidfile, then drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None


def _make_dirs(paths: DaemonPaths) -> None:
    for directory in (paths.socket_dir, paths.state_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=paths.dir_mode)
    if paths.mode == "session":  # a runtime dir we made under ~/.cache must stay private
        os.chmod(paths.socket_dir, 0o700)


def _remove_stale_sockets(paths: DaemonPaths) -> None:
    """We hold the lock, so any socket file left there belongs to a dead daemon."""
    for path in (paths.socket, paths.socket_ro):
        try:
            if path.is_socket():
                path.unlink()
        except OSError:
            pass


# --- the daemon -----------------------------------------------------------------------------

class Daemon:
    """One running virtkitd: backend pool, thread pool, RemoteServer, idle timer."""

    def __init__(self, opts: argparse.Namespace, paths: DaemonPaths) -> None:
        self.opts = opts
        self.paths = paths
        self.spec = BACKENDS[opts.driver]
        self.backend_cls = load_backend(opts.driver)
        self.executor = ThreadPoolExecutor(max_workers=opts.workers,
                                           thread_name_prefix="virtkitd-op")
        self.pool = BackendPool(self.backend_cls, self.spec, paths)
        self.server: RemoteServer | None = None
        self._stop: asyncio.Event | None = None

    async def start(self) -> None:
        """Open the default backend, then listen on both sockets."""
        loop = asyncio.get_running_loop()
        # Before listening: a client never finds a daemon that cannot serve it.
        await loop.run_in_executor(self.executor, lambda: self.pool.default)
        self.server = RemoteServer(Handler(self.pool, self.executor),
                                   keepalive_interval=KEEPALIVE_INTERVAL,
                                   keepalive_count=KEEPALIVE_COUNT)
        await self.server.listen_unix(self.paths.socket, mode=0o600, readonly=False)
        await self.server.listen_unix(self.paths.socket_ro, mode=0o666, readonly=True)
        log.info("virtkitd %s (%s backend, %s) serving %s", self.paths.mode,
                 self.spec.name, self.pool.default_uri.raw, self.paths.socket_dir)

    async def abort(self) -> None:
        """Undo a failed :meth:`start`."""
        if self.server is not None:
            await self.server.close()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.pool.close()

    def stop(self) -> None:
        """Ask :meth:`serve` to return (callable from a signal handler)."""
        if self._stop is not None:
            self._stop.set()

    async def serve(self) -> None:
        """Serve until stopped or idle for ``--timeout`` seconds, then shut down."""
        assert self.server is not None
        self._stop = asyncio.Event()
        idle = None
        if self.opts.timeout is not None:
            idle = asyncio.get_running_loop().create_task(self._idle_watch(self.opts.timeout))
        try:
            await self._stop.wait()
        finally:
            if idle is not None:
                idle.cancel()
            await self.server.close()
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.pool.close()
            log.info("virtkitd stopped")

    def _busy(self) -> bool:
        """Clients connected, or guests running that need the daemon."""
        assert self.server is not None
        if self.server.connections:
            return True
        if self.spec.idle_ignores_domains:
            return False
        try:
            return bool(self.pool.default.list_domain_ids())
        except VirtError:
            return True

    async def _idle_watch(self, timeout: float) -> None:
        tick = min(1.0, timeout / 4)
        idle_since = time.monotonic()
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            busy = await loop.run_in_executor(self.executor, self._busy)
            now = time.monotonic()
            if busy:
                idle_since = now
            elif now - idle_since >= timeout:
                log.info("idle for %g s: exiting", timeout)
                self.stop()
                return


async def _run(daemon: Daemon, ready_fd: int | None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop)
    loop.add_signal_handler(signal.SIGHUP, lambda: log.info("SIGHUP: nothing to reload"))
    try:
        await daemon.start()
    except BaseException:
        await daemon.abort()
        raise
    if daemon.opts.pidfile:
        Path(daemon.opts.pidfile).write_text(f"{os.getpid()}\n")
    if ready_fd is not None:
        os.write(ready_fd, b"ok")
        os.close(ready_fd)
    try:
        await daemon.serve()
    finally:
        if daemon.opts.pidfile:
            try:
                os.unlink(daemon.opts.pidfile)
            except OSError:
                pass


def _detach() -> int | None:
    """Fork; the parent waits for the child's "ok" and exits with its verdict.

    Returns, in the child, the pipe's write end to report readiness on.
    The child runs in a session of its own with stdin on /dev/null, and is
    re-parented once the parent exits (so the starter owns nothing left
    running).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid > 0:
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as ready:
            verdict = ready.read()
        os._exit(0 if verdict == b"ok" else 1)
    os.close(read_fd)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir("/")
    return write_fd


def main(argv: Sequence[str] | None = None) -> int:
    """Run virtkitd; returns the exit status."""
    opts = parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(opts.verbose, 2)],
        format="%(asctime)s virtkitd[%(process)d]: %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr)
    paths = daemon_paths(opts)
    try:
        daemon = Daemon(opts, paths)
    except BackendUnavailableError as exc:
        print(f"virtkitd: {exc}", file=sys.stderr)
        return 2
    ready_fd = _detach() if opts.daemon else None
    lock = PidLock(paths.pidfile)
    try:
        _make_dirs(paths)
        lock.acquire()
        _remove_stale_sockets(paths)
        asyncio.run(_run(daemon, ready_fd))
    except (VirtError, OSError) as exc:
        print(f"virtkitd: cannot serve {paths.socket_dir}: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    return 0
