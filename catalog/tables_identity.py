"""Tables for users, memberships, access keys, grants, tokens, login failures, registered on :data:`catalog.schema.metadata`.

A change here needs a migration in catalog/migrations/versions.
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401

from catalog.schema import metadata  # noqa: F401
