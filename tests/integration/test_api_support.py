"""Helpers of the API tests, and the checks of the served OpenAPI document itself.

:class:`OpenApiDoc` validates a reply against the document the gateway serves: the status
must be documented (or fall under ``default``), the content type must be the documented
one, and a JSON body must validate (with the ``jsonschema`` package, independent of the
gateway's own checker) against the documented schema. :class:`Api` is an HTTP client of one
user that checks every reply that way.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.fixtures.servers import GatewayProcess, launch_gateway

API = "/api/v1"


class OpenApiDoc:
    """The served document, and response validation against it."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._templates: list[tuple[re.Pattern[str], str]] = []
        for template in document["paths"]:
            regex = re.sub(r"\{key\}", "(?P<key>.+)", template)
            regex = re.sub(r"\{[a-z_]+\}", "[^/]+", regex)
            self._templates.append((re.compile(regex), template))
        # Literal templates first, as the router prefers them.
        self._templates.sort(key=lambda t: (t[1].count("{"), -len(t[1])))
        #: Operations seen in validated replies: (method, template).
        self.seen: set[tuple[str, str]] = set()

    def template(self, path: str) -> str:
        for regex, template in self._templates:
            if regex.fullmatch(path):
                return template
        raise AssertionError(f"no documented path matches {path}")

    def operation(self, method: str, path: str) -> dict[str, Any]:
        template = self.template(path)
        operations = self.document["paths"][template]
        assert method.lower() in operations, f"{method} {template} is not documented"
        return dict(operations[method.lower()])

    def validate(self, reply: httpx.Response) -> None:
        """Fail unless ``reply`` conforms to its operation's documented responses."""
        request = reply.request
        path = request.url.path
        assert path.startswith(API), path
        method = request.method
        operation = self.operation(method, path[len(API):])
        self.seen.add((method, self.template(path[len(API):])))
        responses = operation["responses"]
        spec = responses.get(str(reply.status_code)) or responses.get("default")
        assert spec is not None, f"{method} {path}: status {reply.status_code} is not documented"
        content = spec.get("content")
        if method == "HEAD" or reply.status_code == 204:
            assert not reply.content
            return
        assert content, f"{method} {path} {reply.status_code}: a body nobody documented"
        media = reply.headers.get("content-type", "").split(";")[0].strip()
        if "application/json" in content:
            assert media == "application/json", f"{method} {path}: content type {media}"
            schema = dict(content["application/json"]["schema"])
            schema["components"] = self.document["components"]
            Draft202012Validator(schema, format_checker=FormatChecker()).validate(reply.json())
        else:
            assert media, f"{method} {path}: no content type"


class Api:
    """One user's HTTP client of ``/api/v1``; every reply is validated."""

    def __init__(self, gateway: GatewayProcess, doc: OpenApiDoc, *, token: str | None = None,
                 name: str = "") -> None:
        self.gateway = gateway
        self.doc = doc
        self.name = name
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=gateway.admin_url + API, headers=headers, timeout=60)

    def request(self, method: str, path: str, *, expect: int | None = None, **kwargs: Any) -> httpx.Response:
        reply = self.http.request(method, path, **kwargs)
        self.doc.validate(reply)
        if expect is not None:
            assert reply.status_code == expect, (
                f"{self.name}: {method} {path}: expected {expect}, got {reply.status_code} "
                f"{reply.text[:300]}"
            )
        return reply

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.http.close()


def login(gateway: GatewayProcess, doc: OpenApiDoc, user: str, password: str) -> Api:
    anonymous = Api(gateway, doc, name="anonymous")
    try:
        token = anonymous.post("/auth/token", json={"username": user, "password": password},
                               expect=201).json()["token"]
    finally:
        anonymous.close()
    return Api(gateway, doc, token=token, name=user)


#: A gateway config with a quick localfs restore, tiering that never runs on its own, and
#: no login throttling (the tests log in many times from one address).
API_GATEWAY_CONFIG: dict[str, Any] = {
    "engine": {"enabled": True},
    "tiering": {
        "transition_after": 86400,
        "lease_ttl": 5,
        "restore_poll_interval": 0.2,
    },
    "identity": {"login_max_failures": 100000},
    "log": {"level": "info"},
}


def start_api_gateway(directory: Path, overrides: dict[str, Any] | None = None) -> GatewayProcess:
    """A gateway whose only backend is ``cold``, localfs with a 0.5 s restore delay."""
    config: dict[str, Any] = {
        **API_GATEWAY_CONFIG,
        "backends": {
            "cold": {"type": "localfs", "root": str(directory / "var" / "blobs"),
                     "restore_delay": 0.5},
        },
        "storage": {"default_backend": "cold"},
    }
    for key, value in (overrides or {}).items():
        config[key] = {**config.get(key, {}), **value}
    return launch_gateway(directory, config)


def fetch_document(gateway: GatewayProcess) -> OpenApiDoc:
    reply = httpx.get(gateway.admin_url + API + "/openapi.json", timeout=30)
    assert reply.status_code == 200
    return OpenApiDoc(reply.json())


def password() -> str:
    return "pw-" + secrets.token_urlsafe(12)


# -- the document itself ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = start_api_gateway(tmp_path_factory.mktemp("api-doc"), {"engine": {"enabled": False}})
    yield gateway
    gateway.stop()


def test_the_served_document_is_valid_openapi_31_and_matches_the_route_table(
    served: GatewayProcess,
) -> None:
    from openapi_spec_validator import validate

    from admin.openapi import document
    from admin.routes import ROUTES

    doc = fetch_document(served)
    validate(doc.document)
    assert doc.document["openapi"] == "3.1.0"
    assert doc.document == document()
    documented = {(m.upper(), p) for p, ops in doc.document["paths"].items() for m in ops}
    assert documented == {(r.method, r.path) for r in ROUTES}
    ids = [r.operation_id for r in ROUTES]
    assert len(ids) == len(set(ids))
    # Every component is a valid JSON Schema (2020-12) on its own.
    for schema in doc.document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)


def test_every_route_is_served_and_unknown_paths_are_documented_errors(
    served: GatewayProcess,
) -> None:
    from admin.routes import ROUTES

    doc = fetch_document(served)
    with httpx.Client(base_url=served.admin_url, timeout=30) as client:
        for route in ROUTES:
            path = re.sub(r"\{[a-z_]+\}", "1", route.path)
            reply = client.request(route.method, API + path)
            # Reached the route (not a 404 for the path or a 405 for the method).
            assert reply.status_code not in (405, 500), (route.method, path, reply.text)
            if route.auth:
                assert reply.status_code == 401, (route.method, path, reply.status_code)
                assert "Bearer" in reply.headers["www-authenticate"]
                if route.method != "HEAD":
                    assert reply.json()["error"] == "Unauthorized"
        reply = client.get(API + "/no/such/thing")
        assert reply.status_code == 404 and reply.json()["error"] == "NotFound"
        reply = client.request("PATCH", API + "/objects")
        assert reply.status_code == 405 and reply.headers["allow"] == "GET"
    assert doc.document["paths"]["/openapi.json"]["get"]["security"] == []
