"""Domain errors become ``DAVError`` here, once, for the whole WebDAV front end.

The provider runs every ObjectService call inside :func:`translated`, which turns a
:class:`~gateway.errors.CoolStorageError` into the status a WebDAV client expects
(:func:`dav_error`); :class:`ErrorGuard`, the outermost wsgidav middleware, turns anything
that still escapes into a short text response, so a client never sees a traceback.

Bodies of these errors are short ``text/plain`` lines meant for people (a mounted drive
shows them rarely, ``curl`` and ``cadaver`` always); errors carrying a WebDAV condition
(``no-conflicting-lock``, ``propfind-finite-depth``) keep wsgidav's XML body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from wsgidav.dav_error import DAVError
from wsgidav.mw.base_mw import BaseMiddleware

from gateway.errors import (
    AccessDenied,
    AlreadyExists,
    BackendError,
    BucketNotEmpty,
    CatalogError,
    CoolStorageError,
    InvalidArgument,
    InvalidRange,
    NotArchived,
    NotFound,
    ObjectArchived,
    PreconditionFailed,
    QuotaExceeded,
    RestoreInProgress,
    VaultSealed,
)

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait after a retryable backend or catalog failure.
RETRY_SOON = 5


def status_line(code: int) -> str:
    """``"507 Insufficient Storage"`` (wsgidav's own table lacks several codes)."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Error"


class TextDAVError(DAVError):
    """A ``DAVError`` whose body is one short ``text/plain`` message."""

    def __init__(
        self, status: int, message: str, *, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(status, message, add_headers=headers)
        self.message = message

    def get_user_info(self) -> str:
        return f"{status_line(self.value)}: {self.message}"

    def get_response_page(self) -> tuple[str, bytes]:
        text = self.message.rstrip("\n") + "\n"
        return "text/plain; charset=utf-8", text.encode("utf-8")


def dav_error(error: CoolStorageError) -> DAVError:
    """The WebDAV answer to a domain error (RFC 4918 and RFC 4331 statuses)."""
    message = str(error)
    if isinstance(error, QuotaExceeded):
        return TextDAVError(507, message)
    if isinstance(error, ObjectArchived | VaultSealed | AccessDenied):
        return TextDAVError(403, message)
    if isinstance(error, NotFound):
        return TextDAVError(404, message)
    if isinstance(error, AlreadyExists | BucketNotEmpty | NotArchived):
        return TextDAVError(409, message)
    if isinstance(error, PreconditionFailed):
        return TextDAVError(412, message)
    if isinstance(error, InvalidRange):
        return TextDAVError(416, message)
    if isinstance(error, InvalidArgument):
        return TextDAVError(400, message)
    if isinstance(error, RestoreInProgress):
        return TextDAVError(503, message, headers=[("Retry-After", str(RETRY_SOON))])
    if isinstance(error, BackendError | CatalogError) or error.http_status == 503:
        # The catalog, a backend or the login directory is unreachable: not the client's
        # fault, and worth another try.
        headers = [("Retry-After", str(RETRY_SOON))] if error.retryable else None
        return TextDAVError(503, message, headers=headers)
    status = error.http_status if 400 <= error.http_status < 600 else 500
    if status >= 500:
        log.error("WebDAV request failed: %s: %s", error.code, message)
        return TextDAVError(status, f"{error.code}: the gateway could not complete the request")
    return TextDAVError(status, message)


@contextmanager
def translated() -> Iterator[None]:
    """Run a block of ObjectService calls; domain errors leave it as ``DAVError``."""
    try:
        yield
    except CoolStorageError as error:
        raise dav_error(error) from None


def as_dav_error(error: BaseException, request_id: str | None = None) -> DAVError:
    """Any exception as a ``DAVError``; unexpected ones are logged and become a 500 whose
    body names only the request id."""
    if isinstance(error, DAVError):
        return error
    if isinstance(error, CoolStorageError):
        return dav_error(error)
    log.error("WebDAV request failed unexpectedly: %s", type(error).__name__, exc_info=error)
    hint = f" (request id {request_id})" if request_id else ""
    return TextDAVError(500, f"internal error{hint}; the gateway log has the details")


def error_response(
    error: DAVError, environ: dict[str, Any]
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body for ``error``."""
    status = status_line(error.value)
    if error.value in (204, 304):
        return status, [("Content-Length", "0")], b""
    if isinstance(error, TextDAVError) or error.err_condition is not None:
        content_type, body = error.get_response_page()
    else:
        text = str(error.context_info or HTTPStatus(error.value).description or status)
        content_type, body = "text/plain; charset=utf-8", f"{status}: {text}\n".encode()
    if environ.get("REQUEST_METHOD") == "HEAD" or not error.add_body:
        body = b""
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    headers += list(error.add_headers or [])
    if error.value == 401:
        realm = environ.get("wsgidav.auth.realm") or "Cool Storage"
        headers.append(("WWW-Authenticate", f'Basic realm="{realm}"'))
    return status, headers, body


class ErrorGuard(BaseMiddleware):
    """The outermost wsgidav middleware: whatever goes wrong below becomes a short
    response (``DAVError`` as is, domain errors through :func:`dav_error`, the rest a
    logged 500), as long as the response has not started. Once body bytes are on their
    way, the error is logged and the connection is dropped, so the client sees a cut-off
    body rather than a wrong one."""

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        pending: dict[str, Any] = {}

        def defer(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            pending["status"], pending["headers"] = status, headers
            return lambda data: None

        started = False
        try:
            result: Iterable[bytes] = self.next_app(environ, defer)
            try:
                for chunk in result:
                    if not started:
                        start_response(pending["status"], pending["headers"])
                        started = True
                    yield chunk
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if not started:
                start_response(pending["status"], pending["headers"])
        except Exception as error:
            if started:
                log.warning(
                    "WebDAV response cut off after it started: %s: %s", type(error).__name__, error
                )
                raise
            dav = as_dav_error(error, environ.get("coolstorage.request_id"))
            status, headers, body = error_response(dav, environ)
            start_response(status, headers)
            yield body
