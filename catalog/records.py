"""Plain records the catalog returns and accepts.

They are frozen dataclasses so they can be cached and shared between threads. Object keys
are ``str`` here; the catalog stores them as their UTF-8 bytes so that both engines sort
them in S3's order (bytewise) and no collation folds case or trailing spaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

ROLE_ADMIN = "admin"
ROLE_MEMBER = "member"


@dataclass(frozen=True)
class Org:
    id: int
    name: str
    created_at: datetime
    #: Public age recipient (``age1...``) every managed segment of the org is sealed to.
    recipient: str
    #: The org's X25519 identity, wrapped by the operator's master key.
    identity_wrapped: bytes
    #: Which master key wrapped it (so rotation can find the stale ones).
    identity_key_id: str
    quota_bytes: int | None = None
    stored_bytes: int = 0
    #: Free-form org settings (JSON); shared between threads, never mutate it.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    password_hash: str | None
    created_at: datetime
    disabled: bool = False
    is_operator: bool = False


@dataclass(frozen=True)
class Membership:
    org_id: int
    user_id: int
    role: str


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    user_id: int
    org_id: int
    #: The secret, wrapped by the master key (SigV4 needs the secret itself).
    secret_wrapped: bytes
    secret_key_id: str
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Bucket:
    id: int
    org_id: int
    name: str
    region: str
    #: The configured backend instance holding this bucket's blobs.
    backend: str
    created_at: datetime
    #: For a vault bucket, the owner's age recipient; the gateway can write, never read.
    vault_recipient: str | None = None
    #: Free-form bucket settings (JSON); shared between threads, never mutate it.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Blob:
    """A backend object: one sealed segment or a container of them."""

    id: int
    org_id: int
    backend: str
    key: str
    size: int
    storage_class: str
    created_at: datetime


@dataclass(frozen=True)
class Segment:
    """One sealed segment of an object and where its bytes are.

    ``blob_offset``/``sealed_size`` locate it inside its blob (offset 0 and the blob's size
    for a blob holding one segment). ``age_header`` is the segment's age header, kept so a
    range read needs no extra round trip; ``payload_offset`` is where the encrypted payload
    starts inside the segment (the header length plus the 16-byte nonce).
    """

    part_number: int
    blob: Blob
    blob_offset: int
    sealed_size: int
    plain_size: int
    md5: str
    sha256: str
    age_header: bytes
    payload_offset: int
    seek_table: bytes
    header_mac: bytes
    recipient: str


@dataclass(frozen=True)
class NewSegment:
    """A segment just written to a blob, ready to be committed with its object."""

    part_number: int
    backend: str
    blob_key: str
    blob_size: int
    storage_class: str
    blob_offset: int
    sealed_size: int
    plain_size: int
    md5: str
    sha256: str
    age_header: bytes
    payload_offset: int
    seek_table: bytes
    header_mac: bytes
    recipient: str
    #: If the blob already has a row (a copy reusing a blob), its id; else a row is created.
    blob_id: int | None = None


@dataclass(frozen=True)
class ObjectRecord:
    id: int
    bucket_id: int
    key: str
    size: int
    etag: str
    sha256: str
    content_type: str
    user_metadata: dict[str, str]
    created_at: datetime
    modified_at: datetime
    #: The class the client asked for (what HEAD and LIST report while staged).
    storage_class: str
    #: Extra stored headers (Content-Encoding, Cache-Control, ...).
    headers: dict[str, str] = field(default_factory=dict)
    #: Empty in listings; filled by ``get_object``.
    segments: tuple[Segment, ...] = ()
    #: For SSE-C objects, the recipient derived from the customer key.
    sse_recipient: str | None = None
    #: When the object was last read, as recorded at most once a day (None: never).
    last_access: datetime | None = None


@dataclass(frozen=True)
class NewObject:
    bucket_id: int
    key: str
    size: int
    etag: str
    sha256: str
    content_type: str
    user_metadata: dict[str, str]
    storage_class: str
    segments: tuple[NewSegment, ...]
    modified_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    sse_recipient: str | None = None


@dataclass(frozen=True)
class ListPage:
    """One page of a listing, in key order.

    ``next_marker`` is the key (or common prefix) to continue after when ``is_truncated``.
    """

    objects: list[ObjectRecord]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None


@dataclass(frozen=True)
class UsageEvent:
    """A metered write, recorded in the same transaction as the write itself."""

    org_id: int
    action: str
    user_id: int | None = None
    bucket_id: int | None = None
    bytes: int = 0
    count: int = 1


@dataclass(frozen=True)
class Intent:
    """A blob that may exist in a backend without an object row referencing it."""

    id: int
    backend: str
    blob_key: str
    created_at: datetime
    reason: str


@dataclass(frozen=True)
class CommitResult:
    object: ObjectRecord
    #: The replaced object, if the write overwrote one.
    replaced: ObjectRecord | None
    #: Blobs no object references any more; each already has a garbage intent row, so the
    #: caller may delete them now and the sweep finishes the job if it cannot.
    garbage: list[Intent]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    org_id: int | None
    details: dict[str, Any]


RESTORE_ONGOING = "ongoing"
RESTORE_DONE = "done"


@dataclass(frozen=True)
class RestoreRecord:
    """A blob asked back from cold storage: ``ongoing`` until readable, then ``done``
    with the copy readable until ``expires_at``."""

    blob: Blob
    org_id: int
    tier: str
    days: int
    status: str
    requested_by: str
    requested_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None
    quote_usd: Decimal | None

    def readable_at(self, now: datetime) -> bool:
        return self.status == RESTORE_DONE and (self.expires_at is None or self.expires_at > now)

    def ongoing(self) -> bool:
        return self.status == RESTORE_ONGOING
