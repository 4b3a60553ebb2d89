"""The admin listener's WSGI app: health probes and, for now, a raw object route.

- ``GET /healthz``: 200 ``ok`` while the process serves requests (a liveness probe).
- ``GET /readyz``: 200 when the catalog answers and every backend is reachable, else 503
  with a JSON body naming what is wrong (a readiness probe; results are cached for a second
  so a busy probe cannot hammer the database).
- ``/api/v1/raw/{org}/{bucket}[/{key...}]`` with HTTP Basic auth (checked by the gateway's
  identity service, as WebDAV's is):
  ``PUT`` a bucket or an object, ``GET``/``HEAD`` an object (``Range`` supported),
  ``DELETE`` an object or an empty bucket. Bodies stream through in pieces of at most 1 MiB
  both ways. This is the smallest way to reach the ObjectService over HTTP until the core
  API (a later issue) lives here too.

Every domain error becomes ``{"error": code, "message": text}`` with the error's HTTP status;
anything unexpected is logged with its request id and answered 500 without details.
"""

from __future__ import annotations

import base64
import binascii
import http
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from gateway.errors import AccessDenied, CoolStorageError, InvalidArgument

if TYPE_CHECKING:
    from gateway.app import Gateway, Readiness
    from gateway.principals import Principal

log = logging.getLogger(__name__)

#: Size of the pieces request bodies are read in.
PIECE = 1024 * 1024
RAW_PREFIX = "/api/v1/raw/"

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class HTTPProblem(Exception):
    """An HTTP-level refusal that is not a domain error (bad auth header, wrong method)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)


class BodyReader:
    """A file-like view of a request body that reads ``wsgi.input`` in bounded pieces.

    ``read(n)`` returns exactly ``n`` bytes unless the body ends first (the sealer reads
    fixed blocks), gathered from reads of at most :data:`PIECE` bytes; ``read()`` with no
    size returns the rest of the body and is meant for small bodies only.
    """

    def __init__(self, stream: Any, length: int | None) -> None:
        self._stream = stream
        self._remaining = length  # None: chunked, read until the stream ends

    def read(self, size: int = -1) -> bytes:
        pieces: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while wanted is None or got < wanted:
            piece_size = PIECE if wanted is None else min(PIECE, wanted - got)
            if self._remaining is not None:
                piece_size = min(piece_size, self._remaining)
                if piece_size == 0:
                    break
            piece = self._stream.read(piece_size)
            if not piece:
                break
            if self._remaining is not None:
                self._remaining -= len(piece)
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)


class AdminApp:
    """The admin WSGI application for one :class:`~gateway.app.Gateway`."""

    def __init__(self, gateway: Gateway, *, ready_cache_seconds: float = 1.0) -> None:
        self.gateway = gateway
        self.ready_cache_seconds = ready_cache_seconds
        self._ready_lock = threading.Lock()
        self._ready: tuple[float, Readiness] | None = None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = _path(environ)
        try:
            if path == "/healthz":
                _allow(method, "GET", "HEAD")
                return _text(start_response, 200, "ok\n", head=method == "HEAD")
            if path == "/readyz":
                _allow(method, "GET", "HEAD")
                return self._readyz(start_response, head=method == "HEAD")
            if path.startswith(RAW_PREFIX):
                return self._raw(environ, start_response, method, path[len(RAW_PREFIX) :])
            raise HTTPProblem(404, "NotFound", f"no such endpoint: {path}")
        except HTTPProblem as problem:
            return _json(
                start_response,
                problem.status,
                {"error": problem.code, "message": problem.message},
                headers=problem.headers,
            )
        except CoolStorageError as error:
            return _json(
                start_response, error.http_status, {"error": error.code, "message": str(error)}
            )
        except Exception:
            log.exception("unexpected error in the admin app")
            return _json(
                start_response,
                500,
                {"error": "InternalError", "message": "internal error; see the gateway log"},
            )

    # -- health ----------------------------------------------------------------------------
    def _readyz(self, start_response: StartResponse, *, head: bool) -> Iterable[bytes]:
        readiness = self._readiness()
        if readiness.ready:
            return _json(start_response, 200, {"status": "ready"}, head=head)
        return _json(
            start_response,
            503,
            {"status": "not ready", "problems": readiness.problems},
            head=head,
        )

    def _readiness(self) -> Readiness:
        now = time.monotonic()
        with self._ready_lock:
            if self._ready is not None and now - self._ready[0] < self.ready_cache_seconds:
                return self._ready[1]
            readiness = self.gateway.readiness()
            self._ready = (time.monotonic(), readiness)
            if not readiness.ready:
                log.warning("not ready: %s", "; ".join(f"{k}: {v}" for k, v in readiness.problems.items()))
            return readiness

    # -- raw objects -----------------------------------------------------------------------
    def _raw(
        self, environ: Environ, start_response: StartResponse, method: str, rest: str
    ) -> Iterable[bytes]:
        parts = rest.split("/", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise HTTPProblem(
                404, "NotFound", "expected /api/v1/raw/{org}/{bucket} or /api/v1/raw/{org}/{bucket}/{key}"
            )
        org, bucket = parts[0], parts[1]
        key = parts[2] if len(parts) == 3 else ""
        principal = self._authenticate(environ)
        objects = self.gateway.objects

        if not key:
            _allow(method, "PUT", "DELETE")
            if method == "PUT":
                objects.create_bucket(principal, org, bucket)
                return _json(start_response, 201, {"org": org, "bucket": bucket})
            objects.delete_bucket(principal, org, bucket)
            return _empty(start_response, 204)

        _allow(method, "GET", "HEAD", "PUT", "DELETE")
        if method == "PUT":
            length = _content_length(environ)
            chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
            if length is None and not chunked:
                raise HTTPProblem(411, "MissingContentLength", "send Content-Length or a chunked body")
            record = objects.put_object(
                principal,
                org,
                bucket,
                key,
                BodyReader(environ["wsgi.input"], length),  # type: ignore[arg-type]
                size=length,
                content_type=environ.get("CONTENT_TYPE") or "application/octet-stream",
            )
            return _json(
                start_response,
                201,
                {"key": record.key, "size": record.size, "etag": record.etag},
                headers=[("ETag", record.etag)],
            )
        if method == "DELETE":
            objects.delete_object(principal, org, bucket, key)
            return _empty(start_response, 204)
        if method == "HEAD":
            view = objects.head_object(principal, org, bucket, key)
            record = view.record
            start_response(
                "200 OK",
                [
                    ("Content-Type", record.content_type),
                    ("Content-Length", str(record.size)),
                    ("ETag", record.etag),
                    ("Last-Modified", format_datetime(record.modified_at, usegmt=True)),
                    ("Accept-Ranges", "bytes"),
                ],
            )
            return []

        byte_range = _parse_range(environ.get("HTTP_RANGE"))
        read = objects.get_object(principal, org, bucket, key, byte_range=byte_range)
        record = read.view.record
        headers = [
            ("Content-Type", record.content_type),
            ("Content-Length", str(read.length)),
            ("ETag", record.etag),
            ("Last-Modified", format_datetime(record.modified_at, usegmt=True)),
            ("Accept-Ranges", "bytes"),
        ]
        status = "200 OK"
        if byte_range is not None:
            status = "206 Partial Content"
            headers.append(("Content-Range", f"bytes {read.start}-{read.stop - 1}/{record.size}"))
        start_response(status, headers)
        return _Body(read.body)

    def _authenticate(self, environ: Environ) -> Principal:
        challenge = [("WWW-Authenticate", 'Basic realm="coolstorage", charset="UTF-8"')]
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            raise HTTPProblem(401, "Unauthorized", "HTTP Basic authentication required", challenge)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPProblem(401, "Unauthorized", "malformed Basic credentials", challenge) from None
        username, sep, password = decoded.partition(":")
        if not sep:
            raise HTTPProblem(401, "Unauthorized", "malformed Basic credentials", challenge)
        try:
            return self.gateway.identity.authenticate_password(
                username, password, client=environ.get("REMOTE_ADDR")
            )
        except AccessDenied as error:
            raise HTTPProblem(401, "Unauthorized", str(error), challenge) from None


def make_admin_app(gateway: Gateway) -> AdminApp:
    """The admin listener's WSGI app (what :mod:`gateway.server` serves on ``admin_listen``)."""
    return AdminApp(gateway)


# -- helpers -------------------------------------------------------------------------------


class _Body:
    """A response body over the service's byte iterator, closed when cheroot is done."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def _path(environ: Environ) -> str:
    raw = environ.get("PATH_INFO", "") or "/"
    try:
        # PEP 3333: PATH_INFO is the URL-decoded bytes as latin-1; keys are UTF-8.
        return str(raw.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise HTTPProblem(400, "InvalidURI", "the path is not valid UTF-8") from None


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise HTTPProblem(
            405, "MethodNotAllowed", f"{method} is not allowed here", [("Allow", ", ".join(allowed))]
        )


def _content_length(environ: Environ) -> int | None:
    value = environ.get("CONTENT_LENGTH", "")
    if value in ("", None):
        return None
    try:
        length = int(value)
    except ValueError:
        raise InvalidArgument(f"Content-Length {value!r}") from None
    if length < 0:
        raise InvalidArgument(f"Content-Length {value!r}")
    return length


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _parse_range(header: str | None) -> Any:
    """A :class:`gateway.objects.RangeSpec` for a single-range ``Range`` header, else None
    (a multi-range or malformed header is ignored, as HTTP allows)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    from gateway.objects import RangeSpec

    start = int(match.group(1)) if match.group(1) else None
    end = int(match.group(2)) if match.group(2) else None
    return RangeSpec(start, end)


def _status(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Error"


def _text(start_response: StartResponse, code: int, text: str, *, head: bool = False) -> list[bytes]:
    body = text.encode()
    start_response(
        _status(code),
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [] if head else [body]


def _json(
    start_response: StartResponse,
    code: int,
    payload: object,
    *,
    headers: Iterable[tuple[str, str]] = (),
    head: bool = False,
) -> list[bytes]:
    body = (json.dumps(payload) + "\n").encode()
    start_response(
        _status(code),
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *headers,
        ],
    )
    return [] if head else [body]


def _empty(start_response: StartResponse, code: int) -> list[bytes]:
    start_response(_status(code), [] if code == 204 else [("Content-Length", "0")])
    return []
