"""Read metering: in-memory counters flushed to the catalog every few seconds.

Writes record their usage in their own catalog transaction; reads (GET, HEAD, LIST,
PROPFIND) are too frequent for a row each, so they add to counters here that a flusher
thread writes out every ``interval`` seconds. A crash loses at most one interval of read
counters (documented in the README). ``last_access`` is written at most once a day per
object, in the same flush.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from catalog.api import Catalog

log = logging.getLogger(__name__)

#: How many objects' last-touch days are remembered before the memo is cleared.
_TOUCH_MEMO_LIMIT = 100_000


class UsageMeter:
    """Thread-safe read counters keyed by (org, bucket, action)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, int | None, str], list[int]] = defaultdict(lambda: [0, 0])
        self._touched: set[int] = set()
        self._touch_memo: dict[int, date] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def count_read(self, org_id: int, bucket_id: int | None, action: str, nbytes: int = 0) -> None:
        with self._lock:
            entry = self._counts[(org_id, bucket_id, action)]
            entry[0] += 1
            entry[1] += nbytes

    def touch(self, object_id: int) -> None:
        """Note a read of ``object_id``; written to ``last_access`` once a day at most."""
        today = datetime.now(UTC).date()
        with self._lock:
            if self._touch_memo.get(object_id) == today:
                return
            if len(self._touch_memo) >= _TOUCH_MEMO_LIMIT:
                self._touch_memo.clear()
            self._touch_memo[object_id] = today
            self._touched.add(object_id)

    def flush(self, catalog: Catalog) -> None:
        """Write the counters out; on failure they are put back for the next flush."""
        with self._lock:
            counts = {k: (v[0], v[1]) for k, v in self._counts.items()}
            touched = self._touched
            self._counts.clear()
            self._touched = set()
        if not counts and not touched:
            return
        try:
            if counts:
                catalog.add_read_counts(counts)
            if touched:
                catalog.touch_last_access(touched, datetime.now(UTC))
        except Exception:
            log.warning("could not flush read counters; keeping them for the next flush")
            with self._lock:
                for k, (n, b) in counts.items():
                    entry = self._counts[k]
                    entry[0] += n
                    entry[1] += b
                self._touched |= touched

    def start(self, catalog: Catalog, interval: float = 5.0) -> None:
        """Flush every ``interval`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return

        def run() -> None:
            while not self._stop.wait(interval):
                self.flush(catalog)

        self._thread = threading.Thread(target=run, name="usage-flush", daemon=True)
        self._thread.start()

    def stop(self, catalog: Catalog) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush(catalog)
