"""Multipart uploads: the ObjectService side (a mixin :class:`ObjectService` inherits).

An upload is a row in the catalog; each part is sealed into its own segment, in its own
blob, as it arrives (its ``M`` frame names the upload id and part number), and recorded with
the same intent discipline as a PUT (DESIGN.md, Catalog). Uploading a part number again
replaces the part; the old blob becomes garbage.

Completing checks the client's list against the stored parts (ascending order, ETags, and
every part but the last at least 5 MiB) and commits an object whose segments *are* the
part blobs: no byte is copied or re-sealed, whatever the size. Parts left out of the list
become garbage. As S3 computes them, the object's ETag is the MD5 of the parts' binary MD5s
followed by ``-N``; its SHA-256 is likewise the SHA-256 of the parts' digests with ``-N``.

Uploads never completed are aborted after a configurable age by the engine
(:meth:`MultipartOperations.abort_stale_uploads`, the ``multipart-expiry`` task).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Protocol, cast

from catalog.multipart import PartRecord, UploadRecord, UploadsPage
from catalog.records import NewObject, ObjectRecord, Org, UsageEvent
from gateway import sealing
from gateway.errors import (
    AccessDenied,
    CoolStorageError,
    InvalidArgument,
    NotFound,
    ObjectNotFound,
    QuotaExceeded,
)
from gateway.principals import Action, Principal, authorize
from gateway.streams import ChunkReader

if TYPE_CHECKING:
    from catalog.records import Bucket
    from gateway.objects import ObjectService, ObjectView, RangeSpec

#: S3's smallest part (all but the last), its largest part, and the most parts an upload has.
MIN_PART_SIZE = 5 << 20
MAX_PART_SIZE = 5 << 30
MAX_PARTS = 10000
STANDARD = "STANDARD"


class NoSuchUpload(NotFound):
    """No such upload: {0}"""

    code = "NoSuchUpload"


class InvalidPart(CoolStorageError):
    """Invalid part: {0}"""

    code = "InvalidPart"
    http_status = 400


class InvalidPartOrder(CoolStorageError):
    """The parts are not in ascending order of part number: {0}"""

    code = "InvalidPartOrder"
    http_status = 400


class EntityTooSmall(CoolStorageError):
    """Part {0} is {1} bytes; every part but the last must be at least {2} bytes"""

    code = "EntityTooSmall"
    http_status = 400


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class CompletedPartSpec:
    """One part a client lists in CompleteMultipartUpload."""

    part_number: int
    #: The part's ETag, with or without quotes.
    etag: str
    #: ``x-amz-checksum-<algo>`` -> base64 value the client says the part had (may be empty).
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompletedUpload:
    """What completing an upload produced: the object and the parts it is made of."""

    object: ObjectRecord
    parts: list[PartRecord]
    upload: UploadRecord


@dataclass(frozen=True)
class PartsPage:
    """One page of ListParts."""

    upload: UploadRecord
    parts: list[PartRecord]
    is_truncated: bool
    next_part_number_marker: int | None


def multipart_etag(md5s: Sequence[str]) -> str:
    """S3's ETag of a multipart object (no quotes): MD5 of the parts' MD5 digests, ``-N``."""
    joined = b"".join(bytes.fromhex(m) for m in md5s)
    return f"{hashlib.md5(joined).hexdigest()}-{len(md5s)}"


def multipart_sha256(digests: Sequence[str]) -> str:
    """The object SHA-256 of a multipart object: SHA-256 of the part digests, ``-N``."""
    joined = b"".join(bytes.fromhex(d) for d in digests)
    return f"{hashlib.sha256(joined).hexdigest()}-{len(digests)}"


class MultipartOperations:
    """Multipart uploads (and S3's other SSE-C-aware checks) of the :class:`ObjectService`.

    Every method takes the caller's principal and checks access as the single-request
    operations do: writing parts needs the write right on the bucket, a storage class other
    than STANDARD the archive right (checked at creation).
    """

    def _svc(self) -> ObjectService:
        # The mixin only ever runs as part of ObjectService and uses its internals.
        return cast("ObjectService", self)

    # -- helpers -----------------------------------------------------------------------------
    def _open_upload(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        upload_id: str,
        action: Action,
    ) -> tuple[Org, Bucket, UploadRecord]:
        from gateway.objects import validate_key

        svc = self._svc()
        validate_key(key)
        org = svc._org(principal, org_name, action, bucket_name)
        bucket = svc._bucket(org, bucket_name)
        upload = svc.catalog.get_upload(upload_id) if upload_id else None
        if upload is None or upload.bucket_id != bucket.id or upload.key != key:
            raise NoSuchUpload(upload_id)
        return org, bucket, upload

    def _part_recipients(
        self, org: Org, bucket: Bucket, upload: UploadRecord, sse_customer_key: bytes | None
    ) -> list[str]:
        svc = self._svc()
        if upload.sse_recipient is not None:
            if sse_customer_key is None:
                raise InvalidArgument(
                    "the upload was started with a customer-provided key; send it with each part"
                )
            if not sealing.sse_c_matches(sse_customer_key, upload.sse_recipient):
                raise AccessDenied("the customer-provided key is not the upload's key")
            return [upload.sse_recipient]
        if sse_customer_key is not None:
            raise InvalidArgument("the upload was not started with a customer-provided key")
        recipients, _ = svc._write_recipients(org, bucket, None)
        return recipients

    # -- uploads -----------------------------------------------------------------------------
    def create_multipart_upload(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        *,
        content_type: str = "application/octet-stream",
        user_metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        storage_class: str = STANDARD,
        sse_customer_key: bytes | None = None,
        checksum_algorithm: str | None = None,
    ) -> UploadRecord:
        """Start an upload of ``key``; what the object will carry is fixed now."""
        from gateway.objects import validate_key

        svc = self._svc()
        validate_key(key)
        org = svc._org(principal, org_name, Action.WRITE, bucket_name)
        bucket = svc._bucket(org, bucket_name)
        if storage_class != STANDARD:
            authorize(principal, Action.ARCHIVE, org, bucket_name)
        _, sse_recipient = svc._write_recipients(org, bucket, sse_customer_key)
        return svc.catalog.create_upload(
            upload_id=secrets.token_hex(24),
            bucket_id=bucket.id,
            key=key,
            user_id=principal.user_id,
            initiator=principal.name,
            content_type=content_type,
            user_metadata=dict(user_metadata or {}),
            headers=dict(headers or {}),
            storage_class=storage_class,
            sse_recipient=sse_recipient,
            checksum_algorithm=checksum_algorithm,
        )

    def get_multipart_upload(
        self, principal: Principal, org_name: str, bucket_name: str, key: str, upload_id: str
    ) -> UploadRecord:
        """The upload (``NoSuchUpload`` unless it is in progress for that bucket and key)."""
        return self._open_upload(principal, org_name, bucket_name, key, upload_id, Action.READ)[2]

    def upload_part(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        upload_id: str,
        part_number: int,
        stream: _Readable,
        *,
        size: int | None = None,
        sse_customer_key: bytes | None = None,
        expected_sha256: str | None = None,
        expected_md5: str | None = None,
        checksums: Callable[[str], Mapping[str, str]] | None = None,
    ) -> PartRecord:
        """Seal ``stream`` as part ``part_number`` (1-10,000) of the upload.

        ``size`` is the exact length when known (a short or long body is refused).
        ``expected_sha256``/``expected_md5`` (hex) are compared with what the sealer
        computed, before anything is recorded (``BadDigest``). ``checksums`` is called once
        the body has been read, with the part's SHA-256 (hex), for the ``x-amz-checksum-*``
        values to keep with the part.
        """
        if not 1 <= part_number <= MAX_PARTS:
            raise InvalidArgument(f"part number {part_number}: must be between 1 and {MAX_PARTS}")
        if size is not None and size > MAX_PART_SIZE:
            raise InvalidArgument(f"a part is at most {MAX_PART_SIZE} bytes")
        svc = self._svc()
        org, bucket, upload = self._open_upload(
            principal, org_name, bucket_name, key, upload_id, Action.WRITE
        )
        if (
            size is not None
            and org.quota_bytes is not None
            and org.stored_bytes + size > org.quota_bytes
        ):
            raise QuotaExceeded(org.name)
        recipients = self._part_recipients(org, bucket, upload, sse_customer_key)
        metadata = sealing.SegmentMetadata(
            org=org.name,
            bucket=bucket.name,
            key=key,
            part_number=part_number,
            upload_id=upload.upload_id,
            content_type=upload.content_type,
            mtime=datetime.now(UTC).timestamp(),
        )
        pending = svc._seal_to_blob(
            org,
            bucket,
            stream,  # type: ignore[arg-type]
            metadata,
            recipients,
            expected_size=size,
            part_number=part_number,
            expected_sha256=expected_sha256,
            expected_md5=expected_md5,
        )
        intent = pending.intent
        assert intent is not None  # parts are never staged inline
        backend = svc._backend(pending.segment.backend)
        try:
            sums = dict(checksums(pending.segment.sha256)) if checksums is not None else {}
            recorded = svc.catalog.record_part(
                upload.id,
                part_number,
                pending.segment,
                org_id=org.id,
                intent_id=intent.id,
                checksums=sums,
                usage=UsageEvent(
                    org_id=org.id,
                    action="UPLOAD_PART",
                    user_id=principal.user_id,
                    bucket_id=bucket.id,
                    bytes=pending.segment.plain_size,
                ),
            )
        except BaseException:
            svc._discard_blob(backend, pending.segment.blob_key, intent)
            raise
        if recorded is None:
            svc._discard_blob(backend, pending.segment.blob_key, intent)
            raise NoSuchUpload(upload_id)
        part, garbage = recorded
        svc._collect(garbage)
        return part

    def upload_part_copy(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        upload_id: str,
        part_number: int,
        src_bucket: str,
        src_key: str,
        *,
        src_org_name: str | None = None,
        byte_range: RangeSpec | None = None,
        sse_customer_key: bytes | None = None,
        src_sse_customer_key: bytes | None = None,
    ) -> tuple[PartRecord, ObjectView]:
        """Make part ``part_number`` from (a range of) another object's plaintext.

        The source is read like a GET (its state, keys and range are checked first) and its
        plaintext re-sealed into the part's own segment, to the upload's keys. Returns the
        part and the source's view.
        """
        svc = self._svc()
        self._open_upload(principal, org_name, bucket_name, key, upload_id, Action.WRITE)
        opened = svc.get_object(
            principal,
            src_org_name or org_name,
            src_bucket,
            src_key,
            byte_range=byte_range,
            sse_customer_key=src_sse_customer_key,
        )
        if opened.length > MAX_PART_SIZE:
            close = getattr(opened.body, "close", None)
            if close is not None:
                close()
            raise InvalidArgument(f"a copied part is at most {MAX_PART_SIZE} bytes")
        reader = ChunkReader(opened.body)
        try:
            part = self.upload_part(
                principal,
                org_name,
                bucket_name,
                key,
                upload_id,
                part_number,
                reader,
                size=opened.length,
                sse_customer_key=sse_customer_key,
            )
        finally:
            reader.close()
        return part, opened.view

    def complete_multipart_upload(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        upload_id: str,
        parts: Sequence[CompletedPartSpec],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        min_part_size: int = MIN_PART_SIZE,
    ) -> CompletedUpload:
        """Make the listed parts the object at ``key``, copying no data.

        Errors: ``InvalidPartOrder`` (numbers not ascending), ``InvalidPart`` (a part not
        uploaded, or whose ETag or checksum differs), ``EntityTooSmall`` (a part but the
        last below ``min_part_size``), ``NoSuchUpload``, ``PreconditionFailed``.
        """
        svc = self._svc()
        org, bucket, upload = self._open_upload(
            principal, org_name, bucket_name, key, upload_id, Action.WRITE
        )
        if not parts:
            raise InvalidArgument("a completion lists at least one part")
        if len(parts) > MAX_PARTS:
            raise InvalidArgument(f"an upload has at most {MAX_PARTS} parts")
        for before, after in pairwise(parts):
            if after.part_number <= before.part_number:
                raise InvalidPartOrder(f"part {after.part_number} follows {before.part_number}")
        stored = {p.part_number: p for p in svc.catalog.list_parts(upload.id)}
        chosen: list[PartRecord] = []
        for index, spec in enumerate(parts):
            part = stored.get(spec.part_number)
            if part is None:
                raise InvalidPart(f"part {spec.part_number} was not uploaded")
            if spec.etag.strip().strip('"').lower() != part.md5:
                raise InvalidPart(f"part {spec.part_number}: the ETag does not match")
            for name, value in spec.checksums.items():
                have = part.checksums.get(name.lower())
                if have is not None and have != value.strip():
                    raise InvalidPart(f"part {spec.part_number}: the {name} does not match")
            if index < len(parts) - 1 and part.size < min_part_size:
                raise EntityTooSmall(spec.part_number, part.size, min_part_size)
            chosen.append(part)
        new = NewObject(
            bucket_id=bucket.id,
            key=key,
            size=sum(p.size for p in chosen),
            etag=f'"{multipart_etag([p.md5 for p in chosen])}"',
            sha256=multipart_sha256([p.sha256 for p in chosen]),
            content_type=upload.content_type,
            user_metadata=dict(upload.user_metadata),
            headers=dict(upload.headers),
            storage_class=upload.storage_class,
            segments=tuple(p.to_segment() for p in chosen),
            modified_at=datetime.now(UTC),
            sse_recipient=upload.sse_recipient,
        )
        try:
            record = svc._commit(
                principal, org, new, [], if_match=if_match, if_none_match=if_none_match
            )
        except ObjectNotFound as exc:
            # A part's blob was declared garbage meanwhile: replaced or aborted.
            raise InvalidPart(
                "a part was replaced, or the upload aborted, while it was being completed"
            ) from exc
        garbage = svc.catalog.delete_upload(upload.id)
        if garbage:
            svc._collect(garbage)
        return CompletedUpload(record, chosen, upload)

    def abort_multipart_upload(
        self, principal: Principal, org_name: str, bucket_name: str, key: str, upload_id: str
    ) -> None:
        """Drop the upload and delete its parts' blobs."""
        svc = self._svc()
        _, _, upload = self._open_upload(
            principal, org_name, bucket_name, key, upload_id, Action.WRITE
        )
        garbage = svc.catalog.delete_upload(upload.id)
        if garbage is None:
            raise NoSuchUpload(upload_id)
        svc._collect(garbage)

    def list_parts(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        upload_id: str,
        *,
        part_number_marker: int = 0,
        max_parts: int = 1000,
    ) -> PartsPage:
        """The upload's parts after ``part_number_marker``, at most ``max_parts`` (1,000)."""
        if max_parts < 0 or part_number_marker < 0:
            raise InvalidArgument("max-parts and part-number-marker cannot be negative")
        svc = self._svc()
        _, _, upload = self._open_upload(
            principal, org_name, bucket_name, key, upload_id, Action.READ
        )
        limit = min(max_parts, 1000)
        parts = svc.catalog.list_parts(upload.id, after=part_number_marker, limit=limit + 1)
        truncated = len(parts) > limit
        parts = parts[:limit]
        marker = parts[-1].part_number if truncated and parts else None
        return PartsPage(upload, parts, truncated, marker)

    def list_multipart_uploads(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> UploadsPage:
        """Uploads in progress in the bucket (see ``Catalog.list_uploads``)."""
        svc = self._svc()
        org = svc._org(principal, org_name, Action.READ, bucket_name)
        bucket = svc._bucket(org, bucket_name)
        return svc.catalog.list_uploads(
            bucket.id,
            prefix=prefix,
            delimiter=delimiter or None,
            key_marker=key_marker or None,
            upload_id_marker=upload_id_marker or None,
            max_uploads=min(max(max_uploads, 0), 1000),
        )

    def abort_bucket_uploads(self, principal: Principal, org_name: str, bucket_name: str) -> int:
        """Abort every upload in progress in the bucket (before deleting it); the count."""
        svc = self._svc()
        org = svc._org(principal, org_name, Action.DELETE, bucket_name)
        bucket = svc._bucket(org, bucket_name)
        return self._abort_all(lambda: svc.catalog.bucket_uploads(bucket.id, limit=500))

    def abort_stale_uploads(self, older_than: datetime, *, limit: int = 10000) -> int:
        """Abort uploads started before ``older_than`` (the engine's expiry task); the count."""
        svc = self._svc()
        return self._abort_all(
            lambda: svc.catalog.stale_uploads(older_than, limit=500), limit=limit
        )

    def _abort_all(
        self, batch: Callable[[], list[UploadRecord]], *, limit: int = 10000
    ) -> int:
        svc = self._svc()
        aborted = 0
        while aborted < limit:
            uploads = batch()
            if not uploads:
                break
            for upload in uploads:
                garbage = svc.catalog.delete_upload(upload.id)
                if garbage is not None:
                    aborted += 1
                    svc._collect(garbage)
        return aborted

    # -- SSE-C checks without a body ---------------------------------------------------------
    def head_object_with_key(
        self,
        principal: Principal,
        org_name: str,
        bucket_name: str,
        key: str,
        *,
        sse_customer_key: bytes | None = None,
    ) -> ObjectView:
        """HEAD with S3's SSE-C rules: an object stored with a customer key answers only
        when that key is sent (``InvalidArgument`` without, ``AccessDenied`` if wrong); a
        key sent for an object stored without one is ``InvalidArgument``."""
        svc = self._svc()
        view = svc.head_object(principal, org_name, bucket_name, key)
        recipient = view.record.sse_recipient
        if recipient is not None:
            if sse_customer_key is None:
                raise InvalidArgument(
                    "the object was stored with a customer-provided key; send it to read"
                )
            if not sealing.sse_c_matches(sse_customer_key, recipient):
                raise AccessDenied("the customer-provided key does not match the object's key")
        elif sse_customer_key is not None:
            raise InvalidArgument("the object was not stored with a customer-provided key")
        return view
