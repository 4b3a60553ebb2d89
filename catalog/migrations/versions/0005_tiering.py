"""Tables of the tiering area (see catalog/tiering.py): restores, staged blobs, policies,
containers, restore charges, and an index of blobs by storage class.

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
        sa.Column("notified_at", _ts(), nullable=True),
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
    op.create_table(
        "tiering_policies",
        sa.Column(
            "org_id",
            sa.Integer,
            sa.ForeignKey("orgs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("bucket_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rules", sa.JSON, nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        **MYSQL,
    )
    op.create_table(
        "containers",
        sa.Column(
            "blob_id",
            sa.BigInteger,
            sa.ForeignKey("blobs.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("org_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("member_count", sa.Integer, nullable=False),
        sa.Column("members_bytes", sa.BigInteger, nullable=False),
        sa.Column("index_offset", sa.BigInteger, nullable=False),
        sa.Column("index_length", sa.BigInteger, nullable=False),
        sa.Column("index_header_mac", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("rewrite_requested_at", _ts(), nullable=True),
        **MYSQL,
    )
    op.create_table(
        "restore_charges",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("org_id", sa.Integer, nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("usd", sa.Numeric(14, 6), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("detail", sa.String(1100), nullable=False),
        **WITH_ID,
    )
    op.create_index("ix_restore_charges_org", "restore_charges", ["org_id", "at"])
    op.create_index("ix_blobs_class", "blobs", ["storage_class", "id"])


def downgrade() -> None:
    op.drop_index("ix_blobs_class", table_name="blobs")
    op.drop_index("ix_restore_charges_org", table_name="restore_charges")
    op.drop_table("restore_charges")
    op.drop_table("containers")
    op.drop_table("tiering_policies")
    op.drop_table("staged_blobs")
    op.drop_index("ix_restores_status", table_name="restores")
    op.drop_table("restores")
