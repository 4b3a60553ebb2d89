"""S3 XML: safe parsing of request bodies and rendering of responses.

Parsing uses the stdlib's expat directly, with every door to entity tricks shut: a DOCTYPE
(and so any entity or notation declaration) is refused outright, parameter entities are never
parsed, external entities are never fetched, and an undefined entity reference is a parse
error. So billion-laughs and XXE bodies are ``MalformedXML`` before any expansion happens.
Bodies are size-limited (``MaxMessageLengthExceeded``) and nesting-limited, and each request
type has a small typed parser that validates the shape S3 expects (``MalformedXML``).

Rendering is a tiny builder (:func:`E`, :func:`render`) that escapes every text and writes
the S3 namespace ``http://s3.amazonaws.com/doc/2006-03-01/`` on the root, plus one function
per response document.

Keys and control characters: XML 1.0 can carry TAB, LF and CR but no other C0 control, not
even as a character reference. With ``encoding-type=url`` (which botocore and the AWS CLI
always ask for) keys and prefixes are percent-encoded, so every key lists safely. Without it
we do what S3 documents (it returns such keys as entity references): the control is written
as ``&#xN;``, which strict XML 1.0 parsers reject - the same failure a client gets from S3,
and the reason S3 tells clients to ask for ``encoding-type=url``. CR and LF are always
written as references so they survive XML line-end normalisation.
"""

from __future__ import annotations

import xml.parsers.expat as expat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, Union
from urllib.parse import quote

from protocols.s3.errors import (
    InvalidPartOrder,
    MalformedXML,
    MaxMessageLengthExceeded,
    MissingRequestBodyError,
)
from protocols.s3.errors import (
    NotImplemented as S3NotImplemented,
)

if TYPE_CHECKING:
    from protocols.s3.chunked import Readable

S3_NS: Final = "http://s3.amazonaws.com/doc/2006-03-01/"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"

#: Default body limit for small configuration documents.
MAX_XML_BYTES: Final = 1 << 20
#: CompleteMultipartUpload (up to 10,000 parts) and Delete (up to 1,000 keys of 1 KiB).
MAX_LARGE_XML_BYTES: Final = 4 << 20
MAX_DEPTH: Final = 32
MAX_DELETE_OBJECTS: Final = 1000
MAX_PARTS: Final = 10000
RESTORE_TIERS: Final = ("Standard", "Bulk", "Expedited")


# --- parsing --------------------------------------------------------------------------------


@dataclass
class Element:
    """A parsed element: local name (namespace dropped), text, children in order."""

    name: str
    children: list[Element] = field(default_factory=list)
    _text: list[str] = field(default_factory=list, repr=False)

    @property
    def text(self) -> str:
        """The element's own character data, exactly as sent (not stripped)."""
        return "".join(self._text)

    def find(self, name: str) -> Element | None:
        for child in self.children:
            if child.name == name:
                return child
        return None

    def findall(self, name: str) -> list[Element]:
        return [c for c in self.children if c.name == name]

    def one(self, name: str) -> Element | None:
        """The single child ``name``; ``MalformedXML`` if it appears more than once."""
        found = self.findall(name)
        if len(found) > 1:
            raise MalformedXML(f"The element {name} appears more than once.")
        return found[0] if found else None


class _Refused(Exception):
    pass


def read_body(stream: Readable, limit: int = MAX_XML_BYTES) -> bytes:
    """Read a request body of at most ``limit`` bytes (``MaxMessageLengthExceeded`` beyond)."""
    parts = []
    total = 0
    while True:
        chunk = stream.read(min(1 << 16, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        if total > limit:
            raise MaxMessageLengthExceeded(MaxMessageLengthBytes=limit)
    return b"".join(parts)


def parse_xml(data: bytes, *, limit: int = MAX_XML_BYTES, root: str | None = None) -> Element:
    """Parse ``data`` safely into an :class:`Element` tree (see the module doc).

    ``root``, when given, is the required local name of the document element. Empty input is
    ``MissingRequestBodyError``; anything refused or malformed is ``MalformedXML``.
    """
    if len(data) > limit:
        raise MaxMessageLengthExceeded(MaxMessageLengthBytes=limit)
    if not data.strip():
        raise MissingRequestBodyError()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Element] = []
    top: list[Element] = []

    def refuse(*_args: object) -> None:
        raise _Refused

    def start(name: str, _attrs: object) -> None:
        if len(stack) >= MAX_DEPTH:
            raise _Refused
        el = Element(name.rsplit(" ", 1)[-1])
        if stack:
            stack[-1].children.append(el)
        else:
            top.append(el)
        stack.append(el)

    def end(_name: str) -> None:
        stack.pop()

    def chars(text: str) -> None:
        if stack:
            stack[-1]._text.append(text)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.NotationDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except (_Refused, expat.ExpatError, ValueError, RecursionError) as exc:
        raise MalformedXML() from exc
    if len(top) != 1:
        raise MalformedXML()
    doc = top[0]
    if root is not None and doc.name != root:
        raise MalformedXML(f"Expected a {root} document, not {doc.name}.")
    return doc


def _int(el: Element | None, name: str, *, low: int, high: int) -> int | None:
    if el is None:
        return None
    text = el.text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise MalformedXML(f"{name} must be an integer.")
    value = int(text)
    if not low <= value <= high:
        raise MalformedXML(f"{name} must be between {low} and {high}.")
    return value


def _bool(el: Element | None, name: str) -> bool:
    if el is None:
        return False
    text = el.text.strip().lower()
    if text not in ("true", "false"):
        raise MalformedXML(f"{name} must be true or false.")
    return text == "true"


def _strip_quotes(etag: str) -> str:
    return etag.strip().strip('"')


@dataclass(frozen=True)
class CompletedPart:
    """One ``<Part>`` of a CompleteMultipartUpload body."""

    part_number: int
    #: The ETag without its surrounding quotes.
    etag: str
    #: ``ChecksumCRC32``... elements as sent: algorithm (``CRC32``) -> base64 value.
    checksums: dict[str, str] = field(default_factory=dict)


def parse_complete_multipart_upload(data: bytes) -> list[CompletedPart]:
    """The parts of a CompleteMultipartUpload body, checked to be in ascending order.

    ``MalformedXML`` for a wrong shape or no parts; ``InvalidPartOrder`` when part numbers do
    not strictly increase.
    """
    doc = parse_xml(data, limit=MAX_LARGE_XML_BYTES, root="CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for el in doc.findall("Part"):
        number = _int(el.one("PartNumber"), "PartNumber", low=1, high=MAX_PARTS)
        etag_el = el.one("ETag")
        if number is None or etag_el is None:
            raise MalformedXML("Each Part needs a PartNumber and an ETag.")
        sums = {
            c.name[len("Checksum"):].upper(): c.text.strip()
            for c in el.children
            if c.name.startswith("Checksum") and c.name != "ChecksumType"
        }
        if parts and number <= parts[-1].part_number:
            raise InvalidPartOrder()
        parts.append(CompletedPart(number, _strip_quotes(etag_el.text), sums))
        if len(parts) > MAX_PARTS:
            raise MalformedXML()
    if not parts:
        raise MalformedXML("The CompleteMultipartUpload document names no parts.")
    return parts


@dataclass(frozen=True)
class ObjectIdentifier:
    key: str
    version_id: str | None = None


@dataclass(frozen=True)
class DeleteRequest:
    """A DeleteObjects body: the objects (at most 1,000) and the Quiet flag."""

    objects: list[ObjectIdentifier]
    quiet: bool


def parse_delete(data: bytes) -> DeleteRequest:
    """Parse a DeleteObjects body. Keys are returned exactly as sent (spaces included)."""
    doc = parse_xml(data, limit=MAX_LARGE_XML_BYTES, root="Delete")
    quiet = _bool(doc.one("Quiet"), "Quiet")
    objects: list[ObjectIdentifier] = []
    for el in doc.findall("Object"):
        key_el = el.one("Key")
        if key_el is None:
            raise MalformedXML("Each Object needs a Key.")
        version = el.one("VersionId")
        objects.append(ObjectIdentifier(key_el.text, version.text.strip() if version is not None else None))
        if len(objects) > MAX_DELETE_OBJECTS:
            raise MalformedXML(f"A Delete request names at most {MAX_DELETE_OBJECTS} objects.")
    if not objects:
        raise MalformedXML("The Delete document names no objects.")
    return DeleteRequest(objects, quiet)


@dataclass(frozen=True)
class RestoreRequest:
    """A RestoreObject body: days of the restored copy (None if absent) and the tier."""

    days: int | None
    tier: str = "Standard"


def parse_restore_request(data: bytes) -> RestoreRequest:
    """Parse a RestoreRequest body (``Days``, ``Tier`` or ``GlacierJobParameters/Tier``).

    A missing tier means Standard, as in S3. Select restores and output locations are
    ``NotImplemented``; an unknown tier or a bad Days is ``MalformedXML``.
    """
    doc = parse_xml(data, limit=64 << 10, root="RestoreRequest")
    kind = doc.one("Type")
    if kind is not None and kind.text.strip().upper() == "SELECT":
        raise S3NotImplemented("SELECT restores are not supported.")
    if doc.one("OutputLocation") is not None or doc.one("SelectParameters") is not None:
        raise S3NotImplemented("Restores to an output location are not supported.")
    days = _int(doc.one("Days"), "Days", low=1, high=2_147_483_647)
    tiers = []
    if (t := doc.one("Tier")) is not None:
        tiers.append(t.text.strip())
    params = doc.one("GlacierJobParameters")
    if params is not None and (t := params.one("Tier")) is not None:
        tiers.append(t.text.strip())
    if len(set(tiers)) > 1:
        raise MalformedXML("Tier and GlacierJobParameters/Tier disagree.")
    tier = tiers[0] if tiers else "Standard"
    if tier not in RESTORE_TIERS:
        raise MalformedXML(f"Tier must be one of {', '.join(RESTORE_TIERS)}.")
    return RestoreRequest(days, tier)


def parse_create_bucket_configuration(data: bytes) -> str | None:
    """The LocationConstraint of a CreateBucket body (None for an empty body or element)."""
    if not data.strip():
        return None
    doc = parse_xml(data, limit=64 << 10, root="CreateBucketConfiguration")
    el = doc.one("LocationConstraint")
    if el is None:
        return None
    return el.text.strip() or None


# --- rendering ------------------------------------------------------------------------------

Child = Union["Node", str, int, bool, datetime, None, Iterable["Node"]]


@dataclass(frozen=True)
class Node:
    """An element to render: name, attributes and children (text or nodes)."""

    name: str
    children: tuple[Child, ...]
    attrs: tuple[tuple[str, str], ...] = ()


def E(name: str, *children: Child, attrs: dict[str, str] | None = None) -> Node:
    """An element. Children: nodes, iterables of nodes, or one text value (str, int, bool,
    datetime); None children are left out."""
    return Node(name, children, tuple((attrs or {}).items()))


def escape(text: str) -> str:
    """Escape text for element content or attribute values (see the module doc)."""
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch == '"':
            out.append("&quot;")
        elif ch == "'":
            out.append("&apos;")
        elif (o < 0x20 and ch != "\t") or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
            out.append(f"&#x{o:X};")
        else:
            out.append(ch)
    return "".join(out)


def timestamp(t: datetime) -> str:
    """S3's XML timestamp: ``2009-10-12T17:50:30.000Z``."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _value(v: str | int | bool | datetime) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return timestamp(v)
    return escape(str(v))


def _write(node: Node, out: list[str]) -> None:
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in node.attrs)
    out.append(f"<{node.name}{attrs}>")
    for child in node.children:
        _write_child(child, out)
    out.append(f"</{node.name}>")


def _write_child(child: Child, out: list[str]) -> None:
    if child is None:
        return
    if isinstance(child, Node):
        _write(child, out)
    elif isinstance(child, (str, int, bool, datetime)):
        out.append(_value(child))
    else:
        for sub in child:
            _write_child(sub, out)


def render(root: Node, *, namespace: str | None = S3_NS) -> bytes:
    """The document ``root`` as UTF-8 bytes with an XML declaration and the S3 namespace."""
    if namespace is not None:
        root = Node(root.name, root.children, (("xmlns", namespace), *root.attrs))
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    _write(root, out)
    return "".join(out).encode("utf-8")


def url_encode(text: str) -> str:
    """``encoding-type=url``: percent-encode (UTF-8), keeping '/' and the unreserved set."""
    return quote(text, safe="/")


def _enc(text: str | None, url: bool) -> str | None:
    if text is None:
        return None
    return url_encode(text) if url else text


def quoted_etag(etag: str) -> str:
    """An ETag in its wire form, with exactly one pair of quotes."""
    return '"' + etag.strip().strip('"') + '"'


@dataclass(frozen=True)
class Owner:
    id: str
    display_name: str | None = None


def _owner(owner: Owner | None, name: str = "Owner") -> Node | None:
    if owner is None:
        return None
    return E(name, E("ID", owner.id), E("DisplayName", owner.display_name) if owner.display_name is not None else None)


def _checksum_nodes(checksums: dict[str, str] | None) -> list[Node]:
    # ``x-amz-checksum-crc32``/``CRC32`` -> <ChecksumCRC32>
    out = []
    for name, value in (checksums or {}).items():
        algo = name.lower().removeprefix("x-amz-checksum-").upper()
        out.append(E("Checksum" + algo, value))
    return out


@dataclass(frozen=True)
class BucketInfo:
    name: str
    creation_date: datetime
    region: str | None = None


def list_all_my_buckets(owner: Owner, buckets: Sequence[BucketInfo], *, prefix: str | None = None,
                        continuation_token: str | None = None) -> bytes:
    """ListAllMyBucketsResult."""
    return render(
        E(
            "ListAllMyBucketsResult",
            _owner(owner),
            E(
                "Buckets",
                [
                    E("Bucket", E("Name", b.name), E("CreationDate", b.creation_date),
                      E("BucketRegion", b.region) if b.region else None)
                    for b in buckets
                ],
            ),
            E("Prefix", prefix) if prefix is not None else None,
            E("ContinuationToken", continuation_token) if continuation_token else None,
        )
    )


@dataclass(frozen=True)
class ObjectInfo:
    """One ``<Contents>`` entry of a listing."""

    key: str
    last_modified: datetime
    etag: str
    size: int
    storage_class: str = "STANDARD"
    owner: Owner | None = None
    checksum_algorithm: str | None = None
    #: For cold objects: ``(is_restore_in_progress, restore_expiry_date)``.
    restore_status: tuple[bool, datetime | None] | None = None


def _contents(o: ObjectInfo, url: bool, *, with_owner: bool) -> Node:
    restore = None
    if o.restore_status is not None:
        ongoing, expiry = o.restore_status
        restore = E(
            "RestoreStatus",
            E("IsRestoreInProgress", ongoing),
            E("RestoreExpiryDate", expiry) if expiry is not None else None,
        )
    return E(
        "Contents",
        E("Key", _enc(o.key, url)),
        E("LastModified", o.last_modified),
        E("ETag", quoted_etag(o.etag)),
        E("ChecksumAlgorithm", o.checksum_algorithm) if o.checksum_algorithm else None,
        E("Size", o.size),
        _owner(o.owner) if with_owner else None,
        E("StorageClass", o.storage_class),
        restore,
    )


def _prefixes(common_prefixes: Sequence[str], url: bool) -> list[Node]:
    return [E("CommonPrefixes", E("Prefix", _enc(p, url))) for p in common_prefixes]


def _opt(name: str, value: str | int | None) -> Node | None:
    return E(name, value) if value is not None else None


def list_bucket_v1(
    *,
    bucket: str,
    prefix: str,
    marker: str,
    max_keys: int,
    is_truncated: bool,
    contents: Sequence[ObjectInfo],
    common_prefixes: Sequence[str] = (),
    delimiter: str | None = None,
    next_marker: str | None = None,
    url: bool = False,
) -> bytes:
    """ListBucketResult (ListObjects v1). ``url``: the client asked ``encoding-type=url``."""
    return render(
        E(
            "ListBucketResult",
            E("Name", bucket),
            E("Prefix", _enc(prefix, url)),
            E("Marker", _enc(marker, url)),
            _opt("NextMarker", _enc(next_marker, url)),
            E("MaxKeys", max_keys),
            _opt("Delimiter", _enc(delimiter, url)),
            E("IsTruncated", is_truncated),
            _opt("EncodingType", "url" if url else None),
            [_contents(o, url, with_owner=True) for o in contents],
            _prefixes(common_prefixes, url),
        )
    )


def list_bucket_v2(
    *,
    bucket: str,
    prefix: str,
    max_keys: int,
    is_truncated: bool,
    contents: Sequence[ObjectInfo],
    common_prefixes: Sequence[str] = (),
    delimiter: str | None = None,
    continuation_token: str | None = None,
    next_continuation_token: str | None = None,
    start_after: str | None = None,
    fetch_owner: bool = False,
    url: bool = False,
) -> bytes:
    """ListBucketResult (ListObjectsV2); KeyCount is computed."""
    return render(
        E(
            "ListBucketResult",
            E("Name", bucket),
            E("Prefix", _enc(prefix, url)),
            _opt("Delimiter", _enc(delimiter, url)),
            E("MaxKeys", max_keys),
            E("KeyCount", len(contents) + len(common_prefixes)),
            E("IsTruncated", is_truncated),
            _opt("EncodingType", "url" if url else None),
            _opt("ContinuationToken", continuation_token),
            _opt("NextContinuationToken", next_continuation_token),
            _opt("StartAfter", _enc(start_after, url)),
            [_contents(o, url, with_owner=fetch_owner) for o in contents],
            _prefixes(common_prefixes, url),
        )
    )


@dataclass(frozen=True)
class VersionInfo:
    """A ``<Version>`` of ListObjectVersions (``version_id`` "null" when unversioned)."""

    key: str
    version_id: str
    is_latest: bool
    last_modified: datetime
    etag: str
    size: int
    storage_class: str = "STANDARD"
    owner: Owner | None = None


@dataclass(frozen=True)
class DeleteMarkerInfo:
    key: str
    version_id: str
    is_latest: bool
    last_modified: datetime
    owner: Owner | None = None


def list_versions(
    *,
    bucket: str,
    prefix: str,
    key_marker: str,
    version_id_marker: str,
    max_keys: int,
    is_truncated: bool,
    entries: Sequence[VersionInfo | DeleteMarkerInfo],
    common_prefixes: Sequence[str] = (),
    delimiter: str | None = None,
    next_key_marker: str | None = None,
    next_version_id_marker: str | None = None,
    url: bool = False,
) -> bytes:
    """ListVersionsResult; ``entries`` in S3 order (by key, newest version first)."""
    nodes: list[Node] = []
    for v in entries:
        if isinstance(v, VersionInfo):
            nodes.append(
                E(
                    "Version",
                    E("Key", _enc(v.key, url)),
                    E("VersionId", v.version_id),
                    E("IsLatest", v.is_latest),
                    E("LastModified", v.last_modified),
                    E("ETag", quoted_etag(v.etag)),
                    E("Size", v.size),
                    _owner(v.owner),
                    E("StorageClass", v.storage_class),
                )
            )
        else:
            nodes.append(
                E(
                    "DeleteMarker",
                    E("Key", _enc(v.key, url)),
                    E("VersionId", v.version_id),
                    E("IsLatest", v.is_latest),
                    E("LastModified", v.last_modified),
                    _owner(v.owner),
                )
            )
    return render(
        E(
            "ListVersionsResult",
            E("Name", bucket),
            E("Prefix", _enc(prefix, url)),
            E("KeyMarker", _enc(key_marker, url)),
            E("VersionIdMarker", version_id_marker),
            _opt("NextKeyMarker", _enc(next_key_marker, url)),
            _opt("NextVersionIdMarker", next_version_id_marker),
            E("MaxKeys", max_keys),
            _opt("Delimiter", _enc(delimiter, url)),
            E("IsTruncated", is_truncated),
            _opt("EncodingType", "url" if url else None),
            nodes,
            _prefixes(common_prefixes, url),
        )
    )


def copy_object_result(etag: str, last_modified: datetime, *, checksums: dict[str, str] | None = None,
                       part: bool = False) -> bytes:
    """CopyObjectResult (or CopyPartResult with ``part``)."""
    return render(
        E(
            "CopyPartResult" if part else "CopyObjectResult",
            E("LastModified", last_modified),
            E("ETag", quoted_etag(etag)),
            _checksum_nodes(checksums),
        )
    )


def initiate_multipart_upload_result(bucket: str, key: str, upload_id: str) -> bytes:
    """InitiateMultipartUploadResult."""
    return render(
        E("InitiateMultipartUploadResult", E("Bucket", bucket), E("Key", key), E("UploadId", upload_id))
    )


def complete_multipart_upload_result(
    location: str, bucket: str, key: str, etag: str, *, checksums: dict[str, str] | None = None
) -> bytes:
    """CompleteMultipartUploadResult."""
    return render(
        E(
            "CompleteMultipartUploadResult",
            E("Location", location),
            E("Bucket", bucket),
            E("Key", key),
            E("ETag", quoted_etag(etag)),
            _checksum_nodes(checksums),
        )
    )


@dataclass(frozen=True)
class PartInfo:
    part_number: int
    last_modified: datetime
    etag: str
    size: int
    checksums: dict[str, str] = field(default_factory=dict)


def list_parts_result(
    *,
    bucket: str,
    key: str,
    upload_id: str,
    part_number_marker: int,
    max_parts: int,
    is_truncated: bool,
    parts: Sequence[PartInfo],
    next_part_number_marker: int | None = None,
    owner: Owner | None = None,
    storage_class: str = "STANDARD",
    checksum_algorithm: str | None = None,
) -> bytes:
    """ListPartsResult (the owner is also the initiator)."""
    return render(
        E(
            "ListPartsResult",
            E("Bucket", bucket),
            E("Key", key),
            E("UploadId", upload_id),
            E("PartNumberMarker", part_number_marker),
            _opt("NextPartNumberMarker", next_part_number_marker),
            E("MaxParts", max_parts),
            E("IsTruncated", is_truncated),
            _owner(owner, "Initiator"),
            _owner(owner),
            E("StorageClass", storage_class),
            _opt("ChecksumAlgorithm", checksum_algorithm),
            [
                E(
                    "Part",
                    E("PartNumber", p.part_number),
                    E("LastModified", p.last_modified),
                    E("ETag", quoted_etag(p.etag)),
                    E("Size", p.size),
                    _checksum_nodes(p.checksums),
                )
                for p in parts
            ],
        )
    )


@dataclass(frozen=True)
class UploadInfo:
    key: str
    upload_id: str
    initiated: datetime
    storage_class: str = "STANDARD"
    owner: Owner | None = None
    checksum_algorithm: str | None = None


def list_multipart_uploads_result(
    *,
    bucket: str,
    key_marker: str,
    upload_id_marker: str,
    max_uploads: int,
    is_truncated: bool,
    uploads: Sequence[UploadInfo],
    prefix: str = "",
    delimiter: str | None = None,
    next_key_marker: str | None = None,
    next_upload_id_marker: str | None = None,
    common_prefixes: Sequence[str] = (),
    url: bool = False,
) -> bytes:
    """ListMultipartUploadsResult."""
    return render(
        E(
            "ListMultipartUploadsResult",
            E("Bucket", bucket),
            E("KeyMarker", _enc(key_marker, url)),
            E("UploadIdMarker", upload_id_marker),
            _opt("NextKeyMarker", _enc(next_key_marker, url)),
            _opt("NextUploadIdMarker", next_upload_id_marker),
            E("Prefix", _enc(prefix, url)),
            _opt("Delimiter", _enc(delimiter, url)),
            E("MaxUploads", max_uploads),
            E("IsTruncated", is_truncated),
            _opt("EncodingType", "url" if url else None),
            [
                E(
                    "Upload",
                    E("Key", _enc(u.key, url)),
                    E("UploadId", u.upload_id),
                    _owner(u.owner, "Initiator"),
                    _owner(u.owner),
                    E("StorageClass", u.storage_class),
                    E("Initiated", u.initiated),
                    _opt("ChecksumAlgorithm", u.checksum_algorithm),
                )
                for u in uploads
            ],
            _prefixes(common_prefixes, url),
        )
    )


@dataclass(frozen=True)
class Deleted:
    key: str
    version_id: str | None = None
    delete_marker: bool | None = None
    delete_marker_version_id: str | None = None


@dataclass(frozen=True)
class DeleteFailure:
    key: str
    code: str
    message: str
    version_id: str | None = None


def delete_result(deleted: Sequence[Deleted], errors: Sequence[DeleteFailure] = (), *,
                  quiet: bool = False) -> bytes:
    """DeleteResult; in quiet mode only the errors are listed, as S3 does."""
    return render(
        E(
            "DeleteResult",
            None if quiet else [
                E(
                    "Deleted",
                    E("Key", d.key),
                    _opt("VersionId", d.version_id),
                    E("DeleteMarker", d.delete_marker) if d.delete_marker is not None else None,
                    _opt("DeleteMarkerVersionId", d.delete_marker_version_id),
                )
                for d in deleted
            ],
            [
                E("Error", E("Key", e.key), _opt("VersionId", e.version_id), E("Code", e.code),
                  E("Message", e.message))
                for e in errors
            ],
        )
    )


def location_constraint(region: str) -> bytes:
    """LocationConstraint: empty for us-east-1, as S3 answers."""
    return render(E("LocationConstraint", None if region == "us-east-1" else region))


def versioning_configuration(status: str | None = None) -> bytes:
    """VersioningConfiguration; ``None`` (never enabled) renders the empty element."""
    return render(E("VersioningConfiguration", _opt("Status", status)))


def access_control_policy(owner: Owner) -> bytes:
    """AccessControlPolicy: the owner with FULL_CONTROL (the only ACL this gateway has)."""
    return render(
        E(
            "AccessControlPolicy",
            _owner(owner),
            E(
                "AccessControlList",
                E(
                    "Grant",
                    E(
                        "Grantee",
                        E("ID", owner.id),
                        E("DisplayName", owner.display_name) if owner.display_name is not None else None,
                        attrs={"xmlns:xsi": XSI_NS, "xsi:type": "CanonicalUser"},
                    ),
                    E("Permission", "FULL_CONTROL"),
                ),
            ),
        )
    )
