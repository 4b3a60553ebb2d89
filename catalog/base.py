"""Shared plumbing of the Catalog and its area mixins: the engine, transactions, the cache.

Each area of the catalog (identity, multipart uploads, WebDAV locks and properties,
tiering) is a mixin class over :class:`CatalogBase` in its own module, with its tables in
its own ``catalog/tables_*.py`` module, so the areas grow without editing one shared file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection

from catalog.cache import TTLCache
from catalog.db import display_url, is_sqlite, make_engine, run_transaction
from catalog.group_commit import GroupCommitter

T = TypeVar("T")


class CatalogBase:
    """Engine, transactions and the short-lived cache every catalog area uses."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        cache_ttl: float = 30.0,
    ) -> None:
        """Connect lazily to ``url`` (``sqlite:///path`` or ``mysql+pymysql://...``).

        SQLite runs in WAL mode with a busy timeout; its parent directory is created.
        ``cache_ttl`` bounds how long orgs, users, access keys and buckets are cached
        (at most 30 seconds in production; 0 disables the cache).
        """
        self.display_url = display_url(url)
        self._engine = make_engine(url, pool_size=pool_size, echo=echo)
        self._sqlite = is_sqlite(self._engine)
        self._cache: TTLCache[Any] = TTLCache(min(cache_ttl, 30.0))
        # SQLite has one writer at a time: writers of this process queue here (and share
        # commits, see catalog/group_commit.py) rather than on SQLite's busy handler, which
        # polls with sleeps of 1, 2, 5, 10... ms while the lock is free. Other processes
        # (the CLI) still meet the busy timeout.
        self._group_commit = (
            GroupCommitter(self._engine, url=self.display_url) if self._sqlite else None
        )

    # -- plumbing --------------------------------------------------------------------------
    def _write(
        self, fn: Callable[[Connection], T], *, what: str = "", retry_unique: bool = False
    ) -> T:
        if self._group_commit is not None:
            return self._group_commit.run(fn, what=what, retry_unique=retry_unique)
        return run_transaction(
            self._engine,
            fn,
            write=True,
            url=self.display_url,
            what=what,
            retry_unique=retry_unique,
        )

    def _read(self, fn: Callable[[Connection], T]) -> T:
        return run_transaction(self._engine, fn, write=False, url=self.display_url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``mysql`` (MariaDB included)."""
        return "sqlite" if self._sqlite else "mysql"
