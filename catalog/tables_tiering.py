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
