"""Hostile input on the S3 wire: every failure is the matching S3 error, never a 500.

Requests are sent byte for byte with :mod:`http.client` (no client normalises the paths)
and signed by the small SigV4 signer below, written from the AWS specification, so a test
can sign exactly the raw path it sends. Each answer is checked for its status, its S3 error
code and a well-formed error body (Code, Message, Resource, RequestId).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, unquote_plus, unquote_to_bytes

import pytest

from tests.fixtures.s3gateway import S3Server, s3_gateway

EMPTY = hashlib.sha256(b"").hexdigest()
MAX_OBJECT = 1 << 20


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_gateway(
        tmp_path_factory.mktemp("hostile"), overrides={"s3": {"max_object_size": MAX_OBJECT}}
    ) as server:
        yield server


@pytest.fixture(scope="module")
def bucket(s3: S3Server) -> str:
    name = f"hostile-{uuid.uuid4().hex[:8]}"
    assert send(s3, "PUT", f"/{name}").status == 200
    return name


# -- a SigV4 signer for raw requests --------------------------------------------------------


def _enc(data: bytes | str) -> str:
    return quote(data, safe="-_.~")


def _canonical_query(raw: str) -> str:
    pairs = []
    for piece in raw.split("&") if raw else []:
        name, _, value = piece.partition("=")
        pairs.append((_enc(unquote_plus(name)), _enc(unquote_plus(value))))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def sign(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],
    payload_hash: str,
    *,
    access_key: str,
    secret: str,
    when: datetime,
    region: str = "us-east-1",
) -> dict[str, str]:
    """``headers`` plus x-amz-date, x-amz-content-sha256 and Authorization."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    out = dict(headers)
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_hash
    lower = {k.lower(): " ".join(v.split()) for k, v in out.items()}
    names = sorted(lower)
    canonical = "\n".join(
        [
            method,
            quote(unquote_to_bytes(raw_path), safe="/-_.~"),
            _canonical_query(raw_query),
            *(f"{n}:{lower[n]}" for n in names),
            "",
            ";".join(names),
            payload_hash,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, str]:
        # Echoed names may hold control characters, written as references as S3 does;
        # XML 1.0 parsers refuse those, so they are dropped before parsing.
        text = re.sub(rb"&#x(?:[0-8BCEF]|1[0-9A-F]);", b"?", self.body)
        root = ET.fromstring(text)
        assert root.tag == "Error", self.body
        return {child.tag: child.text or "" for child in root}


def send(
    s3: S3Server,
    method: str,
    target: str,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    *,
    sign_it: bool = True,
    access_key: str | None = None,
    secret: str | None = None,
    when: datetime | None = None,
    payload_hash: str | None = None,
) -> Reply:
    """Send ``method target`` exactly as given (raw path and query), signed by default."""
    host, port = s3.url.split("://")[1].rsplit(":", 1)
    raw_path, _, raw_query = target.partition("?")
    all_headers = {"host": f"{host}:{port}", **(headers or {})}
    if sign_it:
        all_headers = sign(
            method, raw_path, raw_query, all_headers,
            payload_hash or hashlib.sha256(body).hexdigest(),
            access_key=access_key or s3.access_key_id,
            secret=secret or s3.secret_access_key,
            when=when or datetime.now(UTC),
        )
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def assert_error(reply: Reply, status: int, code: str) -> dict[str, str]:
    assert reply.status == status, (reply.status, reply.body[:500])
    fields = reply.error()
    assert fields["Code"] == code, fields
    assert fields["Message"] and fields["RequestId"] == reply.headers["x-amz-request-id"]
    assert "Resource" in fields
    assert b"Traceback" not in reply.body
    return fields


# -- authentication ------------------------------------------------------------------------


def test_good_request_works(s3: S3Server, bucket: str) -> None:
    assert send(s3, "PUT", f"/{bucket}/ok", b"fine").status == 200
    got = send(s3, "GET", f"/{bucket}/ok")
    assert (got.status, got.body) == (200, b"fine")


def test_bad_signature(s3: S3Server, bucket: str) -> None:
    reply = send(s3, "GET", f"/{bucket}/ok", secret="not-the-secret")
    fields = assert_error(reply, 403, "SignatureDoesNotMatch")
    assert "not-the-secret" not in reply.body.decode() and s3.secret_access_key not in reply.body.decode()
    assert fields["AWSAccessKeyId"] == s3.access_key_id


def test_unknown_key(s3: S3Server, bucket: str) -> None:
    assert_error(send(s3, "GET", f"/{bucket}/ok", access_key="CSNOSUCHKEY0000000000"), 403, "InvalidAccessKeyId")


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew(s3: S3Server, bucket: str, minutes: int) -> None:
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    fields = assert_error(send(s3, "GET", f"/{bucket}/ok", when=when), 403, "RequestTimeTooSkewed")
    assert fields["MaxAllowedSkewMilliseconds"] == "900000"
    assert send(s3, "GET", f"/{bucket}/ok", when=datetime.now(UTC) - timedelta(minutes=10)).status == 200


def test_anonymous_and_old_or_malformed_auth(s3: S3Server, bucket: str) -> None:
    assert_error(send(s3, "GET", f"/{bucket}/ok", sign_it=False), 403, "AccessDenied")
    v2 = {"Authorization": f"AWS {s3.access_key_id}:c2lnbmF0dXJl", "Date": "Thu, 01 Jan 2026 00:00:00 GMT"}
    assert_error(send(s3, "GET", f"/{bucket}/ok", headers=v2, sign_it=False), 400, "InvalidRequest")
    bad = {"Authorization": "AWS4-HMAC-SHA256 Credential=x, Signature=zz", "x-amz-date": "20260101T000000Z"}
    assert_error(send(s3, "GET", f"/{bucket}/ok", headers=bad, sign_it=False), 400, "AuthorizationHeaderMalformed")
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=abc&X-Amz-Date=x"
        "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
    )
    assert_error(send(s3, "GET", f"/{bucket}/ok?{query}", sign_it=False), 400, "AuthorizationQueryParametersError")


def test_payload_hash_mismatch_and_bad_digests(s3: S3Server, bucket: str) -> None:
    reply = send(s3, "PUT", f"/{bucket}/digest", b"abc", payload_hash=hashlib.sha256(b"xyz").hexdigest())
    assert_error(reply, 400, "XAmzContentSHA256Mismatch")
    assert_error(send(s3, "PUT", f"/{bucket}/digest", b"abc", {"Content-MD5": "not base64!"}), 400, "InvalidDigest")
    assert_error(send(s3, "PUT", f"/{bucket}/digest", b"abc", {"x-amz-checksum-crc32": "AAAAAA=="}), 400, "BadDigest")
    assert_error(send(s3, "GET", f"/{bucket}/digest"), 404, "NoSuchKey")
    assert_error(
        send(s3, "PUT", f"/{bucket}/digest", b"abc", payload_hash="not-a-hash"), 400, "InvalidArgument"
    )


# -- ranges --------------------------------------------------------------------------------


def test_ranges(s3: S3Server, bucket: str) -> None:
    send(s3, "PUT", f"/{bucket}/ranged", b"0123456789")
    for header in ("bytes=5-2", "bytes=a-b", "items=0-1", "bytes=0-1,3-4", "bytes=-", "garbage"):
        reply = send(s3, "GET", f"/{bucket}/ranged", headers={"Range": header})
        assert (reply.status, reply.body) == (200, b"0123456789"), header
    reply = send(s3, "GET", f"/{bucket}/ranged", headers={"Range": "bytes=10-"})
    assert_error(reply, 416, "InvalidRange")
    assert reply.headers["content-range"] == "bytes */10"
    assert_error(send(s3, "GET", f"/{bucket}/ranged", headers={"Range": "bytes=-0"}), 416, "InvalidRange")
    reply = send(s3, "GET", f"/{bucket}/ranged", headers={"Range": "bytes=-3"})
    assert (reply.status, reply.body, reply.headers["content-range"]) == (206, b"789", "bytes 7-9/10")


# -- names and paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/AB-upper", "/a_b", "/ab", "/" + "a" * 64, "/192.168.1.1", "/xn--bucket", "/-bucket",
     "/bucket-", "/my..bucket", "/bu%2fcket", "/bu%5ccket", "/bu\\cket", "/%2e%2e", "/..", "/b%00ucket"],
)
def test_invalid_bucket_names(s3: S3Server, path: str) -> None:
    assert_error(send(s3, "GET", path), 400, "InvalidBucketName")


@pytest.mark.parametrize(
    ("suffix", "status", "code"),
    [
        ("/..", 400, "InvalidArgument"),
        ("/a/../b", 400, "InvalidArgument"),
        ("/%2e%2e/%2e%2e/etc/passwd", 400, "InvalidArgument"),
        ("/a/./b", 400, "InvalidArgument"),
        ("/a%00b", 400, "InvalidArgument"),
        ("/%c0%af", 400, "InvalidURI"),
        ("/%ff%fe", 400, "InvalidURI"),
        ("/%e0%80%af", 400, "InvalidURI"),
        ("/" + "k" * 1025, 400, "KeyTooLongError"),
    ],
)
def test_path_tricks_in_keys(s3: S3Server, bucket: str, suffix: str, status: int, code: str) -> None:
    for method in ("GET", "PUT"):
        assert_error(send(s3, method, f"/{bucket}{suffix}", b"x" if method == "PUT" else b""), status, code)


def test_literal_path_characters_are_just_key_characters(s3: S3Server, bucket: str) -> None:
    # An encoded slash is a slash; a backslash, '%' and '+' are ordinary key characters.
    assert send(s3, "PUT", f"/{bucket}/dir%2Ffile", b"slash").status == 200
    assert send(s3, "GET", f"/{bucket}/dir/file").body == b"slash"
    assert send(s3, "PUT", f"/{bucket}/back\\slash", b"bs").status == 200
    assert send(s3, "GET", f"/{bucket}/back%5Cslash").body == b"bs"
    assert send(s3, "PUT", f"/{bucket}/p%25c+t", b"pc").status == 200
    assert send(s3, "GET", f"/{bucket}/p%25c%2Bt").body == b"pc"
    listing = send(s3, "GET", f"/{bucket}?list-type=2&prefix=p")
    assert b"<Key>p%c+t</Key>" in listing.body


# -- sizes ---------------------------------------------------------------------------------


def test_oversized_headers(s3: S3Server, bucket: str) -> None:
    meta = {"x-amz-meta-big": "m" * 3000}
    assert_error(send(s3, "PUT", f"/{bucket}/meta", b"x", meta), 400, "MetadataTooLarge")
    many = {f"x-amz-meta-k{i}": "v" * 100 for i in range(100)}
    assert_error(send(s3, "PUT", f"/{bucket}/meta", b"x", many), 400, "RequestHeaderSectionTooLarge")
    # Past the server's own header limit the connection is refused before the app; still
    # a client error, never a 500.
    huge = {"x-filler": "f" * (70 * 1024)}
    reply = send(s3, "GET", f"/{bucket}/meta", headers=huge)
    assert 400 <= reply.status < 500


def test_oversized_bodies(s3: S3Server, bucket: str) -> None:
    reply = send(s3, "PUT", f"/{bucket}/large", b"z" * (MAX_OBJECT + 1))
    assert_error(reply, 400, "EntityTooLarge")
    assert_error(send(s3, "GET", f"/{bucket}/large"), 404, "NoSuchKey")
    assert send(s3, "PUT", f"/{bucket}/large", b"z" * MAX_OBJECT).status == 200
    xml = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 200_000 + b"</Delete>"
    assert_error(send(s3, "POST", f"/{bucket}?delete", xml), 400, "MaxMessageLengthExceeded")
    many = b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>"
    assert_error(send(s3, "POST", f"/{bucket}?delete", many), 400, "MalformedXML")


# -- XML -----------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Delete><Object><Key>&lol3;</Key></Object></Delete>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Delete><Object><Key>&xxe;</Key></Object></Delete>"""
UNDEFINED = b"<Delete><Object><Key>&nope;</Key></Object></Delete>"
DEEP = b"<Delete>" + b"<a>" * 100 + b"</a>" * 100 + b"</Delete>"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, UNDEFINED, DEEP, b"<Delete><Object>", b"\xff\xfe"])
def test_xml_attacks(s3: S3Server, bucket: str, body: bytes) -> None:
    assert_error(send(s3, "POST", f"/{bucket}?delete", body), 400, "MalformedXML")


def test_malformed_documents(s3: S3Server, bucket: str) -> None:
    upload = send(s3, "POST", f"/{bucket}/mp?uploads")
    upload_id = ET.fromstring(upload.body).find("{*}UploadId").text  # type: ignore[union-attr]
    bad_order = (
        b"<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part>"
        b"<Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>"
    )
    assert_error(send(s3, "POST", f"/{bucket}/mp?uploadId={upload_id}", bad_order), 400, "InvalidPartOrder")
    missing = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>"
    assert_error(send(s3, "POST", f"/{bucket}/mp?uploadId={upload_id}", missing), 400, "InvalidPart")
    assert_error(send(s3, "POST", f"/{bucket}/mp?uploadId=nope", missing), 404, "NoSuchUpload")
    assert_error(send(s3, "PUT", f"/{bucket}/mp?partNumber=0&uploadId={upload_id}", b"x"), 400, "InvalidArgument")
    assert_error(send(s3, "PUT", f"/{bucket}/mp?partNumber=10001&uploadId={upload_id}", b"x"), 400, "InvalidArgument")
    assert_error(send(s3, "POST", f"/{bucket}/mp?restore", b"<RestoreRequest><Days>x</Days></RestoreRequest>"), 400, "MalformedXML")
    assert_error(send(s3, "PUT", f"/{bucket}?versioning", b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"), 501, "NotImplemented")
    assert_error(send(s3, "PUT", f"/{bucket}/x", b"x", {"x-amz-storage-class": "FROZEN"}), 400, "InvalidStorageClass")
    assert_error(send(s3, "GET", f"/{bucket}?list-type=2&max-keys=many"), 400, "InvalidArgument")
    assert_error(send(s3, "GET", f"/{bucket}?list-type=2&encoding-type=base64"), 400, "InvalidArgument")
    assert_error(send(s3, "GET", f"/{bucket}/ok?versionId=abc"), 404, "NoSuchVersion")
    assert_error(send(s3, "PUT", f"/{bucket}/copy", headers={"x-amz-copy-source": "nobucketkey"}), 400, "InvalidArgument")
    assert_error(send(s3, "PATCH", f"/{bucket}/x"), 405, "MethodNotAllowed")
    assert_error(send(s3, "PUT", f"/{bucket}/x", b"x", {"If-None-Match": '"abc"'}), 501, "NotImplemented")


def test_missing_length_and_truncated_bodies(s3: S3Server, bucket: str) -> None:
    host, port = s3.url.split("://")[1].rsplit(":", 1)
    headers = sign("PUT", f"/{bucket}/nolength", "", {"host": f"{host}:{port}"}, "UNSIGNED-PAYLOAD",
                   access_key=s3.access_key_id, secret=s3.secret_access_key, when=datetime.now(UTC))
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("PUT", f"/{bucket}/nolength", skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        reply = conn.getresponse()
        body = reply.read()
    finally:
        conn.close()
    assert reply.status == 411 and b"<Code>MissingContentLength</Code>" in body


def test_internal_errors_are_answered_without_internals(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    original = s3.gateway.objects.head_object

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("secret internal detail /var/lib/x")

    s3.gateway.objects.head_object = broken  # type: ignore[method-assign,assignment]
    try:
        reply = send(s3, "GET", f"/{bucket}/ok?acl")
    finally:
        s3.gateway.objects.head_object = original  # type: ignore[method-assign]
    fields = assert_error(reply, 500, "InternalError")
    assert "secret internal detail" not in reply.body.decode() and fields["Message"]


def test_missing_stored_data_is_an_error_before_the_first_byte(s3: S3Server, bucket: str) -> None:
    assert send(s3, "PUT", f"/{bucket}/lost", b"l" * 300_000).status == 200
    principal, _ = s3.gateway.identity.authenticate_access_key(s3.access_key_id)
    record = s3.gateway.objects.head_object(principal, s3.org, bucket, "lost").record
    for segment in record.segments:
        s3.gateway.backends[segment.blob.backend].delete(segment.blob.key)
    reply = send(s3, "GET", f"/{bucket}/lost")
    fields = assert_error(reply, 500, "InternalError")
    assert "missing" in fields["Message"]
