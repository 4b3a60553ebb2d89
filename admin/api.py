"""The REST API's machinery: routes, requests, replies and the router.

Every operation is one :class:`Route` in :data:`admin.routes.ROUTES`. The same table drives
the router here and the OpenAPI document (:mod:`admin.openapi`), so what is served and what
is documented cannot drift apart: a route's parameters and body schema are what the router
checks before the handler runs, and its responses are what the tests validate replies
against.

A handler takes a :class:`Request` (the caller's principal, the checked path and query
parameters and JSON body) and returns a :class:`Reply`. It raises domain errors
(:mod:`gateway.errors`); the admin app renders them as ``{"error": code, "message": text}``
with the error's HTTP status, and anything unexpected as a 500 without details.

Authentication: ``Authorization: Bearer <token>`` with a token from ``POST /auth/token``,
or HTTP Basic with a user name and password (for scripts), both checked by the identity
service. Too many failed logins answer 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from admin.validation import ValidationError, Validator, coerce_query
from admin.wsgi import (
    BodyReader,
    Environ,
    HTTPProblem,
    StartResponse,
    StreamBody,
    content_length,
    empty_reply,
    json_reply,
    status_line,
)
from gateway.authn import AuthenticatorUnavailable
from gateway.errors import AccessDenied

if TYPE_CHECKING:
    from admin.service import ApiServices
    from gateway.principals import Principal

#: Where the API lives on the admin listener.
API_PREFIX = "/api/v1"
#: The largest JSON request body accepted.
MAX_JSON_BODY = 1 << 20
#: Path parameters that take the rest of the path, slashes included (object keys).
GREEDY_PARAMS = frozenset({"key"})

Handler = Callable[["Request"], "Reply"]

CHALLENGE = [("WWW-Authenticate", 'Bearer realm="coolstorage", Basic realm="coolstorage", charset="UTF-8"')]


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter of an operation."""

    name: str
    location: str
    schema: Mapping[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class ReplySpec:
    """One documented response of an operation: ``schema`` names a component (or is an
    inline schema); ``content_type`` None means no body."""

    description: str
    schema: str | Mapping[str, Any] | None = None
    content_type: str | None = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """One operation: what the router matches and checks, and what the document says."""

    method: str
    path: str
    operation_id: str
    handler: Handler
    summary: str
    tag: str
    responses: Mapping[int, ReplySpec]
    params: tuple[Param, ...] = ()
    #: Component name of the JSON request body, if the operation takes one.
    body: str | None = None
    body_required: bool = True
    #: The request body is raw bytes, streamed to the handler (uploads).
    stream_body: bool = False
    auth: bool = True
    description: str = ""

    def pattern(self) -> re.Pattern[str]:
        parts = []
        for segment in self.path.strip("/").split("/"):
            if segment.startswith("{") and segment.endswith("}"):
                name = segment[1:-1]
                parts.append(f"(?P<{name}>.+)" if name in GREEDY_PARAMS else f"(?P<{name}>[^/]+)")
            else:
                parts.append(re.escape(segment))
        return re.compile("/" + "/".join(parts))

    @property
    def literal_segments(self) -> int:
        return sum(1 for s in self.path.split("/") if s and not s.startswith("{"))


@dataclass
class Reply:
    """What a handler answers: a JSON ``body``, a byte ``stream``, or nothing (204)."""

    status: int = 200
    body: Any = None
    stream: Iterator[bytes] | None = None
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class Request:
    """One API call as a handler sees it."""

    def __init__(
        self,
        services: ApiServices,
        environ: Environ,
        route: Route,
        params: dict[str, Any],
        body: Any,
        principal: Principal | None,
        token: str | None,
    ) -> None:
        self.services = services
        self.environ = environ
        self.route = route
        #: Path and query parameters, converted and checked against their schemas.
        self.params = params
        #: The JSON body, checked against the route's body schema (None without one).
        self.body = body
        self._principal = principal
        #: The bearer token the request came with, if any (logout revokes it).
        self.token = token

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            raise HTTPProblem(401, "Unauthorized", "authentication required", CHALLENGE)
        return self._principal

    @property
    def client(self) -> str | None:
        address = self.environ.get("REMOTE_ADDR")
        return str(address) if address else None

    def header(self, name: str) -> str | None:
        value = self.environ.get("HTTP_" + name.upper().replace("-", "_"))
        if value is None and name.lower() == "content-type":
            value = self.environ.get("CONTENT_TYPE")
        return str(value) if value else None

    def body_reader(self) -> BodyReader:
        """The raw request body, read in bounded pieces (streamed routes only)."""
        return BodyReader(self.environ["wsgi.input"], content_length(self.environ))

    def body_length(self) -> int | None:
        return content_length(self.environ)

    def is_chunked(self) -> bool:
        return "chunked" in self.environ.get("HTTP_TRANSFER_ENCODING", "").lower()

    def url(self, path: str) -> str:
        """An absolute path of this API (``/api/v1`` + ``path``)."""
        return API_PREFIX + path


class Router:
    """Matches a path under :data:`API_PREFIX` to a route, checks the request against the
    route's schemas, authenticates, and runs the handler."""

    def __init__(
        self, routes: Sequence[Route], validator: Validator, services: ApiServices
    ) -> None:
        self.routes = list(routes)
        self.validator = validator
        self.services = services
        # Literal paths win over templated ones (``/objects/copy`` before ``/objects/{org}``).
        ordered = sorted(self.routes, key=lambda r: (-r.literal_segments, r.path.count("{")))
        self._compiled = [(r, r.pattern()) for r in ordered]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for ``method`` and ``path``; 404 or 405 problems otherwise."""
        allowed: list[str] = []
        for route, pattern in self._compiled:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET" and not any(
                r.method == "HEAD" and r.path == route.path for r in self.routes
            )):
                return route, found.groupdict()
            allowed.append(route.method)
        if allowed:
            raise HTTPProblem(
                405,
                "MethodNotAllowed",
                f"{method} is not allowed on {API_PREFIX}{path}",
                [("Allow", ", ".join(sorted(set(allowed))))],
            )
        raise HTTPProblem(404, "NotFound", f"no such endpoint: {API_PREFIX}{path}")

    def __call__(
        self, environ: Environ, start_response: StartResponse, method: str, path: str
    ) -> Any:
        route, raw_path = self.match(method, path)
        reader: BodyReader | None = None
        try:
            principal, token = self._authenticate(route, environ)
            params = self._params(route, raw_path, environ)
            body = None
            if route.stream_body:
                reader = BodyReader(environ["wsgi.input"], content_length(environ))
            elif route.body is not None:
                body = self._body(route, environ)
            request = Request(self.services, environ, route, params, body, principal, token)
            reply = route.handler(request)
        except BaseException:
            if reader is not None and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                with contextlib.suppress(Exception):
                    reader.drain()
            raise
        return self._render(start_response, reply, head=method == "HEAD")

    # -- checks ------------------------------------------------------------------------------
    def _params(self, route: Route, raw_path: Mapping[str, str], environ: Environ) -> dict[str, Any]:
        query: dict[str, str] = {}
        try:
            text = str(environ.get("QUERY_STRING", "") or "").encode("latin-1").decode("utf-8")
            pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
        except (UnicodeEncodeError, UnicodeDecodeError, ValueError):
            raise ValidationError("query", "the query string is not valid UTF-8") from None
        for name, value in pairs:
            query.setdefault(name, value)
        params: dict[str, Any] = {}
        for param in route.params:
            where = f"{param.location}.{param.name}"
            if param.location == "path":
                raw: str | None = raw_path.get(param.name)
            elif param.location == "query":
                raw = query.get(param.name)
            else:
                header = environ.get("HTTP_" + param.name.upper().replace("-", "_"))
                raw = str(header) if header is not None else None
            if raw is None:
                if param.required:
                    raise ValidationError(where, "is required")
                continue
            value = coerce_query(raw, param.schema, where)
            self.validator.validate(value, param.schema, where)
            params[param.name] = value
        return params

    def _body(self, route: Route, environ: Environ) -> Any:
        length = content_length(environ)
        if length is not None and length > MAX_JSON_BODY:
            raise HTTPProblem(413, "EntityTooLarge", f"a JSON body is at most {MAX_JSON_BODY} bytes")
        raw = BodyReader(environ["wsgi.input"], length).read(MAX_JSON_BODY + 1)
        if len(raw) > MAX_JSON_BODY:
            raise HTTPProblem(413, "EntityTooLarge", f"a JSON body is at most {MAX_JSON_BODY} bytes")
        if not raw.strip():
            if route.body_required:
                raise ValidationError("body", "a JSON body is required")
            return None
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValidationError("body", f"not valid JSON ({error})") from None
        schema = {"$ref": f"#/components/schemas/{route.body}"}
        self.validator.validate(body, schema, "body")
        return body

    def _authenticate(self, route: Route, environ: Environ) -> tuple[Principal | None, str | None]:
        if not route.auth:
            # Open routes (the document, logging in) ignore credentials, even stale ones.
            return None, None
        header = str(environ.get("HTTP_AUTHORIZATION", "") or "")
        if not header:
            raise HTTPProblem(
                401, "Unauthorized",
                "authentication required: send a bearer token or Basic credentials", CHALLENGE,
            )
        scheme, _, value = header.partition(" ")
        value = value.strip()
        identity = self.services.gateway.identity
        if scheme.lower() == "bearer" and value:
            return identity.authenticate_token(value), value
        if scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise HTTPProblem(401, "Unauthorized", "malformed Basic credentials", CHALLENGE) from None
            username, sep, password = decoded.partition(":")
            if not sep:
                raise HTTPProblem(401, "Unauthorized", "malformed Basic credentials", CHALLENGE)
            try:
                return identity.authenticate_password(
                    username, password, client=environ.get("REMOTE_ADDR")
                ), None
            except AuthenticatorUnavailable:
                raise
            except AccessDenied as error:
                if getattr(error, "retry_after", None) is not None:
                    raise
                raise HTTPProblem(401, "Unauthorized", str(error), CHALLENGE) from None
        raise HTTPProblem(401, "Unauthorized", "unsupported Authorization scheme (use Bearer or Basic)", CHALLENGE)

    # -- replies -----------------------------------------------------------------------------
    @staticmethod
    def _render(start_response: StartResponse, reply: Reply, *, head: bool) -> Any:
        if reply.stream is not None:
            start_response(
                status_line(reply.status),
                [("Content-Type", reply.content_type), *reply.headers],
            )
            if head:
                close = getattr(reply.stream, "close", None)
                if close is not None:
                    close()
                return []
            return StreamBody(reply.stream)
        if reply.body is None:
            return empty_reply(start_response, reply.status, reply.headers)
        return json_reply(start_response, reply.status, reply.body, headers=reply.headers, head=head)
