"""The Catalog: the only place SQL lives.

Every method is one short transaction on a pooled connection and is safe to call from many
request threads at once. Database errors are translated into :mod:`gateway.errors`
(``AlreadyExists`` for unique violations, ``CatalogError`` for connectivity) here, once.

Conventions:

- Keys are ``str``; they are stored as their UTF-8 bytes (at most 1,024), so listings come
  back in S3's (bytewise) order on every engine. A key that is too long or cannot be
  encoded is ``InvalidName``.
- Times are timezone-aware UTC on the way out; naive times passed in are taken as UTC.
- Writes check what they depend on inside their own transaction (the bucket still exists,
  the preconditions, the quota), locking the rows involved on MySQL/MariaDB; SQLite
  serialises writers. Conflicts (deadlocks, a concurrent insert of the same key) are retried
  from the start of the transaction.
- Orgs, users, memberships, access keys and buckets are cached for at most ``cache_ttl``
  seconds (30 by default); a change made through this instance drops its entries at once,
  a change made by another replica shows within ``cache_ttl``. Objects are never cached.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql as mysql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog.admin import AdminQueries
from catalog.base import CatalogBase
from catalog.dav import DavQueries
from catalog.db import WRITE_OPTION
from catalog.identity import IdentityQueries
from catalog.multipart import MultipartQueries
from catalog.placement import PlacementQueries
from catalog.prepared import Prepared
from catalog.records import (
    AccessKey,
    AuditEntry,
    Blob,
    Bucket,
    CommitResult,
    Intent,
    ListPage,
    Membership,
    NewObject,
    NewSegment,
    ObjectRecord,
    Org,
    Segment,
    UsageEvent,
    User,
)
from catalog.retention import REASON_DELETE, REASON_MOVE, REASON_OVERWRITE, RetentionQueries
from catalog.rows import access_key as _access_key
from catalog.rows import blob as _blob
from catalog.rows import blob_columns as _blob_columns
from catalog.rows import chunks as _chunks
from catalog.rows import json_dict as _json_dict
from catalog.rows import now as _now
from catalog.rows import user as _user
from catalog.tables_multipart import multipart_parts
from catalog.tables_tiering import staged_blobs
from catalog.tiering import TieringQueries
from gateway.errors import (
    AlreadyExists,
    BucketNotEmpty,
    BucketNotFound,
    CatalogError,
    InvalidArgument,
    InvalidName,
    ObjectNotFound,
    PreconditionFailed,
    QuotaExceeded,
)

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Intent reasons the catalog itself writes.
INTENT_UPLOAD = "upload"
INTENT_GARBAGE = "garbage"

#: Default of optional arguments that may also be set to None.
_UNCHANGED: Any = object()

#: The largest batch a listing fetches in one query.
_MAX_BATCH = 1000
#: Rows per statement in bulk operations.
_CHUNK = 500

_OBJECT_COLUMNS = (
    s.objects.c.id,
    s.objects.c.bucket_id,
    sa.type_coerce(s.objects.c.key, sa.LargeBinary).label("key_raw"),
    s.objects.c.size,
    s.objects.c.etag,
    s.objects.c.sha256,
    s.objects.c.content_type,
    # JSON is decoded only for rows that become records (a listing skips many rows).
    sa.type_coerce(s.objects.c.user_metadata, sa.Text).label("user_metadata"),
    sa.type_coerce(s.objects.c.headers, sa.Text).label("headers"),
    s.objects.c.storage_class,
    s.objects.c.sse_recipient,
    s.objects.c.created_at,
    s.objects.c.modified_at,
    s.objects.c.last_access,
)


# -- the object write path's statements ---------------------------------------------------
# Built and compiled once, and run on the driver's cursor (catalog/prepared.py): through
# Connection.execute, their Python cost was most of a small PUT's.

_LOCK_BUCKET_ORG = Prepared(
    sa.select(s.buckets.c.org_id)
    .where(s.buckets.c.id == sa.bindparam("bucket_id"))
    .with_for_update(read=True)
)
_object_row_query = sa.select(*_OBJECT_COLUMNS).where(
    s.objects.c.bucket_id == sa.bindparam("bucket_id"),
    s.objects.c.key == sa.bindparam("key", type_=s.KeyBytes()),
)
_OBJECT_ROW = Prepared(_object_row_query)
_OBJECT_ROW_LOCKED = Prepared(_object_row_query.with_for_update())
_BLOB_COLUMNS = (
    s.blobs.c.id,
    s.blobs.c.org_id,
    s.blobs.c.backend,
    s.blobs.c.key,
    s.blobs.c.size,
    s.blobs.c.storage_class,
    s.blobs.c.created_at,
)
_BLOB_BY_ID_LOCKED = Prepared(
    sa.select(*_BLOB_COLUMNS).where(s.blobs.c.id == sa.bindparam("blob_id")).with_for_update()
)
_BLOB_BY_KEY = Prepared(
    sa.select(*_BLOB_COLUMNS).where(
        s.blobs.c.backend == sa.bindparam("backend"),
        s.blobs.c.key == sa.bindparam("blob_key", type_=s.KeyBytes()),
    )
)
_GARBAGE_INTENT = Prepared(
    sa.select(s.intents.c.id)
    .where(
        s.intents.c.backend == sa.bindparam("backend"),
        s.intents.c.blob_key == sa.bindparam("blob_key", type_=s.KeyBytes()),
        s.intents.c.reason == INTENT_GARBAGE,
    )
    .limit(1)
)
_INSERT_BLOB = Prepared(s.blobs.insert())
_INSERT_OBJECT = Prepared(s.objects.insert())
# (Bound parameters of an UPDATE may not share a column's name: hence ``object_id``.)
_UPDATE_OBJECT = Prepared(s.objects.update().where(s.objects.c.id == sa.bindparam("object_id")))
_INSERT_SEGMENTS = Prepared(s.segments.insert())
_INSERT_STAGED = Prepared(staged_blobs.insert())
_add_stored_bytes = (
    s.orgs.update()
    .where(s.orgs.c.id == sa.bindparam("org_id"))
    .values(stored_bytes=s.orgs.c.stored_bytes + sa.bindparam("delta", type_=sa.BigInteger))
)
# Growing within the quota: no row matches (rowcount 0) when the org would pass it.
_grow_stored_bytes = _add_stored_bytes.where(
    sa.or_(
        s.orgs.c.quota_bytes.is_(None),
        s.orgs.c.stored_bytes + sa.bindparam("delta", type_=sa.BigInteger)
        <= s.orgs.c.quota_bytes,
    )
)
_ADD_STORED_BYTES = Prepared(_add_stored_bytes)
_GROW_STORED_BYTES = Prepared(_grow_stored_bytes)
_STORED_BYTES = Prepared(
    sa.select(s.orgs.c.stored_bytes).where(s.orgs.c.id == sa.bindparam("org_id"))
)
# SQLite (3.35+) returns the new figure from the UPDATE itself; MariaDB has no UPDATE ...
# RETURNING, so there it stays an UPDATE and a SELECT of the row this transaction locked.
_ADD_STORED_BYTES_RETURNING = Prepared(_add_stored_bytes.returning(s.orgs.c.stored_bytes))
_GROW_STORED_BYTES_RETURNING = Prepared(_grow_stored_bytes.returning(s.orgs.c.stored_bytes))
_sqlite_usage = sqlite_dialect.insert(s.usage)
_mysql_usage = mysql_dialect.insert(s.usage)
#: Hourly usage upserts: ``count`` and ``bytes`` are added to the hour's row.
_UPSERT_USAGE = {
    "sqlite": Prepared(
        _sqlite_usage.on_conflict_do_update(
            index_elements=["org_id", "hour", "bucket_id", "user_id", "action"],
            set_={
                "count": s.usage.c.count + _sqlite_usage.excluded["count"],
                "bytes": s.usage.c.bytes + _sqlite_usage.excluded.bytes,
            },
        )
    ),
    "mysql": Prepared(
        _mysql_usage.on_duplicate_key_update(
            count=s.usage.c.count + _mysql_usage.inserted["count"],
            bytes=s.usage.c.bytes + _mysql_usage.inserted.bytes,
        )
    ),
}


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def encode_key(key: str) -> bytes:
    """A key's stored form: its UTF-8 bytes; ``InvalidName`` if empty, not encodable or
    longer than 1,024 bytes (S3's limit)."""
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"{key!r} is not valid Unicode") from None
    if not raw:
        raise InvalidName("an object key cannot be empty")
    if len(raw) > s.MAX_KEY_BYTES:
        raise InvalidName(f"the key is {len(raw)} bytes long; the limit is {s.MAX_KEY_BYTES}")
    return raw


def _encode_prefix(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(f"{value!r} is not valid Unicode") from None


def _json_safe(details: Mapping[str, object]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(dict(details), default=str))
    return result


# -- rows to records ----------------------------------------------------------------------


def _org(row: Row[Any]) -> Org:
    return Org(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        recipient=row.recipient,
        identity_wrapped=bytes(row.identity_wrapped),
        identity_key_id=row.identity_key_id,
        quota_bytes=row.quota_bytes,
        stored_bytes=int(row.stored_bytes),
        settings=dict(row.settings or {}),
    )


def _bucket(row: Row[Any]) -> Bucket:
    return Bucket(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        region=row.region,
        backend=row.backend,
        created_at=row.created_at,
        vault_recipient=row.vault_recipient,
        settings=dict(row.settings or {}),
    )


def _intent(row: Row[Any]) -> Intent:
    return Intent(
        id=row.id,
        backend=row.backend,
        blob_key=row.blob_key,
        created_at=row.created_at,
        reason=row.reason,
    )


def _as_stored(at: datetime) -> datetime:
    """``at`` as a UTCDateTime column gives it back: aware UTC (naive is taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _as_json(value: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON column's dict as it reads back (plain strings pass without a round trip)."""
    if all(type(k) is str and type(v) is str for k, v in value.items()):
        return dict(value)
    result: dict[str, Any] = json.loads(json.dumps(dict(value)))
    return result


def _committed_object(
    object_id: int, new: NewObject, now: datetime, blobs: Sequence[Blob]
) -> ObjectRecord:
    """The record a read of the object ``commit_object`` just wrote would return."""
    segments = [
        Segment(
            part_number=seg.part_number,
            blob=blob,
            blob_offset=int(seg.blob_offset),
            sealed_size=int(seg.sealed_size),
            plain_size=int(seg.plain_size),
            md5=seg.md5,
            sha256=seg.sha256,
            age_header=bytes(seg.age_header),
            payload_offset=seg.payload_offset,
            seek_table=bytes(seg.seek_table),
            header_mac=bytes(seg.header_mac),
            recipient=seg.recipient,
        )
        for seg, blob in zip(new.segments, blobs, strict=True)
    ]
    # Reads order segments by part (unique per object), then offset.
    segments.sort(key=lambda seg: (seg.part_number, seg.blob_offset))
    return ObjectRecord(
        id=object_id,
        bucket_id=new.bucket_id,
        key=new.key,
        size=int(new.size),
        etag=new.etag,
        sha256=new.sha256,
        content_type=new.content_type,
        user_metadata=_as_json(new.user_metadata),
        created_at=_as_stored(now),
        modified_at=_as_stored(new.modified_at),
        storage_class=new.storage_class,
        headers=_as_json(new.headers),
        segments=tuple(segments),
        sse_recipient=new.sse_recipient,
        last_access=None,
    )


def _object(row: Row[Any], segments: tuple[Segment, ...] = ()) -> ObjectRecord:
    return ObjectRecord(
        id=row.id,
        bucket_id=row.bucket_id,
        key=bytes(row.key_raw).decode("utf-8"),
        size=int(row.size),
        etag=row.etag,
        sha256=row.sha256,
        content_type=row.content_type,
        user_metadata=_json_dict(row.user_metadata),
        created_at=row.created_at,
        modified_at=row.modified_at,
        storage_class=row.storage_class,
        headers=_json_dict(row.headers),
        segments=segments,
        sse_recipient=row.sse_recipient,
        last_access=row.last_access,
    )


class Catalog(
    IdentityQueries, MultipartQueries, DavQueries, TieringQueries, PlacementQueries, AdminQueries,
    RetentionQueries, CatalogBase,
):
    """Metadata of orgs, users, buckets, objects, blobs, intents, usage and leases.

    The core (orgs, buckets, objects, blobs, intents, usage, leases, audit) is here; each
    later area keeps its queries in its own mixin module (``catalog/identity.py``,
    ``catalog/multipart.py``, ``catalog/dav.py``, ``catalog/tiering.py``) over the shared
    plumbing of :class:`catalog.base.CatalogBase`.
    """

    # -- lifecycle -------------------------------------------------------------------------
    def _alembic_config(self) -> Any:
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        return config

    def upgrade(self) -> None:
        """Run the Alembic migrations up to head (``coolstorage db upgrade``)."""
        from alembic import command

        config = self._alembic_config()

        def migrate(conn: Connection) -> None:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

        if self._sqlite:
            # SQLite migrations may rebuild tables ("batch" mode); foreign keys must be off
            # while they do, and the pragma only works outside a transaction.
            with self._engine.connect() as conn:
                raw: Any = conn.connection.driver_connection
                raw.execute("PRAGMA foreign_keys=OFF")
                try:
                    conn.execution_options(**{WRITE_OPTION: True})
                    with conn.begin():
                        migrate(conn)
                finally:
                    raw.execute("PRAGMA foreign_keys=ON")
        else:
            self._write(migrate)

    def head_revision(self) -> str:
        """The newest migration this code knows."""
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config()).get_current_head()
        assert head is not None
        return head

    def current_revision(self) -> str | None:
        """The migration the database is at (None for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        def read(conn: Connection) -> str | None:
            return MigrationContext.configure(conn).get_current_revision()

        return self._read(read)

    def check(self) -> None:
        """Connect and verify the schema is at head; ``CatalogError`` with one clear line if
        the database is unreachable or needs ``coolstorage db upgrade``."""
        head = self.head_revision()
        current = self.current_revision()
        if current == head:
            return
        if current is None:
            raise CatalogError(
                f"the catalog database at {self.display_url} is empty: "
                "run `coolstorage db upgrade`"
            )
        from alembic.script import ScriptDirectory

        known = ScriptDirectory.from_config(self._alembic_config())
        try:
            known.get_revision(current)
        except Exception:
            raise CatalogError(
                f"the catalog database at {self.display_url} is at revision {current}, "
                "newer than this gateway knows: upgrade the gateway"
            ) from None
        raise CatalogError(
            f"the catalog database at {self.display_url} is at revision {current}, "
            f"this gateway needs {head}: run `coolstorage db upgrade`"
        )

    def close(self) -> None:
        """Close the pooled connections; the catalog must not be used afterwards."""
        self._cache.clear()
        if self._group_commit is not None:
            self._group_commit.close()
        self._engine.dispose()

    # -- orgs and users (identity grows these) ---------------------------------------------
    def create_org(
        self, name: str, *, recipient: str, identity_wrapped: bytes, identity_key_id: str
    ) -> Org:
        """``AlreadyExists`` if an org of that name exists."""
        now = _now()

        def tx(conn: Connection) -> Org:
            conn.execute(
                s.orgs.insert().values(
                    name=name,
                    recipient=recipient,
                    identity_wrapped=identity_wrapped,
                    identity_key_id=identity_key_id,
                    stored_bytes=0,
                    created_at=now,
                    settings={},
                )
            )
            row = conn.execute(sa.select(s.orgs).where(s.orgs.c.name == name)).one()
            return _org(row)

        return self._write(tx, what=f"org {name}")

    def get_org(self, name: str) -> Org | None:
        org_id = self._cache.get(("org-name", name))
        if org_id is not None:
            return self.get_org_by_id(org_id)
        row = self._read(
            lambda conn: conn.execute(sa.select(s.orgs).where(s.orgs.c.name == name)).first()
        )
        if row is None:
            return None
        org = _org(row)
        self._cache.put(("org-name", name), org.id)
        self._cache.put(("org", org.id), org)
        return org

    def get_org_by_id(self, org_id: int) -> Org | None:
        def load() -> Org | None:
            row = self._read(
                lambda conn: conn.execute(sa.select(s.orgs).where(s.orgs.c.id == org_id)).first()
            )
            return None if row is None else _org(row)

        org: Org | None = self._cache.get_or_load(("org", org_id), load)
        return org

    def list_orgs(self) -> list[Org]:
        rows = self._read(
            lambda conn: conn.execute(sa.select(s.orgs).order_by(s.orgs.c.name)).all()
        )
        return [_org(r) for r in rows]

    def _update_org(self, org_id: int, **values: Any) -> None:
        def tx(conn: Connection) -> None:
            done = conn.execute(s.orgs.update().where(s.orgs.c.id == org_id).values(**values))
            if done.rowcount == 0:
                raise InvalidArgument(f"no org with id {org_id}")

        self._write(tx)
        self._cache.invalidate(("org", org_id))

    def set_org_identity(self, org_id: int, *, identity_wrapped: bytes, key_id: str) -> None:
        """Replace the wrapped identity (master key rotation); the recipient never changes."""
        self._update_org(org_id, identity_wrapped=identity_wrapped, identity_key_id=key_id)

    def set_org_quota(self, org_id: int, quota_bytes: int | None) -> None:
        """Set (or with None remove) the org's quota; existing data is never removed, writes
        that grow the org beyond it are refused."""
        self._update_org(org_id, quota_bytes=quota_bytes)

    def update_org_settings(self, org_id: int, changes: Mapping[str, Any]) -> Org:
        """Merge ``changes`` into the org's settings (a None value removes the key)."""

        def tx(conn: Connection) -> Org:
            row = conn.execute(
                sa.select(s.orgs).where(s.orgs.c.id == org_id).with_for_update()
            ).first()
            if row is None:
                raise InvalidArgument(f"no org with id {org_id}")
            settings = _merge(row.settings, changes)
            conn.execute(s.orgs.update().where(s.orgs.c.id == org_id).values(settings=settings))
            return _org(conn.execute(sa.select(s.orgs).where(s.orgs.c.id == org_id)).one())

        org = self._write(tx)
        self._cache.invalidate(("org", org_id))
        return org

    def get_user(self, name: str) -> User | None:
        def load() -> User | None:
            row = self._read(
                lambda conn: conn.execute(
                    sa.select(s.users).where(s.users.c.name == name)
                ).first()
            )
            return None if row is None else _user(row)

        user: User | None = self._cache.get_or_load(("user-name", name), load)
        return user

    def get_user_by_id(self, user_id: int) -> User | None:
        def load() -> User | None:
            row = self._read(
                lambda conn: conn.execute(
                    sa.select(s.users).where(s.users.c.id == user_id)
                ).first()
            )
            return None if row is None else _user(row)

        user: User | None = self._cache.get_or_load(("user", user_id), load)
        return user

    def list_users(self) -> list[User]:
        rows = self._read(
            lambda conn: conn.execute(sa.select(s.users).order_by(s.users.c.name)).all()
        )
        return [_user(r) for r in rows]

    def update_user(
        self,
        user_id: int,
        *,
        password_hash: str | None = _UNCHANGED,
        disabled: bool | None = None,
        is_operator: bool | None = None,
    ) -> User:
        """Change a user's password hash (None removes it), disabled or operator flag; only
        the arguments given change. ``InvalidArgument`` if there is no such user."""
        values: dict[str, Any] = {}
        if password_hash is not _UNCHANGED:
            values["password_hash"] = password_hash
        if disabled is not None:
            values["disabled"] = disabled
        if is_operator is not None:
            values["is_operator"] = is_operator

        def tx(conn: Connection) -> User:
            if values:
                conn.execute(s.users.update().where(s.users.c.id == user_id).values(**values))
            row = conn.execute(sa.select(s.users).where(s.users.c.id == user_id)).first()
            if row is None:
                raise InvalidArgument(f"no user with id {user_id}")
            return _user(row)

        user = self._write(tx)
        self._cache.invalidate(("user", user_id))
        self._cache.invalidate(("user-name", user.name))
        return user

    def add_membership(self, org_id: int, user_id: int, role: str) -> Membership:
        """Add or change a membership (idempotent)."""

        def tx(conn: Connection) -> Membership:
            where = sa.and_(s.memberships.c.org_id == org_id, s.memberships.c.user_id == user_id)
            found = conn.execute(
                sa.select(s.memberships.c.role).where(where).with_for_update()
            ).first()
            if found is None:
                conn.execute(
                    s.memberships.insert().values(org_id=org_id, user_id=user_id, role=role)
                )
            elif found.role != role:
                conn.execute(s.memberships.update().where(where).values(role=role))
            return Membership(org_id=org_id, user_id=user_id, role=role)

        membership = self._write(tx, what="membership", retry_unique=True)
        self._cache.invalidate(("members", user_id))
        return membership

    def remove_membership(self, org_id: int, user_id: int) -> None:
        """Remove a membership (no error if there is none)."""
        self._write(
            lambda conn: conn.execute(
                s.memberships.delete().where(
                    s.memberships.c.org_id == org_id, s.memberships.c.user_id == user_id
                )
            )
        )
        self._cache.invalidate(("members", user_id))

    def memberships_of(self, user_id: int) -> list[Membership]:
        def load() -> list[Membership]:
            rows = self._read(
                lambda conn: conn.execute(
                    sa.select(s.memberships)
                    .where(s.memberships.c.user_id == user_id)
                    .order_by(s.memberships.c.org_id)
                ).all()
            )
            return [Membership(org_id=r.org_id, user_id=r.user_id, role=r.role) for r in rows]

        members: list[Membership] = self._cache.get_or_load(("members", user_id), load)
        return list(members)

    def members_of(self, org_id: int) -> list[Membership]:
        """The org's memberships, by user id (never cached)."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(s.memberships)
                .where(s.memberships.c.org_id == org_id)
                .order_by(s.memberships.c.user_id)
            ).all()
        )
        return [Membership(org_id=r.org_id, user_id=r.user_id, role=r.role) for r in rows]

    def create_access_key(
        self,
        access_key_id: str,
        *,
        user_id: int,
        org_id: int,
        secret_wrapped: bytes,
        secret_key_id: str,
    ) -> AccessKey:
        """``AlreadyExists`` if the id is taken."""
        now = _now()

        def tx(conn: Connection) -> AccessKey:
            conn.execute(
                s.access_keys.insert().values(
                    access_key_id=access_key_id,
                    user_id=user_id,
                    org_id=org_id,
                    secret_wrapped=secret_wrapped,
                    secret_key_id=secret_key_id,
                    created_at=now,
                )
            )
            return _access_key(
                conn.execute(
                    sa.select(s.access_keys).where(s.access_keys.c.access_key_id == access_key_id)
                ).one()
            )

        return self._write(tx, what=f"access key {access_key_id}")

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        """The key, revoked or not (callers check ``revoked_at``); cached at most
        ``cache_ttl`` seconds, so a revocation elsewhere shows within that time."""

        def load() -> AccessKey | None:
            row = self._read(
                lambda conn: conn.execute(
                    sa.select(s.access_keys).where(s.access_keys.c.access_key_id == access_key_id)
                ).first()
            )
            return None if row is None else _access_key(row)

        key: AccessKey | None = self._cache.get_or_load(("access-key", access_key_id), load)
        return key

    def list_access_keys(self, user_id: int | None = None) -> list[AccessKey]:
        query = sa.select(s.access_keys).order_by(s.access_keys.c.access_key_id)
        if user_id is not None:
            query = query.where(s.access_keys.c.user_id == user_id)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [_access_key(r) for r in rows]

    def revoke_access_key(self, access_key_id: str) -> None:
        """Mark the key revoked (idempotent; the first revocation time is kept)."""
        now = _now()
        self._write(
            lambda conn: conn.execute(
                s.access_keys.update()
                .where(
                    s.access_keys.c.access_key_id == access_key_id,
                    s.access_keys.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        )
        self._cache.invalidate(("access-key", access_key_id))

    def set_access_key_secret(
        self, access_key_id: str, *, secret_wrapped: bytes, secret_key_id: str
    ) -> None:
        """Replace the wrapped secret (master key rotation); the secret itself is unchanged."""
        self._write(
            lambda conn: conn.execute(
                s.access_keys.update()
                .where(s.access_keys.c.access_key_id == access_key_id)
                .values(secret_wrapped=secret_wrapped, secret_key_id=secret_key_id)
            )
        )
        self._cache.invalidate(("access-key", access_key_id))

    # -- buckets ---------------------------------------------------------------------------
    def create_bucket(
        self,
        org_id: int,
        name: str,
        *,
        region: str,
        backend: str,
        vault_recipient: str | None = None,
    ) -> Bucket:
        """``AlreadyExists`` if the org has a bucket of that name."""
        now = _now()

        def tx(conn: Connection) -> Bucket:
            conn.execute(
                s.buckets.insert().values(
                    org_id=org_id,
                    name=name,
                    region=region,
                    backend=backend,
                    vault_recipient=vault_recipient,
                    created_at=now,
                    settings={},
                )
            )
            row = conn.execute(
                sa.select(s.buckets).where(s.buckets.c.org_id == org_id, s.buckets.c.name == name)
            ).one()
            return _bucket(row)

        return self._write(tx, what=f"bucket {name}")

    def get_bucket(self, org_id: int, name: str) -> Bucket | None:
        """The bucket (cached at most ``cache_ttl`` seconds: writes check again in their
        own transaction, so a bucket deleted elsewhere is never written to)."""
        bucket_id = self._cache.get(("bucket-name", org_id, name))
        if bucket_id is not None:
            cached = self.get_bucket_by_id(bucket_id)
            if cached is not None and cached.name == name and cached.org_id == org_id:
                return cached
        row = self._read(
            lambda conn: conn.execute(
                sa.select(s.buckets).where(s.buckets.c.org_id == org_id, s.buckets.c.name == name)
            ).first()
        )
        if row is None:
            return None
        bucket = _bucket(row)
        self._cache.put(("bucket-name", org_id, name), bucket.id)
        self._cache.put(("bucket", bucket.id), bucket)
        return bucket

    def get_bucket_by_id(self, bucket_id: int) -> Bucket | None:
        def load() -> Bucket | None:
            row = self._read(
                lambda conn: conn.execute(
                    sa.select(s.buckets).where(s.buckets.c.id == bucket_id)
                ).first()
            )
            return None if row is None else _bucket(row)

        bucket: Bucket | None = self._cache.get_or_load(("bucket", bucket_id), load)
        return bucket

    def list_buckets(self, org_id: int) -> list[Bucket]:
        """The org's buckets by name."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(s.buckets).where(s.buckets.c.org_id == org_id).order_by(s.buckets.c.name)
            ).all()
        )
        return [_bucket(r) for r in rows]

    def update_bucket_settings(self, bucket_id: int, changes: Mapping[str, Any]) -> Bucket:
        """Merge ``changes`` into the bucket's settings (a None value removes the key)."""

        def tx(conn: Connection) -> Bucket:
            row = conn.execute(
                sa.select(s.buckets).where(s.buckets.c.id == bucket_id).with_for_update()
            ).first()
            if row is None:
                raise BucketNotFound(bucket_id)
            settings = _merge(row.settings, changes)
            conn.execute(
                s.buckets.update().where(s.buckets.c.id == bucket_id).values(settings=settings)
            )
            return _bucket(
                conn.execute(sa.select(s.buckets).where(s.buckets.c.id == bucket_id)).one()
            )

        bucket = self._write(tx)
        self._cache.invalidate(("bucket", bucket_id))
        return bucket

    def delete_bucket(self, bucket_id: int) -> None:
        """``BucketNotEmpty`` if any object is left, or any deleted version its retention
        window keeps; ``BucketNotFound`` if there is no such bucket."""

        def tx(conn: Connection) -> Row[Any]:
            row = conn.execute(
                sa.select(s.buckets).where(s.buckets.c.id == bucket_id).with_for_update()
            ).first()
            if row is None:
                raise BucketNotFound(bucket_id)
            left = conn.execute(
                sa.select(s.objects.c.id).where(s.objects.c.bucket_id == bucket_id).limit(1)
            ).first()
            if left is not None:
                raise BucketNotEmpty(row.name)
            kept = self._versions_protected(conn, bucket_id, row.settings)
            if kept:
                raise BucketNotEmpty(
                    f"{row.name} (its retention window keeps {kept} deleted versions; "
                    "recover or wait for them)"
                )
            conn.execute(s.buckets.delete().where(s.buckets.c.id == bucket_id))
            return row

        row = self._write(tx)
        self._cache.invalidate(("bucket", bucket_id))
        self._cache.invalidate(("bucket-name", row.org_id, row.name))

    # -- objects ---------------------------------------------------------------------------
    def _lock_bucket_org(self, conn: Connection, bucket_id: int) -> int:
        """The bucket's org id, with the bucket row share-locked against deletion."""
        org_id = _LOCK_BUCKET_ORG.run(conn, {"bucket_id": bucket_id}).scalar()
        if org_id is None:
            raise BucketNotFound(bucket_id)
        return int(org_id)

    def _object_row(
        self, conn: Connection, bucket_id: int, key: bytes, *, lock: bool = False
    ) -> Any:
        """The object's row (the columns of ``_OBJECT_COLUMNS`` by name), or None."""
        query = _OBJECT_ROW_LOCKED if lock else _OBJECT_ROW
        return query.run(conn, {"bucket_id": bucket_id, "key": key}).first()

    def _segments(self, conn: Connection, object_id: int) -> tuple[Segment, ...]:
        rows = conn.execute(
            sa.select(
                s.segments,
                *_blob_columns("blob_", with_id=False),
            )
            .join(s.blobs, s.blobs.c.id == s.segments.c.blob_id)
            .where(s.segments.c.object_id == object_id)
            .order_by(s.segments.c.part_number, s.segments.c.blob_offset)
        ).all()
        return tuple(
            Segment(
                part_number=r.part_number,
                blob=_blob(r, "blob_"),
                blob_offset=int(r.blob_offset),
                sealed_size=int(r.sealed_size),
                plain_size=int(r.plain_size),
                md5=r.md5,
                sha256=r.sha256,
                age_header=bytes(r.age_header),
                payload_offset=r.payload_offset,
                seek_table=bytes(r.seek_table),
                header_mac=bytes(r.header_mac),
                recipient=r.recipient,
            )
            for r in rows
        )

    def _full_object(self, conn: Connection, row: Row[Any]) -> ObjectRecord:
        return _object(row, self._segments(conn, row.id))

    def _drop_segments(self, conn: Connection, object_id: int) -> list[int]:
        """Delete an object's segments; return the blob ids they used."""
        blob_ids = [
            int(b)
            for b in conn.execute(
                sa.select(s.segments.c.blob_id)
                .where(s.segments.c.object_id == object_id)
                .distinct()
            ).scalars()
        ]
        conn.execute(s.segments.delete().where(s.segments.c.object_id == object_id))
        return blob_ids

    def _drop_object(self, conn: Connection, object_id: int) -> list[int]:
        """Delete an object row and its segments; return the blob ids they used."""
        blob_ids = self._drop_segments(conn, object_id)
        conn.execute(s.objects.delete().where(s.objects.c.id == object_id))
        return blob_ids

    def _collect_garbage(
        self, conn: Connection, blob_ids: Iterable[int], now: datetime
    ) -> list[Intent]:
        """Garbage intents for those of ``blob_ids`` no segment references any more.

        Each blob row is locked first, and a copy that reuses a blob locks it too, so a
        blob is never declared garbage while a concurrent commit starts to reference it.
        """
        garbage: list[Intent] = []
        for blob_id in sorted(set(blob_ids)):
            blob = conn.execute(
                sa.select(s.blobs.c.backend, s.blobs.c.key)
                .where(s.blobs.c.id == blob_id)
                .with_for_update()
            ).first()
            if blob is None or self._blob_in_use(conn, blob_id):
                continue
            garbage.append(self._insert_intent(conn, blob.backend, blob.key, INTENT_GARBAGE, now))
        return garbage

    def _blob_in_use(self, conn: Connection, blob_id: int) -> bool:
        """True if a live object's segment, a retained version or an upload's part uses
        the blob: the one definition of "referenced" every garbage decision asks."""
        if conn.execute(
            sa.select(s.segments.c.id).where(s.segments.c.blob_id == blob_id).limit(1)
        ).first() is not None:
            return True
        if conn.execute(
            sa.select(multipart_parts.c.upload_pk)
            .where(multipart_parts.c.blob_id == blob_id)
            .limit(1)
        ).first() is not None:
            return True
        return self._blob_retained(conn, blob_id)

    def _insert_intent(
        self, conn: Connection, backend: str, blob_key: str, reason: str, now: datetime
    ) -> Intent:
        done = conn.execute(
            s.intents.insert().values(
                backend=backend, blob_key=blob_key, created_at=now, reason=reason
            )
        )
        assert done.inserted_primary_key is not None
        return Intent(
            id=int(done.inserted_primary_key[0]),
            backend=backend,
            blob_key=blob_key,
            created_at=now,
            reason=reason,
        )

    def _change_stored_bytes(
        self, conn: Connection, org_id: int, delta: int, *, enforce_quota: bool
    ) -> None:
        """Add ``delta`` to the org's stored bytes and drop the cached org."""
        self._add_stored_bytes(conn, org_id, delta, enforce_quota=enforce_quota)
        self._cache.invalidate(("org", org_id))

    def _add_stored_bytes(
        self, conn: Connection, org_id: int, delta: int, *, enforce_quota: bool
    ) -> None:
        """Add ``delta`` to the org's stored bytes in ``conn``'s transaction: the quota's
        authoritative check (``QuotaExceeded`` if a growth would pass it). The org cache is
        the caller's business."""
        if delta == 0:
            return
        grow = enforce_quota and delta > 0
        done = (_GROW_STORED_BYTES if grow else _ADD_STORED_BYTES).run(
            conn, {"org_id": org_id, "delta": delta}
        )
        if done.rowcount == 0:
            name = conn.execute(sa.select(s.orgs.c.name).where(s.orgs.c.id == org_id)).scalar()
            raise QuotaExceeded(name or org_id)

    def _add_stored_bytes_read(
        self, conn: Connection, org_id: int, delta: int, *, enforce_quota: bool
    ) -> int | None:
        """:meth:`_add_stored_bytes`, then the org's new stored bytes (None if ``delta`` is 0),
        in as few statements as the engine allows."""
        if delta == 0:
            return None
        if self.dialect != "sqlite":
            self._add_stored_bytes(conn, org_id, delta, enforce_quota=enforce_quota)
            return int(_STORED_BYTES.run(conn, {"org_id": org_id}).scalar())
        grow = enforce_quota and delta > 0
        returning = _GROW_STORED_BYTES_RETURNING if grow else _ADD_STORED_BYTES_RETURNING
        row = returning.run(conn, {"org_id": org_id, "delta": delta}).first()
        if row is None:
            name = conn.execute(sa.select(s.orgs.c.name).where(s.orgs.c.id == org_id)).scalar()
            raise QuotaExceeded(name or org_id)
        return int(row[0])

    def _cache_stored_bytes(self, org_id: int, stored_bytes: int) -> None:
        """Give the cached org (if any) the stored bytes a committed write left.

        Cheaper than dropping it, which made every PUT read its org again. The entry keeps
        its expiry, so changes made elsewhere still show within ``cache_ttl``. The figure is
        advisory only (listings, early quota checks): quotas are enforced in SQL.
        """
        self._cache.update(("org", org_id), lambda org: replace(org, stored_bytes=stored_bytes))

    def _add_usage(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Upsert hourly usage rows: ``count`` and ``bytes`` are added."""
        if rows:
            _UPSERT_USAGE[self.dialect].run_many(conn, rows)

    def _usage_row(self, event: UsageEvent, now: datetime) -> dict[str, Any]:
        return {
            "hour": _hour(now),
            "org_id": event.org_id,
            "bucket_id": event.bucket_id or 0,
            "user_id": event.user_id or 0,
            "action": event.action,
            "count": event.count,
            "bytes": event.bytes,
        }

    def commit_object(
        self,
        new: NewObject,
        *,
        intent_ids: Iterable[int] = (),
        usage: UsageEvent | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        quota_org_id: int | None = None,
        staged: Mapping[str, bytes] | None = None,
    ) -> CommitResult:
        """Make ``new`` the object at its key, in one transaction.

        Inserts the blob rows its segments need (or reuses ``blob_id``), replaces any object
        at the same key, removes ``intent_ids`` (the upload is now referenced), turns blobs
        of the replaced object that nothing references any more into garbage intents,
        updates the org's stored bytes and records ``usage``.

        ``if_match`` (an ETag) and ``if_none_match`` (``If-None-Match: *``) are checked
        inside the same transaction: ``PreconditionFailed`` if they do not hold. With
        ``quota_org_id`` set, ``QuotaExceeded`` if the org's stored bytes would pass its
        quota.

        A segment that reuses a blob (``blob_id``, a copy) fails with ``ObjectNotFound`` if
        that blob has meanwhile been declared garbage (its source was deleted or
        overwritten). ``BucketNotFound`` if the bucket is gone. Stored bytes count object
        (plaintext) sizes.

        A replaced version that must be kept (catalog/retention.py) moves to the retained
        tables instead of being dropped, and stays counted in the org's stored bytes.

        An overwrite updates the existing row in place: the object keeps its ``id`` (the
        ``replaced`` record is the old version's snapshot); ``created_at`` is the time of
        this commit and ``last_access`` starts again empty.

        ``staged`` maps staging-backend blob keys to sealed bytes stored in the same
        transaction (a small object's whole write is then this one transaction).
        """
        key = encode_key(new.key)
        intent_list = sorted(set(intent_ids))
        match = None if if_match is None else if_match.strip().strip('"')

        def tx(conn: Connection) -> tuple[CommitResult, int, int | None]:
            now = _now()
            org_id = self._lock_bucket_org(conn, new.bucket_id)
            if quota_org_id is not None and quota_org_id != org_id:
                raise InvalidArgument(f"bucket {new.bucket_id} is not in org {quota_org_id}")
            old_row = self._object_row(conn, new.bucket_id, key, lock=True)
            if if_none_match and old_row is not None:
                raise PreconditionFailed(f"{new.key} exists (If-None-Match: *)")
            if match is not None and match != "*":
                if old_row is None or old_row.etag.strip('"') != match:
                    raise PreconditionFailed(f"{new.key} does not match If-Match {if_match}")
            elif match == "*" and old_row is None:
                raise PreconditionFailed(f"{new.key} does not exist (If-Match: *)")
            # Lock order: bucket (shared), object, org, blobs. The org row is written before
            # any insert whose foreign key would share-lock it; two writers that both held
            # it shared and then wanted it exclusively would deadlock.
            # A replaced object that must be kept (catalog/retention.py) stays counted.
            retain = (
                self._retention_for(conn, new.bucket_id, int(old_row.id), now)
                if old_row is not None
                else None
            )
            old_size = int(old_row.size) if old_row is not None and retain is None else 0
            delta = new.size - old_size
            stored_bytes = self._add_stored_bytes_read(
                conn, org_id, delta, enforce_quota=quota_org_id is not None
            )
            if staged:
                _INSERT_STAGED.run_many(
                    conn,
                    [
                        {"key": k, "size": len(v), "data": v, "created_at": now}
                        for k, v in staged.items()
                    ],
                )
            # A staged key is a fresh one the commit has just stored: no blob row can exist
            # for it yet, except one this loop made for an earlier segment of the same blob.
            fresh: dict[str, Blob] = {}
            blobs = []
            for seg in new.segments:
                if staged and seg.blob_id is None and seg.blob_key in staged:
                    blob = fresh.get(seg.blob_key)
                    if blob is None or blob.backend != seg.backend:
                        blob = self._segment_blob(conn, seg, org_id, now, fresh=True)
                        fresh[seg.blob_key] = blob
                else:
                    blob = self._segment_blob(conn, seg, org_id, now)
                blobs.append(blob)

            values = {
                "size": new.size,
                "etag": new.etag,
                "sha256": new.sha256,
                "content_type": new.content_type,
                "user_metadata": dict(new.user_metadata),
                "headers": dict(new.headers),
                "storage_class": new.storage_class,
                "sse_recipient": new.sse_recipient,
                "created_at": now,
                "modified_at": new.modified_at,
                "last_access": None,
            }
            replaced: ObjectRecord | None = None
            old_blobs: list[int] = []
            if old_row is not None:
                # Overwrite in place: the row keeps its id. Deleting and re-inserting the
                # same unique key deadlocks under InnoDB when writers queue on that key.
                replaced = self._full_object(conn, old_row)
                object_id = int(old_row.id)
                if retain is not None:
                    self._retain_object(
                        conn, org_id, object_id, reason=REASON_OVERWRITE, until=retain, now=now
                    )
                old_blobs = self._drop_segments(conn, object_id)
                _UPDATE_OBJECT.run(conn, {"object_id": object_id, **values})
            else:
                done = _INSERT_OBJECT.run(conn, {"bucket_id": new.bucket_id, "key": key, **values})
                assert done.lastrowid is not None
                object_id = int(done.lastrowid)
            if new.segments:
                _INSERT_SEGMENTS.run_many(
                    conn, _segment_rows(object_id, new.segments, [b.id for b in blobs])
                )
            for chunk in _chunks(intent_list, _CHUNK):
                conn.execute(s.intents.delete().where(s.intents.c.id.in_(chunk)))
            garbage = self._collect_garbage(conn, old_blobs, now)
            if usage is not None:
                self._add_usage(conn, [self._usage_row(usage, now)])
            # The record is built from what this transaction wrote: reading it back cost
            # as much as the rest of a small PUT.
            committed = _committed_object(object_id, new, now, blobs)
            result = CommitResult(object=committed, replaced=replaced, garbage=garbage)
            return result, org_id, stored_bytes

        result, org_id, stored_bytes = self._write(
            tx, what=f"object {new.key}", retry_unique=True
        )
        if stored_bytes is not None:
            self._cache_stored_bytes(org_id, int(stored_bytes))
        return result

    def _blob_for(self, conn: Connection, seg: NewSegment, org_id: int, now: datetime) -> int:
        """The blob row id for a new segment (see :meth:`_segment_blob`)."""
        return self._segment_blob(conn, seg, org_id, now).id

    def _segment_blob(
        self, conn: Connection, seg: NewSegment, org_id: int, now: datetime, *, fresh: bool = False
    ) -> Blob:
        """The blob row for a new segment: the reused one (checked to be alive), an
        existing row for the same backend key, or a new row. ``fresh``: the caller knows
        the key was generated for this write, so no row can exist yet (no lookup)."""
        if seg.blob_id is not None:
            row = _BLOB_BY_ID_LOCKED.run(conn, {"blob_id": seg.blob_id}).first()
            doomed = row is not None and (
                _GARBAGE_INTENT.run(conn, {"backend": row.backend, "blob_key": row.key}).first()
                is not None
            )
            if row is None or doomed:
                raise ObjectNotFound(
                    f"the data of the copy source (blob {seg.blob_id}) was deleted meanwhile"
                )
            return _blob(row)
        if not fresh:
            row = _BLOB_BY_KEY.run(conn, {"backend": seg.backend, "blob_key": seg.blob_key}).first()
            if row is not None:
                return _blob(row)
        done = _INSERT_BLOB.run(
            conn,
            {
                "org_id": org_id,
                "backend": seg.backend,
                "key": seg.blob_key,
                "size": seg.blob_size,
                "storage_class": seg.storage_class,
                "created_at": now,
            },
        )
        assert done.lastrowid is not None
        return Blob(
            id=int(done.lastrowid),
            org_id=org_id,
            backend=seg.backend,
            key=seg.blob_key,
            size=int(seg.blob_size),
            storage_class=seg.storage_class,
            created_at=_as_stored(now),
        )

    def import_objects(self, objects: Iterable[NewObject], *, batch_size: int = 2000) -> int:
        """Insert many new objects quickly (catalog rebuilds, imports, benchmarks).

        No preconditions, no usage, no quota and no replacement: ``AlreadyExists`` if a key
        is taken (that batch is rolled back; earlier batches stay). Objects may span
        buckets; stored bytes are added to each bucket's org. Returns the number inserted.
        """
        total = 0
        batch: list[NewObject] = []
        for new in objects:
            batch.append(new)
            if len(batch) >= batch_size:
                total += self._import_batch(batch)
                batch = []
        if batch:
            total += self._import_batch(batch)
        return total

    def _import_batch(self, batch: list[NewObject]) -> int:
        encoded = [(new, encode_key(new.key)) for new in batch]

        def tx(conn: Connection) -> int:
            now = _now()
            orgs_of: dict[int, int] = {}
            for new, _ in encoded:
                if new.bucket_id not in orgs_of:
                    orgs_of[new.bucket_id] = self._lock_bucket_org(conn, new.bucket_id)
            per_org: dict[int, int] = {}
            for new, _ in encoded:
                org_id = orgs_of[new.bucket_id]
                per_org[org_id] = per_org.get(org_id, 0) + new.size
            for org_id, delta in sorted(per_org.items()):
                self._change_stored_bytes(conn, org_id, delta, enforce_quota=False)
            conn.execute(
                s.objects.insert(),
                [
                    {
                        "bucket_id": new.bucket_id,
                        "key": key,
                        "size": new.size,
                        "etag": new.etag,
                        "sha256": new.sha256,
                        "content_type": new.content_type,
                        "user_metadata": dict(new.user_metadata),
                        "headers": dict(new.headers),
                        "storage_class": new.storage_class,
                        "sse_recipient": new.sse_recipient,
                        "created_at": now,
                        "modified_at": new.modified_at,
                    }
                    for new, key in encoded
                ],
            )
            with_segments = [(new, key) for new, key in encoded if new.segments]
            for new, key in with_segments:
                object_id = conn.execute(
                    sa.select(s.objects.c.id).where(
                        s.objects.c.bucket_id == new.bucket_id, s.objects.c.key == key
                    )
                ).scalar_one()
                org_id = orgs_of[new.bucket_id]
                blob_ids = [self._blob_for(conn, seg, org_id, now) for seg in new.segments]
                conn.execute(
                    s.segments.insert(), _segment_rows(object_id, new.segments, blob_ids)
                )
            return len(encoded)

        return self._write(tx, what="object (import)")

    def get_object(self, bucket_id: int, key: str) -> ObjectRecord | None:
        """The live object with its segments in part order."""
        raw = encode_key(key)

        def tx(conn: Connection) -> ObjectRecord | None:
            row = self._object_row(conn, bucket_id, raw)
            return None if row is None else self._full_object(conn, row)

        return self._read(tx)

    def list_objects(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """A page of objects and common prefixes after ``start_after``, in key order.

        Costs O(page): with a delimiter, a common prefix is skipped over with one indexed
        seek, never scanned key by key.

        ``start_after`` may be a key or a common prefix returned as ``next_marker``; after
        a common prefix the listing continues past every key under it. ``max_keys`` of 0
        gives an empty, untruncated page.
        """
        if max_keys < 0:
            raise InvalidArgument(f"max_keys must not be negative ({max_keys})")
        walk = _ListWalk(
            prefix=_encode_prefix(prefix),
            delimiter=_encode_prefix(delimiter) if delimiter else None,
            start_after=None if start_after is None else _encode_prefix(start_after),
            max_keys=max_keys,
        )
        return self._read(lambda conn: walk.run(conn, bucket_id))

    def iter_objects(
        self, bucket_id: int, *, prefix: str = "", page_size: int = 1000
    ) -> Iterator[ObjectRecord]:
        """Every object under ``prefix`` in key order, page by page (one short read
        transaction per page, so a long iteration never holds a transaction open)."""
        marker: str | None = None
        while True:
            page = self.list_objects(
                bucket_id, prefix=prefix, start_after=marker, max_keys=page_size
            )
            yield from page.objects
            if not page.is_truncated or page.next_marker is None:
                return
            marker = page.next_marker

    def delete_object(
        self, bucket_id: int, key: str, *, usage: UsageEvent | None = None
    ) -> tuple[ObjectRecord | None, list[Intent]]:
        """Delete the object at ``key``; return it (None if absent) and the garbage intents
        of the blobs nothing references any more. ``usage`` is recorded either way (the
        request happened).

        An object that must be kept (a young cold blob, or the bucket's retention window:
        catalog/retention.py) is hidden the same way but moves to the retained tables: its
        blobs are not garbage and its bytes stay in the org's stored bytes until purged."""
        raw = encode_key(key)

        def tx(conn: Connection) -> tuple[ObjectRecord | None, list[Intent]]:
            now = _now()
            org_id = self._lock_bucket_org(conn, bucket_id)
            row = self._object_row(conn, bucket_id, raw, lock=True)
            garbage: list[Intent] = []
            deleted: ObjectRecord | None = None
            if row is not None:
                retain = self._retention_for(conn, bucket_id, int(row.id), now)
                if retain is None:
                    self._change_stored_bytes(conn, org_id, -int(row.size), enforce_quota=False)
                deleted = self._full_object(conn, row)
                if retain is not None:
                    self._retain_object(
                        conn, org_id, int(row.id), reason=REASON_DELETE, until=retain, now=now
                    )
                blob_ids = self._drop_object(conn, row.id)
                garbage = self._collect_garbage(conn, blob_ids, now)
            if usage is not None:
                self._add_usage(conn, [self._usage_row(usage, now)])
            return deleted, garbage

        return self._write(tx)

    def rename_object(
        self,
        bucket_id: int,
        key: str,
        new_bucket_id: int,
        new_key: str,
        *,
        overwrite: bool = True,
        usage: UsageEvent | None = None,
    ) -> tuple[ObjectRecord, list[Intent]]:
        """Move an object row to another key (same org), keeping its blobs. Returns the
        moved object and garbage intents of an overwritten target. ``ObjectNotFound`` if
        the source is missing; ``PreconditionFailed`` if the target exists and not
        ``overwrite``. The moved object keeps its id and modification time."""
        src = encode_key(key)
        dst = encode_key(new_key)

        def tx(conn: Connection) -> tuple[ObjectRecord, list[Intent]]:
            now = _now()
            org_id = self._lock_bucket_org(conn, bucket_id)
            if new_bucket_id != bucket_id and self._lock_bucket_org(conn, new_bucket_id) != org_id:
                raise InvalidArgument("an object can only be renamed within its org")
            row = self._object_row(conn, bucket_id, src, lock=True)
            if row is None:
                raise ObjectNotFound(key)
            if new_bucket_id == bucket_id and dst == src:
                return self._full_object(conn, row), []
            target = self._object_row(conn, new_bucket_id, dst, lock=True)
            garbage: list[Intent] = []
            if target is not None:
                if not overwrite:
                    raise PreconditionFailed(f"{new_key} exists")
                retain = self._retention_for(conn, new_bucket_id, int(target.id), now)
                if retain is None:
                    self._change_stored_bytes(
                        conn, org_id, -int(target.size), enforce_quota=False
                    )
                else:
                    self._retain_object(
                        conn, org_id, int(target.id), reason=REASON_MOVE, until=retain, now=now
                    )
                blob_ids = self._drop_object(conn, target.id)
                garbage = self._collect_garbage(conn, blob_ids, now)
            conn.execute(
                s.objects.update()
                .where(s.objects.c.id == row.id)
                .values(bucket_id=new_bucket_id, key=dst)
            )
            if usage is not None:
                self._add_usage(conn, [self._usage_row(usage, now)])
            moved = self._object_row(conn, new_bucket_id, dst)
            assert moved is not None
            return self._full_object(conn, moved), garbage

        return self._write(tx, what=f"object {new_key}", retry_unique=True)

    def count_objects(self, bucket_id: int) -> int:
        """How many objects the bucket holds (a full count: for admin views, not per
        request)."""
        count = self._read(
            lambda conn: conn.execute(
                sa.select(sa.func.count())
                .select_from(s.objects)
                .where(s.objects.c.bucket_id == bucket_id)
            ).scalar()
        )
        return int(count or 0)

    def touch_last_access(self, object_ids: Iterable[int], at: datetime) -> None:
        """Record a read; callers call it at most once a day per object."""
        ids = sorted(set(object_ids))
        if not ids:
            return

        def tx(conn: Connection) -> None:
            for chunk in _chunks(ids, _CHUNK):
                conn.execute(
                    s.objects.update().where(s.objects.c.id.in_(chunk)).values(last_access=at)
                )

        self._write(tx)

    # -- intents and sweeps ----------------------------------------------------------------
    def add_intent(self, backend: str, blob_key: str, *, reason: str = INTENT_UPLOAD) -> Intent:
        """Record that ``blob_key`` is about to be written (before the upload starts)."""
        return self._write(
            lambda conn: self._insert_intent(conn, backend, blob_key, reason, _now())
        )

    def remove_intent(self, intent_id: int) -> None:
        """Forget an intent (no error if it is already gone)."""
        self._write(
            lambda conn: conn.execute(s.intents.delete().where(s.intents.c.id == intent_id))
        )

    def due_intents(self, older_than: datetime, *, limit: int = 1000) -> list[Intent]:
        """Intents created before ``older_than``, oldest first."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(s.intents)
                .where(s.intents.c.created_at < older_than)
                .order_by(s.intents.c.created_at, s.intents.c.id)
                .limit(limit)
            ).all()
        )
        return [_intent(r) for r in rows]

    def blob_is_referenced(self, backend: str, blob_key: str) -> bool:
        """True if any segment of any live or retained object lives in that blob."""

        def tx(conn: Connection) -> bool:
            found = conn.execute(
                sa.select(s.segments.c.id)
                .join(s.blobs, s.blobs.c.id == s.segments.c.blob_id)
                .where(s.blobs.c.backend == backend, s.blobs.c.key == blob_key)
                .limit(1)
            ).first()
            if found is not None:
                return True
            blob_id = conn.execute(
                sa.select(s.blobs.c.id).where(
                    s.blobs.c.backend == backend, s.blobs.c.key == blob_key
                )
            ).scalar()
            return blob_id is not None and self._blob_retained(conn, int(blob_id))

        return self._read(tx)

    def forget_blob(self, backend: str, blob_key: str) -> bool:
        """Drop the blob row of an unreferenced blob (before or after the backend deletes
        it). Returns True if nothing references the blob (its row is gone now, or was
        already), False if a segment references it again: then the row stays and the blob
        must not be deleted."""

        def tx(conn: Connection) -> bool:
            blob_id = conn.execute(
                sa.select(s.blobs.c.id)
                .where(s.blobs.c.backend == backend, s.blobs.c.key == blob_key)
                .with_for_update()
            ).scalar()
            if blob_id is None:
                return True
            if self._blob_in_use(conn, blob_id):
                return False
            conn.execute(s.blobs.delete().where(s.blobs.c.id == blob_id))
            return True

        return self._write(tx)

    # -- usage -----------------------------------------------------------------------------
    def add_read_counts(self, counts: Mapping[tuple[int, int | None, str], tuple[int, int]]) -> None:
        """Add flushed read counters: ``(org_id, bucket_id, action) -> (count, bytes)``,
        into the current hour's usage row."""
        if not counts:
            return
        hour = _hour(_now())
        rows = [
            {
                "hour": hour,
                "org_id": org_id,
                "bucket_id": bucket_id or 0,
                "user_id": 0,
                "action": action,
                "count": count,
                "bytes": nbytes,
            }
            for (org_id, bucket_id, action), (count, nbytes) in sorted(
                counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])
            )
        ]
        self._write(lambda conn: self._add_usage(conn, rows))

    def record_usage(self, event: UsageEvent) -> None:
        """Record one usage event on its own (for metered actions that write nothing else;
        writes pass ``usage=`` to their own method instead)."""
        self._write(lambda conn: self._add_usage(conn, [self._usage_row(event, _now())]))

    def usage_totals(self, org_id: int) -> dict[str, tuple[int, int]]:
        """``action -> (count, bytes)`` over all recorded usage of the org."""
        return self.usage_summary(org_id)

    def usage_summary(
        self,
        org_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        bucket_id: int | None = None,
    ) -> dict[str, tuple[int, int]]:
        """``action -> (count, bytes)`` of the org's usage in the hours ``[since, until)``,
        optionally of one bucket."""
        query = (
            sa.select(
                s.usage.c.action,
                sa.func.sum(s.usage.c.count).label("total_count"),
                sa.func.sum(s.usage.c.bytes).label("total_bytes"),
            )
            .where(s.usage.c.org_id == org_id)
            .group_by(s.usage.c.action)
        )
        if since is not None:
            query = query.where(s.usage.c.hour >= _hour(since))
        if until is not None:
            query = query.where(s.usage.c.hour < until)
        if bucket_id is not None:
            query = query.where(s.usage.c.bucket_id == bucket_id)
        rows = self._read(lambda conn: conn.execute(query).all())
        return {r.action: (int(r.total_count or 0), int(r.total_bytes or 0)) for r in rows}

    # -- leases ----------------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``owner``; False if someone else holds an
        unexpired lease. Never holds a transaction open beyond the call.

        Expiry uses this machine's clock: replicas need clocks within a small fraction of
        the lease time of each other (NTP), as any lease scheme does.
        """
        now = _now()
        expires = now + timedelta(seconds=ttl_seconds)

        def tx(conn: Connection) -> bool:
            row = conn.execute(
                sa.select(s.leases.c.owner, s.leases.c.expires_at)
                .where(s.leases.c.name == name)
                .with_for_update()
            ).first()
            if row is None:
                conn.execute(s.leases.insert().values(name=name, owner=owner, expires_at=expires))
                return True
            if row.owner != owner and row.expires_at > now:
                return False
            conn.execute(
                s.leases.update()
                .where(s.leases.c.name == name)
                .values(owner=owner, expires_at=expires)
            )
            return True

        try:
            return self._write(tx, what=f"lease {name}")
        except AlreadyExists:
            # Two first-time takers raced on the insert: the other one won.
            return False

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it (no error otherwise)."""
        self._write(
            lambda conn: conn.execute(
                s.leases.delete().where(s.leases.c.name == name, s.leases.c.owner == owner)
            )
        )

    def lease_holder(self, name: str) -> tuple[str, datetime] | None:
        """``(owner, expires_at)`` of an unexpired lease, else None."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(s.leases.c.owner, s.leases.c.expires_at).where(s.leases.c.name == name)
            ).first()
        )
        if row is None or row.expires_at <= _now():
            return None
        return row.owner, row.expires_at

    # -- audit -----------------------------------------------------------------------------
    def audit(
        self, actor: str, action: str, *, org_id: int | None = None, **details: object
    ) -> None:
        """Append an audit entry; ``details`` must be JSON-friendly (others become text).
        Never pass secrets."""
        values = _json_safe(details)
        now = _now()
        self._write(
            lambda conn: conn.execute(
                s.audit_log.insert().values(
                    at=now, actor=actor, action=action, org_id=org_id, details=values
                )
            )
        )

    def audit_entries(self, *, org_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest entries first (of one org, if given)."""
        query = sa.select(s.audit_log).order_by(s.audit_log.c.id.desc()).limit(limit)
        if org_id is not None:
            query = query.where(s.audit_log.c.org_id == org_id)
        rows = self._read(lambda conn: conn.execute(query).all())
        return [
            AuditEntry(
                id=r.id,
                at=r.at,
                actor=r.actor,
                action=r.action,
                org_id=r.org_id,
                details=dict(r.details or {}),
            )
            for r in rows
        ]


def _merge(current: Mapping[str, Any] | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(current or {})
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return _json_safe(merged)


def _segment_rows(
    object_id: int, segments: Sequence[NewSegment], blob_ids: Sequence[int]
) -> list[dict[str, Any]]:
    return [
        {
            "object_id": object_id,
            "part_number": seg.part_number,
            "blob_id": blob_id,
            "blob_offset": seg.blob_offset,
            "sealed_size": seg.sealed_size,
            "plain_size": seg.plain_size,
            "md5": seg.md5,
            "sha256": seg.sha256,
            "age_header": seg.age_header,
            "payload_offset": seg.payload_offset,
            "seek_table": seg.seek_table,
            "header_mac": seg.header_mac,
            "recipient": seg.recipient,
        }
        for seg, blob_id in zip(segments, blob_ids, strict=True)
    ]


def _list_query(*, inclusive: bool, bounded: bool) -> sa.Select[Any]:
    key = s.objects.c.key
    lower = sa.bindparam("lower", type_=s.KeyBytes())
    query = sa.select(*_OBJECT_COLUMNS).where(
        s.objects.c.bucket_id == sa.bindparam("bucket_id"),
        key >= lower if inclusive else key > lower,
    )
    if bounded:
        query = query.where(key < sa.bindparam("upper", type_=s.KeyBytes()))
    return query.order_by(key).limit(sa.bindparam("limit"))


#: The listing's statements, built once: (inclusive lower bound, has an upper bound).
_LIST_QUERIES = {
    (inclusive, bounded): _list_query(inclusive=inclusive, bounded=bounded)
    for inclusive in (True, False)
    for bounded in (True, False)
}


class _ListWalk:
    """One listing: a walk along the ``(bucket_id, key)`` index.

    Without a delimiter it is one ``LIMIT`` query. With one, rows are fetched in batches
    from a lower bound; a key holding the delimiter after the prefix yields its common
    prefix ``P``, and the walk moves its lower bound to ``P + b"\\xff"`` (0xFF never occurs
    in UTF-8, so every key under ``P`` sorts below it). Batches adapt: a batch that ran into
    keys under a common prefix shrinks the next one (so dense common prefixes cost one small
    seek each), a batch of plain objects grows it. The work is bounded by the page size,
    never by the number of keys under the prefixes skipped.
    """

    def __init__(
        self,
        *,
        prefix: bytes,
        delimiter: bytes | None,
        start_after: bytes | None,
        max_keys: int,
    ) -> None:
        self.prefix = prefix
        self.delimiter = delimiter
        self.max_keys = max_keys
        self.upper: bytes | None = prefix + b"\xff" if prefix else None
        self.lower = prefix
        self.inclusive = True
        if start_after is not None and start_after >= prefix:
            self.lower, self.inclusive = start_after, False
            if delimiter is not None and start_after.startswith(prefix):
                rest = start_after[len(prefix) :]
                at = rest.find(delimiter)
                if at >= 0 and at + len(delimiter) == len(rest):
                    # Continuing after a common prefix: skip everything under it.
                    self.lower, self.inclusive = start_after + b"\xff", True

    def _fetch(self, conn: Connection, bucket_id: int, limit: int) -> Sequence[Row[Any]]:
        query = _LIST_QUERIES[(self.inclusive, self.upper is not None)]
        params: dict[str, Any] = {"bucket_id": bucket_id, "lower": self.lower, "limit": limit}
        if self.upper is not None:
            params["upper"] = self.upper
        return conn.execute(query, params).all()

    def run(self, conn: Connection, bucket_id: int) -> ListPage:
        objects: list[ObjectRecord] = []
        prefixes: list[str] = []
        if self.max_keys == 0 or (self.upper is not None and self.lower >= self.upper):
            return ListPage(objects=[], common_prefixes=[], is_truncated=False, next_marker=None)
        last: bytes | None = None
        truncated: bool | None = None
        batch = min(self.max_keys + 1, _MAX_BATCH)
        delimiter = self.delimiter
        start = len(self.prefix)
        while truncated is None:
            rows = self._fetch(conn, bucket_id, batch)
            skip_below: bytes | None = None
            wasted = found_objects = 0
            for row in rows:
                key = bytes(row.key_raw)
                if skip_below is not None and key < skip_below:
                    wasted += 1
                    continue
                if len(objects) + len(prefixes) == self.max_keys:
                    truncated = True
                    break
                if delimiter is not None:
                    at = key.find(delimiter, start)
                    if at >= 0:
                        common = key[: at + len(delimiter)]
                        prefixes.append(common.decode("utf-8"))
                        last = common
                        skip_below = common + b"\xff"
                        self.lower, self.inclusive = skip_below, True
                        continue
                objects.append(_object(row))
                found_objects += 1
                last = key
                skip_below = None
                self.lower, self.inclusive = key, False
            if truncated is not None:
                break
            if len(rows) < batch:
                truncated = False
                break
            if len(objects) + len(prefixes) == self.max_keys:
                # The page is full; is there anything after it?
                truncated = bool(self._fetch(conn, bucket_id, 1))
                break
            if wasted:
                batch = max(1, batch // 4)
            elif found_objects:
                batch = min(batch * 2, _MAX_BATCH, self.max_keys + 1)
        return ListPage(
            objects=objects,
            common_prefixes=prefixes,
            is_truncated=truncated,
            next_marker=last.decode("utf-8") if truncated and last is not None else None,
        )

