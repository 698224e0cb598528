"""Fixtures: a RemoteServer running in a background thread on sockets in a temp dir."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from virtkit.drivers.remote.server import CallRecord, RemoteServer


class ServerThread:
    """A RemoteServer with its own event loop in a thread; ``stop`` joins it."""

    def __init__(self, handler: object, directory: Path, **server_options: Any) -> None:
        self.handler = handler
        self.path = str(directory / "rw.sock")
        self.ro_path = str(directory / "ro.sock")
        self.records: list[CallRecord] = []
        server_options.setdefault("trace", self.records.append)
        self._options = server_options
        self._loop = asyncio.new_event_loop()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="remote-server", daemon=True)
        self.server: RemoteServer | None = None

    def start(self) -> ServerThread:
        self._thread.start()
        self._ready.result(timeout=10)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        try:
            self.server = RemoteServer(self.handler, **self._options)
            await self.server.listen_unix(self.path, mode=0o600)
            await self.server.listen_unix(self.ro_path, mode=0o666)
        except BaseException as exc:
            self._ready.set_exception(exc)
            raise
        self._ready.set_result(None)
        await self.server.serve_forever()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn()`` in the server's loop thread and return its result."""
        done: Future[Any] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.set_exception(exc)
        self._loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    def stop(self) -> None:
        if self._thread.is_alive():
            assert self.server is not None
            asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(timeout=10)
            self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "server thread still running"

    def names(self) -> list[str]:
        """Procedures called so far, in order."""
        return [r.name for r in self.records]


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short-named temp dir (UNIX socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="vkrs-"))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def serve(sockdir: Path) -> Iterator[Callable[..., ServerThread]]:
    """``serve(handler, **options)`` starts a server; all are stopped and checked after."""
    started: list[ServerThread] = []

    def start(handler: object, **options: Any) -> ServerThread:
        directory = sockdir / str(len(started))
        directory.mkdir()
        runner = ServerThread(handler, directory, **options).start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()
        # Clean shutdown leaves no socket file behind.
        assert not os.path.exists(runner.path)
        assert not os.path.exists(runner.ro_path)
