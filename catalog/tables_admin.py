"""Tables of the admin API area (see catalog/admin.py), registered on
:data:`catalog.schema.metadata`.

- ``restore_jobs``: one row per restore a user asked for through the core API
  (``POST /api/v1/restores``): an object or a folder prefix of one bucket, the tier and the
  days, where the restored data goes (``destination`` NULL: download; else
  ``{"bucket": ..., "prefix": ...}``), the quote, and cached progress counters the API
  refreshes when asked. The per-blob restore state stays where the ObjectService keeps it
  (``restores``); a job only groups the objects and remembers what was asked.
- ``restore_job_items``: the objects of a job in key order (``seq``), with their size at
  request time and what happened to each (``ready``: readable already; ``requested``:
  this job started a restore; ``joined``: a restore was already running; ``copied``: copied
  to the destination; ``failed`` with ``error``).

A change here needs a migration in catalog/migrations/versions.
"""

from __future__ import annotations

import sqlalchemy as sa

from catalog.schema import ID_TABLE_ARGS, MYSQL_TABLE_ARGS, BigId, KeyBytes, UTCDateTime, metadata

restore_jobs = sa.Table(
    "restore_jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("bucket_id", sa.Integer, nullable=False),
    sa.Column("bucket", sa.String(255), nullable=False),
    #: ``object`` (``target`` is a key) or ``prefix`` (``target`` is a folder prefix).
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("target", KeyBytes, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("destination", sa.JSON, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("user_id", sa.Integer, nullable=True),
    sa.Column("requested_by", sa.String(255), nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("quote_usd", sa.Numeric(14, 6), nullable=True),
    sa.Column("objects_total", sa.BigInteger, nullable=False),
    sa.Column("bytes_total", sa.BigInteger, nullable=False),
    sa.Column("objects_ready", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes_ready", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("objects_copied", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("objects_failed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("error", sa.String(1024), nullable=True),
    sa.Index("ix_restore_jobs_org", "org_id", "id"),
    sa.Index("ix_restore_jobs_status", "status", "id"),
    **ID_TABLE_ARGS,
)

restore_job_items = sa.Table(
    "restore_job_items",
    metadata,
    sa.Column(
        "job_id",
        sa.BigInteger,
        sa.ForeignKey("restore_jobs.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("key", KeyBytes, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error", sa.String(1024), nullable=True),
    **MYSQL_TABLE_ARGS,
)
