"""Tables for restores, policies, containers, staging and placement, registered on
:data:`catalog.schema.metadata`.

A change here needs a migration in ``catalog/migrations/versions``.
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
    blobs,
    metadata,
)

#: One row per blob that has been asked back from cold storage (DESIGN.md: restore state
#: is keyed by the backend blob; an object's state derives from its blobs'). A new request
#: after the copy expired replaces the row.
restores = sa.Table(
    "restores",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "blob_id", sa.BigInteger, sa.ForeignKey("blobs.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("org_id", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    #: ``ongoing`` until the backend's copy is readable, then ``done``.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("quote_usd", sa.Numeric(14, 6), nullable=True),
    sa.Column("next_poll_at", UTCDateTime, nullable=True),
    #: When the restore webhook announced the completion (None: not yet, or no webhook).
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("blob_id", name="uq_restores_blob"),
    sa.Index("ix_restores_status", "status", "next_poll_at"),
    **ID_TABLE_ARGS,
)

#: Sealed segments of small objects, waiting here until the engine packs them into a
#: container (DESIGN.md: one backend PUT per small object would cost about 40% of the
#: physical floor of a typical small-file backup). The catalog database is durable and
#: replicated like the rest of the catalog.
staged_blobs = sa.Table(
    "staged_blobs",
    metadata,
    sa.Column("key", KeyBytes, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("data", BigBytes, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    **MYSQL_TABLE_ARGS,
)

#: Tiering policies stored by the admin API: org-wide (``bucket_id`` 0, so the primary key
#: works on every engine) or for one bucket. ``rules`` holds only the keys set at that
#: level; the effective policy is the config defaults, then the org's rules, then the
#: bucket's (tiering/policy.py validates and merges them).
tiering_policies = sa.Table(
    "tiering_policies",
    metadata,
    sa.Column(
        "org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("bucket_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("rules", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=False),
    **MYSQL_TABLE_ARGS,
)

#: Container blobs (packs of small objects, joined multipart parts): what the engine needs
#: to find the index without the object rows and to decide a rewrite. Dropped with the blob.
containers = sa.Table(
    "containers",
    metadata,
    sa.Column(
        "blob_id",
        sa.BigInteger,
        sa.ForeignKey("blobs.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("org_id", sa.Integer, nullable=False),
    #: ``pack`` (small objects), ``join`` (one multipart object's parts), ``rewrite``.
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("member_count", sa.Integer, nullable=False),
    #: Bytes of the members (the container's size less its index and footer).
    sa.Column("members_bytes", sa.BigInteger, nullable=False),
    sa.Column("index_offset", sa.BigInteger, nullable=False),
    sa.Column("index_length", sa.BigInteger, nullable=False),
    sa.Column("index_header_mac", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    #: When the engine asked the backend for a copy to rewrite from (None: not asked).
    sa.Column("rewrite_requested_at", UTCDateTime, nullable=True),
    **MYSQL_TABLE_ARGS,
)

#: One row per restore started, with its quote: the monthly restore budget sums these (a
#: blob's row in ``restores`` is replaced by a later restore, so it cannot be the ledger).
restore_charges = sa.Table(
    "restore_charges",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("usd", sa.Numeric(14, 6), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=False),
    sa.Column("detail", sa.String(1100), nullable=False),
    sa.Index("ix_restore_charges_org", "org_id", "at"),
    **ID_TABLE_ARGS,
)

#: The engine looks for blobs still in a hot class; once most data is cold, this index keeps
#: that search proportional to the hot blobs only.
blobs_by_class = sa.Index("ix_blobs_class", blobs.c.storage_class, blobs.c.id)
