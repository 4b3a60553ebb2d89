"""aws-chunked decoding, chunk and trailer signatures, payload and checksum verification."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.config import Config

from protocols.s3 import checksums, errors
from protocols.s3.checksums import ChecksumRequest, requested_checksum
from protocols.s3.chunked import (
    AwsChunkedReader,
    PayloadVerifier,
    body_reader,
    strip_aws_chunked,
)
from protocols.s3.sigv4 import (
    AuthContext,
    chunk_string_to_sign,
    sign,
    trailer_string_to_sign,
    verify_request,
)

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DOC_TIME = datetime(2013, 5, 24, tzinfo=UTC)
DOC_DATA = b"a" * 66560


def lookup(akid: str) -> str | None:
    return SECRET if akid == AKID else None


def read_all(reader: Any, size: int) -> bytes:
    out = []
    while chunk := reader.read(size):
        out.append(chunk)
    return b"".join(out)


def read_counting(reader: Any, size: int) -> tuple[int, BaseException | None]:
    """Read until EOF or an error; the bytes delivered and the error."""
    n = 0
    try:
        while chunk := reader.read(size):
            n += len(chunk)
    except errors.S3Error as exc:
        return n, exc
    return n, None


# --- AWS documentation vectors --------------------------------------------------------------

SIGNED_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SIGNED_CHUNKS = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)
TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
TRAILER_CHUNKS = (
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
)
TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


def doc_context(trailer: bool) -> AuthContext:
    signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class"
    headers = {
        "Host": "s3.amazonaws.com",
        "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560",
        "Content-Length": "66824",
    }
    seed = SIGNED_SEED
    if trailer:
        signed = "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer"
        headers["x-amz-content-sha256"] += "-TRAILER"
        headers["x-amz-trailer"] = "x-amz-checksum-crc32c"
        seed = TRAILER_SEED
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={seed}"
    )
    return verify_request("PUT", "/examplebucket/chunkObject.txt", "", headers, lookup, DOC_TIME)


def doc_body(sigs: tuple[str, str, str], trailer: bytes = b"") -> bytes:
    return (
        f"10000;chunk-signature={sigs[0]}\r\n".encode() + DOC_DATA[:65536]
        + f"\r\n400;chunk-signature={sigs[1]}\r\n".encode() + DOC_DATA[65536:]
        + f"\r\n0;chunk-signature={sigs[2]}\r\n".encode() + trailer + b"\r\n"
    )


DOC_TRAILER = b"x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:" + TRAILER_SIGNATURE.encode() + b"\r\n"


@pytest.mark.parametrize("size", [1, 7, 4096, 65536, 70000, -1])
def test_doc_signed_chunks(size: int) -> None:
    ctx = doc_context(trailer=False)
    assert ctx.seed_signature == SIGNED_SEED
    body = doc_body(SIGNED_CHUNKS)
    assert len(body) == 66824
    reader = AwsChunkedReader(io.BytesIO(body), ctx, content_length=len(body))
    assert (reader.read(-1) if size == -1 else read_all(reader, size)) == DOC_DATA
    assert reader.finished
    assert reader.read(10) == b""


def test_doc_chunk_string_to_sign() -> None:
    ctx = doc_context(trailer=False)
    sts = chunk_string_to_sign(ctx, SIGNED_SEED, hashlib.sha256(DOC_DATA[:65536]).hexdigest())
    assert sts == (
        "AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
        f"{SIGNED_SEED}\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "bf718b6f653bebc184e1479f1935b8da974d701b893afcf49e701f3e2f9f9c5a"
    )
    assert sign(ctx.signing_key, sts) == SIGNED_CHUNKS[0]


@pytest.mark.parametrize("size", [1, 1000, 65536, -1])
def test_doc_signed_trailer(size: int) -> None:
    ctx = doc_context(trailer=True)
    assert ctx.trailer_names == ("x-amz-checksum-crc32c",)
    body = doc_body(TRAILER_CHUNKS, DOC_TRAILER)
    reader = AwsChunkedReader(io.BytesIO(body), ctx, checksum="CRC32C", content_length=len(body))
    assert (reader.read(-1) if size == -1 else read_all(reader, size)) == DOC_DATA
    assert reader.trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    assert reader.checksums == {"x-amz-checksum-crc32c": "sOO8/Q=="}
    canonical = b"x-amz-checksum-crc32c:sOO8/Q==\n"
    sts = trailer_string_to_sign(ctx, TRAILER_CHUNKS[2], hashlib.sha256(canonical).hexdigest())
    assert sign(ctx.signing_key, sts) == TRAILER_SIGNATURE


def test_doc_signed_trailer_variants_accepted() -> None:
    ctx = doc_context(trailer=True)
    # A blank line before the trailer, LF line ends, no final CRLF: all seen in the wild.
    for trailer in (
        b"\r\n" + DOC_TRAILER,
        DOC_TRAILER.replace(b"\r\n", b"\n"),
    ):
        body = doc_body(TRAILER_CHUNKS, trailer)
        assert AwsChunkedReader(io.BytesIO(body), ctx, checksum="CRC32C").read() == DOC_DATA
    body = doc_body(TRAILER_CHUNKS, DOC_TRAILER)[:-2]
    assert AwsChunkedReader(io.BytesIO(body), ctx, checksum="CRC32C").read() == DOC_DATA


def _tamper(body: bytes, index: int) -> bytes:
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1:]


@pytest.mark.parametrize(
    "where",
    ["first data byte", "last data byte of chunk 2", "chunk 1 signature", "final chunk signature",
     "chunk size"],
)
def test_tampered_signed_chunks(where: str) -> None:
    ctx = doc_context(trailer=False)
    body = doc_body(SIGNED_CHUNKS)
    index = {
        "first data byte": body.index(b"\r\n") + 2,
        "last data byte of chunk 2": body.index(b"\r\n0;") - 1,
        "chunk 1 signature": body.index(SIGNED_CHUNKS[0].encode()) + 10,
        "final chunk signature": body.index(SIGNED_CHUNKS[2].encode()) + 63,
        "chunk size": body.index(b"400;"),
    }[where]
    bad = _tamper(body, index)
    delivered, exc = read_counting(AwsChunkedReader(io.BytesIO(bad), ctx, content_length=len(bad)), 4096)
    assert isinstance(exc, (errors.SignatureDoesNotMatch, errors.IncompleteBody, errors.InvalidRequest)), exc
    if where != "chunk size":
        assert isinstance(exc, errors.SignatureDoesNotMatch)
    assert delivered < len(DOC_DATA), "the error comes before the last byte is released"


def test_reordered_chunks_fail() -> None:
    ctx = doc_context(trailer=False)
    sigs = (SIGNED_CHUNKS[1], SIGNED_CHUNKS[0], SIGNED_CHUNKS[2])
    with pytest.raises(errors.SignatureDoesNotMatch):
        AwsChunkedReader(io.BytesIO(doc_body(sigs)), ctx).read()


@pytest.mark.parametrize("where", ["checksum value", "trailer signature", "trailer name"])
def test_tampered_signed_trailer(where: str) -> None:
    ctx = doc_context(trailer=True)
    body = doc_body(TRAILER_CHUNKS, DOC_TRAILER)
    index = {
        "checksum value": body.index(b"sOO8"),
        "trailer signature": body.index(TRAILER_SIGNATURE.encode()) + 3,
        "trailer name": body.index(b"x-amz-checksum-crc32c") + 3,
    }[where]
    delivered, exc = read_counting(AwsChunkedReader(io.BytesIO(_tamper(body, index)), ctx, checksum="CRC32C"), 8192)
    assert isinstance(exc, errors.SignatureDoesNotMatch)
    assert delivered < len(DOC_DATA)


def test_signed_trailer_without_signature() -> None:
    ctx = doc_context(trailer=True)
    body = doc_body(TRAILER_CHUNKS, b"x-amz-checksum-crc32c:sOO8/Q==\r\n")
    with pytest.raises(errors.SignatureDoesNotMatch):
        AwsChunkedReader(io.BytesIO(body), ctx, checksum="CRC32C").read()


def test_truncated_and_wrong_lengths() -> None:
    ctx = doc_context(trailer=False)
    body = doc_body(SIGNED_CHUNKS)
    for cut in (10, 100, 65600, len(body) - 80):
        with pytest.raises(errors.IncompleteBody):
            AwsChunkedReader(io.BytesIO(body[:cut]), ctx, content_length=len(body)).read()
    with pytest.raises(errors.IncompleteBody):
        AwsChunkedReader(io.BytesIO(body), ctx, decoded_length=66559).read()
    with pytest.raises(errors.IncompleteBody):
        AwsChunkedReader(io.BytesIO(body), ctx, decoded_length=66561).read()


def test_hostile_framing() -> None:
    ctx = doc_context(trailer=False)
    with pytest.raises(errors.InvalidRequest):
        AwsChunkedReader(io.BytesIO(b"1" * 10000), ctx).read(10)
    with pytest.raises(errors.InvalidRequest):
        AwsChunkedReader(io.BytesIO(b"zz;chunk-signature=" + b"0" * 64 + b"\r\n"), ctx).read(10)
    with pytest.raises(errors.InvalidRequest):
        AwsChunkedReader(io.BytesIO(b"10\r\n" + b"x" * 16 + b"\r\n"), ctx).read(10)  # no signature
    huge = b"ffffffff;chunk-signature=" + b"0" * 64 + b"\r\n"
    with pytest.raises(errors.IncompleteBody):  # longer than the declared decoded length
        AwsChunkedReader(io.BytesIO(huge), ctx).read(10)
    with pytest.raises(errors.InvalidRequest):  # over the chunk limit
        AwsChunkedReader(io.BytesIO(huge), ctx, decoded_length=1 << 40).read(10)
    body = doc_body(SIGNED_CHUNKS) + b"garbage"
    with pytest.raises(errors.InvalidRequest):
        AwsChunkedReader(io.BytesIO(body), ctx, content_length=len(body)).read()


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.max_ask = 0

    def read(self, size: int | None = -1) -> bytes:
        assert size is not None and size >= 0, "never an unbounded read"
        self.max_ask = max(self.max_ask, size)
        return super().read(size)


def test_reader_never_reads_past_content_length() -> None:
    ctx = doc_context(trailer=False)
    body = doc_body(SIGNED_CHUNKS)
    raw = CountingStream(body + b"NEXT REQUEST")
    assert AwsChunkedReader(raw, ctx, content_length=len(body)).read(1 << 20) is not None
    assert raw.tell() <= len(body)
    raw = CountingStream(b"hello worldNEXT")
    v = PayloadVerifier(raw, content_length=11)
    assert read_all(v, 4) == b"hello world"
    assert raw.tell() == 11


# --- our own encoder (signed chunks), checked against the doc vector ------------------------


def encode_signed(ctx: AuthContext, data: bytes, sizes: Iterator[int], trailer: dict[str, str] | None = None) -> bytes:
    out = []
    prev = ctx.seed_signature
    pos = 0
    while True:
        n = min(next(sizes), len(data) - pos)
        chunk = data[pos:pos + n]
        pos += n
        prev = sign(ctx.signing_key, chunk_string_to_sign(ctx, prev, hashlib.sha256(chunk).hexdigest()))
        out.append(f"{n:x};chunk-signature={prev}\r\n".encode() + chunk + (b"\r\n" if n else b""))
        if n == 0:
            break
    if trailer is None:
        out.append(b"\r\n")
    else:
        lines = "".join(f"{k}:{v}\n" for k, v in trailer.items())
        tsig = sign(ctx.signing_key, trailer_string_to_sign(ctx, prev, hashlib.sha256(lines.encode()).hexdigest()))
        out.append("".join(f"{k}:{v}\r\n" for k, v in trailer.items()).encode())
        out.append(f"x-amz-trailer-signature:{tsig}\r\n\r\n".encode())
    return b"".join(out)


def test_own_encoder_reproduces_doc_vectors() -> None:
    ctx = doc_context(trailer=False)
    assert encode_signed(ctx, DOC_DATA, iter([65536, 1024, 0])) == doc_body(SIGNED_CHUNKS)
    ctx = doc_context(trailer=True)
    assert encode_signed(ctx, DOC_DATA, iter([65536, 1024, 0]), {"x-amz-checksum-crc32c": "sOO8/Q=="}) == \
        doc_body(TRAILER_CHUNKS, DOC_TRAILER)


def botocore_streaming_context(payload: str, decoded: int, extra: dict[str, str]) -> AuthContext:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    class Signer(S3SigV4Auth):
        def payload(self, request: Any) -> str:
            return payload

    headers = {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(decoded), **extra}
    req = AWSRequest(method="PUT", url="http://s3.localhost/b/k", headers=headers)
    req.headers["Host"] = "s3.localhost"
    Signer(Credentials(AKID, SECRET), "s3", "us-east-1").add_auth(req)
    return verify_request("PUT", "/b/k", "", {k: str(v) for k, v in req.headers.items()}, lookup,
                          datetime.now(UTC))


def test_random_signed_chunks_with_checksum_header() -> None:
    rng = random.Random(7)
    data = rng.randbytes(300_001)
    crc = base64.b64encode(checksums_digest("CRC64NVME", data)).decode()
    ctx = botocore_streaming_context("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", len(data),
                                     {"x-amz-checksum-crc64nvme": crc})
    body = encode_signed(ctx, data, iter(lambda: rng.choice([1, 8192, 65536, 100_000]), None))
    headers = {"x-amz-checksum-crc64nvme": crc, "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()}
    reader = body_reader(io.BytesIO(body), ctx, headers, content_length=len(body))
    assert isinstance(reader, AwsChunkedReader)
    assert read_all(reader, 50_000) == data
    assert reader.checksums == {"x-amz-checksum-crc64nvme": crc}
    headers["x-amz-checksum-crc64nvme"] = base64.b64encode(b"\0" * 8).decode()
    delivered, exc = read_counting(body_reader(io.BytesIO(body), ctx, headers, content_length=len(body)), 50_000)
    assert isinstance(exc, errors.BadDigest) and delivered < len(data)


def test_signed_trailer_with_own_encoder_all_algorithms() -> None:
    data = b"The quick brown fox jumps over the lazy dog" * 999
    for algo in checksums.ALGORITHMS:
        name = checksums.header_name(algo)
        ctx = botocore_streaming_context("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", len(data),
                                         {"x-amz-trailer": name})
        value = base64.b64encode(checksums_digest(algo, data)).decode()
        body = encode_signed(ctx, data, iter(lambda: 10_000, None), {name: value})
        reader = body_reader(io.BytesIO(body), ctx, {"x-amz-trailer": name}, content_length=len(body))
        assert reader.read() == data
        assert reader.checksums == {name: value}
        wrong = base64.b64encode(bytes(checksums.DIGEST_SIZES[algo])).decode()
        bad = encode_signed(ctx, data, iter(lambda: 10_000, None), {name: wrong})
        with pytest.raises(errors.BadDigest):
            body_reader(io.BytesIO(bad), ctx, {"x-amz-trailer": name}, content_length=len(bad)).read()


# --- botocore's own aws-chunked bodies (STREAMING-UNSIGNED-PAYLOAD-TRAILER) -----------------


class _EmptyRaw:
    def stream(self, **_kw: Any) -> Iterator[bytes]:
        yield b""


def botocore_put(body: bytes, **params: Any) -> tuple[dict[str, str], bytes, str]:
    """What botocore sends for PutObject over HTTPS (captured before it is sent)."""
    captured: dict[str, Any] = {}

    def before_send(request: Any, **_kw: Any) -> AWSResponse:
        raw = request.body
        captured["body"] = raw.read() if hasattr(raw, "read") else raw
        captured["headers"] = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        captured["url"] = request.url
        return AWSResponse(request.url, 200, HTTPHeaders(), _EmptyRaw())

    session = botocore.session.get_session()
    client: Any = session.create_client(
        "s3", endpoint_url="https://s3.localhost", region_name="us-east-1",
        aws_access_key_id=AKID, aws_secret_access_key=SECRET,
        config=Config(s3={"addressing_style": "path"}),
    )
    client.meta.events.register("before-send", before_send)
    client.put_object(Bucket="bucket", Key="dir/a key+1", Body=body, **params)
    return captured["headers"], captured["body"], captured["url"]


@pytest.mark.parametrize("algorithm", [None, "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"])
def test_botocore_unsigned_trailer(algorithm: str | None) -> None:
    data = bytes(range(256)) * 5000
    params = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    headers, body, url = botocore_put(data, **params)
    assert headers["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    path = url.split("s3.localhost", 1)[1]
    ctx = verify_request("PUT", path, "", headers, lookup, datetime.now(UTC))
    reader = body_reader(io.BytesIO(body), ctx, headers, content_length=None)
    assert read_all(reader, 65536) == data
    algo = algorithm or "CRC32"  # botocore's default
    expected = base64.b64encode(checksums_digest(algo, data)).decode()
    assert reader.checksums == {checksums.header_name(algo): expected}
    # One flipped data byte: the trailing checksum catches it, before the last bytes.
    bad = _tamper(body, len(body) // 2)
    delivered, exc = read_counting(body_reader(io.BytesIO(bad), ctx, headers, content_length=None), 65536)
    assert isinstance(exc, errors.BadDigest), exc
    assert delivered < len(data)
    # A flipped trailer value: BadDigest or an invalid checksum value.
    at = body.rindex(b":") + 2
    bad = _tamper(body, at)
    delivered, exc = read_counting(body_reader(io.BytesIO(bad), ctx, headers, content_length=None), 65536)
    assert isinstance(exc, (errors.BadDigest, errors.InvalidRequest)), exc


def test_unsigned_trailer_missing_or_undeclared_trailer() -> None:
    headers, body, url = botocore_put(b"x" * 100, ChecksumAlgorithm="CRC32")
    ctx = verify_request("PUT", url.split("s3.localhost", 1)[1], "", headers, lookup, datetime.now(UTC))
    no_trailer = body[: body.index(b"0\r\n") + 3] + b"\r\n"
    with pytest.raises(errors.IncompleteBody):
        body_reader(io.BytesIO(no_trailer), ctx, headers, content_length=None).read()
    other = body.replace(b"x-amz-checksum-crc32:", b"x-amz-checksum-sha1:")
    with pytest.raises(errors.InvalidRequest):
        body_reader(io.BytesIO(other), ctx, headers, content_length=None).read()


# --- plain bodies ---------------------------------------------------------------------------


def checksums_digest(algo: str, data: bytes) -> bytes:
    """Reference digests, independent of awscrt where the stdlib has one."""
    if algo == "CRC32":
        return zlib.crc32(data).to_bytes(4, "big")
    if algo == "SHA1":
        return hashlib.sha1(data).digest()
    if algo == "SHA256":
        return hashlib.sha256(data).digest()
    h = checksums.new(algo)
    h.update(data)
    return h.digest()


def test_checksum_known_values() -> None:
    # The "123456789" check values of each CRC.
    for algo, value in (("CRC32", 0xCBF43926), ("CRC32C", 0xE3069283), ("CRC64NVME", 0xAE8B14860A799888)):
        h = checksums.new(algo)
        h.update(b"1234")
        h.update(memoryview(b"56789"))
        assert int.from_bytes(h.digest(), "big") == value


def test_payload_verifier_signed_sha256() -> None:
    data = b"payload " * 10000
    good = hashlib.sha256(data).hexdigest()
    v = PayloadVerifier(io.BytesIO(data), content_length=len(data), declared_sha256=good)
    assert read_all(v, 1000) == data
    assert v.sha256_hex == good
    bad = _tamper(data, 5)
    delivered, exc = read_counting(PayloadVerifier(io.BytesIO(bad), content_length=len(bad), declared_sha256=good), 1000)
    assert isinstance(exc, errors.XAmzContentSHA256Mismatch)
    assert delivered < len(data), "the mismatch is raised instead of delivering the last bytes"


def test_payload_verifier_unknown_length_checks_at_eof() -> None:
    data = b"abc" * 1000
    v = PayloadVerifier(io.BytesIO(data), content_length=None, declared_sha256=hashlib.sha256(b"x").hexdigest())
    with pytest.raises(errors.XAmzContentSHA256Mismatch):
        read_all(v, 100)


def test_payload_verifier_content_md5() -> None:
    data = b"hello"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    assert PayloadVerifier(io.BytesIO(data), content_length=5, content_md5=md5).read() == data
    with pytest.raises(errors.BadDigest):
        PayloadVerifier(io.BytesIO(b"hellp"), content_length=5, content_md5=md5).read()
    for bad in ("nope", base64.b64encode(b"short").decode(), "!!!!"):
        with pytest.raises(errors.InvalidDigest):
            PayloadVerifier(io.BytesIO(data), content_length=5, content_md5=bad)


@pytest.mark.parametrize("algo", checksums.ALGORITHMS)
def test_payload_verifier_checksum_headers(algo: str) -> None:
    data = bytes(range(256)) * 300
    name = checksums.header_name(algo)
    value = base64.b64encode(checksums_digest(algo, data)).decode()
    req = requested_checksum({name: value})
    assert req == ChecksumRequest(algo, base64.b64decode(value))
    v = PayloadVerifier(io.BytesIO(data), content_length=len(data), checksum=req)
    assert read_all(v, 7777) == data
    assert v.checksums == {name: value}
    with pytest.raises(errors.BadDigest):
        PayloadVerifier(io.BytesIO(_tamper(data, 0)), content_length=len(data), checksum=req).read()
    with pytest.raises(errors.InvalidRequest) as info:
        requested_checksum({name: "AAAA" + value})
    assert info.value.message == f"Value for {name} header is invalid."


def test_requested_checksum_rules() -> None:
    assert requested_checksum({}) is None
    assert requested_checksum({"x-amz-sdk-checksum-algorithm": "crc32c"}) == ChecksumRequest("CRC32C")
    assert requested_checksum({"x-amz-trailer": "x-amz-checksum-sha256"}) == ChecksumRequest("SHA256", None, in_trailer=True)
    with pytest.raises(errors.InvalidRequest):
        requested_checksum({"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "A" * 28})
    with pytest.raises(errors.InvalidRequest):
        requested_checksum({"x-amz-sdk-checksum-algorithm": "MD5"})
    with pytest.raises(errors.InvalidRequest):
        requested_checksum({"x-amz-sdk-checksum-algorithm": "SHA1", "x-amz-checksum-crc32": "AAAAAA=="})
    with pytest.raises(errors.InvalidRequest):
        requested_checksum({"x-amz-checksum-md5": "AAAAAA=="})
    with pytest.raises(errors.InvalidRequest):
        requested_checksum({"x-amz-trailer": "x-amz-meta-foo"})
    # x-amz-checksum-type / -mode / -algorithm are not values.
    assert requested_checksum({"x-amz-checksum-mode": "ENABLED"}) is None


def test_payload_verifier_lengths() -> None:
    with pytest.raises(errors.IncompleteBody):
        PayloadVerifier(io.BytesIO(b"abc"), content_length=10).read()
    with pytest.raises(errors.EntityTooLarge):
        PayloadVerifier(io.BytesIO(b"abc"), content_length=10, max_length=5)
    with pytest.raises(errors.EntityTooLarge):
        read_all(PayloadVerifier(io.BytesIO(b"x" * 100), content_length=None, max_length=50), 10)
    empty = PayloadVerifier(io.BytesIO(b""), content_length=0, declared_sha256=hashlib.sha256(b"").hexdigest())
    assert empty.read(10) == b""
    assert empty.finished


class Broken(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise ConnectionResetError("peer went away")


def test_connection_errors_are_incomplete_body() -> None:
    with pytest.raises(errors.IncompleteBody):
        PayloadVerifier(Broken(), content_length=10).read(5)  # type: ignore[arg-type]


def test_strip_aws_chunked() -> None:
    assert strip_aws_chunked("aws-chunked") is None
    assert strip_aws_chunked("aws-chunked, gzip") == "gzip"
    assert strip_aws_chunked("gzip") == "gzip"
    assert strip_aws_chunked(None) is None
