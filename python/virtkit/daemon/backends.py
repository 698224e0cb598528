"""The hypervisor behind a ``virtkitd``: a driver of the one contract, chosen by ``--driver``.

A daemon backend is simply a :class:`~virtkit.drivers.interface.Driver`
subclass, opened (read-write, once per daemon-side URI) with that URI and
shared by every client; each client reaches it through its own server-side
:class:`virtkit.Connection`, which applies the read-only and state checks.
A backend joins by a row in :data:`BACKENDS` naming its class as
``module:Class``; the QEMU driver's row names the class its module will
define, so ``--driver qemu`` works as soon as that module exists and fails
with a clear message until then.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from virtkit.daemon.paths import DaemonPaths
from virtkit.drivers.interface import OPERATIONS, Driver
from virtkit.drivers.test import TestDriver
from virtkit.errors import ConnectionFailedError, VirtError
from virtkit.uri import URI, parse_uri

__all__ = ["BackendSpec", "BACKENDS", "BackendUnavailableError", "load_backend", "BackendPool",
           "TestBackend"]


class TestBackend(TestDriver):
    """The in-memory test driver as a daemon backend.

    Everything it does is quick in-memory work under one short lock, so it
    all runs on the event loop, except what writes or reads files (save,
    core dump, restore), which runs in a worker thread.
    """

    __test__ = False
    fast_operations = frozenset(OPERATIONS) - {"domain_save", "domain_core_dump",
                                               "restore_domain"}


@dataclass(frozen=True)
class BackendSpec:
    """One ``--driver`` choice."""

    name: str
    #: The driver class, as ``module:Class``.
    target: str
    #: The daemon-side URI opened for clients that name the daemon's own URI.
    default_uri: Callable[[DaemonPaths], str]
    #: True when the backend's running domains live in the daemon's memory
    #: only (the test driver): they do not keep an idle daemon alive, as
    #: libvirtd's test driver never inhibits ``--timeout``.
    idle_ignores_domains: bool = False


BACKENDS: dict[str, BackendSpec] = {
    "test": BackendSpec("test", "virtkit.daemon.backends:TestBackend",
                        lambda paths: "test:///default", idle_ignores_domains=True),
    "qemu": BackendSpec("qemu", "virtkit.drivers.qemu.driver:QemuDriver",
                        lambda paths: paths.uri),
    # The Xen driver in a dom0 (root): users who are not root reach it
    # read-only through this daemon's read-only socket (libvirt 0.2.2's proxy).
    "xen": BackendSpec("xen", "virtkit.drivers.xen.driver:XenDriver",
                       lambda paths: "xen:///"),
}


class BackendUnavailableError(ConnectionFailedError):
    """The chosen backend's driver class cannot be loaded."""


def load_backend(name: str) -> type[Driver]:
    """The driver class of backend ``name``; BackendUnavailableError saying why not."""
    spec = BACKENDS.get(name)
    if spec is None:
        raise BackendUnavailableError(
            f"unknown backend {name!r} (choose from {', '.join(sorted(BACKENDS))})")
    module_name, _, class_name = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise BackendUnavailableError(
                f"the {name} backend is not available in this virtkit yet "
                f"({module_name} does not exist); use --driver test") from None
        raise
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise BackendUnavailableError(
            f"the {name} backend is not available in this virtkit yet "
            f"({spec.target} is not a driver class); use --driver test")
    return cls


class BackendPool:
    """The backend driver instances of one daemon, one per daemon-side URI.

    ``resolve`` maps what a client passed to ``connect_open`` to the URI the
    backend opens: nothing or the daemon's own URI (``qemu:///session``) ->
    the backend's default; a URI of the backend's own scheme without host or
    transport (``test:///default``, ``test:///PATH.xml``) -> that URI.
    Anything else is refused with ConnectionFailedError.
    """

    def __init__(self, cls: type[Driver], spec: BackendSpec, paths: DaemonPaths) -> None:
        self.cls = cls
        self.spec = spec
        self.paths = paths
        self.daemon_uri = paths.uri
        self.default_uri = parse_uri(spec.default_uri(paths))
        self._drivers: dict[str, Driver] = {}
        self._lock = threading.Lock()

    def resolve(self, requested: str | None) -> URI:
        """The daemon-side URI for a client's ``connect_open`` name."""
        if not requested or requested == self.daemon_uri:
            return self.default_uri
        try:
            uri = parse_uri(requested)
        except VirtError as exc:
            raise ConnectionFailedError(f"cannot open {requested!r}: {exc}") from None
        if uri.driver in self.cls.schemes and not uri.host and not uri.transport:
            return uri
        raise ConnectionFailedError(
            f"this virtkitd serves {self.daemon_uri} ({self.spec.name} backend); "
            f"it cannot open {requested!r}")

    def cached(self, uri: URI) -> Driver | None:
        """The backend already open for ``uri``, if any."""
        return self._drivers.get(uri.raw)

    def open(self, uri: URI) -> Driver:
        """The backend for ``uri``, opened on first use (may be slow: call from a thread).

        A backend that keeps files (the QEMU driver) defines ``open_with_paths(uri,
        config_dir, state_dir, runtime_dir, *, read_only)``; it is called with this
        daemon's directories, so ``--socket-dir`` and friends move its files too.
        Other backends are opened with ``open(uri, read_only)``.
        """
        with self._lock:
            driver = self._drivers.get(uri.raw)
            if driver is None:
                with_paths = getattr(self.cls, "open_with_paths", None)
                if with_paths is not None:
                    p = self.paths
                    driver = with_paths(uri, p.config_dir, p.state_dir, p.socket_dir,
                                        read_only=False)
                else:
                    driver = self.cls.open(uri, False)
                self._drivers[uri.raw] = driver
            return driver

    @property
    def default(self) -> Driver:
        """The backend of the default URI (opened at start-up)."""
        return self.open(self.default_uri)

    def close(self) -> None:
        """Close every backend; idempotent."""
        with self._lock:
            drivers, self._drivers = list(self._drivers.values()), {}
        for driver in drivers:
            driver.close()
