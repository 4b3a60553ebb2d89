"""The ObjectService: the one API every front end uses to reach data.

A front end authenticates a request into a :class:`~gateway.principals.Principal` and calls
these methods; it never touches the catalog, a backend or the sealing code itself.

Writes follow one order, so nothing half-written is ever listed or readable:

1. check access and (with a declared size) the quota, before reading the body;
2. record an intent row for the new blob (so a crash leaves an orphan the sweep may remove);
3. stream the body through the sealer into the backend, never holding it whole;
4. commit the catalog row last, in one transaction with the usage event, the removal of the
   intent, and garbage intents for blobs the write made unreferenced;
5. delete those garbage blobs (best effort: the sweep finishes what a crash interrupts).
"""

from __future__ import annotations

import io
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from catalog.api import Catalog
from catalog.counters import ReadCounters
from catalog.records import (
    RESTORE_DONE,
    Blob,
    Bucket,
    Intent,
    ListPage,
    NewObject,
    NewSegment,
    ObjectRecord,
    Org,
    RestoreRecord,
    Segment,
    UsageEvent,
)
from catalog.retention import RetainedObject
from gateway import sealing
from gateway.errors import (
    AccessDenied,
    AlreadyExists,
    BadDigest,
    BucketNotFound,
    ConfigError,
    InvalidArgument,
    InvalidName,
    InvalidRange,
    NotArchived,
    ObjectArchived,
    ObjectNotFound,
    QuotaExceeded,
    RestoreInProgress,
    VaultSealed,
)
from gateway.multipart import MultipartOperations
from gateway.principals import Action, Principal, authorize
from gateway.sealing.keys import parse_recipient
from gateway.streams import IteratorReader, PrefixedReader, Readable, peek
from tiering.backends.base import COLD_CLASSES, STANDARD, Backend
from tiering.backends.staging import STAGING, StagingBackend
from tiering.placement import Placement

log = logging.getLogger(__name__)

MAX_KEY_BYTES = 1024
#: The longest a restored copy may be kept, as in S3.
MAX_RESTORE_DAYS = 30_000
BLOB_PREFIX = "blobs/"
IDENTITY_PREFIX = "keys/"
#: Master-key wrapping context of org identities (docs/FORMAT.md, Keys): a wrapped value
#: made for one purpose never unwraps as another.
ORG_IDENTITY_CONTEXT = b"org-identity"
#: More than the sealed format ever adds to a small object (headers, frames, seek table,
#: 0.1% for incompressible data): bounds the staging backend's blobs.
_SEALING_OVERHEAD_BOUND = 64 * 1024


class Keyring(Protocol):
    """What the service needs of the master keyring (gateway.sealing.MasterKeyring)."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, plaintext: bytes, *, context: bytes = b"") -> bytes: ...

    def unwrap(self, wrapped: bytes, *, context: bytes = b"") -> bytes: ...


@dataclass(frozen=True)
class RangeSpec:
    """A byte range as a client asks for it.

    ``start``/``end`` inclusive as in HTTP; ``start`` None means a suffix of ``end`` bytes
    (``bytes=-N``); ``end`` None means to the end (``bytes=N-``).
    """

    start: int | None
    end: int | None

    def resolve(self, size: int) -> tuple[int, int]:
        """The half-open ``[first, stop)`` this range covers in an object of ``size`` bytes.

        Raises ``InvalidRange`` when it covers nothing, as S3 answers 416.
        """
        if self.start is None:
            if self.end is None or self.end <= 0:
                raise InvalidRange(self._text(), size)
            return max(0, size - self.end), size
        if self.start >= size or (self.end is not None and self.end < self.start):
            raise InvalidRange(self._text(), size)
        stop = size if self.end is None else min(self.end + 1, size)
        return self.start, stop

    def _text(self) -> str:
        return f"bytes={'' if self.start is None else self.start}-{'' if self.end is None else self.end}"


class ObjectState:
    """The states of DESIGN.md's table, as clients see them."""

    STAGED = "staged"
    ARCHIVED = "archived"
    RESTORING = "restoring"
    RESTORED = "restored"


@dataclass(frozen=True)
class ObjectView:
    """An object as a front end shows it: the record and its client-visible state."""

    record: ObjectRecord
    state: str
    #: DEEP_ARCHIVE once archived (or asked for at PUT), else the class asked for.
    storage_class: str
    restore_expiry: datetime | None = None

    @property
    def readable(self) -> bool:
        return self.state in (ObjectState.STAGED, ObjectState.RESTORED)


@dataclass(frozen=True)
class RestoreTicket:
    """The answer to a restore request.

    ``status`` is ``started`` (a restore began; S3 answers 202) or ``available`` (a
    restored copy is readable already; S3 answers 200). ``quote_usd`` is what the restore
    costs, quoted before it starts, when the cost model knows the prices.
    """

    status: str
    tier: str
    expires_at: datetime | None
    quote_usd: Decimal | None = None


@dataclass
class ObjectRead:
    """An open read: what is being served and the plaintext bytes ``[start, stop)``."""

    view: ObjectView
    start: int
    stop: int
    body: Iterator[bytes]

    @property
    def length(self) -> int:
        return self.stop - self.start


def validate_key(key: str) -> None:
    """Object keys are non-empty UTF-8 of at most 1,024 bytes, as in S3, and nameable as
    paths by every front end."""
    if not key:
        raise InvalidName("an object key cannot be empty")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidName("an object key must be valid UTF-8") from exc
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidName(f"an object key is at most {MAX_KEY_BYTES} bytes of UTF-8")
    # Every front end must be able to name every object: no path (WebDAV, exports, the
    # recovery recipes) can hold a NUL or a '.'/'..' segment.
    if "\x00" in key:
        raise InvalidName("an object key cannot contain U+0000 (NUL)")
    if any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidName("an object key cannot have a '.' or '..' path segment")


def validate_bucket_name(name: str) -> None:
    """S3's bucket naming rules: 3-63 of lowercase letters, digits, '-' and '.'."""
    ok = (
        3 <= len(name) <= 63
        and all(c.islower() or c.isdigit() or c in "-." for c in name)
        and name.isascii()
        and name[0].isalnum()
        and name[-1].isalnum()
        and ".." not in name
        and not all(part.isdigit() for part in name.split("."))
    )
    if not ok:
        raise InvalidName(
            f"{name!r}: a bucket name has 3 to 63 lowercase letters, digits, hyphens and dots,"
            " and starts and ends with a letter or digit"
        )


class ObjectService(MultipartOperations):
    """Buckets and objects of every org, for every front end."""

    def __init__(
        self,
        catalog: Catalog,
        backends: Mapping[str, Backend],
        keyring: Keyring,
        *,
        default_backend: str,
        default_region: str,
        block_size: int = 4 << 20,
        level: int = 3,
        counters: ReadCounters | None = None,
        small_object_threshold: int = 1 << 20,
        placement: Placement | None = None,
    ) -> None:
        if default_backend not in backends:
            raise ConfigError(f"storage.default_backend: no backend named {default_backend!r}")
        self.catalog = catalog
        self.backends = dict(backends)
        self.keyring = keyring
        self.default_backend = default_backend
        self.default_region = default_region
        self.block_size = block_size
        self.level = level
        #: Read metering: in-memory counters the caller starts (``counters.start()``).
        self.counters = counters or ReadCounters(catalog)
        #: Objects up to this many bytes are staged in the catalog, not sent to a backend,
        #: until the engine packs them into a container (0 turns staging off).
        self.small_object_threshold = small_object_threshold
        if small_object_threshold > 0:
            self.backends[STAGING] = StagingBackend(
                catalog, max_size=small_object_threshold + _SEALING_OVERHEAD_BOUND
            )
        self._identities: dict[int, str] = {}
        self._identities_lock = threading.Lock()
        #: Chooses a new bucket's region and backend (None: the defaults above).
        self.placement = placement

    # -- orgs and keys -------------------------------------------------------------------
    def ensure_org(self, name: str) -> Org:
        """The org called ``name``, created with a fresh X25519 identity if it is new.

        The identity is stored wrapped by the master key in the catalog and, for recovery
        without the catalog, as a blob in each backend.
        """
        org = self.catalog.get_org(name)
        if org is not None:
            return org
        identity, recipient = sealing.generate_identity()
        wrapped = self.keyring.wrap(identity.encode(), context=ORG_IDENTITY_CONTEXT)
        try:
            org = self.catalog.create_org(
                name,
                recipient=recipient,
                identity_wrapped=wrapped,
                identity_key_id=self.keyring.key_id,
            )
        except AlreadyExists:
            existing = self.catalog.get_org(name)
            assert existing is not None
            return existing
        self.store_identity_blobs(org)
        return org

    def store_identity_blobs(self, org: Org) -> None:
        """Write the org's wrapped identity to every backend (idempotent)."""
        for backend in self.backends.values():
            if backend.name == STAGING:
                continue
            data = org.identity_wrapped
            backend.put(identity_blob_key(org), io.BytesIO(data), size=len(data))

    def org_identity(self, org: Org) -> str:
        """The org's identity (``AGE-SECRET-KEY-1...``), unwrapped once and kept in memory."""
        with self._identities_lock:
            identity = self._identities.get(org.id)
        if identity is None:
            identity = self.keyring.unwrap(
                org.identity_wrapped, context=ORG_IDENTITY_CONTEXT
            ).decode()
            with self._identities_lock:
                self._identities[org.id] = identity
        return identity

    def forget_identities(self) -> None:
        """Drop unwrapped identities from memory (after a master key rotation)."""
        with self._identities_lock:
            self._identities.clear()

    def _org(self, principal: Principal, org_name: str, action: Action, bucket: str | None) -> Org:
        org = self.catalog.get_org(org_name) if principal.role_in(org_name) else None
        authorize(principal, action, org, bucket)
        assert org is not None
        return org

    # -- buckets -------------------------------------------------------------------------
    def list_orgs(self, principal: Principal) -> list[str]:
        """The orgs the principal may see."""
        return principal.orgs()

    def list_buckets(self, principal: Principal, org_name: str) -> list[Bucket]:
        """The org's buckets the principal may read (a member whose read right comes from
        bucket grants sees just those buckets)."""
        org = self.catalog.get_org(org_name) if principal.role_in(org_name) else None
        rights = principal.rights_in(org_name) if org is not None else None
        if org is None or rights is None:
            authorize(principal, Action.READ, None)
        assert org is not None and rights is not None
        return [b for b in self.catalog.list_buckets(org.id) if rights.sees(b.name)]

    def create_bucket(
        self,
        principal: Principal,
        org_name: str,
        name: str,
        *,
        region: str | None = None,
        vault_recipient: str | None = None,
        client_address: str | None = None,
        user_attributes: Mapping[str, str] | None = None,
    ) -> Bucket:
        """Create a bucket; ``AlreadyExists`` if the org has one of that name.

        With placement configured, a bucket without ``region`` goes where
        :meth:`tiering.placement.Placement.choose` says (the org's ``region`` setting, the
        user's ``user_attributes``, by default the profile the catalog holds for the
        principal, the ``client_address``), and a known region's backend stores it.
        """
        validate_bucket_name(name)
        org = self._org(principal, org_name, Action.WRITE, name)
        if vault_recipient is not None:
            parse_recipient(vault_recipient)
        backend = self.default_backend
        if self.placement is not None:
            if not region and user_attributes is None and principal.user_id is not None:
                # The profile the directory (or an admin) recorded for the user.
                facts = self.catalog.user_facts(user_id=principal.user_id)
                user_attributes = facts.profile if facts is not None else None
            chosen = (
                self.placement.region(region)
                if region
                else self.placement.choose(
                    org_region=org.settings.get("region"),
                    user_attributes=user_attributes,
                    client_address=client_address,
                )
            )
            if chosen is not None and chosen.backend in self.backends:
                region, backend = chosen.code, chosen.backend
        bucket = self.catalog.create_bucket(
            org.id,
            name,
            region=region or self.default_region,
            backend=backend,
            vault_recipient=vault_recipient,
        )
        self.catalog.audit(principal.name, "bucket.create", org_id=org.id, bucket=name)
        return bucket

    def head_bucket(self, principal: Principal, org_name: str, name: str) -> Bucket:
        org = self._org(principal, org_name, Action.READ, name)
        return self._bucket(org, name)

    def delete_bucket(self, principal: Principal, org_name: str, name: str) -> None:
        """Delete an empty bucket; ``BucketNotEmpty`` otherwise."""
        org = self._org(principal, org_name, Action.DELETE, name)
        bucket = self._bucket(org, name)
        self.catalog.delete_bucket(bucket.id)
        self.catalog.audit(principal.name, "bucket.delete", org_id=org.id, bucket=name)

    def _bucket(self, org: Org, name: str) -> Bucket:
        bucket = self.catalog.get_bucket(org.id, name)
        if bucket is None:
            raise BucketNotFound(name)
        return bucket

    def _backend(self, name: str) -> Backend:
        try:
            return self.backends[name]
        except KeyError:
            raise ConfigError(f"no backend named {name!r} is configured") from None

    # -- writes --------------------------------------------------------------------------
    def put_object(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        content_type: str = "application/octet-stream",
        user_metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        storage_class: str = STANDARD,
        if_match: str | None = None,
        if_none_match: bool = False,
        sse_customer_key: bytes | None = None,
        modified_at: datetime | None = None,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
    ) -> ObjectRecord:
        """Seal ``stream`` into a new blob and make it the object at ``key``.

        ``size``, when given, is the exact body length: the quota is checked before reading
        and a shorter or longer body is refused. The object becomes visible only once whole.
        ``expected_sha256``/``expected_md5`` (hex digests a client declared) are compared
        with the digests the sealer computes anyway, after the blob is written and before
        anything is committed: a mismatch discards the blob and raises ``BadDigest``, so a
        front end never hashes the body a second time.
        """
        validate_key(key)
        org = self._org(principal, org_name, Action.WRITE, bucket_name)
        bucket = self._bucket(org, bucket_name)
        if storage_class != STANDARD:
            authorize(principal, Action.ARCHIVE, org, bucket_name)
        if (
            size is not None
            and org.quota_bytes is not None
            and org.stored_bytes + size > org.quota_bytes
        ):
            raise QuotaExceeded(org.name)
        recipients, sse_recipient = self._write_recipients(org, bucket, sse_customer_key)
        now = modified_at or datetime.now(UTC)
        pending = self._seal_to_blob(
            org,
            bucket,
            stream,
            sealing.SegmentMetadata(
                org=org.name,
                bucket=bucket.name,
                key=key,
                content_type=content_type,
                mtime=now.timestamp(),
            ),
            recipients,
            expected_size=size,
            expected_sha256=expected_sha256,
            expected_md5=expected_md5,
            inline_staging=True,
        )
        new = NewObject(
            bucket_id=bucket.id,
            key=key,
            size=pending.segment.plain_size,
            etag=f'"{pending.segment.md5}"',
            sha256=pending.segment.sha256,
            content_type=content_type,
            user_metadata=dict(user_metadata or {}),
            headers=dict(headers or {}),
            storage_class=storage_class,
            segments=(pending.segment,),
            modified_at=now,
            sse_recipient=sse_recipient,
        )
        return self._commit(
            principal, org, new, [pending], if_match=if_match, if_none_match=if_none_match
        )

    def _write_recipients(
        self, org: Org, bucket: Bucket, sse_customer_key: bytes | None
    ) -> tuple[list[str], str | None]:
        if sse_customer_key is not None:
            recipient = sealing.recipient_of(sealing.sse_c_identity(sse_customer_key))
            return [recipient], recipient
        if bucket.vault_recipient is not None:
            return [bucket.vault_recipient], None
        return [org.recipient], None

    def _seal_to_blob(
        self,
        org: Org,
        bucket: Bucket,
        stream: Readable,
        metadata: sealing.SegmentMetadata,
        recipients: list[str],
        *,
        expected_size: int | None,
        part_number: int = 1,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
        inline_staging: bool = False,
    ) -> _PendingSegment:
        """Seal ``stream`` into a new blob (under an intent row) and describe its segment.

        With ``inline_staging``, a small body is sealed into memory (bounded by the staging
        limit) and staged by the commit itself: one catalog transaction instead of three,
        and nothing to clean up if the commit fails.
        """
        stream, small = self._route(stream, expected_size)
        backend = self.backends[STAGING] if small else self._backend(bucket.backend)
        blob_key = f"{BLOB_PREFIX}{org.id}/{bucket.id}/{uuid.uuid4().hex}"
        reader = sealing.SealingReader(
            stream, metadata, recipients, block_size=self.block_size, level=self.level
        )
        if small and inline_staging:
            staged = _read_bounded(reader, self.small_object_threshold + _SEALING_OVERHEAD_BOUND)
            result = reader.result
            _check_sizes(result, expected_size)
            _check_digests(result, expected_sha256, expected_md5)
            return _PendingSegment(None, _new_segment(result, backend, blob_key, len(staged),
                                                      STANDARD, part_number), staged)
        intent = self.catalog.add_intent(backend.name, blob_key)
        try:
            info = backend.put(blob_key, reader, storage_class=STANDARD)
            result = reader.result
            _check_sizes(result, expected_size)
            _check_digests(result, expected_sha256, expected_md5)
        except BaseException:
            self._discard_blob(backend, blob_key, intent)
            raise
        return _PendingSegment(
            intent,
            _new_segment(result, backend, blob_key, info.size, info.storage_class, part_number),
        )

    def _route(self, stream: Readable, size: int | None) -> tuple[Readable, bool]:
        """Whether the body is small enough to stage, and a stream that yields it whole.

        Without a declared size, at most ``small_object_threshold`` + 1 bytes are peeked.
        """
        limit = self.small_object_threshold
        if limit <= 0:
            return stream, False
        if size is not None:
            return stream, size <= limit
        head, ended = peek(stream, limit)
        if ended:
            return io.BytesIO(head), True
        return PrefixedReader(head, stream), False

    def _discard_blob(self, backend: Backend, blob_key: str, intent: Intent) -> None:
        """Remove a blob nothing references; leave the intent for the sweep if that fails."""
        try:
            backend.delete(blob_key)
        except Exception:
            log.warning("could not delete unreferenced blob %s; the sweep will", blob_key)
            return
        self.catalog.remove_intent(intent.id)

    def _commit(
        self,
        principal: Principal,
        org: Org,
        new: NewObject,
        pending: list[_PendingSegment],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        action: str = "PUT",
    ) -> ObjectRecord:
        try:
            result = self.catalog.commit_object(
                new,
                intent_ids=[p.intent.id for p in pending if p.intent is not None],
                staged={p.segment.blob_key: p.staged for p in pending if p.staged is not None},
                usage=UsageEvent(
                    org_id=org.id,
                    action=action,
                    user_id=principal.user_id,
                    bucket_id=new.bucket_id,
                    bytes=new.size,
                ),
                if_match=if_match,
                if_none_match=if_none_match,
                quota_org_id=org.id,
            )
        except BaseException:
            for p in pending:
                if p.intent is not None:
                    backend = self._backend(p.segment.backend)
                    self._discard_blob(backend, p.segment.blob_key, p.intent)
            raise
        self._collect(result.garbage)
        return result.object

    def _collect(self, garbage: list[Intent]) -> None:
        """Delete blobs the catalog says nothing references any more."""
        for intent in garbage:
            backend = self.backends.get(intent.backend)
            if backend is None or not self.catalog.forget_blob(intent.backend, intent.blob_key):
                continue
            self._discard_blob(backend, intent.blob_key, intent)

    def delete_object(self, principal: Principal, org_name: str, bucket_name: str, key: str) -> bool:
        """Delete ``key``; True if there was an object. Deleting nothing is not an error."""
        validate_key(key)
        org = self._org(principal, org_name, Action.DELETE, bucket_name)
        bucket = self._bucket(org, bucket_name)
        removed, garbage = self.catalog.delete_object(
            bucket.id,
            key,
            usage=UsageEvent(
                org_id=org.id, action="DELETE", user_id=principal.user_id, bucket_id=bucket.id
            ),
        )
        self._collect(garbage)
        return removed is not None

    # -- deleted-but-retained objects (catalog/retention.py) -------------------------------
    def list_retained(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        prefix: str = "",
        *,
        key: str | None = None,
        limit: int = 1000,
    ) -> list[RetainedObject]:
        """Deleted or overwritten versions the bucket still keeps (under ``prefix``, or of
        ``key`` only), by key and newest first; they are hidden from GET, HEAD and LIST.
        Needs the read right on the bucket."""
        org = self._org(principal, org_name, Action.READ, bucket_name)
        bucket = self._bucket(org, bucket_name)
        return self.catalog.list_retained(bucket.id, prefix=prefix, key=key, limit=limit)

    def recover_retained(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        retained_id: int | None = None,
    ) -> ObjectRecord:
        """Make a retained version (the newest of ``key`` unless ``retained_id`` names one)
        the live object at ``key`` again. ``ObjectNotFound`` if there is none,
        ``PreconditionFailed`` if a live object is at ``key``. Needs the write right."""
        validate_key(key)
        org = self._org(principal, org_name, Action.WRITE, bucket_name)
        bucket = self._bucket(org, bucket_name)
        record = self.catalog.recover_retained(
            bucket.id,
            key,
            retained_id,
            usage=UsageEvent(
                org_id=org.id, action="RECOVER", user_id=principal.user_id, bucket_id=bucket.id
            ),
        )
        self.catalog.audit(
            principal.name, "object.recover", org_id=org.id, bucket=bucket_name, key=key
        )
        return record

    def copy_object(
        self,
        principal: Principal,
        org_name: str,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        dst_org_name: str | None = None,
        replace_metadata: Mapping[str, str] | None = None,
        replace_headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        storage_class: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
        sse_customer_key: bytes | None = None,
    ) -> ObjectRecord:
        """Copy an object. Within one org the new object shares the sealed blobs (no bytes
        move); across orgs the plaintext is re-sealed to the target org's key.

        ``replace_metadata`` and ``replace_headers`` (the stored standard headers such as
        Content-Disposition) None keep the source's (S3's COPY directive); S3's REPLACE
        passes both, empty when the request sends none.
        """
        validate_key(src_key)
        validate_key(dst_key)
        src_org = self._org(principal, org_name, Action.READ, src_bucket)
        dst_org = (
            src_org
            if dst_org_name in (None, org_name)
            else self._org(principal, dst_org_name or org_name, Action.WRITE, dst_bucket)
        )
        authorize(principal, Action.WRITE, dst_org, dst_bucket)
        if storage_class not in (None, STANDARD):
            authorize(principal, Action.ARCHIVE, dst_org, dst_bucket)
        source_bucket = self._bucket(src_org, src_bucket)
        target_bucket = self._bucket(dst_org, dst_bucket)
        source = self._record(source_bucket, src_key)
        metadata = dict(source.user_metadata if replace_metadata is None else replace_metadata)
        headers = dict(source.headers if replace_headers is None else replace_headers)
        new_type = content_type or source.content_type
        new_class = storage_class or source.storage_class
        same_sealing = (
            src_org.id == dst_org.id
            and source_bucket.vault_recipient == target_bucket.vault_recipient
            and source.sse_recipient is None
            and sse_customer_key is None
            and source_bucket.backend == target_bucket.backend
        )
        if same_sealing:
            new = NewObject(
                bucket_id=target_bucket.id,
                key=dst_key,
                size=source.size,
                etag=source.etag,
                sha256=source.sha256,
                content_type=new_type,
                user_metadata=metadata,
                headers=headers,
                storage_class=new_class,
                segments=tuple(_reuse(s) for s in source.segments),
                modified_at=datetime.now(UTC),
            )
            return self._commit(
                principal, dst_org, new, [], if_match=if_match, if_none_match=if_none_match,
                action="COPY",
            )
        opened = self.get_object(principal, org_name, src_bucket, src_key)
        return self.put_object(
            principal,
            dst_org.name,
            dst_bucket,
            dst_key,
            IteratorReader(opened.body),
            size=source.size,
            content_type=new_type,
            user_metadata=metadata,
            headers=headers,
            storage_class=new_class,
            if_match=if_match,
            if_none_match=if_none_match,
            sse_customer_key=sse_customer_key,
        )

    def move_object(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        overwrite: bool = True,
    ) -> ObjectRecord:
        """Rename an object within one org (WebDAV MOVE); the sealed blobs stay as they are."""
        validate_key(key)
        validate_key(dst_key)
        org = self._org(principal, org_name, Action.DELETE, bucket_name)
        authorize(principal, Action.WRITE, org, dst_bucket)
        source = self._bucket(org, bucket_name)
        target = self._bucket(org, dst_bucket)
        if source.backend != target.backend:
            record = self.copy_object(
                principal, org_name, bucket_name, key, dst_bucket, dst_key,
                if_none_match=not overwrite,
            )
            self.delete_object(principal, org_name, bucket_name, key)
            return record
        moved, garbage = self.catalog.rename_object(
            source.id,
            key,
            target.id,
            dst_key,
            overwrite=overwrite,
            usage=UsageEvent(
                org_id=org.id, action="MOVE", user_id=principal.user_id, bucket_id=target.id
            ),
        )
        self._collect(garbage)
        return moved

    def move_prefix(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        prefix: str,
        dst_bucket: str,
        dst_prefix: str,
        *,
        overwrite: bool = True,
    ) -> int:
        """Rename every object under ``prefix`` (a WebDAV folder move); returns the count.

        Objects move one by one, each atomically; a failure part-way leaves the rest where
        they were, never lost.
        """
        if not prefix:
            raise InvalidArgument("a folder move needs a non-empty prefix")
        moved = 0
        while True:
            page = self.list_objects(principal, org_name, bucket_name, prefix=prefix, max_keys=500)
            if not page.objects:
                return moved
            for record in page.objects:
                self.move_object(
                    principal,
                    org_name,
                    bucket_name,
                    record.key,
                    dst_bucket,
                    dst_prefix + record.key[len(prefix) :],
                    overwrite=overwrite,
                )
                moved += 1
            if bucket_name == dst_bucket and dst_prefix.startswith(prefix):
                # Moving into a sub-folder of itself: the moved keys are under prefix again.
                raise InvalidArgument("cannot move a folder into itself")

    # -- reads ---------------------------------------------------------------------------
    def list_objects(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        start_after: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of the bucket in key order (see ``Catalog.list_objects``)."""
        org = self._org(principal, org_name, Action.READ, bucket_name)
        bucket = self._bucket(org, bucket_name)
        if max_keys < 0:
            raise InvalidArgument("max-keys cannot be negative")
        page = self.catalog.list_objects(
            bucket.id,
            prefix=prefix,
            delimiter=delimiter or None,
            start_after=start_after,
            max_keys=min(max_keys, 1000),
        )
        self.counters.add(org.id, bucket.id, "LIST")
        return page

    def head_object(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
    ) -> ObjectView:
        """The object's record and client-visible state; ``ObjectNotFound`` if absent."""
        validate_key(key)
        org = self._org(principal, org_name, Action.READ, bucket_name)
        bucket = self._bucket(org, bucket_name)
        view = self.view(self._record(bucket, key))
        self.counters.add(org.id, bucket.id, "HEAD")
        return view

    def view(self, record: ObjectRecord) -> ObjectView:
        """Derive what clients see of ``record`` (DESIGN.md, object states)."""
        return self.views([record])[0]

    def views(self, records: list[ObjectRecord]) -> list[ObjectView]:
        """Client-visible states of many records (a listing page) with one restore query.

        An object is cold when its class says so: the engine sets DEEP_ARCHIVE once its
        bytes are archived, and a PUT asking for DEEP_ARCHIVE is archived at once from the
        client's point of view, wherever its bytes are.
        """
        cold = [r.id for r in records if r.storage_class in COLD_CLASSES]
        restores = self.catalog.restores_for_objects(cold) if cold else {}
        now = datetime.now(UTC)
        views = []
        for record in records:
            if record.storage_class not in COLD_CLASSES:
                views.append(ObjectView(record, ObjectState.STAGED, record.storage_class))
                continue
            rows = [self._settle_restore(r, now) for r in restores.get(record.id, [])]
            if rows and any(r.ongoing() for r in rows):
                views.append(ObjectView(record, ObjectState.RESTORING, record.storage_class))
            elif rows and all(r.readable_at(now) for r in rows) and self._covers(record, rows):
                expiry = min((r.expires_at for r in rows if r.expires_at), default=None)
                views.append(ObjectView(record, ObjectState.RESTORED, record.storage_class, expiry))
            else:
                views.append(ObjectView(record, ObjectState.ARCHIVED, record.storage_class))
        return views

    @staticmethod
    def _covers(record: ObjectRecord, rows: list[RestoreRecord]) -> bool:
        """Every blob of the object has a restore (listings carry no segments: trust rows)."""
        if not record.segments:
            return True
        return {s.blob.id for s in record.segments} <= {r.blob.id for r in rows}

    def _settle_restore(self, row: RestoreRecord, now: datetime) -> RestoreRecord:
        """An ongoing restore whose backend copy has become readable is marked done.

        The engine polls with backoff; this only spares a reader the wait for its next poll.
        """
        if not row.ongoing() or row.blob.storage_class not in COLD_CLASSES:
            return row
        status = self._backend(row.blob.backend).restore_status(row.blob.key)
        if not status.readable:
            return row
        expires = status.expires_at or now + timedelta(days=row.days)
        self.catalog.finish_restore(row.blob.id, expires_at=expires)
        return replace(row, status=RESTORE_DONE, completed_at=now, expires_at=expires)

    # -- restores ------------------------------------------------------------------------
    def request_restore(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        *,
        days: int = 1,
        tier: str = "Standard",
    ) -> RestoreTicket:
        """Ask for a readable copy of an archived object for ``days`` days.

        Answers ``available`` when a restored copy is readable already, ``started`` when
        this call began one (for bytes that are still hot, it completes at once). Raises
        ``RestoreInProgress`` while one runs (requests for objects sharing a blob collapse
        onto its one restore) and ``NotArchived`` for an object that needs none.

        The restore is quoted first (the ticket's ``quote_usd``: retrieval, requests and the
        restored copy's days, by the cost model at the bucket region's prices) and charged
        to the org's month; beyond the org setting ``restore_budget_usd`` it is refused
        with ``RestoreBudgetExceeded`` before anything starts.
        """
        validate_key(key)
        if tier not in ("Standard", "Bulk"):
            raise InvalidArgument(
                f"restore tier {tier!r}: Deep Archive offers Standard (up to 12 hours) and"
                " Bulk (up to 48 hours)"
            )
        if not 1 <= days <= MAX_RESTORE_DAYS:
            raise InvalidArgument(f"restore days must be between 1 and {MAX_RESTORE_DAYS}")
        org = self._org(principal, org_name, Action.RESTORE, bucket_name)
        bucket = self._bucket(org, bucket_name)
        record = self._record(bucket, key)
        view = self.view(record)
        if view.state == ObjectState.STAGED:
            raise NotArchived(key)
        if view.state == ObjectState.RESTORING:
            raise RestoreInProgress(key)
        if view.state == ObjectState.RESTORED:
            return RestoreTicket("available", tier, view.restore_expiry)
        now = datetime.now(UTC)
        expires_at = now + timedelta(days=days)
        blobs = list({s.blob.id: s.blob for s in record.segments}.values())
        quotes = self._restore_quotes(bucket, blobs, tier=tier, days=days)
        total = sum(quotes.values(), Decimal(0)) if quotes is not None else None
        charge = None
        if total:
            from tiering.restores import month_start, restore_budget

            # Quote first, refuse beyond the monthly budget before anything starts.
            charge = self.catalog.charge_restore(
                org.id,
                total,
                budget=restore_budget(org.settings),
                since=month_start(now),
                size=sum(b.size for b in blobs if b.storage_class in COLD_CLASSES),
                tier=tier,
                requested_by=principal.name,
                detail=f"{bucket.name}/{key}",
                now=now,
            )
        all_done = True
        started = 0
        try:
            for blob in blobs:
                cold = blob.storage_class in COLD_CLASSES
                status = (
                    self._backend(blob.backend).request_restore(blob.key, days=days, tier=tier)
                    if cold
                    else None
                )
                done = status is None or status.readable
                all_done = all_done and done
                self.catalog.start_restore(
                    blob.id,
                    org_id=org.id,
                    tier=tier,
                    days=days,
                    requested_by=principal.name,
                    done=done,
                    expires_at=(status.expires_at if status and status.expires_at else expires_at)
                    if done
                    else None,
                    quote_usd=quotes.get(blob.id) if quotes is not None else None,
                    now=now,
                )
                started += 1
        except BaseException:
            if charge is not None and started == 0:
                self.catalog.refund_restore(charge)
            raise
        self.catalog.audit(
            principal.name, "restore.request", org_id=org.id, bucket=bucket.name, key=key,
            tier=tier, days=days, quote_usd=str(total) if total is not None else None,
        )
        return RestoreTicket("started", tier, expires_at if all_done else None, quote_usd=total)

    def _restore_quotes(
        self, bucket: Bucket, blobs: list[Blob], *, tier: str, days: int
    ) -> dict[int, Decimal] | None:
        """What restoring each blob costs (0 for bytes still hot), from the cost model
        (:func:`tiering.cost.quote_restore`) at the prices of the bucket's region; None when
        the region prices nothing for that tier (then no budget can be checked)."""
        from tiering.cost import Prices, quote_restore

        prices = self.placement.prices(bucket.region) if self.placement is not None else Prices()
        quotes: dict[int, Decimal] = {}
        try:
            for blob in blobs:
                if blob.storage_class not in COLD_CLASSES:
                    quotes[blob.id] = Decimal(0)
                    continue
                quote = quote_restore(prices, objects=1, bytes=blob.size, tier=tier, days=days)
                quotes[blob.id] = quote.rounded(6)
        except InvalidArgument as error:
            log.warning("no restore quote for bucket %s: %s", bucket.name, error)
            return None
        return quotes

    def get_object(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        *,
        byte_range: RangeSpec | None = None,
        sse_customer_key: bytes | None = None,
    ) -> ObjectRead:
        """Open ``key`` for reading, optionally a byte range.

        Every check (access, state, keys, range) happens here, before the first byte, so a
        front end can still choose its status code; the body then streams lazily and reads
        from the backend exactly the sealed chunks that cover the range.
        """
        validate_key(key)
        org = self._org(principal, org_name, Action.READ, bucket_name)
        bucket = self._bucket(org, bucket_name)
        record = self._record(bucket, key)
        view = self.view(record)
        if not view.readable:
            raise ObjectArchived(key, view.storage_class, state=view.state)
        identity = self._read_identity(org, record, sse_customer_key)
        start, stop = (0, record.size) if byte_range is None else byte_range.resolve(record.size)
        self.counters.add(org.id, bucket.id, "GET", nbytes=stop - start)
        self.counters.note_read(record)
        return ObjectRead(view, start, stop, self._plaintext(record, identity, start, stop))

    def read_sealed_segment(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        part_number: int,
    ) -> tuple[Segment, Iterator[bytes]]:
        """One sealed segment of ``key``, as stored: ciphertext only, for a client that
        decrypts locally (the way a vault object is read). The same access and state checks
        as :meth:`get_object` come first."""
        validate_key(key)
        org = self._org(principal, org_name, Action.READ, bucket_name)
        bucket = self._bucket(org, bucket_name)
        record = self._record(bucket, key)
        view = self.view(record)
        if not view.readable:
            raise ObjectArchived(key, view.storage_class, state=view.state)
        segment = next((s for s in record.segments if s.part_number == part_number), None)
        if segment is None:
            raise InvalidArgument(f"the object has no segment {part_number}")
        chunks = self._backend(segment.blob.backend).get(
            segment.blob.key,
            start=segment.blob_offset,
            end=segment.blob_offset + segment.sealed_size,
        )
        self.counters.add(org.id, bucket.id, "GET", nbytes=segment.sealed_size)
        return segment, chunks

    def _read_identity(self, org: Org, record: ObjectRecord, sse_customer_key: bytes | None) -> str:
        if record.sse_recipient is not None:
            if sse_customer_key is None:
                raise InvalidArgument(
                    "the object was stored with a customer-provided key; send it to read"
                )
            if not sealing.sse_c_matches(sse_customer_key, record.sse_recipient):
                raise AccessDenied("the customer-provided key does not match the object's key")
            return sealing.sse_c_identity(sse_customer_key)
        if sse_customer_key is not None:
            raise InvalidArgument("the object was not stored with a customer-provided key")
        if any(s.recipient != org.recipient for s in record.segments):
            raise VaultSealed(record.key)
        return self.org_identity(org)

    def _plaintext(
        self, record: ObjectRecord, identity: str, start: int, stop: int
    ) -> Iterator[bytes]:
        offset = 0
        for segment in record.segments:
            seg_start, seg_stop = offset, offset + segment.plain_size
            offset = seg_stop
            if seg_stop <= start or seg_start >= stop or segment.plain_size == 0:
                continue
            yield from sealing.unseal_range(
                max(start, seg_start) - seg_start,
                min(stop, seg_stop) - seg_start,
                age_header=segment.age_header,
                payload_offset=segment.payload_offset,
                seek_table=segment.seek_table,
                fetch=self._fetcher(segment),
                identities=[identity],
                name=f"{record.key} part {segment.part_number}",
            )

    def _fetcher(self, segment: Segment) -> Callable[[int, int], Iterator[bytes]]:
        """Reads sealed bytes of ``segment`` by offset within it (its blob may hold more)."""
        backend = self._backend(segment.blob.backend)
        base = segment.blob_offset

        def fetch(offset: int, length: int) -> Iterator[bytes]:
            return backend.get(segment.blob.key, start=base + offset, end=base + offset + length)

        return fetch

    def _record(self, bucket: Bucket, key: str) -> ObjectRecord:
        record = self.catalog.get_object(bucket.id, key)
        if record is None:
            raise ObjectNotFound(key)
        return record

    def close(self) -> None:
        """Stop the counter flusher and write what is left; the service is not used after."""
        self.counters.stop()


@dataclass(frozen=True)
class _PendingSegment:
    """A segment ready to commit: its blob written under an intent row, or (a small
    object's) sealed bytes to stage in the commit's own transaction."""

    intent: Intent | None
    segment: NewSegment
    staged: bytes | None = None


def _new_segment(
    result: sealing.SealResult,
    backend: Backend,
    blob_key: str,
    blob_size: int,
    storage_class: str,
    part_number: int,
) -> NewSegment:
    """The catalog's description of a segment just sealed into a blob of its own."""
    return NewSegment(
        part_number=part_number,
        backend=backend.name,
        blob_key=blob_key,
        blob_size=blob_size,
        storage_class=storage_class,
        blob_offset=0,
        sealed_size=result.sealed_size,
        plain_size=result.plain_size,
        md5=result.md5,
        sha256=result.sha256,
        age_header=result.age_header,
        payload_offset=result.payload_offset,
        seek_table=result.seek_table,
        header_mac=result.header_mac,
        recipient=",".join(result.recipients),
    )


def _check_sizes(result: sealing.SealResult, expected_size: int | None) -> None:
    if expected_size is not None and result.plain_size != expected_size:
        raise InvalidArgument(
            f"the body had {result.plain_size} bytes but {expected_size} were declared"
        )


def _read_bounded(reader: Readable, limit: int) -> bytes:
    """All of ``reader`` (at most ``limit`` bytes, else ``InvalidArgument``)."""
    pieces = []
    total = 0
    while piece := reader.read(1 << 20):
        total += len(piece)
        if total > limit:
            raise InvalidArgument(f"a staged segment is at most {limit} bytes")
        pieces.append(piece)
    return b"".join(pieces)


def _reuse(segment: Segment) -> NewSegment:
    """A new reference to an existing sealed segment (copies share blobs)."""
    return NewSegment(
        part_number=segment.part_number,
        backend=segment.blob.backend,
        blob_key=segment.blob.key,
        blob_size=segment.blob.size,
        storage_class=segment.blob.storage_class,
        blob_offset=segment.blob_offset,
        sealed_size=segment.sealed_size,
        plain_size=segment.plain_size,
        md5=segment.md5,
        sha256=segment.sha256,
        age_header=segment.age_header,
        payload_offset=segment.payload_offset,
        seek_table=segment.seek_table,
        header_mac=segment.header_mac,
        recipient=segment.recipient,
        blob_id=segment.blob.id,
    )


def _check_digests(
    result: sealing.SealResult, expected_sha256: str | None, expected_md5: str | None
) -> None:
    """``BadDigest`` when a digest the client declared differs from the sealer's."""
    if expected_sha256 is not None and expected_sha256.lower() != result.sha256:
        raise BadDigest("SHA-256", expected=expected_sha256, computed=result.sha256)
    if expected_md5 is not None and expected_md5.lower() != result.md5:
        raise BadDigest("MD5", expected=expected_md5, computed=result.md5)


def identity_blob_key(org: Org) -> str:
    """Where each backend keeps the org's wrapped identity, for recovery."""
    return f"{IDENTITY_PREFIX}org-{org.id}.identity.wrapped"
