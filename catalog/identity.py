"""Catalog queries for users, memberships, access keys, grants, tokens, login failures.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_identity`.
"""

from __future__ import annotations

from catalog.base import CatalogBase


class IdentityQueries(CatalogBase):
    """Queries for users, memberships, access keys, grants, tokens, login failures."""
