"""The OpenAPI 3.1 document of ``/api/v1``, built from the route table and the schema
components (:data:`admin.routes.ROUTES`, :data:`admin.schemas.COMPONENTS`), served at
``/api/v1/openapi.json``.

Every operation documents its successes and a ``default`` answer with the ``Error``
schema (any error status: 400 naming the field, 401, 403, 404, 409, 429...).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admin.api import Reply, Request, Route

TITLE = "Cool Storage API"
VERSION = "1.0.0"
DESCRIPTION = (
    "The core API (auth, listing and search, uploads, downloads, restores, usage, storage "
    "modes) and org administration of a Cool Storage gateway. JSON in and out; errors are "
    '`{"error": code, "message": text}` with the HTTP status of the error. Authenticate with '
    "`Authorization: Bearer <token>` (from `POST /auth/token`) or HTTP Basic."
)
TAGS = [
    ("meta", "This document."),
    ("auth", "Log in and out."),
    ("objects", "Listing, upload, download, copy, move, storage modes, sealed segments."),
    ("uploads", "Resumable multipart upload sessions."),
    ("restores", "Restores from cold storage, quoted before they start."),
    ("usage", "Storage and request metering."),
    ("admin", "Org administration: members, grants, quotas, keys, settings, policies, audit."),
    ("buckets", "Buckets, their retention window and tiering rules."),
    ("operators", "Regions and users, for gateway operators."),
]

_lock = threading.Lock()
_cached: dict[str, Any] | None = None


def _schema(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"$ref": f"#/components/schemas/{spec}"}
    return dict(spec)


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    if route.description:
        operation["description"] = route.description
    if route.params:
        operation["parameters"] = [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required or p.location == "path",
                "schema": copy.deepcopy(dict(p.schema)),
                **({"description": p.description} if p.description else {}),
            }
            for p in route.params
        ]
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": _schema(route.body)}},
        }
    elif route.stream_body:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    responses: dict[str, Any] = {}
    for status, spec in sorted(route.responses.items()):
        answer: dict[str, Any] = {"description": spec.description}
        if spec.content_type is not None and spec.schema is not None:
            answer["content"] = {spec.content_type: {"schema": _schema(spec.schema)}}
        if spec.headers:
            answer["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in spec.headers.items()
            }
        responses[str(status)] = answer
    responses["default"] = {
        "description": "An error: its code, a message, and the field at fault for a 400.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    operation["responses"] = responses
    if not route.auth:
        operation["security"] = []
    return operation


def build(routes: Sequence[Route], components: Mapping[str, Any]) -> dict[str, Any]:
    """The document for ``routes`` (paths relative to the ``/api/v1`` server)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/api/v1"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS],
        "security": [{"bearer": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(dict(components)),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from POST /auth/token.",
                },
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


def document() -> dict[str, Any]:
    """The API's document (built once)."""
    global _cached
    with _lock:
        if _cached is None:
            from admin.routes import ROUTES
            from admin.schemas import COMPONENTS

            _cached = build(ROUTES, COMPONENTS)
        return _cached


def serve_document(req: Request) -> Reply:
    """``GET /openapi.json``."""
    from admin.api import Reply

    return Reply(200, document())
