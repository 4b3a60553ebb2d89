"""The catalog's tables, as SQLAlchemy Core metadata.

This module is what the code queries; ``catalog/migrations/versions`` is what creates the
tables. The two are kept equal by a test that compares a migrated database with this
metadata, so a change here needs a new migration there.

Portable column types:

- Object and blob keys are :class:`KeyBytes`: ``str`` in Python, their UTF-8 bytes in the
  database (``VARBINARY(1024)`` on MySQL/MariaDB, ``BLOB`` on SQLite), so both engines sort
  them bytewise, which is S3's order, and no collation folds case or trailing spaces.
  Raw ``bytes`` may be bound too (the listing binds ``prefix + b"\\xff"`` as a seek bound).
- Times are :class:`UTCDateTime`: stored as naive UTC with microseconds
  (``DATETIME(6)`` on MySQL), returned timezone-aware in UTC. Naive inputs are taken as UTC.
- Ids are 64-bit where rows grow with data; on SQLite an ``INTEGER PRIMARY KEY`` is needed
  for the row id alias, hence the variants.
- On MySQL every table is InnoDB, ``utf8mb4`` with the binary collation, so names never fold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

#: S3's limit for a key, in UTF-8 bytes.
MAX_KEY_BYTES = 1024

#: Options every table gets on MySQL/MariaDB.
MYSQL_TABLE_ARGS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
#: Tables with a surrogate id: on SQLite, AUTOINCREMENT so ids are never reused after a
#: delete (a cached bucket id or a blob id held by a copy in flight must never come to
#: name another row). InnoDB never reuses them anyway.
ID_TABLE_ARGS: dict[str, Any] = {**MYSQL_TABLE_ARGS, "sqlite_autoincrement": True}

#: 64-bit ids that still alias SQLite's row id.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class KeyBytes(sa.types.TypeDecorator[str]):
    """A key: ``str`` outside, UTF-8 bytes inside."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(MAX_KEY_BYTES))
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return str(value).encode("utf-8")

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return bytes(value).decode("utf-8")


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as naive UTC and returned aware (UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value  # type: ignore[no-any-return]

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class BigBytes(sa.types.TypeDecorator[bytes]):
    """Binary values that may pass 64 KiB (MEDIUMBLOB on MySQL)."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.MEDIUMBLOB())
        return dialect.type_descriptor(sa.LargeBinary())


metadata = sa.MetaData()

orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("recipient", sa.String(255), nullable=False),
    sa.Column("identity_wrapped", sa.LargeBinary, nullable=False),
    sa.Column("identity_key_id", sa.String(255), nullable=False),
    sa.Column("quota_bytes", sa.BigInteger, nullable=True),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("settings", sa.JSON, nullable=True),
    sa.UniqueConstraint("name", name="uq_orgs_name"),
    **ID_TABLE_ARGS,
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("password_hash", sa.String(512), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_operator", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("settings", sa.JSON, nullable=True),
    sa.UniqueConstraint("name", name="uq_users_name"),
    **ID_TABLE_ARGS,
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column(
        "org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Index("ix_memberships_user", "user_id"),
    **MYSQL_TABLE_ARGS,
)

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(128), primary_key=True),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("secret_wrapped", sa.LargeBinary, nullable=False),
    sa.Column("secret_key_id", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index("ix_access_keys_user", "user_id"),
    **MYSQL_TABLE_ARGS,
)

buckets = sa.Table(
    "buckets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("backend", sa.String(64), nullable=False),
    sa.Column("vault_recipient", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("settings", sa.JSON, nullable=True),
    sa.UniqueConstraint("org_id", "name", name="uq_buckets_org_name"),
    **ID_TABLE_ARGS,
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("backend", sa.String(64), nullable=False),
    sa.Column("key", KeyBytes, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("storage_class", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("backend", "key", name="uq_blobs_backend_key"),
    **ID_TABLE_ARGS,
)

objects = sa.Table(
    "objects",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("bucket_id", sa.Integer, sa.ForeignKey("buckets.id"), nullable=False),
    sa.Column("key", KeyBytes, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(80), nullable=False),
    sa.Column("sha256", sa.String(80), nullable=False),
    sa.Column("content_type", sa.String(1024), nullable=False),
    sa.Column("user_metadata", sa.JSON, nullable=True),
    sa.Column("headers", sa.JSON, nullable=True),
    sa.Column("storage_class", sa.String(32), nullable=False),
    sa.Column("sse_recipient", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime, nullable=False),
    sa.Column("last_access", UTCDateTime, nullable=True),
    # The listing walks this index: (bucket_id, key) in byte order.
    sa.UniqueConstraint("bucket_id", "key", name="uq_objects_bucket_key"),
    **ID_TABLE_ARGS,
)

segments = sa.Table(
    "segments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "object_id", sa.BigInteger, sa.ForeignKey("objects.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("part_number", sa.Integer, nullable=False),
    sa.Column("blob_id", sa.BigInteger, sa.ForeignKey("blobs.id"), nullable=False),
    sa.Column("blob_offset", sa.BigInteger, nullable=False),
    sa.Column("sealed_size", sa.BigInteger, nullable=False),
    sa.Column("plain_size", sa.BigInteger, nullable=False),
    sa.Column("md5", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(80), nullable=False),
    sa.Column("age_header", sa.LargeBinary, nullable=False),
    sa.Column("payload_offset", sa.Integer, nullable=False),
    sa.Column("seek_table", BigBytes, nullable=False),
    sa.Column("header_mac", sa.LargeBinary, nullable=False),
    sa.Column("recipient", sa.String(255), nullable=False),
    sa.UniqueConstraint("object_id", "part_number", name="uq_segments_object_part"),
    sa.Index("ix_segments_blob", "blob_id"),
    **ID_TABLE_ARGS,
)

intents = sa.Table(
    "intents",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("backend", sa.String(64), nullable=False),
    sa.Column("blob_key", KeyBytes, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Index("ix_intents_created", "created_at"),
    sa.Index("ix_intents_blob", "backend", "blob_key"),
    **ID_TABLE_ARGS,
)

#: Hourly usage counters. ``bucket_id``/``user_id`` 0 stand for "none" so the unique key
#: (and with it the upsert) works on every engine; the API shows them as ``None``.
usage = sa.Table(
    "usage",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("hour", UTCDateTime, nullable=False),
    sa.Column("org_id", sa.Integer, nullable=False),
    sa.Column("bucket_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("user_id", sa.Integer, nullable=False, server_default="0"),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint(
        "org_id", "hour", "bucket_id", "user_id", "action", name="uq_usage_row"
    ),
    **ID_TABLE_ARGS,
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    **MYSQL_TABLE_ARGS,
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("org_id", sa.Integer, nullable=True),
    sa.Column("details", sa.JSON, nullable=True),
    sa.Index("ix_audit_org", "org_id", "id"),
    **ID_TABLE_ARGS,
)

# Each later area registers its tables on ``metadata`` in its own module; importing them here
# keeps "the schema" one complete MetaData for queries, migrations and the schema test.
from catalog import (  # noqa: E402, F401
    tables_admin,
    tables_dav,
    tables_identity,
    tables_multipart,
    tables_placement,
    tables_retention,
    tables_tiering,
)
