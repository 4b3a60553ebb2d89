"""SigV4 verification: AWS's published vectors, botocore-signed requests, and tampering."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from protocols.s3 import errors
from protocols.s3.sigv4 import (
    EMPTY_SHA256,
    PayloadMode,
    canonical_query,
    canonical_uri,
    derive_signing_key,
    is_anonymous,
    query_params,
    verify_request,
)

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_TIME = datetime(2013, 5, 24, tzinfo=UTC)
DOC_HOST = "examplebucket.s3.amazonaws.com"


def lookup(akid: str) -> str | None:
    return SECRET if akid == AKID else None


# --- AWS documentation vectors --------------------------------------------------------------


def doc_auth(signed: str, signature: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={signature}"
    )


def test_doc_get_object_with_range() -> None:
    headers = {
        "Host": DOC_HOST,
        "Range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
        "Authorization": doc_auth(
            "host;range;x-amz-content-sha256;x-amz-date",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
    }
    ctx = verify_request("GET", "/test.txt", "", headers, lookup, DOC_TIME)
    assert ctx.access_key_id == AKID
    assert ctx.region == "us-east-1"
    assert ctx.scope == "20130524/us-east-1/s3/aws4_request"
    assert ctx.payload_mode is PayloadMode.SIGNED
    assert ctx.declared_sha256 == EMPTY_SHA256
    assert ctx.signing_key == derive_signing_key(SECRET, "20130524", "us-east-1")
    assert not ctx.presigned


def test_doc_put_object_with_date_header_and_dollar_in_key() -> None:
    body_sha = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    headers = {
        "Host": DOC_HOST,
        "Date": "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": body_sha,
        "Authorization": doc_auth(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
    }
    ctx = verify_request("PUT", "/test%24file.text", "", headers, lookup, DOC_TIME)
    assert ctx.declared_sha256 == body_sha
    # The same request with the '$' sent unencoded: the canonical URI is the same.
    ctx = verify_request("PUT", "/test$file.text", "", headers, lookup, DOC_TIME)
    assert ctx.payload_mode is PayloadMode.SIGNED


@pytest.mark.parametrize(
    ("query", "signature"),
    [
        ("lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ("max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
        ("prefix=J&max-keys=2", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ],
)
def test_doc_bucket_requests(query: str, signature: str) -> None:
    headers = {
        "Host": DOC_HOST,
        "x-amz-content-sha256": EMPTY_SHA256,
        "x-amz-date": "20130524T000000Z",
        "Authorization": doc_auth("host;x-amz-content-sha256;x-amz-date", signature),
    }
    verify_request("GET", "/", query, headers, lookup, DOC_TIME)


DOC_PRESIGNED = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def test_doc_presigned_url() -> None:
    ctx = verify_request("GET", "/test.txt", DOC_PRESIGNED, {"Host": DOC_HOST}, lookup,
                         DOC_TIME + timedelta(hours=23))
    assert ctx.presigned
    assert ctx.payload_mode is PayloadMode.UNSIGNED
    assert ctx.declared_sha256 is None


def test_doc_presigned_url_expires() -> None:
    with pytest.raises(errors.RequestExpired) as info:
        verify_request("GET", "/test.txt", DOC_PRESIGNED, {"Host": DOC_HOST}, lookup,
                       DOC_TIME + timedelta(days=1, seconds=1))
    assert info.value.code == "AccessDenied"
    assert info.value.message == "Request has expired"
    assert info.value.status == 403


def test_doc_presigned_url_not_yet_valid() -> None:
    with pytest.raises(errors.AccessDenied):
        verify_request("GET", "/test.txt", DOC_PRESIGNED, {"Host": DOC_HOST}, lookup,
                       DOC_TIME - timedelta(minutes=16))
    # Within the skew allowance it is fine.
    verify_request("GET", "/test.txt", DOC_PRESIGNED, {"Host": DOC_HOST}, lookup,
                   DOC_TIME - timedelta(minutes=14))


def test_doc_presigned_tampered_query_and_path() -> None:
    later = DOC_TIME + timedelta(hours=1)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_request("GET", "/test.txu", DOC_PRESIGNED, {"Host": DOC_HOST}, lookup, later)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_request("GET", "/test.txt", DOC_PRESIGNED + "&x=1", {"Host": DOC_HOST}, lookup, later)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_request("GET", "/test.txt", DOC_PRESIGNED, {"Host": "other.s3.amazonaws.com"}, lookup, later)
    tampered = DOC_PRESIGNED.replace("X-Amz-Expires=86400", "X-Amz-Expires=86401")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify_request("GET", "/test.txt", tampered, {"Host": DOC_HOST}, lookup, later)


# --- botocore-signed requests ---------------------------------------------------------------


class _Signer(S3SigV4Auth):
    """botocore's S3 signer, with the payload hash chosen by the test."""

    def __init__(self, payload: str | None) -> None:
        super().__init__(Credentials(AKID, SECRET), "s3", "eu-central-1")
        self._forced = payload

    def payload(self, request: Any) -> str:
        return self._forced if self._forced is not None else super().payload(request)


def botocore_signed(
    method: str,
    path: str,
    query: str = "",
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    payload: str | None = None,
    presign_expires: int | None = None,
) -> tuple[str, str, str, dict[str, str]]:
    """Sign with botocore; return what the server sees: method, raw path, raw query, headers."""
    url = f"http://s3.localhost:9000{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method=method, url=url, headers=dict(headers or {}), data=body)
    req.headers["Host"] = "s3.localhost:9000"
    if presign_expires is not None:
        S3SigV4QueryAuth(Credentials(AKID, SECRET), "s3", "eu-central-1", expires=presign_expires).add_auth(req)
    else:
        _Signer(payload).add_auth(req)
    parts = urlsplit(req.url)
    return method, str(parts.path), str(parts.query), {k: str(v) for k, v in req.headers.items()}


def verify(sent: tuple[str, str, str, dict[str, str]], now: datetime | None = None,
           secret_lookup: Callable[[str], str | None] = lookup, **kw: Any) -> Any:
    method, path, query, headers = sent
    return verify_request(method, path, query, headers, secret_lookup, now or datetime.now(UTC), **kw)


KEYS = [
    "plain.txt",
    "with space/and+plus.txt",
    "percent%20literal%.bin",
    "ünïcödé/日本語/😀.txt",
    "ctrl\x01\x07\x1f\x7fchars",
    "tab\tnew\nline\rcr",
    "!$&'()*,;=:@[]~_-.",
    "a//double//slash/",
    "./dots/../x",
    "?question#hash",
]


@pytest.mark.parametrize("key", KEYS)
def test_botocore_header_auth_keys(key: str) -> None:
    path = "/bucket/" + quote(key.encode("utf-8"), safe="/~")
    body = b"hello world"
    ctx = verify(botocore_signed("PUT", path, body=body))
    assert ctx.payload_mode is PayloadMode.SIGNED
    assert ctx.declared_sha256 == hashlib.sha256(body).hexdigest()
    assert ctx.region == "eu-central-1"


@pytest.mark.parametrize("key", KEYS)
def test_botocore_presigned_keys(key: str) -> None:
    path = "/bucket/" + quote(key.encode("utf-8"), safe="/~")
    sent = botocore_signed("GET", path, presign_expires=3600)
    ctx = verify(sent)
    assert ctx.presigned
    assert ctx.payload_mode is PayloadMode.UNSIGNED


@pytest.mark.parametrize(
    "query",
    [
        "list-type=2&prefix=a%20b%2Bc&delimiter=%2F",
        "prefix=%E6%97%A5%E6%9C%AC&max-keys=10&encoding-type=url",
        "uploads",
        "versioning",
        "partNumber=3&uploadId=abc%2Fdef%3D%3D",
        "a=2&a=1&b=",
    ],
)
def test_botocore_query_strings(query: str) -> None:
    verify(botocore_signed("GET", "/bucket", query))
    verify(botocore_signed("GET", "/bucket/key", query, presign_expires=60))


def test_query_plus_sent_literally_is_a_space_or_a_plus() -> None:
    # A client that sends '+' raw and signed it as '%2B' is accepted too.
    sent = botocore_signed("GET", "/bucket", "prefix=a%2Bb")
    method, path, query, headers = sent
    verify((method, path, query.replace("%2B", "+"), headers))


def test_unsigned_payload_and_streaming_modes() -> None:
    ctx = verify(botocore_signed("PUT", "/b/k", body=b"x", payload="UNSIGNED-PAYLOAD"))
    assert ctx.payload_mode is PayloadMode.UNSIGNED and ctx.declared_sha256 is None
    for value, mode in [
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", PayloadMode.STREAMING_SIGNED),
        ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", PayloadMode.STREAMING_UNSIGNED_TRAILER),
        ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", PayloadMode.STREAMING_SIGNED_TRAILER),
    ]:
        headers = {
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": "1234",
            "x-amz-trailer": "x-amz-checksum-crc32",
        }
        ctx = verify(botocore_signed("PUT", "/b/k", headers=headers, payload=value))
        assert ctx.payload_mode is mode
        assert ctx.payload_mode.streaming
        assert ctx.decoded_content_length == 1234
        assert ctx.trailer_names == (("x-amz-checksum-crc32",) if mode.has_trailer else ())
        del headers["x-amz-decoded-content-length"]
        with pytest.raises(errors.MissingContentLength):
            verify(botocore_signed("PUT", "/b/k", headers=headers, payload=value))


def test_bad_content_sha256_value() -> None:
    with pytest.raises(errors.InvalidArgument):
        verify(botocore_signed("PUT", "/b/k", payload="not-a-hash"))


def test_missing_content_sha256_means_empty_body() -> None:
    method, path, query, headers = botocore_signed("GET", "/b/k")
    assert headers.pop("X-Amz-Content-SHA256") == EMPTY_SHA256
    headers["Authorization"] = headers["Authorization"].replace("x-amz-content-sha256;", "")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify((method, path, query, headers))  # signed with the header, so now different
    # A client that did not send the header signed EMPTY_SHA256 as the payload: accepted.
    req = AWSRequest(method="GET", url="http://s3.localhost:9000/b/k", headers={"Host": "s3.localhost:9000"})
    from botocore.auth import SigV4Auth

    SigV4Auth(Credentials(AKID, SECRET), "s3", "us-east-1").add_auth(req)
    hdrs = {k: str(v) for k, v in req.headers.items()}
    assert "X-Amz-Content-SHA256" not in hdrs
    ctx = verify(("GET", "/b/k", "", hdrs))
    assert ctx.declared_sha256 == EMPTY_SHA256


# --- tampering ------------------------------------------------------------------------------


def _flip(text: str, index: int) -> str:
    ch = text[index]
    return text[:index] + ("b" if ch != "b" else "c") + text[index + 1:]


def test_tampered_signed_header_path_query_signature() -> None:
    sent = botocore_signed(
        "PUT", "/bucket/some%20key", "tagging=", headers={"x-amz-meta-colour": "blue", "Content-Type": "text/plain"},
        body=b"data",
    )
    verify(sent)
    method, path, query, headers = sent
    for name in ("x-amz-meta-colour", "Content-Type", "Host", "X-Amz-Content-SHA256"):
        h = dict(headers)
        h[name] = _flip(h[name], 0)
        with pytest.raises((errors.SignatureDoesNotMatch, errors.InvalidArgument)):
            verify((method, path, query, h))
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify((method, _flip(path, 3), query, headers))
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify((method, path, "tagging=x", headers))
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(("POST", path, query, headers))
    h = dict(headers)
    sig_at = h["Authorization"].index("Signature=") + len("Signature=")
    h["Authorization"] = _flip(h["Authorization"], sig_at + 5)
    with pytest.raises(errors.SignatureDoesNotMatch) as info:
        verify((method, path, query, h))
    body = errors.render_error(info.value, "req-1").decode()
    assert "<Code>SignatureDoesNotMatch</Code>" in body
    assert "<CanonicalRequest>PUT\n/bucket/some%20key\ntagging=\n" in body
    assert SECRET not in body


def test_unsigned_amz_header_is_refused() -> None:
    method, path, query, headers = botocore_signed("PUT", "/b/k", body=b"x")
    headers["x-amz-meta-injected"] = "1"
    with pytest.raises(errors.AccessDenied) as info:
        verify((method, path, query, headers))
    assert info.value.fields["HeadersNotSigned"] == "x-amz-meta-injected"


def test_unknown_access_key() -> None:
    with pytest.raises(errors.InvalidAccessKeyId) as info:
        verify(botocore_signed("GET", "/b/k"), secret_lookup=lambda _: None)
    assert info.value.status == 403
    assert info.value.fields["AWSAccessKeyId"] == AKID


def test_wrong_secret() -> None:
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify(botocore_signed("GET", "/b/k"), secret_lookup=lambda _: SECRET + "x")


def test_clock_skew() -> None:
    sent = botocore_signed("GET", "/b/k")
    t = datetime.strptime(sent[3]["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    verify(sent, now=t + timedelta(minutes=14, seconds=59))
    verify(sent, now=t - timedelta(minutes=14, seconds=59))
    for delta in (timedelta(minutes=15, seconds=1), -timedelta(minutes=15, seconds=1), timedelta(days=3)):
        with pytest.raises(errors.RequestTimeTooSkewed) as info:
            verify(sent, now=t + delta)
        assert info.value.status == 403
        assert info.value.fields["MaxAllowedSkewMilliseconds"] == "900000"


def test_presigned_expiry_limits() -> None:
    sent = botocore_signed("GET", "/b/k", presign_expires=604800)
    verify(sent)
    with pytest.raises(errors.AuthorizationQueryParametersError):
        verify(botocore_signed("GET", "/b/k", presign_expires=604801))
    sent = botocore_signed("GET", "/b/k", presign_expires=60)
    t = datetime.strptime(query_params(sent[2])["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    verify(sent, now=t + timedelta(seconds=60))
    with pytest.raises(errors.RequestExpired):
        verify(sent, now=t + timedelta(seconds=61))


def test_presigned_missing_parameter() -> None:
    method, path, query, headers = botocore_signed("GET", "/b/k", presign_expires=60)
    query = "&".join(p for p in query.split("&") if not p.startswith("X-Amz-SignedHeaders"))
    with pytest.raises(errors.AuthorizationQueryParametersError):
        verify((method, path, query, headers))


def test_sigv2_and_anonymous_and_both() -> None:
    with pytest.raises(errors.InvalidRequest) as info:
        verify_request("GET", "/b/k", "", {"Authorization": "AWS AKID:c2lnbmF0dXJl", "Host": "h"}, lookup, DOC_TIME)
    assert "AWS4-HMAC-SHA256" in info.value.message
    with pytest.raises(errors.InvalidRequest):
        verify_request("GET", "/b/k", "AWSAccessKeyId=A&Signature=x&Expires=1", {"Host": "h"}, lookup, DOC_TIME)
    assert is_anonymous("", {"Host": "h"})
    assert not is_anonymous(DOC_PRESIGNED, {})
    with pytest.raises(errors.AccessDenied):
        verify_request("GET", "/b/k", "", {"Host": "h"}, lookup, DOC_TIME)
    method, path, _query, headers = botocore_signed("GET", "/b/k")
    with pytest.raises(errors.InvalidArgument):
        verify((method, path, DOC_PRESIGNED, headers))


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID/2013/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/ec2/aws4_request,SignedHeaders=host,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws5_request,SignedHeaders=host,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=range,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=Host,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=xyz",
        "AWS4-HMAC-SHA256 Credential=AKID/20130525/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization_headers(authorization: str) -> None:
    headers = {"Host": "h", "x-amz-date": "20130524T000000Z", "x-amz-content-sha256": EMPTY_SHA256,
               "Authorization": authorization}
    with pytest.raises(errors.AuthorizationHeaderMalformed) as info:
        verify_request("GET", "/", "", headers, lookup, DOC_TIME)
    assert info.value.status == 400


def test_unknown_algorithm_and_missing_date() -> None:
    with pytest.raises(errors.InvalidArgument):
        verify_request("GET", "/", "", {"Authorization": "Bearer x", "Host": "h"}, lookup, DOC_TIME)
    headers = {"Host": "h", "Authorization": doc_auth("host", "0" * 64)}
    with pytest.raises(errors.AccessDenied):
        verify_request("GET", "/", "", headers, lookup, DOC_TIME)
    headers["x-amz-date"] = "yesterday"
    with pytest.raises(errors.AccessDenied):
        verify_request("GET", "/", "", headers, lookup, DOC_TIME)


def test_region_check() -> None:
    sent = botocore_signed("GET", "/b/k")
    verify(sent, region_ok=lambda r: r == "eu-central-1")
    with pytest.raises(errors.AuthorizationHeaderMalformed) as info:
        verify(sent, region_ok=lambda r: r == "us-east-1")
    assert info.value.fields["Region"] == "eu-central-1"


def test_canonical_helpers() -> None:
    assert canonical_uri("/b/a%20b+c%2Fd") == "/b/a%20b%2Bc/d"
    assert canonical_uri("") == "/"
    assert canonical_uri("/%e6%97%a5") == "/%E6%97%A5"
    assert canonical_query("b=2&a=1&a=0&c") == "a=0&a=1&b=2&c="
    assert canonical_query("p=a+b") == "p=a%20b"
    assert canonical_query("p=a+b", plus_is_space=False) == "p=a%2Bb"
    assert canonical_query("X-Amz-Signature=1&x=2", exclude="X-Amz-Signature") == "x=2"
    assert query_params("a=1&a=2&b&c=x+y") == {"a": ["1", "2"], "b": [""], "c": ["x y"]}


def test_errors_never_leak_secret_and_render_as_xml() -> None:
    from xml.etree import ElementTree

    sent = botocore_signed("GET", "/b/k%01")
    with pytest.raises(errors.SignatureDoesNotMatch) as info:
        verify(sent, secret_lookup=lambda _: "other")
    raw = errors.render_error(info.value, "RID", resource="/b/k\x01")
    assert SECRET.encode() not in raw
    assert b"&#x1;" in raw
    # Without the control character the document parses as XML.
    ok = errors.render_error(errors.NoSuchKey(resource="/b/k", Key="k"), "RID")
    root = ElementTree.fromstring(ok)
    assert [c.tag for c in root] == ["Code", "Message", "Key", "Resource", "RequestId"]


def test_sse_c_key_never_echoed() -> None:
    key = "c2VjcmV0LWN1c3RvbWVyLWtleS0zMi1ieXRlcy1sb25nISE="
    sent = botocore_signed("GET", "/b/k", headers={
        "x-amz-server-side-encryption-customer-algorithm": "AES256",
        "x-amz-server-side-encryption-customer-key": key,
        "x-amz-server-side-encryption-customer-key-MD5": "bWQ1",
    })
    verify(sent)
    with pytest.raises(errors.SignatureDoesNotMatch) as info:
        verify(sent, secret_lookup=lambda _: "wrong")
    body = errors.render_error(info.value, "r")
    assert key.encode() not in body
    assert b"x-amz-server-side-encryption-customer-key:&lt;redacted&gt;" in body
    assert b"x-amz-server-side-encryption-customer-key-md5:bWQ1" in body
