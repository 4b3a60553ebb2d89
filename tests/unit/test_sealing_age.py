"""age v1 conformance: the C2SP CCTV test vectors, and header building and parsing.

The vectors (tests/data/age-cctv, see its README) each name an expected result. A vector
for a feature the gateway does not implement (armored files, scrypt passphrases, hybrid
post-quantum recipients) is not applicable: it is counted and reported, never run as a
passing test. For a payload failure, the plaintext released before the error must be a
prefix of the plaintext the vector's ``payload`` hash covers (what a reference reader
releases); our reader may release less, never more.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from gateway.sealing import age, generate_identity
from gateway.sealing.errors import SealedDataError

VECTORS = Path(__file__).resolve().parents[1] / "data" / "age-cctv"
EXPECT = {
    "success": "success",
    "header failure": "header",
    "HMAC failure": "hmac",
    "no match": "no_match",
    "payload failure": "payload",
    "armor failure": "armor",
}


@dataclass
class Vector:
    name: str
    expect: str
    payload: str | None
    file_key: bytes
    identities: list[str]
    armored: bool
    passphrase: bool
    body: bytes

    @property
    def not_applicable(self) -> str | None:
        if self.armored:
            return "armor"
        if self.passphrase:
            return "scrypt"
        if any(i.startswith("AGE-SECRET-KEY-PQ-") for i in self.identities):
            return "hybrid"
        return None


def load(path: Path) -> Vector:
    head, _, body = path.read_bytes().partition(b"\n\n")
    fields: dict[str, str] = {}
    identities = []
    for line in head.decode().splitlines():
        key, _, value = line.partition(": ")
        if key == "identity":
            identities.append(value)
        else:
            fields[key] = value
    if fields.get("compressed") == "zlib":
        body = zlib.decompress(body)
    return Vector(
        name=path.name,
        expect=EXPECT[fields["expect"]],
        payload=fields.get("payload"),
        file_key=bytes.fromhex(fields["file key"]),
        identities=identities,
        armored="armored" in fields,
        passphrase="passphrase" in fields,
        body=body,
    )


ALL = [load(p) for p in sorted(VECTORS.iterdir()) if p.name != "README.md"]
APPLICABLE = [v for v in ALL if v.not_applicable is None]


def reference_plaintext(vector: Vector) -> bytes:
    """What the reference reader releases before failing.

    It cannot tell a full chunk's kind in advance, so it opens a full chunk as non-final,
    else as final; a short chunk only as final. It stops after a final chunk or a failure.
    """
    end = age.header_length(vector.body)
    assert end is not None
    nonce = vector.body[end : end + age.NONCE_SIZE]
    cipher = age.payload_cipher(vector.file_key, nonce)
    data = vector.body[end + age.NONCE_SIZE :]
    out = b""
    for index in range(0, -(-len(data) // age.SEALED_CHUNK_SIZE)):
        chunk = data[index * age.SEALED_CHUNK_SIZE : (index + 1) * age.SEALED_CHUNK_SIZE]
        for last in (False, True) if len(chunk) == age.SEALED_CHUNK_SIZE else (True,):
            try:
                out += cipher.decrypt(age.chunk_nonce(index, last=last), chunk, None)
                break
            except InvalidTag:
                continue
        else:
            break
        if last:
            break
    return out


def test_vector_inventory_is_complete() -> None:
    """Every vector is either run or reported not applicable for an unimplemented feature."""
    skipped = {v.name: v.not_applicable for v in ALL if v.not_applicable}
    print(f"\nCCTV age vectors: {len(APPLICABLE)} applicable, {len(skipped)} not applicable")
    assert len(ALL) == 143
    assert all(name.split("_")[0] in {"armor", "scrypt", "hybrid"} for name in skipped)
    assert {v.name.split("_")[0] for v in APPLICABLE} == {
        "empty",
        "header",
        "hmac",
        "stanza",
        "stream",
        "version",
        "x25519",
    }
    assert len(APPLICABLE) == 67


@pytest.mark.parametrize("vector", APPLICABLE, ids=[v.name for v in APPLICABLE])
def test_cctv_vector(vector: Vector) -> None:
    released = bytearray()
    outcome = "success"
    try:
        for piece in age.decrypt(io.BytesIO(vector.body), vector.identities, segment=vector.name):
            released += piece
    except SealedDataError as exc:
        outcome = exc.kind
        assert exc.segment == vector.name
    assert outcome == vector.expect
    if vector.expect == "success":
        assert hashlib.sha256(released).hexdigest() == vector.payload
    elif vector.expect == "payload":
        reference = reference_plaintext(vector)
        assert hashlib.sha256(reference).hexdigest() == vector.payload
        assert reference.startswith(released)
    else:
        assert not released


def test_header_round_trip_and_mac() -> None:
    ids = [generate_identity() for _ in range(3)]
    file_key = age.new_file_key()
    header = age.build_header(file_key, [r for _, r in ids])
    parsed = age.parse_header(header.encoded)
    assert parsed == header and len(parsed.stanzas) == 3
    for identity, _ in ids:
        assert age.unwrap_file_key(parsed, [identity]) == file_key
    with pytest.raises(SealedDataError) as info:
        age.unwrap_file_key(parsed, [generate_identity()[0]])
    assert info.value.kind == "no_match"


def test_long_stanza_bodies_wrap_at_64_columns() -> None:
    for size in (47, 48, 49, 96, 100):
        stanza = age.Stanza((b"example.com/test", b"x"), bytes(range(size)))
        encoded = stanza.encode()
        lines = encoded.split(b"\n")[1:-1]
        assert all(len(line) == 64 for line in lines[:-1]) and len(lines[-1]) < 64
        text = age.VERSION_LINE + encoded + b"--- " + age.b64encode(bytes(32)) + b"\n"
        assert age.parse_header(text).stanzas[0] == stanza


def test_header_limits_bound_the_work_of_a_hostile_header() -> None:
    stanza = age.Stanza((b"X25519", age.b64encode(bytes(32))), bytes(32)).encode()
    text = (
        age.VERSION_LINE
        + stanza * (age.MAX_STANZAS + 1)
        + b"--- "
        + age.b64encode(bytes(32))
        + b"\n"
    )
    with pytest.raises(SealedDataError, match="stanzas"):
        age.parse_header(text)
    endless = io.BytesIO(age.VERSION_LINE + b"-> x\n" + b"A" * (age.MAX_HEADER_SIZE + 10))
    with pytest.raises(SealedDataError, match="longer than the limit"):
        age.read_header(endless)


def test_encrypt_helper_round_trips_at_chunk_edges() -> None:
    identity, recipient = generate_identity()
    for size in (0, 1, age.CHUNK_SIZE - 1, age.CHUNK_SIZE, age.CHUNK_SIZE + 1, 2 * age.CHUNK_SIZE):
        data = bytes(range(256)) * (size // 256) + bytes(size % 256)
        sealed = age.encrypt(data, [recipient])
        assert b"".join(age.decrypt(io.BytesIO(sealed), [identity])) == data
        header = age.header_length(sealed)
        assert header is not None
        assert len(sealed) - header - age.NONCE_SIZE == age.sealed_payload_size(size)
        assert age.plain_payload_size(age.sealed_payload_size(size)) == size
