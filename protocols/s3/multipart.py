"""Multipart actions: Create, UploadPart, UploadPartCopy, Complete, Abort, ListParts and
ListMultipartUploads, over :class:`gateway.multipart.MultipartOperations`.

Each part body streams into its own sealed segment as it arrives; Complete copies no data.
A part's ``x-amz-checksum-*`` values are kept with it, returned by ListParts and checked
against those a client lists in CompleteMultipartUpload; the object's checksum is then
S3's composite one (the checksum of the part checksums, ``-N``).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

from gateway import errors as domain
from gateway.multipart import CompletedPartSpec, CompletedUpload
from protocols.s3 import checksums, xmlio
from protocols.s3.base import ActionBase
from protocols.s3.errors import InvalidArgument, InvalidObjectState, InvalidRequest
from protocols.s3.headers import (
    COPY_SSE_C,
    DEFAULT_CONTENT_TYPE,
    check_canned_acl,
    check_read_conditions,
    check_server_side_encryption,
    customer_key,
    customer_key_headers,
    storage_class,
    stored_headers,
    unwire,
    user_metadata,
    write_conditions,
)
from protocols.s3.names import check_header_sizes
from protocols.s3.objects import parse_copy_source
from protocols.s3.request import S3Request, S3Response

_COPY_RANGE_HELP = (
    "The x-amz-copy-source-range value must be of the form bytes=first-last where first and"
    " last are the zero-based offsets of the first and last bytes to copy"
)


def parse_copy_range(value: str | None) -> tuple[int, int] | None:
    """``(first, last)`` of ``x-amz-copy-source-range: bytes=first-last`` (inclusive)."""
    if value is None:
        return None
    text = value.strip()
    if not text.startswith("bytes="):
        raise InvalidArgument(_COPY_RANGE_HELP, ArgumentName="x-amz-copy-source-range")
    first, dash, last = text[len("bytes=") :].partition("-")
    if (
        not dash
        or not first.isdigit()
        or not last.isdigit()
        or len(first) > 19
        or len(last) > 19
        or int(last) < int(first)
    ):
        raise InvalidArgument(_COPY_RANGE_HELP, ArgumentName="x-amz-copy-source-range")
    return int(first), int(last)


def composite_checksum(algorithm: str, values: list[str]) -> str | None:
    """S3's checksum of a multipart object: the checksum of the parts' checksums, ``-N``."""
    hasher = checksums.new(algorithm)
    for value in values:
        try:
            hasher.update(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            return None
    return f"{checksums.b64(hasher.digest())}-{len(values)}"


class MultipartActions(ActionBase):
    """Handlers of multipart uploads."""

    def _upload_id(self, req: S3Request) -> str:
        upload_id = req.param("uploadId")
        if not upload_id:
            raise InvalidArgument("The upload ID is empty.", ArgumentName="uploadId")
        return upload_id

    def _part_number(self, req: S3Request) -> int:
        if not req.has("partNumber"):
            raise InvalidArgument("Part number must be given.", ArgumentName="partNumber")
        return req.int_param("partNumber", 0, low=1, high=10000)

    def create_multipart_upload(self, req: S3Request) -> S3Response:
        check_header_sizes(req.headers)
        check_canned_acl(req.headers)
        sse = check_server_side_encryption(req.headers)
        sse_key = customer_key(req.headers, secure=req.secure)
        algorithm = req.header("x-amz-checksum-algorithm")
        if algorithm is not None:
            algorithm = algorithm.strip().upper()
            if algorithm not in checksums.ALGORITHMS:
                raise InvalidRequest("Checksum algorithm provided is unsupported.")
        upload = self.objects.create_multipart_upload(
            self.who(req),
            req.org,
            self.bucket(req),
            self.key(req),
            content_type=unwire(req.header("content-type") or DEFAULT_CONTENT_TYPE),
            user_metadata=user_metadata(req.headers),
            headers=stored_headers(req.headers),
            storage_class=storage_class(req.headers),
            sse_customer_key=sse_key,
            checksum_algorithm=algorithm,
        )
        resp = S3Response.xml(
            xmlio.initiate_multipart_upload_result(self.bucket(req), self.key(req), upload.upload_id)
        )
        resp.add("x-amz-checksum-algorithm", algorithm)
        resp.headers += customer_key_headers(sse_key)
        resp.add("x-amz-server-side-encryption", sse)
        return resp

    def upload_part(self, req: S3Request) -> S3Response:
        number = self._part_number(req)
        upload_id = self._upload_id(req)
        sse_key = customer_key(req.headers, secure=req.secure)
        reader, digests, size = self.object_body(req)
        try:
            part = self.objects.upload_part(
                self.who(req),
                req.org,
                self.bucket(req),
                self.key(req),
                upload_id,
                number,
                reader,
                size=size,
                sse_customer_key=sse_key,
                expected_sha256=digests.sha256,
                expected_md5=digests.md5,
                checksums=lambda sha256: dict(self.checksum_headers(reader, digests, sha256)),
            )
        except domain.BadDigest as exc:
            raise self.digest_error(exc, digests) from None
        resp = S3Response(200)
        resp.add("ETag", f'"{part.md5}"')
        resp.headers += self.checksum_headers(reader, digests, part.sha256)
        resp.headers += customer_key_headers(sse_key)
        return resp

    def upload_part_copy(self, req: S3Request) -> S3Response:
        number = self._part_number(req)
        upload_id = self._upload_id(req)
        who = self.who(req)
        src_bucket, src_key = parse_copy_source(req.header("x-amz-copy-source") or "")
        src_sse = customer_key(req.headers, secure=req.secure, prefix=COPY_SSE_C)
        sse_key = customer_key(req.headers, secure=req.secure)
        byte_range = parse_copy_range(req.header("x-amz-copy-source-range"))
        source = self.objects.head_object_with_key(
            who, req.org, src_bucket, src_key, sse_customer_key=src_sse
        )
        check_read_conditions(
            req.headers, source.record.etag, source.record.modified_at,
            prefix="x-amz-copy-source-if-",
        )
        if not source.readable:
            raise InvalidObjectState(
                "Operation is not valid for the source object's storage class",
                StorageClass=source.storage_class,
            )
        spec = None
        if byte_range is not None:
            from gateway.objects import RangeSpec

            first, last = byte_range
            if last >= source.record.size:
                raise InvalidArgument(
                    "Range specified is not valid for source object of size:"
                    f" {source.record.size}",
                    ArgumentName="x-amz-copy-source-range",
                )
            spec = RangeSpec(first, last)
        part, _ = self.objects.upload_part_copy(
            who,
            req.org,
            self.bucket(req),
            self.key(req),
            upload_id,
            number,
            src_bucket,
            src_key,
            byte_range=spec,
            sse_customer_key=sse_key,
            src_sse_customer_key=src_sse,
        )
        resp = S3Response.xml(xmlio.copy_object_result(part.md5, part.created_at, part=True))
        resp.headers += customer_key_headers(sse_key)
        return resp

    def complete_multipart_upload(self, req: S3Request) -> S3Response:
        upload_id = self._upload_id(req)
        if_match, if_none_match = write_conditions(req.headers)
        listed = xmlio.parse_complete_multipart_upload(
            self.small_body(req, xmlio.MAX_LARGE_XML_BYTES)
        )
        specs = [
            CompletedPartSpec(
                p.part_number,
                p.etag,
                {checksums.header_name(a): v for a, v in p.checksums.items() if a in checksums.ALGORITHMS},
            )
            for p in listed
        ]
        done = self.objects.complete_multipart_upload(
            self.who(req),
            req.org,
            self.bucket(req),
            self.key(req),
            upload_id,
            specs,
            if_match=if_match,
            if_none_match=if_none_match,
        )
        scheme = "https" if req.secure else "http"
        host = req.header("host") or "localhost"
        location = f"{scheme}://{host}/{quote(self.bucket(req))}/{quote(self.key(req))}"
        sums = self._object_checksum(done)
        resp = S3Response.xml(
            xmlio.complete_multipart_upload_result(
                location, self.bucket(req), self.key(req), done.object.etag, checksums=sums
            )
        )
        return resp

    @staticmethod
    def _object_checksum(done: CompletedUpload) -> dict[str, str]:
        algorithm = done.upload.checksum_algorithm
        if algorithm is None:
            return {}
        header = checksums.header_name(algorithm)
        values = [p.checksums.get(header) for p in done.parts]
        if any(v is None for v in values):
            return {}
        value = composite_checksum(algorithm, [v for v in values if v is not None])
        return {header: value} if value is not None else {}

    def abort_multipart_upload(self, req: S3Request) -> S3Response:
        self.objects.abort_multipart_upload(
            self.who(req), req.org, self.bucket(req), self.key(req), self._upload_id(req)
        )
        return S3Response(204)

    def list_parts(self, req: S3Request) -> S3Response:
        max_parts = req.int_param("max-parts", 1000)
        marker = req.int_param("part-number-marker", 0)
        page = self.objects.list_parts(
            self.who(req),
            req.org,
            self.bucket(req),
            self.key(req),
            self._upload_id(req),
            part_number_marker=marker,
            max_parts=max_parts,
        )
        return S3Response.xml(
            xmlio.list_parts_result(
                bucket=self.bucket(req),
                key=self.key(req),
                upload_id=page.upload.upload_id,
                part_number_marker=marker,
                max_parts=min(max_parts, 1000),
                is_truncated=page.is_truncated,
                parts=[
                    xmlio.PartInfo(p.part_number, p.created_at, p.md5, p.size, dict(p.checksums))
                    for p in page.parts
                ],
                next_part_number_marker=page.next_part_number_marker,
                owner=self.owner(req),
                storage_class=page.upload.storage_class,
                checksum_algorithm=page.upload.checksum_algorithm,
            )
        )

    def list_multipart_uploads(self, req: S3Request) -> S3Response:
        url = self.encoding_type(req)
        max_uploads = req.int_param("max-uploads", 1000)
        key_marker = req.param("key-marker") or ""
        upload_marker = req.param("upload-id-marker") or ""
        page = self.objects.list_multipart_uploads(
            self.who(req),
            req.org,
            self.bucket(req),
            prefix=req.param("prefix") or "",
            delimiter=req.param("delimiter") or None,
            key_marker=key_marker or None,
            upload_id_marker=upload_marker or None,
            max_uploads=max_uploads,
        )
        owner = self.owner(req)
        return S3Response.xml(
            xmlio.list_multipart_uploads_result(
                bucket=self.bucket(req),
                key_marker=key_marker,
                upload_id_marker=upload_marker,
                max_uploads=min(max_uploads, 1000),
                is_truncated=page.is_truncated,
                uploads=[
                    xmlio.UploadInfo(
                        u.key,
                        u.upload_id,
                        u.created_at,
                        u.storage_class,
                        xmlio.Owner(owner.id, u.initiator),
                        u.checksum_algorithm,
                    )
                    for u in page.uploads
                ],
                prefix=req.param("prefix") or "",
                delimiter=req.param("delimiter") or None,
                next_key_marker=page.next_key_marker,
                next_upload_id_marker=page.next_upload_id_marker,
                common_prefixes=page.common_prefixes,
                url=url,
            )
        )
