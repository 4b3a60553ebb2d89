"""Interop with the reference tools: the ``age`` CLI, ``zstd`` and ``pyrage``.

A segment we seal must decrypt with ``age -d`` and decompress with ``zstd -d`` to exactly
the plaintext, and a zstd stream the ``age`` CLI (or pyrage) encrypted to our recipient must
read with our reader.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.sealing import (
    SealingReader,
    SegmentMetadata,
    age,
    generate_identity,
    parse_identity_file,
    recipient_of,
    unseal,
)

META = SegmentMetadata("acme", "bucket", "some/key.bin", content_type="application/x-test")


def tool(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; install it with: {install}")
    return path


def run(args: list[str], data: bytes = b"") -> bytes:
    done = subprocess.run(args, input=data, capture_output=True, check=False, timeout=120)
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr.decode(errors='replace')}"
    return done.stdout


@pytest.fixture(scope="module")
def cli_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """An identity made by ``age-keygen``, as a user would make one."""
    keygen = tool("age-keygen", "apt-get install age")
    path = tmp_path_factory.mktemp("age") / "key.txt"
    run([keygen, "-o", str(path)])
    (identity,) = parse_identity_file(path.read_text())
    recipient = run([keygen, "-y", str(path)]).decode().strip()
    return path, identity, recipient


def seal(data: bytes, recipients: list[str], block_size: int = 64 * 1024) -> bytes:
    reader = SealingReader(io.BytesIO(data), META, recipients, block_size=block_size)
    out = bytearray()
    while piece := reader.read(1 << 20):
        out += piece
    return bytes(out)


def payload(size: int) -> bytes:
    half = os.urandom(size // 2)
    return half + (b"interop " * (size // 8 + 1))[: size - len(half)]


def test_age_keygen_keys_are_ours_too(cli_key: tuple[Path, str, str]) -> None:
    _, identity, recipient = cli_key
    assert recipient_of(identity) == recipient
    ours, our_recipient = generate_identity()
    keygen = tool("age-keygen", "apt-get install age")
    done = subprocess.run(
        [keygen, "-y"], input=ours.encode() + b"\n", capture_output=True, check=True
    )
    assert done.stdout.decode().strip() == our_recipient


@pytest.mark.parametrize("size", [0, 1, 65535, 65537, 1_300_000])
def test_segment_decrypts_with_age_cli_then_zstd(cli_key: tuple[Path, str, str], size: int) -> None:
    age_cli = tool("age", "apt-get install age")
    zstd_cli = tool("zstd", "apt-get install zstd")
    path, _, recipient = cli_key
    data = payload(size)
    sealed = seal(data, [generate_identity()[1], recipient])
    stream = run([age_cli, "-d", "-i", str(path)], sealed)
    assert run([zstd_cli, "-d", "-c"], stream) == data
    # and `zstd -t` agrees the stream is sound, checksums included
    run([zstd_cli, "-t"], stream)


def test_age_cli_encrypted_zstd_stream_reads_with_our_reader() -> None:
    age_cli = tool("age", "apt-get install age")
    zstd_cli = tool("zstd", "apt-get install zstd")
    identity, recipient = generate_identity()
    data = payload(700_000)
    one = run([zstd_cli, "-c", "-3"], data[:300_000])
    two = run([zstd_cli, "-c", "--no-check", "-19"], data[300_000:])
    for stream, expected in ((one, data[:300_000]), (one + two, data)):
        sealed = run([age_cli, "-r", recipient, "-r", generate_identity()[1]], stream)
        assert b"".join(unseal(io.BytesIO(sealed), [identity])) == expected
        # the raw age layer alone gives back exactly the zstd stream
        assert b"".join(age.decrypt(io.BytesIO(sealed), [identity])) == stream


def test_age_cli_payload_edges_decrypt_with_our_age_reader(tmp_path: Path) -> None:
    age_cli = tool("age", "apt-get install age")
    identity, recipient = generate_identity()
    key = tmp_path / "key.txt"
    key.write_text(identity + "\n")
    for size in (0, 1, age.CHUNK_SIZE - 1, age.CHUNK_SIZE, age.CHUNK_SIZE + 1, 3 * age.CHUNK_SIZE):
        data = os.urandom(size)
        sealed = run([age_cli, "-r", recipient], data)
        assert b"".join(age.decrypt(io.BytesIO(sealed), [identity])) == data
        # and the age CLI reads what our age layer writes
        assert run([age_cli, "-d", "-i", str(key)], age.encrypt(data, [recipient])) == data


def test_pyrage_reads_our_segments_and_we_read_pyrage() -> None:
    try:
        import pyrage
    except ImportError:
        pytest.fail("pyrage is not installed; install it with: pip install pyrage")
    zstd_cli = tool("zstd", "apt-get install zstd")
    identity, recipient = generate_identity()
    data = payload(400_000)
    sealed = seal(data, [recipient], block_size=100_000)
    stream = pyrage.decrypt(sealed, [pyrage.x25519.Identity.from_str(identity)])
    assert run([zstd_cli, "-d", "-c"], stream) == data
    compressed = run([zstd_cli, "-c"], data)
    theirs = pyrage.encrypt(compressed, [pyrage.x25519.Recipient.from_str(recipient)])
    got = b"".join(unseal(io.BytesIO(theirs), [identity]))
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
