"""Catalog queries for restores, policies, containers, staging and placement.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_tiering`.

Restore state is keyed by the backend blob (DESIGN.md): every object stored in a blob shares
its one restore, so duplicate requests collapse onto it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog.base import CatalogBase
from catalog.records import RESTORE_DONE, RESTORE_ONGOING, Blob, RestoreRecord
from catalog.tables_tiering import restores, staged_blobs
from gateway.errors import RestoreInProgress


def _restore(row: Row[Any]) -> RestoreRecord:
    return RestoreRecord(
        blob=Blob(
            id=row.blob_id,
            org_id=row.blob_org_id,
            backend=row.blob_backend,
            key=row.blob_key,
            size=int(row.blob_size),
            storage_class=row.blob_storage_class,
            created_at=row.blob_created_at,
        ),
        org_id=row.org_id,
        tier=row.tier,
        days=row.days,
        status=row.status,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        completed_at=row.completed_at,
        expires_at=row.expires_at,
        quote_usd=Decimal(row.quote_usd) if row.quote_usd is not None else None,
    )


def _restore_query() -> sa.Select[Any]:
    return sa.select(
        restores,
        s.blobs.c.org_id.label("blob_org_id"),
        s.blobs.c.backend.label("blob_backend"),
        s.blobs.c.key.label("blob_key"),
        s.blobs.c.size.label("blob_size"),
        s.blobs.c.storage_class.label("blob_storage_class"),
        s.blobs.c.created_at.label("blob_created_at"),
    ).join(s.blobs, s.blobs.c.id == restores.c.blob_id)


class TieringQueries(CatalogBase):
    """Queries for restores (and, as the engine grows, policies, containers, staging)."""

    def mark_blobs_archived(self, blob_ids: Iterable[int], storage_class: str) -> int:
        """Record that these blobs now live in a cold ``storage_class``, and show every
        object stored in them in that class (HEAD and LIST report it from the object row).
        Returns how many objects changed."""
        ids = sorted(set(blob_ids))
        if not ids:
            return 0

        def tx(conn: Connection) -> int:
            conn.execute(
                s.blobs.update().where(s.blobs.c.id.in_(ids)).values(storage_class=storage_class)
            )
            holders = sa.select(s.segments.c.object_id).where(s.segments.c.blob_id.in_(ids))
            done = conn.execute(
                s.objects.update()
                .where(s.objects.c.id.in_(holders))
                .values(storage_class=storage_class)
            )
            return int(done.rowcount)

        return self._write(tx)

    def restores_for_objects(self, object_ids: Iterable[int]) -> dict[int, list[RestoreRecord]]:
        """The restore rows of the blobs each object lives in, by object id.

        One query for a whole listing page; objects with no restore are absent.
        """
        ids = sorted(set(object_ids))
        if not ids:
            return {}

        def tx(conn: Connection) -> dict[int, list[RestoreRecord]]:
            rows = conn.execute(
                _restore_query()
                .add_columns(s.segments.c.object_id)
                .join(s.segments, s.segments.c.blob_id == restores.c.blob_id)
                .where(s.segments.c.object_id.in_(ids))
            ).all()
            found: dict[int, dict[int, RestoreRecord]] = {}
            for row in rows:
                found.setdefault(row.object_id, {})[row.blob_id] = _restore(row)
            return {oid: list(by_blob.values()) for oid, by_blob in found.items()}

        return self._read(tx)

    def start_restore(
        self,
        blob_id: int,
        *,
        org_id: int,
        tier: str,
        days: int,
        requested_by: str,
        done: bool,
        expires_at: datetime | None,
        quote_usd: Decimal | None = None,
        now: datetime | None = None,
    ) -> RestoreRecord:
        """Record a restore of ``blob_id``: ``ongoing``, or ``done`` when the copy is
        readable at once. Raises ``RestoreInProgress`` if an ongoing restore exists; a done
        or expired row is replaced (a new request after expiry starts over)."""
        at = now or datetime.now(UTC)

        def tx(conn: Connection) -> RestoreRecord:
            current = conn.execute(
                sa.select(restores.c.status, restores.c.blob_id)
                .where(restores.c.blob_id == blob_id)
                .with_for_update()
            ).first()
            if current is not None and current.status == RESTORE_ONGOING:
                raise RestoreInProgress(f"blob {blob_id}")
            values = {
                "org_id": org_id,
                "tier": tier,
                "days": days,
                "status": RESTORE_DONE if done else RESTORE_ONGOING,
                "requested_by": requested_by,
                "requested_at": at,
                "completed_at": at if done else None,
                "expires_at": expires_at,
                "quote_usd": quote_usd,
                "next_poll_at": None if done else at,
            }
            if current is None:
                conn.execute(restores.insert().values(blob_id=blob_id, **values))
            else:
                conn.execute(restores.update().where(restores.c.blob_id == blob_id).values(**values))
            row = conn.execute(_restore_query().where(restores.c.blob_id == blob_id)).one()
            return _restore(row)

        return self._write(tx, what="restore", retry_unique=True)

    def finish_restore(self, blob_id: int, *, expires_at: datetime | None) -> None:
        """Mark the ongoing restore of ``blob_id`` done; its copy is readable until
        ``expires_at``."""
        now = datetime.now(UTC)

        def tx(conn: Connection) -> None:
            conn.execute(
                restores.update()
                .where(restores.c.blob_id == blob_id, restores.c.status == RESTORE_ONGOING)
                .values(
                    status=RESTORE_DONE, completed_at=now, expires_at=expires_at, next_poll_at=None
                )
            )

        self._write(tx)

    def postpone_restore_poll(self, blob_id: int, until: datetime) -> None:
        """Do not poll the backend about ``blob_id`` again before ``until`` (backoff)."""

        def tx(conn: Connection) -> None:
            conn.execute(
                restores.update().where(restores.c.blob_id == blob_id).values(next_poll_at=until)
            )

        self._write(tx)

    def due_restore_polls(self, now: datetime, *, limit: int = 100) -> list[RestoreRecord]:
        """Ongoing restores whose next poll is due, oldest first."""

        def tx(conn: Connection) -> list[RestoreRecord]:
            rows = conn.execute(
                _restore_query()
                .where(restores.c.status == RESTORE_ONGOING, restores.c.next_poll_at <= now)
                .order_by(restores.c.next_poll_at)
                .limit(limit)
            ).all()
            return [_restore(r) for r in rows]

        return self._read(tx)

    # -- staged small blobs ------------------------------------------------------------------
    def put_staged(self, key: str, data: bytes) -> datetime:
        """Store (or replace) the sealed bytes of a small blob; returns its time."""
        now = datetime.now(UTC)

        def tx(conn: Connection) -> None:
            conn.execute(staged_blobs.delete().where(staged_blobs.c.key == key))
            conn.execute(
                staged_blobs.insert().values(key=key, size=len(data), data=data, created_at=now)
            )

        self._write(tx, what="staged blob", retry_unique=True)
        return now

    def get_staged(self, key: str) -> tuple[bytes, datetime] | None:
        """The sealed bytes of a staged blob and when it was written, or None."""

        def tx(conn: Connection) -> tuple[bytes, datetime] | None:
            row = conn.execute(
                sa.select(staged_blobs.c.data, staged_blobs.c.created_at).where(
                    staged_blobs.c.key == key
                )
            ).first()
            return None if row is None else (bytes(row.data), row.created_at)

        return self._read(tx)

    def delete_staged(self, key: str) -> None:
        def tx(conn: Connection) -> None:
            conn.execute(staged_blobs.delete().where(staged_blobs.c.key == key))

        self._write(tx)

    def list_staged(
        self, prefix: str = "", *, after: str | None = None, limit: int = 1000
    ) -> list[tuple[str, int, datetime]]:
        """``(key, size, created_at)`` of staged blobs whose key starts with ``prefix``,
        in key order, after the key ``after``."""
        low = prefix.encode("utf-8")

        def tx(conn: Connection) -> list[tuple[str, int, datetime]]:
            query = sa.select(staged_blobs.c.key, staged_blobs.c.size, staged_blobs.c.created_at)
            if low:
                query = query.where(staged_blobs.c.key >= low, staged_blobs.c.key < low + b"\xff")
            if after is not None:
                query = query.where(staged_blobs.c.key > after.encode("utf-8"))
            rows = conn.execute(query.order_by(staged_blobs.c.key).limit(limit)).all()
            return [(r.key, int(r.size), r.created_at) for r in rows]

        return self._read(tx)
