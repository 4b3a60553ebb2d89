"""The ``s3`` backend: blobs in an S3 bucket (AWS, or any S3-compatible service via
``endpoint_url``), with storage classes up to ``DEEP_ARCHIVE`` and restores.

This is the only module of the project that imports boto3; every botocore error is
translated here, once, into :mod:`gateway.errors`.

Writes. PutObject needs a known length, and a retry needs a body that can be read again, but
``put`` receives a stream it cannot rewind. A blob whose size hint is at most
``single_put_max`` (512 MiB by default) is spooled whole to a temporary file (in
``spool_dir``; at most ``part_size`` bytes of it in memory) and sent as ONE PutObject,
which botocore rewinds for retries: one request instead of a multipart upload's
``2 + parts``, which matters in Deep Archive (0.05 USD per 1,000 PUTs) where the engine
writes its containers with their exact size. If such a stream turns out longer than
``single_put_max`` after all, the spooled bytes become the first part of a multipart
upload. Any other blob (unknown size, or larger) is read in parts, each buffered in a
``SpooledTemporaryFile`` that stays in memory up to ``part_size`` bytes: a blob that ends
within its first part is one PutObject; anything larger is a multipart upload whose parts
go out ``max_concurrency`` at a time while the next one is read. Each request body can be
rewound, so botocore's retry handler repeats throttled, failed or timed-out requests by
itself. Memory per ``put`` stays below ``(max_concurrency + 1) * part_size`` whatever the
blob's size: S3 allows 10,000 parts, so larger blobs get larger parts (computed from the
size hint, or doubled every 1,000 parts when the size is unknown), and a part larger than
``part_size`` spills to a temporary file instead of memory. A failed multipart upload is
aborted, so no blob and no billed parts stay behind.

Copies up to ``copy_threshold`` (5 GiB, CopyObject's limit) are one CopyObject; larger ones
are a multipart upload of UploadPartCopy ranges, each conditional on the source's ETag so a
source replaced midway fails the copy instead of mixing two versions.

Restores use RestoreObject and read the ``x-amz-restore`` header (``ongoing-request`` and
``expiry-date``) that HEAD returns. moto, which the tests use, completes restores at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, cast

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ChecksumError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    IncompleteReadError,
    SSLError,
)

from gateway.errors import (
    BackendError,
    BlobNotFound,
    CoolStorageError,
    InvalidArgument,
    InvalidRange,
    ObjectArchived,
)
from gateway.streams import Readable

from ._common import (
    CHUNK_SIZE,
    ChunkIterator,
    GiB,
    MiB,
    Options,
    check_key,
    check_prefix,
    check_range,
    check_restore_args,
    check_storage_class,
    empty_iterator,
)
from .base import (
    COLD_CLASSES,
    STANDARD,
    STORAGE_CLASSES,
    Backend,
    BlobInfo,
    Capability,
    RestoreStatus,
)

MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_COPY_SIZE = 5 * GiB  # CopyObject's limit; beyond it, UploadPartCopy
MAX_PUT_SIZE = 5 * GiB  # PutObject's limit
#: Default of ``single_put_max``.
DEFAULT_SINGLE_PUT_MAX = 512 * MiB
_GROWTH_EVERY = 1_000  # unknown size: double the part size every this many parts

_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_ARCHIVED = frozenset({"InvalidObjectState", "ObjectNotInActiveTierError"})
_THROTTLED = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServiceUnavailable",
        "BadDigest",
        "IncompleteBody",
    }
)
_DENIED = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
    }
)
_EXPIRY_RE = re.compile(r'expiry-date="([^"]+)"')

log = logging.getLogger(__name__)


def _error_code(exc: ClientError) -> tuple[str, int, str]:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(error.get("Code", "")), status, str(error.get("Message", ""))


def _parse_restore(header: str | None, cold: bool) -> RestoreStatus | None:
    """Read an ``x-amz-restore`` value: ``ongoing-request="false", expiry-date="..."``."""
    if not cold:
        return None
    if not header:
        return RestoreStatus(requested=False)
    if 'ongoing-request="true"' in header:
        return RestoreStatus(requested=True, ongoing=True)
    match = _EXPIRY_RE.search(header)
    expires = None
    if match:
        try:
            expires = parsedate_to_datetime(match.group(1))
        except (TypeError, ValueError):
            expires = None
        if expires is not None and expires <= datetime.now(UTC):
            return RestoreStatus(requested=False)
    return RestoreStatus(requested=True, ongoing=False, expires_at=expires)


class S3Backend(Backend):
    """Blobs in one bucket, optionally under a key prefix; see the module docstring.

    Options (``[backends.NAME]`` with ``type = "s3"``):

    - ``bucket`` (required), ``prefix`` (prepended to every key; default none)
    - ``endpoint_url`` (any S3-compatible service; default AWS), ``region``
      (default: the AWS chain's, else ``us-east-1``), ``addressing_style`` (``auto``,
      ``path``, ``virtual``; default ``path`` with an ``endpoint_url``, else ``auto``),
      ``ca_bundle`` (a PEM file to verify TLS with)
    - ``access_key_id`` / ``secret_access_key`` / ``session_token``, each also as
      ``*_file`` naming a file that holds it; without them, the default AWS chain
    - ``part_size`` (default 8 MiB, at least 5 MiB), ``max_concurrency`` (parts in flight
      per put or copy, default 4), ``spool_dir`` (where oversized parts spill)
    - ``single_put_max`` (default 512 MiB, at most 5 GiB; 0 turns it off): a blob whose
      size is known and at most this is spooled to ``spool_dir`` and sent as one PutObject
    - ``copy_threshold`` (default and at most 5 GiB), ``copy_part_size`` (default 512 MiB)
    - ``max_attempts`` (per request, default 5), ``connect_timeout`` / ``read_timeout``
      (seconds, default 10 / 60)
    - ``create_bucket`` (default false: the bucket must exist)
    - ``storage_class``: a table mapping our classes to the service's names, for services
      that spell them differently, e.g. ``{ DEEP_ARCHIVE = "GLACIER" }``
    - ``request_checksum_calculation``: botocore's ``when_supported`` (default) or
      ``when_required`` for services that reject the newer checksum headers
    """

    plugin: ClassVar[str] = "s3"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.RANGE_READ,
            Capability.STORAGE_CLASSES,
            Capability.RESTORE,
            Capability.SERVER_SIDE_COPY,
            Capability.LIST,
        }
    )

    def __init__(
        self,
        name: str,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        part_size: int = 8 * MiB,
        max_concurrency: int = 4,
        copy_threshold: int = MAX_COPY_SIZE,
        copy_part_size: int = 512 * MiB,
        class_map: Mapping[str, str] | None = None,
        spool_dir: str | None = None,
        endpoint_url: str | None = None,
        single_put_max: int = DEFAULT_SINGLE_PUT_MAX,
    ) -> None:
        """Wrap a boto3 S3 ``client`` (thread-safe; ``from_options`` builds one)."""
        super().__init__(name)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.max_concurrency = max_concurrency
        self.copy_threshold = copy_threshold
        self.copy_part_size = copy_part_size
        self.spool_dir = spool_dir
        self.single_put_max = single_put_max
        self.endpoint_url = endpoint_url
        self._to_s3 = {c: c for c in STORAGE_CLASSES} | dict(class_map or {})
        self._from_s3 = {v: k for k, v in self._to_s3.items()}
        self._closed = threading.Event()

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> S3Backend:
        opts = Options(cls.plugin, name, options)
        bucket = opts.required_text("bucket")
        prefix = opts.text("prefix", "") or ""
        endpoint_url = opts.text("endpoint_url")
        region = opts.text("region")
        style = opts.text("addressing_style", "path" if endpoint_url else "auto")
        ca_bundle = opts.text("ca_bundle")
        key_id = opts.secret("access_key_id")
        secret = opts.secret("secret_access_key")
        token = opts.secret("session_token")
        part_size = opts.size("part_size", 8 * MiB, minimum=MIN_PART_SIZE, maximum=MAX_PART_SIZE)
        max_concurrency = opts.integer("max_concurrency", 4, minimum=1, maximum=64)
        spool_dir = opts.text("spool_dir")
        single_put_max = opts.size(
            "single_put_max", DEFAULT_SINGLE_PUT_MAX, maximum=MAX_PUT_SIZE
        )
        copy_threshold = opts.size("copy_threshold", MAX_COPY_SIZE, maximum=MAX_COPY_SIZE)
        copy_part_size = opts.size(
            "copy_part_size", 512 * MiB, minimum=MIN_PART_SIZE, maximum=MAX_PART_SIZE
        )
        max_attempts = opts.integer("max_attempts", 5, minimum=1, maximum=20)
        connect_timeout = opts.number("connect_timeout", 10.0, minimum=0.1)
        read_timeout = opts.number("read_timeout", 60.0, minimum=0.1)
        create_bucket = opts.flag("create_bucket", False)
        class_map = opts.table("storage_class")
        checksums = opts.text("request_checksum_calculation", "when_supported")
        opts.finish()

        if style not in ("auto", "path", "virtual"):
            raise opts.error(f"addressing_style must be auto, path or virtual, not {style!r}")
        if checksums not in ("when_supported", "when_required"):
            raise opts.error("request_checksum_calculation must be when_supported or when_required")
        if prefix.startswith("/"):
            raise opts.error(f"prefix {prefix!r} must not start with '/'")
        if (key_id is None) != (secret is None):
            raise opts.error("give both access_key_id and secret_access_key, or neither")
        for ours, theirs in class_map.items():
            if ours not in STORAGE_CLASSES:
                raise opts.error(f"storage_class maps unknown class {ours!r}")
            if not theirs:
                raise opts.error(f"storage_class maps {ours!r} to an empty name")
        mapped = {c: c for c in STORAGE_CLASSES} | class_map
        seen: dict[str, str] = {}
        for ours, theirs in sorted(mapped.items()):
            if theirs in seen:
                raise opts.error(
                    f"storage_class maps both {seen[theirs]} and {ours} to {theirs}; "
                    "map one of them elsewhere so a blob's class can be read back"
                )
            seen[theirs] = ours

        session = boto3.session.Session(
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=token,
            region_name=region,
        )
        region = region or session.region_name or "us-east-1"
        config = Config(
            region_name=region,
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # Parts in flight for a few puts at once, plus the request threads' own calls.
            max_pool_connections=max(10, 4 * max_concurrency),
            s3=cast(Any, {"addressing_style": style}),
            request_checksum_calculation=cast(Any, checksums),
            response_checksum_validation="when_required",
        )
        client_args: dict[str, Any] = {"config": config}
        if endpoint_url:
            client_args["endpoint_url"] = endpoint_url
        if ca_bundle:
            client_args["verify"] = ca_bundle
        try:
            client = session.client("s3", **client_args)
        except (BotoCoreError, ValueError) as exc:
            raise opts.error(f"cannot configure the S3 client: {exc}") from None
        backend = cls(
            name,
            client,
            bucket,
            prefix=prefix,
            part_size=part_size,
            max_concurrency=max_concurrency,
            copy_threshold=copy_threshold,
            copy_part_size=copy_part_size,
            class_map=class_map,
            spool_dir=spool_dir,
            endpoint_url=endpoint_url,
            single_put_max=single_put_max,
        )
        backend._check_bucket(opts, region, create=create_bucket)
        return backend

    def _check_bucket(self, opts: Options, region: str, *, create: bool) -> None:
        where = f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS'}"
        try:
            if create:
                args: dict[str, Any] = {"Bucket": self.bucket}
                if region != "us-east-1":
                    args["CreateBucketConfiguration"] = {"LocationConstraint": region}
                try:
                    self.client.create_bucket(**args)
                except ClientError as exc:
                    if _error_code(exc)[0] != "BucketAlreadyOwnedByYou":
                        raise
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code, status, message = _error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                hint = "" if create else " (create it, or set create_bucket = true)"
                raise opts.error(f"{where} does not exist{hint}") from None
            if code in _DENIED or status == 403:
                raise opts.error(f"access to {where} denied: check the credentials") from None
            raise opts.error(f"{where} is not usable: {code} {message}".strip()) from None
        except BotoCoreError as exc:
            raise opts.error(f"cannot reach {where}: {exc}") from None

    # -- helpers -----------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _s3_class(self, storage_class: str) -> str:
        return self._to_s3[check_storage_class(storage_class)]

    def _our_class(self, s3_class: str | None) -> str:
        return self._from_s3.get(s3_class or "STANDARD", s3_class or STANDARD)

    def _translate(self, exc: BaseException, action: str, key: str) -> CoolStorageError:
        """The one place a botocore (or socket) error becomes a domain error."""
        if isinstance(exc, CoolStorageError):
            return exc
        if isinstance(exc, ClientError):
            code, status, message = _error_code(exc)
            if code in _NOT_FOUND:
                return BlobNotFound(key)
            if code in _ARCHIVED:
                s3_class = exc.response.get("Error", {}).get("StorageClass")
                return ObjectArchived(
                    key, self._our_class(str(s3_class)) if s3_class else "archive"
                )
            if code == "InvalidRange":
                return InvalidRange(f"of {key}", "fewer")
            if code == "NoSuchBucket":
                return BackendError(f"s3 bucket {self.bucket!r} does not exist", retryable=False)
            if code in _DENIED:
                return BackendError(
                    f"s3 {action} {key!r}: access denied ({code}); check the credentials",
                    retryable=False,
                )
            retryable = code in _THROTTLED or status >= 500 or status == 429
            detail = f"{code}: {message}" if message else code or f"HTTP {status}"
            return BackendError(f"s3 {action} {key!r}: {detail}", retryable=retryable)
        if isinstance(exc, SSLError):
            return BackendError(f"s3 {action} {key!r}: TLS failure: {exc}", retryable=False)
        if isinstance(
            exc, HTTPClientError | ConnectionError | IncompleteReadError | ChecksumError | OSError
        ):
            return BackendError(f"s3 {action} {key!r}: {exc}", retryable=True)
        if isinstance(exc, BotoCoreError):
            return BackendError(f"s3 {action} {key!r}: {exc}", retryable=False)
        return BackendError(f"s3 {action} {key!r}: {exc!r}", retryable=False)

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError, OSError) as exc:
            raise self._translate(exc, action, key) from exc

    def _head_raw(self, key: str) -> dict[str, Any]:
        with self._errors("head", key):
            response: dict[str, Any] = self.client.head_object(
                Bucket=self.bucket, Key=self._key(key)
            )
            return response

    def _info_from_head(self, key: str, head: Mapping[str, Any]) -> BlobInfo:
        storage_class = self._our_class(head.get("StorageClass"))
        return BlobInfo(
            key=key,
            size=int(head.get("ContentLength", 0)),
            storage_class=storage_class,
            modified_at=head.get("LastModified"),
            restore=_parse_restore(head.get("Restore"), storage_class in COLD_CLASSES),
        )

    def _class_args(self, storage_class: str) -> dict[str, str]:
        s3_class = self._s3_class(storage_class)
        # Omitted for STANDARD: the default, and some S3-compatible services reject the header.
        return {} if s3_class == "STANDARD" else {"StorageClass": s3_class}

    def _part_size_for(self, size_hint: int | None, part_number: int) -> int:
        if size_hint:
            needed = math.ceil(size_hint / MAX_PARTS / MiB) * MiB
            return min(max(self.part_size, needed), MAX_PART_SIZE)
        growth = 2 ** ((part_number - 1) // _GROWTH_EVERY)
        return min(self.part_size * growth, MAX_PART_SIZE)

    def _read_part(self, stream: Readable, size: int) -> tempfile.SpooledTemporaryFile[bytes]:
        """Read up to ``size`` bytes of ``stream`` into a rewindable buffer.

        In memory up to ``part_size``; a larger part (only for very large blobs) spills to
        a temporary file. The stream's own errors pass through unchanged.
        """
        # Not a ``with``: the buffer outlives this call, and its consumer closes it.
        spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=self.part_size, dir=self.spool_dir
        )
        try:
            need = size
            while need > 0:
                chunk = stream.read(min(need, CHUNK_SIZE))
                if not chunk:
                    break
                spool.write(chunk)
                need -= len(chunk)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    @staticmethod
    def _length(spool: tempfile.SpooledTemporaryFile[bytes]) -> int:
        spool.seek(0, 2)
        length = spool.tell()
        spool.seek(0)
        return length

    def _run_parts(
        self,
        jobs: Iterator[tuple[int, Callable[[], dict[str, Any]]]],
    ) -> list[dict[str, Any]]:
        """Run part uploads, at most ``max_concurrency`` at once, in part order.

        ``jobs`` is consumed in this thread (it reads the caller's stream), so only parts
        in flight plus the one being read are held. On any failure the queued parts are
        cancelled and running ones finish before the error propagates, so the caller's
        abort of the upload comes after the last part.
        """
        results: list[dict[str, Any]] = []
        if self.max_concurrency == 1:
            for _, job in jobs:
                results.append(job())
            return results
        pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix=f"s3-{self.name}")
        pending: set[Future[dict[str, Any]]] = set()
        try:
            for _, job in jobs:
                pending.add(pool.submit(job))
                if len(pending) >= self.max_concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    results.extend(future.result() for future in done)
            done, pending = wait(pending)
            results.extend(future.result() for future in done)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        results.sort(key=lambda part: int(part["PartNumber"]))
        return results

    def _abort(self, full_key: str, upload_id: str) -> None:
        # Best effort: a leftover upload is also removed by a bucket lifecycle rule
        # (AbortIncompleteMultipartUpload), which the README recommends.
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)

    # -- the contract ------------------------------------------------------------------

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        storage_class: str = STANDARD,
    ) -> BlobInfo:
        """One PutObject for a blob of a known size up to ``single_put_max`` or within its
        first part, else a multipart upload."""
        full_key = self._key(key)
        class_args = self._class_args(storage_class)
        if size is not None and size <= self.single_put_max:
            return self._put_spooled(key, full_key, stream, class_args, storage_class)
        first_size = self._part_size_for(size, 1)
        first = self._read_part(stream, first_size)
        second = None
        try:
            # A blob of exactly one part must not become a multipart upload of one part.
            if self._length(first) == first_size:
                second = self._read_part(stream, self._part_size_for(size, 2))
                if self._length(second) == 0:
                    second.close()
                    second = None
        except BaseException:
            first.close()
            raise
        if second is not None:
            return self._put_multipart(
                key, full_key, stream, size, class_args, storage_class, [first, second]
            )
        try:
            length = self._length(first)
            with self._errors("put", key):
                self.client.put_object(
                    Bucket=self.bucket, Key=full_key, Body=first, ContentLength=length, **class_args
                )
        finally:
            first.close()
        return BlobInfo(key, length, storage_class, modified_at=datetime.now(UTC))

    def _put_spooled(
        self,
        key: str,
        full_key: str,
        stream: Readable,
        class_args: dict[str, str],
        storage_class: str,
    ) -> BlobInfo:
        """Spool the whole stream (to disk past ``part_size``) and send one PutObject; a
        stream longer than ``single_put_max`` continues as a multipart upload."""
        limit = self.single_put_max
        # Not a ``with``: on the multipart path the spool is handed over and closed there.
        spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=self.part_size, dir=self.spool_dir
        )
        try:
            length = 0
            while length <= limit:
                chunk = stream.read(min(CHUNK_SIZE, limit + 1 - length))
                if not chunk:
                    break
                spool.write(chunk)
                length += len(chunk)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        if length > limit:
            # The hint was short: S3 parts may be up to 5 GiB, so the spool is part 1.
            return self._put_multipart(
                key, full_key, stream, None, class_args, storage_class, [spool]
            )
        try:
            with self._errors("put", key):
                self.client.put_object(
                    Bucket=self.bucket, Key=full_key, Body=spool, ContentLength=length, **class_args
                )
        finally:
            spool.close()
        return BlobInfo(key, length, storage_class, modified_at=datetime.now(UTC))

    def _put_multipart(
        self,
        key: str,
        full_key: str,
        stream: Readable,
        size_hint: int | None,
        class_args: dict[str, str],
        storage_class: str,
        first_parts: list[tempfile.SpooledTemporaryFile[bytes]],
    ) -> BlobInfo:
        total = 0
        held = list(first_parts)
        try:
            with self._errors("put", key):
                upload_id = self.client.create_multipart_upload(
                    Bucket=self.bucket, Key=full_key, **class_args
                )["UploadId"]
        except BaseException:
            for part in held:
                part.close()
            raise

        def upload(number: int, body: tempfile.SpooledTemporaryFile[bytes]) -> dict[str, Any]:
            try:
                length = self._length(body)
                with self._errors("put", key):
                    response = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=full_key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=body,
                        ContentLength=length,
                    )
            finally:
                body.close()
            part = {"PartNumber": number, "ETag": response["ETag"]}
            for field in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
                if response.get(field):
                    part[field] = response[field]
            return part

        def jobs() -> Iterator[tuple[int, Callable[[], dict[str, Any]]]]:
            nonlocal total
            number = 0
            while True:
                number += 1
                if held:
                    body = held.pop(0)
                else:
                    body = self._read_part(stream, self._part_size_for(size_hint, number))
                length = self._length(body)
                if length == 0:
                    body.close()
                    return
                if number > MAX_PARTS:
                    body.close()
                    raise BackendError(
                        f"s3 put {key!r}: more than {MAX_PARTS} parts; pass a size hint",
                        retryable=False,
                    )
                total += length
                yield number, functools.partial(upload, number, body)

        try:
            parts = self._run_parts(jobs())
            with self._errors("put", key):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            for part in held:
                part.close()
            self._abort(full_key, upload_id)
            raise
        return BlobInfo(key, total, storage_class, modified_at=datetime.now(UTC))

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """GetObject with a Range header; the request is made before this returns."""
        check_range(start, end)
        full_key = self._key(key)
        if end is not None and end == start:
            self._check_readable(key)
            return empty_iterator()
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": full_key}
        if start or end is not None:
            args["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            with self._errors("get", key):
                response = self.client.get_object(**args)
        except InvalidRange:
            # S3 answers 416 for a range starting at the end; ours yields nothing then.
            info = self._check_readable(key)
            if start == info.size:
                return empty_iterator()
            raise InvalidRange(f"bytes={start}-", info.size) from None
        body = response["Body"]
        return ChunkIterator(
            body.read,
            body.close,
            int(response.get("ContentLength", 0)),
            lambda exc: self._translate(exc, "get", key),
        )

    def _check_readable(self, key: str) -> BlobInfo:
        info = self.head(key)
        if info.restore is not None and not info.restore.readable:
            raise ObjectArchived(key, info.storage_class)
        return info

    def head(self, key: str) -> BlobInfo:
        """HeadObject: size, class and the ``x-amz-restore`` state."""
        return self._info_from_head(key, self._head_raw(key))

    def delete(self, key: str) -> None:
        """DeleteObject, which S3 answers 204 whether or not the key existed."""
        full_key = self._key(key)
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=full_key)

    def copy(self, src_key: str, dst_key: str, *, storage_class: str | None = None) -> BlobInfo:
        """CopyObject, or UploadPartCopy ranges above ``copy_threshold``."""
        self._key(dst_key)
        head = self._head_raw(src_key)
        info = self._info_from_head(src_key, head)
        if info.restore is not None and not info.restore.readable:
            raise ObjectArchived(src_key, info.storage_class)
        target = storage_class or info.storage_class
        return self._server_copy(src_key, dst_key, head, info.size, target)

    def _server_copy(
        self, src_key: str, dst_key: str, head: Mapping[str, Any], size: int, target: str
    ) -> BlobInfo:
        source = {"Bucket": self.bucket, "Key": self._key(src_key)}
        full_dst = self._key(dst_key)
        s3_class = self._s3_class(target)
        etag = head.get("ETag")
        if size <= self.copy_threshold or size == 0:
            args: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": full_dst,
                "CopySource": source,
                "StorageClass": s3_class,
                "MetadataDirective": "COPY",
            }
            if etag:
                args["CopySourceIfMatch"] = etag
            with self._errors("copy", src_key):
                response = self.client.copy_object(**args)
            modified = response.get("CopyObjectResult", {}).get("LastModified")
            return BlobInfo(dst_key, size, target, modified_at=modified)
        return self._multipart_copy(src_key, dst_key, source, full_dst, size, target, etag)

    def _multipart_copy(
        self,
        src_key: str,
        dst_key: str,
        source: dict[str, str],
        full_dst: str,
        size: int,
        target: str,
        etag: str | None,
    ) -> BlobInfo:
        part_size = max(self.copy_part_size, math.ceil(size / MAX_PARTS / MiB) * MiB)
        with self._errors("copy", dst_key):
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=full_dst, **self._class_args(target)
            )["UploadId"]

        def copy_part(number: int, first: int, last: int) -> dict[str, Any]:
            args: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": full_dst,
                "UploadId": upload_id,
                "PartNumber": number,
                "CopySource": source,
                "CopySourceRange": f"bytes={first}-{last}",
            }
            if etag:
                args["CopySourceIfMatch"] = etag
            with self._errors("copy", src_key):
                response = self.client.upload_part_copy(**args)
            return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

        def jobs() -> Iterator[tuple[int, Callable[[], dict[str, Any]]]]:
            for index, first in enumerate(range(0, size, part_size)):
                last = min(first + part_size, size) - 1
                yield index + 1, functools.partial(copy_part, index + 1, first, last)

        try:
            parts = self._run_parts(jobs())
            with self._errors("copy", dst_key):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=full_dst,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort(full_dst, upload_id)
            raise
        return BlobInfo(dst_key, size, target, modified_at=datetime.now(UTC))

    def set_storage_class(self, key: str, storage_class: str) -> BlobInfo:
        """A copy onto itself into the new class (nothing when it is already there)."""
        check_storage_class(storage_class)
        head = self._head_raw(key)
        info = self._info_from_head(key, head)
        if info.storage_class == storage_class:
            return info
        if info.restore is not None and not info.restore.readable:
            raise ObjectArchived(key, info.storage_class)
        return self._server_copy(key, key, head, info.size, storage_class)

    def request_restore(self, key: str, *, days: int, tier: str = "Standard") -> RestoreStatus:
        """RestoreObject; an answer of RestoreAlreadyInProgress is the status, not an error."""
        check_restore_args(days, tier)
        full_key = self._key(key)
        try:
            self.client.restore_object(
                Bucket=self.bucket,
                Key=full_key,
                RestoreRequest={"Days": days, "GlacierJobParameters": {"Tier": tier}},
            )
        except ClientError as exc:
            code = _error_code(exc)[0]
            if code == "InvalidObjectState":
                info = self.head(key)
                if info.storage_class not in COLD_CLASSES:
                    raise InvalidArgument(
                        f"{key} is in storage class {info.storage_class}; it needs no restore"
                    ) from None
                raise self._translate(exc, "restore", key) from exc
            if code != "RestoreAlreadyInProgress":
                raise self._translate(exc, "restore", key) from exc
        except (BotoCoreError, OSError) as exc:
            raise self._translate(exc, "restore", key) from exc
        status = self.restore_status(key)
        # S3 may not show a just-accepted restore on HEAD yet; it is running all the same.
        return status if status.requested else RestoreStatus(requested=True, ongoing=True)

    def remove_leftovers(self, older_than: datetime) -> int:
        """Abort the incomplete multipart uploads under this backend's prefix started before
        ``older_than`` (a put or copy that died between its first and last request; S3
        bills their parts until they are aborted). As for the catalog's intents, no upload
        is expected to run longer than the orphan age."""
        paginator = self.client.get_paginator("list_multipart_uploads")
        aborted = 0
        with self._errors("list uploads", self.prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] >= older_than:
                        continue
                    with contextlib.suppress(self.client.exceptions.NoSuchUpload):
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        if aborted:
            log.info("s3 %s: aborted %d incomplete multipart uploads", self.name, aborted)
        return aborted

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """ListObjectsV2 pages, fetched as the caller iterates."""
        check_prefix(prefix)
        return self._list(prefix)

    def _list(self, prefix: str) -> Iterator[BlobInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + prefix,
            OptionalObjectAttributes=["RestoreStatus"],
        )
        strip = len(self.prefix)
        iterator = iter(pages)
        while True:
            with self._errors("list", prefix):
                page = next(iterator, None)
            if page is None:
                return
            for item in page.get("Contents", []):
                storage_class = self._our_class(item.get("StorageClass"))
                restore = None
                status = item.get("RestoreStatus")
                if status is not None and storage_class in COLD_CLASSES:
                    if status.get("IsRestoreInProgress"):
                        restore = RestoreStatus(requested=True, ongoing=True)
                    else:
                        restore = RestoreStatus(
                            requested=True, expires_at=status.get("RestoreExpiryDate")
                        )
                yield BlobInfo(
                    key=item["Key"][strip:],
                    size=int(item.get("Size", 0)),
                    storage_class=storage_class,
                    modified_at=item.get("LastModified"),
                    restore=restore,
                )

    def close(self) -> None:
        """Close the client's connection pool; idempotent."""
        if not self._closed.is_set():
            self._closed.set()
            with contextlib.suppress(Exception):
                self.client.close()

    def __repr__(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"<S3Backend {self.name!r} s3://{self.bucket}/{self.prefix} at {where}>"
