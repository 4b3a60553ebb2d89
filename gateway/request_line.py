"""The request target as the client sent it, and ``PATH_INFO`` decoded from it.

cheroot percent-decodes the path into ``PATH_INFO`` except ``%2F``, which it leaves as it
is, and it decodes ``%252F`` to the same three characters: ``/a%2Fb`` (an encoded slash)
and ``/a%252Fb`` (a name with a literal ``%2F``) reached the front ends alike. The S3 front
end reads the raw target (SigV4 signs it); the WebDAV front end (through
:class:`DecodedPath`) and the admin API (through :func:`decoded_path`) read the path
decoded once and completely from it, so ``%2F`` is a slash, as in S3, and a literal ``%2F``
in a name stays one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def raw_target(environ: Mapping[str, Any]) -> tuple[str, str]:
    """The path and query exactly as sent on the request line (still percent-encoded)."""
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if uri:
        if "://" in uri.split("?", 1)[0]:
            parts = urlsplit(uri)
            return parts.path or "/", parts.query
        path, _, query = uri.partition("?")
        return path or "/", query
    # Not cheroot: rebuild from the decoded PATH_INFO (WSGI's latin-1 transport form).
    path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/-_.~!$&'()*+,;=:@")
    return path or "/", environ.get("QUERY_STRING", "")


def decoded_path(environ: Mapping[str, Any]) -> str:
    """The request path decoded once and completely, in WSGI's latin-1 transport form
    (``PATH_INFO`` itself where no raw request line is known)."""
    if environ.get("REQUEST_URI") or environ.get("RAW_URI"):
        path, _ = raw_target(environ)
        return unquote_to_bytes(path).decode("latin-1")
    return str(environ.get("PATH_INFO", ""))


class DecodedPath:
    """Sets ``PATH_INFO`` to the raw request path decoded once, completely (WSGI's
    latin-1 transport form of the bytes), then calls ``app``."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["PATH_INFO"] = decoded_path(environ)
        return self.app(environ, start_response)

    def close(self) -> None:
        """Close the wrapped app, if it can be."""
        close = getattr(self.app, "close", None)
        if close is not None:
            close()
