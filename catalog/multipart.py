"""Catalog queries for multipart uploads and their parts.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_multipart`.
"""

from __future__ import annotations

from catalog.base import CatalogBase


class MultipartQueries(CatalogBase):
    """Queries for multipart uploads and their parts."""
