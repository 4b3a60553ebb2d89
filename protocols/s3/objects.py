"""Object actions: Put/Get/Head/Delete, DeleteObjects, CopyObject, RestoreObject, ACLs and
tagging stubs.

Bodies stream: a PUT hands the verified body reader to the ObjectService, which seals it
into the backend as it reads; a GET returns the service's plaintext iterator as the WSGI
body with its exact Content-Length. Conditions are evaluated on the record the read
actually opened, before its first byte is fetched.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import unquote

from catalog.records import ObjectRecord
from gateway import errors as domain
from gateway.objects import ObjectState, ObjectView, RangeSpec
from gateway.streams import ChunkReader
from protocols.s3 import xmlio
from protocols.s3.base import ActionBase
from protocols.s3.errors import (
    GenericError,
    InvalidArgument,
    InvalidObjectState,
    InvalidRequest,
    S3Error,
    from_domain,
)
from protocols.s3.errors import NotImplemented as S3NotImplemented
from protocols.s3.headers import (
    COPY_SSE_C,
    DEFAULT_CONTENT_TYPE,
    RESPONSE_OVERRIDES,
    check_canned_acl,
    check_read_conditions,
    check_server_side_encryption,
    customer_key,
    customer_key_headers,
    http_date,
    metadata_headers,
    storage_class,
    stored_headers,
    unwire,
    user_metadata,
    wire,
    write_conditions,
)
from protocols.s3.names import check_header_sizes, parse_range, validate_bucket_name, validate_key
from protocols.s3.request import S3Request, S3Response

QUOTE_HEADER = "x-coolstorage-restore-quote-usd"


def parse_copy_source(value: str) -> tuple[str, str]:
    """``(bucket, key)`` of an ``x-amz-copy-source`` (``/bucket/key[?versionId=null]``)."""
    raw, _, query = value.strip().partition("?")
    text = unquote(raw)
    if text.startswith("/"):
        text = text[1:]
    bucket, slash, key = text.partition("/")
    if not slash or not bucket or not key:
        raise InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
        )
    if bucket.startswith("arn:"):
        raise S3NotImplemented("Access point copy sources are not supported.")
    if query:
        name, _, version = query.partition("=")
        if name != "versionId" or unquote(version) != "null":
            raise GenericError(
                "NoSuchVersion", 404, "The specified version does not exist.", VersionId=version[:128]
            )
    validate_bucket_name(bucket)
    return bucket, validate_key(key)


def part_ranges(record: ObjectRecord) -> list[tuple[int, int]]:
    """``[start, stop)`` of each part of an object, in order (one part for a simple PUT)."""
    ranges: list[tuple[int, int]] = []
    offset = 0
    current: int | None = None
    for segment in record.segments:
        if current is None or segment.part_number != current:
            ranges.append((offset, offset))
            current = segment.part_number
        offset += segment.plain_size
        ranges[-1] = (ranges[-1][0], offset)
    return ranges or [(0, record.size)]


def restore_header(view: ObjectView) -> str | None:
    """``x-amz-restore`` for a restoring or restored object."""
    if view.state == ObjectState.RESTORING:
        return 'ongoing-request="true"'
    if view.state == ObjectState.RESTORED:
        text = 'ongoing-request="false"'
        if view.restore_expiry is not None:
            text += f', expiry-date="{http_date(view.restore_expiry)}"'
        return text
    return None


class _Body:
    """A streamed response body: closes the service's iterator however the response ends.

    :meth:`prime` pulls the first piece before the status line is sent, so a failure to
    reach the stored bytes (a missing blob, a backend down, a key that does not open the
    header) is still answered as an S3 error rather than as a cut connection.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._first: bytes | None = None

    def prime(self) -> None:
        self._first = next(self._chunks, b"")

    def __iter__(self) -> Iterator[bytes]:
        if self._first:
            yield self._first
        self._first = None
        yield from self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class ObjectActions(ActionBase):
    """Handlers of single objects."""

    # -- writes ----------------------------------------------------------------------------
    def put_object(self, req: S3Request) -> S3Response:
        check_header_sizes(req.headers)
        check_canned_acl(req.headers)
        sse = check_server_side_encryption(req.headers)
        sse_key = customer_key(req.headers, secure=req.secure)
        klass = storage_class(req.headers)
        if_match, if_none_match = write_conditions(req.headers)
        reader, digests, size = self.object_body(req)
        try:
            record = self.objects.put_object(
                self.who(req),
                req.org,
                self.bucket(req),
                self.key(req),
                reader,
                size=size,
                content_type=unwire(req.header("content-type") or DEFAULT_CONTENT_TYPE),
                user_metadata=user_metadata(req.headers),
                headers=stored_headers(req.headers),
                storage_class=klass,
                if_match=if_match,
                if_none_match=if_none_match,
                sse_customer_key=sse_key,
                expected_sha256=digests.sha256,
                expected_md5=digests.md5,
            )
        except domain.BadDigest as exc:
            raise self.digest_error(exc, digests) from None
        resp = S3Response(200)
        resp.add("ETag", record.etag)
        resp.headers += self.checksum_headers(reader, digests, record.sha256)
        resp.headers += customer_key_headers(sse_key)
        resp.add("x-amz-server-side-encryption", sse)
        return resp

    def copy_object(self, req: S3Request) -> S3Response:
        check_header_sizes(req.headers)
        check_canned_acl(req.headers)
        sse = check_server_side_encryption(req.headers)
        who, bucket, key = self.who(req), self.bucket(req), self.key(req)
        src_bucket, src_key = parse_copy_source(req.header("x-amz-copy-source") or "")
        src_sse = customer_key(req.headers, secure=req.secure, prefix=COPY_SSE_C)
        dst_sse = customer_key(req.headers, secure=req.secure)
        directive = (req.header("x-amz-metadata-directive") or "COPY").strip().upper()
        if directive not in ("COPY", "REPLACE"):
            raise InvalidArgument(
                "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive"
            )
        tagging = (req.header("x-amz-tagging-directive") or "COPY").strip().upper()
        if tagging not in ("COPY", "REPLACE"):
            raise InvalidArgument("Unknown tagging directive.", ArgumentName="x-amz-tagging-directive")
        klass = storage_class(req.headers)
        if_match, if_none_match = write_conditions(req.headers)
        source = self.objects.head_object_with_key(
            who, req.org, src_bucket, src_key, sse_customer_key=src_sse
        )
        check_read_conditions(
            req.headers,
            source.record.etag,
            source.record.modified_at,
            prefix="x-amz-copy-source-if-",
        )
        if not source.readable:
            raise InvalidObjectState(
                "Operation is not valid for the source object's storage class",
                StorageClass=source.storage_class,
            )
        same = src_bucket == bucket and src_key == key
        if (
            same
            and directive == "COPY"
            and klass == source.record.storage_class
            and src_sse == dst_sse
        ):
            raise InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself"
                " without changing the object's metadata, storage class, website redirect"
                " location or encryption attributes."
            )
        replace = directive == "REPLACE"
        metadata = user_metadata(req.headers) if replace else None
        headers = stored_headers(req.headers) if replace else None
        content_type = (
            unwire(req.header("content-type") or DEFAULT_CONTENT_TYPE) if replace else None
        )
        if src_sse is not None:
            record = self._copy_through(
                req, src_bucket, src_key, src_sse, dst_sse, source, klass, metadata, headers,
                content_type, if_match, if_none_match,
            )
        else:
            record = self.objects.copy_object(
                who,
                req.org,
                src_bucket,
                src_key,
                bucket,
                key,
                replace_metadata=metadata,
                replace_headers=headers,
                content_type=content_type,
                storage_class=klass,
                if_match=if_match,
                if_none_match=if_none_match,
                sse_customer_key=dst_sse,
            )
        resp = S3Response.xml(xmlio.copy_object_result(record.etag, record.modified_at))
        resp.headers += customer_key_headers(dst_sse)
        resp.add("x-amz-server-side-encryption", sse)
        return resp

    def _copy_through(
        self,
        req: S3Request,
        src_bucket: str,
        src_key: str,
        src_sse: bytes,
        dst_sse: bytes | None,
        source: ObjectView,
        klass: str,
        metadata: dict[str, str] | None,
        headers: dict[str, str] | None,
        content_type: str | None,
        if_match: str | None,
        if_none_match: bool,
    ) -> ObjectRecord:
        # A source sealed to a customer key is read with that key and written again.
        opened = self.objects.get_object(
            self.who(req), req.org, src_bucket, src_key, sse_customer_key=src_sse
        )
        reader = ChunkReader(opened.body)
        try:
            return self.objects.put_object(
                self.who(req),
                req.org,
                self.bucket(req),
                self.key(req),
                reader,
                size=opened.length,
                content_type=content_type or source.record.content_type,
                user_metadata=source.record.user_metadata if metadata is None else metadata,
                headers=source.record.headers if headers is None else headers,
                storage_class=klass,
                if_match=if_match,
                if_none_match=if_none_match,
                sse_customer_key=dst_sse,
            )
        finally:
            reader.close()

    def delete_object(self, req: S3Request) -> S3Response:
        self.check_version(req)
        self.objects.delete_object(self.who(req), req.org, self.bucket(req), self.key(req))
        return S3Response(204)

    def delete_objects(self, req: S3Request) -> S3Response:
        request = xmlio.parse_delete(self.small_body(req, xmlio.MAX_LARGE_XML_BYTES))
        who, bucket = self.who(req), self.bucket(req)
        self.objects.head_bucket(who, req.org, bucket)
        deleted: list[xmlio.Deleted] = []
        failed: list[xmlio.DeleteFailure] = []
        for item in request.objects:
            try:
                if item.version_id not in (None, "null"):
                    raise GenericError(
                        "NoSuchVersion", 404, "The specified version does not exist."
                    )
                self.objects.delete_object(who, req.org, bucket, validate_key(item.key))
            except domain.BucketNotFound:
                raise
            except domain.CoolStorageError as exc:
                err = from_domain(exc)
                failed.append(xmlio.DeleteFailure(item.key, err.code, err.message, item.version_id))
                continue
            except S3Error as err:
                failed.append(xmlio.DeleteFailure(item.key, err.code, err.message, item.version_id))
                continue
            deleted.append(xmlio.Deleted(item.key, item.version_id))
        return S3Response.xml(xmlio.delete_result(deleted, failed, quiet=request.quiet))

    # -- reads -----------------------------------------------------------------------------
    def _part_spec(self, req: S3Request, view: ObjectView) -> tuple[RangeSpec | None, int]:
        number = req.int_param("partNumber", 1, low=1, high=10000)
        ranges = part_ranges(view.record) if "-" in view.record.etag else [(0, view.record.size)]
        if number > len(ranges):
            raise GenericError(
                "InvalidPartNumber", 416, "The requested partnumber is not satisfiable",
                PartNumberRequested=number, ActualPartCount=len(ranges),
            )
        start, stop = ranges[number - 1]
        if stop == start:
            return None, len(ranges)
        return RangeSpec(start, stop - 1), len(ranges)

    def _object_headers(
        self, req: S3Request, view: ObjectView, sse_key: bytes | None
    ) -> list[tuple[str, str]]:
        record = view.record
        headers = [
            ("ETag", record.etag),
            ("Last-Modified", http_date(record.modified_at)),
            ("Accept-Ranges", "bytes"),
            ("Content-Type", wire(record.content_type or DEFAULT_CONTENT_TYPE)),
        ]
        headers += [(name, wire(value)) for name, value in sorted(record.headers.items())]
        headers += metadata_headers(record.user_metadata)
        if view.storage_class != "STANDARD":
            headers.append(("x-amz-storage-class", view.storage_class))
        restore = restore_header(view)
        if restore is not None:
            headers.append(("x-amz-restore", restore))
        headers += customer_key_headers(sse_key)
        overrides = {
            canonical: value
            for param, canonical in RESPONSE_OVERRIDES.items()
            if (value := req.param(param)) is not None
        }
        if overrides:
            lowered = {c.lower() for c in overrides}
            headers = [(n, v) for n, v in headers if n.lower() not in lowered]
            headers += [(n, wire(v)) for n, v in overrides.items()]
        return headers

    def _checksum_header(self, req: S3Request, record: ObjectRecord) -> list[tuple[str, str]]:
        # The object's SHA-256 is known exactly for single-part objects: give it to clients
        # that validate full-object reads (x-amz-checksum-mode: ENABLED).
        if (req.header("x-amz-checksum-mode") or "").upper() != "ENABLED":
            return []
        if "-" in record.sha256 or len(record.sha256) != 64:
            return []
        value = base64.b64encode(bytes.fromhex(record.sha256)).decode("ascii")
        return [("x-amz-checksum-sha256", value)]

    def get_object(self, req: S3Request) -> S3Response:
        self.check_version(req)
        who, bucket, key = self.who(req), self.bucket(req), self.key(req)
        sse_key = customer_key(req.headers, secure=req.secure)
        part_count: int | None = None
        if req.has("partNumber"):
            if req.header("range") is not None:
                raise InvalidRequest(
                    "Cannot specify both Range header and partNumber query parameter"
                )
            view = self.objects.head_object_with_key(
                who, req.org, bucket, key, sse_customer_key=sse_key
            )
            spec: RangeSpec | None
            spec, part_count = self._part_spec(req, view)
        else:
            spec = parse_range(req.header("range"))
        opened = self.objects.get_object(
            who, req.org, bucket, key, byte_range=spec, sse_customer_key=sse_key
        )
        body = _Body(opened.body)
        try:
            record = opened.view.record
            check_read_conditions(req.headers, record.etag, record.modified_at)
            body.prime()
            resp = S3Response(206 if spec is not None else 200, body=body, length=opened.length)
            resp.headers = self._object_headers(req, opened.view, sse_key)
            if spec is not None:
                resp.add("Content-Range", f"bytes {opened.start}-{opened.stop - 1}/{record.size}")
            elif opened.length == record.size:
                resp.headers += self._checksum_header(req, record)
            if part_count is not None:
                resp.add("x-amz-mp-parts-count", str(part_count))
        except BaseException:
            body.close()
            raise
        return resp

    def head_object(self, req: S3Request) -> S3Response:
        self.check_version(req)
        sse_key = customer_key(req.headers, secure=req.secure)
        view = self.objects.head_object_with_key(
            self.who(req), req.org, self.bucket(req), self.key(req), sse_customer_key=sse_key
        )
        record = view.record
        check_read_conditions(req.headers, record.etag, record.modified_at)
        resp = S3Response(200, length=record.size, body=[])
        resp.headers = self._object_headers(req, view, sse_key)
        if req.has("partNumber"):
            spec, count = self._part_spec(req, view)
            if spec is not None:
                start, stop = spec.resolve(record.size)
                resp.status = 206
                resp.length = stop - start
                resp.add("Content-Range", f"bytes {start}-{stop - 1}/{record.size}")
            resp.add("x-amz-mp-parts-count", str(count))
        else:
            resp.headers += self._checksum_header(req, record)
        return resp

    # -- restores --------------------------------------------------------------------------
    def restore_object(self, req: S3Request) -> S3Response:
        self.check_version(req)
        request = xmlio.parse_restore_request(self.small_body(req, 64 << 10))
        ticket = self.objects.request_restore(
            self.who(req),
            req.org,
            self.bucket(req),
            self.key(req),
            days=request.days if request.days is not None else 1,
            tier=request.tier,
        )
        started = ticket.status == "started"
        resp = S3Response(202 if started else 200)
        if ticket.quote_usd is not None:
            resp.add(QUOTE_HEADER, str(ticket.quote_usd))
        return resp

    # -- ACLs and tags ---------------------------------------------------------------------
    def get_object_acl(self, req: S3Request) -> S3Response:
        self.check_version(req)
        self.objects.head_object(self.who(req), req.org, self.bucket(req), self.key(req))
        return S3Response.xml(xmlio.access_control_policy(self.owner(req)))

    def put_object_acl(self, req: S3Request) -> S3Response:
        self.check_version(req)
        self.objects.head_object(self.who(req), req.org, self.bucket(req), self.key(req))
        check_canned_acl(req.headers)
        self.small_body(req)
        return S3Response(200)

    def get_object_tagging(self, req: S3Request) -> S3Response:
        self.check_version(req)
        self.objects.head_object(self.who(req), req.org, self.bucket(req), self.key(req))
        return S3Response.xml(xmlio.render(xmlio.E("Tagging", xmlio.E("TagSet"))))

    def put_object_tagging(self, req: S3Request) -> S3Response:
        self.objects.head_object(self.who(req), req.org, self.bucket(req), self.key(req))
        raise S3NotImplemented("Object tagging is not supported.")

    def delete_object_tagging(self, req: S3Request) -> S3Response:
        self.objects.head_object(self.who(req), req.org, self.bucket(req), self.key(req))
        return S3Response(204)
