"""Catalog queries for WebDAV locks and dead properties.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_dav`.
"""

from __future__ import annotations

from catalog.base import CatalogBase


class DavQueries(CatalogBase):
    """Queries for WebDAV locks and dead properties."""
