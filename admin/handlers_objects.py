"""Objects: listing and search (GetDirContentlist), streamed upload and download
(PutFileFolderInStorage, RetrieveObject), copy, move, delete, storage modes
(ChangeStorageMode), and the sealed segments of vault objects."""

from __future__ import annotations

import base64
import fnmatch
from datetime import datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from admin.api import Reply, Request
from admin.service import (
    decode_cursor,
    encode_cursor,
    object_info,
    object_summary,
    object_url,
)
from admin.validation import ValidationError, parse_datetime
from admin.wsgi import HTTPProblem, parse_range
from gateway.errors import ObjectArchived
from gateway.principals import Action

if TYPE_CHECKING:
    from catalog.records import ObjectRecord
    from gateway.objects import ObjectView

#: Catalog rows one listing request looks at, at most; a page may then hold fewer than
#: ``limit`` matches, with a cursor to go on.
SCAN_LIMIT = 10_000
#: Rows fetched from the catalog per query while listing.
BATCH = 1000


# -- listing -----------------------------------------------------------------------------------


class _Filter:
    """The search criteria of ``GET /objects``; cheap ones first, state last (it needs the
    restore rows)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.name: str | None = params.get("name")
        self.min_size: int | None = params.get("min_size")
        self.max_size: int | None = params.get("max_size")
        self.after = _time(params, "modified_after")
        self.before = _time(params, "modified_before")
        self.state: str | None = params.get("state")
        self.storage_class: str | None = params.get("storage_class")

    @property
    def active(self) -> bool:
        return any(
            v is not None
            for v in (self.name, self.min_size, self.max_size, self.after, self.before,
                      self.state, self.storage_class)
        )

    def cheap(self, record: ObjectRecord) -> bool:
        if self.min_size is not None and record.size < self.min_size:
            return False
        if self.max_size is not None and record.size > self.max_size:
            return False
        if self.after is not None and record.modified_at < self.after:
            return False
        if self.before is not None and record.modified_at >= self.before:
            return False
        if self.name is not None:
            # A pattern with '/' matches the whole key, else the last path segment.
            subject = record.key if "/" in self.name else record.key.rstrip("/").rsplit("/", 1)[-1]
            if not fnmatch.fnmatchcase(subject, self.name):
                return False
        return True

    def late(self, view: ObjectView) -> bool:
        if self.state is not None and view.state != self.state:
            return False
        return self.storage_class is None or view.storage_class == self.storage_class


def _time(params: dict[str, Any], name: str) -> datetime | None:
    value = params.get(name)
    return None if value is None else parse_datetime(value, f"query.{name}")


def list_objects(req: Request) -> Reply:
    """``GET /objects``: one page of a bucket, filtered, from the catalog alone.

    The catalog is walked in key order, a batch at a time, from the cursor on; a page ends
    at ``limit`` matches or after :data:`SCAN_LIMIT` rows, so no request reads a whole
    bucket. A page may hold fewer than ``limit`` matches: go on while ``next_cursor`` is set.
    """
    p = req.params
    objects = req.services.objects
    principal = req.principal
    org, bucket = p["org"], p["bucket"]
    limit: int = p.get("limit", 100)
    prefix: str = p.get("prefix", "")
    delimiter: str | None = p.get("delimiter") or None
    cursor = decode_cursor(p.get("cursor"))
    marker = cursor.get("after") if cursor else None
    if marker is not None and not isinstance(marker, str):
        raise ValidationError("query.cursor", "not a cursor this API handed out")
    wanted = _Filter(p)

    found: list[dict[str, Any]] = []
    prefixes: list[str] = []
    scanned = 0
    next_marker: str | None = marker
    more = True
    while more and len(found) + len(prefixes) < limit and scanned < SCAN_LIMIT:
        room = limit - len(found) - len(prefixes)
        batch = BATCH if wanted.active else min(BATCH, room)
        page = objects.list_objects(
            principal, org, bucket, prefix=prefix, delimiter=delimiter,
            start_after=next_marker, max_keys=batch,
        )
        entries: list[tuple[bytes, str, ObjectRecord | None]] = [
            (r.key.encode("utf-8", "surrogatepass"), r.key, r) for r in page.objects
        ] + [(c.encode("utf-8", "surrogatepass"), c, None) for c in page.common_prefixes]
        entries.sort(key=lambda e: e[0])
        cheap = {r.id for _, _, r in entries if r is not None and wanted.cheap(r)}
        views = {
            v.record.id: v
            for v in objects.views([r for _, _, r in entries if r is not None and r.id in cheap])
        } if cheap else {}
        if not entries:
            more = False
            break
        stopped_early = False
        for _, name, record in entries:
            if len(found) + len(prefixes) >= limit:
                stopped_early = True
                break
            scanned += 1
            next_marker = name
            if record is None:
                prefixes.append(name)
                continue
            view = views.get(record.id)
            if view is not None and wanted.late(view):
                found.append(object_summary(view))
        more = stopped_early or page.is_truncated
    next_cursor = encode_cursor({"after": next_marker}) if more and next_marker is not None else None
    return Reply(
        200,
        {
            "org": org,
            "bucket": bucket,
            "objects": found,
            "prefixes": prefixes,
            "next_cursor": next_cursor,
            "scanned": scanned,
        },
    )


# -- single objects ----------------------------------------------------------------------------


def _info(req: Request, org_name: str, bucket_name: str, key: str) -> dict[str, Any]:
    view = req.services.objects.head_object(req.principal, org_name, bucket_name, key)
    org = req.services.catalog.get_org(org_name)
    bucket = req.services.catalog.get_bucket(org.id, bucket_name)
    return object_info(view, org, bucket)


def put_object(req: Request) -> Reply:
    """``PUT /objects/{org}/{bucket}/{key}``: the body, streamed through sealing into the
    bucket's backend; answers where and how it was stored."""
    p = req.params
    length = req.body_length()
    if length is None and not req.is_chunked():
        raise HTTPProblem(411, "MissingContentLength", "send Content-Length or a chunked body")
    storage_class = p.get("storage_class") or "STANDARD"
    expected = p.get("X-Checksum-Sha256")
    record = req.services.objects.put_object(
        req.principal,
        p["org"],
        p["bucket"],
        p["key"],
        req.body_reader(),
        size=length,
        content_type=req.header("Content-Type") or "application/octet-stream",
        storage_class=storage_class,
        expected_sha256=expected.lower() if expected else None,
    )
    info = _info(req, p["org"], p["bucket"], record.key)
    return Reply(201, info, headers=[("ETag", record.etag)])


def get_object(req: Request) -> Reply:
    """``GET /objects/{org}/{bucket}/{key}``: the content (``Range`` supported). An archived
    object answers 403 InvalidObjectState; a vault object 403 VaultSealed (fetch its sealed
    segments instead)."""
    p = req.params
    byte_range = parse_range(req.header("Range"))
    read = req.services.objects.get_object(
        req.principal, p["org"], p["bucket"], p["key"], byte_range=byte_range
    )
    record = read.view.record
    headers = [
        ("Content-Length", str(read.length)),
        ("ETag", record.etag),
        ("Last-Modified", format_datetime(record.modified_at, usegmt=True)),
        ("Accept-Ranges", "bytes"),
        ("X-Checksum-Sha256", record.sha256),
    ]
    status = 200
    if byte_range is not None:
        status = 206
        headers.append(("Content-Range", f"bytes {read.start}-{read.stop - 1}/{record.size}"))
    return Reply(status, stream=read.body, content_type=record.content_type, headers=headers)


def head_object(req: Request) -> Reply:
    """``HEAD /objects/{org}/{bucket}/{key}``: the headers of a GET, without a body."""
    p = req.params
    view = req.services.objects.head_object(req.principal, p["org"], p["bucket"], p["key"])
    record = view.record
    return Reply(
        200,
        stream=iter(()),
        content_type=record.content_type,
        headers=[
            ("Content-Length", str(record.size)),
            ("ETag", record.etag),
            ("Last-Modified", format_datetime(record.modified_at, usegmt=True)),
            ("Accept-Ranges", "bytes"),
            ("X-Checksum-Sha256", record.sha256),
            ("X-Storage-State", view.state),
        ],
    )


def delete_object(req: Request) -> Reply:
    """``DELETE /objects/{org}/{bucket}/{key}``: remove an object (no error if absent)."""
    p = req.params
    req.services.objects.delete_object(req.principal, p["org"], p["bucket"], p["key"])
    return Reply(204)


def object_metadata(req: Request) -> Reply:
    """``GET /metadata/{org}/{bucket}/{key}``: state, class, region, compression and
    encryption of one object."""
    p = req.params
    return Reply(200, _info(req, p["org"], p["bucket"], p["key"]))


def copy_object(req: Request) -> Reply:
    """``POST /objects/copy``: copy an object (no bytes move within one org)."""
    b = req.body
    dest = b["destination"]
    dst_org = dest.get("org") or b["org"]
    record = req.services.objects.copy_object(
        req.principal,
        b["org"],
        b["bucket"],
        b["key"],
        dest["bucket"],
        dest["key"],
        dst_org_name=dst_org,
        storage_class=b.get("storage_class"),
    )
    return Reply(201, _info(req, dst_org, dest["bucket"], record.key))


def move_object(req: Request) -> Reply:
    """``POST /objects/move``: rename an object or a folder within one org."""
    b = req.body
    dest = b["destination"]
    overwrite = b.get("overwrite", True)
    objects = req.services.objects
    if ("key" in b) == ("prefix" in b):
        raise ValidationError("body.key", "name either key (one object) or prefix (a folder)")
    if "key" in b:
        if "key" not in dest:
            raise ValidationError("body.destination.key", "is required to move one object")
        record = objects.move_object(
            req.principal, b["org"], b["bucket"], b["key"], dest["bucket"], dest["key"],
            overwrite=overwrite,
        )
        return Reply(200, {"moved": 1, "object": _info(req, b["org"], dest["bucket"], record.key)})
    if "prefix" not in dest:
        raise ValidationError("body.destination.prefix", "is required to move a folder")
    moved = objects.move_prefix(
        req.principal, b["org"], b["bucket"], b["prefix"], dest["bucket"], dest["prefix"],
        overwrite=overwrite,
    )
    return Reply(200, {"moved": moved, "object": None})


# -- storage modes -----------------------------------------------------------------------------


def storage_mode(req: Request) -> Reply:
    """``POST /objects/storage-mode``: ``archive`` now (what ``coolstorage tier archive``
    does, for one object or a folder), ``pin`` hot or ``unpin`` (keep-hot rules in the
    bucket's tiering policy)."""
    from admin.storage_mode import archive_now, pin

    b = req.body
    if ("key" in b) == ("prefix" in b):
        raise ValidationError("body.key", "name either key (one object) or prefix (a folder)")
    kind = "object" if "key" in b else "prefix"
    target: str = b["key"] if kind == "object" else b["prefix"]
    services = req.services
    org = services.org(req.principal, b["org"], Action.ARCHIVE, b["bucket"])
    bucket = services.bucket(org, b["bucket"])
    if kind == "object":
        services.objects.head_object(req.principal, org.name, bucket.name, target)
    result: dict[str, Any] = {
        "mode": b["mode"], "org": org.name, "bucket": bucket.name, "target": target, "kind": kind,
        "archived_objects": 0, "failures": 0,
    }
    if b["mode"] == "archive":
        report, keep_hot = archive_now(services.gateway, req.principal, org, bucket, target, kind)
        result.update(
            archived_objects=report.archived_objects,
            failures=report.failures,
            keep_hot=keep_hot,
            detail=str(report),
        )
    else:
        keep_hot, detail = pin(
            services.gateway, req.principal, org, bucket, target, kind, on=b["mode"] == "pin"
        )
        result.update(keep_hot=keep_hot, detail=detail)
    return Reply(200, result)


# -- sealed segments ---------------------------------------------------------------------------


def sealed_manifest(req: Request) -> Reply:
    """``GET /sealed/{org}/{bucket}/{key}``: the object's sealed segments, in order, with
    what is needed to check them; each is fetched from its ``url``. This is how a vault
    object is read: the gateway hands out ciphertext only, and ``coolstorage client get
    --identity`` decrypts it locally."""
    p = req.params
    view = req.services.objects.head_object(req.principal, p["org"], p["bucket"], p["key"])
    if not view.readable:
        raise ObjectArchived(p["key"], view.storage_class, state=view.state)
    org = req.services.catalog.get_org(p["org"])
    bucket = req.services.catalog.get_bucket(org.id, p["bucket"])
    record = view.record
    base = object_url(org.name, bucket.name, record.key, kind="sealed-segments")
    segments = [
        {
            "part_number": s.part_number,
            "sealed_size": s.sealed_size,
            "plain_size": s.plain_size,
            "sha256": s.sha256,
            "md5": s.md5,
            "header_mac": base64.b64encode(s.header_mac).decode(),
            "url": f"{base}?part={s.part_number}",
        }
        for s in record.segments
    ]
    recipients = sorted({r for s in record.segments for r in s.recipient.split(",") if r})
    return Reply(
        200,
        {
            "org": org.name,
            "bucket": bucket.name,
            "key": record.key,
            "size": record.size,
            "etag": record.etag,
            "sha256": record.sha256,
            "content_type": record.content_type,
            "vault": bucket.vault_recipient is not None,
            "recipients": recipients,
            "segments": segments,
        },
    )


def sealed_segment(req: Request) -> Reply:
    """``GET /sealed-segments/{org}/{bucket}/{key}?part=N``: one sealed segment's bytes."""
    p = req.params
    segment, chunks = req.services.objects.read_sealed_segment(
        req.principal, p["org"], p["bucket"], p["key"], p["part"]
    )
    return Reply(
        200,
        stream=chunks,
        content_type="application/octet-stream",
        headers=[
            ("Content-Length", str(segment.sealed_size)),
            ("X-Segment-Plain-Size", str(segment.plain_size)),
            ("X-Segment-Sha256", segment.sha256),
        ],
    )

