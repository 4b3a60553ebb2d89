"""Initial catalog: orgs, users, memberships, access keys, buckets, blobs, objects,
segments, intents, usage, leases, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Types are spelled out here rather than imported from ``catalog.schema`` so this migration
keeps creating the same tables whatever later versions of the schema module say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_bin"}
#: Surrogate ids are never reused on SQLite either.
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
        "orgs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("identity_wrapped", sa.LargeBinary, nullable=False),
        sa.Column("identity_key_id", sa.String(255), nullable=False),
        sa.Column("quota_bytes", sa.BigInteger, nullable=True),
        sa.Column("stored_bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("settings", sa.JSON, nullable=True),
        sa.UniqueConstraint("name", name="uq_orgs_name"),
        **WITH_ID,
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_operator", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("settings", sa.JSON, nullable=True),
        sa.UniqueConstraint("name", name="uq_users_name"),
        **WITH_ID,
    )
    op.create_table(
        "memberships",
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(32), nullable=False),
        **MYSQL,
    )
    op.create_index("ix_memberships_user", "memberships", ["user_id"])
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(128), primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("secret_wrapped", sa.LargeBinary, nullable=False),
        sa.Column("secret_key_id", sa.String(255), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        **MYSQL,
    )
    op.create_index("ix_access_keys_user", "access_keys", ["user_id"])
    op.create_table(
        "buckets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("vault_recipient", sa.String(255), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("settings", sa.JSON, nullable=True),
        sa.UniqueConstraint("org_id", "name", name="uq_buckets_org_name"),
        **WITH_ID,
    )
    op.create_table(
        "blobs",
        sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("key", _key(), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("storage_class", sa.String(32), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.UniqueConstraint("backend", "key", name="uq_blobs_backend_key"),
        **WITH_ID,
    )
    op.create_table(
        "objects",
        sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
        sa.Column("bucket_id", sa.Integer, sa.ForeignKey("buckets.id"), nullable=False),
        sa.Column("key", _key(), nullable=False),
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
        sa.UniqueConstraint("bucket_id", "key", name="uq_objects_bucket_key"),
        **WITH_ID,
    )
    op.create_table(
        "segments",
        sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
        sa.Column(
            "object_id",
            sa.BigInteger,
            sa.ForeignKey("objects.id", ondelete="CASCADE"),
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
        sa.UniqueConstraint("object_id", "part_number", name="uq_segments_object_part"),
        **WITH_ID,
    )
    op.create_index("ix_segments_blob", "segments", ["blob_id"])
    op.create_table(
        "intents",
        sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("blob_key", _key(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        **WITH_ID,
    )
    op.create_index("ix_intents_created", "intents", ["created_at"])
    op.create_index("ix_intents_blob", "intents", ["backend", "blob_key"])
    op.create_table(
        "usage",
        sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
        sa.Column("hour", _ts(), nullable=False),
        sa.Column("org_id", sa.Integer, nullable=False),
        sa.Column("bucket_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("user_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
        sa.UniqueConstraint(
            "org_id", "hour", "bucket_id", "user_id", "action", name="uq_usage_row"
        ),
        **WITH_ID,
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        **MYSQL,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("org_id", sa.Integer, nullable=True),
        sa.Column("details", sa.JSON, nullable=True),
        **WITH_ID,
    )
    op.create_index("ix_audit_org", "audit_log", ["org_id", "id"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "leases",
        "usage",
        "intents",
        "segments",
        "objects",
        "blobs",
        "buckets",
        "access_keys",
        "memberships",
        "users",
        "orgs",
    ):
        op.drop_table(table)
