"""The age v1 file format (c2sp.org/age) with X25519 recipients, from ``cryptography`` primitives.

This module knows nothing of zstd or segments: it builds and parses age headers, wraps and
unwraps the file key for X25519 recipients, derives the payload key, and encrypts or
decrypts the STREAM payload chunk by chunk. Armored files, scrypt (passphrase) and the
post-quantum hybrid recipients are not implemented: the gateway never writes them, and a
header holding only such stanzas is "no match" for our identities.

Layout of an age file::

    age-encryption.org/v1\\n
    -> X25519 <base64 ephemeral share>\\n       one stanza per recipient
    <base64 wrapped file key, 64-column lines, last line shorter>\\n
    --- <base64 HMAC-SHA-256 of everything up to and including "---">\\n
    <16-byte nonce><chunk 0>...<chunk n>       ChaCha20-Poly1305, 64 KiB plaintext each

Every failure is a :class:`SealedDataError` whose ``kind`` is ``header``, ``hmac``,
``no_match`` or ``payload``, matching the classes of the C2SP CCTV test vectors.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.sealing import keys
from gateway.sealing.errors import HEADER, HMAC, NO_MATCH, SealedDataError
from gateway.streams import Readable

VERSION_LINE = b"age-encryption.org/v1\n"
#: Plaintext bytes per payload chunk.
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
#: Ciphertext bytes per full payload chunk.
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
NONCE_SIZE = 16
FILE_KEY_SIZE = 16
MAC_SIZE = 32
#: Limits that bound the work a hostile header can cause before it is authenticated.
MAX_HEADER_SIZE = 1 << 20
MAX_STANZAS = 128


_X25519_INFO = b"age-encryption.org/v1/X25519"
_ZERO_NONCE = bytes(12)
_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_VCHAR = frozenset(range(0x21, 0x7F))


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    """HKDF-SHA-256 with 32 bytes of output, as age uses it everywhere."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def b64encode(data: bytes) -> bytes:
    """Unpadded standard base64."""
    return base64.b64encode(data).rstrip(b"=")


def b64decode(text: bytes) -> bytes:
    """Decode canonical unpadded standard base64; raise ``ValueError`` for anything else."""
    if not _B64_CHARS.issuperset(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64")
    try:
        data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None
    if b64encode(data) != text:
        raise ValueError("non-canonical base64")
    return data


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza: its arguments and its decoded body."""

    args: tuple[bytes, ...]
    body: bytes

    def encode(self) -> bytes:
        lines = [b"-> " + b" ".join(self.args) + b"\n"]
        encoded = b64encode(self.body)
        for i in range(0, len(encoded), 64):
            lines.append(encoded[i : i + 64] + b"\n")
        if len(encoded) % 64 == 0:
            lines.append(b"\n")  # the body must end with a line shorter than 64 columns
        return b"".join(lines)


@dataclass(frozen=True)
class Header:
    """A parsed age v1 header.

    ``encoded`` is the header exactly as stored (ending with the MAC line's newline);
    ``mac`` the 32-byte header MAC; ``authenticated`` the bytes the MAC covers.
    """

    stanzas: tuple[Stanza, ...]
    mac: bytes
    encoded: bytes

    @property
    def authenticated(self) -> bytes:
        return self.encoded[: len(self.encoded) - len(b64encode(self.mac)) - 2]


def _header_error(reason: str, segment: str, offset: int = 0) -> SealedDataError:
    return SealedDataError(
        f"invalid age header: {reason}", segment=segment, offset=offset, kind=HEADER
    )


def header_length(data: bytes | bytearray) -> int | None:
    """The length of the header at the start of ``data``, or None if its end is not there yet.

    The header ends after the first line starting with ``---`` (no stanza line can start so).
    """
    pos = 0
    while True:
        nl = data.find(b"\n", pos)
        if nl < 0:
            return None
        if data.startswith(b"---", pos):
            return nl + 1
        pos = nl + 1


def parse_header(data: bytes, *, segment: str = "") -> Header:
    """Parse a complete header (``data`` ends with the MAC line) strictly, as the spec says."""
    lines = data.split(b"\n")
    if lines[-1] != b"" or len(lines) < 4:
        raise _header_error("truncated", segment)
    lines.pop()
    if lines[0] + b"\n" != VERSION_LINE:
        if lines[0].startswith(b"age-encryption.org/"):
            raise _header_error("unsupported version", segment)
        raise _header_error("not an age file", segment)
    offset = len(lines[0]) + 1
    stanzas: list[Stanza] = []
    i = 1
    while i < len(lines) - 1:
        line = lines[i]
        if not line.startswith(b"-> "):
            raise _header_error("expected a stanza", segment, offset)
        args = tuple(line[3:].split(b" "))
        if not args or any(not arg or not _VCHAR.issuperset(arg) for arg in args):
            raise _header_error("bad stanza arguments", segment, offset)
        offset += len(line) + 1
        i += 1
        body_lines: list[bytes] = []
        while True:
            if i >= len(lines) - 1:
                raise _header_error("stanza body does not end", segment, offset)
            body_line = lines[i]
            if len(body_line) > 64 or not _B64_CHARS.issuperset(body_line):
                raise _header_error("bad stanza body line", segment, offset)
            body_lines.append(body_line)
            offset += len(body_line) + 1
            i += 1
            if len(body_line) < 64:
                break
        try:
            body = b64decode(b"".join(body_lines))
        except ValueError as exc:
            raise _header_error(f"stanza body: {exc}", segment, offset) from None
        stanzas.append(Stanza(args, body))
        if len(stanzas) > MAX_STANZAS:
            raise _header_error(f"more than {MAX_STANZAS} stanzas", segment, offset)
    if not stanzas:
        raise _header_error("no recipient stanza", segment, offset)
    mac_line = lines[-1]
    if not mac_line.startswith(b"--- ") or len(mac_line) != 4 + 43:
        raise _header_error("bad MAC line", segment, offset)
    try:
        mac = b64decode(mac_line[4:])
    except ValueError as exc:
        raise _header_error(f"MAC: {exc}", segment, offset) from None
    return Header(tuple(stanzas), mac, bytes(data))


def read_header(stream: Readable, *, segment: str = "") -> tuple[Header, bytes]:
    """Read and parse the header at the start of ``stream``; return it and the bytes read past it."""
    buf = bytearray()
    while True:
        end = header_length(buf)
        if end is not None:
            break
        if len(buf) > MAX_HEADER_SIZE:
            raise _header_error("longer than the limit", segment)
        piece = stream.read(4096)
        if not piece:
            raise _header_error("truncated" if buf else "empty file", segment)
        buf += piece
    return parse_header(bytes(buf[:end]), segment=segment), bytes(buf[end:])


def _identity_key(identity: str | X25519PrivateKey) -> X25519PrivateKey:
    return keys.parse_identity(identity) if isinstance(identity, str) else identity


def _unwrap_x25519(stanza: Stanza, identity: X25519PrivateKey, segment: str) -> bytes | None:
    """The file key if ``stanza`` is an X25519 stanza for ``identity``; None if it is not for it."""
    if stanza.args[0] != b"X25519":
        return None
    if len(stanza.args) != 2:
        raise _header_error("X25519 stanza must have exactly two arguments", segment)
    try:
        share = b64decode(stanza.args[1])
    except ValueError as exc:
        raise _header_error(f"X25519 share: {exc}", segment) from None
    if len(share) != 32:
        raise _header_error("X25519 share is not 32 bytes", segment)
    if len(stanza.body) != FILE_KEY_SIZE + TAG_SIZE:
        raise _header_error("X25519 stanza body is not 32 bytes", segment)
    try:
        shared = identity.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError:
        raise _header_error("X25519 share is a low-order point", segment) from None
    if not any(shared):
        raise _header_error("X25519 shared secret is zero", segment)
    public = identity.public_key().public_bytes_raw()
    wrap_key = hkdf(shared, share + public, _X25519_INFO)
    try:
        return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
    except InvalidTag:
        return None


def unwrap_file_key(
    header: Header, identities: Sequence[str | X25519PrivateKey], *, segment: str = ""
) -> bytes:
    """Unwrap the file key with the first identity that matches, then verify the header MAC."""
    file_key = None
    for identity in identities:
        key = _identity_key(identity)
        for stanza in header.stanzas:
            file_key = _unwrap_x25519(stanza, key, segment)
            if file_key is not None:
                break
        if file_key is not None:
            break
    if file_key is None:
        raise SealedDataError(
            "no identity matches a recipient stanza", segment=segment, kind=NO_MATCH
        )
    expected = hmac.digest(hkdf(file_key, b"", b"header"), header.authenticated, sha256)
    if not hmac.compare_digest(expected, header.mac):
        raise SealedDataError("the header MAC does not verify", segment=segment, kind=HMAC)
    return file_key


def x25519_stanza(file_key: bytes, recipient: bytes) -> Stanza:
    """Wrap ``file_key`` for one X25519 recipient (32-byte public key)."""
    ephemeral = X25519PrivateKey.generate()
    share = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    wrap_key = hkdf(shared, share + recipient, _X25519_INFO)
    body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
    return Stanza((b"X25519", b64encode(share)), body)


def build_header(file_key: bytes, recipients: Iterable[str]) -> Header:
    """A header wrapping ``file_key`` for each ``age1...`` recipient."""
    stanzas = tuple(x25519_stanza(file_key, keys.parse_recipient(r)) for r in recipients)
    if not stanzas:
        raise ValueError("at least one recipient is needed")
    authenticated = VERSION_LINE + b"".join(s.encode() for s in stanzas) + b"---"
    mac = hmac.digest(hkdf(file_key, b"", b"header"), authenticated, sha256)
    return Header(stanzas, mac, authenticated + b" " + b64encode(mac) + b"\n")


def new_file_key() -> bytes:
    return secrets.token_bytes(FILE_KEY_SIZE)


def payload_cipher(file_key: bytes, nonce: bytes) -> ChaCha20Poly1305:
    """The STREAM cipher of a payload whose 16-byte nonce is ``nonce``."""
    return ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))


def chunk_nonce(index: int, *, last: bool) -> bytes:
    """The 12-byte nonce of chunk ``index``: 11-byte big-endian counter and the last-chunk flag."""
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def sealed_payload_size(plain_size: int) -> int:
    """Ciphertext bytes of a payload (after the nonce) holding ``plain_size`` bytes."""
    chunks = max(1, -(-plain_size // CHUNK_SIZE))
    return plain_size + chunks * TAG_SIZE


def plain_payload_size(sealed_size: int) -> int:
    """Plaintext bytes of a payload whose ciphertext (after the nonce) is ``sealed_size`` bytes.

    Raises ``ValueError`` when no valid payload has that size.
    """
    chunks = -(-sealed_size // SEALED_CHUNK_SIZE)
    last = sealed_size - (chunks - 1) * SEALED_CHUNK_SIZE
    if chunks == 0 or last < TAG_SIZE or (last == TAG_SIZE and chunks > 1):
        raise ValueError("not a valid payload size")
    return sealed_size - chunks * TAG_SIZE


def rechunk(pieces: Iterable[bytes], size: int) -> Iterator[memoryview]:
    """Cut a stream of byte pieces into ``size``-byte views (the last may be shorter).

    Bytes are copied only for a slice that straddles two pieces.
    """
    carry = bytearray()
    for piece in pieces:
        view = memoryview(piece)
        pos = 0
        if carry:
            take = min(size - len(carry), len(view))
            carry += view[:take]
            pos = take
            if len(carry) < size:
                continue
            yield memoryview(bytes(carry))
            carry = bytearray()
        while len(view) - pos >= size:
            yield view[pos : pos + size]
            pos += size
        if pos < len(view):
            carry = bytearray(view[pos:])
    if carry:
        yield memoryview(bytes(carry))


def with_last(items: Iterable[memoryview]) -> Iterator[tuple[memoryview, bool]]:
    """Pair each item with whether it is the last one (one item of lookahead)."""
    iterator = iter(items)
    previous = next(iterator, None)
    for item in iterator:
        yield previous, False  # type: ignore[misc]
        previous = item
    if previous is not None:
        yield previous, True


def decrypt_chunks(
    cipher: ChaCha20Poly1305,
    sealed: Iterable[bytes],
    *,
    segment: str = "",
    base_offset: int = 0,
) -> Iterator[bytes]:
    """Decrypt a whole STREAM payload (the bytes after the nonce), one chunk at a time.

    Each chunk is authenticated before its plaintext is yielded; the chunk that ends the
    input must carry the last-chunk flag, so truncation at a chunk boundary, a missing final
    chunk and trailing bytes all fail. ``base_offset`` is the sealed offset of the payload,
    used in error messages.
    """
    index = -1
    for index, (chunk, last) in enumerate(with_last(rechunk(sealed, SEALED_CHUNK_SIZE))):
        offset = base_offset + index * SEALED_CHUNK_SIZE
        if len(chunk) < TAG_SIZE or (last and index > 0 and len(chunk) == TAG_SIZE):
            raise SealedDataError("short or empty payload chunk", segment=segment, offset=offset)
        try:
            yield cipher.decrypt(chunk_nonce(index, last=last), chunk, None)
        except InvalidTag:
            reason = "payload chunk failed authentication" + (
                " (truncated, or data after the final chunk)" if last else ""
            )
            raise SealedDataError(reason, segment=segment, offset=offset) from None
    if index < 0:
        raise SealedDataError("the payload has no chunk", segment=segment, offset=base_offset)


def read_pieces(stream: Readable, first: bytes = b"", size: int = 1 << 20) -> Iterator[bytes]:
    """``first`` then the rest of ``stream`` in pieces of about ``size`` bytes."""
    if first:
        yield first
    while True:
        piece = stream.read(size)
        if not piece:
            return
        yield piece


def decrypt(
    stream: Readable, identities: Sequence[str | X25519PrivateKey], *, segment: str = ""
) -> Iterator[bytes]:
    """Decrypt a whole age file: parse and authenticate the header, then stream the payload."""
    header, rest = read_header(stream, segment=segment)
    file_key = unwrap_file_key(header, identities, segment=segment)
    while len(rest) < NONCE_SIZE:
        piece = stream.read(NONCE_SIZE - len(rest))
        if not piece:
            raise _header_error(
                "the payload nonce is missing or short", segment, len(header.encoded)
            )
        rest += piece
    nonce, rest = rest[:NONCE_SIZE], rest[NONCE_SIZE:]
    cipher = payload_cipher(file_key, nonce)
    yield from decrypt_chunks(
        cipher,
        read_pieces(stream, rest),
        segment=segment,
        base_offset=len(header.encoded) + NONCE_SIZE,
    )


def encrypt(plaintext: bytes, recipients: Iterable[str]) -> bytes:
    """Encrypt a small in-memory value as a complete age file (tests and tooling only)."""
    file_key = new_file_key()
    header = build_header(file_key, recipients)
    nonce = secrets.token_bytes(NONCE_SIZE)
    cipher = payload_cipher(file_key, nonce)
    out = [header.encoded, nonce]
    count = max(1, -(-len(plaintext) // CHUNK_SIZE))
    for index in range(count):
        chunk = plaintext[index * CHUNK_SIZE : (index + 1) * CHUNK_SIZE]
        out.append(cipher.encrypt(chunk_nonce(index, last=index == count - 1), chunk, None))
    return b"".join(out)
