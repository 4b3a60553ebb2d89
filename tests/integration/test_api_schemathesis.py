"""Property-based run of the whole API with schemathesis, against the document the gateway
serves: no answer may be a 5xx, and every answer must conform to the document (status,
content type, headers, body schema).

Each operation gets a bounded number of generated cases in three passes: everything
generated (mostly refusals: unknown orgs, missing objects, bad values), the org, bucket,
key and bodies of real data (so the successful paths run too), and invalid data (wrong
types, missing fields) that must be refused with a documented 4xx. Operations
that would lock the test out (revoking its own token, changing its own user) are aimed at
a throwaway user.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.servers import GatewayProcess
from tests.integration.test_api_support import start_api_gateway

API = "/api/v1"
#: Generated cases per operation and pass (two passes per operation).
MAX_EXAMPLES = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
ORG, BUCKET, KEY = "default", "fuzz-data", "docs/readme.txt"
VICTIM = "fuzz-victim"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = start_api_gateway(tmp_path_factory.mktemp("api-fuzz"), {"engine": {"enabled": False}})
    yield gw
    gw.stop()


def _token(gw: GatewayProcess) -> str:
    reply = httpx.post(gw.admin_url + API + "/auth/token",
                       json={"username": gw.admin_auth[0], "password": gw.admin_auth[1]}, timeout=30)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["token"])


def _seed(gw: GatewayProcess, token: str) -> dict[str, Any]:
    """Real data for the fixed pass: a bucket with objects (a folder archived and being
    restored), a user to aim risky calls at, an upload session, a key; their ids."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=gw.admin_url + API, headers=headers, timeout=30) as client:
        assert client.post(f"/orgs/{ORG}/buckets", json={"name": BUCKET}).status_code == 201
        for key in (KEY, "docs/other.txt", "photos/2026/a.jpg", "photos/2026/b.jpg"):
            reply = client.put(f"/objects/{ORG}/{BUCKET}/{key}", content=secrets.token_bytes(3000))
            assert reply.status_code == 201, reply.text
        reply = client.post("/users", json={"name": VICTIM, "password": "victim-password",
                                            "org": ORG, "role": "member"})
        assert reply.status_code == 201, reply.text
        upload = client.post("/uploads", json={"org": ORG, "bucket": BUCKET, "key": "fuzz/session.bin"})
        assert upload.status_code == 201, upload.text
        reply = client.post("/objects/storage-mode",
                            json={"org": ORG, "bucket": BUCKET, "prefix": "photos/", "mode": "archive"})
        assert reply.status_code == 200 and reply.json()["archived_objects"] == 2, reply.text
        restore = client.post("/restores", json={"org": ORG, "bucket": BUCKET, "prefix": "photos/"})
        assert restore.status_code == 201, restore.text
        access_key = client.post("/keys", json={"org": ORG, "user": VICTIM})
        assert access_key.status_code == 201, access_key.text
        return {
            "upload_id": upload.json()["upload_id"],
            "restore_id": restore.json()["restore_id"],
            "access_key_id": access_key.json()["access_key_id"],
            "code": "fuzz-region",
        }


#: Bodies of the fixed pass, by operation: real names, so the handlers' success paths run.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/objects/copy"): {"org": ORG, "bucket": BUCKET, "key": "docs/other.txt",
                                "destination": {"bucket": BUCKET, "key": "copies/x.txt"}},
    ("POST", "/objects/move"): {"org": ORG, "bucket": BUCKET, "key": "copies/x.txt",
                                "destination": {"bucket": BUCKET, "key": "copies/y.txt"}},
    ("POST", "/objects/storage-mode"): {"org": ORG, "bucket": BUCKET, "key": "docs/other.txt",
                                        "mode": "pin"},
    ("POST", "/uploads"): {"org": ORG, "bucket": BUCKET, "key": "fuzz/upload.bin"},
    ("POST", "/restores"): {"org": ORG, "bucket": BUCKET, "prefix": "photos/", "dry_run": True},
    ("POST", "/orgs/{org}/buckets"): {"name": "fuzz-bucket-two"},
    ("POST", "/orgs/{org}/grants"): {"user": VICTIM, "rights": ["restore"]},
    ("POST", "/orgs/{org}/grants/revoke"): {"user": VICTIM, "rights": ["restore"]},
    ("POST", "/keys"): {"org": ORG, "user": VICTIM},
    ("PUT", "/regions/{code}"): {"backend": "cold", "name": "Fuzz region", "countries": ["DE"]},
}


def _fixed(operation: Any, ids: dict[str, Any]) -> dict[str, Any]:
    """Real values for an operation's parameters (and body), so cases reach the handlers'
    success paths."""
    real = {"org": ORG, "bucket": BUCKET, "key": KEY, "user": VICTIM, **ids}
    path = {p.name: real[p.name] for p in operation.path_parameters if p.name in real}
    query = {p.name: real[p.name] for p in operation.query if p.name in ("org", "bucket")}
    fixed: dict[str, Any] = {"path_parameters": path, "query": query}
    body = BODIES.get((operation.method.upper(), operation.path))
    if body is not None:
        fixed["body"] = body
    return fixed


def _needs_fixed_only(operation: Any) -> bool:
    """Operations that must never hit the real admin user: aimed at the victim only."""
    risky = {("PATCH", "/users/{user}"), ("DELETE", "/orgs/{org}/members/{user}"),
             ("PUT", "/orgs/{org}/members/{user}")}
    return (operation.method.upper(), operation.path) in risky


def _explore(
    strategy: Any, label: str, base_url: str, token: str, failures: list[str],
    checks: list[Any] = CHECKS,
) -> int:
    """Run up to :data:`MAX_EXAMPLES` cases of one strategy; failures are collected (not
    raised) so one run reports every operation's problems. Returns the cases run."""
    count = 0

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        nonlocal count
        count += 1
        try:
            case.call_and_validate(
                base_url=base_url,
                headers={"Authorization": f"Bearer {token}"},
                checks=checks,
                timeout=60,
            )
        except Exception as error:  # schemathesis's FailureGroup, or a transport error
            failures.append(f"{label}: {error}"[:2000])

    run()
    return count


def test_schemathesis_finds_no_server_error_and_no_schema_violation(gateway: GatewayProcess) -> None:
    token = _token(gateway)
    ids = _seed(gateway, token)
    document = httpx.get(gateway.admin_url + API + "/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    base_url = gateway.admin_url + API
    failures: list[str] = []
    ran = 0

    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.method.upper() == "DELETE" and operation.path == "/auth/token":
            continue  # logging out would end the run; the API tests cover it
        passes = [_fixed(operation, ids)]
        if not _needs_fixed_only(operation):
            passes.insert(0, {})
        label = f"{operation.method.upper()} {operation.path}"
        for fixed in passes:
            ran += _explore(operation.as_strategy(**fixed), label, base_url, token, failures)
        # Invalid data (wrong types, missing fields, out of range): refused with a 4xx.
        negative = operation.as_strategy(GenerationMode.NEGATIVE, **passes[0])
        with contextlib.suppress(Unsatisfiable):  # nothing to get wrong (no parameters)
            ran += _explore(negative, label + " (invalid data)", base_url, token, failures,
                            [*CHECKS, negative_data_rejection])

    # The run must not have locked itself out, and must have done real work.
    me = httpx.get(base_url + "/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert me.status_code == 200
    assert ran >= 60 * 2
    assert not failures, "\n\n".join(failures[:10])
    assert "Traceback" not in gateway.stderr
    assert "unexpected error" not in gateway.stderr
