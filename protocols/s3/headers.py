"""Request and response headers of S3 objects: metadata, dates, conditions, SSE-C, ACLs.

Pure functions over header mappings with lowercase names; no I/O and no crypto (an SSE-C
key is decoded and its MD5 checked here, and handed to the ObjectService as bytes).

Conditional requests follow S3 (and RFC 7232's precedence): ``If-Match`` decides alone
when present, else ``If-Unmodified-Since``; then ``If-None-Match`` decides alone when
present, else ``If-Modified-Since``. Reads answer 304 for the "none match"/"modified since"
failures and 412 for the others; the copy-source variants answer 412 for all of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from protocols.s3.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidEncryptionAlgorithmError,
    InvalidRequest,
    InvalidStorageClass,
    NotModified,
    PreconditionFailed,
)
from protocols.s3.errors import NotImplemented as S3NotImplemented
from tiering.backends.base import STORAGE_CLASSES

META_PREFIX = "x-amz-meta-"
#: Headers stored with an object and sent back on GET/HEAD, by lowercase name.
STORED_HEADERS: dict[str, str] = {
    "cache-control": "Cache-Control",
    "content-disposition": "Content-Disposition",
    "content-encoding": "Content-Encoding",
    "content-language": "Content-Language",
    "expires": "Expires",
    "x-amz-website-redirect-location": "x-amz-website-redirect-location",
}
#: GET query parameters that override response headers (``response-content-type``...).
RESPONSE_OVERRIDES: dict[str, str] = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
#: Canned ACLs accepted (everything here is private to its org); public ones are refused.
PRIVATE_ACLS = frozenset({"private", "bucket-owner-full-control", "bucket-owner-read"})
PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read", "aws-exec-read", "log-delivery-write"})
SSE_C = "x-amz-server-side-encryption-customer-"
COPY_SSE_C = "x-amz-copy-source-server-side-encryption-customer-"


# -- text on the wire ----------------------------------------------------------------------


def wire(value: str) -> str:
    """A header value WSGI can carry: UTF-8 bytes in latin-1 clothing."""
    try:
        value.encode("latin-1")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8").decode("latin-1")


def unwire(value: str) -> str:
    """The text of a header value received through WSGI (latin-1 decoded bytes)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def http_date(t: datetime) -> str:
    """RFC 7231 date (``Wed, 21 Oct 2015 07:28:00 GMT``)."""
    return format_datetime(t.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP date, or None if absent or malformed (S3 ignores malformed conditions)."""
    if not value:
        return None
    try:
        t = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if t is None:
        return None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


# -- metadata ------------------------------------------------------------------------------


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """``x-amz-meta-*`` headers as ``name -> value`` (names lowercase, without the prefix)."""
    return {
        name[len(META_PREFIX) :]: unwire(value).strip()
        for name, value in headers.items()
        if name.startswith(META_PREFIX) and len(name) > len(META_PREFIX)
    }


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The standard headers kept with the object (Content-Encoding without aws-chunked)."""
    from protocols.s3.chunked import strip_aws_chunked

    kept: dict[str, str] = {}
    for name, canonical in STORED_HEADERS.items():
        value = headers.get(name)
        if name == "content-encoding":
            value = strip_aws_chunked(value)
        if value:
            kept[canonical] = unwire(value)
    return kept


def metadata_headers(metadata: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(META_PREFIX + name, wire(value)) for name, value in sorted(metadata.items())]


def storage_class(headers: Mapping[str, str], default: str = "STANDARD") -> str:
    """The ``x-amz-storage-class`` asked for; ``InvalidStorageClass`` if unknown here."""
    value = headers.get("x-amz-storage-class")
    if value is None or not value.strip():
        return default
    name = value.strip().upper()
    if name not in STORAGE_CLASSES:
        raise InvalidStorageClass(StorageClassRequested=value.strip()[:64])
    return name


def check_canned_acl(headers: Mapping[str, str]) -> None:
    """Accept the private canned ACLs; refuse public ones (nothing here is ever public)."""
    acl = headers.get("x-amz-acl")
    if acl is not None and acl.strip():
        value = acl.strip().lower()
        if value in PUBLIC_ACLS:
            raise AccessDenied("Public ACLs are not supported: every object is private to its organisation.")
        if value not in PRIVATE_ACLS:
            raise InvalidArgument(
                "The canned ACL is not valid.", ArgumentName="x-amz-acl", ArgumentValue=acl[:64]
            )
    grants = [n for n in headers if n.startswith("x-amz-grant-")]
    if grants:
        raise S3NotImplemented("ACL grants are not supported; objects are private to their organisation.")


def check_server_side_encryption(headers: Mapping[str, str]) -> str | None:
    """``x-amz-server-side-encryption``: AES256 is what every object gets anyway (it is
    sealed); KMS is not offered. Returns the value to echo."""
    value = headers.get("x-amz-server-side-encryption")
    if value is None or not value.strip():
        return None
    if value.strip() == "AES256":
        return "AES256"
    if value.strip().startswith("aws:kms"):
        raise S3NotImplemented("SSE-KMS is not supported; every object is sealed with its organisation's key.")
    raise InvalidArgument(
        "The encryption method specified is not supported",
        ArgumentName="x-amz-server-side-encryption",
        ArgumentValue=value[:64],
    )


# -- SSE-C ---------------------------------------------------------------------------------


def customer_key(
    headers: Mapping[str, str], *, secure: bool, prefix: str = SSE_C
) -> bytes | None:
    """The 32-byte SSE-C key of a request (None without SSE-C headers).

    Refused over plain HTTP (``InvalidRequest``, as S3 does); the algorithm must be AES256,
    the key 32 bytes of base64 and its MD5 must match ``...-key-MD5``.
    """
    algorithm = headers.get(prefix + "algorithm")
    key = headers.get(prefix + "key")
    key_md5 = headers.get(prefix + "key-md5")
    if algorithm is None and key is None and key_md5 is None:
        return None
    if not secure:
        raise InvalidRequest(
            "Requests specifying Server Side Encryption with Customer provided keys must be"
            " made over a secure connection."
        )
    if algorithm is None or key is None or key_md5 is None:
        raise InvalidArgument(
            "Requests specifying Server Side Encryption with Customer provided keys must"
            " provide the algorithm, the key and the key's MD5.",
            ArgumentName=prefix + ("algorithm" if algorithm is None else "key" if key is None else "key-MD5"),
        )
    if algorithm.strip() != "AES256":
        raise InvalidEncryptionAlgorithmError(
            "The encryption request you specified is not valid. The valid value is AES256.",
            ArgumentName=prefix + "algorithm",
            ArgumentValue=algorithm[:64],
        )
    raw = _b64(key)
    if raw is None or len(raw) != 32:
        raise InvalidArgument(
            "The secret key was invalid for the specified algorithm.",
            ArgumentName=prefix + "key",
        )
    digest = _b64(key_md5)
    if digest is None or not hmac.compare_digest(hashlib.md5(raw).digest(), digest):
        raise InvalidArgument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            ArgumentName=prefix + "key-MD5",
        )
    return raw


def customer_key_headers(key: bytes | None) -> list[tuple[str, str]]:
    """The headers S3 echoes when a request used SSE-C (the algorithm and key MD5)."""
    if key is None:
        return []
    md5 = base64.b64encode(hashlib.md5(key).digest()).decode("ascii")
    return [
        (SSE_C + "algorithm", "AES256"),
        (SSE_C + "key-MD5", md5),
    ]


def _b64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


# -- conditions ----------------------------------------------------------------------------


def _etags(value: str) -> list[str]:
    out = []
    for item in value.split(","):
        tag = item.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        out.append(tag.strip('"'))
    return [t for t in out if t]


def _matches(value: str, etag: str) -> bool:
    tags = _etags(value)
    return "*" in tags or etag.strip('"') in tags


def _after(modified: datetime, since: datetime) -> bool:
    # HTTP dates have whole seconds.
    return modified.replace(microsecond=0) > since


def check_read_conditions(
    headers: Mapping[str, str], etag: str, last_modified: datetime, *, prefix: str = "if-"
) -> None:
    """Evaluate the conditional headers of a GET/HEAD (``prefix`` ``if-``) or of a copy
    source (``x-amz-copy-source-if-``): ``PreconditionFailed`` (412) or ``NotModified``
    (304; copies answer 412 instead)."""
    copy = prefix != "if-"
    if_match = headers.get(prefix + "match")
    if_unmodified = parse_http_date(headers.get(prefix + "unmodified-since"))
    if_none_match = headers.get(prefix + "none-match")
    if_modified = parse_http_date(headers.get(prefix + "modified-since"))
    if if_match is not None:
        if not _matches(if_match, etag):
            raise PreconditionFailed(Condition=_name(prefix, "If-Match"))
    elif if_unmodified is not None and _after(last_modified, if_unmodified):
        raise PreconditionFailed(Condition=_name(prefix, "If-Unmodified-Since"))
    if if_none_match is not None:
        if _matches(if_none_match, etag):
            if copy:
                raise PreconditionFailed(Condition=_name(prefix, "If-None-Match"))
            raise NotModified(headers={"ETag": '"' + etag.strip('"') + '"'})
    elif if_modified is not None and not _after(last_modified, if_modified):
        if copy:
            raise PreconditionFailed(Condition=_name(prefix, "If-Modified-Since"))
        raise NotModified(headers={"ETag": '"' + etag.strip('"') + '"'})


def _name(prefix: str, condition: str) -> str:
    return condition if prefix == "if-" else "x-amz-copy-source-" + condition


def write_conditions(headers: Mapping[str, str]) -> tuple[str | None, bool]:
    """Conditional writes: ``(If-Match etag, If-None-Match: *)``. Any other
    ``If-None-Match`` value is ``NotImplemented``, as in S3."""
    if_match = headers.get("if-match")
    if_none = headers.get("if-none-match")
    none_match = False
    if if_none is not None:
        if if_none.strip() != "*":
            raise S3NotImplemented("If-None-Match on writes supports only '*'.", Header="If-None-Match")
        none_match = True
    match = if_match.strip() if if_match is not None and if_match.strip() else None
    if match is not None and match != "*":
        tags = _etags(match)
        if len(tags) != 1:
            raise S3NotImplemented("If-Match on writes takes one ETag.", Header="If-Match")
        match = tags[0]
    return match, none_match
