"""Names and addressing on the S3 wire: buckets, keys, Host-based routing, Range, limits.

Decisions, where S3 leaves room:

- **Bucket names** follow S3's current general-purpose rules (3-63 characters of lowercase
  letters, digits, '.' and '-'; a letter or digit at both ends; no '..'; not an IPv4
  address; none of the reserved prefixes and suffixes). The legacy us-east-1 names with
  capitals or underscores are refused. Failures are ``InvalidBucketName``.
- **Keys** are the percent-decoded path after the bucket, decoded as strict UTF-8 (invalid
  UTF-8 is ``InvalidURI``, as S3 cannot parse it either), at most 1,024 bytes of UTF-8
  (``KeyTooLongError``). Every character S3 allows is allowed, control characters included
  (the catalog stores them; listings carry them safely with ``encoding-type=url``), except
  **U+0000**: a NUL cannot be written in XML at all, not even as a character reference, so
  such an object could never be listed or deleted in a batch, and too many tools treat NUL
  as a terminator. It is refused with ``InvalidArgument``. So are keys with a ``.`` or
  ``..`` path segment (``a/../b``, also when sent as ``%2e%2e``): S3 stores them, but the same
  keys are paths on the WebDAV side and in exports, where such a segment means "this folder"
  or "the parent" and could never be named (or would name something else). Backup tools never
  write them.
- **Range**: as S3 does (and moto models), a Range header that is not one well-formed
  ``bytes=`` range is ignored and the whole object is served: several ranges, another unit,
  garbage, or ``first > last``. A well-formed range that starts past the end (or a suffix of
  zero bytes) is unsatisfiable: :meth:`gateway.objects.RangeSpec.resolve` answers
  ``InvalidRange`` (416).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from gateway.objects import RangeSpec
from protocols.s3.errors import (
    InvalidArgument,
    InvalidBucketName,
    InvalidURI,
    KeyTooLongError,
    MetadataTooLarge,
    RequestHeaderSectionTooLarge,
)

MAX_KEY_BYTES: Final = 1024
#: S3: "the PUT request header is limited to 8 KB ... the user-defined metadata to 2 KB".
MAX_HEADER_SECTION: Final = 8 << 10
MAX_USER_METADATA: Final = 2 << 10

_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")
_IPV4_RE = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}\Z")
_RESERVED_PREFIXES: Final = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES: Final = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_RANGE_RE = re.compile(r"[ \t]*bytes[ \t]*=[ \t]*([0-9]{0,19})[ \t]*-[ \t]*([0-9]{0,19})[ \t]*\Z", re.IGNORECASE)


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid bucket name, or None if it is."""
    if not 3 <= len(name) <= 63:
        return "Bucket names must be between 3 and 63 characters long."
    if not _BUCKET_RE.match(name):
        return (
            "Bucket names can consist only of lowercase letters, numbers, dots and hyphens, and"
            " must begin and end with a letter or number."
        )
    if ".." in name:
        return "Bucket names must not contain two adjacent periods."
    if _IPV4_RE.match(name):
        return "Bucket names must not be formatted as an IP address."
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "The bucket name uses a reserved prefix or suffix."
    return None


def validate_bucket_name(name: str) -> str:
    """``name`` if valid, else ``InvalidBucketName`` naming the rule broken."""
    problem = bucket_name_problem(name)
    if problem is not None:
        raise InvalidBucketName(problem, BucketName=name[:255])
    return name


def validate_key(key: str) -> str:
    """``key`` if it is a key this gateway stores (see the module doc), else the S3 error."""
    if not key:
        raise InvalidArgument("An object key cannot be empty.", ArgumentName="key")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidURI("The object key is not valid UTF-8.") from exc
    if size > MAX_KEY_BYTES:
        raise KeyTooLongError(Size=size, MaxSizeAllowed=MAX_KEY_BYTES)
    if "\x00" in key:
        raise InvalidArgument(
            "Object keys containing U+0000 (NUL) are not supported.", ArgumentName="key"
        )
    if any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidArgument(
            "Object keys with a '.' or '..' path segment are not supported.", ArgumentName="key"
        )
    return key


def decode_path_part(raw: str) -> str:
    """Percent-decode part of a request path ('+' stays '+') into strict UTF-8 text."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidURI() from exc


@dataclass(frozen=True)
class Address:
    """What a request path names: a bucket (or none, the service) and a key (or none)."""

    bucket: str | None
    key: str | None
    virtual_host: bool


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, never a bucket
        return host
    host = host.rsplit(":", 1)[0] if ":" in host else host
    return host.rstrip(".")


def parse_address(raw_path: str, host: str | None, base_domains: Sequence[str] = ()) -> Address:
    """Split a request into bucket and key, virtual-hosted or path style.

    ``raw_path`` is the path as sent (percent-encoded, no query); ``host`` the Host header;
    ``base_domains`` the configured S3 endpoints' names (``"s3.localhost"``): a Host of
    ``<bucket>.<base>`` is virtual-hosted, anything else (an IP, the base itself, an unknown
    name) is path style. The bucket name is validated; the key is decoded and validated.
    """
    bucket: str | None = None
    virtual = False
    if host:
        name = _host_name(host)
        for base in base_domains:
            base = base.strip().lower().rstrip(".")
            if base and name.endswith("." + base) and len(name) > len(base) + 1:
                bucket = name[: -len(base) - 1]
                virtual = True
                break
    path = raw_path or "/"
    if not path.startswith("/"):
        raise InvalidURI()
    rest = path[1:]
    if not virtual:
        if not rest:
            return Address(None, None, False)
        raw_bucket, slash, rest = rest.partition("/")
        bucket = decode_path_part(raw_bucket)
        if not slash:
            rest = ""
    assert bucket is not None
    validate_bucket_name(bucket)
    if not rest:
        return Address(bucket, None, virtual)
    return Address(bucket, validate_key(decode_path_part(rest)), virtual)


def parse_range(header: str | None) -> RangeSpec | None:
    """The one byte range a Range header asks for, or None to serve the whole object.

    ``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` are ranges; anything else (several ranges,
    another unit, malformed, ``a > b``) is ignored as S3 does. An unsatisfiable range is left
    to :meth:`RangeSpec.resolve`, which knows the size.
    """
    if header is None:
        return None
    m = _RANGE_RE.match(header)
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:
        return RangeSpec(None, int(last))
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None
    return RangeSpec(start, end)


def check_header_sizes(
    headers: Mapping[str, str],
    *,
    max_section: int = MAX_HEADER_SECTION,
    max_metadata: int = MAX_USER_METADATA,
) -> None:
    """S3's header limits for writes: ``RequestHeaderSectionTooLarge``, ``MetadataTooLarge``.

    The section is measured as ``name: value\\r\\n`` lines; user metadata as the UTF-8 bytes
    of each ``x-amz-meta-*`` name (without the prefix) and value, as S3 counts it.
    """
    section = 0
    metadata = 0
    for name, value in headers.items():
        n = len(name.encode("utf-8", "replace"))
        v = len(value.encode("utf-8", "replace"))
        section += n + v + 4
        if name.lower().startswith("x-amz-meta-"):
            metadata += n - len("x-amz-meta-") + v
    if section > max_section:
        raise RequestHeaderSectionTooLarge(MaxSizeAllowed=max_section)
    if metadata > max_metadata:
        raise MetadataTooLarge(Size=metadata, MaxSizeAllowed=max_metadata)
