"""Tables of the identity area (see catalog/tables_identity.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Reserved in order so the areas can be built side by side; it creates nothing until its
area needs tables. Types are spelled out here, never imported from the schema modules.
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
