"""Catalog queries for restores, policies, containers, staging and placement.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_tiering`.

Restore state is keyed by the backend blob (DESIGN.md): every object stored in a blob shares
its one restore, so duplicate requests collapse onto it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog.base import CatalogBase
from catalog.records import (
    RESTORE_DONE,
    RESTORE_ONGOING,
    Blob,
    Intent,
    ObjectRecord,
    RestoreRecord,
    Segment,
)
from catalog.rows import blob as _blob
from catalog.rows import blob_columns as _blob_columns
from catalog.rows import chunks as _chunks
from catalog.rows import json_dict as _json_dict
from catalog.tables_tiering import (
    containers,
    restore_charges,
    restores,
    staged_blobs,
    tiering_policies,
)
from gateway.errors import InvalidArgument, RestoreBudgetExceeded, RestoreInProgress

if TYPE_CHECKING:
    from catalog.api import Catalog

#: Storage classes whose blobs are cold (kept equal to tiering.backends.base.COLD_CLASSES;
#: the catalog does not import the backends).
COLD = ("GLACIER", "DEEP_ARCHIVE")
#: Rows per statement in bulk updates.
_CHUNK = 500


def _restore(row: Row[Any]) -> RestoreRecord:
    return RestoreRecord(
        blob=_blob(row, "blob_"),
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
        *_blob_columns("blob_", with_id=False),
    ).join(s.blobs, s.blobs.c.id == restores.c.blob_id)


@dataclass(frozen=True)
class ArchiveMove:
    """Segments stored at ``old_offset`` of blob ``blob_id`` now live at ``new_offset`` of
    the new blob (offset 0 of a staged or single blob; a member's place in a container)."""

    blob_id: int
    old_offset: int
    new_offset: int


@dataclass(frozen=True)
class NewContainer:
    """What the catalog keeps of a container blob beside its blob row."""

    kind: str
    member_count: int
    members_bytes: int
    index_offset: int
    index_length: int
    index_header_mac: bytes


@dataclass(frozen=True)
class ArchiveResult:
    """What :meth:`TieringQueries.commit_archive` did."""

    blob: Blob
    #: Segment rows now pointing into the new blob.
    moved_segments: int
    #: Objects whose every segment is now cold (their class became the new blob's).
    archived_objects: int
    #: Blobs nothing references any more (the staged or hot copies, or the new blob itself
    #: if every member vanished meanwhile); each has a garbage intent already.
    garbage: list[Intent]


@dataclass(frozen=True)
class ContainerRecord:
    """A container blob, with the bytes its live members still occupy."""

    blob: Blob
    kind: str
    member_count: int
    members_bytes: int
    index_offset: int
    index_length: int
    index_header_mac: bytes
    created_at: datetime
    rewrite_requested_at: datetime | None
    live_bytes: int

    @property
    def live_share(self) -> float:
        return self.live_bytes / self.members_bytes if self.members_bytes else 0.0


@dataclass(frozen=True)
class LiveMember:
    """One live member of a container: the bytes at ``segment.blob_offset`` and one object
    (of possibly several sharing them) that names it."""

    segment: Segment
    object_id: int
    bucket_id: int
    key: str
    content_type: str
    modified_at: datetime


@dataclass(frozen=True)
class PolicyRow:
    """Rules stored for an org (``bucket_id`` None) or one of its buckets."""

    org_id: int
    bucket_id: int | None
    rules: dict[str, Any]
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class TieringCounts:
    """What ``coolstorage tier status`` shows."""

    #: storage class -> (objects, plaintext bytes)
    objects_by_class: dict[str, tuple[int, int]]
    restoring_objects: int
    restored_objects: int
    staged_blobs: int
    staged_bytes: int
    #: Blobs in a hot class outside the staging table, and their bytes.
    hot_blobs: int
    hot_bytes: int
    containers: int
    container_bytes: int
    container_live_bytes: int
    container_members_bytes: int
    ongoing_restores: int


class TieringQueries(CatalogBase):
    """Queries for restores, staging, policies, containers and the moves to cold storage."""

    def _core(self) -> Catalog:
        # The mixin runs as part of Catalog and shares its private helpers.
        return cast("Catalog", self)

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
                "notified_at": None,
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

    def unnotified_restores(self, since: datetime, *, limit: int = 100) -> list[RestoreRecord]:
        """Restores completed since ``since`` that the webhook has not announced yet."""

        def tx(conn: Connection) -> list[RestoreRecord]:
            rows = conn.execute(
                _restore_query()
                .where(
                    restores.c.status == RESTORE_DONE,
                    restores.c.notified_at.is_(None),
                    restores.c.completed_at >= since,
                )
                .order_by(restores.c.completed_at)
                .limit(limit)
            ).all()
            return [_restore(r) for r in rows]

        return self._read(tx)

    def mark_restore_notified(self, blob_id: int, completed_at: datetime, at: datetime) -> None:
        """Record that the completion of ``blob_id``'s restore at ``completed_at`` was
        announced (a later restore of the same blob is a new row state and is announced
        again)."""
        self._write(
            lambda conn: conn.execute(
                restores.update()
                .where(restores.c.blob_id == blob_id, restores.c.completed_at == completed_at)
                .values(notified_at=at)
            )
        )

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

    # -- policies ----------------------------------------------------------------------------
    def set_tiering_policy(
        self,
        org_id: int,
        bucket_id: int | None,
        rules: Mapping[str, Any] | None,
        *,
        updated_by: str,
    ) -> None:
        """Store the rules of an org (``bucket_id`` None) or bucket, replacing what was
        there; ``rules`` None removes them (the level then inherits). The caller validates
        the rules (``tiering.policy.validate_rules``)."""
        self.update_tiering_policy(org_id, bucket_id, lambda _: rules, updated_by=updated_by)

    def update_tiering_policy(
        self,
        org_id: int,
        bucket_id: int | None,
        change: Callable[[dict[str, Any]], Mapping[str, Any] | None],
        *,
        updated_by: str,
    ) -> None:
        """Read-modify-write of the rules of an org or bucket in one transaction, so two
        concurrent changes (two pins) cannot lose one another: ``change`` gets the stored
        rules (empty if none) and returns the new ones (None removes them). It may run
        more than once (the transaction is retried on conflicts) and may raise to abort."""
        scope = bucket_id or 0
        where = sa.and_(tiering_policies.c.org_id == org_id, tiering_policies.c.bucket_id == scope)

        def tx(conn: Connection) -> None:
            current = conn.execute(
                sa.select(tiering_policies.c.rules).where(where).with_for_update()
            ).scalar()
            rules = change(_json_dict(current) if current is not None else {})
            conn.execute(tiering_policies.delete().where(where))
            if rules is not None:
                conn.execute(
                    tiering_policies.insert().values(
                        org_id=org_id,
                        bucket_id=scope,
                        rules=dict(rules),
                        updated_at=datetime.now(UTC),
                        updated_by=updated_by,
                    )
                )

        self._write(tx, what="tiering policy", retry_unique=True)

    def tiering_policies(self, org_id: int | None = None) -> list[PolicyRow]:
        """Stored policies (of one org), org-wide rows first."""
        query = sa.select(tiering_policies).order_by(
            tiering_policies.c.org_id, tiering_policies.c.bucket_id
        )
        if org_id is not None:
            query = query.where(tiering_policies.c.org_id == org_id)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [
            PolicyRow(
                org_id=r.org_id,
                bucket_id=r.bucket_id or None,
                rules=_json_dict(r.rules),
                updated_at=r.updated_at,
                updated_by=r.updated_by,
            )
            for r in rows
        ]

    def tiering_rules(self, org_id: int, bucket_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(org rules, bucket rules)`` as stored (empty where nothing is set)."""

        def tx(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:
            rows = conn.execute(
                sa.select(tiering_policies.c.bucket_id, tiering_policies.c.rules).where(
                    tiering_policies.c.org_id == org_id,
                    tiering_policies.c.bucket_id.in_([0, bucket_id]),
                )
            ).all()
            found = {r.bucket_id: _json_dict(r.rules) for r in rows}
            return found.get(0, {}), found.get(bucket_id, {}) if bucket_id else {}

        return self._read(tx)

    # -- what is still hot -------------------------------------------------------------------
    def hot_objects(
        self,
        *,
        hot_classes: Sequence[str],
        after_blob_id: int = 0,
        limit: int = 500,
        created_before: datetime | None = None,
        cold_classes: Sequence[str] = COLD,
    ) -> tuple[list[ObjectRecord], int | None]:
        """Objects stored (at least partly) in the next ``limit`` blobs of a hot class, by
        blob id after ``after_blob_id``, each with all its segments; and the blob id to
        continue after (None at the end). An object with several hot blobs may come back on
        a later page too.

        ``created_before`` leaves out objects written later, unless a client asked for a
        cold class (those are due at once): no policy can make them due yet, so their
        segments are not even read."""
        from catalog.api import _OBJECT_COLUMNS, _object

        def tx(conn: Connection) -> tuple[list[ObjectRecord], int | None]:
            blob_ids = [
                int(b)
                for b in conn.execute(
                    sa.select(s.blobs.c.id)
                    .where(
                        s.blobs.c.storage_class.in_(list(hot_classes)),
                        s.blobs.c.id > after_blob_id,
                    )
                    .order_by(s.blobs.c.id)
                    .limit(limit)
                ).scalars()
            ]
            if not blob_ids:
                return [], None
            object_ids: set[int] = set()
            for chunk in _chunks(blob_ids):
                object_ids.update(
                    int(o)
                    for o in conn.execute(
                        sa.select(s.segments.c.object_id).where(s.segments.c.blob_id.in_(chunk))
                    ).scalars()
                )
            records: list[ObjectRecord] = []
            core = self._core()
            for chunk in _chunks(sorted(object_ids)):
                query = sa.select(*_OBJECT_COLUMNS).where(s.objects.c.id.in_(chunk))
                if created_before is not None:
                    query = query.where(
                        sa.or_(
                            s.objects.c.created_at < created_before,
                            s.objects.c.storage_class.in_(list(cold_classes)),
                        )
                    )
                rows = conn.execute(query.order_by(s.objects.c.id)).all()
                records.extend(_object(row, core._segments(conn, row.id)) for row in rows)
            more = len(blob_ids) == limit
            return records, blob_ids[-1] if more else None

        return self._read(tx)

    # -- the move to cold storage ------------------------------------------------------------
    def commit_archive(
        self,
        *,
        org_id: int,
        backend: str,
        key: str,
        size: int,
        storage_class: str,
        moves: Sequence[ArchiveMove],
        intent_id: int | None,
        container: NewContainer | None = None,
        from_cold: bool = False,
        now: datetime | None = None,
    ) -> ArchiveResult:
        """Make the newly written blob ``backend``/``key`` hold the segments ``moves`` name,
        in one transaction: insert its blob row (and container row), repoint the segments,
        show objects whose every segment is now cold in ``storage_class``, remove the
        upload intent ``intent_id`` and add garbage intents for the old blobs left
        unreferenced.

        A move whose blob has meanwhile been deleted, declared garbage, or (unless
        ``from_cold``, a container rewrite) archived by someone else is skipped: its bytes
        in the new blob are dead weight, never a second live copy. With ``from_cold``, a
        blob with a client's restore (running, or readable until a later expiry) is skipped
        too. If no move applied, the new blob is itself garbage.
        """
        at = now or datetime.now(UTC)
        core = self._core()
        old_ids = sorted({m.blob_id for m in moves})

        def tx(conn: Connection) -> ArchiveResult:
            live: list[int] = []
            for blob_id in old_ids:
                row = conn.execute(
                    sa.select(s.blobs.c.backend, s.blobs.c.key, s.blobs.c.storage_class)
                    .where(s.blobs.c.id == blob_id)
                    .with_for_update()
                ).first()
                if row is None or (row.storage_class in COLD and not from_cold):
                    continue
                if from_cold:
                    # A client's restored copy is read in place until its expiry: never
                    # move its members out of the restored blob meanwhile.
                    restore = conn.execute(
                        sa.select(restores.c.status, restores.c.expires_at).where(
                            restores.c.blob_id == blob_id
                        )
                    ).first()
                    if restore is not None and (
                        restore.status == RESTORE_ONGOING
                        or restore.expires_at is None
                        or restore.expires_at > at
                    ):
                        continue
                doomed = conn.execute(
                    sa.select(s.intents.c.id)
                    .where(
                        s.intents.c.backend == row.backend,
                        s.intents.c.blob_key == row.key,
                        s.intents.c.reason == "garbage",
                    )
                    .limit(1)
                ).first()
                if doomed is None:
                    live.append(blob_id)
            done = conn.execute(
                s.blobs.insert().values(
                    org_id=org_id,
                    backend=backend,
                    key=key,
                    size=size,
                    storage_class=storage_class,
                    created_at=at,
                )
            )
            assert done.inserted_primary_key is not None
            new_id = int(done.inserted_primary_key[0])
            live_set = set(live)
            holders: set[int] = set()
            for chunk in _chunks(live):
                holders.update(
                    int(o)
                    for o in conn.execute(
                        sa.select(s.segments.c.object_id).where(s.segments.c.blob_id.in_(chunk))
                    ).scalars()
                )
            params = [
                {"old_blob": m.blob_id, "old_offset": m.old_offset, "new_offset": m.new_offset}
                for m in moves
                if m.blob_id in live_set
            ]
            moved = 0
            if params:
                update = (
                    s.segments.update()
                    .where(
                        s.segments.c.blob_id == sa.bindparam("old_blob"),
                        s.segments.c.blob_offset == sa.bindparam("old_offset"),
                    )
                    .values(blob_id=new_id, blob_offset=sa.bindparam("new_offset"))
                )
                for batch in _chunks(params):
                    result = conn.execute(update, list(batch))
                    moved += max(int(result.rowcount), 0)
            archived = 0
            still_hot = (
                sa.select(s.segments.c.id)
                .join(s.blobs, s.blobs.c.id == s.segments.c.blob_id)
                .where(
                    s.segments.c.object_id == s.objects.c.id,
                    s.blobs.c.storage_class.not_in(list(COLD)),
                )
                .exists()
            )
            for chunk in _chunks(sorted(holders)):
                result = conn.execute(
                    s.objects.update()
                    .where(s.objects.c.id.in_(chunk), ~still_hot)
                    .values(storage_class=storage_class)
                )
                archived += max(int(result.rowcount), 0)
            if intent_id is not None:
                conn.execute(s.intents.delete().where(s.intents.c.id == intent_id))
            if container is not None:
                conn.execute(
                    containers.insert().values(
                        blob_id=new_id,
                        org_id=org_id,
                        kind=container.kind,
                        member_count=container.member_count,
                        members_bytes=container.members_bytes,
                        index_offset=container.index_offset,
                        index_length=container.index_length,
                        index_header_mac=container.index_header_mac,
                        created_at=at,
                    )
                )
            garbage = core._collect_garbage(conn, live, at)
            if moved == 0:
                garbage += core._collect_garbage(conn, [new_id], at)
            blob = Blob(
                id=new_id,
                org_id=org_id,
                backend=backend,
                key=key,
                size=size,
                storage_class=storage_class,
                created_at=at,
            )
            return ArchiveResult(blob, moved, archived, garbage)

        return self._write(tx, what=f"archive {key}")

    # -- containers --------------------------------------------------------------------------
    def _container_query(self) -> sa.Select[Any]:
        distinct_members = (
            sa.select(s.segments.c.blob_id, s.segments.c.blob_offset, s.segments.c.sealed_size)
            .join(containers, containers.c.blob_id == s.segments.c.blob_id)
            .distinct()
            .subquery()
        )
        live = (
            sa.select(
                distinct_members.c.blob_id,
                sa.func.sum(distinct_members.c.sealed_size).label("live_bytes"),
            )
            .group_by(distinct_members.c.blob_id)
            .subquery()
        )
        return (
            sa.select(containers, *_blob_columns("b_"), live.c.live_bytes)
            .join(s.blobs, s.blobs.c.id == containers.c.blob_id)
            .outerjoin(live, live.c.blob_id == containers.c.blob_id)
        )

    @staticmethod
    def _container(row: Row[Any]) -> ContainerRecord:
        return ContainerRecord(
            blob=_blob(row, "b_"),
            kind=row.kind,
            member_count=int(row.member_count),
            members_bytes=int(row.members_bytes),
            index_offset=int(row.index_offset),
            index_length=int(row.index_length),
            index_header_mac=bytes(row.index_header_mac),
            created_at=row.created_at,
            rewrite_requested_at=row.rewrite_requested_at,
            live_bytes=int(row.live_bytes or 0),
        )

    def get_container(self, blob_id: int) -> ContainerRecord | None:
        row = self._read(
            lambda conn: conn.execute(
                self._container_query().where(containers.c.blob_id == blob_id)
            ).first()
        )
        return None if row is None else self._container(row)

    def containers_created_before(
        self, before: datetime, *, after_blob_id: int = 0, limit: int = 100
    ) -> list[ContainerRecord]:
        """Containers older than ``before`` (rewrite candidates), by blob id."""
        rows = self._read(
            lambda conn: conn.execute(
                self._container_query()
                .where(containers.c.created_at < before, containers.c.blob_id > after_blob_id)
                .order_by(containers.c.blob_id)
                .limit(limit)
            ).all()
        )
        return [self._container(r) for r in rows]

    def mark_container_rewrite(self, blob_id: int, requested_at: datetime | None) -> None:
        """Record (or with None clear) that a copy to rewrite the container from was asked."""
        self._write(
            lambda conn: conn.execute(
                containers.update()
                .where(containers.c.blob_id == blob_id)
                .values(rewrite_requested_at=requested_at)
            )
        )

    def container_live_members(self, blob_id: int) -> list[LiveMember]:
        """The live members of a container in offset order, one per distinct offset."""
        core = self._core()

        def tx(conn: Connection) -> list[LiveMember]:
            rows = conn.execute(
                sa.select(
                    s.segments.c.object_id,
                    s.segments.c.blob_offset,
                    s.objects.c.bucket_id,
                    sa.type_coerce(s.objects.c.key, sa.LargeBinary).label("key_raw"),
                    s.objects.c.content_type,
                    s.objects.c.modified_at,
                )
                .join(s.objects, s.objects.c.id == s.segments.c.object_id)
                .where(s.segments.c.blob_id == blob_id)
                .order_by(s.segments.c.blob_offset, s.segments.c.object_id)
            ).all()
            members: list[LiveMember] = []
            seen: set[int] = set()
            segments_of: dict[int, tuple[Segment, ...]] = {}
            for row in rows:
                offset = int(row.blob_offset)
                if offset in seen:
                    continue
                seen.add(offset)
                if row.object_id not in segments_of:
                    segments_of[row.object_id] = core._segments(conn, row.object_id)
                segment = next(
                    seg
                    for seg in segments_of[row.object_id]
                    if seg.blob.id == blob_id and seg.blob_offset == offset
                )
                members.append(
                    LiveMember(
                        segment=segment,
                        object_id=int(row.object_id),
                        bucket_id=int(row.bucket_id),
                        key=bytes(row.key_raw).decode("utf-8"),
                        content_type=row.content_type,
                        modified_at=row.modified_at,
                    )
                )
            return members

        return self._read(tx)

    def blob_restore(self, blob_id: int) -> RestoreRecord | None:
        """The restore row of a blob, if any."""
        row = self._read(
            lambda conn: conn.execute(
                _restore_query().where(restores.c.blob_id == blob_id)
            ).first()
        )
        return None if row is None else _restore(row)

    def objects_in_blob(self, blob_id: int, *, limit: int = 1000) -> list[tuple[int, str]]:
        """``(bucket_id, key)`` of the objects stored (partly) in a blob, in key order."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(
                    s.objects.c.bucket_id,
                    sa.type_coerce(s.objects.c.key, sa.LargeBinary).label("key_raw"),
                )
                .where(
                    s.objects.c.id.in_(
                        sa.select(s.segments.c.object_id).where(s.segments.c.blob_id == blob_id)
                    )
                )
                .order_by(s.objects.c.bucket_id, s.objects.c.key)
                .limit(limit)
            ).all()
        )
        return [(int(r.bucket_id), bytes(r.key_raw).decode("utf-8")) for r in rows]

    def purge_expired_restores(self, before: datetime) -> int:
        """Drop finished restore rows whose copy expired before ``before``; returns how many."""

        def tx(conn: Connection) -> int:
            done = conn.execute(
                restores.delete().where(
                    restores.c.status == RESTORE_DONE,
                    restores.c.expires_at.is_not(None),
                    restores.c.expires_at < before,
                )
            )
            return int(done.rowcount)

        return self._write(tx)

    # -- restore spending --------------------------------------------------------------------
    def charge_restore(
        self,
        org_id: int,
        usd: Decimal,
        *,
        budget: Decimal | None,
        since: datetime,
        size: int,
        tier: str,
        requested_by: str,
        detail: str,
        now: datetime | None = None,
    ) -> int:
        """Record a restore's quote against the org's spending; returns the charge id.

        With a ``budget``, raises ``RestoreBudgetExceeded`` (recording nothing) if the
        charges since ``since`` (the start of the month) plus ``usd`` would pass it. The org
        row is locked meanwhile, so two restores cannot both take the last of a budget.
        """
        if usd < 0:
            raise InvalidArgument("a restore charge cannot be negative")
        at = now or datetime.now(UTC)

        def tx(conn: Connection) -> int:
            name = conn.execute(
                sa.select(s.orgs.c.name).where(s.orgs.c.id == org_id).with_for_update()
            ).scalar()
            if budget is not None:
                spent = Decimal(
                    conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(restore_charges.c.usd), 0)).where(
                            restore_charges.c.org_id == org_id, restore_charges.c.at >= since
                        )
                    ).scalar()
                    or 0
                )
                if spent + usd > budget:
                    raise RestoreBudgetExceeded(
                        _usd(usd), name or org_id, _usd(max(budget - spent, Decimal(0))), _usd(budget)
                    )
            done = conn.execute(
                restore_charges.insert().values(
                    org_id=org_id,
                    at=at,
                    usd=usd,
                    bytes=size,
                    tier=tier,
                    requested_by=requested_by,
                    detail=detail[:1100],
                )
            )
            assert done.inserted_primary_key is not None
            return int(done.inserted_primary_key[0])

        return self._write(tx, what="restore charge")

    def refund_restore(self, charge_id: int) -> None:
        """Drop a charge whose restore did not start after all."""
        self._write(
            lambda conn: conn.execute(
                restore_charges.delete().where(restore_charges.c.id == charge_id)
            )
        )

    def restore_spend(self, org_id: int, since: datetime) -> Decimal:
        """What the org's restores started since ``since`` were quoted, in USD."""
        value = self._read(
            lambda conn: conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(restore_charges.c.usd), 0)).where(
                    restore_charges.c.org_id == org_id, restore_charges.c.at >= since
                )
            ).scalar()
        )
        return Decimal(value or 0)

    # -- status ------------------------------------------------------------------------------
    def tiering_counts(self, *, now: datetime | None = None) -> TieringCounts:
        """Counts for ``coolstorage tier status`` (full scans: for operators, not requests)."""
        at = now or datetime.now(UTC)

        def tx(conn: Connection) -> TieringCounts:
            by_class = {
                r.storage_class: (int(r.n), int(r.total or 0))
                for r in conn.execute(
                    sa.select(
                        s.objects.c.storage_class,
                        sa.func.count().label("n"),
                        sa.func.sum(s.objects.c.size).label("total"),
                    ).group_by(s.objects.c.storage_class)
                ).all()
            }

            def objects_with(*where: Any) -> int:
                return int(
                    conn.execute(
                        sa.select(sa.func.count(sa.distinct(s.segments.c.object_id)))
                        .select_from(s.segments)
                        .join(restores, restores.c.blob_id == s.segments.c.blob_id)
                        .where(*where)
                    ).scalar()
                    or 0
                )

            restoring = objects_with(restores.c.status == RESTORE_ONGOING)
            restored = objects_with(restores.c.status == RESTORE_DONE, restores.c.expires_at > at)
            staged = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(staged_blobs.c.size))
            ).one()
            hot = conn.execute(
                sa.select(sa.func.count(), sa.func.sum(s.blobs.c.size)).where(
                    s.blobs.c.storage_class.not_in(list(COLD)), s.blobs.c.backend != "staging"
                )
            ).one()
            box = conn.execute(self._container_query()).all()
            ongoing = conn.execute(
                sa.select(sa.func.count()).where(restores.c.status == RESTORE_ONGOING)
            ).scalar()
            return TieringCounts(
                objects_by_class=by_class,
                restoring_objects=restoring,
                restored_objects=restored,
                staged_blobs=int(staged[0] or 0),
                staged_bytes=int(staged[1] or 0),
                hot_blobs=int(hot[0] or 0),
                hot_bytes=int(hot[1] or 0),
                containers=len(box),
                container_bytes=sum(int(r.b_size) for r in box),
                container_live_bytes=sum(int(r.live_bytes or 0) for r in box),
                container_members_bytes=sum(int(r.members_bytes) for r in box),
                ongoing_restores=int(ongoing or 0),
            )

        return self._read(tx)


def _usd(value: Decimal) -> str:
    """An amount for a message: cents, or up to six decimals for smaller amounts."""
    text = f"{value.quantize(Decimal('0.000001')):f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"
