"""Tables of the dav area (see catalog/tables_dav.py): WebDAV locks and dead properties.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

Types are spelled out here, never imported from the schema modules, so this migration
keeps creating the same tables whatever later versions of those modules say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
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
        "dav_locks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("token", sa.String(128), nullable=False),
        sa.Column(
            "root",
            sa.LargeBinary().with_variant(mysql.VARBINARY(2048), "mysql", "mariadb"),
            nullable=False,
        ),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("depth", sa.String(16), nullable=False),
        sa.Column("owner", sa.LargeBinary, nullable=False),
        sa.Column("timeout", sa.Float, nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.UniqueConstraint("token", name="uq_dav_locks_token"),
        **WITH_ID,
    )
    op.create_index("ix_dav_locks_root", "dav_locks", ["root"])
    op.create_index("ix_dav_locks_expires", "dav_locks", ["expires_at"])
    op.create_table(
        "dav_properties",
        sa.Column(
            "object_id",
            sa.BigInteger,
            sa.ForeignKey("objects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "name",
            sa.LargeBinary().with_variant(mysql.VARBINARY(1024), "mysql", "mariadb"),
            primary_key=True,
        ),
        sa.Column(
            "value",
            sa.LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb"),
            nullable=False,
        ),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("dav_properties")
    op.drop_index("ix_dav_locks_expires", table_name="dav_locks")
    op.drop_index("ix_dav_locks_root", table_name="dav_locks")
    op.drop_table("dav_locks")
