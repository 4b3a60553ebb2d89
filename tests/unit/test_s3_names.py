"""Bucket and key names, virtual-hosted vs path-style addressing, Range, header limits."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRange as DomainInvalidRange
from gateway.objects import RangeSpec
from protocols.s3 import errors
from protocols.s3.names import (
    Address,
    bucket_name_problem,
    check_header_sizes,
    parse_address,
    parse_range,
    validate_bucket_name,
    validate_key,
)

GOOD_BUCKETS = ["abc", "my-bucket", "my.bucket.name", "a1b2", "0bucket", "bucket9", "a" * 63, "x-y.z-1"]
BAD_BUCKETS = [
    "ab", "a" * 64, "My-Bucket", "my_bucket", "-bucket", "bucket-", ".bucket", "bucket.", "my..bucket",
    "192.168.5.4", "xn--bucket", "sthree-bucket", "amzn-s3-demo-bucket", "bucket-s3alias", "bucket--ol-s3",
    "bucket.mrap", "bucket--x-s3", "bucket--table-s3", "bücket", "buck et", "", "bucket/x",
]


@pytest.mark.parametrize("name", GOOD_BUCKETS)
def test_good_bucket_names(name: str) -> None:
    assert bucket_name_problem(name) is None
    assert validate_bucket_name(name) == name


@pytest.mark.parametrize("name", BAD_BUCKETS)
def test_bad_bucket_names(name: str) -> None:
    with pytest.raises(errors.InvalidBucketName) as info:
        validate_bucket_name(name)
    assert info.value.status == 400
    assert info.value.message


def test_keys() -> None:
    for key in ["k", " spaced ", "ctl\x01\x1f\x7f", "a" * 1024, "é" * 512, "/leading", "dir/", "😀" * 256]:
        assert validate_key(key) == key
    with pytest.raises(errors.KeyTooLongError):
        validate_key("a" * 1025)
    with pytest.raises(errors.KeyTooLongError):
        validate_key("é" * 513)
    with pytest.raises(errors.InvalidArgument):
        validate_key("nul\x00byte")
    with pytest.raises(errors.InvalidArgument):
        validate_key("")
    with pytest.raises(errors.InvalidURI):
        validate_key("lone\udc80surrogate")


@pytest.mark.parametrize(
    ("path", "host", "expected"),
    [
        ("/", "s3.localhost:9000", Address(None, None, False)),
        ("", "127.0.0.1:9000", Address(None, None, False)),
        ("/bucket", "s3.localhost", Address("bucket", None, False)),
        ("/bucket/", "s3.localhost", Address("bucket", None, False)),
        ("/bucket/key", "127.0.0.1:9000", Address("bucket", "key", False)),
        ("/bucket/a%20b+c/d%2Fe", "s3.localhost", Address("bucket", "a b+c/d/e", False)),
        ("/bucket//double", "s3.localhost", Address("bucket", "/double", False)),
        ("/bucket/%C3%BC%E6%97%A5", None, Address("bucket", "ü日", False)),
        ("/bucket/ctl%01%7F", "s3.localhost", Address("bucket", "ctl\x01\x7f", False)),
        ("/", "bucket.s3.localhost:9000", Address("bucket", None, True)),
        ("/key/with/slashes", "my.dotted.bucket.s3.localhost", Address("my.dotted.bucket", "key/with/slashes", True)),
        ("/k", "BUCKET.S3.LOCALHOST.", Address("bucket", "k", True)),
        ("/bkt/k", "other.example.com", Address("bkt", "k", False)),
        ("/bkt/k", "[::1]:9000", Address("bkt", "k", False)),
    ],
)
def test_addressing(path: str, host: str | None, expected: Address) -> None:
    assert parse_address(path, host, ["s3.localhost"]) == expected


def test_addressing_errors() -> None:
    with pytest.raises(errors.InvalidURI):
        parse_address("/bucket/%FF%FE", "s3.localhost", ["s3.localhost"])
    with pytest.raises(errors.InvalidBucketName):
        parse_address("/Bad_Bucket/k", "s3.localhost", ["s3.localhost"])
    with pytest.raises(errors.InvalidBucketName):
        parse_address("/k", "Bad_Bucket.s3.localhost", ["s3.localhost"])
    with pytest.raises(errors.KeyTooLongError):
        parse_address("/bucket/" + "a" * 1025, "s3.localhost", ["s3.localhost"])
    with pytest.raises(errors.InvalidArgument):
        parse_address("/bucket/a%00b", "s3.localhost", ["s3.localhost"])
    with pytest.raises(errors.InvalidURI):
        parse_address("relative", "s3.localhost", ["s3.localhost"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", RangeSpec(0, 9)),
        ("bytes=10-", RangeSpec(10, None)),
        ("bytes=-5", RangeSpec(None, 5)),
        ("bytes=-0", RangeSpec(None, 0)),
        ("Bytes = 1 - 2", RangeSpec(1, 2)),
        ("bytes=0-0", RangeSpec(0, 0)),
        # Ignored, the whole object is served:
        ("bytes=0-1,4-5", None),
        ("bytes=5-2", None),
        ("bytes=-", None),
        ("bytes=a-b", None),
        ("items=0-1", None),
        ("bytes 0-1", None),
        ("bytes=0-1-2", None),
        ("bytes=" + "9" * 30 + "-", None),
        ("bytes=٣-٤", None),
        ("", None),
    ],
)
def test_parse_range(header: str | None, expected: RangeSpec | None) -> None:
    assert parse_range(header) == expected


def test_range_resolution_as_s3() -> None:
    size = 100
    assert parse_range("bytes=0-9").resolve(size) == (0, 10)  # type: ignore[union-attr]
    assert parse_range("bytes=90-200").resolve(size) == (90, 100)  # type: ignore[union-attr]
    assert parse_range("bytes=-10").resolve(size) == (90, 100)  # type: ignore[union-attr]
    assert parse_range("bytes=-1000").resolve(size) == (0, 100)  # type: ignore[union-attr]
    for unsatisfiable in ("bytes=100-", "bytes=100-200", "bytes=-0"):
        spec = parse_range(unsatisfiable)
        assert spec is not None
        with pytest.raises(DomainInvalidRange):
            spec.resolve(size)


def test_header_limits() -> None:
    check_header_sizes({"x-amz-meta-a": "b" * 2000, "Host": "h"})
    with pytest.raises(errors.MetadataTooLarge):
        check_header_sizes({"x-amz-meta-a": "b" * 2048})
    with pytest.raises(errors.MetadataTooLarge):
        check_header_sizes({f"x-amz-meta-k{i}": "v" * 100 for i in range(20)})
    with pytest.raises(errors.RequestHeaderSectionTooLarge):
        check_header_sizes({f"x-other-{i}": "v" * 100 for i in range(100)})
    check_header_sizes({f"x-other-{i}": "v" * 100 for i in range(100)}, max_section=64 << 10)
