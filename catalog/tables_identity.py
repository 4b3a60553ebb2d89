"""Tables for grants, API tokens and login failures, registered on :data:`catalog.schema.metadata`.

Users, memberships and access keys are core tables (``catalog/schema.py``); this area adds:

- ``grants``: rights a member holds in an org beyond the defaults, for the whole org
  (``bucket`` NULL) or for one bucket by name. ``rights`` is a comma-separated sorted list
  of right names (``read,restore``). One row per (org, user, bucket) is what the queries
  keep; should a race ever leave two, readers take their union and revocations clear both.
- ``api_tokens``: bearer tokens of the admin API, stored as the SHA-256 of the token (the
  token is 32 random bytes, so a plain hash is as strong as the token).
- ``login_failures``: failed-login counters per user name and per client address, in the
  catalog so every replica throttles alike. ``key`` is the SHA-256 of ``kind`` and
  ``subject`` (a user name or an address of any length fits in a fixed key); ``subject``
  keeps a readable, possibly truncated copy for operators.

A change here needs a migration in catalog/migrations/versions.
"""

from __future__ import annotations

import sqlalchemy as sa

from catalog.schema import ID_TABLE_ARGS, MYSQL_TABLE_ARGS, UTCDateTime, metadata

grants = sa.Table(
    "grants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("bucket", sa.String(255), nullable=True),
    sa.Column("rights", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_grants_user", "user_id"),
    sa.Index("ix_grants_org_user", "org_id", "user_id"),
    **ID_TABLE_ARGS,
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
    sa.Index("ix_api_tokens_user", "user_id"),
    sa.Index("ix_api_tokens_expires", "expires_at"),
    **ID_TABLE_ARGS,
)

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("first_at", UTCDateTime, nullable=False),
    sa.Column("last_at", UTCDateTime, nullable=False),
    sa.Column("blocked_until", UTCDateTime, nullable=True),
    sa.Index("ix_login_failures_last", "last_at"),
    **MYSQL_TABLE_ARGS,
)
