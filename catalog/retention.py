"""Catalog queries for deleted-but-retained objects.

A mixin of :class:`catalog.api.Catalog`; its tables live in :mod:`catalog.tables_retention`.

When a delete, an overwrite (``commit_object`` replacing a row) or a rename onto an existing
key would drop an object, the core asks :meth:`RetentionQueries._retention_for` whether the
object must be kept, and until when:

- its bucket has a retention window (bucket setting ``retention_days``, set by an admin,
  default off): kept that many days after the delete, recoverable meanwhile, as protection
  against mass deletion;
- any of its blobs is in a cold class and younger than that class's minimum storage
  duration (Deep Archive 180 days, Glacier 90, counted from when the blob was written
  cold): kept to that day, since the provider bills those days anyway (the object costs
  storage, not an early-deletion fee).

The later of the two wins. A kept object leaves ``objects`` at once (GET and HEAD answer
404, LIST leaves it out) and its row and segment rows move to ``retained_objects`` and
``retained_segments``, which keep its blobs referenced: the garbage checks of the core
(``_collect_garbage``, ``forget_blob``, ``blob_is_referenced``) look at both segment
tables. Staged and hot objects of a bucket without a retention window are deleted as
before. Retained objects stay where their bytes are (a hot blob kept only by a retained
object is not archived by the engine).

Usage: a retained object's size stays in its org's stored bytes (and counts against the
quota) until it is purged: it is storage the org pays for, not a fee.
:meth:`RetentionQueries.purge_retained` (the engine's ``retention`` task) drops the rows
whose ``retain_until`` has passed, takes their bytes off the org, and turns blobs nothing
references any more into garbage intents. :meth:`RetentionQueries.recover_retained` puts
a retained version back at its key (if the key is free).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog.base import CatalogBase
from catalog.records import Intent, ObjectRecord, UsageEvent
from catalog.rows import chunks as _chunks
from catalog.tables_retention import retained_objects, retained_segments
from gateway.errors import InvalidArgument, ObjectNotFound, PreconditionFailed

if TYPE_CHECKING:
    from catalog.api import Catalog

log = logging.getLogger(__name__)

#: Minimum storage duration of the cold classes, in days (kept equal to the cost model's
#: ``Prices.minimum_days``; the catalog does not import the tiering package).
MINIMUM_DAYS = {"DEEP_ARCHIVE": 180, "GLACIER": 90}
#: The bucket setting holding the retention window in days (absent or 0: off).
RETENTION_SETTING = "retention_days"
#: Why an object was retained.
REASON_DELETE = "delete"
REASON_OVERWRITE = "overwrite"
REASON_MOVE = "move"

_SEGMENT_COLUMNS = (
    "part_number",
    "blob_id",
    "blob_offset",
    "sealed_size",
    "plain_size",
    "md5",
    "sha256",
    "age_header",
    "payload_offset",
    "seek_table",
    "header_mac",
    "recipient",
)
_OBJECT_COLUMNS = (
    "bucket_id",
    "key",
    "size",
    "etag",
    "sha256",
    "content_type",
    "user_metadata",
    "headers",
    "storage_class",
    "sse_recipient",
    "created_at",
    "modified_at",
    "last_access",
)
_CHUNK = 500


@dataclass(frozen=True)
class RetainedObject:
    """A deleted or overwritten object version kept until ``retain_until``."""

    id: int
    org_id: int
    bucket_id: int
    key: str
    #: The id the object had while it was live.
    object_id: int
    size: int
    etag: str
    content_type: str
    storage_class: str
    modified_at: datetime
    reason: str
    deleted_at: datetime
    retain_until: datetime


@dataclass(frozen=True)
class PurgeResult:
    """What :meth:`RetentionQueries.purge_retained` did."""

    purged: int
    bytes: int
    #: Blobs nothing references any more; each has a garbage intent already.
    garbage: list[Intent]


def retention_days(settings: Any) -> int:
    """The retention window a bucket's settings ask for, in whole days (0: off).

    A value that is not a non-negative integer counts as off (and is logged): an admin
    API validates it on the way in; this only guards the delete path."""
    value = (settings or {}).get(RETENTION_SETTING) if isinstance(settings, dict) else None
    if value is None or value is False:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        log.warning("bucket setting %s=%r is not a number of days; ignored", RETENTION_SETTING, value)
        return 0
    return value


def validate_retention_days(value: object) -> int:
    """``InvalidArgument`` unless ``value`` is a whole number of days from 0 to 36,500."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36_500:
        raise InvalidArgument(
            f"{RETENTION_SETTING}: expected a whole number of days from 0 (off) to 36500"
        )
    return value


def _retained(row: Row[Any]) -> RetainedObject:
    return RetainedObject(
        id=int(row.id),
        org_id=int(row.org_id),
        bucket_id=int(row.bucket_id),
        key=bytes(row.key_raw).decode("utf-8"),
        object_id=int(row.object_id),
        size=int(row.size),
        etag=row.etag,
        content_type=row.content_type,
        storage_class=row.storage_class,
        modified_at=row.modified_at,
        reason=row.reason,
        deleted_at=row.deleted_at,
        retain_until=row.retain_until,
    )


def _query() -> sa.Select[Any]:
    r = retained_objects.c
    return sa.select(
        r.id,
        r.org_id,
        r.bucket_id,
        sa.type_coerce(r.key, sa.LargeBinary).label("key_raw"),
        r.object_id,
        r.size,
        r.etag,
        r.content_type,
        r.storage_class,
        r.modified_at,
        r.reason,
        r.deleted_at,
        r.retain_until,
    )


class RetentionQueries(CatalogBase):
    """Keeping, listing, recovering and purging deleted-but-retained objects."""

    def _core(self) -> Catalog:
        return cast("Catalog", self)

    # -- used inside the core's transactions ----------------------------------------------
    def _versions_protected(self, conn: Connection, bucket_id: int, settings: Any) -> int:
        """How many kept versions a bucket with a retention window holds (0 without a
        window): such a bucket cannot be deleted while it holds any, or deleting every
        object and then the bucket would get round the protection. Versions kept only for
        Deep Archive's minimum duration do not hold a bucket without a window."""
        if isinstance(settings, str | bytes):
            import json

            settings = json.loads(settings)
        if retention_days(settings) <= 0:
            return 0
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(retained_objects)
            .where(retained_objects.c.bucket_id == bucket_id)
        ).scalar()
        return int(count or 0)

    def _retention_for(
        self, conn: Connection, bucket_id: int, object_id: int, now: datetime
    ) -> datetime | None:
        """Until when the live object ``object_id`` must be kept if it is dropped now
        (None: it need not be)."""
        settings = conn.execute(
            sa.select(s.buckets.c.settings).where(s.buckets.c.id == bucket_id)
        ).scalar()
        if isinstance(settings, str | bytes):
            import json

            settings = json.loads(settings)
        days = retention_days(settings)
        until = now + timedelta(days=days) if days > 0 else None
        cold = conn.execute(
            sa.select(s.blobs.c.storage_class, s.blobs.c.created_at)
            .join(s.segments, s.segments.c.blob_id == s.blobs.c.id)
            .where(
                s.segments.c.object_id == object_id,
                s.blobs.c.storage_class.in_(list(MINIMUM_DAYS)),
            )
        ).all()
        for row in cold:
            end = row.created_at + timedelta(days=MINIMUM_DAYS[row.storage_class])
            if end > now and (until is None or end > until):
                until = end
        return until

    def _retain_object(
        self,
        conn: Connection,
        org_id: int,
        object_id: int,
        *,
        reason: str,
        until: datetime,
        now: datetime,
    ) -> int:
        """Copy the live object row ``object_id`` and its segment rows into the retained
        tables (before the caller drops them); returns the retained row's id."""
        o = s.objects.c
        row = conn.execute(
            sa.select(*(getattr(o, name) for name in _OBJECT_COLUMNS)).where(o.id == object_id)
        ).one()
        done = conn.execute(
            retained_objects.insert().values(
                org_id=org_id,
                object_id=object_id,
                reason=reason,
                deleted_at=now,
                retain_until=until,
                **{name: getattr(row, name) for name in _OBJECT_COLUMNS},
            )
        )
        assert done.inserted_primary_key is not None
        retained_id = int(done.inserted_primary_key[0])
        g = s.segments.c
        conn.execute(
            retained_segments.insert().from_select(
                ["retained_id", *_SEGMENT_COLUMNS],
                sa.select(
                    sa.literal(retained_id, sa.BigInteger).label("retained_id"),
                    *(getattr(g, name) for name in _SEGMENT_COLUMNS),
                ).where(g.object_id == object_id),
            )
        )
        return retained_id

    def _blob_retained(self, conn: Connection, blob_id: int) -> bool:
        """True if a retained object still needs blob ``blob_id``."""
        return (
            conn.execute(
                sa.select(retained_segments.c.id)
                .where(retained_segments.c.blob_id == blob_id)
                .limit(1)
            ).first()
            is not None
        )

    # -- the public queries ---------------------------------------------------------------
    def list_retained(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        key: str | None = None,
        limit: int = 1000,
    ) -> list[RetainedObject]:
        """Retained versions in a bucket (only of ``key`` if given, else under ``prefix``),
        by key, newest deletion first within a key."""
        r = retained_objects.c
        query = _query().where(r.bucket_id == bucket_id)
        if key is not None:
            query = query.where(r.key == key.encode("utf-8"))
        elif prefix:
            low = prefix.encode("utf-8")
            query = query.where(r.key >= low, r.key < low + b"\xff")
        query = query.order_by(r.key, r.id.desc()).limit(limit)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [_retained(row) for row in rows]

    def retained_totals(self, org_id: int) -> tuple[int, int]:
        """``(retained objects, their bytes)`` of an org."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(retained_objects.c.size), 0))
                .where(retained_objects.c.org_id == org_id)
            ).one()
        )
        return int(row[0] or 0), int(row[1] or 0)

    def recover_retained(
        self,
        bucket_id: int,
        key: str,
        retained_id: int | None = None,
        *,
        usage: UsageEvent | None = None,
    ) -> ObjectRecord:
        """Put a retained version back at ``key`` (the newest one unless ``retained_id``
        names one), as the live object, with its metadata and blobs as they were.

        ``ObjectNotFound`` if there is no such retained version; ``PreconditionFailed`` if a
        live object is at ``key`` (delete or rename it first: it might be retained in turn,
        and a recovery must never drop data silently). The org's stored bytes do not
        change: a retained object was counted all along.
        """
        core = self._core()
        raw = key.encode("utf-8")

        def tx(conn: Connection) -> ObjectRecord:
            now = datetime.now(UTC)
            core._lock_bucket_org(conn, bucket_id)
            r = retained_objects.c
            query = sa.select(r.id).where(r.bucket_id == bucket_id, r.key == raw)
            if retained_id is not None:
                query = query.where(r.id == retained_id)
            found = conn.execute(query.order_by(r.id.desc()).limit(1).with_for_update()).scalar()
            if found is None:
                raise ObjectNotFound(f"{key} (no retained version)")
            if core._object_row(conn, bucket_id, raw, lock=True) is not None:
                raise PreconditionFailed(
                    f"{key} exists; delete or rename it before recovering a retained version"
                )
            kept = conn.execute(
                sa.select(*(getattr(r, name) for name in _OBJECT_COLUMNS)).where(r.id == found)
            ).one()
            done = conn.execute(
                s.objects.insert().values(**{name: getattr(kept, name) for name in _OBJECT_COLUMNS})
            )
            assert done.inserted_primary_key is not None
            object_id = int(done.inserted_primary_key[0])
            g = retained_segments.c
            conn.execute(
                s.segments.insert().from_select(
                    ["object_id", *_SEGMENT_COLUMNS],
                    sa.select(
                        sa.literal(object_id, sa.BigInteger).label("object_id"),
                        *(getattr(g, name) for name in _SEGMENT_COLUMNS),
                    ).where(g.retained_id == found),
                )
            )
            conn.execute(retained_segments.delete().where(g.retained_id == found))
            conn.execute(retained_objects.delete().where(r.id == found))
            if usage is not None:
                core._add_usage(conn, [core._usage_row(usage, now)])
            row = core._object_row(conn, bucket_id, raw)
            assert row is not None
            return core._full_object(conn, row)

        return self._write(tx, what=f"object {key}", retry_unique=True)

    def purge_retained(self, now: datetime | None = None, *, limit: int = 500) -> PurgeResult:
        """Drop up to ``limit`` retained versions whose ``retain_until`` has passed: their
        bytes leave their orgs' stored bytes, and blobs nothing references any more get
        garbage intents (returned; the caller deletes them, or the orphan sweep does)."""
        at = now or datetime.now(UTC)
        core = self._core()

        def tx(conn: Connection) -> PurgeResult:
            r = retained_objects.c
            rows = conn.execute(
                sa.select(r.id, r.org_id, r.size)
                .where(r.retain_until <= at)
                .order_by(r.retain_until, r.id)
                .limit(limit)
                .with_for_update()
            ).all()
            if not rows:
                return PurgeResult(0, 0, [])
            ids = [int(row.id) for row in rows]
            by_org: dict[int, int] = {}
            for row in rows:
                by_org[int(row.org_id)] = by_org.get(int(row.org_id), 0) + int(row.size)
            for org_id in sorted(by_org):
                core._change_stored_bytes(conn, org_id, -by_org[org_id], enforce_quota=False)
            blob_ids: set[int] = set()
            for chunk in _chunks(ids):
                blob_ids.update(
                    int(b)
                    for b in conn.execute(
                        sa.select(retained_segments.c.blob_id)
                        .where(retained_segments.c.retained_id.in_(chunk))
                        .distinct()
                    ).scalars()
                )
                conn.execute(
                    retained_segments.delete().where(retained_segments.c.retained_id.in_(chunk))
                )
                conn.execute(retained_objects.delete().where(r.id.in_(chunk)))
            garbage = core._collect_garbage(conn, blob_ids, at)
            return PurgeResult(len(ids), sum(by_org.values()), garbage)

        return self._write(tx, what="retained objects")
