"""Logging: one line per event on stderr, as text for people or JSON for machines.

Every line written while a request is being served carries that request's id (the
``X-Request-Id`` the client sent, or one made up here), so the lines of one request can be
found among many threads. :class:`RequestIdMiddleware` sets it for WSGI apps; the engine sets
its own ids per task run with :func:`bind_request_id`.

Secret values of the configuration are registered with :func:`register_secret` at start-up
and masked as ``***`` by the formatters, wherever they would appear (an exception message
quoting a database URL, say): a second line of defence behind :class:`gateway.config.Secret`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

#: The id of the request (or engine task run) the current thread is working for.
request_id: ContextVar[str | None] = ContextVar("coolstorage_request_id", default=None)

_REQUEST_ID_OK = re.compile(r"[A-Za-z0-9._:-]{1,128}")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_secret_pattern: re.Pattern[str] | None = None

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is shown.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)

access_log = logging.getLogger("coolstorage.access")


def new_request_id() -> str:
    """A fresh, short, random request id."""
    return secrets.token_hex(8)


def current_request_id() -> str | None:
    """The request id of the work in progress on this thread, if any."""
    return request_id.get()


@contextlib.contextmanager
def bind_request_id(value: str | None = None) -> Iterator[str]:
    """Run a block under a request id (a new one unless given); yields the id."""
    rid = value or new_request_id()
    token = request_id.set(rid)
    try:
        yield rid
    finally:
        request_id.reset(token)


def register_secret(value: str) -> None:
    """Mask ``value`` in every log line from now on. Short values (under 6 characters)
    are ignored: masking them would garble ordinary words."""
    global _secret_pattern
    if len(value) < 6:
        return
    with _secrets_lock:
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _secret_pattern
    return pattern.sub("***", text) if pattern is not None else text


class TextFormatter(logging.Formatter):
    """``2024-05-01T12:00:00.123Z INFO gateway.server [rid] message key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        stamp += f".{int(record.msecs):03d}Z"
        rid = getattr(record, "request_id", None) or request_id.get()
        parts = [stamp, f"{record.levelname:<7}", record.name]
        if rid:
            parts.append(f"[{rid}]")
        parts.append(record.getMessage())
        extras = _extras(record)
        if extras:
            parts.append(" ".join(f"{k}={_short(v)}" for k, v in extras.items()))
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and key != "request_id" and not key.startswith("_")
    }


def _short(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (" " in text or not text) else text


def setup_logging(level: str = "info", fmt: str = "text", *, stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stderr) in ``fmt`` (``text`` or ``json``).

    Replaces any handler installed before, so calling it again (a CLI that reads its config
    after parsing) is fine. Chatty libraries are kept at WARNING unless ``level`` is debug.
    """
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = getattr(logging, level.upper(), logging.INFO)
    root.setLevel(numeric)
    quiet = logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
    for name in ("botocore", "boto3", "urllib3", "s3transfer", "alembic", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(quiet, numeric))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record (so a test harness
    swapping it, or a closed earlier stream, never breaks logging)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


# -- WSGI ----------------------------------------------------------------------------------

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestIdMiddleware:
    """Give each request an id, make it the logging context, return it as ``X-Request-Id``,
    and write one access-log line when the response is finished.

    A client's own ``X-Request-Id`` is kept when it looks like an id (letters, digits,
    ``._:-``, at most 128 characters), so a proxy's id follows the request through.
    The id is also in ``environ["coolstorage.request_id"]``.
    """

    def __init__(self, app: WSGIApp, *, listener: str = "") -> None:
        self.app = app
        self.listener = listener

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_X_REQUEST_ID", "")
        rid = given if _REQUEST_ID_OK.fullmatch(given) else new_request_id()
        environ["coolstorage.request_id"] = rid
        token = request_id.set(rid)
        state: dict[str, Any] = {"status": "-", "started": time.monotonic(), "sent": 0}

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            state["status"] = status.split(" ", 1)[0]
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-Id", rid))
            return start_response(status, headers, exc_info) if exc_info else start_response(
                status, headers
            )

        try:
            result = self.app(environ, start)
        except BaseException:
            self._finish(environ, state, rid)
            request_id.reset(token)
            raise
        return _ClosingIterable(result, lambda: self._finish(environ, state, rid), token, state)

    def _finish(self, environ: dict[str, Any], state: dict[str, Any], rid: str) -> None:
        access_log.info(
            "%s %s %s",
            environ.get("REQUEST_METHOD", "-"),
            environ.get("PATH_INFO", "") or "/",
            state["status"],
            extra={
                "request_id": rid,
                "listener": self.listener,
                "bytes": state["sent"],
                "ms": round((time.monotonic() - state["started"]) * 1000, 1),
                "client": environ.get("REMOTE_ADDR", "-"),
            },
        )


class _ClosingIterable:
    """Wraps a response body: keeps the request id bound while cheroot iterates it (on the
    same thread), counts bytes, and logs/unbinds on ``close()``."""

    def __init__(
        self,
        inner: Iterable[bytes],
        on_close: Callable[[], None],
        token: Any,
        state: dict[str, Any],
    ) -> None:
        self._inner = inner
        self._on_close = on_close
        self._token = token
        self._state = state
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._state["sent"] += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()
            with contextlib.suppress(ValueError):
                # ValueError: reset from another context (should not happen in cheroot).
                request_id.reset(self._token)
