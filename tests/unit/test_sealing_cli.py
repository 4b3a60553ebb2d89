"""The seal and unseal command bodies, driven with binary streams."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from gateway.errors import InvalidArgument, InvalidRange
from gateway.sealing import generate_identity
from gateway.sealing.cli import parse_range, seal_command, unseal_command
from gateway.sealing.errors import SealedDataError

IDENTITY, RECIPIENT = generate_identity()


class Pipe(io.RawIOBase):
    """A non-seekable stream, like a shell pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
        return self._data.readinto(buffer)


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key.txt"
    path.write_text(f"# public key: {RECIPIENT}\n{IDENTITY}\n")
    return path


def sealed_of(data: bytes, block_size: int = 65536, level: int = 3) -> bytes:
    out = io.BytesIO()
    assert seal_command([RECIPIENT], io.BytesIO(data), out, block_size, level) == 0
    return out.getvalue()


def test_seal_then_unseal_whole(key_file: Path) -> None:
    data = os.urandom(200_000) + b"z" * 100_000
    sealed = sealed_of(data, block_size=65536, level=1)
    out = io.BytesIO()
    assert unseal_command(str(key_file), None, Pipe(sealed), out) == 0  # type: ignore[arg-type]
    assert out.getvalue() == data


@pytest.mark.parametrize(
    "spec", ["0-0", "10-99", "65530-65545", "299990-", "-7", "5-999999999", "0-"]
)
@pytest.mark.parametrize("seekable", [True, False])
def test_unseal_ranges(key_file: Path, spec: str, seekable: bool) -> None:
    data = os.urandom(300_000)
    sealed = sealed_of(data, block_size=65536)
    start, end = parse_range(spec, len(data))
    out = io.BytesIO()
    source = io.BytesIO(sealed) if seekable else Pipe(sealed)
    unseal_command(key_file, spec, source, out)  # type: ignore[arg-type]
    assert out.getvalue() == data[start:end]


def test_parse_range() -> None:
    assert parse_range("0-0", 10) == (0, 1)
    assert parse_range("2-", 10) == (2, 10)
    assert parse_range("-3", 10) == (7, 10)
    assert parse_range("-30", 10) == (0, 10)
    assert parse_range("4-100", 10) == (4, 10)
    for bad in ("", "-", "a-b", "1-2-3"):
        with pytest.raises(InvalidArgument):
            parse_range(bad, 10)
    for unsatisfiable in ("10-", "10-20", "5-4", "-0"):
        with pytest.raises(InvalidRange):
            parse_range(unsatisfiable, 10)


def test_errors_are_domain_errors(key_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument):
        seal_command([], io.BytesIO(b""), io.BytesIO())
    with pytest.raises(InvalidArgument):
        seal_command(["age1nope"], io.BytesIO(b""), io.BytesIO())
    with pytest.raises(InvalidArgument):
        unseal_command(tmp_path / "missing.txt", None, io.BytesIO(b""), io.BytesIO())
    sealed = sealed_of(b"hello")
    damaged = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealedDataError):
        unseal_command(key_file, None, io.BytesIO(damaged), io.BytesIO())
    with pytest.raises(SealedDataError):
        unseal_command(key_file, "0-1", io.BytesIO(damaged), io.BytesIO())
    with pytest.raises(InvalidRange):
        unseal_command(key_file, "0-1", io.BytesIO(sealed_of(b"")), io.BytesIO())
