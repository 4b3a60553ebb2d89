"""The S3 endpoint: a WSGI app that translates S3 requests into ObjectService calls.

Every request goes through the same steps:

1. **Authenticate** with AWS Signature V4 (header or presigned URL,
   :func:`protocols.s3.sigv4.verify_request`), the secret coming from
   ``gateway.identity.authenticate_access_key``; an anonymous request is ``AccessDenied``.
2. **Address**: bucket and key from the path, or from the Host for virtual-hosted style
   (``[s3] base_domains``), validated (:func:`protocols.s3.names.parse_address`).
3. **Route** by method and sub-resource to a handler named after the S3 action
   (:func:`protocols.s3.router.resolve`), which calls the ObjectService and renders XML.
4. **Answer**: a body is bytes or the service's plaintext iterator, always with an exact
   Content-Length; HEAD sends the headers alone.

Failures are translated once, here: an S3 error renders as itself, a domain error through
:func:`protocols.s3.errors.from_domain`, anything else is logged with its traceback and
answered ``InternalError`` with no internals. Every error body carries the request id of
the logging middleware (also sent as ``x-amz-request-id``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.config import S3Config
from gateway.errors import CoolStorageError
from gateway.identity import UnknownAccessKey
from gateway.logs import current_request_id, new_request_id
from protocols.s3.buckets import BucketActions
from protocols.s3.errors import (
    AccessDenied,
    InternalError,
    S3Error,
    from_domain,
    render_error,
)
from protocols.s3.multipart import MultipartActions
from protocols.s3.names import parse_address
from protocols.s3.objects import ObjectActions
from protocols.s3.request import XML_TYPE, S3Request, S3Response, status_line
from protocols.s3.router import resolve
from protocols.s3.sigv4 import verify_request

if TYPE_CHECKING:
    from gateway.app import Gateway
    from gateway.identity import IdentityService
    from gateway.objects import ObjectService

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class S3App(BucketActions, ObjectActions, MultipartActions):
    """The S3 WSGI application over an ObjectService and an IdentityService."""

    def __init__(
        self,
        objects: ObjectService,
        identity: IdentityService,
        settings: S3Config | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        observer: Callable[[S3Request], None] | None = None,
    ) -> None:
        """``clock`` gives the server time SigV4 compares with (tests move it);
        ``observer`` is called with every authenticated request before it is handled
        (tests record the payload modes clients use)."""
        self.objects = objects
        self.identity = identity
        self.settings = settings or S3Config()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.observer = observer

    # -- WSGI ------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        req = S3Request(environ, secure=self._secure(environ))
        if not req.request_id:
            req.request_id = current_request_id() or new_request_id()
        try:
            resp = self.handle(req)
        except S3Error as err:
            resp = self._error(req, err)
        except CoolStorageError as exc:
            resp = self._error(req, from_domain(exc, req.resource))
        except Exception:
            log.exception("S3 %s %s failed", req.action or req.method, req.resource)
            resp = self._error(req, InternalError())
        if resp.status >= 300:
            self._drain(environ)
        return self._send(req, resp, start_response)

    def _drain(self, environ: dict[str, Any]) -> None:
        """Read what is left of a chunked request body answered early (an error).

        cheroot drains a Content-Length body itself before answering but not a chunked one
        (botocore sends aws-chunked bodies that way), and it keeps the connection open: the
        unread rest would be parsed as the next request.
        """
        if not environ.get("wsgi.input_terminated"):
            return
        stream = environ.get("wsgi.input")
        budget = self.settings.max_object_size + (1 << 20)
        try:
            while budget > 0:
                data = stream.read(1 << 20) if stream is not None else b""
                if not data:
                    return
                budget -= len(data)
        except (OSError, ValueError):
            return

    def _secure(self, environ: dict[str, Any]) -> bool:
        if environ.get("wsgi.url_scheme") == "https":
            return True
        if self.settings.trust_forwarded_proto:
            proto = str(environ.get("HTTP_X_FORWARDED_PROTO", "")).split(",")[0].strip()
            return proto.lower() == "https"
        return False

    def handle(self, req: S3Request) -> S3Response:
        """Authenticate, address, route and run one request (errors propagate)."""
        self.authenticate(req)
        address = parse_address(req.raw_path, req.header("host"), self.settings.base_domains)
        req.bucket, req.key = address.bucket, address.key
        if self.observer is not None:
            self.observer(req)
        req.action = resolve(req)
        handler: Callable[[S3Request], S3Response] = getattr(self, req.action)
        return handler(req)

    def authenticate(self, req: S3Request) -> None:
        """Verify the signature and set ``req.auth``, ``req.principal`` and ``req.org``."""
        found: dict[str, Any] = {}

        def lookup(access_key_id: str) -> str | None:
            try:
                principal, secret = self.identity.authenticate_access_key(access_key_id)
            except UnknownAccessKey:
                return None
            found["principal"] = principal
            return secret

        req.auth = verify_request(
            req.method, req.raw_path, req.raw_query, req.headers, lookup, self.clock(), params=req.params
        )
        principal = found["principal"]
        orgs = principal.orgs()
        org = principal.scope_org if principal.scope_org in orgs else (orgs[0] if orgs else None)
        if org is None:
            raise AccessDenied("The access key's user belongs to no organisation.")
        req.principal = principal
        req.org = org

    # -- answers ---------------------------------------------------------------------------
    def _error(self, req: S3Request, err: S3Error) -> S3Response:
        if err.status >= 500:
            log.warning("S3 %s %s: %s", req.action or req.method, req.resource, err)
        body = render_error(err, req.request_id, resource=req.resource)
        resp = S3Response(err.status, list(err.headers.items()), body)
        if body:
            resp.content_type = XML_TYPE
        if err.status == 304:
            resp.body = b""
        return resp

    def _send(self, req: S3Request, resp: S3Response, start_response: StartResponse) -> Iterable[bytes]:
        headers = [(name, value) for name, value in resp.headers]
        if resp.content_type is not None:
            headers.append(("Content-Type", resp.content_type))
        if isinstance(resp.body, bytes):
            length: int | None = len(resp.body)
        else:
            length = resp.length
        if resp.status not in (204, 304) and length is not None:
            headers.append(("Content-Length", str(length)))
        elif resp.status == 204 or (resp.status == 304):
            length = 0
        headers.append(("x-amz-request-id", req.request_id))
        start_response(status_line(resp.status), headers)
        if req.method == "HEAD" or resp.status in (204, 304):
            _close(resp.body)
            return []
        if isinstance(resp.body, bytes):
            return [resp.body]
        return _Streamed(resp.body, req)


def _close(body: object) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


class _Streamed:
    """The body of a streamed answer: logs a failure mid-stream (the status is sent, so the
    connection is cut, and the client sees a short body) and always closes the source."""

    def __init__(self, body: Iterable[bytes], req: S3Request) -> None:
        self._body = body
        self._req = req

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._body:
                if chunk:
                    yield chunk
        except GeneratorExit:
            raise
        except Exception:
            log.exception("S3 %s %s failed while streaming the body", self._req.action, self._req.resource)
            raise

    def close(self) -> None:
        _close(self._body)


def make_s3_app(gateway: Gateway) -> S3App:
    """The S3 listener's app for an opened gateway (``gateway.server.s3_app``)."""
    settings = getattr(gateway.config, "s3", None)
    return S3App(gateway.objects, gateway.identity, settings)
