"""The ``localfs`` backend: blobs in a directory, with emulated storage classes and restores.

For laptops, a NAS and the tests. It behaves as the ``s3`` backend does where the gateway can
tell: a blob in a cold class (``DEEP_ARCHIVE``, ``GLACIER``) is unreadable until a restore,
which completes ``restore_delay`` seconds after it is asked for and expires after the days
asked for.

Layout. Each key segment becomes a directory or file name, percent-encoded so that only
``[A-Za-z0-9_.-]`` stay as they are (and a leading ``.`` is encoded too, so no name is hidden
or special). The character ``~`` is always encoded, which leaves it free to mark our own
files; the blob ``a/b`` is::

    ROOT/a/b~meta          the blob's record (JSON): data file, size, class, restore state
    ROOT/a/b~d<16 hex>     its bytes; never changed once written, only replaced
    ROOT/a/b~t<16 hex>     a record being written (renamed over ``b~meta``)

Because directory names never contain ``~``, the blobs ``a`` and ``a/b`` can both exist (a
plain key-as-path layout could not hold both). The record is the commit point: a blob
exists exactly when its ``~meta`` file does. A ``put`` writes and fsyncs a new data file,
then renames a new record over the old one and only then removes the old data file, so a
reader sees the old or the new blob and never a prefix; a reader that opened the old data
file keeps reading it (POSIX), and one that finds it gone re-reads the record. Since data
files never change, ``copy`` is a hard link. A crash can leave an unreferenced ``~d`` or
``~t`` file behind; nothing lists or reads them, and :meth:`LocalFSBackend.remove_leftovers`
deletes those whose inode has not changed for a while (a write in progress, or the hard
link a copy has just made, changes it).

Changes to a record (``put``'s commit, ``delete``, storage class, restore) hold a lock for
the key: a striped ``threading.Lock`` inside the process and a POSIX record lock on one byte
of ``ROOT/.lock`` across processes (a gateway and ``coolstorage tier run`` may share the
root). Reads take no lock.

Limits: a key segment may be at most 220 bytes once encoded (file name limits); on a
case-insensitive file system (macOS by default) keys differing only in case collide.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote

from gateway.errors import (
    BackendError,
    BlobNotFound,
    InvalidArgument,
    InvalidName,
    InvalidRange,
    ObjectArchived,
)
from gateway.streams import Readable

from ._common import (
    CHUNK_SIZE,
    ChunkIterator,
    Options,
    check_key,
    check_prefix,
    check_range,
    check_restore_args,
    check_storage_class,
    empty_iterator,
)
from .base import (
    COLD_CLASSES,
    STANDARD,
    Backend,
    BlobInfo,
    Capability,
    RestoreStatus,
)

FORMAT_VERSION = 1
log = logging.getLogger(__name__)

_FORMAT_FILE = ".coolstorage-localfs.json"
_LOCK_FILE = ".lock"
_META = "meta"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
_MAX_SEGMENT = 220  # 255 minus room for "~d" + 16 hex digits and some slack
_STRIPES = 64
_GENERATION = re.compile(r"[0-9a-f]{16}\Z")
_DAY = 86400.0
# errno values after which the same call may well succeed (NFS and friends).
_TRANSIENT = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE})
# A hard link may be refused by the file system; then copy the bytes instead.
_NO_LINK = frozenset({errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})


def _encode_segment(segment: str) -> str:
    out = []
    for i, char in enumerate(segment):
        if char in _SAFE and not (i == 0 and char == "."):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def _decode_segment(name: str) -> str | None:
    """The segment a file or directory name stands for; None for names we did not make."""
    try:
        segment = unquote(name, errors="strict")
    except UnicodeDecodeError:
        return None
    return segment if segment and _encode_segment(segment) == name else None


@dataclass(frozen=True)
class _Record:
    """The content of a ``~meta`` file."""

    data: str
    size: int
    storage_class: str
    modified: float
    restore_ready: float | None = None
    restore_expires: float | None = None

    def to_json(self) -> bytes:
        restore = None
        if self.restore_ready is not None:
            restore = {"ready": self.restore_ready, "expires": self.restore_expires}
        doc = {
            "v": FORMAT_VERSION,
            "data": self.data,
            "size": self.size,
            "class": self.storage_class,
            "modified": self.modified,
            "restore": restore,
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> _Record:
        doc = json.loads(raw)
        if doc.get("v") != FORMAT_VERSION:
            raise ValueError(f"record version {doc.get('v')!r}")
        restore = doc.get("restore") or {}
        return cls(
            data=str(doc["data"]),
            size=int(doc["size"]),
            storage_class=str(doc["class"]),
            modified=float(doc["modified"]),
            restore_ready=restore.get("ready"),
            restore_expires=restore.get("expires"),
        )


def _os_error(action: str, exc: OSError) -> BackendError:
    """Translate an ``OSError`` once, here; the path is named, never a secret."""
    detail = exc.strerror or str(exc)
    where = f" {exc.filename}" if exc.filename else ""
    return BackendError(f"localfs {action}{where}: {detail}", retryable=exc.errno in _TRANSIENT)


def _suspects(names: Sequence[str]) -> list[str]:
    """The file names of one directory that may be leftovers of interrupted writes: every
    ``~t`` file, and the ``~d`` files of a blob that has no record or more than one."""
    data: dict[str, list[str]] = {}
    records: set[str] = set()
    suspects = []
    for name in names:
        base, marker, suffix = name.rpartition("~")
        if not marker:
            continue
        if suffix == _META:
            records.add(base)
        elif _GENERATION.match(suffix[1:]) and suffix[0] == "d":
            data.setdefault(base, []).append(name)
        elif _GENERATION.match(suffix[1:]) and suffix[0] == "t":
            suspects.append(name)
    for base, files in data.items():
        if base not in records or len(files) > 1:
            suspects.extend(files)
    return sorted(suspects)


class LocalFSBackend(Backend):
    """Blobs in a local directory; see the module docstring for layout and guarantees.

    Options (``[backends.NAME]`` with ``type = "localfs"``):

    - ``root`` (required): the directory; created if missing. Not writable: ``ConfigError``.
    - ``restore_delay`` (seconds, default 0): how long an emulated restore runs.
    - ``fsync`` (default true): fsync data, records and directories before a write returns.
    """

    plugin: ClassVar[str] = "localfs"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.RANGE_READ,
            Capability.STORAGE_CLASSES,
            Capability.RESTORE,
            Capability.SERVER_SIDE_COPY,
            Capability.LIST,
        }
    )

    def __init__(
        self,
        name: str,
        root: Path,
        *,
        restore_delay: float = 0.0,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use ``root``, which must exist and be writable (``from_options`` checks that)."""
        super().__init__(name)
        self.root = root
        self.restore_delay = restore_delay
        self.fsync = fsync
        #: Seconds since the epoch; tests replace it to move restores past their expiry.
        self.clock = clock
        self._thread_locks = [threading.Lock() for _ in range(_STRIPES)]
        self._lock_fd: int | None = os.open(root / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> LocalFSBackend:
        opts = Options(cls.plugin, name, options)
        root_text = opts.required_text("root")
        restore_delay = opts.number("restore_delay", 0.0)
        fsync = opts.flag("fsync", True)
        opts.finish()
        root = Path(root_text).expanduser().absolute()
        if root.exists() and not root.is_dir():
            raise opts.error(f"root {root} is not a directory")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise opts.error(f"cannot create root {root}: {exc.strerror or exc}") from None
        probe = root / f".probe-{secrets.token_hex(4)}"
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            probe.unlink()
        except OSError as exc:
            raise opts.error(f"root {root} is not writable: {exc.strerror or exc}") from None
        _check_format(root, opts)
        try:
            return cls(name, root, restore_delay=restore_delay, fsync=fsync)
        except OSError as exc:
            raise opts.error(f"cannot open lock file in {root}: {exc.strerror or exc}") from None

    # -- paths and records -------------------------------------------------------------

    def _location(self, key: str) -> tuple[Path, str]:
        """The directory holding ``key`` and the encoded name of its last segment."""
        check_key(key)
        names = [_encode_segment(segment) for segment in key.split("/")]
        for encoded in names:
            if len(encoded.encode()) > _MAX_SEGMENT:
                raise InvalidName(f"blob key {key!r} has a segment too long for localfs")
        return self.root.joinpath(*names[:-1]), names[-1]

    @staticmethod
    def _read_record(directory: Path, base: str) -> _Record | None:
        try:
            raw = (directory / f"{base}~{_META}").read_bytes()
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as exc:
            raise _os_error("cannot read record", exc) from None
        try:
            return _Record.from_json(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(
                f"localfs record {directory / base}~{_META} is damaged: {exc}"
            ) from None

    def _write_record(self, directory: Path, base: str, record: _Record) -> None:
        temp = directory / f"{base}~t{secrets.token_hex(8)}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                os.write(fd, record.to_json())
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, directory / f"{base}~{_META}")
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise _os_error("cannot write record", exc) from None
        self._sync_dir(directory)

    def _sync_dir(self, directory: Path) -> None:
        if not self.fsync:
            return
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some file systems cannot fsync a directory; the rename is still atomic
        finally:
            os.close(fd)

    def _make_dirs(self, directory: Path) -> None:
        missing = []
        path = directory
        while path != self.root and not path.is_dir():
            missing.append(path)
            path = path.parent
        for path in reversed(missing):
            try:
                path.mkdir()
            except FileExistsError:
                if not path.is_dir():
                    raise BackendError(f"localfs: {path} is in the way of a directory") from None
                continue
            except OSError as exc:
                raise _os_error("cannot create directory", exc) from None
            self._sync_dir(path.parent)

    def _remove_empty_dirs(self, directory: Path) -> None:
        """Remove ``directory`` and its parents up to the root while they are empty.

        Races with a concurrent ``put`` are harmless: ``rmdir`` refuses a directory that
        gained a file, and ``put`` recreates a directory removed under it.
        """
        path = directory
        while path != self.root and self.root in path.parents:
            try:
                path.rmdir()
            except OSError:
                return
            path = path.parent

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        stripe = zlib.crc32(key.encode("utf-8")) % _STRIPES
        with self._thread_locks[stripe]:
            fd = self._lock_fd
            if fd is None:
                raise BackendError(f"localfs backend {self.name!r} is closed")
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, stripe)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, stripe)

    def _restore_status(self, record: _Record) -> RestoreStatus | None:
        if record.storage_class not in COLD_CLASSES:
            return None
        ready, expires = record.restore_ready, record.restore_expires
        now = self.clock()
        if ready is None or expires is None or now >= expires:
            return RestoreStatus(requested=False)
        if now < ready:
            return RestoreStatus(requested=True, ongoing=True)
        return RestoreStatus(
            requested=True, ongoing=False, expires_at=datetime.fromtimestamp(expires, UTC)
        )

    def _info(self, key: str, record: _Record) -> BlobInfo:
        return BlobInfo(
            key=key,
            size=record.size,
            storage_class=record.storage_class,
            modified_at=datetime.fromtimestamp(record.modified, UTC),
            restore=self._restore_status(record),
        )

    def _require(self, key: str) -> tuple[Path, str, _Record]:
        directory, base = self._location(key)
        record = self._read_record(directory, base)
        if record is None:
            raise BlobNotFound(key)
        return directory, base, record

    def _check_readable(self, key: str, record: _Record) -> None:
        status = self._restore_status(record)
        if status is not None and not status.readable:
            raise ObjectArchived(key, record.storage_class)

    def _open_data(self, key: str) -> tuple[_Record, int]:
        """Open the current data file of a readable blob: (record, fd).

        A concurrent ``put`` or ``delete`` may remove the data file between reading the
        record and opening it; then the record is read again.
        """
        for _ in range(20):
            directory, base, record = self._require(key)
            self._check_readable(key, record)
            try:
                return record, os.open(directory / f"{base}~d{record.data}", os.O_RDONLY)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _os_error("cannot open", exc) from None
        raise BackendError(f"localfs: the data file of {key!r} keeps disappearing", retryable=True)

    def _commit(self, key: str, directory: Path, base: str, record: _Record) -> None:
        """Make ``record`` (whose data file is in place) the blob ``key``."""
        with self._locked(key):
            old = self._read_record(directory, base)
            self._write_record(directory, base, record)
        if old is not None and old.data != record.data:
            with contextlib.suppress(OSError):
                (directory / f"{base}~d{old.data}").unlink()

    def _new_data_file(self, directory: Path, base: str) -> tuple[str, int]:
        """Create an empty data file with a fresh generation: (generation, fd)."""
        for _ in range(20):
            self._make_dirs(directory)
            generation = secrets.token_hex(8)
            try:
                path = directory / f"{base}~d{generation}"
                return generation, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:
                continue  # a delete removed the (empty) directory meanwhile
            except OSError as exc:
                raise _os_error("cannot create", exc) from None
        raise BackendError(f"localfs: cannot keep directory {directory}", retryable=True)

    # -- the contract ------------------------------------------------------------------

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        storage_class: str = STANDARD,
    ) -> BlobInfo:
        """Write to a new data file, fsync, then commit the record (see the module doc)."""
        check_storage_class(storage_class)
        directory, base = self._location(key)
        generation, fd = self._new_data_file(directory, base)
        data_path = directory / f"{base}~d{generation}"
        written = 0
        try:
            try:
                while True:
                    # The stream's own errors (a client that went away) pass through as
                    # they are; only our file operations are translated.
                    chunk = stream.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    _write_all(fd, chunk, data_path)
                    written += len(chunk)
                if self.fsync:
                    try:
                        os.fsync(fd)
                    except OSError as exc:
                        raise _os_error(f"cannot fsync {data_path}", exc) from None
            finally:
                os.close(fd)
            record = _Record(generation, written, storage_class, self.clock())
            self._commit(key, directory, base, record)
        except BaseException:
            with contextlib.suppress(OSError):
                data_path.unlink()
            raise
        return self._info(key, record)

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Open the blob now (errors raise here) and return a closable chunk iterator."""
        check_range(start, end)
        _, fd = self._open_data(key)
        try:
            size = os.fstat(fd).st_size
            if start > size:
                raise InvalidRange(f"bytes={start}-", size)
            stop = size if end is None else min(end, size)
            if stop <= start:
                os.close(fd)
                return empty_iterator()
            os.lseek(fd, start, os.SEEK_SET)
        except BaseException as exc:
            os.close(fd)
            if isinstance(exc, OSError):
                raise _os_error("cannot read", exc) from None
            raise
        return ChunkIterator(
            lambda n: os.read(fd, n),
            lambda: os.close(fd),
            stop - start,
            lambda exc: _os_error("cannot read", exc) if isinstance(exc, OSError) else exc,
        )

    def head(self, key: str) -> BlobInfo:
        """Read the record; takes no lock."""
        _, _, record = self._require(key)
        return self._info(key, record)

    def delete(self, key: str) -> None:
        """Remove the record (the commit point), then the data file and empty directories."""
        directory, base = self._location(key)
        with self._locked(key):
            record = self._read_record(directory, base)
            if record is None:
                return
            try:
                (directory / f"{base}~{_META}").unlink()
            except FileNotFoundError:
                return
            except OSError as exc:
                raise _os_error("cannot delete", exc) from None
        with contextlib.suppress(OSError):
            (directory / f"{base}~d{record.data}").unlink()
        self._sync_dir(directory)
        self._remove_empty_dirs(directory)

    def copy(self, src_key: str, dst_key: str, *, storage_class: str | None = None) -> BlobInfo:
        """Hard-link the source's data file under the destination (bytes copied if refused)."""
        if storage_class is not None:
            check_storage_class(storage_class)
        dst_dir, dst_base = self._location(dst_key)
        record, src_fd = self._open_data(src_key)
        try:
            src_dir, src_base = self._location(src_key)
            source = src_dir / f"{src_base}~d{record.data}"
            for _ in range(20):
                self._make_dirs(dst_dir)
                generation = secrets.token_hex(8)
                target = dst_dir / f"{dst_base}~d{generation}"
                try:
                    os.link(source, target)
                    break
                except FileNotFoundError:
                    if dst_dir.is_dir():
                        # The source was replaced after we opened it: copy the bytes we
                        # hold open, which are the version we checked.
                        self._copy_bytes(src_fd, target)
                        break
                    continue  # a delete removed the destination directory meanwhile
                except OSError as exc:
                    if exc.errno not in _NO_LINK:
                        raise _os_error("cannot link", exc) from None
                    self._copy_bytes(src_fd, target)
                    break
            else:
                raise BackendError(f"localfs: cannot keep directory {dst_dir}", retryable=True)
        finally:
            os.close(src_fd)
        new = _Record(generation, record.size, storage_class or record.storage_class, self.clock())
        try:
            self._commit(dst_key, dst_dir, dst_base, new)
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise
        self._sync_dir(dst_dir)
        return self._info(dst_key, new)

    def _copy_bytes(self, src_fd: int, target: Path) -> None:
        try:
            with os.fdopen(os.dup(src_fd), "rb") as src, open(target, "xb") as dst:
                src.seek(0)
                shutil.copyfileobj(src, dst, CHUNK_SIZE)
                dst.flush()
                if self.fsync:
                    os.fsync(dst.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                target.unlink()
            raise _os_error("cannot copy", exc) from None

    def set_storage_class(self, key: str, storage_class: str) -> BlobInfo:
        """Rewrite the record only; the bytes stay where they are."""
        check_storage_class(storage_class)
        directory, base = self._location(key)
        with self._locked(key):
            record = self._read_record(directory, base)
            if record is None:
                raise BlobNotFound(key)
            if record.storage_class == storage_class:
                return self._info(key, record)
            # As on S3: bytes leave a cold class only through a restored copy.
            self._check_readable(key, record)
            record = _Record(record.data, record.size, storage_class, self.clock())
            self._write_record(directory, base, record)
        return self._info(key, record)

    def request_restore(self, key: str, *, days: int, tier: str = "Standard") -> RestoreStatus:
        """Start an emulated restore that is ready after ``restore_delay`` seconds.

        A restore that is running is left alone; a finished one is extended to ``days``
        from now, as S3 does.
        """
        check_restore_args(days, tier)
        directory, base = self._location(key)
        with self._locked(key):
            record = self._read_record(directory, base)
            if record is None:
                raise BlobNotFound(key)
            if record.storage_class not in COLD_CLASSES:
                raise InvalidArgument(
                    f"{key} is in storage class {record.storage_class}; it needs no restore"
                )
            status = self._restore_status(record)
            assert status is not None
            if status.ongoing:
                return status
            now = self.clock()
            if status.requested:
                # Finished and not expired: extend to ``days`` from now, as S3 does.
                ready = record.restore_ready
                expires = now + days * _DAY
            else:
                ready = now + self.restore_delay
                expires = ready + days * _DAY
            record = _Record(
                record.data,
                record.size,
                record.storage_class,
                record.modified,
                restore_ready=ready,
                restore_expires=expires,
            )
            self._write_record(directory, base, record)
        result = self._restore_status(record)
        assert result is not None
        return result

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Walk the tree in key order, descending only into directories that can match."""
        check_prefix(prefix)
        return self._walk(self.root, "", prefix)

    def _walk(self, directory: Path, key_prefix: str, prefix: str) -> Iterator[BlobInfo]:
        try:
            with os.scandir(directory) as scan:
                names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in scan]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise _os_error("cannot list", exc) from None
        entries: list[tuple[str, bool, str]] = []
        for name, is_dir in names:
            if is_dir:
                segment = _decode_segment(name)
                if segment is not None:
                    entries.append((f"{key_prefix}{segment}/", True, name))
            elif name.endswith(f"~{_META}"):
                segment = _decode_segment(name[: -len(_META) - 1])
                if segment is not None:
                    entries.append((f"{key_prefix}{segment}", False, name))
        # A file "a" sorts before the keys "a/..." and a sibling "a-" before them too: with
        # directories compared as "name/", this walk yields keys in S3 (UTF-8 byte) order.
        entries.sort()
        for candidate, is_dir, name in entries:
            if is_dir:
                if candidate.startswith(prefix) or prefix.startswith(candidate):
                    yield from self._walk(directory / name, candidate, prefix)
            elif candidate.startswith(prefix):
                record = self._read_record(directory, name[: -len(_META) - 1])
                if record is not None:
                    yield self._info(candidate, record)

    def remove_leftovers(self, older_than: datetime) -> int:
        """Delete ``~t`` files and ``~d`` files that no record names, unchanged (inode
        change time) since ``older_than``. Only names alone tell which files are suspects
        (a ``~t``, a second ``~d`` of one blob, a ``~d`` without a record), so a tree of
        healthy blobs costs its directory listings and nothing more. A data file is judged
        under its key's lock, so a commit naming it cannot happen in between."""
        cutoff = older_than.timestamp()
        removed = 0
        for directory, names in self._directories():
            for name in _suspects(names):
                base, _, suffix = name.rpartition("~")
                path = directory / name
                try:
                    if path.lstat().st_ctime >= cutoff:
                        continue
                    if suffix[0] == "t" or self._unreferenced(directory, base, suffix[1:]):
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise _os_error(f"cannot remove leftover {path}", exc) from None
        if removed:
            log.info("localfs %s: removed %d leftover files of interrupted writes", self.name, removed)
        return removed

    def _directories(self) -> Iterator[tuple[Path, Sequence[str]]]:
        for directory, dirs, files in os.walk(self.root):
            dirs.sort()
            yield Path(directory), files

    def _unreferenced(self, directory: Path, base: str, generation: str) -> bool:
        segments = [_decode_segment(p) for p in (*directory.relative_to(self.root).parts, base)]
        if any(s is None for s in segments):
            return False  # not a name this backend made: left alone
        with self._locked("/".join(s for s in segments if s is not None)):
            record = self._read_record(directory, base)
            return record is None or record.data != generation

    def close(self) -> None:
        """Close the lock file; idempotent."""
        for lock in self._thread_locks:
            lock.acquire()
        try:
            fd, self._lock_fd = self._lock_fd, None
            if fd is not None:
                os.close(fd)
        finally:
            for lock in self._thread_locks:
                lock.release()

    def __repr__(self) -> str:
        return f"<LocalFSBackend {self.name!r} at {self.root}>"


def _write_all(fd: int, chunk: bytes, path: Path) -> None:
    view = memoryview(chunk)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise _os_error(f"cannot write {path}", exc) from None


def _check_format(root: Path, opts: Options) -> None:
    """Record (or check) the layout version in the root, so a future layout can tell."""
    marker = root / _FORMAT_FILE
    try:
        raw = marker.read_bytes()
    except FileNotFoundError:
        temp = root / f"{_FORMAT_FILE}.{secrets.token_hex(4)}"
        try:
            temp.write_bytes(json.dumps({"format": FORMAT_VERSION}).encode())
            os.replace(temp, marker)
        except OSError as exc:
            raise opts.error(f"cannot write {marker}: {exc.strerror or exc}") from None
        return
    except OSError as exc:
        raise opts.error(f"cannot read {marker}: {exc.strerror or exc}") from None
    try:
        version = json.loads(raw).get("format")
    except (ValueError, AttributeError):
        version = None
    if version != FORMAT_VERSION:
        raise opts.error(f"{root} holds localfs layout {version!r}; this version reads only 1")
