"""Purging deleted-but-retained objects whose time is up (catalog/retention.py).

The engine's ``retention`` task calls :func:`purge_retained` under the lease "retention":
the catalog drops retained versions whose ``retain_until`` has passed (their bytes leave
the org's stored bytes in the same transaction) and returns garbage intents for the blobs
nothing references any more; those blobs are deleted here at once, and the orphan sweep
finishes any this misses (the intents stay until the blob is gone).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from catalog.api import Catalog
from gateway.errors import CoolStorageError
from tiering.backends.base import Backend

log = logging.getLogger(__name__)


@dataclass
class PurgeReport:
    """What one purge did."""

    purged: int = 0
    bytes: int = 0
    blobs_deleted: int = 0

    def __str__(self) -> str:
        return (
            f"{self.purged} retained objects purged ({self.bytes} bytes), "
            f"{self.blobs_deleted} blobs deleted"
        )


def purge_retained(
    catalog: Catalog,
    backends: Mapping[str, Backend],
    *,
    now: datetime | None = None,
    batch: int = 500,
    max_batches: int = 100,
) -> PurgeReport:
    """Purge every retained version due by ``now`` (in batches) and delete the blobs
    left unreferenced. Safe to interrupt: each batch is one transaction, and a blob is
    deleted only after the catalog has forgotten it."""
    at = now or datetime.now(UTC)
    report = PurgeReport()
    for _ in range(max_batches):
        done = catalog.purge_retained(at, limit=batch)
        report.purged += done.purged
        report.bytes += done.bytes
        for intent in done.garbage:
            backend = backends.get(intent.backend)
            if backend is None:
                continue
            try:
                if catalog.forget_blob(intent.backend, intent.blob_key):
                    backend.delete(intent.blob_key)
                    report.blobs_deleted += 1
                catalog.remove_intent(intent.id)
            except CoolStorageError as error:
                log.warning("could not delete %s after purging; the sweep will: %s",
                            intent.blob_key, error)
        if done.purged < batch:
            break
    if report.purged:
        log.info("retention: %s", report)
    return report
