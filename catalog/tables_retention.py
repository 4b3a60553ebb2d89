"""Tables of deleted-but-retained objects, registered on :data:`catalog.schema.metadata`.

A deleted or overwritten object that must be kept (its cold blob is younger than the
class's minimum storage duration, or its bucket has a retention window) leaves the
``objects`` table, so GET, HEAD and LIST no longer see it, and its row and segment rows
move here. The segment rows keep its blobs referenced: a blob is garbage only when
neither ``segments`` nor ``retained_segments`` names it.

A change here needs a migration in ``catalog/migrations/versions``.
"""

from __future__ import annotations

import sqlalchemy as sa

from catalog.schema import ID_TABLE_ARGS, BigBytes, BigId, KeyBytes, UTCDateTime, metadata

#: One row per retained object version: the object row as it was, and why and until when
#: it is kept. No foreign key to the bucket: a bucket may be deleted while versions of its
#: objects are still retained (they are then purged in time, not recoverable).
retained_objects = sa.Table(
    "retained_objects",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, nullable=False),
    sa.Column("bucket_id", sa.Integer, nullable=False),
    sa.Column("key", KeyBytes, nullable=False),
    #: The id the object had while it was live (for logs and the admin API).
    sa.Column("object_id", sa.BigInteger, nullable=False),
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
    #: ``delete``, ``overwrite`` or ``move`` (overwritten by a rename).
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("deleted_at", UTCDateTime, nullable=False),
    sa.Column("retain_until", UTCDateTime, nullable=False),
    sa.Index("ix_retained_objects_key", "bucket_id", "key", "id"),
    sa.Index("ix_retained_objects_until", "retain_until"),
    **ID_TABLE_ARGS,
)

#: The segments of retained objects, as they were in ``segments``.
retained_segments = sa.Table(
    "retained_segments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "retained_id",
        sa.BigInteger,
        sa.ForeignKey("retained_objects.id", ondelete="CASCADE"),
        nullable=False,
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
    sa.Index("ix_retained_segments_retained", "retained_id"),
    sa.Index("ix_retained_segments_blob", "blob_id"),
    **ID_TABLE_ARGS,
)
