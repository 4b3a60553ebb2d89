"""WSGI plumbing shared by the admin app and the API: problems, bodies, ranges, replies."""

from __future__ import annotations

import http
import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gateway.errors import InvalidArgument
from gateway.request_line import decoded_path

#: Size of the pieces request bodies are read in.
PIECE = 1024 * 1024

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class HTTPProblem(Exception):
    """An HTTP-level refusal that is not a domain error (bad auth header, wrong method)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Iterable[tuple[str, str]] = (),
        *,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)
        self.field = field


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

    def drain(self, limit: int = 64 * PIECE) -> None:
        """Read and drop what is left of a body answered early (at most ``limit`` bytes),
        so the connection can be kept."""
        dropped = 0
        while dropped < limit:
            piece = self.read(min(PIECE, limit - dropped))
            if not piece:
                return
            dropped += len(piece)


class StreamBody:
    """A response body over the service's byte iterator, closed when the server is done."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def request_path(environ: Environ) -> str:
    """The request path as text, decoded once and completely from the request line
    (:mod:`gateway.request_line`): PEP 3333 passes the decoded bytes as latin-1; keys are
    UTF-8."""
    raw = decoded_path(environ) or "/"
    try:
        return str(raw.encode("latin-1").decode("utf-8"))
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise HTTPProblem(400, "InvalidURI", "the path is not valid UTF-8") from None


def allow(method: str, *allowed: str) -> None:
    """405 unless ``method`` is one of ``allowed``."""
    if method not in allowed:
        raise HTTPProblem(
            405, "MethodNotAllowed", f"{method} is not allowed here", [("Allow", ", ".join(allowed))]
        )


def content_length(environ: Environ) -> int | None:
    """The declared body length (None when absent); ``InvalidArgument`` if malformed."""
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


def parse_range(header: str | None) -> Any:
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


def status_line(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Error"


def text_reply(
    start_response: StartResponse, code: int, text: str, *, head: bool = False
) -> list[bytes]:
    body = text.encode()
    start_response(
        status_line(code),
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [] if head else [body]


def json_reply(
    start_response: StartResponse,
    code: int,
    payload: object,
    *,
    headers: Iterable[tuple[str, str]] = (),
    head: bool = False,
) -> list[bytes]:
    body = (json.dumps(payload, ensure_ascii=False) + "\n").encode()
    start_response(
        status_line(code),
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            *headers,
        ],
    )
    return [] if head else [body]


def empty_reply(
    start_response: StartResponse, code: int, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    start_response(
        status_line(code), [*([] if code == 204 else [("Content-Length", "0")]), *headers]
    )
    return []


def error_payload(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    """The body of every error answer: ``{"error": code, "message": text}`` (+ ``field``)."""
    payload: dict[str, Any] = {"error": code, "message": message}
    if field:
        payload["field"] = field
    return payload
