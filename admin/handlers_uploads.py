"""Resumable multipart upload sessions over the ObjectService's multipart uploads.

A session is an S3 multipart upload: its id is the upload id, each part is sealed into its
own segment as it arrives, and completing makes the parts the object without copying a
byte. A client that was interrupted asks ``GET /uploads/{id}`` which parts arrived and
sends only the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from admin.api import Reply, Request
from admin.service import decode_cursor, encode_cursor, iso
from admin.validation import ValidationError
from admin.wsgi import HTTPProblem
from gateway.multipart import MAX_PARTS, MIN_PART_SIZE, CompletedPartSpec, NoSuchUpload

if TYPE_CHECKING:
    from catalog.multipart import PartRecord, UploadRecord


def _part(part: PartRecord) -> dict[str, Any]:
    return {
        "part_number": part.part_number,
        "size": part.size,
        "etag": f'"{part.md5}"',
        "sha256": part.sha256,
        "created_at": iso(part.created_at),
    }


def _upload(org: str, bucket: str, upload: UploadRecord, parts: list[PartRecord]) -> dict[str, Any]:
    return {
        "upload_id": upload.upload_id,
        "org": org,
        "bucket": bucket,
        "key": upload.key,
        "content_type": upload.content_type,
        "storage_class": upload.storage_class,
        "created_at": iso(upload.created_at),
        "min_part_size": MIN_PART_SIZE,
        "max_parts": MAX_PARTS,
        "parts": [_part(p) for p in parts],
    }


def _locate(req: Request, upload_id: str) -> tuple[str, str, UploadRecord]:
    """``(org, bucket, upload)`` of an upload the caller's orgs hold; an upload elsewhere
    is as unknown as one that never existed."""
    catalog = req.services.catalog
    upload = catalog.get_upload(upload_id)
    bucket = catalog.get_bucket_by_id(upload.bucket_id) if upload is not None else None
    org = catalog.get_org_by_id(bucket.org_id) if bucket is not None else None
    if upload is None or bucket is None or org is None or req.principal.role_in(org.name) is None:
        raise NoSuchUpload(upload_id)
    return org.name, bucket.name, upload


def _all_parts(req: Request, org: str, bucket: str, upload: UploadRecord) -> list[PartRecord]:
    objects = req.services.objects
    parts: list[PartRecord] = []
    marker = 0
    while True:
        page = objects.list_parts(
            req.principal, org, bucket, upload.key, upload.upload_id, part_number_marker=marker
        )
        parts.extend(page.parts)
        if not page.is_truncated or page.next_part_number_marker is None:
            return parts
        marker = page.next_part_number_marker


def create_upload(req: Request) -> Reply:
    """``POST /uploads``: start a session for one object."""
    b = req.body
    upload = req.services.objects.create_multipart_upload(
        req.principal,
        b["org"],
        b["bucket"],
        b["key"],
        content_type=b.get("content_type", "application/octet-stream"),
        storage_class=b.get("storage_class", "STANDARD"),
    )
    return Reply(201, _upload(b["org"], b["bucket"], upload, []))


def get_upload(req: Request) -> Reply:
    """``GET /uploads/{upload_id}``: the session and the parts received so far."""
    org, bucket, upload = _locate(req, req.params["upload_id"])
    return Reply(200, _upload(org, bucket, upload, _all_parts(req, org, bucket, upload)))


def list_uploads(req: Request) -> Reply:
    """``GET /uploads``: sessions in progress in a bucket (without their parts)."""
    p = req.params
    cursor = decode_cursor(p.get("cursor")) or {}
    key_marker, id_marker = cursor.get("key"), cursor.get("id")
    if not (key_marker is None or isinstance(key_marker, str)) or not (
        id_marker is None or isinstance(id_marker, str)
    ):
        raise ValidationError("query.cursor", "not a cursor this API handed out")
    page = req.services.objects.list_multipart_uploads(
        req.principal, p["org"], p["bucket"], prefix=p.get("prefix", ""),
        key_marker=key_marker, upload_id_marker=id_marker, max_uploads=p.get("limit", 100),
    )
    uploads = [_upload(p["org"], p["bucket"], u, []) for u in page.uploads]
    next_cursor = None
    if page.is_truncated and page.next_key_marker is not None:
        next_cursor = encode_cursor(
            {"key": page.next_key_marker, "id": page.next_upload_id_marker}
        )
    return Reply(200, {"uploads": uploads, "next_cursor": next_cursor})


def upload_part(req: Request) -> Reply:
    """``PUT /uploads/{upload_id}/parts/{part_number}``: the part's bytes, streamed and
    sealed; sending a part again replaces it."""
    org, bucket, upload = _locate(req, req.params["upload_id"])
    length = req.body_length()
    if length is None and not req.is_chunked():
        raise HTTPProblem(411, "MissingContentLength", "send Content-Length or a chunked body")
    expected = req.params.get("X-Checksum-Sha256")
    part = req.services.objects.upload_part(
        req.principal,
        org,
        bucket,
        upload.key,
        upload.upload_id,
        req.params["part_number"],
        req.body_reader(),
        size=length,
        expected_sha256=expected.lower() if expected else None,
    )
    return Reply(200, _part(part), headers=[("ETag", f'"{part.md5}"')])


def complete_upload(req: Request) -> Reply:
    """``POST /uploads/{upload_id}/complete``: make the parts the object."""
    from admin.handlers_objects import _info

    org, bucket, upload = _locate(req, req.params["upload_id"])
    listed = (req.body or {}).get("parts")
    if listed is None:
        specs = [
            CompletedPartSpec(p.part_number, p.md5) for p in _all_parts(req, org, bucket, upload)
        ]
    else:
        specs = [CompletedPartSpec(int(p["part_number"]), str(p["etag"])) for p in listed]
    done = req.services.objects.complete_multipart_upload(
        req.principal, org, bucket, upload.key, upload.upload_id, specs
    )
    return Reply(200, _info(req, org, bucket, done.object.key))


def abort_upload(req: Request) -> Reply:
    """``DELETE /uploads/{upload_id}``: drop the session and its parts."""
    org, bucket, upload = _locate(req, req.params["upload_id"])
    req.services.objects.abort_multipart_upload(
        req.principal, org, bucket, upload.key, upload.upload_id
    )
    return Reply(204)
