"""Tables of the identity area (see catalog/tables_identity.py): grants, API tokens, login
failures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Types are spelled out here, never imported from the schema modules, so this migration
keeps creating the same tables whatever later versions of those modules say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
WITH_ID: dict[str, Any] = {**MYSQL, "sqlite_autoincrement": True}


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("bucket", sa.String(255), nullable=True),
        sa.Column("rights", sa.String(255), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        **WITH_ID,
    )
    op.create_index("ix_grants_user", "grants", ["user_id"])
    op.create_index("ix_grants_org_user", "grants", ["org_id", "user_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_hash"),
        **WITH_ID,
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user_id"])
    op.create_index("ix_api_tokens_expires", "api_tokens", ["expires_at"])
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_at", _ts(), nullable=False),
        sa.Column("last_at", _ts(), nullable=False),
        sa.Column("blocked_until", _ts(), nullable=True),
        **MYSQL,
    )
    op.create_index("ix_login_failures_last", "login_failures", ["last_at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("api_tokens")
    op.drop_table("grants")
