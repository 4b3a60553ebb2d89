"""The orphan sweep: remove blobs that no object references.

A blob can be left without an object row in three ways: an upload died before its catalog
commit, a commit failed, or an overwrite/delete made a blob unreferenced and the immediate
delete after it did not happen. Each case leaves an intent row (DESIGN.md, Catalog). The sweep
looks only at intents older than ``older_than``, so it never races an upload in flight, and
deletes a blob only after the catalog has atomically forgotten it, so a concurrent copy can
never end up pointing at a deleted blob.

Below the blobs, a backend's own interrupted writes can leave debris no intent knows of
(a ``localfs`` data file written before a crash, an S3 multipart upload never completed):
:func:`remove_leftovers` asks each backend to clear what is older than the same age.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from catalog.api import Catalog
from gateway.errors import CoolStorageError
from tiering.backends.base import Backend

log = logging.getLogger(__name__)


def sweep_orphans(
    catalog: Catalog,
    backends: Mapping[str, Backend],
    older_than: datetime,
    *,
    limit: int = 1000,
) -> int:
    """Settle every intent older than ``older_than``; return how many blobs were deleted.

    Idempotent and safe to interrupt at any point: an intent is removed only after its blob
    is known to be either referenced or deleted.
    """
    deleted = 0
    for intent in catalog.due_intents(older_than, limit=limit):
        backend = backends.get(intent.backend)
        if backend is None:
            log.warning("intent %s names unknown backend %r; left alone", intent.id, intent.backend)
            continue
        try:
            if catalog.forget_blob(intent.backend, intent.blob_key):
                backend.delete(intent.blob_key)
                deleted += 1
            catalog.remove_intent(intent.id)
        except CoolStorageError as exc:
            log.warning("sweep of blob %s failed, will retry: %s", intent.blob_key, exc)
    if deleted:
        log.info("orphan sweep deleted %d blobs", deleted)
    return deleted


def remove_leftovers(backends: Mapping[str, Backend], older_than: datetime) -> int:
    """Each backend's :meth:`~tiering.backends.base.Backend.remove_leftovers`; how many
    leftovers were removed in all. A backend that fails is logged and retried next time."""
    removed = 0
    for name, backend in backends.items():
        try:
            removed += backend.remove_leftovers(older_than)
        except CoolStorageError as exc:
            log.warning("removing leftovers of backend %s failed, will retry: %s", name, exc)
    return removed
