"""Integrity errors raised by the sealing layer.

Every failure to authenticate or parse sealed bytes is a :class:`SealedDataError`, a
subclass of the domain :class:`gateway.errors.IntegrityError`, naming the segment (or
container) and the byte offset where the problem was found, plus a ``kind`` the tests and
the age conformance suite use to tell the failures apart.
"""

from __future__ import annotations

from typing import Final

from gateway.errors import IntegrityError

#: The age header is malformed, unsupported, or its key material is invalid.
HEADER: Final = "header"
#: The header MAC does not verify under the unwrapped file key.
HMAC: Final = "hmac"
#: None of the given identities can unwrap the file key.
NO_MATCH: Final = "no_match"
#: A payload chunk failed authentication, or the payload is truncated or has trailing data.
PAYLOAD: Final = "payload"
#: The authenticated plaintext is not a valid sealed stream (zstd frames, seek table, index).
FORMAT: Final = "format"
#: The header MAC differs from the one recorded at write time (a swapped blob).
MISMATCH: Final = "mismatch"


class SealedDataError(IntegrityError):
    """Integrity check failed for {segment} at sealed offset {offset}: {reason}"""

    def __init__(
        self, reason: str, *, segment: str = "", offset: int = 0, kind: str = PAYLOAD
    ) -> None:
        segment = segment or "segment"
        super().__init__(reason, segment=segment, offset=offset, reason=reason)
        self.reason = reason
        self.segment = segment
        self.offset = offset
        self.kind = kind
