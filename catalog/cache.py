"""A small, thread-safe cache whose entries live at most ``ttl`` seconds.

The catalog caches principals, access keys, orgs and buckets with it, never for longer than
30 seconds, so a revocation or a deletion on another replica takes effect everywhere within
that time; changes made through this process invalidate their entries at once. The write
path's authoritative checks (does the bucket still exist, is there room in the quota) are
made inside the write's own transaction, never from a cache.

Keys that derive from a secret must be an HMAC of it (see DESIGN.md), never the secret.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

_MISSING = object()


class TTLCache(Generic[V]):
    """Map of ``key -> value`` where each entry expires ``ttl`` seconds after it was put.

    ``ttl <= 0`` disables the cache (every lookup misses), which tests use. At most
    ``maxsize`` entries are kept; the least recently stored go first.
    """

    def __init__(
        self,
        ttl: float = 30.0,
        *,
        maxsize: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = float(ttl)
        self.maxsize = maxsize
        self._clock = clock
        self._lock = threading.Lock()
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()

    def get(self, key: Hashable, default: V | None = None) -> V | None:
        """The cached value, or ``default`` if absent or expired."""
        found = self._lookup(key)
        return default if found is _MISSING else found  # type: ignore[return-value]

    def _lookup(self, key: Hashable) -> object:
        if self.ttl <= 0:
            return _MISSING
        now = self._clock()
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return _MISSING
            expires, value = entry
            if expires <= now:
                del self._data[key]
                return _MISSING
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` for at most ``ttl`` seconds."""
        if self.ttl <= 0:
            return
        expires = self._clock() + self.ttl
        with self._lock:
            self._data[key] = (expires, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        """The cached value, else ``load()``, cached unless it is ``None`` (so a name that
        does not exist yet is looked up again next time)."""
        found = self._lookup(key)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        value = load()
        if value is not None:
            self.put(key, value)
        return value

    def update(self, key: Hashable, change: Callable[[V], V]) -> None:
        """Replace a live entry with ``change(value)``, keeping its expiry (a local change
        the entry can absorb without a reload); an absent or expired entry stays absent."""
        now = self._clock()
        with self._lock:
            entry = self._data.get(key)
            if entry is not None and entry[0] > now:
                self._data[key] = (entry[0], change(entry[1]))

    def invalidate(self, key: Hashable) -> None:
        """Forget ``key`` (after a local change)."""
        with self._lock:
            self._data.pop(key, None)

    def invalidate_where(self, predicate: Callable[[Hashable, V], bool]) -> None:
        """Forget every entry for which ``predicate(key, value)`` holds."""
        with self._lock:
            for key in [k for k, (_, v) in self._data.items() if predicate(k, v)]:
                del self._data[key]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)
