"""Tables of the admin API area (see catalog/tables_admin.py): restore jobs and their items.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28

Types are spelled out here, never imported from the schema modules, so this migration
keeps creating the same tables whatever later versions of those modules say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
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


def _key() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.VARBINARY(1024), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "restore_jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "org_id", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("bucket_id", sa.Integer, nullable=False),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", _key(), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("destination", sa.JSON, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("requested_at", _ts(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.Column("quote_usd", sa.Numeric(14, 6), nullable=True),
        sa.Column("objects_total", sa.BigInteger, nullable=False),
        sa.Column("bytes_total", sa.BigInteger, nullable=False),
        sa.Column("objects_ready", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_ready", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("objects_copied", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("objects_failed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("error", sa.String(1024), nullable=True),
        **WITH_ID,
    )
    op.create_index("ix_restore_jobs_org", "restore_jobs", ["org_id", "id"])
    op.create_index("ix_restore_jobs_status", "restore_jobs", ["status", "id"])
    op.create_table(
        "restore_job_items",
        sa.Column(
            "job_id",
            sa.BigInteger,
            sa.ForeignKey("restore_jobs.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key", _key(), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.String(1024), nullable=True),
        **MYSQL,
    )


def downgrade() -> None:
    # Dropping the tables drops their indexes; MySQL refuses to drop ix_restore_jobs_org on
    # its own while the org foreign key needs it.
    op.drop_table("restore_job_items")
    op.drop_table("restore_jobs")
