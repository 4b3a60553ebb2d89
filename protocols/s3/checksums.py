"""S3 additional checksums: CRC32, CRC32C, CRC64NVME, SHA1, SHA256.

Each algorithm is an incremental hasher with S3's output form (base64 of the big-endian
digest). The CRCs come from ``awscrt.checksums`` (the AWS SDKs' own C implementation), the
SHAs from ``hashlib``.

:func:`requested_checksum` reads what a request asks for: an ``x-amz-checksum-<algo>`` header
with the value, an ``x-amz-trailer: x-amz-checksum-<algo>`` announcing it at the end of an
aws-chunked body, and ``x-amz-sdk-checksum-algorithm`` / ``x-amz-checksum-algorithm`` naming
the algorithm alone. Contradictions and malformed values are ``InvalidRequest``, as in S3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from awscrt import checksums as _crt

from protocols.s3.errors import InvalidRequest

CRC32: Final = "CRC32"
CRC32C: Final = "CRC32C"
CRC64NVME: Final = "CRC64NVME"
SHA1: Final = "SHA1"
SHA256: Final = "SHA256"

#: Algorithm name -> digest size in bytes.
DIGEST_SIZES: Final[dict[str, int]] = {CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32}
ALGORITHMS: Final = tuple(DIGEST_SIZES)

HEADER_PREFIX: Final = "x-amz-checksum-"
#: ``x-amz-checksum-*`` headers that are not checksum values.
_NOT_VALUES: Final = frozenset(
    {"x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"}
)


class Checksum(Protocol):
    """An incremental checksum."""

    algorithm: str

    def update(self, data: bytes | bytearray | memoryview) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    def __init__(self, algorithm: str, size: int) -> None:
        self.algorithm = algorithm
        self._size = size
        self._fn = {CRC32: _crt.crc32, CRC32C: _crt.crc32c, CRC64NVME: _crt.crc64nvme}[algorithm]
        self._value = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._value = self._fn(data, self._value)  # type: ignore[arg-type]

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")


class _Hash:
    def __init__(self, algorithm: str, name: str) -> None:
        self.algorithm = algorithm
        self._h = hashlib.new(name)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def digest(self) -> bytes:
        return self._h.digest()


def new(algorithm: str) -> Checksum:
    """A fresh hasher for ``algorithm`` (one of :data:`ALGORITHMS`, case-insensitive)."""
    name = algorithm.upper()
    if name in (CRC32, CRC32C, CRC64NVME):
        return _Crc(name, DIGEST_SIZES[name])
    if name == SHA1:
        return _Hash(SHA1, "sha1")
    if name == SHA256:
        return _Hash(SHA256, "sha256")
    raise InvalidRequest(f"Checksum algorithm {algorithm!r} is not supported.")


def b64(digest: bytes) -> str:
    """S3's text form of a digest."""
    return base64.b64encode(digest).decode("ascii")


def header_name(algorithm: str) -> str:
    """``CRC32`` -> ``x-amz-checksum-crc32``."""
    return HEADER_PREFIX + algorithm.lower()


def algorithm_of_header(name: str) -> str | None:
    """``x-amz-checksum-crc32`` -> ``CRC32``; None for anything else."""
    name = name.strip().lower()
    if not name.startswith(HEADER_PREFIX) or name in _NOT_VALUES:
        return None
    algo = name[len(HEADER_PREFIX):].upper()
    return algo if algo in DIGEST_SIZES else None


def decode_value(algorithm: str, value: str, *, what: str = "header") -> bytes:
    """The digest bytes of a base64 checksum value; ``InvalidRequest`` if malformed."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != DIGEST_SIZES[algorithm]:
        raise InvalidRequest(f"Value for {header_name(algorithm)} {what} is invalid.")
    return raw


@dataclass(frozen=True)
class ChecksumRequest:
    """The checksum a request asks the server to verify and return.

    ``expected`` is the digest from an ``x-amz-checksum-*`` header (None when it comes in the
    trailer, or when only the algorithm was named, in which case the server just computes and
    returns it).
    """

    algorithm: str
    expected: bytes | None = None
    in_trailer: bool = False

    @property
    def header(self) -> str:
        return header_name(self.algorithm)


def _parse_algorithm(value: str, header: str) -> str:
    algo = value.strip().upper()
    if algo not in DIGEST_SIZES:
        raise InvalidRequest(f"Value for {header} header is invalid.")
    return algo


def trailer_algorithms(trailer_header: str | None) -> list[str]:
    """Algorithms named by ``x-amz-trailer`` (only checksum trailers are supported)."""
    if not trailer_header:
        return []
    out = []
    for raw in trailer_header.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        algo = algorithm_of_header(name)
        if algo is None:
            raise InvalidRequest(f"The value specified in the x-amz-trailer header is not supported: {name}")
        out.append(algo)
    return out


def requested_checksum(headers: Mapping[str, str]) -> ChecksumRequest | None:
    """What checksum, if any, the request asks for. ``headers`` must have lowercase names.

    Raises ``InvalidRequest`` for several checksum values, an unknown algorithm, a malformed
    value, or a named algorithm contradicting the value or trailer sent.
    """
    values = [(algorithm_of_header(n), n) for n in headers if n.startswith(HEADER_PREFIX)]
    unknown = [n for a, n in values if a is None and n not in _NOT_VALUES]
    if unknown:
        raise InvalidRequest(f"The checksum header {unknown[0]} is not supported.")
    given = [(a, n) for a, n in values if a is not None]
    trailers = trailer_algorithms(headers.get("x-amz-trailer"))
    if len(given) + len(trailers) > 1:
        raise InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    named: str | None = None
    for h in ("x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"):
        if headers.get(h):
            algo = _parse_algorithm(headers[h], h)
            if named is not None and algo != named:
                raise InvalidRequest(f"Value for {h} header is invalid.")
            named = algo
    if given:
        algo, name = given[0]
        assert algo is not None
        if named is not None and named != algo:
            raise InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
        return ChecksumRequest(algo, decode_value(algo, headers[name]))
    if trailers:
        if named is not None and named != trailers[0]:
            raise InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.")
        return ChecksumRequest(trailers[0], None, in_trailer=True)
    if named is not None:
        return ChecksumRequest(named)
    return None
