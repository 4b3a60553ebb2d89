"""Deleted-but-retained objects (see catalog/tables_retention.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

Types are spelled out here, never imported from the schema modules, so this migration
keeps creating the same tables whatever later versions of those modules say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
WITH_ID: dict[str, Any] = {**MYSQL, "sqlite_autoincrement": True}


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _key() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.VARBINARY(1024), "mysql", "mariadb")


def _big_bytes() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "retained_objects",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.Integer, nullable=False),
        sa.Column("bucket_id", sa.Integer, nullable=False),
        sa.Column("key", _key(), nullable=False),
        sa.Column("object_id", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.String(80), nullable=False),
        sa.Column("sha256", sa.String(80), nullable=False),
        sa.Column("content_type", sa.String(1024), nullable=False),
        sa.Column("user_metadata", sa.JSON, nullable=True),
        sa.Column("headers", sa.JSON, nullable=True),
        sa.Column("storage_class", sa.String(32), nullable=False),
        sa.Column("sse_recipient", sa.String(255), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("modified_at", _ts(), nullable=False),
        sa.Column("last_access", _ts(), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("deleted_at", _ts(), nullable=False),
        sa.Column("retain_until", _ts(), nullable=False),
        **WITH_ID,
    )
    op.create_index(
        "ix_retained_objects_key", "retained_objects", ["bucket_id", "key", "id"]
    )
    op.create_index("ix_retained_objects_until", "retained_objects", ["retain_until"])
    op.create_table(
        "retained_segments",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
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
        sa.Column("seek_table", _big_bytes(), nullable=False),
        sa.Column("header_mac", sa.LargeBinary, nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        **WITH_ID,
    )
    op.create_index("ix_retained_segments_retained", "retained_segments", ["retained_id"])
    op.create_index("ix_retained_segments_blob", "retained_segments", ["blob_id"])


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table("retained_segments")
    op.drop_table("retained_objects")
