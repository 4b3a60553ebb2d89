"""Tables of the multipart area (see catalog/tables_multipart.py): uploads and their parts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Types are spelled out here, never imported from the schema modules, so this migration
keeps creating the same tables whatever later versions of those modules say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
WITH_ID: dict[str, Any] = {**MYSQL, "sqlite_autoincrement": True}


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _key() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.VARBINARY(1024), "mysql", "mariadb")


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def _big_bytes() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "multipart_uploads",
        sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
        sa.Column("upload_id", sa.String(64), nullable=False),
        sa.Column("bucket_id", sa.Integer, sa.ForeignKey("buckets.id"), nullable=False),
        sa.Column("key", _key(), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("initiator", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(1024), nullable=False),
        sa.Column("user_metadata", sa.JSON, nullable=True),
        sa.Column("headers", sa.JSON, nullable=True),
        sa.Column("storage_class", sa.String(32), nullable=False),
        sa.Column("sse_recipient", sa.String(255), nullable=True),
        sa.Column("checksum_algorithm", sa.String(16), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.UniqueConstraint("upload_id", name="uq_multipart_uploads_upload_id"),
        **WITH_ID,
    )
    op.create_index(
        "ix_multipart_uploads_bucket_key", "multipart_uploads", ["bucket_id", "key", "created_at"]
    )
    op.create_index("ix_multipart_uploads_created", "multipart_uploads", ["created_at"])
    op.create_table(
        "multipart_parts",
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
        sa.Column("seek_table", _big_bytes(), nullable=False),
        sa.Column("header_mac", sa.LargeBinary, nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("checksums", sa.JSON, nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        **MYSQL,
    )
    op.create_index("ix_multipart_parts_blob", "multipart_parts", ["blob_id"])


def downgrade() -> None:
    op.drop_table("multipart_parts")
    op.drop_table("multipart_uploads")
