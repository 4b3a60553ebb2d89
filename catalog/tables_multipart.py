"""Tables for multipart uploads and their parts, registered on :data:`catalog.schema.metadata`.

- ``multipart_uploads``: one row per upload in progress, with everything the object will
  carry once completed (content type, metadata, stored headers, storage class, the SSE-C
  recipient) and the checksum algorithm the client announced. ``upload_id`` is the opaque id
  clients see; ``id`` is the surrogate the parts refer to.
- ``multipart_parts``: one row per uploaded part. Each part is one sealed segment in its own
  blob (a ``blobs`` row, created when the part is recorded), so completing an upload copies
  no data: the object's segments reference the part blobs. The segment fields are those of
  ``segments``; ``checksums`` keeps the ``x-amz-checksum-*`` values the client sent.

A part's blob is referenced by its part row, not by any segment, until the upload completes;
the part row is written in the same transaction that removes the blob's upload intent, so
the orphan sweep never sees it. Aborting or replacing a part turns its blob into a garbage
intent (unless a completed object's segment uses it).

A change here needs a migration in catalog/migrations/versions.
"""

from __future__ import annotations

import sqlalchemy as sa

from catalog.schema import (
    ID_TABLE_ARGS,
    MYSQL_TABLE_ARGS,
    BigBytes,
    BigId,
    KeyBytes,
    UTCDateTime,
    metadata,
)

multipart_uploads = sa.Table(
    "multipart_uploads",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("upload_id", sa.String(64), nullable=False),
    sa.Column("bucket_id", sa.Integer, sa.ForeignKey("buckets.id"), nullable=False),
    sa.Column("key", KeyBytes, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Column("initiator", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(1024), nullable=False),
    sa.Column("user_metadata", sa.JSON, nullable=True),
    sa.Column("headers", sa.JSON, nullable=True),
    sa.Column("storage_class", sa.String(32), nullable=False),
    sa.Column("sse_recipient", sa.String(255), nullable=True),
    sa.Column("checksum_algorithm", sa.String(16), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("upload_id", name="uq_multipart_uploads_upload_id"),
    # ListMultipartUploads walks this index: key order, then initiation order.
    sa.Index("ix_multipart_uploads_bucket_key", "bucket_id", "key", "created_at"),
    sa.Index("ix_multipart_uploads_created", "created_at"),
    **ID_TABLE_ARGS,
)

multipart_parts = sa.Table(
    "multipart_parts",
    metadata,
    sa.Column(
        "upload_pk",
        sa.BigInteger,
        sa.ForeignKey("multipart_uploads.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("part_number", sa.Integer, primary_key=True),
    sa.Column("blob_id", sa.BigInteger, sa.ForeignKey("blobs.id"), nullable=False),
    sa.Column("sealed_size", sa.BigInteger, nullable=False),
    sa.Column("plain_size", sa.BigInteger, nullable=False),
    sa.Column("md5", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(80), nullable=False),
    sa.Column("age_header", sa.LargeBinary, nullable=False),
    sa.Column("payload_offset", sa.Integer, nullable=False),
    sa.Column("seek_table", BigBytes, nullable=False),
    sa.Column("header_mac", sa.LargeBinary, nullable=False),
    sa.Column("recipient", sa.String(255), nullable=False),
    sa.Column("checksums", sa.JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_multipart_parts_blob", "blob_id"),
    **MYSQL_TABLE_ARGS,
)
