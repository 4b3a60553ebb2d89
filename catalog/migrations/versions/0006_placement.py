"""Tables of the placement area (see catalog/tables_placement.py): regions, client networks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27

Types are spelled out here, never imported from the schema modules, so this migration
keeps creating the same tables whatever later versions of those modules say.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _ts() -> sa.types.TypeEngine[Any]:
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "regions",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("latitude", sa.Double, nullable=True),
        sa.Column("longitude", sa.Double, nullable=True),
        sa.Column("countries", sa.JSON, nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("prices", sa.JSON, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        **MYSQL,
    )
    op.create_table(
        "placement_networks",
        sa.Column("cidr", sa.String(64), primary_key=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("latitude", sa.Double, nullable=True),
        sa.Column("longitude", sa.Double, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("placement_networks")
    op.drop_table("regions")
