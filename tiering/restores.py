"""Restores: polling the backends until restored copies are readable.

A restore is a row of the catalog's ``restores`` table, keyed by blob (ObjectService files
it, quoting and charging it first). The engine polls each ongoing one with backoff: the
first poll at once, then after a quarter of the time it has been running, at least
``min_delay`` and at most ``max_delay`` apart, so a Deep Archive restore (hours) costs a few
dozen HEAD requests and a localfs one (seconds) is noticed within seconds. When the copy is
readable the row is marked done with the backend's expiry; reads then go to the restored
copy in place until it expires. Nothing is copied again, and the engine never moves a
container's members out of it while a client's copy is readable (tiering/transitions.py).

Each completion is announced once by the optional webhook (tiering/webhook.py); the row's
``notified_at`` records the delivery, so a crash between completion and delivery only
delays the message, and completions a reader noticed first (ObjectService settles a
restore it finds readable) are announced too.

Org settings the front ends read (``update_org_settings``; the admin API edits them):

- ``restore_budget_usd``: the most the org's restores may be quoted in a calendar month
  (UTC); a restore beyond it is refused with ``RestoreBudgetExceeded`` (403). Unset: no cap.
- ``restore_on_read`` (default false): a WebDAV GET of an archived object files a restore
  and answers 503 with Retry-After, instead of a 403 naming the way to restore.
- ``restore_tier`` (default ``Standard``): the tier restore-on-read uses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from catalog.records import RestoreRecord
from gateway.errors import BlobNotFound, CoolStorageError
from tiering.backends.base import COLD_CLASSES, Backend

if TYPE_CHECKING:
    from catalog.api import Catalog

log = logging.getLogger(__name__)

#: Restore tiers Deep Archive offers, with the longest each may take.
TIER_HOURS = {"Standard": 12, "Bulk": 48}


@dataclass(frozen=True)
class PollReport:
    """What one round of polling did."""

    polled: int
    completed: list[RestoreRecord]
    failed: int


def month_start(now: datetime) -> datetime:
    """The first instant of ``now``'s calendar month (UTC): budgets reset then."""
    at = now.astimezone(UTC)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def restore_budget(settings: Mapping[str, Any]) -> Decimal | None:
    """The org setting ``restore_budget_usd`` (None: no cap; unusable values count as 0,
    so a typo never lifts a cap)."""
    value = settings.get("restore_budget_usd")
    if value is None:
        return None
    try:
        budget = Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)
    return budget if budget.is_finite() and budget >= 0 else Decimal(0)


def retry_after(tier: str) -> int:
    """Seconds a client should wait before reading again (DESIGN.md: up to 12 hours for
    Standard, 48 for Bulk)."""
    return TIER_HOURS.get(tier, 12) * 3600


def next_poll_delay(row: RestoreRecord, now: datetime, min_delay: float, max_delay: float) -> float:
    """Backoff: a quarter of the time the restore has been running, within the bounds."""
    running = max((now - row.requested_at).total_seconds(), 0.0)
    return min(max(running / 4, min_delay), max_delay)


def poll_restores(
    catalog: Catalog,
    backends: Mapping[str, Backend],
    *,
    now: datetime | None = None,
    min_delay: float = 5.0,
    max_delay: float = 900.0,
    limit: int = 500,
) -> PollReport:
    """Poll every ongoing restore whose next poll is due; mark the finished ones done."""
    at = now or datetime.now(UTC)
    completed: list[RestoreRecord] = []
    polled = failed = 0
    while True:
        rows = catalog.due_restore_polls(at, limit=limit)
        if not rows:
            break
        for row in rows:
            polled += 1
            done = _poll_one(catalog, backends, row, at, min_delay, max_delay)
            if done is None:
                failed += 1
            elif done:
                completed.append(row)
        if len(rows) < limit:
            break
    return PollReport(polled=polled, completed=completed, failed=failed)


def _poll_one(
    catalog: Catalog,
    backends: Mapping[str, Backend],
    row: RestoreRecord,
    now: datetime,
    min_delay: float,
    max_delay: float,
) -> bool | None:
    """True if the restore finished, False if it runs on, None if polling failed."""
    blob = row.blob
    later = now + timedelta(seconds=next_poll_delay(row, now, min_delay, max_delay))
    backend = backends.get(blob.backend)
    if backend is None:
        log.warning("restore of blob %s: no backend %r is configured", blob.id, blob.backend)
        catalog.postpone_restore_poll(blob.id, now + timedelta(seconds=max_delay))
        return None
    if blob.storage_class not in COLD_CLASSES:
        catalog.finish_restore(blob.id, expires_at=now + timedelta(days=row.days))
        return True
    try:
        status = backend.restore_status(blob.key)
        if status.readable:
            expires = status.expires_at or now + timedelta(days=row.days)
            catalog.finish_restore(blob.id, expires_at=expires)
            log.info(
                "restore done",
                extra={"blob": blob.key, "tier": row.tier, "expires": expires.isoformat()},
            )
            return True
        if not status.requested:
            # The backend has no restore running (it was lost, or expired unseen): ask again.
            backend.request_restore(blob.key, days=row.days, tier=row.tier)
        catalog.postpone_restore_poll(blob.id, later)
        return False
    except BlobNotFound:
        log.warning("restore of blob %s: the backend no longer has it", blob.key)
        catalog.postpone_restore_poll(blob.id, now + timedelta(seconds=max_delay))
        return None
    except CoolStorageError as error:
        log.warning("restore poll of %s failed, will retry: %s", blob.key, error)
        catalog.postpone_restore_poll(blob.id, later)
        return None


def restore_message(catalog: Catalog, row: RestoreRecord, *, max_objects: int = 1000) -> dict[str, Any]:
    """The webhook's JSON message for a completed restore."""
    org = catalog.get_org_by_id(row.org_id)
    names: dict[int, str] = {}
    objects = []
    found = catalog.objects_in_blob(row.blob.id, limit=max_objects + 1)
    for bucket_id, key in found[:max_objects]:
        if bucket_id not in names:
            bucket = catalog.get_bucket_by_id(bucket_id)
            names[bucket_id] = bucket.name if bucket else str(bucket_id)
        objects.append({"bucket": names[bucket_id], "key": key})
    return {
        "event": "restore.completed",
        "org": org.name if org else str(row.org_id),
        "tier": row.tier,
        "days": row.days,
        "requested_by": row.requested_by,
        "requested_at": row.requested_at.isoformat(),
        "completed_at": row.completed_at.isoformat() if row.completed_at else None,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "quote_usd": str(row.quote_usd) if row.quote_usd is not None else None,
        "blob": {"backend": row.blob.backend, "key": row.blob.key, "size": row.blob.size},
        "objects": objects,
        "objects_truncated": len(found) > max_objects,
    }
