"""Catalog queries of the admin API: restore jobs, usage series, storage by class, audit pages.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_admin`.

A restore job (``POST /api/v1/restores``) groups the per-object restores the ObjectService
starts; the restore state itself stays keyed by blob in the tiering area's ``restores``
table. A job's items are written once, with the job, in one transaction; later calls only
change item states and the job's cached counters, each in its own short transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog.base import CatalogBase
from catalog.records import AuditEntry, Blob
from catalog.rows import now as _now
from catalog.tables_admin import restore_job_items, restore_jobs

#: Rows per statement in bulk inserts and ``IN`` lists.
_CHUNK = 500

#: Job kinds.
KIND_OBJECT = "object"
KIND_PREFIX = "prefix"

#: Item states.
ITEM_READY = "ready"
ITEM_REQUESTED = "requested"
ITEM_JOINED = "joined"
ITEM_COPIED = "copied"
ITEM_FAILED = "failed"


@dataclass(frozen=True)
class RestoreJob:
    """A restore asked for through the core API, with its cached progress."""

    id: int
    org_id: int
    bucket_id: int
    bucket: str
    kind: str
    target: str
    tier: str
    days: int
    #: None: the data is downloaded; else ``{"bucket": ..., "prefix": ...}``.
    destination: dict[str, Any] | None
    status: str
    user_id: int | None
    requested_by: str
    requested_at: datetime
    updated_at: datetime
    quote_usd: Decimal | None
    objects_total: int
    bytes_total: int
    objects_ready: int
    bytes_ready: int
    objects_copied: int
    objects_failed: int
    error: str | None


@dataclass(frozen=True)
class RestoreJobItem:
    """One object of a restore job."""

    seq: int
    key: str
    size: int
    state: str
    error: str | None = None


@dataclass(frozen=True)
class NewJobItem:
    """An object to record with a new job."""

    key: str
    size: int
    state: str
    error: str | None = None


@dataclass(frozen=True)
class UsageRow:
    """One hourly usage counter row (``user_id``/``bucket_id`` None: not attributed)."""

    hour: datetime
    user_id: int | None
    bucket_id: int | None
    action: str
    count: int
    bytes: int


def _job(row: Row[Any]) -> RestoreJob:
    destination = row.destination
    return RestoreJob(
        id=int(row.id),
        org_id=row.org_id,
        bucket_id=row.bucket_id,
        bucket=row.bucket,
        kind=row.kind,
        target=row.target,
        tier=row.tier,
        days=row.days,
        destination=dict(destination) if destination else None,
        status=row.status,
        user_id=row.user_id,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        updated_at=row.updated_at,
        quote_usd=Decimal(row.quote_usd) if row.quote_usd is not None else None,
        objects_total=int(row.objects_total),
        bytes_total=int(row.bytes_total),
        objects_ready=int(row.objects_ready),
        bytes_ready=int(row.bytes_ready),
        objects_copied=int(row.objects_copied),
        objects_failed=int(row.objects_failed),
        error=row.error,
    )


class AdminQueries(CatalogBase):
    """Restore jobs, usage series and the other reads the admin API needs."""

    # -- restore jobs ----------------------------------------------------------------------
    def create_restore_job(
        self,
        *,
        org_id: int,
        bucket_id: int,
        bucket: str,
        kind: str,
        target: str,
        tier: str,
        days: int,
        destination: Mapping[str, Any] | None,
        status: str,
        user_id: int | None,
        requested_by: str,
        quote_usd: Decimal | None,
        items: Sequence[NewJobItem],
    ) -> RestoreJob:
        """Record a job and all its items in one transaction."""
        now = _now()

        def tx(conn: Connection) -> RestoreJob:
            result = conn.execute(
                restore_jobs.insert().values(
                    org_id=org_id,
                    bucket_id=bucket_id,
                    bucket=bucket,
                    kind=kind,
                    target=target,
                    tier=tier,
                    days=days,
                    destination=dict(destination) if destination is not None else None,
                    status=status,
                    user_id=user_id,
                    requested_by=requested_by[:255],
                    requested_at=now,
                    updated_at=now,
                    quote_usd=quote_usd,
                    objects_total=len(items),
                    bytes_total=sum(i.size for i in items),
                    objects_ready=sum(1 for i in items if i.state == ITEM_READY),
                    bytes_ready=sum(i.size for i in items if i.state == ITEM_READY),
                    objects_copied=0,
                    objects_failed=sum(1 for i in items if i.state == ITEM_FAILED),
                )
            )
            inserted = result.inserted_primary_key
            assert inserted is not None
            job_id = int(inserted[0])
            rows = [
                {
                    "job_id": job_id,
                    "seq": seq,
                    "key": item.key,
                    "size": item.size,
                    "state": item.state,
                    "error": item.error[:1024] if item.error else None,
                }
                for seq, item in enumerate(items)
            ]
            for start in range(0, len(rows), _CHUNK):
                conn.execute(restore_job_items.insert(), rows[start : start + _CHUNK])
            row = conn.execute(sa.select(restore_jobs).where(restore_jobs.c.id == job_id)).one()
            return _job(row)

        return self._write(tx, what="restore job")

    def get_restore_job(self, job_id: int) -> RestoreJob | None:
        """The job, or None."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(restore_jobs).where(restore_jobs.c.id == job_id)
            ).first()
        )
        return None if row is None else _job(row)

    def list_restore_jobs(
        self,
        *,
        org_ids: Iterable[int] | None = None,
        user_id: int | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[RestoreJob]:
        """Jobs newest first, of some orgs and/or one requester, before ``before_id``."""
        query = sa.select(restore_jobs).order_by(restore_jobs.c.id.desc()).limit(limit)
        if org_ids is not None:
            query = query.where(restore_jobs.c.org_id.in_(list(org_ids)))
        if user_id is not None:
            query = query.where(restore_jobs.c.user_id == user_id)
        if before_id is not None:
            query = query.where(restore_jobs.c.id < before_id)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [_job(r) for r in rows]

    def jobs_with_status(
        self,
        statuses: Sequence[str],
        *,
        limit: int = 100,
        after_id: int = 0,
        requested_after: datetime | None = None,
    ) -> list[RestoreJob]:
        """A page of the jobs in one of ``statuses`` (asked for after ``requested_after``),
        by id after ``after_id``, oldest first (the copy worker's queue)."""
        query = (
            sa.select(restore_jobs)
            .where(restore_jobs.c.status.in_(list(statuses)), restore_jobs.c.id > after_id)
            .order_by(restore_jobs.c.id)
            .limit(limit)
        )
        if requested_after is not None:
            query = query.where(restore_jobs.c.requested_at > requested_after)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [_job(r) for r in rows]

    def restore_job_items(
        self, job_id: int, *, after_seq: int = -1, limit: int = 1000
    ) -> list[RestoreJobItem]:
        """Items of a job in key order after ``after_seq``."""
        query = (
            sa.select(restore_job_items)
            .where(restore_job_items.c.job_id == job_id, restore_job_items.c.seq > after_seq)
            .order_by(restore_job_items.c.seq)
            .limit(limit)
        )
        rows = self._read(lambda conn: conn.execute(query).all())
        return [RestoreJobItem(r.seq, r.key, int(r.size), r.state, r.error) for r in rows]

    def set_restore_item_states(
        self, job_id: int, changes: Mapping[int, tuple[str, str | None]]
    ) -> None:
        """Set ``seq -> (state, error)`` of some items."""
        if not changes:
            return

        def tx(conn: Connection) -> None:
            for seq, (state, error) in changes.items():
                conn.execute(
                    restore_job_items.update()
                    .where(restore_job_items.c.job_id == job_id, restore_job_items.c.seq == seq)
                    .values(state=state, error=error[:1024] if error else None)
                )

        self._write(tx, what="restore job items")

    def update_restore_job(
        self,
        job_id: int,
        *,
        status: str | None = None,
        objects_ready: int | None = None,
        bytes_ready: int | None = None,
        objects_copied: int | None = None,
        objects_failed: int | None = None,
        error: str | None = None,
    ) -> None:
        """Change a job's status and counters (what is None stays)."""
        values: dict[str, Any] = {"updated_at": _now()}
        for name, value in (
            ("status", status),
            ("objects_ready", objects_ready),
            ("bytes_ready", bytes_ready),
            ("objects_copied", objects_copied),
            ("objects_failed", objects_failed),
        ):
            if value is not None:
                values[name] = value
        if error is not None:
            values["error"] = error[:1024]
        self._write(
            lambda conn: conn.execute(
                restore_jobs.update().where(restore_jobs.c.id == job_id).values(**values)
            )
        )

    # -- what objects are stored in --------------------------------------------------------
    def object_blobs(self, object_ids: Iterable[int]) -> dict[int, list[Blob]]:
        """``object id -> its blobs`` (distinct, in part order) for many objects at once, so
        a folder restore is quoted without reading each object's segments."""
        ids = sorted(set(object_ids))
        if not ids:
            return {}

        def tx(conn: Connection) -> dict[int, list[Blob]]:
            found: dict[int, list[Blob]] = {}
            for start in range(0, len(ids), _CHUNK):
                rows = conn.execute(
                    sa.select(
                        s.segments.c.object_id,
                        s.blobs.c.id,
                        s.blobs.c.org_id,
                        s.blobs.c.backend,
                        s.blobs.c.key,
                        s.blobs.c.size,
                        s.blobs.c.storage_class,
                        s.blobs.c.created_at,
                    )
                    .join(s.blobs, s.blobs.c.id == s.segments.c.blob_id)
                    .where(s.segments.c.object_id.in_(ids[start : start + _CHUNK]))
                    .order_by(s.segments.c.object_id, s.segments.c.part_number)
                ).all()
                for r in rows:
                    blobs = found.setdefault(int(r.object_id), [])
                    if any(b.id == r.id for b in blobs):
                        continue
                    blobs.append(
                        Blob(
                            id=int(r.id),
                            org_id=r.org_id,
                            backend=r.backend,
                            key=r.key,
                            size=int(r.size),
                            storage_class=r.storage_class,
                            created_at=r.created_at,
                        )
                    )
            return found

        return self._read(tx)

    def storage_by_class(self, org_id: int) -> dict[str, tuple[int, int]]:
        """``storage class -> (objects, bytes)`` the org stores now (plaintext bytes, by
        the class clients see)."""
        query = (
            sa.select(
                s.objects.c.storage_class,
                sa.func.count().label("n"),
                sa.func.coalesce(sa.func.sum(s.objects.c.size), 0).label("total"),
            )
            .join(s.buckets, s.buckets.c.id == s.objects.c.bucket_id)
            .where(s.buckets.c.org_id == org_id)
            .group_by(s.objects.c.storage_class)
        )
        rows = self._read(lambda conn: conn.execute(query).all())
        return {r.storage_class: (int(r.n), int(r.total)) for r in rows}

    # -- usage -----------------------------------------------------------------------------
    def usage_rows(
        self,
        org_id: int,
        *,
        since: datetime,
        until: datetime,
        user_id: int | None = None,
        bucket_id: int | None = None,
    ) -> list[UsageRow]:
        """The org's hourly usage rows in ``[since, until)``, summed over buckets unless
        ``bucket_id`` is given, oldest first. Reads are counted without a user (the
        counters are per org and bucket), so ``user_id`` narrows to metered writes."""
        columns: list[Any] = [s.usage.c.hour, s.usage.c.user_id, s.usage.c.action]
        if bucket_id is not None:
            columns.append(s.usage.c.bucket_id)
        query = (
            sa.select(
                *columns,
                sa.func.sum(s.usage.c.count).label("total_count"),
                sa.func.sum(s.usage.c.bytes).label("total_bytes"),
            )
            .where(s.usage.c.org_id == org_id, s.usage.c.hour >= since, s.usage.c.hour < until)
            .group_by(*columns)
            .order_by(s.usage.c.hour, s.usage.c.user_id, s.usage.c.action)
        )
        if user_id is not None:
            query = query.where(s.usage.c.user_id == user_id)
        if bucket_id is not None:
            query = query.where(s.usage.c.bucket_id == bucket_id)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [
            UsageRow(
                hour=r.hour,
                user_id=r.user_id or None,
                bucket_id=(r.bucket_id or None) if bucket_id is not None else None,
                action=r.action,
                count=int(r.total_count or 0),
                bytes=int(r.total_bytes or 0),
            )
            for r in rows
        ]

    # -- audit -----------------------------------------------------------------------------
    def audit_page(
        self, *, org_id: int | None = None, before_id: int | None = None, limit: int = 100
    ) -> list[AuditEntry]:
        """Audit entries newest first (of one org), before ``before_id``: one page."""
        query = sa.select(s.audit_log).order_by(s.audit_log.c.id.desc()).limit(limit)
        if org_id is not None:
            query = query.where(s.audit_log.c.org_id == org_id)
        if before_id is not None:
            query = query.where(s.audit_log.c.id < before_id)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [
            AuditEntry(
                id=int(r.id),
                at=r.at,
                actor=r.actor,
                action=r.action,
                org_id=r.org_id,
                details=dict(r.details or {}),
            )
            for r in rows
        ]
