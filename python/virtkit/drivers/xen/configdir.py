"""Defined domains: the XM/xl config files in ``/etc/xen``.

As in libvirt 0.2.2, the config files *are* the defined domains: a domain is
defined when ``/etc/xen/NAME.cfg`` describes it, undefined when the file goes.
:class:`ConfigDir` reads them with :mod:`~virtkit.drivers.xen.xm` and writes
them with its XM writer (rewriting an existing file keeps its comments,
layout and the keys virtkit does not manage), atomically: a temporary file in
the same directory, flushed to disk, renamed over the old one.

Reading (``xen-protocols.md`` section 4.1, adapted to today's layout):

- the files are ``DIR/*.cfg`` (``xl``'s convention; ``xl.conf``, the
  ``xlexample.*`` files and ``scripts/`` are not domains); dot files, names
  starting with ``#`` and ending with ``~`` are skipped, and so is anything
  that is not a regular file;
- the domain's name is the file's ``name`` key (the file name without
  ``.cfg`` when it has none); when two files claim one name, the first in
  alphabetical order owns it;
- a file without a ``uuid`` gets one derived from the domain name (the same in
  every process, unlike 0.2.2's random one kept in memory);
- xl's own spellings are understood where they mean an XM key: ``type =
  "hvm"`` (``builder``), ``cmdline`` (``extra``), ``maxvcpus`` (the maximum,
  ``vcpus`` then being the number online); any other key virtkit does not
  know is ignored on reading and kept on rewriting;
- an HVM guest is written and read in xl's spellings (:func:`_xl_hvm`):
  ``kernel``, ``ramdisk`` and ``extra`` are QEMU's direct kernel boot,
  ``firmware_override`` the loader (left out for an ``hvmloader``: xl's own),
  ``device_model_override`` the emulator;
- a file that cannot be read is left out of the listings (its error is in
  :meth:`ConfigDir.errors`), and never overwritten by a define;
- parsed files are cached by inode, size and modification time, and the
  definitions as a whole by the directory's inode and modification time:
  while the directory is unchanged (no file added, removed or renamed in it:
  what ``xl``, editors and virtkit's own atomic writes do), a listing costs
  one ``stat``, no ``listdir`` and no parsing, and a file added or removed by
  hand is seen by the next listing. An edit in place (the directory
  unchanged) is seen once the files are checked again, at most
  :data:`REVALIDATE_SECONDS` later. A directory changed less than
  :data:`RACY_NS` before it was listed is listed again next time (a second
  change within the file system's timestamp granularity would not show in
  its modification time).

Autostart is Debian's ``xendomains`` convention: a symbolic link
``DIR/auto/NAME.cfg`` to the domain's file.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import threading
import time
from dataclasses import dataclass

from virtkit.drivers.xen.conf import ConfFile, parse_conf
from virtkit.drivers.xen.xm import IGNORED_KEYS, READ_KEYS, format_xm, parse_xm
from virtkit.errors import ConfigSyntaxError, ErrorDomain, InvalidArgumentError, VirtError, VirtSystemError
from virtkit.xml.domain import DomainConfig

__all__ = ["ConfigDir", "Definition", "DEFAULT_DIR", "derived_uuid"]

#: Where xl and Debian keep domain config files.
DEFAULT_DIR = "/etc/xen"
#: The XM dialect the files are read and written in (Xen 3.1 and later).
FORMAT = 4
_SUFFIX = ".cfg"
#: A directory listed sooner than this after its last change is not trusted to
#: show a further change in its modification time (timestamps are coarse).
RACY_NS = 50_000_000
#: How long the definitions of an unchanged directory are used without a
#: ``stat`` of each file (seconds): the delay before an edit in place shows.
REVALIDATE_SECONDS = 1.0
#: Namespace of the UUIDs given to files that set none.
_UUID_NAMESPACE = bytes.fromhex("6f0b3c2e8a4d4c1b9a552d7e0f1c9b42")


def derived_uuid(name: str) -> bytes:
    """The UUID of a config file that sets none: a name-based (version 5) UUID,
    as ``uuid.uuid5`` makes it (RFC 4122 4.3: SHA-1 of namespace and name, then
    the version and variant bits), without importing ``uuid`` (and ``platform``
    with it) on the listing's way."""
    import hashlib

    digest = bytearray(hashlib.sha1(_UUID_NAMESPACE + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)


@dataclass(frozen=True)
class Definition:
    """One defined domain: its file and what the file says."""

    name: str
    path: str
    uuid: bytes
    #: The file sets no UUID (``uuid`` is :func:`derived_uuid`'s).
    uuid_derived: bool
    config: DomainConfig
    #: The file as parsed (for rewriting with its comments).
    conf: ConfFile


def _xm_view(conf: ConfFile) -> ConfFile:
    """The file's keys as the XM reader knows them (see the module docstring)."""
    view = ConfFile()
    for name in conf.names():
        value = conf.get(name)
        assert value is not None
        if name in READ_KEYS or name in IGNORED_KEYS:
            view.set(name, value)
    kind = conf.get("type")
    if "builder" not in conf and isinstance(kind, str) and kind == "hvm":
        view.set("builder", "hvm")
    if _is_hvm(conf):
        # xl's HVM keys (see _xl_hvm): the XM reader's ``kernel`` is the loader.
        loader = conf.get("firmware_override")
        view.set("kernel", loader if isinstance(loader, str) else DEFAULT_HVMLOADER)
        model = conf.get("device_model_override")
        if "device_model" not in conf and isinstance(model, str):
            view.set("device_model", model)
    cmdline = conf.get("cmdline")
    if "extra" not in conf and isinstance(cmdline, str):
        view.set("extra", cmdline)
    maxvcpus = conf.get("maxvcpus")
    if isinstance(maxvcpus, int) and maxvcpus > 0:
        online = conf.get("vcpus")
        view.set("vcpus", maxvcpus)
        if isinstance(online, int) and 0 < online < maxvcpus and "vcpu_avail" not in conf:
            view.set("vcpu_avail", (1 << online) - 1)
    return view


def _xl_spellings(conf: ConfFile, config: DomainConfig) -> str:
    """The XM writer's file, made right for ``xl``, which reads these files now:
    fewer vCPUs online than the maximum is ``maxvcpus``/``vcpus`` (xl ignores
    ``vcpu_avail``), and an older ``cmdline`` key gives way to ``extra``."""
    if config.vcpus_current is not None and config.vcpus_current < config.vcpus:
        conf.remove("vcpu_avail")
        conf.set("maxvcpus", config.vcpus)
        conf.set("vcpus", config.vcpus_current)
    else:
        conf.remove("maxvcpus")
    if "extra" in conf:
        conf.remove("cmdline")
    if config.os.type == "hvm":
        _xl_hvm(conf, config)
    return conf.dumps()


#: The loader an HVM file that names none (``firmware_override``) gets: Xen's
#: hvmloader, which xl loads from its own firmware directory.
DEFAULT_HVMLOADER = "/usr/lib/xen/boot/hvmloader"


def _is_hvm(conf: ConfFile) -> bool:
    return any(conf.get(key) == "hvm" for key in ("builder", "type"))


def _xl_hvm(conf: ConfFile, config: DomainConfig) -> None:
    """An HVM guest's keys as xl reads them, where the XM writer's differ: xl's
    ``kernel``, ``ramdisk`` and ``extra`` are QEMU's direct kernel boot (XM's
    ``kernel`` was the loader, which xl would hand QEMU as a kernel); the loader
    is ``firmware_override``, left out when it is an ``hvmloader`` (xl's own,
    wherever this host keeps it); the device model is ``device_model_override``."""
    os_ = config.os
    loader = os_.loader if os_.loader and os.path.basename(os_.loader) != "hvmloader" else None
    for key, value in (("firmware_override", loader), ("kernel", os_.kernel),
                       ("ramdisk", os_.initrd), ("extra", os_.cmdline),
                       ("device_model_override", config.emulator)):
        if value is None:
            conf.remove(key)
        else:
            conf.set(key, value)
    conf.remove("device_model")


def _with_xl_hvm_boot(config: DomainConfig, conf: ConfFile) -> DomainConfig:
    """``config`` (the XM reader's) with an HVM file's direct kernel boot (see _xl_hvm)."""
    if config.os.type != "hvm":
        return config
    def text(*keys: str) -> str | None:
        for key in keys:
            value = conf.get(key)
            if isinstance(value, str):
                return value
        return None
    return dataclasses.replace(config, os=dataclasses.replace(
        config.os, kernel=text("kernel"), initrd=text("ramdisk"), cmdline=text("extra", "cmdline")))


class ConfigDir:
    """The config files of one directory (``/etc/xen`` by default); thread-safe."""

    def __init__(self, path: str = DEFAULT_DIR) -> None:
        self.path = path
        self.auto_dir = os.path.join(path, "auto")
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[tuple[int, int, int], Definition | VirtError]] = {}
        #: The definitions as last read: the directory's (inode, mtime) then,
        #: when (monotonic), the definitions; None: read again.
        self._defs: tuple[tuple[int, int], float, list[Definition]] | None = None

    # --- reading -----------------------------------------------------------------

    def _files(self) -> list[str]:
        try:
            names = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise VirtSystemError(f"cannot list {self.path}: {e.strerror}", errno=e.errno,
                                  domain=ErrorDomain.XENXL) from None
        return [n for n in names if n.endswith(_SUFFIX) and len(n) > len(_SUFFIX)
                and not n.startswith((".", "#")) and not n.endswith("~")]

    def _load(self, path: str) -> Definition | VirtError | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            with open(path, "rb") as f:
                conf = parse_conf(f.read())
            view = _xm_view(conf)
            if "name" not in view:
                view.set("name", os.path.basename(path)[:-len(_SUFFIX)])
            config = _with_xl_hvm_boot(parse_xm(view, FORMAT), conf)
            derived = config.uuid is None
            uuid = derived_uuid(config.name) if config.uuid is None else config.uuid
            result: Definition | VirtError = Definition(
                config.name, path, uuid, derived, dataclasses.replace(config, uuid=uuid), conf)
        except OSError as e:
            result = VirtSystemError(f"cannot read {path}: {e.strerror}", errno=e.errno,
                                     domain=ErrorDomain.XENXL)
        except VirtError as e:
            result = ConfigSyntaxError(f"{path}: {e}", domain=ErrorDomain.XENXL)
        self._cache[path] = (key, result)
        return result

    def definitions(self) -> list[Definition]:
        """Every readable definition, one per name (the first file claiming it)."""
        with self._lock:
            try:
                st = os.stat(self.path)
                key: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
            except OSError:
                key = None
            now = time.monotonic()
            kept = self._defs
            if kept is not None and kept[0] == key and now - kept[1] < REVALIDATE_SECONDS:
                return list(kept[2])
            found = self._read_all()
            settled = key is not None and time.time_ns() - key[1] > RACY_NS
            self._defs = (key, now, found) if settled and key is not None else None
            return list(found)

    def _read_all(self) -> list[Definition]:
        with self._lock:
            seen: dict[str, Definition] = {}
            files = self._files()
            for name in files:
                got = self._load(os.path.join(self.path, name))
                if isinstance(got, Definition) and got.name not in seen:
                    seen[got.name] = got
            live = {os.path.join(self.path, n) for n in files}
            for path in [p for p in self._cache if p not in live]:
                del self._cache[path]
            return list(seen.values())

    def errors(self) -> dict[str, VirtError]:
        """The files that could not be read, with why."""
        with self._lock:
            self._read_all()
            return {p: r for p, (_k, r) in self._cache.items() if isinstance(r, VirtError)}

    def get(self, name: str) -> Definition | None:
        """The definition of domain ``name``, if any."""
        for d in self.definitions():
            if d.name == name:
                return d
        return None

    def by_uuid(self, uuid: bytes) -> Definition | None:
        for d in self.definitions():
            if d.uuid == uuid:
                return d
        return None

    # --- writing -----------------------------------------------------------------

    def file_for(self, name: str) -> str:
        """Where a new definition of ``name`` goes (``DIR/NAME.cfg``)."""
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise InvalidArgumentError(f"{name!r} cannot name a domain's config file "
                                       f"(no '/', no leading '.')", domain=ErrorDomain.XENXL)
        return os.path.join(self.path, name + _SUFFIX)

    def write(self, config: DomainConfig, previous: Definition | None = None) -> Definition:
        """Write ``config`` (which has its UUID) as a definition: over ``previous``'s
        file when given (keeping that file's comments and unknown keys), else to
        ``DIR/NAME.cfg`` — refusing to replace a file there that cannot be read.
        NoSupportError (CONFIG_UNSUPPORTED) for what XM cannot express; nothing
        is written then."""
        with self._lock:
            if previous is not None:
                path = previous.path
                into: ConfFile | None = previous.conf
            else:
                path = self.file_for(config.name)
                into = None
                if os.path.lexists(path):
                    got = self._load(path)
                    if isinstance(got, VirtError):
                        raise ConfigSyntaxError(
                            f"{path} exists and cannot be read, so it is not replaced: {got}",
                            domain=ErrorDomain.XENXL)
                    if isinstance(got, Definition):
                        into = got.conf
            if into is not None:
                # A copy: the cached file stays as it is on disk should the write fail.
                into = parse_conf(into.dumps())
            text = _xl_spellings(parse_conf(format_xm(config, FORMAT, into=into)), config)
            self._defs = None
            write_atomically(path, text.encode())
            got = self._load(path)
            if not isinstance(got, Definition):
                raise VirtSystemError(f"{path} was written but does not read back: {got}",
                                      domain=ErrorDomain.XENXL)
            return got

    def remove(self, definition: Definition) -> None:
        """Delete a definition's file and its autostart link."""
        with self._lock:
            self.set_autostart(definition, False)
            try:
                os.unlink(definition.path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise VirtSystemError(f"cannot remove {definition.path}: {e.strerror}",
                                      errno=e.errno, domain=ErrorDomain.XENXL) from None
            self._cache.pop(definition.path, None)
            self._defs = None

    # --- autostart ---------------------------------------------------------------

    def _auto_links(self, definition: Definition) -> list[str]:
        """The entries of DIR/auto that are this definition's file (links or copies by name)."""
        try:
            names = os.listdir(self.auto_dir)
        except OSError:
            return []
        target = os.path.realpath(definition.path)
        own = os.path.basename(definition.path)
        out = []
        for n in names:
            p = os.path.join(self.auto_dir, n)
            if n == own or os.path.realpath(p) == target:
                out.append(p)
        return out

    def autostart(self, definition: Definition) -> bool:
        """Whether DIR/auto holds the definition's file."""
        return bool(self._auto_links(definition))

    def set_autostart(self, definition: Definition, on: bool) -> None:
        """Add or remove the ``DIR/auto/NAME.cfg`` link."""
        links = self._auto_links(definition)
        try:
            if on and not links:
                os.makedirs(self.auto_dir, mode=0o755, exist_ok=True)
                os.symlink(definition.path,
                           os.path.join(self.auto_dir, os.path.basename(definition.path)))
            elif not on:
                for p in links:
                    os.unlink(p)
        except OSError as e:
            raise VirtSystemError(f"cannot change autostart of '{definition.name}' in "
                                  f"{self.auto_dir}: {e.strerror}", errno=e.errno,
                                  domain=ErrorDomain.XENXL) from None


def write_atomically(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it, flushed, renamed
    over it, the directory flushed. An existing file's mode is kept."""
    directory = os.path.dirname(path) or "."
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    import tempfile  # here: reading definitions never writes

    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise VirtSystemError(f"cannot write {path}: {e.strerror}", errno=e.errno,
                              domain=ErrorDomain.XENXL) from None
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EROFS):
            raise
    finally:
        os.close(dfd)
