"""Real S3 clients against a gateway the tests start, over plain HTTP and over HTTPS.

The aws CLI, rclone, restic, s3cmd, curl (presigned URLs) and boto3 each run against an
in-process gateway (tests/fixtures/s3gateway.py) that records every request it
authenticated, so each test asserts the payload modes (``x-amz-content-sha256``) and
checksums its client really used; tests/interop/README.md tabulates them. Over HTTPS the
clients trust the test CA through their own option (``AWS_CA_BUNDLE``, ``--ca-cert``,
``--cacert``, ``ca_certs_file``).

A missing client fails with the command that installs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import shutil
import ssl
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.s3gateway import S3Server, s3_gateway
from tests.fixtures.tls import TLSFiles
from tests.integration.test_s3_protocol import sign

MiB = 1 << 20
SIGNED = "SIGNED-PAYLOAD-HASH"
UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
PRESIGNED = "PRESIGNED"


def tool(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: install it: {install}", pytrace=False)
    return path


def aws_cli() -> str:
    path = Path(sys.executable).parent / "aws"
    if not path.exists():
        pytest.fail(f"{path} not found: install it: {sys.executable} -m pip install awscli", pytrace=False)
    return str(path)


@pytest.fixture(scope="module", params=["http", "https"])
def s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    tls: TLSFiles | None = request.getfixturevalue("tls_ca") if request.param == "https" else None
    with s3_gateway(tmp_path_factory.mktemp(f"interop-{request.param}"), tls=tls, threads=16) as server:
        yield server


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "64mib.bin"
    with path.open("wb") as handle:
        for _ in range(64):
            handle.write(os.urandom(MiB))
    return path


def make_tree(root: Path, *, small: int, large: tuple[int, ...] = ()) -> Path:
    """A tree of ``small`` small files in nested folders and some large files."""
    for i in range(small):
        folder = root / f"d{i % 7}" / f"e{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file {i}.txt").write_bytes(os.urandom(i * 37 % 3000))
    for i, size in enumerate(large):
        (root / f"large-{i}.bin").write_bytes(os.urandom(size))
    (root / "empty").mkdir(exist_ok=True)
    (root / "empty" / "zero").write_bytes(b"")
    return root


def run(cmd: list[str], env: Mapping[str, str], *, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def diff(a: Path, b: Path) -> None:
    result = subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def uploads_modes(s3: S3Server) -> set[str]:
    """Payload modes of the requests that carried object data."""
    return {s.mode for s in s3.seen if s.action in ("put_object", "upload_part")}


def modes_by_action(s3: S3Server) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for s in s3.seen:
        if s.action in ("put_object", "upload_part"):
            found.setdefault(s.action, set()).add(s.mode)
    return found


def uploads_checksums(s3: S3Server) -> set[str]:
    found: set[str] = set()
    for s in s3.seen:
        if s.action in ("put_object", "upload_part"):
            found.update(h for h in s.checksum_headers if h != "x-amz-checksum-mode")
            found.update(t.strip() for t in s.trailer.split(",") if t.strip())
    return found


def new_bucket() -> str:
    return f"i-{uuid.uuid4().hex[:12]}"


# -- aws CLI -------------------------------------------------------------------------------


def test_aws_cli(s3: S3Server, big_file: Path, tmp_path: Path) -> None:
    aws = [aws_cli(), "--endpoint-url", s3.url]
    env = s3.env()
    bucket = new_bucket()
    s3.clear()
    run([*aws, "s3", "mb", f"s3://{bucket}"], env)
    run([*aws, "s3", "cp", str(big_file), f"s3://{bucket}/big/64mib.bin"], env)
    parts = [s for s in s3.seen if s.action == "upload_part"]
    assert len(parts) >= 8  # 64 MiB in 8 MiB parts: multipart
    tree = make_tree(tmp_path / "tree", small=40)
    run([*aws, "s3", "sync", str(tree), f"s3://{bucket}/tree/"], env)
    listing = run([*aws, "s3", "ls", "--recursive", f"s3://{bucket}/"], env).stdout
    assert "big/64mib.bin" in listing and "tree/d0/e0/file 0.txt" in listing
    assert str(64 * MiB) in listing
    back = tmp_path / "back"
    run([*aws, "s3", "cp", f"s3://{bucket}/big/64mib.bin", str(back / "64mib.bin")], env)
    run([*aws, "s3", "sync", f"s3://{bucket}/tree/", str(back / "tree")], env)
    assert (back / "64mib.bin").read_bytes() == big_file.read_bytes()
    diff(tree, back / "tree")
    # An archived object: HEAD shows the class, restore-object starts a restore.
    run([*aws, "s3", "cp", str(tree / "d1" / "e1" / "file 1.txt"), f"s3://{bucket}/cold.txt", "--storage-class", "DEEP_ARCHIVE"], env)
    head = run([*aws, "s3api", "head-object", "--bucket", bucket, "--key", "cold.txt"], env).stdout
    assert '"StorageClass": "DEEP_ARCHIVE"' in head and "Restore" not in head
    failed = subprocess.run([*aws, "s3", "cp", "--force-glacier-transfer", f"s3://{bucket}/cold.txt", str(tmp_path / "cold")],
                            env=env, capture_output=True, text=True, check=False)
    assert failed.returncode != 0 and "InvalidObjectState" in failed.stderr
    run([*aws, "s3api", "restore-object", "--bucket", bucket, "--key", "cold.txt", "--restore-request", '{"Days": 1, "GlacierJobParameters": {"Tier": "Standard"}}'], env)
    head = run([*aws, "s3api", "head-object", "--bucket", bucket, "--key", "cold.txt"], env).stdout
    assert 'ongoing-request=\\"false\\", expiry-date=' in head
    run([*aws, "s3", "rm", "--recursive", f"s3://{bucket}/"], env)
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket)
    run([*aws, "s3", "rb", f"s3://{bucket}"], env)
    modes = uploads_modes(s3)
    assert modes == ({SIGNED} if s3.ca_file is None else {STREAMING_UNSIGNED_TRAILER}), modes
    assert "x-amz-checksum-crc32" in uploads_checksums(s3)


# -- rclone --------------------------------------------------------------------------------


def test_rclone(s3: S3Server, tmp_path: Path) -> None:
    rclone = tool("rclone", "apt-get install rclone")
    env = s3.env()
    env.pop("AWS_CA_BUNDLE", None)  # rclone's SDK cannot load it next to its own transport
    env.update({
        "RCLONE_CONFIG": str(tmp_path / "rclone.conf"),
        "RCLONE_CONFIG_GW_TYPE": "s3",
        "RCLONE_CONFIG_GW_PROVIDER": "Other",
        "RCLONE_CONFIG_GW_ACCESS_KEY_ID": s3.access_key_id,
        "RCLONE_CONFIG_GW_SECRET_ACCESS_KEY": s3.secret_access_key,
        "RCLONE_CONFIG_GW_ENDPOINT": s3.url,
        "RCLONE_CONFIG_GW_REGION": "us-east-1",
        # Files above 6 MiB go up in 5 MiB parts (multipart, with rclone's own ETag checks).
        "RCLONE_S3_UPLOAD_CUTOFF": "6M",
        "RCLONE_S3_CHUNK_SIZE": "5M",
    })
    ca = ["--ca-cert", s3.ca_file] if s3.ca_file else []
    tree = make_tree(tmp_path / "tree", small=500, large=(7 * MiB, 12 * MiB, 3 * MiB))
    bucket = new_bucket()
    s3.clear()
    run([rclone, "mkdir", f"gw:{bucket}", *ca], env)
    run([rclone, "sync", str(tree), f"gw:{bucket}/tree", "--transfers", "8", *ca], env)
    run([rclone, "check", str(tree), f"gw:{bucket}/tree", *ca], env)
    (tree / "d0" / "e0" / "file 0.txt").write_bytes(b"changed")
    (tree / "large-2.bin").unlink()
    run([rclone, "sync", str(tree), f"gw:{bucket}/tree", *ca], env)
    run([rclone, "check", str(tree), f"gw:{bucket}/tree", *ca], env)
    run([rclone, "copy", f"gw:{bucket}/tree", str(tmp_path / "back"), *ca], env)
    diff(tree, tmp_path / "back")
    run([rclone, "purge", f"gw:{bucket}", *ca], env)
    actions = {s.action for s in s3.seen}
    assert {"create_multipart_upload", "upload_part", "complete_multipart_upload"} <= actions
    # rclone (aws-sdk-go) signs part bodies but not single PUTs (it sends Content-MD5).
    assert modes_by_action(s3) == {"put_object": {UNSIGNED}, "upload_part": {SIGNED}}, modes_by_action(s3)
    assert "content-md5" in uploads_checksums(s3)


# -- restic --------------------------------------------------------------------------------


def test_restic(s3: S3Server, tmp_path: Path) -> None:
    restic = tool("restic", "apt-get install restic")
    env = s3.env()
    bucket = new_bucket()
    env.update({
        "RESTIC_PASSWORD": "correct horse battery staple",
        "RESTIC_REPOSITORY": f"s3:{s3.url}/{bucket}",
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
    })
    ca = ["--cacert", s3.ca_file] if s3.ca_file else []
    tree = make_tree(tmp_path / "data", small=120, large=(6 * MiB,))
    s3.clear()
    run([restic, "init", *ca], env)
    run([restic, "backup", str(tree), *ca], env)
    run([restic, "check", "--read-data", *ca], env)
    run([restic, "restore", "latest", "--target", str(tmp_path / "restore1"), *ca], env)
    diff(tree, tmp_path / "restore1" / tree.relative_to("/"))
    (tree / "added.txt").write_bytes(os.urandom(5000))
    (tree / "large-0.bin").unlink()
    run([restic, "backup", str(tree), *ca], env)
    run([restic, "forget", "--keep-last", "1", "--prune", *ca], env)
    run([restic, "check", "--read-data", *ca], env)
    run([restic, "restore", "latest", "--target", str(tmp_path / "restore2"), *ca], env)
    diff(tree, tmp_path / "restore2" / tree.relative_to("/"))
    snapshots = run([restic, "snapshots", "--json", *ca], env).stdout
    assert snapshots.count('"id"') == 1
    assert "delete_object" in {s.action for s in s3.seen}  # prune removed packs
    expected = {STREAMING_SIGNED} if s3.ca_file is None else {UNSIGNED}
    assert uploads_modes(s3) == expected, uploads_modes(s3)
    assert "content-md5" in uploads_checksums(s3)


# -- s3cmd ---------------------------------------------------------------------------------


def test_s3cmd(s3: S3Server, tmp_path: Path) -> None:
    s3cmd = tool("s3cmd", "apt-get install s3cmd")
    host = s3.url.split("://")[1]
    config = tmp_path / "s3cfg"
    lines = [
        "[default]",
        f"access_key = {s3.access_key_id}",
        f"secret_key = {s3.secret_access_key}",
        f"host_base = {host}",
        f"host_bucket = {host}",
        f"use_https = {'True' if s3.ca_file else 'False'}",
        "signature_v2 = False",
        "bucket_location = us-east-1",
        "multipart_chunk_size_mb = 5",
    ]
    if s3.ca_file:
        lines += [f"ca_certs_file = {s3.ca_file}", "check_ssl_certificate = True"]
    config.write_text("\n".join(lines) + "\n")
    cmd = [s3cmd, "-c", str(config)]
    env = s3.env()
    bucket = new_bucket()
    small, large = tmp_path / "small.txt", tmp_path / "large.bin"
    small.write_bytes(b"hello from s3cmd\n")
    large.write_bytes(os.urandom(11 * MiB))
    s3.clear()
    run([*cmd, "mb", f"s3://{bucket}"], env)
    run([*cmd, "put", str(small), f"s3://{bucket}/dir/small.txt"], env)
    run([*cmd, "put", str(large), f"s3://{bucket}/large.bin"], env)
    listing = run([*cmd, "ls", "--recursive", f"s3://{bucket}"], env).stdout
    assert f"s3://{bucket}/dir/small.txt" in listing and f"s3://{bucket}/large.bin" in listing
    run([*cmd, "get", f"s3://{bucket}/large.bin", str(tmp_path / "large.back")], env)
    run([*cmd, "get", f"s3://{bucket}/dir/small.txt", str(tmp_path / "small.back")], env)
    assert (tmp_path / "large.back").read_bytes() == large.read_bytes()
    assert (tmp_path / "small.back").read_bytes() == small.read_bytes()
    run([*cmd, "del", f"s3://{bucket}/dir/small.txt", f"s3://{bucket}/large.bin"], env)
    assert run([*cmd, "ls", "--recursive", f"s3://{bucket}"], env).stdout.strip() == ""
    run([*cmd, "rb", f"s3://{bucket}"], env)
    assert "upload_part" in {s.action for s in s3.seen}
    assert uploads_modes(s3) == {SIGNED}, uploads_modes(s3)


# -- boto3 ---------------------------------------------------------------------------------


def test_boto3_default_checksums(s3: S3Server) -> None:
    import io

    from boto3.s3.transfer import TransferConfig

    client = s3.client()
    bucket = new_bucket()
    s3.clear()
    client.create_bucket(Bucket=bucket)
    data = os.urandom(13 * MiB)
    client.upload_fileobj(io.BytesIO(data), bucket, "multi.bin",
                          Config=TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB))
    client.put_object(Bucket=bucket, Key="single.txt", Body=b"single")
    got = client.get_object(Bucket=bucket, Key="single.txt", ChecksumMode="ENABLED")
    assert got["Body"].read() == b"single" and got["ChecksumSHA256"]
    out = io.BytesIO()
    client.download_fileobj(bucket, "multi.bin", out)
    assert out.getvalue() == data
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["multi.bin", "single.txt"]
    client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    client.delete_bucket(Bucket=bucket)
    modes = uploads_modes(s3)
    assert modes == ({SIGNED} if s3.ca_file is None else {STREAMING_UNSIGNED_TRAILER}), modes
    assert "x-amz-checksum-crc32" in uploads_checksums(s3)


# -- presigned URLs with curl --------------------------------------------------------------


def test_presigned_urls_with_curl(s3: S3Server, tmp_path: Path) -> None:
    curl = tool("curl", "apt-get install curl")
    client = s3.client()
    bucket = new_bucket()
    client.create_bucket(Bucket=bucket)
    body = tmp_path / "body.bin"
    body.write_bytes(os.urandom(3 * MiB + 5))
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p.bin"})
    get_url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p.bin"})
    ca = ["--cacert", s3.ca_file] if s3.ca_file else []
    s3.clear()
    run([curl, "-sSf", "-T", str(body), put_url, *ca], s3.env())
    run([curl, "-sSf", "-o", str(tmp_path / "back.bin"), get_url, *ca], s3.env())
    assert (tmp_path / "back.bin").read_bytes() == body.read_bytes()
    assert uploads_modes(s3) == {PRESIGNED}


# -- the signed-trailer variant ------------------------------------------------------------


def _signing_key(secret: str, date: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signed_trailer_body(
    data: bytes, *, key: bytes, amz_date: str, seed: str, chunk: int
) -> bytes:
    """aws-chunked with signed chunks and a signed CRC32 trailer, per the AWS SigV4
    streaming documentation (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER)."""
    scope = f"{amz_date[:8]}/us-east-1/s3/aws4_request"
    empty = hashlib.sha256(b"").hexdigest()
    previous = seed
    out = []
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for piece in pieces:
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, empty,
                             hashlib.sha256(piece).hexdigest()])
        previous = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out.append(f"{len(piece):x};chunk-signature={previous}\r\n".encode())
        if piece:
            out.append(piece + b"\r\n")
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    trailer = f"x-amz-checksum-crc32:{crc}\n"
    to_sign = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, previous,
                         hashlib.sha256(trailer.encode()).hexdigest()])
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out.append(f"x-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{signature}\r\n\r\n".encode())
    return b"".join(out)


def test_signed_trailer_variant(s3: S3Server) -> None:
    """No client here sends it by default, so this test does, byte for byte."""
    client = s3.client()
    bucket = new_bucket()
    client.create_bucket(Bucket=bucket)
    data = os.urandom(200_000)
    host = s3.url.split("://")[1]
    when = datetime.now(UTC)
    path = f"/{bucket}/trailer.bin"
    headers = {
        "host": host,
        "content-encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    signed: dict[str, Any] = sign("PUT", path, "", headers, STREAMING_SIGNED_TRAILER,
                                  access_key=s3.access_key_id, secret=s3.secret_access_key, when=when)
    seed = signed["Authorization"].rsplit("Signature=", 1)[1]
    amz_date = signed["x-amz-date"]
    body = signed_trailer_body(data, key=_signing_key(s3.secret_access_key, amz_date[:8]),
                               amz_date=amz_date, seed=seed, chunk=65536)
    s3.clear()
    verify = ssl.create_default_context(cafile=s3.ca_file) if s3.ca_file else True
    with httpx.Client(verify=verify) as http:
        reply = http.put(s3.url + path, content=body, headers=signed)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-amz-checksum-crc32"]
        at = body.index(b"x-amz-trailer-signature:") + len(b"x-amz-trailer-signature:")
        flipped = b"1" if body[at : at + 1] == b"0" else b"0"
        tampered = body[:at] + flipped + body[at + 1 :]
        bad = http.put(s3.url + path, content=tampered, headers=signed)
        assert bad.status_code == 403 and "SignatureDoesNotMatch" in bad.text, bad.text
    assert client.get_object(Bucket=bucket, Key="trailer.bin")["Body"].read() == data
    assert uploads_modes(s3) == {STREAMING_SIGNED_TRAILER}
