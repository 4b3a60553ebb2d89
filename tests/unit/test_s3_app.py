"""The S3 app over the wire: boto3 (and raw HTTP) against an in-process gateway.

One server per module (plain HTTP, plus one over TLS for SSE-C); each test uses its own
buckets. Data sizes stay small; multipart tests use S3's real 5 MiB minimum where it
matters.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.exceptions
import httpx
import pytest

from gateway.config import S3Config
from protocols.s3.chunked import PayloadVerifier, object_body_reader
from protocols.s3.sigv4 import AuthContext, PayloadMode
from tests.fixtures.s3gateway import S3Server, s3_gateway
from tests.fixtures.tls import TLSFiles

MiB = 1 << 20


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with s3_gateway(tmp_path_factory.mktemp("s3app")) as server:
        yield server


@pytest.fixture(scope="module")
def s3tls(tmp_path_factory: pytest.TempPathFactory, tls_ca: TLSFiles) -> Iterator[S3Server]:
    with s3_gateway(tmp_path_factory.mktemp("s3apptls"), tls=tls_ca) as server:
        yield server


@pytest.fixture
def client(s3: S3Server) -> Any:
    return s3.client()


@pytest.fixture
def bucket(client: Any) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name


def code_of(info: Any) -> tuple[str, int]:
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


# -- buckets -------------------------------------------------------------------------------


def test_bucket_lifecycle(client: Any, s3: S3Server) -> None:
    name = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}, ACL="private"
    )
    assert client.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-3"
    head = client.head_bucket(Bucket=name)
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-3"
    assert name in [b["Name"] for b in client.list_buckets()["Buckets"]]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.create_bucket(Bucket=name)
    assert code_of(info) == ("BucketAlreadyOwnedByYou", 409)
    assert "Status" not in client.get_bucket_versioning(Bucket=name)
    grants = client.get_bucket_acl(Bucket=name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_bucket_policy(Bucket=name)
    assert code_of(info) == ("NoSuchBucketPolicy", 404)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_bucket_lifecycle_configuration(Bucket=name)
    assert code_of(info) == ("NoSuchLifecycleConfiguration", 404)
    client.put_object(Bucket=name, Key="k", Body=b"x")
    client.create_multipart_upload(Bucket=name, Key="pending")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.delete_bucket(Bucket=name)
    assert code_of(info) == ("BucketNotEmpty", 409)
    client.delete_object(Bucket=name, Key="k")
    client.delete_bucket(Bucket=name)  # the pending upload does not keep it alive
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.head_bucket(Bucket=name)
    assert code_of(info)[1] == 404
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.list_objects_v2(Bucket=name)
    assert code_of(info) == ("NoSuchBucket", 404)


def test_public_acls_are_refused(client: Any, bucket: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="public-read")
    assert code_of(info) == ("AccessDenied", 403)
    client.put_object(Bucket=bucket, Key="k", Body=b"x", ACL="private")
    client.put_object_acl(Bucket=bucket, Key="k", ACL="private")
    assert client.get_object_acl(Bucket=bucket, Key="k")["Grants"][0]["Permission"] == "FULL_CONTROL"


# -- objects -------------------------------------------------------------------------------


def test_put_get_head_with_metadata_and_overrides(client: Any, bucket: str) -> None:
    body = os.urandom(100_000)
    put = client.put_object(
        Bucket=bucket, Key="dir/ä b+c.bin", Body=body, ContentType="application/x-test",
        Metadata={"Color": "blue"}, CacheControl="no-cache", ContentDisposition="inline",
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = client.get_object(Bucket=bucket, Key="dir/ä b+c.bin")
    assert got["Body"].read() == body
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "no-cache" and got["ContentDisposition"] == "inline"
    assert got["ContentLength"] == len(body)
    head = client.head_object(Bucket=bucket, Key="dir/ä b+c.bin")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]
    assert "StorageClass" not in head
    over = client.get_object(
        Bucket=bucket, Key="dir/ä b+c.bin", ResponseContentType="text/plain",
        ResponseContentDisposition="attachment; filename=x.bin",
    )
    assert over["ContentType"] == "text/plain"
    assert over["ContentDisposition"] == "attachment; filename=x.bin"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_object(Bucket=bucket, Key="missing")
    assert code_of(info) == ("NoSuchKey", 404)
    client.delete_object(Bucket=bucket, Key="dir/ä b+c.bin")
    client.delete_object(Bucket=bucket, Key="dir/ä b+c.bin")  # deleting nothing is fine


def test_ranges(client: Any, bucket: str) -> None:
    body = bytes(range(256)) * 40
    client.put_object(Bucket=bucket, Key="r", Body=body)

    def get(rng: str) -> tuple[bytes, str | None]:
        got = client.get_object(Bucket=bucket, Key="r", Range=rng)
        return got["Body"].read(), got.get("ContentRange")

    assert get("bytes=10-19") == (body[10:20], f"bytes 10-19/{len(body)}")
    assert get("bytes=-5") == (body[-5:], f"bytes {len(body) - 5}-{len(body) - 1}/{len(body)}")
    assert get("bytes=10000-")[0] == body[10000:]
    assert get("bytes=0-999999")[0] == body
    # Malformed or multiple ranges are ignored, as S3 does.
    whole = client.get_object(Bucket=bucket, Key="r", Range="bytes=5-1")
    assert whole["Body"].read() == body and "ContentRange" not in whole
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert code_of(info) == ("InvalidRange", 416)


def test_read_conditions(client: Any, bucket: str) -> None:
    put = client.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    etag = put["ETag"]
    later = datetime.now(UTC) + timedelta(hours=1)
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert client.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    for kwargs, status in [
        ({"IfNoneMatch": etag}, 304),
        ({"IfModifiedSince": later}, 304),
        ({"IfMatch": '"nope"'}, 412),
        ({"IfUnmodifiedSince": earlier}, 412),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.get_object(Bucket=bucket, Key="c", **kwargs)
        assert code_of(info)[1] == status, kwargs
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.head_object(Bucket=bucket, Key="c", **kwargs)
        assert code_of(info)[1] == status, kwargs
    # If-Match wins over a failing If-Unmodified-Since.
    got = client.get_object(Bucket=bucket, Key="c", IfMatch=etag, IfUnmodifiedSince=earlier)
    assert got["Body"].read() == b"conditional"


def test_conditional_writes(client: Any, bucket: str) -> None:
    first = client.put_object(Bucket=bucket, Key="w", Body=b"one", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.put_object(Bucket=bucket, Key="w", Body=b"two", IfNoneMatch="*")
    assert code_of(info) == ("PreconditionFailed", 412)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.put_object(Bucket=bucket, Key="w", Body=b"two", IfMatch='"0123"')
    assert code_of(info) == ("PreconditionFailed", 412)
    client.put_object(Bucket=bucket, Key="w", Body=b"two", IfMatch=first["ETag"])
    assert client.get_object(Bucket=bucket, Key="w")["Body"].read() == b"two"


def test_checksums_and_digests(client: Any, bucket: str) -> None:
    body = b"check me" * 1000
    for algorithm in ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"):
        put = client.put_object(Bucket=bucket, Key=algorithm, Body=body, ChecksumAlgorithm=algorithm)
        assert put[f"Checksum{algorithm}"], algorithm
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert client.put_object(Bucket=bucket, Key="s", Body=body, ChecksumSHA256=sha)["ChecksumSHA256"] == sha
    got = client.get_object(Bucket=bucket, Key="s", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == sha and got["Body"].read() == body
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.put_object(Bucket=bucket, Key="m", Body=body, ContentMD5=bad_md5)
    assert code_of(info) == ("BadDigest", 400)
    bad_sha = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.put_object(Bucket=bucket, Key="m", Body=body, ChecksumSHA256=bad_sha)
    assert code_of(info) == ("BadDigest", 400)
    with pytest.raises(botocore.exceptions.ClientError):
        client.head_object(Bucket=bucket, Key="m")


def test_signed_payload_hash_is_checked_by_the_sealer(s3: S3Server, bucket: str) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = b"the body"
    url = f"{s3.url}/{bucket}/signed"
    creds = Credentials(s3.access_key_id, s3.secret_access_key)
    # botocore signs the hash of the data it is given; send other data of the same length.
    for signed, status, code in [
        (b"THE BODY", 400, "XAmzContentSHA256Mismatch"),
        (body, 200, None),
    ]:
        request = AWSRequest("PUT", url, data=signed)
        S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
        assert request.headers["x-amz-content-sha256"] == hashlib.sha256(signed).hexdigest()
        reply = httpx.put(url, content=body, headers=dict(request.headers.items()))
        assert reply.status_code == status, reply.text
        if code:
            assert f"<Code>{code}</Code>" in reply.text
            assert "<RequestId>" in reply.text and reply.headers["x-amz-request-id"] in reply.text
    assert s3.client().get_object(Bucket=bucket, Key="signed")["Body"].read() == body


def test_sealer_digests_replace_the_readers_hashing() -> None:
    """The body reader of an object hashes nothing the sealer hashes anyway."""
    ctx = AuthContext(
        access_key_id="k", region="us-east-1", service="s3", signing_key=b"k" * 32,
        seed_signature="0" * 64, amz_date="20240101T000000Z", scope="s",
        payload_mode=PayloadMode.SIGNED, declared_sha256="ab" * 32, trailer_names=(),
        decoded_content_length=None, presigned=False, signed_headers=("host",),
        request_time=datetime.now(UTC),
    )
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    reader, digests = object_body_reader(
        io.BytesIO(b"x"), ctx, {"Content-MD5": md5, "x-amz-checksum-crc32": "jNwWgw=="},
        content_length=1,
    )
    assert isinstance(reader, PayloadVerifier)
    assert reader._digests._sha256 is None and reader._digests._md5 is None
    assert digests.sha256 == "ab" * 32 and digests.sha256_is_payload
    assert digests.md5 == hashlib.md5(b"x").hexdigest()
    assert reader.read(10) == b"x" and reader.read(10) == b""
    assert reader.checksums == {"x-amz-checksum-crc32": "jNwWgw=="}


# -- listings ------------------------------------------------------------------------------


def test_listings(client: Any, bucket: str) -> None:
    keys = ["a/1", "a/2", "a/b/3", "b", "c d", "e\x01ctl", "z/9"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    v2 = client.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in v2["Contents"]] == sorted(keys) and v2["KeyCount"] == len(keys)
    top = client.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "z/"]
    assert [o["Key"] for o in top["Contents"]] == ["b", "c d", "e\x01ctl"]
    seen: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket, "MaxKeys": 2, "Delimiter": "/"}
        if token:
            kwargs["ContinuationToken"] = token
        page = client.list_objects_v2(**kwargs)
        seen += [o["Key"] for o in page.get("Contents", [])]
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert sorted(seen) == ["a/", "b", "c d", "e\x01ctl", "z/"]
    after = client.list_objects_v2(Bucket=bucket, StartAfter="b", Prefix="", FetchOwner=True)
    assert after["Contents"][0]["Key"] == "c d" and "Owner" in after["Contents"][0]
    v1 = client.list_objects(Bucket=bucket, Prefix="a/", MaxKeys=2)
    assert [o["Key"] for o in v1["Contents"]] == ["a/1", "a/2"] and v1["IsTruncated"]
    v1b = client.list_objects(Bucket=bucket, Prefix="a/", Marker="a/2")
    assert [o["Key"] for o in v1b["Contents"]] == ["a/b/3"]
    versions = client.list_object_versions(Bucket=bucket, Prefix="a/")
    assert [(v["Key"], v["VersionId"], v["IsLatest"]) for v in versions["Versions"]] == [
        ("a/1", "null", True), ("a/2", "null", True), ("a/b/3", "null", True)]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.list_objects_v2(Bucket=bucket, ContinuationToken="garbage!")
    assert code_of(info) == ("InvalidArgument", 400)


def test_delete_objects(client: Any, bucket: str) -> None:
    for key in ("x1", "x2", "x3"):
        client.put_object(Bucket=bucket, Key=key, Body=b"1")
    result = client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "x1"}, {"Key": "x2"}, {"Key": "gone"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["gone", "x1", "x2"]
    quiet = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "x3"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert "Contents" not in client.list_objects_v2(Bucket=bucket)


# -- copies --------------------------------------------------------------------------------


def test_copy_object(client: Any, bucket: str) -> None:
    put = client.put_object(Bucket=bucket, Key="src", Body=b"source", Metadata={"m": "1"},
                            ContentType="text/plain", ContentDisposition="attachment",
                            CacheControl="no-cache")
    client.copy_object(Bucket=bucket, Key="same-meta", CopySource={"Bucket": bucket, "Key": "src"})
    head = client.head_object(Bucket=bucket, Key="same-meta")
    assert head["Metadata"] == {"m": "1"} and head["ContentType"] == "text/plain"
    assert (head["ContentDisposition"], head["CacheControl"]) == ("attachment", "no-cache")
    assert head["ETag"] == put["ETag"]
    # REPLACE replaces the metadata and the stored headers, dropping those not sent.
    client.copy_object(
        Bucket=bucket, Key="new-meta", CopySource=f"{bucket}/src", MetadataDirective="REPLACE",
        Metadata={"n": "2"}, ContentType="application/json", ContentDisposition="inline",
    )
    head = client.head_object(Bucket=bucket, Key="new-meta")
    assert head["Metadata"] == {"n": "2"} and head["ContentType"] == "application/json"
    assert head["ContentDisposition"] == "inline" and "CacheControl" not in head
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert code_of(info) == ("InvalidRequest", 400)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/src", CopySourceIfMatch='"no"')
    assert code_of(info) == ("PreconditionFailed", 412)
    client.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/src", CopySourceIfMatch=put["ETag"])
    # A storage class change archives the copy; an archived source cannot be copied.
    client.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src", StorageClass="DEEP_ARCHIVE")
    assert client.head_object(Bucket=bucket, Key="src")["StorageClass"] == "DEEP_ARCHIVE"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.copy_object(Bucket=bucket, Key="y", CopySource=f"{bucket}/src")
    assert code_of(info) == ("InvalidObjectState", 403)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.copy_object(Bucket=bucket, Key="y", CopySource=f"{bucket}/missing")
    assert code_of(info) == ("NoSuchKey", 404)


# -- multipart -----------------------------------------------------------------------------


def test_multipart_upload_with_the_low_level_api(client: Any, bucket: str) -> None:
    first, second = os.urandom(5 * MiB), os.urandom(5 * MiB)
    client.put_object(Bucket=bucket, Key="source", Body=b"0123456789" * 100)
    mpu = client.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"k": "v"},
                                         ContentType="video/x-test")
    uid = mpu["UploadId"]
    assert [u["UploadId"] for u in client.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    p1 = client.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=first)
    p2 = client.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=second)
    p3 = client.upload_part_copy(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=3,
                                 CopySource=f"{bucket}/source", CopySourceRange="bytes=5-14")
    parts = client.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, 5 * MiB), (3, 10)]
    p4 = client.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=4, Body=b"unlisted")
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 3, "ETag": p3["CopyPartResult"]["ETag"]},
                                       {"PartNumber": 4, "ETag": p4["ETag"]}]},
        )
    assert code_of(info) == ("EntityTooSmall", 400)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.complete_multipart_upload(
            Bucket=bucket, Key="mp", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]},
        )
    assert code_of(info) == ("InvalidPart", 400)
    done = client.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid,
        MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": p1["ETag"]},
            {"PartNumber": 2, "ETag": p2["ETag"]},
            {"PartNumber": 3, "ETag": p3["CopyPartResult"]["ETag"]},
        ]},
    )
    digests = hashlib.md5(first).digest() + hashlib.md5(second).digest() + hashlib.md5(b"5678901234").digest()
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    got = client.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == first + second + b"5678901234"
    assert got["Metadata"] == {"k": "v"} and got["ContentType"] == "video/x-test"
    part2 = client.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert part2["Body"].read() == second and part2["PartsCount"] == 3
    assert client.head_object(Bucket=bucket, Key="mp", PartNumber=3)["ContentLength"] == 10
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_object(Bucket=bucket, Key="mp", PartNumber=4)
    assert code_of(info) == ("InvalidPartNumber", 416)
    assert "Uploads" not in client.list_multipart_uploads(Bucket=bucket)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert code_of(info) == ("NoSuchUpload", 404)
    aborted = client.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    client.upload_part(Bucket=bucket, Key="ab", UploadId=aborted, PartNumber=1, Body=b"x")
    client.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=aborted)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.upload_part(Bucket=bucket, Key="ab", UploadId=aborted, PartNumber=2, Body=b"x")
    assert code_of(info) == ("NoSuchUpload", 404)


def test_transfer_manager_with_default_checksums(client: Any, bucket: str) -> None:
    from boto3.s3.transfer import TransferConfig

    data = os.urandom(11 * MiB)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    client.upload_fileobj(io.BytesIO(data), bucket, "tm", Config=config)
    assert client.head_object(Bucket=bucket, Key="tm")["ETag"].endswith('-3"')
    out = io.BytesIO()
    client.download_fileobj(bucket, "tm", out, Config=config)
    assert out.getvalue() == data


# -- cold objects --------------------------------------------------------------------------


def test_archived_objects_and_restores(client: Any, bucket: str, s3: S3Server) -> None:
    client.put_object(Bucket=bucket, Key="cold", Body=b"frozen", StorageClass="DEEP_ARCHIVE")
    client.put_object(Bucket=bucket, Key="hot", Body=b"warm")
    head = client.head_object(Bucket=bucket, Key="cold")
    assert head["StorageClass"] == "DEEP_ARCHIVE" and "Restore" not in head
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_object(Bucket=bucket, Key="cold")
    assert code_of(info) == ("InvalidObjectState", 403)
    assert info.value.response["Error"]["StorageClass"] == "DEEP_ARCHIVE"  # type: ignore[typeddict-item]
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert {o["Key"]: o["StorageClass"] for o in listed} == {"cold": "DEEP_ARCHIVE", "hot": "STANDARD"}
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.restore_object(Bucket=bucket, Key="hot", RestoreRequest={"Days": 1})
    assert code_of(info) == ("InvalidObjectState", 403)
    first = client.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 2})
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 202
    head = client.head_object(Bucket=bucket, Key="cold")
    assert head["Restore"].startswith('ongoing-request="false", expiry-date=')
    assert client.get_object(Bucket=bucket, Key="cold")["Body"].read() == b"frozen"
    again = client.restore_object(
        Bucket=bucket, Key="cold", RestoreRequest={"Days": 2, "GlacierJobParameters": {"Tier": "Bulk"}}
    )
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    listed = client.list_objects_v2(Bucket=bucket, OptionalObjectAttributes=["RestoreStatus"])
    status = {o["Key"]: o.get("RestoreStatus") for o in listed["Contents"]}
    assert status["hot"] is None
    assert status["cold"]["IsRestoreInProgress"] is False and status["cold"]["RestoreExpiryDate"]


# -- encryption modes ----------------------------------------------------------------------


def sse_c(key: bytes, prefix: str = "SSECustomer") -> dict[str, str]:
    return {
        f"{prefix}Algorithm": "AES256",
        f"{prefix}Key": base64.b64encode(key).decode(),
        f"{prefix}KeyMD5": base64.b64encode(hashlib.md5(key).digest()).decode(),
    }


def test_sse_c_is_refused_over_plain_http(client: Any, bucket: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.put_object(Bucket=bucket, Key="k", Body=b"x", **sse_c(os.urandom(32)))
    assert code_of(info) == ("InvalidRequest", 400)
    assert "secure connection" in info.value.response["Error"]["Message"]


def test_sse_c_over_tls(s3tls: S3Server) -> None:
    client = s3tls.client()
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    key, other = os.urandom(32), os.urandom(32)
    put = client.put_object(Bucket=bucket, Key="secret", Body=b"for my eyes", **sse_c(key))
    assert put["SSECustomerKeyMD5"] == sse_c(key)["SSECustomerKeyMD5"]
    assert client.get_object(Bucket=bucket, Key="secret", **sse_c(key))["Body"].read() == b"for my eyes"
    assert client.head_object(Bucket=bucket, Key="secret", **sse_c(key))["ContentLength"] == 11
    for kwargs, expected in [({}, 400), (sse_c(other), 403)]:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.get_object(Bucket=bucket, Key="secret", **kwargs)
        assert code_of(info)[1] == expected
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.head_object(Bucket=bucket, Key="secret", **kwargs)
        assert code_of(info)[1] == expected
    bad_md5 = dict(sse_c(key), SSECustomerKeyMD5=base64.b64encode(b"0" * 16).decode())
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.put_object(Bucket=bucket, Key="x", Body=b"x", **bad_md5)
    assert code_of(info) == ("InvalidArgument", 400)
    # Copy an SSE-C object to a managed-key one and to another customer key.
    client.copy_object(Bucket=bucket, Key="plain", CopySource=f"{bucket}/secret",
                       **sse_c(key, "CopySourceSSECustomer"))
    assert client.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"for my eyes"
    client.copy_object(Bucket=bucket, Key="rekeyed", CopySource=f"{bucket}/secret",
                       **sse_c(key, "CopySourceSSECustomer"), **sse_c(other))
    assert client.get_object(Bucket=bucket, Key="rekeyed", **sse_c(other))["Body"].read() == b"for my eyes"
    # Multipart with a customer key: every part carries it.
    uid = client.create_multipart_upload(Bucket=bucket, Key="mp", **sse_c(key))["UploadId"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"p")
    assert code_of(info)[1] == 400
    part = client.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"p", **sse_c(key))
    client.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert client.get_object(Bucket=bucket, Key="mp", **sse_c(key))["Body"].read() == b"p"


def test_vault_bucket_objects_are_sealed_to_their_owner(s3: S3Server, client: Any) -> None:
    from gateway.sealing import generate_identity

    _, recipient = generate_identity()
    principal, _ = s3.gateway.identity.authenticate_access_key(s3.access_key_id)
    name = f"vault-{uuid.uuid4().hex[:8]}"
    s3.gateway.objects.create_bucket(principal, s3.org, name, vault_recipient=recipient)
    client.put_object(Bucket=name, Key="diary", Body=b"dear diary")
    assert client.head_object(Bucket=name, Key="diary")["ContentLength"] == 10
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.get_object(Bucket=name, Key="diary")
    assert code_of(info) == ("AccessDenied", 403)
    assert "sealed to its owner's key" in info.value.response["Error"]["Message"]


# -- presigned URLs ------------------------------------------------------------------------


def test_presigned_urls(client: Any, bucket: str, s3: S3Server) -> None:
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"})
    assert httpx.put(put_url, content=b"presigned body").status_code == 200
    get_url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"})
    reply = httpx.get(get_url)
    assert reply.status_code == 200 and reply.content == b"presigned body"
    expired = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p"}, ExpiresIn=1
    )
    s3.app.clock = lambda: datetime.now(UTC) + timedelta(seconds=30)
    try:
        reply = httpx.get(expired)
    finally:
        s3.app.clock = lambda: datetime.now(UTC)
    assert reply.status_code == 403 and "<Code>AccessDenied</Code>" in reply.text
    assert "PRESIGNED" in s3.modes(method="PUT")


def test_virtual_hosted_style(tmp_path: Path) -> None:
    with s3_gateway(tmp_path, overrides={"s3": {"base_domains": ["s3.localtest"]}}) as server:
        assert isinstance(server.app.settings, S3Config)
        path_client = server.client()
        path_client.create_bucket(Bucket="vhost")
        path_client.put_object(Bucket="vhost", Key="a/b", Body=b"virtual")
        port = server.url.rsplit(":", 1)[1]
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        url = f"http://vhost.s3.localtest:{port}/a/b"
        request = AWSRequest("GET", url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        S3SigV4Auth(Credentials(server.access_key_id, server.secret_access_key), "s3", "us-east-1").add_auth(request)
        headers = dict(request.headers.items(), Host=f"vhost.s3.localtest:{port}")
        reply = httpx.get(f"http://127.0.0.1:{port}/a/b", headers=headers)
        assert reply.status_code == 200 and reply.content == b"virtual", reply.text


def test_restore_answers(client: Any, bucket: str, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from decimal import Decimal

    from gateway.errors import RestoreInProgress
    from gateway.objects import RestoreTicket

    client.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="DEEP_ARCHIVE")
    calls: list[tuple[int, str]] = []

    def started(*args: Any, days: int, tier: str) -> RestoreTicket:
        calls.append((days, tier))
        return RestoreTicket("started", tier, None, Decimal("0.0125"))

    monkeypatch.setattr(s3.gateway.objects, "request_restore", started)
    reply = client.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 5, "Tier": "Bulk"})
    assert reply["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert reply["ResponseMetadata"]["HTTPHeaders"]["x-coolstorage-restore-quote-usd"] == "0.0125"
    client.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 1})
    assert calls == [(5, "Bulk"), (1, "Standard")]

    def ongoing(*args: Any, **kwargs: Any) -> RestoreTicket:
        raise RestoreInProgress("cold")

    monkeypatch.setattr(s3.gateway.objects, "request_restore", ongoing)
    with pytest.raises(botocore.exceptions.ClientError) as info:
        client.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 1})
    assert code_of(info) == ("RestoreAlreadyInProgress", 409)
