"""The catalog: all metadata and the only place SQL lives.

- :mod:`catalog.api` — :class:`~catalog.api.Catalog`, the API every other layer calls
  (``Catalog(url, cache_ttl=30)``, ``upgrade()`` for ``coolstorage db upgrade``,
  ``check()`` at start-up).
- :mod:`catalog.records` — the frozen records it accepts and returns.
- :mod:`catalog.counters` — :class:`~catalog.counters.ReadCounters`, in-memory read
  counters flushed every few seconds.
- :mod:`catalog.cache` — :class:`~catalog.cache.TTLCache`, the bounded cache (at most 30 s).
- :mod:`catalog.schema` and ``catalog/migrations`` — tables and their Alembic migrations; a
  schema change needs a new migration (``alembic -c catalog/alembic.ini revision -m ...``).
- :mod:`catalog.db` — engines, transactions, retries and error translation.
"""
