"""One S3 request as the handlers see it, and the response they build.

:class:`S3Request` wraps a WSGI environ: the raw (still percent-encoded) path and query as
sent, which SigV4 needs; the decoded query parameters; the headers with lowercase names;
the addressed bucket and key; and, once authenticated, the principal and the org it acts
in. :class:`S3Response` is what a handler returns: a status, headers and a body that is
either bytes or an iterator of chunks (an object's plaintext, streamed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.request_line import raw_target
from protocols.s3.errors import InvalidArgument, InvalidRequest
from protocols.s3.sigv4 import AuthContext, query_params

if TYPE_CHECKING:
    from gateway.principals import Principal
    from protocols.s3.chunked import Readable

#: Statuses with their reason phrases, as the WSGI status line needs them.
REASONS: dict[int, str] = {
    200: "OK",
    202: "Accepted",
    204: "No Content",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    412: "Precondition Failed",
    416: "Requested Range Not Satisfiable",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

XML_TYPE = "application/xml"


def status_line(status: int) -> str:
    return f"{status} {REASONS.get(status, 'Unknown')}"


def _wsgi_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in environ.items():
        if name.startswith("HTTP_"):
            headers[name[5:].replace("_", "-").lower()] = value
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    return headers


class S3Request:
    """A request being served (see the module doc)."""

    def __init__(self, environ: dict[str, Any], *, secure: bool) -> None:
        self.environ = environ
        self.method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        self.raw_path, self.raw_query = raw_target(environ)
        self.params: dict[str, list[str]] = query_params(self.raw_query)
        self.headers = _wsgi_headers(environ)
        self.secure = secure
        self.request_id: str = environ.get("coolstorage.request_id") or ""
        self.bucket: str | None = None
        self.key: str | None = None
        self.auth: AuthContext | None = None
        self.principal: Principal | None = None
        self.org: str = ""
        #: The S3 action the router chose (for logs and error context).
        self.action: str = ""

    @property
    def input(self) -> Readable:
        stream: Readable = self.environ["wsgi.input"]
        return stream

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter (None if absent)."""
        values = self.params.get(name)
        return values[0] if values else default

    def has(self, name: str) -> bool:
        return name in self.params

    def int_param(self, name: str, default: int, *, low: int = 0, high: int = 2**31 - 1) -> int:
        """An integer query parameter, ``InvalidArgument`` if it is not one in range."""
        raw = self.param(name)
        if raw is None or raw == "":
            return default
        text = raw.strip()
        if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 12:
            raise InvalidArgument(
                f"Provided {name} not an integer or within integer range",
                ArgumentName=name,
                ArgumentValue=raw[:64],
            )
        value = int(text)
        if not low <= value <= high:
            raise InvalidArgument(
                f"Argument {name} must be an integer between {low} and {high}",
                ArgumentName=name,
                ArgumentValue=raw[:64],
            )
        return value

    @property
    def content_length(self) -> int | None:
        """The Content-Length header (None if absent); ``InvalidRequest`` if malformed."""
        raw = self.headers.get("content-length")
        if raw is None or raw.strip() == "":
            return None
        text = raw.strip()
        if not text.isdigit() or len(text) > 15:
            raise InvalidRequest("The Content-Length header is not a valid length.")
        return int(text)

    @property
    def resource(self) -> str:
        """What error bodies name as the Resource: ``/bucket/key`` (decoded)."""
        if self.bucket is None:
            return "/"
        return f"/{self.bucket}" + (f"/{self.key}" if self.key is not None else "")

    @property
    def user_id(self) -> int | None:
        return self.principal.user_id if self.principal is not None else None


@dataclass
class S3Response:
    """A handler's answer. ``body`` bytes get a Content-Length; an iterator needs
    ``length`` (S3 always sends Content-Length, so a streamed body declares it)."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | Iterable[bytes] = b""
    length: int | None = None
    content_type: str | None = None

    def add(self, name: str, value: str | None) -> None:
        if value is not None:
            self.headers.append((name, value))

    @classmethod
    def xml(cls, body: bytes, status: int = 200) -> S3Response:
        return cls(status=status, body=body, content_type=XML_TYPE)

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.body, bytes):
            yield self.body
        else:
            yield from self.body
