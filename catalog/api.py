"""The Catalog: the only place SQL lives.

Every method is one short transaction on a pooled connection and is safe to call from many
request threads at once. Database errors are translated into :mod:`gateway.errors`
(``AlreadyExists`` for unique violations, ``CatalogError`` for connectivity) here, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from catalog.records import (
    AccessKey,
    AuditEntry,
    Bucket,
    CommitResult,
    Intent,
    ListPage,
    Membership,
    NewObject,
    ObjectRecord,
    Org,
    UsageEvent,
    User,
)


class Catalog:
    """Metadata of orgs, users, buckets, objects, blobs, intents, usage and leases."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        """Connect lazily to ``url`` (``sqlite:///path`` or ``mysql+pymysql://...``).

        SQLite runs in WAL mode with a busy timeout; its parent directory is created.
        """
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------------------
    def upgrade(self) -> None:
        """Run the Alembic migrations up to head (``coolstorage db upgrade``)."""
        raise NotImplementedError

    def check(self) -> None:
        """Connect and verify the schema is at head; ``CatalogError`` with one clear line if
        the database is unreachable or needs ``coolstorage db upgrade``."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- orgs and users (identity grows these) ---------------------------------------------
    def create_org(
        self, name: str, *, recipient: str, identity_wrapped: bytes, identity_key_id: str
    ) -> Org:
        raise NotImplementedError

    def get_org(self, name: str) -> Org | None:
        raise NotImplementedError

    def get_org_by_id(self, org_id: int) -> Org | None:
        raise NotImplementedError

    def list_orgs(self) -> list[Org]:
        raise NotImplementedError

    def set_org_identity(self, org_id: int, *, identity_wrapped: bytes, key_id: str) -> None:
        """Replace the wrapped identity (master key rotation); the recipient never changes."""
        raise NotImplementedError

    def set_org_quota(self, org_id: int, quota_bytes: int | None) -> None:
        raise NotImplementedError

    def create_user(
        self, name: str, *, password_hash: str | None, is_operator: bool = False
    ) -> User:
        raise NotImplementedError

    def get_user(self, name: str) -> User | None:
        raise NotImplementedError

    def get_user_by_id(self, user_id: int) -> User | None:
        raise NotImplementedError

    def list_users(self) -> list[User]:
        raise NotImplementedError

    def add_membership(self, org_id: int, user_id: int, role: str) -> Membership:
        """Add or change a membership (idempotent)."""
        raise NotImplementedError

    def memberships_of(self, user_id: int) -> list[Membership]:
        raise NotImplementedError

    def create_access_key(
        self,
        access_key_id: str,
        *,
        user_id: int,
        org_id: int,
        secret_wrapped: bytes,
        secret_key_id: str,
    ) -> AccessKey:
        raise NotImplementedError

    def get_access_key(self, access_key_id: str) -> AccessKey | None:
        raise NotImplementedError

    def list_access_keys(self, user_id: int | None = None) -> list[AccessKey]:
        raise NotImplementedError

    def revoke_access_key(self, access_key_id: str) -> None:
        raise NotImplementedError

    # -- buckets ---------------------------------------------------------------------------
    def create_bucket(
        self,
        org_id: int,
        name: str,
        *,
        region: str,
        backend: str,
        vault_recipient: str | None = None,
    ) -> Bucket:
        """``AlreadyExists`` if the org has a bucket of that name."""
        raise NotImplementedError

    def get_bucket(self, org_id: int, name: str) -> Bucket | None:
        raise NotImplementedError

    def get_bucket_by_id(self, bucket_id: int) -> Bucket | None:
        raise NotImplementedError

    def list_buckets(self, org_id: int) -> list[Bucket]:
        """The org's buckets by name."""
        raise NotImplementedError

    def delete_bucket(self, bucket_id: int) -> None:
        """``BucketNotEmpty`` if any object is left."""
        raise NotImplementedError

    # -- objects ---------------------------------------------------------------------------
    def commit_object(
        self,
        new: NewObject,
        *,
        intent_ids: Iterable[int] = (),
        usage: UsageEvent | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        quota_org_id: int | None = None,
    ) -> CommitResult:
        """Make ``new`` the object at its key, in one transaction.

        Inserts the blob rows its segments need (or reuses ``blob_id``), replaces any object
        at the same key, removes ``intent_ids`` (the upload is now referenced), turns blobs
        of the replaced object that nothing references any more into garbage intents,
        updates the org's stored bytes and records ``usage``.

        ``if_match`` (an ETag) and ``if_none_match`` (``If-None-Match: *``) are checked
        inside the same transaction: ``PreconditionFailed`` if they do not hold. With
        ``quota_org_id`` set, ``QuotaExceeded`` if the org's stored bytes would pass its
        quota.
        """
        raise NotImplementedError

    def get_object(self, bucket_id: int, key: str) -> ObjectRecord | None:
        """The live object with its segments in part order."""
        raise NotImplementedError

    def list_objects(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """A page of objects and common prefixes after ``start_after``, in key order.

        Costs O(page): with a delimiter, a common prefix is skipped over with one indexed
        seek, never scanned key by key.
        """
        raise NotImplementedError

    def delete_object(
        self, bucket_id: int, key: str, *, usage: UsageEvent | None = None
    ) -> tuple[ObjectRecord | None, list[Intent]]:
        """Delete the object at ``key``; return it (None if absent) and the garbage intents
        of the blobs nothing references any more."""
        raise NotImplementedError

    def rename_object(
        self,
        bucket_id: int,
        key: str,
        new_bucket_id: int,
        new_key: str,
        *,
        overwrite: bool = True,
        usage: UsageEvent | None = None,
    ) -> tuple[ObjectRecord, list[Intent]]:
        """Move an object row to another key (same org), keeping its blobs. Returns the
        moved object and garbage intents of an overwritten target. ``ObjectNotFound`` if
        the source is missing; ``PreconditionFailed`` if the target exists and not
        ``overwrite``."""
        raise NotImplementedError

    def count_objects(self, bucket_id: int) -> int:
        raise NotImplementedError

    def touch_last_access(self, object_ids: Iterable[int], at: datetime) -> None:
        """Record a read; callers call it at most once a day per object."""
        raise NotImplementedError

    # -- intents and sweeps ----------------------------------------------------------------
    def add_intent(self, backend: str, blob_key: str, *, reason: str = "upload") -> Intent:
        """Record that ``blob_key`` is about to be written (before the upload starts)."""
        raise NotImplementedError

    def remove_intent(self, intent_id: int) -> None:
        raise NotImplementedError

    def due_intents(self, older_than: datetime, *, limit: int = 1000) -> list[Intent]:
        """Intents created before ``older_than``, oldest first."""
        raise NotImplementedError

    def blob_is_referenced(self, backend: str, blob_key: str) -> bool:
        """True if any segment of any live object lives in that blob."""
        raise NotImplementedError

    def forget_blob(self, backend: str, blob_key: str) -> None:
        """Drop the blob row of an unreferenced blob (after the backend deleted it)."""
        raise NotImplementedError

    # -- usage -----------------------------------------------------------------------------
    def add_read_counts(self, counts: Mapping[tuple[int, int | None, str], tuple[int, int]]) -> None:
        """Add flushed read counters: ``(org_id, bucket_id, action) -> (count, bytes)``,
        into the current hour's usage row."""
        raise NotImplementedError

    def usage_totals(self, org_id: int) -> dict[str, tuple[int, int]]:
        """``action -> (count, bytes)`` over all recorded usage of the org."""
        raise NotImplementedError

    # -- leases ----------------------------------------------------------------------------
    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take or renew the lease ``name`` for ``owner``; False if someone else holds an
        unexpired lease. Never holds a transaction open beyond the call."""
        raise NotImplementedError

    def release_lease(self, name: str, owner: str) -> None:
        raise NotImplementedError

    # -- audit -----------------------------------------------------------------------------
    def audit(
        self, actor: str, action: str, *, org_id: int | None = None, **details: object
    ) -> None:
        raise NotImplementedError

    def audit_entries(self, *, org_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
        raise NotImplementedError
