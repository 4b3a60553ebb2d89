"""Request bodies as verified streams: plain bodies and aws-chunked bodies.

Both readers are file-like (``read(size)``) and are handed to the ObjectService as the body
of a write. They compute what the request asked to be verified in the same pass as the data
flows (the declared SHA-256, Content-MD5, an ``x-amz-checksum-*``), each digest once, and do
the final checks *at the end of the body*: the read that would deliver the last bytes (or the
first ``b""``) raises instead. The ObjectService reads until EOF before it commits the
catalog row, so an error at EOF aborts the write and nothing half-verified is ever stored.

:class:`PayloadVerifier` reads a plain body of ``Content-Length`` bytes.

:class:`AwsChunkedReader` decodes ``Content-Encoding: aws-chunked``::

    <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n   ... repeated ...
    0[;chunk-signature=<sig>]\\r\\n
    [x-amz-checksum-<algo>:<b64>\\r\\n [x-amz-trailer-signature:<sig>\\r\\n]]
    \\r\\n

In the signed modes each chunk's signature is
``HMAC(signing_key, "AWS4-HMAC-SHA256-PAYLOAD\\n" date "\\n" scope "\\n" previous "\\n"
sha256("") "\\n" sha256(data))`` chained from the request's seed signature, and the trailer
is signed with ``"AWS4-HMAC-SHA256-TRAILER"`` over the SHA-256 of its ``name:value\\n``
lines. A signed chunk is buffered whole (at most ``max_chunk_size``, 16 MiB by default) and
released only once its signature verifies; unsigned chunks stream through unbuffered. The
reader never looks more than a few hundred bytes past what it needs, bounds the chunk-size
line and the trailer, and never reads past ``Content-Length``.

Lenient where clients differ: a blank line before the trailer, LF instead of CRLF line ends
in the trailer, and a missing final CRLF are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from protocols.s3 import checksums
from protocols.s3.checksums import ChecksumRequest
from protocols.s3.errors import (
    BadDigest,
    EntityTooLarge,
    IncompleteBody,
    InvalidDigest,
    InvalidRequest,
    SignatureDoesNotMatch,
    XAmzContentSHA256Mismatch,
)
from protocols.s3.sigv4 import (
    AuthContext,
    PayloadMode,
    chunk_string_to_sign,
    sign,
    trailer_string_to_sign,
)

#: Largest signed chunk buffered for verification.
MAX_CHUNK_SIZE: Final = 16 << 20
#: Longest chunk header line ("<hex>;chunk-signature=<64 hex>" is about 90 bytes).
MAX_LINE: Final = 4096
#: Bounds of the trailer section.
MAX_TRAILER_BYTES: Final = 16 << 10
MAX_TRAILER_LINES: Final = 32
#: S3's limit for one PUT (parts have the same limit).
MAX_SINGLE_PUT: Final = 5 << 30
#: How far a line read may look ahead.
_LOOKAHEAD: Final = 256
#: Slack of CR/LF tolerated between the end of an aws-chunked body and Content-Length.
_TAIL_SLACK: Final = 64


class Readable(Protocol):
    """Anything with ``read(size) -> bytes``: ``wsgi.input``, a file, a socket reader."""

    def read(self, size: int = -1, /) -> bytes: ...


class BodyReader(Protocol):
    """What a front end hands the ObjectService as a request body."""

    def read(self, size: int = -1) -> bytes: ...

    @property
    def checksums(self) -> dict[str, str]:
        """``x-amz-checksum-<algo>`` -> base64 value, for the response (after EOF)."""
        ...


def parse_content_md5(value: str | None) -> bytes | None:
    """The 16 digest bytes of a ``Content-MD5`` header; ``InvalidDigest`` if malformed."""
    if value is None:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise InvalidDigest()
    return raw


class _Digests:
    """The digests one body needs, each computed once, updated in the same pass."""

    def __init__(
        self,
        *,
        declared_sha256: str | None,
        content_md5: bytes | None,
        checksum: ChecksumRequest | None,
    ) -> None:
        self.declared_sha256 = declared_sha256
        self.content_md5 = content_md5
        self.checksum_request = checksum
        want_sha = declared_sha256 is not None or (checksum is not None and checksum.algorithm == checksums.SHA256)
        self._sha256 = hashlib.sha256() if want_sha else None
        self._md5 = hashlib.md5() if content_md5 is not None else None
        self._checksum: checksums.Checksum | None = None
        if checksum is not None and checksum.algorithm != checksums.SHA256:
            self._checksum = checksums.new(checksum.algorithm)
        self.result: dict[str, str] = {}

    def update(self, data: bytes | memoryview) -> None:
        if self._sha256 is not None:
            self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        if self._checksum is not None:
            self._checksum.update(data)

    def verify(self, trailer_checksum: bytes | None = None) -> None:
        """Final checks; ``trailer_checksum`` is the value from the trailer, if any."""
        sha = self._sha256.digest() if self._sha256 is not None else None
        if self.declared_sha256 is not None:
            assert sha is not None
            if sha.hex() != self.declared_sha256:
                raise XAmzContentSHA256Mismatch(
                    ClientComputedContentSHA256=self.declared_sha256,
                    S3ComputedContentSHA256=sha.hex(),
                )
        if self.content_md5 is not None:
            assert self._md5 is not None
            if not hmac.compare_digest(self._md5.digest(), self.content_md5):
                raise BadDigest()
        req = self.checksum_request
        if req is not None:
            if req.algorithm == checksums.SHA256:
                assert sha is not None
                digest = sha
            else:
                assert self._checksum is not None
                digest = self._checksum.digest()
            expected = trailer_checksum if req.in_trailer else req.expected
            if expected is not None and not hmac.compare_digest(digest, expected):
                raise BadDigest(
                    f"The {req.algorithm} you specified did not match the calculated checksum."
                )
            self.result = {req.header: checksums.b64(digest)}

    @property
    def sha256_hex(self) -> str | None:
        return self._sha256.hexdigest() if self._sha256 is not None else None


class _Source:
    """The raw stream, bounded by Content-Length, with a small pushback buffer."""

    def __init__(self, raw: Readable, content_length: int | None) -> None:
        self._raw = raw
        self.remaining = content_length
        self._pending = bytearray()

    def _pull(self, n: int) -> bytes:
        if self.remaining is not None:
            n = min(n, self.remaining)
            if n <= 0:
                return b""
        try:
            data = self._raw.read(n)
        except (OSError, ValueError) as exc:
            raise IncompleteBody("The connection ended before the request body was complete.") from exc
        if data and self.remaining is not None:
            self.remaining -= len(data)
        return data or b""

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b"" only at the end of the stream."""
        if self._pending:
            out = bytes(self._pending[:n])
            del self._pending[:n]
            return out
        return self._pull(n)

    def read_exact(self, n: int) -> bytes:
        parts = []
        while n > 0:
            data = self.read(min(n, 1 << 20))
            if not data:
                raise IncompleteBody()
            parts.append(data)
            n -= len(data)
        return b"".join(parts)

    def read_line(self, limit: int) -> bytes | None:
        """One line without its end (LF or CRLF); None at EOF before any byte."""
        while True:
            nl = self._pending.find(b"\n")
            if nl >= 0:
                line = bytes(self._pending[:nl])
                del self._pending[: nl + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if len(self._pending) > limit:
                raise InvalidRequest("Malformed aws-chunked encoding: a line is too long.")
            data = self._pull(_LOOKAHEAD)
            if not data:
                if not self._pending:
                    return None
                raise IncompleteBody()
            self._pending += data

    @property
    def at_eof_known(self) -> bool:
        return not self._pending and self.remaining == 0


class PayloadVerifier:
    """A plain (not aws-chunked) body, verified at its end.

    ``content_length`` bounds what is read (None: until the stream ends, e.g. a body sent
    with ``Transfer-Encoding: chunked`` that the server already de-chunked); fewer bytes than
    announced is ``IncompleteBody``. ``declared_sha256`` is the signed payload hash
    (``XAmzContentSHA256Mismatch``), ``content_md5`` the Content-MD5 header (``InvalidDigest``
    at once if malformed, ``BadDigest`` on mismatch), ``checksum`` the requested
    ``x-amz-checksum-*`` (``BadDigest`` on mismatch). ``max_length`` refuses larger bodies
    with ``EntityTooLarge``.
    """

    def __init__(
        self,
        raw: Readable,
        *,
        content_length: int | None,
        declared_sha256: str | None = None,
        content_md5: str | None = None,
        checksum: ChecksumRequest | None = None,
        max_length: int | None = None,
    ) -> None:
        if checksum is not None and checksum.in_trailer:
            raise InvalidRequest("A trailing checksum needs an aws-chunked body.")
        if max_length is not None and content_length is not None and content_length > max_length:
            raise EntityTooLarge(ProposedSize=content_length, MaxSizeAllowed=max_length)
        self._src = _Source(raw, content_length)
        self._length = content_length
        self._max = max_length
        self._digests = _Digests(
            declared_sha256=declared_sha256,
            content_md5=parse_content_md5(content_md5),
            checksum=checksum,
        )
        self.bytes_read = 0
        self.finished = False

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest if negative); b"" once the body is verified."""
        if self.finished:
            return b""
        if size is None or size < 0:
            parts = []
            while chunk := self.read(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        if size == 0:
            return b""
        data = self._src.read(size)
        if data:
            self.bytes_read += len(data)
            if self._max is not None and self.bytes_read > self._max:
                raise EntityTooLarge(MaxSizeAllowed=self._max)
            self._digests.update(data)
        if not data or (self._length is not None and self.bytes_read >= self._length):
            self._finish()
        return data

    def _finish(self) -> None:
        if self._length is not None and self.bytes_read < self._length:
            raise IncompleteBody()
        self._digests.verify()
        self.finished = True

    @property
    def checksums(self) -> dict[str, str]:
        return dict(self._digests.result)

    @property
    def sha256_hex(self) -> str | None:
        """The body's SHA-256 when it was computed (signed payload or SHA256 checksum)."""
        return self._digests.sha256_hex


class AwsChunkedReader:
    """Decodes and verifies an aws-chunked body (see the module doc).

    ``ctx`` is the verified request's context (its payload mode must be a streaming one).
    ``decoded_length`` defaults to ``ctx.decoded_content_length``; ``checksum`` is the
    requested checksum (an algorithm name means "expect it in the trailer");
    ``content_length`` is the encoded length from the HTTP header, if any.

    Errors: ``SignatureDoesNotMatch`` (a chunk or the trailer), ``IncompleteBody`` (truncated
    body, or decoded length different from the declared one), ``InvalidRequest`` (malformed
    framing, chunk over ``max_chunk_size``, undeclared or missing trailer, malformed trailer
    checksum), ``BadDigest`` (checksum or Content-MD5 mismatch).
    """

    def __init__(
        self,
        raw: Readable,
        ctx: AuthContext,
        *,
        decoded_length: int | None = None,
        checksum: ChecksumRequest | str | None = None,
        content_md5: str | None = None,
        content_length: int | None = None,
        max_chunk_size: int = MAX_CHUNK_SIZE,
        max_length: int | None = None,
    ) -> None:
        if not ctx.payload_mode.streaming:
            raise InvalidRequest("The request is not aws-chunked.")
        self._ctx = ctx
        self._signed = ctx.payload_mode.signed_chunks
        self._trailer_mode = ctx.payload_mode.has_trailer
        self._decoded_length = ctx.decoded_content_length if decoded_length is None else decoded_length
        if max_length is not None and self._decoded_length is not None and self._decoded_length > max_length:
            raise EntityTooLarge(ProposedSize=self._decoded_length, MaxSizeAllowed=max_length)
        self._max = max_length
        if isinstance(checksum, str):
            checksum = ChecksumRequest(checksum.upper(), None, in_trailer=self._trailer_mode)
        if checksum is not None and checksum.in_trailer:
            if not self._trailer_mode:
                raise InvalidRequest("A trailing checksum needs a STREAMING-*-TRAILER payload.")
            if checksum.header not in ctx.trailer_names:
                raise InvalidRequest(f"The x-amz-trailer header does not name {checksum.header}.")
        self._checksum_req = checksum
        self._digests = _Digests(
            declared_sha256=None, content_md5=parse_content_md5(content_md5), checksum=checksum
        )
        self._src = _Source(raw, content_length)
        self._max_chunk = max_chunk_size
        self._previous = ctx.seed_signature
        self._buffer = memoryview(b"")  # verified bytes of the current signed chunk
        self._unsigned_left = 0  # bytes left of the current unsigned chunk
        self._done = False
        self.finished = False
        self.bytes_read = 0  # decoded bytes delivered
        self.trailers: dict[str, str] = {}

    # -- public ------------------------------------------------------------------------------

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` decoded bytes (all the rest if negative); b"" at the verified end."""
        if size is None or size < 0:
            parts = []
            while chunk := self.read(1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        while not self.finished:
            if size == 0:
                return b""
            if self._buffer:
                out = bytes(self._buffer[:size])
                self._buffer = self._buffer[len(out):]
                return self._deliver(out)
            if self._unsigned_left:
                data = self._src.read(min(size, self._unsigned_left))
                if not data:
                    raise IncompleteBody()
                self._unsigned_left -= len(data)
                self._digests.update(data)
                if self._unsigned_left == 0:
                    self._expect_crlf()
                    self._maybe_final(self.bytes_read + len(data))
                return self._deliver(data)
            if self._done:
                self._finish()
                break
            self._next_chunk()
        return b""

    @property
    def checksums(self) -> dict[str, str]:
        return dict(self._digests.result)

    # -- internals ---------------------------------------------------------------------------

    def _deliver(self, data: bytes) -> bytes:
        self.bytes_read += len(data)
        if self._decoded_length is not None and self.bytes_read > self._decoded_length:
            raise IncompleteBody("The aws-chunked body is longer than x-amz-decoded-content-length.")
        if self._max is not None and self.bytes_read > self._max:
            raise EntityTooLarge(MaxSizeAllowed=self._max)
        if self._done and not self._buffer and not self._unsigned_left:
            # The last data byte: verify now, so a bad trailer fails before EOF is seen.
            self._finish()
        return data

    def _expect_crlf(self) -> None:
        end = self._src.read_exact(2)
        if end != b"\r\n":
            raise InvalidRequest("Malformed aws-chunked encoding: chunk data is not followed by CRLF.")

    def _next_chunk(self) -> None:
        line = self._src.read_line(MAX_LINE)
        if line is None:
            raise IncompleteBody()
        size, signature = self._parse_header(line)
        if self._decoded_length is not None and self.bytes_read + size > self._decoded_length:
            raise IncompleteBody("The aws-chunked body is longer than x-amz-decoded-content-length.")
        if self._signed:
            if size > self._max_chunk:
                raise InvalidRequest(
                    f"A signed chunk of {size} bytes exceeds the {self._max_chunk} bytes this"
                    " server accepts."
                )
            data = self._src.read_exact(size) if size else b""
            if size:
                self._expect_crlf()
            self._verify_chunk(data, signature)
            if data:
                self._digests.update(data)
                self._buffer = memoryview(data)
                self._maybe_final(self.bytes_read + size)
        elif size:
            self._unsigned_left = size
        if size == 0:
            self._end_of_chunks()

    def _maybe_final(self, total: int) -> None:
        # Once the declared length is reached, read the final chunk and the trailer before
        # releasing the last bytes, so every check fails before the consumer sees EOF.
        if self._decoded_length is None or total != self._decoded_length:
            return
        line = self._src.read_line(MAX_LINE)
        if line is None:
            raise IncompleteBody()
        size, signature = self._parse_header(line)
        if size:
            raise IncompleteBody("The aws-chunked body is longer than x-amz-decoded-content-length.")
        if self._signed:
            self._verify_chunk(b"", signature)
        self._end_of_chunks()

    def _parse_header(self, line: bytes) -> tuple[int, str | None]:
        head, _, ext = line.partition(b";")
        head = head.strip()
        if not head or len(head) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in head):
            raise InvalidRequest("Malformed aws-chunked encoding: invalid chunk size.")
        size = int(head, 16)
        signature = None
        for item in ext.split(b";") if ext else ():
            name, _, value = item.partition(b"=")
            if name.strip() == b"chunk-signature":
                signature = value.strip().decode("ascii", "replace")
        if self._signed and (signature is None or len(signature) != 64):
            raise InvalidRequest("Malformed aws-chunked encoding: missing chunk-signature.")
        return size, signature

    def _verify_chunk(self, data: bytes, signature: str | None) -> None:
        assert signature is not None
        sts = chunk_string_to_sign(self._ctx, self._previous, hashlib.sha256(data).hexdigest())
        expected = sign(self._ctx.signing_key, sts)
        if not hmac.compare_digest(expected, signature.lower()):
            raise SignatureDoesNotMatch(
                "The chunk signature we calculated does not match the signature you provided.",
                StringToSign=sts,
                SignatureProvided=signature,
            )
        self._previous = expected

    def _end_of_chunks(self) -> None:
        if self._trailer_mode:
            self._read_trailer()
        else:
            line = self._src.read_line(MAX_LINE)
            if line not in (None, b""):
                raise InvalidRequest("Malformed aws-chunked encoding: data after the final chunk.")
        self._check_tail()
        self._done = True

    def _read_trailer(self) -> None:
        lines: list[tuple[str, str]] = []
        total = 0
        while True:
            line = self._src.read_line(MAX_LINE)
            if line is None:
                break
            total += len(line) + 2
            if total > MAX_TRAILER_BYTES or len(lines) >= MAX_TRAILER_LINES:
                raise InvalidRequest("The aws-chunked trailer is too large.")
            if not line.strip():
                if lines:
                    break
                continue  # some clients put a blank line before the trailer
            raw_name, colon, raw_value = line.partition(b":")
            if not colon:
                raise InvalidRequest("Malformed aws-chunked trailer.")
            try:
                lines.append((raw_name.strip().decode("ascii").lower(), raw_value.strip().decode("ascii")))
            except UnicodeDecodeError as exc:
                raise InvalidRequest("Malformed aws-chunked trailer.") from exc
        fields = [(n, v) for n, v in lines if n != "x-amz-trailer-signature"]
        sigs = [v for n, v in lines if n == "x-amz-trailer-signature"]
        if self._ctx.payload_mode is PayloadMode.STREAMING_SIGNED_TRAILER:
            if len(sigs) != 1:
                raise SignatureDoesNotMatch("The trailer must carry one x-amz-trailer-signature.")
            canonical = "".join(f"{n}:{v}\n" for n, v in fields)
            sts = trailer_string_to_sign(
                self._ctx, self._previous, hashlib.sha256(canonical.encode("ascii")).hexdigest()
            )
            expected = sign(self._ctx.signing_key, sts)
            if not hmac.compare_digest(expected, sigs[0].lower()):
                raise SignatureDoesNotMatch(
                    "The trailer signature we calculated does not match the signature you provided.",
                    StringToSign=sts,
                    SignatureProvided=sigs[0],
                )
        for name, value in fields:
            if name not in self._ctx.trailer_names:
                raise InvalidRequest(f"The trailer {name} was not announced in x-amz-trailer.")
            if name in self.trailers:
                raise InvalidRequest(f"The trailer {name} appears more than once.")
            self.trailers[name] = value
        for name in self._ctx.trailer_names:
            if name not in self.trailers:
                raise IncompleteBody(f"The body ended without the announced trailer {name}.")

    def _check_tail(self) -> None:
        # Content-Length counts the whole encoding: anything left must be line-end slack.
        if self._src.remaining is None:
            return
        if self._src.remaining > _TAIL_SLACK:
            raise InvalidRequest("Unexpected data after the end of the aws-chunked body.")
        rest = b""
        while chunk := self._src.read(_TAIL_SLACK):
            rest += chunk
        if rest.strip(b"\r\n"):
            raise InvalidRequest("Unexpected data after the end of the aws-chunked body.")

    def _finish(self) -> None:
        if self.finished:
            return
        if self._decoded_length is not None and self.bytes_read != self._decoded_length:
            raise IncompleteBody(
                "The aws-chunked body is shorter than x-amz-decoded-content-length."
            )
        trailer_value = None
        req = self._checksum_req
        if req is not None and req.in_trailer:
            trailer_value = checksums.decode_value(
                req.algorithm, self.trailers[req.header], what="trailing header"
            )
        self._digests.verify(trailer_value)
        self.finished = True


def strip_aws_chunked(content_encoding: str | None) -> str | None:
    """The Content-Encoding to store: the header without its ``aws-chunked`` token."""
    if content_encoding is None:
        return None
    rest = [t.strip() for t in content_encoding.split(",") if t.strip() and t.strip().lower() != "aws-chunked"]
    return ", ".join(rest) or None


def body_reader(
    raw: Readable,
    ctx: AuthContext,
    headers: Mapping[str, str],
    *,
    content_length: int | None,
    max_length: int | None = MAX_SINGLE_PUT,
) -> PayloadVerifier | AwsChunkedReader:
    """The right verified reader for a request body, from its auth context and headers.

    ``headers`` are the request headers (any case). Checksum headers are parsed here, so
    malformed ones fail before a byte of the body is read.
    """
    h = {k.lower(): v for k, v in headers.items()}
    checksum = checksums.requested_checksum(h)
    content_md5 = h.get("content-md5")
    if ctx.payload_mode.streaming:
        return AwsChunkedReader(
            raw,
            ctx,
            checksum=checksum,
            content_md5=content_md5,
            content_length=content_length,
            max_length=max_length,
        )
    return PayloadVerifier(
        raw,
        content_length=content_length,
        declared_sha256=ctx.declared_sha256,
        content_md5=content_md5,
        checksum=checksum,
        max_length=max_length,
    )


@dataclass(frozen=True)
class SealerDigests:
    """Digests a request declared that the sealer verifies instead of the body reader.

    The sealer computes MD5 and SHA-256 of every plaintext anyway (for the ETag and the
    catalog), so for an object or part body the reader leaves those two to it: the values
    go to ``ObjectService.put_object(expected_sha256=..., expected_md5=...)``, which compares
    them before committing. ``sha256_is_payload`` tells which S3 error a SHA-256 mismatch
    is: the signed payload hash (``XAmzContentSHA256Mismatch``) or an
    ``x-amz-checksum-sha256`` header (``BadDigest``). ``echo_sha256`` asks for the object's
    SHA-256 to be returned as ``x-amz-checksum-sha256``.
    """

    sha256: str | None = None
    md5: str | None = None
    sha256_is_payload: bool = False
    echo_sha256: bool = False


def object_body_reader(
    raw: Readable,
    ctx: AuthContext,
    headers: Mapping[str, str],
    *,
    content_length: int | None,
    max_length: int | None = MAX_SINGLE_PUT,
) -> tuple[PayloadVerifier | AwsChunkedReader, SealerDigests]:
    """Like :func:`body_reader`, for a body the sealer hashes anyway (see
    :class:`SealerDigests`): the reader verifies only what the sealer does not (CRCs, SHA-1,
    a SHA-256 that arrives in a trailer, chunk signatures), and the returned digests are for
    the ObjectService to check. Malformed digest headers still fail before the body is read.
    """
    h = {k.lower(): v for k, v in headers.items()}
    checksum = checksums.requested_checksum(h)
    md5_raw = parse_content_md5(h.get("content-md5"))
    sha256 = ctx.declared_sha256 if not ctx.payload_mode.streaming else None
    is_payload = sha256 is not None
    echo = False
    if checksum is not None and checksum.algorithm == checksums.SHA256 and not checksum.in_trailer:
        if checksum.expected is None:
            echo, checksum = True, None
        elif sha256 is None or sha256 == checksum.expected.hex():
            sha256, is_payload, echo, checksum = checksum.expected.hex(), is_payload, True, None
    digests = SealerDigests(
        sha256=sha256,
        md5=md5_raw.hex() if md5_raw is not None else None,
        sha256_is_payload=is_payload,
        echo_sha256=echo,
    )
    reader: PayloadVerifier | AwsChunkedReader
    if ctx.payload_mode.streaming:
        reader = AwsChunkedReader(
            raw, ctx, checksum=checksum, content_length=content_length, max_length=max_length
        )
    else:
        reader = PayloadVerifier(
            raw, content_length=content_length, checksum=checksum, max_length=max_length
        )
    return reader, digests
