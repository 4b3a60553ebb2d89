"""Tables for restores, policies, containers, staging and placement, registered on
:data:`catalog.schema.metadata`.

A change here needs a migration in ``catalog/migrations/versions``.
"""

from __future__ import annotations

import sqlalchemy as sa

from catalog.schema import ID_TABLE_ARGS, BigId, UTCDateTime, metadata

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
