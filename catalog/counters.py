"""In-memory read counters, flushed to the catalog every few seconds.

Reads (GET, HEAD, LIST, PROPFIND) are far too frequent for a catalog write each, so request
threads add to counters here and a flusher thread hands them to
:meth:`catalog.api.Catalog.add_read_counts` every ``interval`` seconds, together with the
objects whose ``last_access`` is due (at most one update a day per object).

A crash loses at most one interval of read counters (documented for operators). A flush that
fails keeps its counts for the next one, so a catalog outage delays counts, it does not drop
them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from catalog.records import ObjectRecord

log = logging.getLogger(__name__)

#: ``last_access`` is written at most this often per object.
LAST_ACCESS_RESOLUTION = timedelta(days=1)

CounterKey = tuple[int, int | None, str]


class _Sink(Protocol):
    def add_read_counts(self, counts: dict[CounterKey, tuple[int, int]]) -> None: ...

    def touch_last_access(self, object_ids: list[int], at: datetime) -> None: ...


class ReadCounters:
    """Thread-safe counters of reads per ``(org_id, bucket_id, action)``.

    Use :meth:`add` from request threads, :meth:`start` once (a daemon thread flushes every
    ``interval`` seconds) and :meth:`stop` at shutdown (flushes what is left).
    """

    def __init__(
        self,
        catalog: _Sink,
        *,
        interval: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: dict[CounterKey, tuple[int, int]] = {}
        self._touched: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(
        self, org_id: int, bucket_id: int | None, action: str, *, nbytes: int = 0, count: int = 1
    ) -> None:
        """Count ``count`` reads of ``nbytes`` bytes in all."""
        key = (org_id, bucket_id, action)
        with self._lock:
            c, b = self._counts.get(key, (0, 0))
            self._counts[key] = (c + count, b + nbytes)

    def note_read(self, obj: ObjectRecord) -> None:
        """Queue a ``last_access`` update for ``obj`` if its recorded one is a day old."""
        last = obj.last_access
        if last is None or self._clock() - last >= LAST_ACCESS_RESOLUTION:
            with self._lock:
                self._touched.add(obj.id)

    def pending(self) -> dict[CounterKey, tuple[int, int]]:
        """A copy of the counts not flushed yet."""
        with self._lock:
            return dict(self._counts)

    def flush(self) -> int:
        """Write the counts (and due ``last_access`` updates) to the catalog now; returns the
        number of counter rows written. On failure the counts are kept and it raises."""
        with self._lock:
            counts, self._counts = self._counts, {}
            touched, self._touched = self._touched, set()
        try:
            if counts:
                self._catalog.add_read_counts(counts)
        except BaseException:
            self._merge_back(counts, touched)
            raise
        try:
            if touched:
                self._catalog.touch_last_access(sorted(touched), self._clock())
        except BaseException:
            self._merge_back({}, touched)
            raise
        return len(counts)

    def _merge_back(self, counts: dict[CounterKey, tuple[int, int]], touched: set[int]) -> None:
        with self._lock:
            for key, (c, b) in counts.items():
                c0, b0 = self._counts.get(key, (0, 0))
                self._counts[key] = (c0 + c, b0 + b)
            self._touched |= touched

    def start(self) -> None:
        """Start the flusher thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="read-counters", daemon=True)
        self._thread.start()

    def stop(self, *, flush: bool = True) -> None:
        """Stop the flusher thread and (by default) flush what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.interval, 1.0) + 30)
            self._thread = None
        if flush:
            self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:
                log.warning("flushing read counters failed (kept for the next try): %s", exc)
