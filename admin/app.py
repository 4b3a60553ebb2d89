"""The admin listener's WSGI app: health probes and the REST API.

- ``GET /healthz``: 200 ``ok`` while the process serves requests (a liveness probe).
- ``GET /readyz``: 200 when the catalog answers and every backend is reachable, else 503
  with a JSON body naming what is wrong (a readiness probe; results are cached for a second
  so a busy probe cannot hammer the database).
- ``/api/v1/...``: the core and admin API (:mod:`admin.api`, :mod:`admin.routes`), with
  its OpenAPI document at ``/api/v1/openapi.json``.

Every domain error becomes ``{"error": code, "message": text}`` with the error's HTTP status
(a bad request field adds ``"field"``; too many failed logins answer 429 with
``Retry-After``); anything unexpected is logged with its request id and answered 500
without details.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from admin.api import API_PREFIX, Router
from admin.validation import ValidationError, Validator
from admin.wsgi import (
    PIECE,
    BodyReader,
    Environ,
    HTTPProblem,
    StartResponse,
    allow,
    error_payload,
    json_reply,
    request_path,
    text_reply,
)
from gateway.errors import CoolStorageError

if TYPE_CHECKING:
    from gateway.app import Gateway, Readiness

log = logging.getLogger(__name__)

#: Re-exported: the body reader every streamed upload uses, and its piece size.
__all__ = ["PIECE", "AdminApp", "BodyReader", "make_admin_app"]


class AdminApp:
    """The admin WSGI application for one :class:`~gateway.app.Gateway`.

    With ``background`` (what :func:`make_admin_app` does for ``serve``), a daemon thread
    finishes restore jobs whose destination is a bucket (:class:`admin.restores.CopyWorker`).
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        ready_cache_seconds: float = 1.0,
        background: bool = False,
        copy_interval: float = 2.0,
    ) -> None:
        from admin.restores import CopyWorker
        from admin.routes import ROUTES
        from admin.schemas import COMPONENTS
        from admin.service import ApiServices

        self.gateway = gateway
        self.ready_cache_seconds = ready_cache_seconds
        self._ready_lock = threading.Lock()
        self._ready: tuple[float, Readiness] | None = None
        self.services = ApiServices(gateway)
        self.router = Router(ROUTES, Validator(COMPONENTS), self.services)
        self.copy_worker = CopyWorker(
            self.services.restores, owner=gateway.instance_id, interval=copy_interval
        )
        if background:
            self.copy_worker.start()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            path = request_path(environ)
            if path == "/healthz":
                allow(method, "GET", "HEAD")
                return text_reply(start_response, 200, "ok\n", head=method == "HEAD")
            if path == "/readyz":
                allow(method, "GET", "HEAD")
                return self._readyz(start_response, head=method == "HEAD")
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                return self.router(environ, start_response, method, path[len(API_PREFIX) :] or "/")  # type: ignore[no-any-return]
            raise HTTPProblem(404, "NotFound", f"no such endpoint: {path}")
        except HTTPProblem as problem:
            return json_reply(
                start_response,
                problem.status,
                error_payload(problem.code, problem.message, problem.field),
                headers=problem.headers,
                head=method == "HEAD",
            )
        except ValidationError as error:
            return json_reply(
                start_response, 400, error_payload(error.code, str(error), error.field),
                head=method == "HEAD",
            )
        except CoolStorageError as error:
            retry_after = getattr(error, "retry_after", None)
            if isinstance(retry_after, int):
                return json_reply(
                    start_response, 429, error_payload("TooManyRequests", str(error)),
                    headers=[("Retry-After", str(retry_after))], head=method == "HEAD",
                )
            return json_reply(
                start_response, error.http_status, error_payload(error.code, str(error)),
                head=method == "HEAD",
            )
        except Exception:
            log.exception("unexpected error in the admin app")
            return json_reply(
                start_response,
                500,
                error_payload("InternalError", "internal error; see the gateway log"),
                head=method == "HEAD",
            )

    def close(self) -> None:
        """Stop the background thread (if any)."""
        self.copy_worker.stop()

    # -- health ----------------------------------------------------------------------------
    def _readyz(self, start_response: StartResponse, *, head: bool) -> Iterable[bytes]:
        readiness = self._readiness()
        if readiness.ready:
            return json_reply(start_response, 200, {"status": "ready"}, head=head)
        return json_reply(
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
                log.warning(
                    "not ready: %s", "; ".join(f"{k}: {v}" for k, v in readiness.problems.items())
                )
            return readiness


def make_admin_app(gateway: Gateway) -> AdminApp:
    """The admin listener's WSGI app (what :mod:`gateway.server` serves on ``admin_listen``),
    with its background restore copies running."""
    return AdminApp(gateway, background=True)
