"""Tables for WebDAV locks and dead properties, registered on :data:`catalog.schema.metadata`.

- ``dav_locks``: one row per WebDAV lock (RFC 4918 class 2), shared by every gateway
  replica. ``root`` is the locked path (``/org/bucket/key``, not percent-encoded) as its
  UTF-8 bytes, so a prefix range finds the locks below a folder with one index seek on
  both engines. ``id`` orders lock creation: when two replicas grant conflicting locks
  at the same instant, the older row wins and the younger is withdrawn (see
  ``protocols/webdav/locks.py``). Expired rows are ignored by every read and purged when
  locks are created.
- ``dav_properties``: dead properties (PROPPATCH) of objects, keyed by the object's id.
  Object ids survive overwrites and renames (a MOVE keeps its properties) and deleting an
  object deletes its properties (``ON DELETE CASCADE``), so no property outlives its
  object, whichever front end deleted it. ``name`` is the property's Clark name
  (``{namespace}local``) as UTF-8 bytes; ``value`` the property element as XML bytes.

A change here needs a migration in catalog/migrations/versions.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

from catalog.schema import (
    ID_TABLE_ARGS,
    MYSQL_TABLE_ARGS,
    BigBytes,
    BigId,
    KeyBytes,
    UTCDateTime,
    metadata,
)

#: Longest locked path in UTF-8 bytes: an org name (255), a bucket name (63), a key (1,024)
#: and the slashes fit with room to spare, and the index stays under InnoDB's 3,072 bytes.
MAX_LOCK_PATH_BYTES = 2048


class PathBytes(sa.types.TypeDecorator[str]):
    """A locked path: ``str`` outside, UTF-8 bytes inside (``VARBINARY(2048)`` on MySQL)."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.VARBINARY(MAX_LOCK_PATH_BYTES))
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return str(value).encode("utf-8")

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return bytes(value).decode("utf-8")


dav_locks = sa.Table(
    "dav_locks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("token", sa.String(128), nullable=False),
    sa.Column("root", PathBytes, nullable=False),
    sa.Column("principal", sa.String(255), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("depth", sa.String(16), nullable=False),
    sa.Column("owner", sa.LargeBinary, nullable=False),
    #: The lifetime granted, in seconds (what the lock's Timeout header reports).
    sa.Column("timeout", sa.Float, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("token", name="uq_dav_locks_token"),
    sa.Index("ix_dav_locks_root", "root"),
    sa.Index("ix_dav_locks_expires", "expires_at"),
    **ID_TABLE_ARGS,
)

dav_properties = sa.Table(
    "dav_properties",
    metadata,
    sa.Column(
        "object_id",
        sa.BigInteger,
        sa.ForeignKey("objects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", KeyBytes, primary_key=True),
    sa.Column("value", BigBytes, nullable=False),
    **MYSQL_TABLE_ARGS,
)
