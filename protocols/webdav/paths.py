"""The WebDAV namespace and how it maps onto orgs, buckets and keys.

::

    /                       the orgs the user belongs to
    /ORG/                   the org's buckets, as folders
    /ORG/BUCKET/            the bucket's top level
    /ORG/BUCKET/a/b/        the folder "a/b/": keys under the prefix "a/b/"
    /ORG/BUCKET/a/b/c.txt   the object "a/b/c.txt"

Folders are S3's: the common prefixes of a listing with delimiter "/", plus **folder
markers** so that an empty folder persists. By default a marker is what the S3 console
writes, a zero-byte object whose key is the folder's prefix ("a/b/"); S3 clients list the
folder too. With ``webdav.folder_marker = ".keep"`` it is "a/b/.keep" instead, hidden from
WebDAV listings.

Names are Unicode, percent-encoded on the wire (the server decodes ``%23``, ``%25``,
``%2B``...; "+" is a plus sign in a path, never a space). Keys are stored exactly as the
client sent them (NFC from Windows and Linux, NFD from older macOS clients). A lookup that
finds nothing under the name as sent tries the name's other normalization form (NFC for
NFD and the reverse), so a file written by one kind of client opens from every kind and a
PUT overwrites it instead of creating a look-alike twin. Keys that WebDAV cannot name
(an empty path segment as in "a//b", or a segment "." or "..") are left out of
listings; S3 still reaches them.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

#: Content type of folder markers, as the S3 console writes them.
FOLDER_CONTENT_TYPE = "application/x-directory"


@dataclass(frozen=True)
class DavPath:
    """A parsed request path. ``org``/``bucket`` are None above that level; ``key`` is the
    rest without a trailing slash ("" at a bucket's top); ``folder`` is True when the
    path ended with "/"."""

    org: str | None
    bucket: str | None
    key: str
    folder: bool

    @classmethod
    def parse(cls, path: str) -> DavPath:
        """Parse a normalized wsgidav path (``/org/bucket/a/b``)."""
        parts = [p for p in path.split("/") if p]
        folder = path.endswith("/") or len(parts) < 3
        org = parts[0] if parts else None
        bucket = parts[1] if len(parts) > 1 else None
        return cls(org, bucket, "/".join(parts[2:]), folder)

    @property
    def depth(self) -> int:
        """0 for the root, 1 for an org, 2 for a bucket, 3 and more inside a bucket."""
        if self.org is None:
            return 0
        if self.bucket is None:
            return 1
        return 2 if not self.key else 3


def dav_path(org: str | None = None, bucket: str | None = None, key: str = "") -> str:
    """The wsgidav path of an org, a bucket or a key (folders end with "/")."""
    if org is None:
        return "/"
    if bucket is None:
        return f"/{org}/"
    return f"/{org}/{bucket}/{key}"


def name_variants(name: str) -> list[str]:
    """``name`` first, then its other Unicode normalization forms that differ from it."""
    variants = [name]
    if name.isascii():
        return variants
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, name)
        if other not in variants:
            variants.append(other)
    return variants


def usable_name(name: str) -> bool:
    """Whether a listing entry can be a WebDAV name (see the module docstring)."""
    return bool(name) and name not in (".", "..") and "//" not in name


def marker_key(prefix: str, marker: str) -> str:
    """The key of the folder marker of ``prefix`` ("a/b/"), for a ``webdav.folder_marker``
    setting of ``marker`` ("" for the S3 console's convention)."""
    return prefix + marker
