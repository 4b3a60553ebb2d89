"""Catalog queries for multipart uploads and their parts.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_multipart`.

The life of an upload, as the ObjectService drives it:

1. :meth:`MultipartQueries.create_upload` records the upload and what the object will be.
2. Each part is sealed into its own blob under an upload intent, then
   :meth:`~MultipartQueries.record_part` inserts the blob row and the part row and removes
   the intent in one transaction. A part uploaded again replaces the row; the old blob
   becomes a garbage intent unless something else still uses it.
3. Completing commits the object with ``Catalog.commit_object``, its segments reusing the
   part blobs (``NewSegment.blob_id``), so no byte moves; then
   :meth:`~MultipartQueries.delete_upload` drops the upload and turns the blobs of parts
   that were not listed into garbage. Aborting is that last step alone.

Blobs are declared garbage only when neither an object's segment nor another part row
references them, checked under the blob row's lock, so a complete racing an abort either
commits (and the abort leaves the blobs alone) or fails on the doomed blobs
(``commit_object`` refuses to reuse a blob with a garbage intent).

Methods return None (rather than raising) when the upload is gone, so the service can
choose its own error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog import tables_multipart as t
from catalog.base import CatalogBase
from catalog.records import Blob, Intent, NewSegment, UsageEvent
from catalog.rows import blob as _blob
from catalog.rows import blob_columns as _blob_columns
from catalog.rows import now as _now
from gateway.errors import BucketNotFound, InvalidArgument, InvalidName

if TYPE_CHECKING:
    from catalog.api import Catalog

#: Rows fetched per query while walking uploads.
_BATCH = 1000


@dataclass(frozen=True)
class UploadRecord:
    """A multipart upload in progress and what the completed object will carry."""

    id: int
    upload_id: str
    bucket_id: int
    key: str
    user_id: int | None
    initiator: str
    content_type: str
    user_metadata: dict[str, str]
    headers: dict[str, str]
    storage_class: str
    sse_recipient: str | None
    checksum_algorithm: str | None
    created_at: datetime


@dataclass(frozen=True)
class PartRecord:
    """One uploaded part: a sealed segment alone in its blob."""

    part_number: int
    blob: Blob
    sealed_size: int
    plain_size: int
    md5: str
    sha256: str
    age_header: bytes
    payload_offset: int
    seek_table: bytes
    header_mac: bytes
    recipient: str
    created_at: datetime
    #: ``x-amz-checksum-<algo>`` -> base64 value, as the client sent or asked for them.
    checksums: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.plain_size

    def to_segment(self) -> NewSegment:
        """The segment an object completed from this part gets (reusing the part's blob)."""
        return NewSegment(
            part_number=self.part_number,
            backend=self.blob.backend,
            blob_key=self.blob.key,
            blob_size=self.blob.size,
            storage_class=self.blob.storage_class,
            blob_offset=0,
            sealed_size=self.sealed_size,
            plain_size=self.plain_size,
            md5=self.md5,
            sha256=self.sha256,
            age_header=self.age_header,
            payload_offset=self.payload_offset,
            seek_table=self.seek_table,
            header_mac=self.header_mac,
            recipient=self.recipient,
            blob_id=self.blob.id,
        )


@dataclass(frozen=True)
class UploadsPage:
    """One page of ListMultipartUploads, in key order then initiation order."""

    uploads: list[UploadRecord]
    common_prefixes: list[str]
    is_truncated: bool
    next_key_marker: str | None
    next_upload_id_marker: str | None


def _json_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bytes | bytearray):
        value = json.loads(value.decode("utf-8"))
    elif isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def _encode(text: str, what: str) -> bytes:
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"{what} is not valid Unicode") from None
    if len(raw) > s.MAX_KEY_BYTES:
        raise InvalidName(f"{what} is {len(raw)} bytes long; the limit is {s.MAX_KEY_BYTES}")
    return raw


_UPLOAD_COLUMNS = (
    t.multipart_uploads.c.id,
    t.multipart_uploads.c.upload_id,
    t.multipart_uploads.c.bucket_id,
    sa.type_coerce(t.multipart_uploads.c.key, sa.LargeBinary).label("key_raw"),
    t.multipart_uploads.c.user_id,
    t.multipart_uploads.c.initiator,
    t.multipart_uploads.c.content_type,
    t.multipart_uploads.c.user_metadata,
    t.multipart_uploads.c.headers,
    t.multipart_uploads.c.storage_class,
    t.multipart_uploads.c.sse_recipient,
    t.multipart_uploads.c.checksum_algorithm,
    t.multipart_uploads.c.created_at,
)


def _upload(row: Row[Any]) -> UploadRecord:
    return UploadRecord(
        id=int(row.id),
        upload_id=row.upload_id,
        bucket_id=int(row.bucket_id),
        key=bytes(row.key_raw).decode("utf-8"),
        user_id=row.user_id,
        initiator=row.initiator,
        content_type=row.content_type,
        user_metadata=_json_dict(row.user_metadata),
        headers=_json_dict(row.headers),
        storage_class=row.storage_class,
        sse_recipient=row.sse_recipient,
        checksum_algorithm=row.checksum_algorithm,
        created_at=row.created_at,
    )


def _part_query() -> sa.Select[Any]:
    p = t.multipart_parts
    return sa.select(
        p,
        *_blob_columns("blob_", with_id=False),
    ).join(s.blobs, s.blobs.c.id == p.c.blob_id)


def _part(row: Row[Any]) -> PartRecord:
    return PartRecord(
        part_number=int(row.part_number),
        blob=_blob(row, "blob_"),
        sealed_size=int(row.sealed_size),
        plain_size=int(row.plain_size),
        md5=row.md5,
        sha256=row.sha256,
        age_header=bytes(row.age_header),
        payload_offset=int(row.payload_offset),
        seek_table=bytes(row.seek_table),
        header_mac=bytes(row.header_mac),
        recipient=row.recipient,
        created_at=row.created_at,
        checksums={str(k): str(v) for k, v in _json_dict(row.checksums).items()},
    )


class MultipartQueries(CatalogBase):
    """Queries for multipart uploads and their parts (see the module doc)."""

    def _core(self) -> Catalog:
        # The mixin runs as part of Catalog and shares its private helpers.
        return cast("Catalog", self)

    # -- uploads -----------------------------------------------------------------------------
    def create_upload(
        self,
        *,
        upload_id: str,
        bucket_id: int,
        key: str,
        user_id: int | None,
        initiator: str,
        content_type: str,
        user_metadata: Mapping[str, str],
        headers: Mapping[str, str],
        storage_class: str,
        sse_recipient: str | None = None,
        checksum_algorithm: str | None = None,
    ) -> UploadRecord:
        """Record a new upload; ``BucketNotFound`` if the bucket is gone."""
        raw = _encode(key, "the key")
        now = _now()

        def tx(conn: Connection) -> UploadRecord:
            self._core()._lock_bucket_org(conn, bucket_id)
            conn.execute(
                t.multipart_uploads.insert().values(
                    upload_id=upload_id,
                    bucket_id=bucket_id,
                    key=raw,
                    user_id=user_id,
                    initiator=initiator,
                    content_type=content_type,
                    user_metadata=dict(user_metadata),
                    headers=dict(headers),
                    storage_class=storage_class,
                    sse_recipient=sse_recipient,
                    checksum_algorithm=checksum_algorithm,
                    created_at=now,
                )
            )
            row = conn.execute(
                sa.select(*_UPLOAD_COLUMNS).where(t.multipart_uploads.c.upload_id == upload_id)
            ).one()
            return _upload(row)

        return self._write(tx, what=f"upload {upload_id}")

    def get_upload(self, upload_id: str) -> UploadRecord | None:
        """The upload with that id, or None (never started, completed or aborted)."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(*_UPLOAD_COLUMNS).where(t.multipart_uploads.c.upload_id == upload_id)
            ).first()
        )
        return None if row is None else _upload(row)

    def stale_uploads(self, older_than: datetime, *, limit: int = 1000) -> list[UploadRecord]:
        """Uploads started before ``older_than``, oldest first."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(*_UPLOAD_COLUMNS)
                .where(t.multipart_uploads.c.created_at < older_than)
                .order_by(t.multipart_uploads.c.created_at, t.multipart_uploads.c.id)
                .limit(limit)
            ).all()
        )
        return [_upload(r) for r in rows]

    def bucket_uploads(self, bucket_id: int, *, limit: int = 1000) -> list[UploadRecord]:
        """Some uploads of the bucket (oldest first), e.g. to abort them all before the
        bucket is deleted."""
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(*_UPLOAD_COLUMNS)
                .where(t.multipart_uploads.c.bucket_id == bucket_id)
                .order_by(t.multipart_uploads.c.created_at, t.multipart_uploads.c.id)
                .limit(limit)
            ).all()
        )
        return [_upload(r) for r in rows]

    def delete_upload(self, upload_pk: int) -> list[Intent] | None:
        """Drop an upload and its part rows (abort, or the end of a complete).

        Returns garbage intents for the part blobs nothing references any more (blobs a
        completed object's segments use are kept), or None if the upload was already gone.
        """

        def tx(conn: Connection) -> list[Intent] | None:
            found = conn.execute(
                sa.select(t.multipart_uploads.c.id)
                .where(t.multipart_uploads.c.id == upload_pk)
                .with_for_update()
            ).first()
            if found is None:
                return None
            blob_ids = [
                int(b)
                for b in conn.execute(
                    sa.select(t.multipart_parts.c.blob_id).where(
                        t.multipart_parts.c.upload_pk == upload_pk
                    )
                ).scalars()
            ]
            conn.execute(
                t.multipart_parts.delete().where(t.multipart_parts.c.upload_pk == upload_pk)
            )
            conn.execute(t.multipart_uploads.delete().where(t.multipart_uploads.c.id == upload_pk))
            return self._core()._collect_garbage(conn, blob_ids, _now())

        return self._write(tx)

    # -- parts -------------------------------------------------------------------------------
    def record_part(
        self,
        upload_pk: int,
        part_number: int,
        segment: NewSegment,
        *,
        org_id: int,
        intent_id: int | None = None,
        checksums: Mapping[str, str] | None = None,
        usage: UsageEvent | None = None,
    ) -> tuple[PartRecord, list[Intent]] | None:
        """Make ``segment`` (just written to its own blob) part ``part_number`` of the upload.

        In one transaction: inserts the blob row, inserts or replaces the part row, removes
        ``intent_id`` and records ``usage``. Returns the part and garbage intents for the
        blob of a replaced part, or None if the upload is gone (the caller then discards the
        blob itself).
        """
        if not 1 <= part_number <= 10000:
            raise InvalidArgument(f"part number {part_number} is not between 1 and 10000")

        def tx(conn: Connection) -> tuple[PartRecord, list[Intent]] | None:
            now = _now()
            found = conn.execute(
                sa.select(t.multipart_uploads.c.id)
                .where(t.multipart_uploads.c.id == upload_pk)
                .with_for_update()
            ).first()
            if found is None:
                return None
            core = self._core()
            blob_id = core._blob_for(conn, segment, org_id, now)
            where = sa.and_(
                t.multipart_parts.c.upload_pk == upload_pk,
                t.multipart_parts.c.part_number == part_number,
            )
            old_blob = conn.execute(
                sa.select(t.multipart_parts.c.blob_id).where(where).with_for_update()
            ).scalar()
            values = {
                "blob_id": blob_id,
                "sealed_size": segment.sealed_size,
                "plain_size": segment.plain_size,
                "md5": segment.md5,
                "sha256": segment.sha256,
                "age_header": segment.age_header,
                "payload_offset": segment.payload_offset,
                "seek_table": segment.seek_table,
                "header_mac": segment.header_mac,
                "recipient": segment.recipient,
                "checksums": dict(checksums or {}),
                "created_at": now,
            }
            if old_blob is None:
                conn.execute(
                    t.multipart_parts.insert().values(
                        upload_pk=upload_pk, part_number=part_number, **values
                    )
                )
            else:
                conn.execute(t.multipart_parts.update().where(where).values(**values))
            if intent_id is not None:
                conn.execute(s.intents.delete().where(s.intents.c.id == intent_id))
            garbage: list[Intent] = []
            if old_blob is not None and int(old_blob) != blob_id:
                garbage = self._core()._collect_garbage(conn, [int(old_blob)], now)
            if usage is not None:
                core._add_usage(conn, [core._usage_row(usage, now)])
            row = conn.execute(_part_query().where(where)).one()
            return _part(row), garbage

        return self._write(tx, what=f"part {part_number}", retry_unique=True)

    def list_parts(
        self, upload_pk: int, *, after: int = 0, limit: int = 10000
    ) -> list[PartRecord]:
        """Parts with numbers above ``after``, in part order (at most ``limit``)."""
        rows = self._read(
            lambda conn: conn.execute(
                _part_query()
                .where(
                    t.multipart_parts.c.upload_pk == upload_pk,
                    t.multipart_parts.c.part_number > after,
                )
                .order_by(t.multipart_parts.c.part_number)
                .limit(limit)
            ).all()
        )
        return [_part(r) for r in rows]

    # -- listing -----------------------------------------------------------------------------
    def list_uploads(
        self,
        bucket_id: int,
        *,
        prefix: str = "",
        delimiter: str | None = None,
        key_marker: str | None = None,
        upload_id_marker: str | None = None,
        max_uploads: int = 1000,
    ) -> UploadsPage:
        """ListMultipartUploads: uploads by key, then by initiation time.

        After ``key_marker`` alone, the listing starts at the next key; with
        ``upload_id_marker`` too, it continues with that key's uploads initiated after the
        marker's. With a delimiter, keys holding it after the prefix collapse into common
        prefixes, each skipped with one seek.
        """
        if max_uploads < 0:
            raise InvalidArgument("max-uploads cannot be negative")
        raw_prefix = _encode(prefix, "the prefix")
        raw_delim = _encode(delimiter, "the delimiter") if delimiter else None
        raw_marker = _encode(key_marker, "the key marker") if key_marker else None

        def tx(conn: Connection) -> UploadsPage:
            u = t.multipart_uploads
            key_col = sa.type_coerce(u.c.key, sa.LargeBinary)
            base = sa.select(*_UPLOAD_COLUMNS).where(u.c.bucket_id == bucket_id)
            if raw_prefix:
                base = base.where(key_col >= raw_prefix, key_col < raw_prefix + b"\xff")
            tie: tuple[datetime, int] | None = None
            lower: bytes | None = raw_marker
            inclusive = False
            if raw_marker is not None and upload_id_marker:
                marker_row = conn.execute(
                    sa.select(u.c.created_at, u.c.id).where(
                        u.c.bucket_id == bucket_id,
                        u.c.upload_id == upload_id_marker,
                        key_col == raw_marker,
                    )
                ).first()
                if marker_row is not None:
                    tie = (marker_row.created_at, int(marker_row.id))
            if raw_marker is not None and raw_delim is not None and tie is None:
                rest = raw_marker[len(raw_prefix) :] if raw_marker.startswith(raw_prefix) else b""
                if rest.endswith(raw_delim) and rest.find(raw_delim) + len(raw_delim) == len(rest):
                    lower, inclusive = raw_marker + b"\xff", True
            uploads: list[UploadRecord] = []
            prefixes: list[str] = []
            truncated = False
            while True:
                query = base
                if lower is not None:
                    if tie is not None:
                        created, pk = tie
                        query = query.where(
                            sa.or_(
                                key_col > lower,
                                sa.and_(
                                    key_col == lower,
                                    sa.or_(
                                        u.c.created_at > created,
                                        sa.and_(u.c.created_at == created, u.c.id > pk),
                                    ),
                                ),
                            )
                        )
                    elif inclusive:
                        query = query.where(key_col >= lower)
                    else:
                        query = query.where(key_col > lower)
                rows = conn.execute(
                    query.order_by(key_col, u.c.created_at, u.c.id).limit(_BATCH)
                ).all()
                if not rows:
                    break
                jumped = False
                for row in rows:
                    key = bytes(row.key_raw)
                    if raw_delim is not None:
                        at = key.find(raw_delim, len(raw_prefix))
                        if at >= 0:
                            common = key[: at + len(raw_delim)]
                            if len(uploads) + len(prefixes) >= max_uploads:
                                truncated = True
                                break
                            prefixes.append(common.decode("utf-8"))
                            lower, inclusive, tie = common + b"\xff", True, None
                            jumped = True
                            break
                    if len(uploads) + len(prefixes) >= max_uploads:
                        truncated = True
                        break
                    record = _upload(row)
                    uploads.append(record)
                    lower, inclusive, tie = key, False, (record.created_at, record.id)
                if truncated:
                    break
                if not jumped and len(rows) < _BATCH:
                    break
            next_key = next_upload = None
            if truncated:
                if uploads and (not prefixes or _last_is_upload(uploads, prefixes)):
                    next_key, next_upload = uploads[-1].key, uploads[-1].upload_id
                elif prefixes:
                    next_key = prefixes[-1]
            return UploadsPage(uploads, prefixes, truncated, next_key, next_upload)

        if max_uploads == 0:
            return UploadsPage([], [], False, None, None)
        return self._read(tx)

    def check_bucket(self, bucket_id: int) -> None:
        """``BucketNotFound`` unless the bucket exists (read, no lock)."""
        found = self._read(
            lambda conn: conn.execute(
                sa.select(s.buckets.c.id).where(s.buckets.c.id == bucket_id)
            ).first()
        )
        if found is None:
            raise BucketNotFound(bucket_id)


def _last_is_upload(uploads: Sequence[UploadRecord], prefixes: Sequence[str]) -> bool:
    # Uploads and prefixes are produced in key order; the later of the two last ones
    # is where the listing stopped.
    return uploads[-1].key.encode("utf-8") > prefixes[-1].encode("utf-8")
