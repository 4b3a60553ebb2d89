"""S3 XML: hostile request bodies, request parsers, response rendering, error bodies."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import botocore.session
import pytest
from botocore import parsers

from gateway import errors as domain
from protocols.s3 import errors, xmlio

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
T0 = datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=UTC)
_S3_MODEL = botocore.session.get_session().get_service_model("s3")


def botocore_parse(operation: str, body: bytes) -> dict[str, Any]:
    """Parse a response body the way botocore does for ``operation``."""
    shape = _S3_MODEL.operation_model(operation).output_shape
    assert shape is not None
    parsed: dict[str, Any] = parsers.create_parser("rest-xml").parse(
        {"body": body, "headers": {}, "status_code": 200}, shape
    )
    return parsed


# --- hostile input --------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<Delete><Object><Key>&lol9;</Key></Object></Delete>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Delete [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Delete><Object><Key>&xxe;</Key></Object></Delete>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Delete [<!ENTITY % remote SYSTEM "http://127.0.0.1:1/x.dtd"> %remote;]>
<Delete><Object><Key>k</Key></Object></Delete>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Delete SYSTEM "http://127.0.0.1:1/x.dtd">
<Delete><Object><Key>k</Key></Object></Delete>"""

UNDEFINED_ENTITY = b"<Delete><Object><Key>&undefined;</Key></Object></Delete>"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, PARAMETER_ENTITY, EXTERNAL_DTD, UNDEFINED_ENTITY])
def test_entity_tricks_are_malformed_xml(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML) as info:
        xmlio.parse_delete(body)
    assert info.value.status == 400
    assert b"root:" not in errors.render_error(info.value, "r")


@pytest.mark.parametrize(
    "body",
    [
        b"<Delete><Object><Key>k</Key></Object>",
        b"<Delete><Object><Key>k</Key></Object></Delete><Delete/>",
        b"\xff\xfe<Delete/>",
        b"<Delete><Object><Key>\x01</Key></Object></Delete>",
        b"<Delete><Object><Key>&#0;</Key></Object></Delete>",
        b"not xml at all",
        b"<" + b"a>" * 20000,
    ],
)
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_delete(body)


def test_deep_nesting_refused() -> None:
    body = b"<Delete>" + b"<x>" * 40 + b"</x>" * 40 + b"</Delete>"
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_delete(body)


def test_size_limits() -> None:
    big = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 200_000 + b"</Delete>"
    with pytest.raises(errors.MaxMessageLengthExceeded):
        xmlio.parse_delete(big)
    with pytest.raises(errors.MaxMessageLengthExceeded):
        xmlio.read_body(io.BytesIO(b"x" * 2000), limit=1000)
    assert xmlio.read_body(io.BytesIO(b"x" * 1000), limit=1000) == b"x" * 1000
    with pytest.raises(errors.MaxMessageLengthExceeded):
        xmlio.parse_restore_request(b"<RestoreRequest>" + b" " * (70 << 10) + b"</RestoreRequest>")


def test_empty_body() -> None:
    with pytest.raises(errors.MissingRequestBodyError):
        xmlio.parse_delete(b"")
    with pytest.raises(errors.MissingRequestBodyError):
        xmlio.parse_complete_multipart_upload(b"  \n")


# --- request parsers ------------------------------------------------------------------------


def test_complete_multipart_upload() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Part><PartNumber>1</PartNumber><ETag>&quot;a54357aff0632cce46d942af68356b38&quot;</ETag>"
        b"<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part>"
        b'<Part><ETag>"0c78aef83f66abc1fa1e8477f296d394"</ETag><PartNumber>2</PartNumber></Part>'
        b"<Part><PartNumber>7</PartNumber><ETag>acbd18db4cc2f85cedef654fccc4a4d8</ETag></Part>"
        b"</CompleteMultipartUpload>"
    )
    parts = xmlio.parse_complete_multipart_upload(body)
    assert [(p.part_number, p.etag) for p in parts] == [
        (1, "a54357aff0632cce46d942af68356b38"),
        (2, "0c78aef83f66abc1fa1e8477f296d394"),
        (7, "acbd18db4cc2f85cedef654fccc4a4d8"),
    ]
    assert parts[0].checksums == {"CRC32": "AAAAAA=="}
    # Without a namespace, as some clients send it.
    assert len(xmlio.parse_complete_multipart_upload(body.replace(b' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"', b""))) == 3


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        ("<Part><PartNumber>2</PartNumber><ETag>x</ETag></Part><Part><PartNumber>1</PartNumber><ETag>y</ETag></Part>",
         errors.InvalidPartOrder),
        ("<Part><PartNumber>1</PartNumber><ETag>x</ETag></Part><Part><PartNumber>1</PartNumber><ETag>y</ETag></Part>",
         errors.InvalidPartOrder),
        ("<Part><PartNumber>1</PartNumber></Part>", errors.MalformedXML),
        ("<Part><PartNumber>0</PartNumber><ETag>x</ETag></Part>", errors.MalformedXML),
        ("<Part><PartNumber>10001</PartNumber><ETag>x</ETag></Part>", errors.MalformedXML),
        ("<Part><PartNumber>one</PartNumber><ETag>x</ETag></Part>", errors.MalformedXML),
        ("<Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>x</ETag></Part>", errors.MalformedXML),
        ("", errors.MalformedXML),
    ],
)
def test_complete_multipart_upload_errors(parts: str, error: type[errors.S3Error]) -> None:
    with pytest.raises(error):
        xmlio.parse_complete_multipart_upload(f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode())


def test_wrong_root_element() -> None:
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_complete_multipart_upload(b"<Delete><Object><Key>k</Key></Object></Delete>")


def test_delete() -> None:
    body = (
        "<Delete><Quiet>true</Quiet>"
        "<Object><Key> spaced key </Key></Object>"
        "<Object><Key>v&amp;&lt;&gt;ü\t</Key><VersionId>3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo</VersionId></Object>"
        "</Delete>"
    ).encode()
    req = xmlio.parse_delete(body)
    assert req.quiet
    assert [(o.key, o.version_id) for o in req.objects] == [
        (" spaced key ", None),
        ("v&<>ü\t", "3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"),
    ]
    assert not xmlio.parse_delete(b"<Delete><Object><Key>k</Key></Object></Delete>").quiet


def test_delete_limits() -> None:
    def body(n: int) -> bytes:
        return b"<Delete>" + b"".join(b"<Object><Key>k%d</Key></Object>" % i for i in range(n)) + b"</Delete>"

    assert len(xmlio.parse_delete(body(1000)).objects) == 1000
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_delete(body(1001))
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_delete(b"<Delete><Quiet>true</Quiet></Delete>")
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_delete(b"<Delete><Quiet>maybe</Quiet><Object><Key>k</Key></Object></Delete>")
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_delete(b"<Delete><Object><VersionId>1</VersionId></Object></Delete>")
    # A 1,000-key delete of 1 KiB keys fits the limit.
    long_keys = b"<Delete>" + b"".join(b"<Object><Key>" + b"k" * 1024 + b"</Key></Object>" for _ in range(1000)) + b"</Delete>"
    assert len(xmlio.parse_delete(long_keys).objects) == 1000


def test_restore_request() -> None:
    ns = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'
    r = xmlio.parse_restore_request(
        f"<RestoreRequest {ns}><Days>2</Days><GlacierJobParameters><Tier>Bulk</Tier></GlacierJobParameters></RestoreRequest>".encode()
    )
    assert r == xmlio.RestoreRequest(2, "Bulk")
    assert xmlio.parse_restore_request(b"<RestoreRequest><Days>7</Days></RestoreRequest>") == xmlio.RestoreRequest(7, "Standard")
    assert xmlio.parse_restore_request(b"<RestoreRequest><Tier>Expedited</Tier></RestoreRequest>") == xmlio.RestoreRequest(None, "Expedited")
    for bad in (
        b"<RestoreRequest><Days>0</Days></RestoreRequest>",
        b"<RestoreRequest><Days>-1</Days></RestoreRequest>",
        b"<RestoreRequest><Days>x</Days></RestoreRequest>",
        b"<RestoreRequest><Days>1</Days><GlacierJobParameters><Tier>Fast</Tier></GlacierJobParameters></RestoreRequest>",
        b"<RestoreRequest><Tier>Bulk</Tier><GlacierJobParameters><Tier>Standard</Tier></GlacierJobParameters></RestoreRequest>",
        b"<Restore><Days>1</Days></Restore>",
    ):
        with pytest.raises(errors.MalformedXML):
            xmlio.parse_restore_request(bad)
    with pytest.raises(errors.NotImplemented) as info:
        xmlio.parse_restore_request(b"<RestoreRequest><Type>SELECT</Type></RestoreRequest>")
    assert info.value.status == 501


def test_create_bucket_configuration() -> None:
    assert xmlio.parse_create_bucket_configuration(b"") is None
    body = b'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>'
    assert xmlio.parse_create_bucket_configuration(body) == "eu-west-1"
    assert xmlio.parse_create_bucket_configuration(b"<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>") is None
    with pytest.raises(errors.MalformedXML):
        xmlio.parse_create_bucket_configuration(b"<CreateBucketConfiguration><LocationConstraint>")


# --- rendering ------------------------------------------------------------------------------


def test_render_escapes_and_namespace() -> None:
    doc = xmlio.render(xmlio.E("R", xmlio.E("A", "x<y>&\"'z"), xmlio.E("B", 5), xmlio.E("C", True),
                                xmlio.E("D", T0), None, [xmlio.E("E", "1"), xmlio.E("E", "2")]))
    root = ElementTree.fromstring(doc)
    assert root.tag == f"{NS}R"
    assert [(c.tag.removeprefix(NS), c.text) for c in root] == [
        ("A", "x<y>&\"'z"), ("B", "5"), ("C", "true"), ("D", "2024-02-29T12:34:56.789Z"), ("E", "1"), ("E", "2")
    ]
    assert doc.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


def test_cr_lf_tab_survive_a_round_trip() -> None:
    doc = xmlio.render(xmlio.E("R", xmlio.E("Key", "a\r\nb\tc\rd")))
    assert ElementTree.fromstring(doc)[0].text == "a\r\nb\tc\rd"


def test_control_characters_without_url_encoding() -> None:
    # As S3: written as references, which strict XML 1.0 parsers refuse.
    body = xmlio.list_bucket_v2(bucket="b", prefix="", max_keys=1000, is_truncated=False,
                                contents=[xmlio.ObjectInfo("ctl\x01x", T0, "e", 1)])
    assert b"<Key>ctl&#x1;x</Key>" in body
    with pytest.raises(ElementTree.ParseError):
        ElementTree.fromstring(body)


KEYS = ["a b/c+d", "ctl\x01\x02\x1f", "ünï/日本/😀", "50%/x?y#z&w", "tab\tnl\ncr\r"]


def test_list_objects_v2_with_url_encoding_through_botocore() -> None:
    contents = [xmlio.ObjectInfo(k, T0, '"d41d8cd98f00b204e9800998ecf8427e"', i, "DEEP_ARCHIVE",
                                 owner=xmlio.Owner("id", "name"), restore_status=(False, T0))
                for i, k in enumerate(KEYS)]
    body = xmlio.list_bucket_v2(
        bucket="bucket", prefix="pre fix/", delimiter="/", max_keys=5, is_truncated=True,
        contents=contents, common_prefixes=["pre fix/sub dir\x01/"], continuation_token="tok",
        next_continuation_token="next+tok", start_after="a b", fetch_owner=True, url=True,
    )
    parsed = botocore_parse("ListObjectsV2", body)
    assert [unquote_plus(c["Key"]) for c in parsed["Contents"]] == KEYS
    assert [c["Size"] for c in parsed["Contents"]] == list(range(len(KEYS)))
    assert parsed["Contents"][0]["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert parsed["Contents"][0]["StorageClass"] == "DEEP_ARCHIVE"
    assert parsed["Contents"][0]["Owner"] == {"ID": "id", "DisplayName": "name"}
    assert parsed["Contents"][0]["RestoreStatus"]["IsRestoreInProgress"] is False
    assert unquote_plus(parsed["CommonPrefixes"][0]["Prefix"]) == "pre fix/sub dir\x01/"
    assert parsed["KeyCount"] == len(KEYS) + 1
    assert parsed["IsTruncated"] is True
    assert parsed["NextContinuationToken"] == "next+tok"
    assert parsed["EncodingType"] == "url"
    assert unquote_plus(parsed["StartAfter"]) == "a b"
    assert parsed["Contents"][0]["LastModified"].timestamp() == T0.timestamp()


def test_list_objects_v1_and_versions_and_uploads_through_botocore() -> None:
    info = xmlio.ObjectInfo("k 1", T0, "abc", 3, owner=xmlio.Owner("o"))
    body = xmlio.list_bucket_v1(bucket="b", prefix="", marker="m", max_keys=1, is_truncated=True,
                                contents=[info], next_marker="k 1", delimiter="/", url=False)
    parsed = botocore_parse("ListObjects", body)
    assert parsed["Contents"][0]["Key"] == "k 1"
    assert parsed["Contents"][0]["Owner"]["ID"] == "o"
    assert parsed["NextMarker"] == "k 1" and parsed["Marker"] == "m"

    entries: list[xmlio.VersionInfo | xmlio.DeleteMarkerInfo] = [
        xmlio.DeleteMarkerInfo("k", "v2", True, T0),
        xmlio.VersionInfo("k", "v1", False, T0, "e1", 10),
        xmlio.VersionInfo("k\x01", "null", True, T0, "e2", 11),
    ]
    body = xmlio.list_versions(bucket="b", prefix="", key_marker="", version_id_marker="", max_keys=1000,
                               is_truncated=False, entries=entries, url=True)
    parsed = botocore_parse("ListObjectVersions", body)
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in parsed["Versions"]] == [("k", "v1", False), ("k%01", "null", True)]
    assert parsed["DeleteMarkers"][0]["VersionId"] == "v2"

    uploads = [xmlio.UploadInfo("u k", "id-1", T0, owner=xmlio.Owner("o", "n"))]
    body = xmlio.list_multipart_uploads_result(bucket="b", key_marker="", upload_id_marker="", max_uploads=1000,
                                               is_truncated=False, uploads=uploads, url=True)
    parsed = botocore_parse("ListMultipartUploads", body)
    assert parsed["Uploads"][0]["UploadId"] == "id-1"
    assert unquote_plus(parsed["Uploads"][0]["Key"]) == "u k"
    assert parsed["Uploads"][0]["Initiator"]["ID"] == "o"


def test_multipart_documents_through_botocore() -> None:
    parsed = botocore_parse("CreateMultipartUpload", xmlio.initiate_multipart_upload_result("b", "k&", "up"))
    assert (parsed["Bucket"], parsed["Key"], parsed["UploadId"]) == ("b", "k&", "up")
    parsed = botocore_parse("CompleteMultipartUpload", xmlio.complete_multipart_upload_result(
        "http://h/b/k", "b", "k", "abc-2", checksums={"x-amz-checksum-crc32": "AAAAAA=="}))
    assert parsed["ETag"] == '"abc-2"' and parsed["ChecksumCRC32"] == "AAAAAA=="
    parts = [xmlio.PartInfo(1, T0, "e1", 5 << 20), xmlio.PartInfo(2, T0, '"e2"', 1, {"CRC32C": "AAAAAA=="})]
    parsed = botocore_parse("ListParts", xmlio.list_parts_result(
        bucket="b", key="k", upload_id="u", part_number_marker=0, max_parts=1000, is_truncated=False,
        parts=parts, owner=xmlio.Owner("o")))
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parsed["Parts"]] == [(1, '"e1"', 5 << 20), (2, '"e2"', 1)]
    assert parsed["Parts"][1]["ChecksumCRC32C"] == "AAAAAA=="
    parsed = botocore_parse("CopyObject", xmlio.copy_object_result("abc", T0))
    assert parsed["CopyObjectResult"]["ETag"] == '"abc"'
    parsed = botocore_parse("UploadPartCopy", xmlio.copy_object_result("abc", T0, part=True))
    assert parsed["CopyPartResult"]["ETag"] == '"abc"'


def test_bucket_documents_through_botocore() -> None:
    body = xmlio.list_all_my_buckets(xmlio.Owner("id", "me"), [xmlio.BucketInfo("b1", T0), xmlio.BucketInfo("b2", T0, "eu-west-1")])
    parsed = botocore_parse("ListBuckets", body)
    assert [b["Name"] for b in parsed["Buckets"]] == ["b1", "b2"]
    assert parsed["Owner"]["DisplayName"] == "me"
    assert botocore_parse("GetBucketLocation", xmlio.location_constraint("us-east-1")).get("LocationConstraint") in (None, "")
    assert b"<LocationConstraint" in xmlio.location_constraint("us-east-1")
    assert ElementTree.fromstring(xmlio.location_constraint("eu-west-1")).text == "eu-west-1"
    assert botocore_parse("GetBucketVersioning", xmlio.versioning_configuration()).get("Status") is None
    assert botocore_parse("GetBucketVersioning", xmlio.versioning_configuration("Enabled"))["Status"] == "Enabled"
    acl = botocore_parse("GetObjectAcl", xmlio.access_control_policy(xmlio.Owner("id", "me")))
    assert acl["Grants"] == [{"Grantee": {"ID": "id", "DisplayName": "me", "Type": "CanonicalUser"},
                              "Permission": "FULL_CONTROL"}]


def test_delete_result_through_botocore() -> None:
    deleted = [xmlio.Deleted("a"), xmlio.Deleted("b", "v", True, "dm")]
    failures = [xmlio.DeleteFailure("c", "AccessDenied", "Access Denied")]
    parsed = botocore_parse("DeleteObjects", xmlio.delete_result(deleted, failures))
    assert [d["Key"] for d in parsed["Deleted"]] == ["a", "b"]
    assert parsed["Deleted"][1]["DeleteMarker"] is True
    assert parsed["Errors"] == [{"Key": "c", "Code": "AccessDenied", "Message": "Access Denied"}]
    quiet = botocore_parse("DeleteObjects", xmlio.delete_result(deleted, failures, quiet=True))
    assert "Deleted" not in quiet and len(quiet["Errors"]) == 1


# --- error bodies ---------------------------------------------------------------------------


def test_error_body_shape() -> None:
    err = errors.NoSuchKey(resource="/b/k<&>", Key="k<&>")
    root = ElementTree.fromstring(errors.render_error(err, "REQ1"))
    assert root.tag == "Error"
    assert {c.tag: c.text for c in root} == {
        "Code": "NoSuchKey", "Message": "The specified key does not exist.", "Key": "k<&>",
        "Resource": "/b/k<&>", "RequestId": "REQ1",
    }
    assert err.status == 404
    assert errors.render_error(errors.NotModified(), "r") == b""
    assert errors.render_error(errors.InvalidRequest("x"), "r", resource="/fallback").count(b"/fallback") == 1
    generic = errors.GenericError("NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist")
    assert b"<Code>NoSuchLifecycleConfiguration</Code>" in errors.render_error(generic, "r")
    assert generic.status == 404


def test_every_error_class_has_code_status_and_message() -> None:
    for code, cls in errors.BY_CODE.items():
        err = cls()
        assert err.code == code and 200 <= err.status < 600 and err.message
        body = errors.render_error(err, "r")
        if err.has_body:
            assert ElementTree.fromstring(body).find("Code").text == code  # type: ignore[union-attr]


def _all_domain_classes() -> list[type[domain.CoolStorageError]]:
    out = []
    todo: list[type[domain.CoolStorageError]] = [domain.CoolStorageError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo.extend(cls.__subclasses__())
    return out


@pytest.mark.parametrize("cls", _all_domain_classes(), ids=lambda c: c.__name__)
def test_from_domain_maps_every_class(cls: type[domain.CoolStorageError]) -> None:
    try:
        exc = cls("thing", "DEEP_ARCHIVE")
    except TypeError:
        exc = cls("thing")
    err = errors.from_domain(exc, "/b/k")
    assert isinstance(err, errors.S3Error)
    assert err.resource == "/b/k"
    ElementTree.fromstring(errors.render_error(err, "r"))
    internal = (domain.IntegrityError, domain.ConfigError, domain.BlobNotFound)
    if cls is domain.CoolStorageError or issubclass(cls, internal):
        assert err.status == 500
    else:
        assert err.status != 500, f"{cls.__name__} -> {err.code}"


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (domain.BucketNotFound("b"), "NoSuchBucket", 404),
        (domain.ObjectNotFound("k"), "NoSuchKey", 404),
        (domain.ObjectArchived("k", "DEEP_ARCHIVE"), "InvalidObjectState", 403),
        (domain.RestoreInProgress("k"), "RestoreAlreadyInProgress", 409),
        (domain.VaultSealed("k"), "AccessDenied", 403),
        (domain.QuotaExceeded("org"), "QuotaExceeded", 403),
        (domain.AccessDenied("no"), "AccessDenied", 403),
        (domain.BucketNotEmpty("b"), "BucketNotEmpty", 409),
        (domain.AlreadyExists("b"), "BucketAlreadyOwnedByYou", 409),
        (domain.InvalidRange("bytes=9-", 5), "InvalidRange", 416),
        (domain.PreconditionFailed("If-Match"), "PreconditionFailed", 412),
        (domain.InvalidName("'X': a bucket name has 3 to 63 ..."), "InvalidBucketName", 400),
        (domain.InvalidName("an object key is at most 1024 bytes of UTF-8"), "KeyTooLongError", 400),
        (domain.InvalidArgument("bad thing"), "InvalidArgument", 400),
        (domain.BackendError("down", retryable=True), "ServiceUnavailable", 503),
        (domain.CatalogError("locked"), "ServiceUnavailable", 503),
        (domain.IntegrityError("mac"), "InternalError", 500),
    ],
)
def test_from_domain_specifics(exc: domain.CoolStorageError, code: str, status: int) -> None:
    err = errors.from_domain(exc, "/b/k")
    assert (err.code, err.status) == (code, status)


def test_from_domain_details() -> None:
    err = errors.from_domain(domain.ObjectArchived("k", "DEEP_ARCHIVE"), "/b/k")
    assert err.fields["StorageClass"] == "DEEP_ARCHIVE"
    assert "restore" in err.message.lower()
    err = errors.from_domain(domain.VaultSealed("k"), "/b/k")
    assert "sealed to its owner's key" in err.message
    err = errors.from_domain(domain.InvalidRange("bytes=9-", 5), "/b/k")
    assert err.headers == {"Content-Range": "bytes */5"}
    assert err.fields["ActualObjectSize"] == "5"
    err = errors.from_domain(domain.BackendError("secret internals", retryable=True))
    assert err.headers["Retry-After"]
    assert b"secret internals" not in errors.render_error(err, "r")
    err = errors.from_domain(domain.IntegrityError("blob xyz mac mismatch"))
    assert b"xyz" not in errors.render_error(err, "r")
