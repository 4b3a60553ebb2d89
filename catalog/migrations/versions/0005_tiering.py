"""Tables of the tiering area (see catalog/tables_tiering.py): restores, staged blobs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Types are spelled out here, never imported from the schema modules, so this migration
keeps creating the same tables whatever later versions of those modules say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
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
        "restores",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "blob_id", sa.BigInteger, sa.ForeignKey("blobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("org_id", sa.Integer, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("completed_at", _ts(), nullable=True),
        sa.Column("expires_at", _ts(), nullable=True),
        sa.Column("quote_usd", sa.Numeric(14, 6), nullable=True),
        sa.Column("next_poll_at", _ts(), nullable=True),
        sa.UniqueConstraint("blob_id", name="uq_restores_blob"),
        **WITH_ID,
    )
    op.create_index("ix_restores_status", "restores", ["status", "next_poll_at"])
    op.create_table(
        "staged_blobs",
        sa.Column(
            "key",
            sa.LargeBinary().with_variant(mysql.VARBINARY(1024), "mysql", "mariadb"),
            primary_key=True,
        ),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column(
            "data",
            sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("created_at", _ts(), nullable=False),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("staged_blobs")
    op.drop_index("ix_restores_status", table_name="restores")
    op.drop_table("restores")
