"""Catalog queries for restores, policies, containers, staging and placement.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_tiering`.
"""

from __future__ import annotations

from catalog.base import CatalogBase


class TieringQueries(CatalogBase):
    """Queries for restores, policies, containers, staging and placement."""
