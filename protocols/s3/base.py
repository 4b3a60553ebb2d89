"""What every group of S3 handlers shares: the service, the settings, bodies and owners.

The handler groups (:mod:`protocols.s3.buckets`, :mod:`protocols.s3.objects`,
:mod:`protocols.s3.multipart`) are mixins over :class:`ActionBase`; :class:`S3App` in
:mod:`protocols.s3.app` combines them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from gateway import errors as domain
from gateway.config import S3Config
from protocols.s3 import xmlio
from protocols.s3.chunked import (
    AwsChunkedReader,
    PayloadVerifier,
    SealerDigests,
    body_reader,
    object_body_reader,
)
from protocols.s3.errors import (
    BadDigest,
    EntityTooLarge,
    InvalidArgument,
    MissingContentLength,
    NoSuchVersion,
    S3Error,
    XAmzContentSHA256Mismatch,
)
from protocols.s3.request import S3Request

if TYPE_CHECKING:
    from gateway.objects import ObjectService
    from gateway.principals import Principal


class ActionBase:
    """Shared state and helpers of the S3 handlers."""

    objects: ObjectService
    settings: S3Config

    # -- who ---------------------------------------------------------------------------------
    @staticmethod
    def who(req: S3Request) -> Principal:
        assert req.principal is not None
        return req.principal

    @staticmethod
    def owner(req: S3Request) -> xmlio.Owner:
        """The owner S3 documents show: a stable canonical id for the user, and the name."""
        principal = ActionBase.who(req)
        ident = hashlib.sha256(f"coolstorage:{principal.name}".encode()).hexdigest()
        return xmlio.Owner(ident, principal.name)

    @staticmethod
    def bucket(req: S3Request) -> str:
        assert req.bucket is not None
        return req.bucket

    @staticmethod
    def key(req: S3Request) -> str:
        assert req.key is not None
        return req.key

    # -- bodies ------------------------------------------------------------------------------
    def body_size(self, req: S3Request) -> tuple[int | None, int | None]:
        """``(decoded size, Content-Length)`` of a body; ``MissingContentLength`` when the
        length is not known at all, ``EntityTooLarge`` beyond ``s3.max_object_size``."""
        assert req.auth is not None
        length = req.content_length
        chunked = "chunked" in (req.header("transfer-encoding") or "").lower()
        if req.auth.payload_mode.streaming:
            size = req.auth.decoded_content_length
        else:
            if length is None and not chunked:
                raise MissingContentLength()
            size = length
        if size is not None and size > self.settings.max_object_size:
            raise EntityTooLarge(ProposedSize=size, MaxSizeAllowed=self.settings.max_object_size)
        return size, length

    def object_body(
        self, req: S3Request
    ) -> tuple[PayloadVerifier | AwsChunkedReader, SealerDigests, int | None]:
        """The verified reader of an object (or part) body, the digests the sealer checks
        instead, and the declared plaintext size."""
        assert req.auth is not None
        size, length = self.body_size(req)
        reader, digests = object_body_reader(
            req.input,
            req.auth,
            req.headers,
            content_length=length,
            max_length=self.settings.max_object_size,
        )
        return reader, digests, size

    def small_body(self, req: S3Request, limit: int = xmlio.MAX_XML_BYTES) -> bytes:
        """A small request body (XML), read whole and verified (payload hash, MD5,
        checksums, chunk signatures); ``MaxMessageLengthExceeded`` beyond ``limit``."""
        assert req.auth is not None
        length = req.content_length
        chunked = "chunked" in (req.header("transfer-encoding") or "").lower()
        if length is None and not chunked and not req.auth.payload_mode.streaming:
            return b""
        reader = body_reader(req.input, req.auth, req.headers, content_length=length, max_length=None)
        return xmlio.read_body(reader, limit)

    @staticmethod
    def digest_error(exc: domain.BadDigest, digests: SealerDigests) -> S3Error:
        """The S3 error for a digest the sealer found different from the declared one."""
        computed = str(exc.details.get("computed", ""))
        if exc.args and exc.args[0] == "MD5":
            return BadDigest()
        if digests.sha256_is_payload:
            return XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=digests.sha256,
                S3ComputedContentSHA256=computed,
            )
        return BadDigest("The SHA256 you specified did not match the calculated checksum.")

    @staticmethod
    def checksum_headers(
        reader: PayloadVerifier | AwsChunkedReader, digests: SealerDigests, sha256_hex: str
    ) -> list[tuple[str, str]]:
        """The ``x-amz-checksum-*`` a client asked to get back."""
        sums = dict(reader.checksums)
        if digests.echo_sha256 and "-" not in sha256_hex:
            sums["x-amz-checksum-sha256"] = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
        return sorted(sums.items())

    # -- misc --------------------------------------------------------------------------------
    @staticmethod
    def check_version(req: S3Request) -> None:
        """Buckets are unversioned: only the version id ``null`` exists."""
        version = req.param("versionId")
        if version is not None and version != "null":
            if not version or len(version) > 1024:
                raise InvalidArgument("Invalid version id specified", ArgumentName="versionId")
            raise NoSuchVersion(Key=req.key, VersionId=version[:1024])

    @staticmethod
    def encoding_type(req: S3Request) -> bool:
        """``encoding-type=url`` (True), absent (False); anything else is refused."""
        value = req.param("encoding-type")
        if value is None:
            return False
        if value.lower() != "url":
            raise InvalidArgument(
                "Invalid Encoding Method specified in Request",
                ArgumentName="encoding-type",
                ArgumentValue=value[:64],
            )
        return True


def header_list(values: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = values.items() if isinstance(values, Mapping) else values
    return [(k, v) for k, v in items]
