"""The storage backend contract.

A backend stores opaque blobs (sealed segments and containers) under keys the gateway chooses.
It knows nothing of orgs, objects or encryption. The required interface is small; optional
abilities are declared in :attr:`Backend.capabilities` and callers check them rather than
catching ``NotImplementedError`` (rclone's ``Features``).

Rules every implementation keeps:

- ``put`` is atomic: a reader sees either the whole blob or none of it, never a prefix. A
  failed or interrupted ``put`` leaves no blob (or at worst an orphan the gateway's intent
  rows let the sweep remove). ``put`` of an existing key replaces it.
- ``put`` never holds the whole blob in memory; buffers are bounded whatever the size.
- ``delete`` is idempotent: deleting a missing blob is not an error.
- Every library error is translated here, once, into :mod:`gateway.errors`
  (``BlobNotFound``, ``ObjectArchived`` for a cold blob without a restored copy,
  ``BackendError`` with ``retryable`` set for throttling and network failures). Nothing from
  boto3 or ``OSError`` escapes a backend.
- Methods are called from many request threads at once and must be thread-safe.
- Keys are ``/``-separated strings of at most 1024 UTF-8 bytes. Backends refuse (with
  ``InvalidName``) keys with an empty, ``.`` or ``..`` segment, a leading ``/`` or a NUL,
  whatever their own storage could hold, so a blob can move between backends.

Retries. Each method's docstring says whether it is idempotent. A ``BackendError`` with
``retryable`` set means the call may be repeated as it is: the backend has already retried
transient failures internally (botocore's retry handler for ``s3``), so a caller sees one only
after those attempts ran out. Idempotent methods (``get``, ``head``, ``delete``, ``copy``,
``set_storage_class``, ``request_restore``, ``restore_status``, ``list``) may be repeated
freely. ``put`` consumes its stream: a caller can only repeat it with a fresh stream, and a
put that failed midway left no blob, so repeating it is safe when the caller can replay the
bytes. Exceptions raised by the caller's own ``stream`` pass through a backend unchanged (so
a client that went away is not reported as a storage failure).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from gateway.streams import IteratorReader, Readable

STANDARD = "STANDARD"
DEEP_ARCHIVE = "DEEP_ARCHIVE"
STORAGE_CLASSES = frozenset({STANDARD, "STANDARD_IA", "GLACIER", "GLACIER_IR", DEEP_ARCHIVE})
COLD_CLASSES = frozenset({"GLACIER", DEEP_ARCHIVE})

RESTORE_TIERS = ("Expedited", "Standard", "Bulk")


class Capability(enum.Enum):
    """Optional abilities a backend may declare."""

    RANGE_READ = "range_read"
    STORAGE_CLASSES = "storage_classes"
    RESTORE = "restore"
    SERVER_SIDE_COPY = "server_side_copy"
    LIST = "list"


@dataclass(frozen=True)
class RestoreStatus:
    """The state of a cold blob's temporary readable copy.

    ``ongoing`` is True while the restore runs; once it has finished, ``expires_at`` says
    until when the copy is readable. A blob that was never restored (or whose copy expired)
    has ``requested`` False.
    """

    requested: bool
    ongoing: bool = False
    expires_at: datetime | None = None

    @property
    def readable(self) -> bool:
        return self.requested and not self.ongoing


@dataclass(frozen=True)
class BlobInfo:
    """What a backend knows of one blob."""

    key: str
    size: int
    storage_class: str = STANDARD
    modified_at: datetime | None = None
    restore: RestoreStatus | None = None


class Backend(ABC):
    """A place blobs live: a directory, an S3 bucket.

    Construct with :meth:`from_options`, which receives the plugin's table from the config
    file (``[backends.NAME]``) as a plain mapping, so backends do not depend on the gateway's
    config module. Unknown or ill-typed options raise :class:`gateway.errors.ConfigError`
    naming the option.
    """

    #: Registered plugin name (the entry point name), e.g. ``"localfs"``.
    plugin: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, name: str) -> None:
        #: The configured instance name, e.g. ``"default"`` or ``"eu-west-1"``.
        self.name = name

    @classmethod
    @abstractmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> Backend:
        """Build an instance from its config table; validate and check it is usable.

        A root that does not exist and cannot be created, or is not writable, is a
        ``ConfigError`` with one clear line.
        """

    @abstractmethod
    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        storage_class: str = STANDARD,
    ) -> BlobInfo:
        """Store everything ``stream.read()`` yields under ``key``, atomically.

        ``size`` is a hint (the exact length when known). The stream is read in pieces and
        never rewound by the caller; a backend that needs to retry buffers what it sent.

        Replaces an existing blob atomically (readers see the old or the new bytes, never a
        mix). Not idempotent in the strict sense, as the stream is consumed, but repeating
        it with the same bytes gives the same result. The returned ``BlobInfo`` has the
        stored size and class.
        """

    @abstractmethod
    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes ``[start, end)`` of the blob (``end`` None: to the end).

        Raises ``BlobNotFound``, or ``ObjectArchived`` for a cold blob with no readable
        restored copy. Errors are raised on the first ``next()`` at the latest; a caller
        that stops iterating early must call ``close()`` on the generator (or let it go).

        Range rules, the same in every backend: ``end`` past the blob's end is clipped to
        it; ``start`` equal to the size (or ``start == end``) yields nothing, after checking
        the blob exists and is readable; ``start`` past the size, a negative ``start`` or
        ``end < start`` raise ``InvalidRange``. The shipped backends open the blob before
        returning, so these errors come from the call itself, before a front end has sent
        a status line; their iterators have ``close()`` and yield pieces of at most 1 MiB.
        A read that fails midway raises ``BackendError(retryable=True)``: repeat the ``get``
        from the offset reached. Idempotent.
        """

    @abstractmethod
    def head(self, key: str) -> BlobInfo:
        """Size, storage class and restore state of ``key``; ``BlobNotFound`` if absent.

        ``restore`` is None for a blob in a hot class and a ``RestoreStatus`` for a cold
        one. Reads only; idempotent.
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error.

        Idempotent, so a sweep or a caller retrying after a timeout (which may have hidden a
        delete that succeeded) can repeat it. Archived blobs are deleted too: the 180-day
        minimum is the gateway's business, not the backend's.
        """

    def copy(self, src_key: str, dst_key: str, *, storage_class: str | None = None) -> BlobInfo:
        """Copy a blob inside this backend, optionally into another storage class.

        The default streams it through ``get`` and ``put``; backends with
        ``SERVER_SIDE_COPY`` do it without moving the bytes through the gateway.

        ``storage_class`` None keeps the source's class; the restore state is not copied.
        The source must be readable (a cold source needs a restored copy, else
        ``ObjectArchived``). Idempotent: the destination is replaced atomically, as by
        ``put``.
        """
        info = self.head(src_key)
        reader = IteratorReader(self.get(src_key))
        try:
            return self.put(
                dst_key,
                reader,
                size=info.size,
                storage_class=storage_class or info.storage_class,
            )
        finally:
            reader.close()

    def set_storage_class(self, key: str, storage_class: str) -> BlobInfo:
        """Move ``key`` to ``storage_class`` in place (a copy onto itself on S3).

        Moving into the class it is already in changes nothing. Moving a cold blob to any
        other class needs a readable restored copy (else ``ObjectArchived``), as on S3;
        moving into a cold class drops any restored copy. Idempotent.
        """
        raise NotImplementedError(f"{self.plugin} has no storage classes")

    def request_restore(self, key: str, *, days: int, tier: str = "Standard") -> RestoreStatus:
        """Ask for a temporary readable copy of a cold blob for ``days`` days.

        Idempotent: asking again while a restore runs, or after it finished, returns the
        current status (and on S3 may extend the expiry). A blob in a hot class needs no
        restore: ``InvalidArgument``. ``tier`` is one of :data:`RESTORE_TIERS`.
        """
        raise NotImplementedError(f"{self.plugin} has no restores")

    def restore_status(self, key: str) -> RestoreStatus:
        """The restore state of ``key`` (``head(key).restore``); reads only, idempotent."""
        info = self.head(key)
        return info.restore or RestoreStatus(requested=False)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob whose key starts with ``prefix``, in key order (for sweeps).

        Key order is S3's: by the keys' UTF-8 bytes, which is Python's ``str`` order. The
        listing is lazy (pages are fetched as the caller iterates) and not a snapshot:
        blobs written or deleted meanwhile may or may not appear. Idempotent.
        """
        raise NotImplementedError(f"{self.plugin} cannot list")

    def remove_leftovers(self, older_than: datetime) -> int:
        """Remove what interrupted writes left behind and nothing has touched since
        ``older_than`` (partial files, incomplete multipart uploads); return how many.

        Never touches a blob, and never a write still in progress: those keep being
        touched. The orphan sweep calls it. Idempotent; by default there is nothing to do.
        """
        return 0

    def close(self) -> None:
        """Release connections and threads; the instance is not used afterwards.

        Idempotent.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
