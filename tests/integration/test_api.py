"""The REST API over the wire, against a gateway process: every endpoint as an org admin
(alice), a member (bob) and an admin of another org (eve, always refused), plus an operator
where operators are meant; then each area in depth. Every reply is validated against the
OpenAPI document the gateway serves (:class:`tests.integration.test_api_support.Api`), and
the last test checks that every documented operation was exercised.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import GatewayProcess
from tests.integration.test_api_support import (
    API,
    Api,
    OpenApiDoc,
    fetch_document,
    login,
    password,
    start_api_gateway,
)

MiB = 1 << 20


@dataclass
class World:
    gateway: GatewayProcess
    doc: OpenApiDoc
    operator: Api
    alice: Api
    bob: Api
    eve: Api
    passwords: dict[str, str]
    vault_identity: str

    def each(self) -> list[tuple[str, Api]]:
        return [("alice", self.alice), ("bob", self.bob), ("eve", self.eve)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from gateway.sealing import generate_identity

    gateway = start_api_gateway(tmp_path_factory.mktemp("api"), {"engine": {"enabled": False}})
    doc = fetch_document(gateway)
    operator = login(gateway, doc, *gateway.admin_auth)
    operator.post("/orgs", json={"name": "acme"}, expect=201)
    operator.post("/orgs", json={"name": "other"}, expect=201)
    passwords = {name: password() for name in ("alice", "bob", "eve", "carol")}
    for name, org, role in (("alice", "acme", "admin"), ("bob", "acme", "member"),
                            ("eve", "other", "admin")):
        operator.post("/users", json={"name": name, "password": passwords[name], "org": org,
                                      "role": role}, expect=201)
    operator.post("/users", json={"name": "carol", "password": passwords["carol"]}, expect=201)
    alice = login(gateway, doc, "alice", passwords["alice"])
    bob = login(gateway, doc, "bob", passwords["bob"])
    eve = login(gateway, doc, "eve", passwords["eve"])
    identity, recipient = generate_identity()
    alice.post("/orgs/acme/buckets", json={"name": "data"}, expect=201)
    alice.post("/orgs/acme/buckets", json={"name": "vault", "vault_recipient": recipient}, expect=201)
    alice.post("/orgs/acme/buckets", json={"name": "restored"}, expect=201)
    eve.post("/orgs/other/buckets", json={"name": "data"}, expect=201)
    for key in ("docs/a.txt", "docs/b.txt"):
        alice.put(f"/objects/acme/data/{key}", content=b"hello " * 1000, expect=201)
    world = World(gateway, doc, operator, alice, bob, eve, passwords, identity)
    yield world
    for api in (operator, alice, bob, eve):
        api.close()
    gateway.stop()


def expect3(world: World, call: Callable[[str, Api], httpx.Response],
            statuses: tuple[int, int, int]) -> dict[str, httpx.Response]:
    """Run ``call`` as alice, bob and eve; each must answer its status."""
    replies = {}
    for (who, api), status in zip(world.each(), statuses, strict=True):
        reply = call(who, api)
        assert reply.status_code == status, (
            f"{who}: {reply.request.method} {reply.request.url.path}: expected {status}, got "
            f"{reply.status_code} {reply.text[:300]}"
        )
        replies[who] = reply
    return replies


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# -- the access matrix ---------------------------------------------------------------------------


def test_auth_endpoints(world: World) -> None:
    anonymous = Api(world.gateway, world.doc, name="anonymous")
    anonymous.get("/openapi.json", expect=200)
    anonymous.get("/me", expect=401)
    reply = anonymous.post("/auth/token", json={"username": "alice", "password": "wrong password"},
                           expect=401)
    assert reply.json()["error"] == "Unauthorized"
    for who, _ in world.each():
        anonymous.post("/auth/token", json={"username": who, "password": world.passwords[who]},
                       expect=201)
    replies = expect3(world, lambda who, api: api.get("/me"), (200, 200, 200))
    assert replies["alice"].json()["orgs"][0]["role"] == "admin"
    bob_orgs = replies["bob"].json()["orgs"]
    assert bob_orgs[0]["org"] == "acme" and bob_orgs[0]["rights"] == ["read", "write", "delete"]
    assert [o["org"] for o in replies["eve"].json()["orgs"]] == ["other"]

    # A garbage or revoked token reads as such; Basic works for scripts.
    stale = Api(world.gateway, world.doc, token="x" * 43, name="stale")
    assert stale.get("/me", expect=401).json()["error"] == "InvalidToken"
    basic = anonymous.get("/me", auth=("bob", world.passwords["bob"]), expect=200)
    assert basic.json()["user"] == "bob"
    anonymous.get("/me", auth=("bob", "not his password"), expect=401)
    session = login(world.gateway, world.doc, "bob", world.passwords["bob"])
    session.get("/me", expect=200)
    session.delete("/auth/token", expect=204)
    assert session.get("/me", expect=401).json()["error"] == "InvalidToken"
    anonymous.delete("/auth/token", auth=("bob", world.passwords["bob"]), expect=400)
    for api in (anonymous, stale, session):
        api.close()


def test_object_endpoints_by_role(world: World) -> None:
    q = {"org": "acme", "bucket": "data"}
    expect3(world, lambda who, api: api.get("/objects", params=q), (200, 200, 403))
    # Eve learns nothing: the refusal for a missing org reads the same as for acme.
    assert world.eve.get("/objects", params=q).json() == world.eve.get(
        "/objects", params={"org": "no-such-org", "bucket": "data"}).json()
    expect3(world, lambda who, api: api.put(f"/objects/acme/data/by/{who}.txt",
                                            content=who.encode() * 100), (201, 201, 403))
    expect3(world, lambda who, api: api.get("/objects/acme/data/docs/a.txt"), (200, 200, 403))
    expect3(world, lambda who, api: api.request("HEAD", "/objects/acme/data/docs/a.txt"),
            (200, 200, 403))
    expect3(world, lambda who, api: api.get("/metadata/acme/data/docs/a.txt"), (200, 200, 403))
    expect3(world, lambda who, api: api.post("/objects/copy", json={
        "org": "acme", "bucket": "data", "key": "docs/a.txt",
        "destination": {"bucket": "data", "key": f"copies/{who}.txt"}}), (201, 201, 403))
    expect3(world, lambda who, api: api.post("/objects/move", json={
        "org": "acme", "bucket": "data", "key": f"copies/{who}.txt" if who != "eve" else "docs/a.txt",
        "destination": {"bucket": "data", "key": f"moved/{who}.txt"}}), (200, 200, 403))
    # Pinning and archiving take the archive right, which members lack by default.
    expect3(world, lambda who, api: api.post("/objects/storage-mode", json={
        "org": "acme", "bucket": "data", "key": "docs/b.txt", "mode": "pin"}), (200, 403, 403))
    expect3(world, lambda who, api: api.post("/objects/storage-mode", json={
        "org": "acme", "bucket": "data", "key": "docs/b.txt", "mode": "unpin"}), (200, 403, 403))
    expect3(world, lambda who, api: api.get("/sealed/acme/data/docs/a.txt"), (200, 200, 403))
    expect3(world, lambda who, api: api.get("/sealed-segments/acme/data/docs/a.txt",
                                            params={"part": 1}), (200, 200, 403))
    expect3(world, lambda who, api: api.delete(f"/objects/acme/data/by/{who}.txt"), (204, 204, 403))


def test_upload_endpoints_by_role(world: World) -> None:
    created = expect3(world, lambda who, api: api.post("/uploads", json={
        "org": "acme", "bucket": "data", "key": f"sessions/{who}.bin"}), (201, 201, 403))
    ids = {who: created[who].json()["upload_id"] for who in ("alice", "bob")}
    expect3(world, lambda who, api: api.get("/uploads", params={"org": "acme", "bucket": "data"}),
            (200, 200, 403))
    # An upload in another org is as unknown as one that never was.
    expect3(world, lambda who, api: api.get(f"/uploads/{ids['alice']}"), (200, 200, 404))
    expect3(world, lambda who, api: api.put(f"/uploads/{ids.get(who, ids['alice'])}/parts/1",
                                            content=b"part of " + who.encode()), (200, 200, 404))
    expect3(world, lambda who, api: api.post(f"/uploads/{ids.get(who, ids['alice'])}/complete"),
            (200, 200, 404))
    again = expect3(world, lambda who, api: api.post("/uploads", json={
        "org": "acme", "bucket": "data", "key": f"sessions/{who}-2.bin"}), (201, 201, 403))
    expect3(world, lambda who, api: api.delete(
        f"/uploads/{again[who].json()['upload_id'] if who != 'eve' else ids['alice']}"),
        (204, 204, 404))


def test_restore_endpoints_by_role(world: World) -> None:
    world.alice.put("/objects/acme/data/rolecold/x.bin", content=secrets.token_bytes(5000), expect=201)
    world.alice.post("/objects/storage-mode", json={
        "org": "acme", "bucket": "data", "prefix": "rolecold/", "mode": "archive"}, expect=200)
    body = {"org": "acme", "bucket": "data", "key": "rolecold/x.bin", "priority": "Bulk"}
    # Spending needs the restore right: members lack it unless granted.
    expect3(world, lambda who, api: api.post("/restores", json={**body, "dry_run": True}),
            (200, 403, 403))
    job = world.alice.post("/restores", json=body, expect=201).json()
    rid = job["restore_id"]
    expect3(world, lambda who, api: api.get("/restores"), (200, 200, 200))
    expect3(world, lambda who, api: api.get(f"/restores/{rid}"), (200, 404, 404))
    expect3(world, lambda who, api: api.get(f"/restores/{rid}/objects"), (200, 404, 404))
    listed = world.alice.get("/restores", params={"org": "acme"}, expect=200).json()["restores"]
    assert rid in [j["restore_id"] for j in listed]
    assert world.eve.get("/restores", params={"org": "acme"}).status_code == 403
    assert world.bob.get("/restores", params={"org": "acme"}, expect=200).json()["restores"] == []


def test_usage_endpoint_by_role(world: World) -> None:
    replies = expect3(world, lambda who, api: api.get("/usage", params={"org": "acme"}),
                      (200, 200, 403))
    assert replies["alice"].json()["user"] is None
    assert replies["bob"].json()["user"] == "bob"  # a member sees their own usage


def test_org_admin_endpoints_by_role(world: World) -> None:
    expect3(world, lambda who, api: api.get("/orgs"), (200, 200, 200))
    expect3(world, lambda who, api: api.post("/orgs", json={"name": f"new-{who}"}), (403, 403, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme"), (200, 200, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme/members"), (200, 403, 403))
    expect3(world, lambda who, api: api.put("/orgs/acme/members/carol", json={"role": "member"}),
            (200, 403, 403))
    expect3(world, lambda who, api: api.delete("/orgs/acme/members/carol"), (204, 403, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme/grants"), (200, 403, 403))
    grant = {"user": "bob", "rights": ["archive"], "bucket": "data"}
    expect3(world, lambda who, api: api.post("/orgs/acme/grants", json=grant), (201, 403, 403))
    expect3(world, lambda who, api: api.post("/orgs/acme/grants/revoke", json=grant),
            (200, 403, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme/quota"), (200, 200, 403))
    expect3(world, lambda who, api: api.put("/orgs/acme/quota", json={"quota_bytes": None}),
            (200, 403, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme/settings"), (200, 200, 403))
    expect3(world, lambda who, api: api.patch("/orgs/acme/settings", json={"restore_tier": "Bulk"}),
            (200, 403, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme/policy"), (200, 200, 403))
    expect3(world, lambda who, api: api.put("/orgs/acme/policy", json={"transition_after": "12h"}),
            (200, 403, 403))
    expect3(world, lambda who, api: api.delete("/orgs/acme/policy"), (204, 403, 403))
    expect3(world, lambda who, api: api.get("/audit", params={"org": "acme"}), (200, 403, 403))
    # Users and the whole log are an operator's; every role is refused.
    expect3(world, lambda who, api: api.get("/audit"), (400, 400, 400))
    expect3(world, lambda who, api: api.get("/users"), (403, 403, 403))
    expect3(world, lambda who, api: api.post("/users", json={"name": f"made-by-{who}"}),
            (403, 403, 403))
    expect3(world, lambda who, api: api.patch("/users/carol", json={"disabled": True}),
            (403, 403, 403))


def test_bucket_endpoints_by_role(world: World) -> None:
    expect3(world, lambda who, api: api.get("/orgs/acme/buckets"), (200, 200, 403))
    expect3(world, lambda who, api: api.post("/orgs/acme/buckets", json={"name": f"b-{who}"}),
            (201, 201, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme/buckets/data"), (200, 200, 403))
    expect3(world, lambda who, api: api.patch("/orgs/acme/buckets/data", json={"retention_days": 30}),
            (200, 403, 403))
    expect3(world, lambda who, api: api.get("/orgs/acme/buckets/data/policy"), (200, 200, 403))
    expect3(world, lambda who, api: api.put("/orgs/acme/buckets/data/policy",
                                            json={"preset": "restic"}), (200, 403, 403))
    expect3(world, lambda who, api: api.delete("/orgs/acme/buckets/data/policy"), (204, 403, 403))
    expect3(world, lambda who, api: api.delete(f"/orgs/acme/buckets/b-{who if who != 'eve' else 'alice'}"),
            (204, 204, 403))


def test_key_endpoints_by_role(world: World) -> None:
    created = expect3(world, lambda who, api: api.post("/keys", json={"org": "acme"}),
                      (201, 201, 400))
    assert created["alice"].json()["secret_access_key"]
    alice_key = created["alice"].json()["access_key_id"]
    bob_key = created["bob"].json()["access_key_id"]
    listed = expect3(world, lambda who, api: api.get("/keys"), (200, 200, 200))
    assert {k["access_key_id"] for k in listed["alice"].json()["keys"]} >= {alice_key, bob_key}
    assert bob_key in {k["access_key_id"] for k in listed["bob"].json()["keys"]}
    assert alice_key not in {k["access_key_id"] for k in listed["bob"].json()["keys"]}
    assert listed["eve"].json()["keys"] == []
    # Bob may not revoke alice's key, eve neither; alice (an admin) may revoke bob's.
    expect3(world, lambda who, api: api.delete(
        f"/keys/{bob_key if who == 'alice' else alice_key}"), (204, 404, 404))


def test_operator_endpoints(world: World) -> None:
    op = world.operator
    expect3(world, lambda who, api: api.get("/regions"), (403, 403, 403))
    expect3(world, lambda who, api: api.put("/regions/eu-test", json={"backend": "cold"}),
            (403, 403, 403))
    expect3(world, lambda who, api: api.delete("/regions/eu-test"), (403, 403, 403))
    region = op.put("/regions/eu-test", json={
        "backend": "cold", "name": "Test region", "countries": ["de", "AT"],
        "latitude": 50.1, "longitude": 8.7}, expect=200).json()
    assert region["countries"] == ["DE", "AT"] and region["source"] == "admin"
    assert "eu-test" in [r["code"] for r in op.get("/regions", expect=200).json()["regions"]]
    bucket = world.alice.post("/orgs/acme/buckets", json={"name": "placed", "region": "eu-test"},
                              expect=201).json()
    assert bucket["region"] == "eu-test"
    reply = op.put("/regions/eu-bad", json={"backend": "tape-robot"}, expect=400)
    assert reply.json()["field"] == "body.backend"
    op.delete("/regions/eu-test", expect=204)
    op.delete("/regions/eu-test", expect=404)
    assert op.get("/orgs/acme/buckets/placed", expect=403).json()["error"] == "AccessDenied"

    users = {u["name"]: u for u in op.get("/users", expect=200).json()["users"]}
    assert users["bob"]["orgs"] == [{"org": "acme", "role": "member"}]
    assert users["carol"]["orgs"][0]["org"].startswith("~")  # her personal org
    op.post("/users", json={"name": "dave", "password": password(), "org": "other"}, expect=201)
    op.patch("/users/dave", json={"disabled": True}, expect=200)
    assert op.get("/users").json()["users"][
        [u["name"] for u in op.get("/users").json()["users"]].index("dave")]["disabled"] is True
    orgs = {o["name"] for o in op.get("/orgs", expect=200).json()["orgs"]}
    assert {"acme", "other", "default"} <= orgs
    op.get("/orgs/acme/members", expect=200)  # operators administer every org
    page = op.get("/audit", params={"limit": 3}, expect=200).json()
    assert len(page["entries"]) == 3 and page["next_cursor"]
    older = op.get("/audit", params={"limit": 3, "cursor": page["next_cursor"]}, expect=200).json()
    assert older["entries"][0]["id"] < page["entries"][-1]["id"]
    # A user may change their own password; the old one stops working.
    new = password()
    world.bob.patch("/users/bob", json={"password": new}, expect=200)
    world.passwords["bob"] = new
    world.bob = login(world.gateway, world.doc, "bob", new)


# -- each area in depth --------------------------------------------------------------------------


def test_bad_requests_name_the_field(world: World) -> None:
    alice = world.alice
    cases = [
        (alice.post("/orgs/acme/buckets", json={"name": 5}), "body.name"),
        (alice.post("/orgs/acme/buckets", json={}), "body.name"),
        (alice.post("/orgs/acme/buckets", json={"name": "okname", "colour": "red"}), "body.colour"),
        (alice.post("/orgs/acme/buckets", content=b"{not json", headers={"Content-Type": "application/json"}), "body"),
        (alice.post("/orgs/acme/grants", json={"user": "bob", "rights": ["fly"]}), "body.rights[0]"),
        (alice.put("/orgs/acme/policy", json={"keep_hot": ["ok", 3]}), "body.keep_hot[1]"),
        (alice.post("/restores", json={"org": "acme", "bucket": "data", "key": "k", "days": 0}), "body.days"),
        (alice.post("/restores", json={"org": "acme", "bucket": "data", "key": "k",
                                       "destination": {"prefix": "x"}}), "body.destination.bucket"),
        (alice.get("/objects", params={"org": "acme", "bucket": "data", "limit": 0}), "query.limit"),
        (alice.get("/objects", params={"org": "acme", "bucket": "data", "limit": "many"}), "query.limit"),
        (alice.get("/objects", params={"org": "acme", "bucket": "data", "state": "frozen"}), "query.state"),
        (alice.get("/objects", params={"org": "acme", "bucket": "data", "cursor": "%%%"}), "query.cursor"),
        (alice.get("/objects", params={"org": "acme", "bucket": "data",
                                       "modified_after": "yesterday"}), "query.modified_after"),
        (alice.get("/objects", params={"org": "acme"}), "query.bucket"),
        (alice.get("/restores/abc"), "path.restore_id"),
        (alice.put("/objects/acme/data/x", content=b"x", headers={"X-Checksum-Sha256": "nothex"}),
         "header.X-Checksum-Sha256"),
    ]
    for reply, field in cases:
        assert reply.status_code == 400, (field, reply.text)
        body = reply.json()
        assert body["error"] == "InvalidRequest" and body["field"] == field, (field, body)
        assert field in body["message"]
    # A body whose digest differs from the one declared is refused, nothing is stored.
    reply = alice.put("/objects/acme/data/digest.bin", content=b"abc",
                      headers={"X-Checksum-Sha256": "0" * 64}, expect=400)
    assert reply.json()["error"] == "BadDigest"
    alice.get("/metadata/acme/data/digest.bin", expect=404)


def test_upload_download_range_and_what_is_recorded(world: World) -> None:
    alice = world.alice
    body = secrets.token_bytes(3 * MiB + 7)
    info = alice.put("/objects/acme/data/files/big.bin", content=body,
                     headers={"Content-Type": "application/x-test",
                              "X-Checksum-Sha256": hashlib.sha256(body).hexdigest()},
                     expect=201).json()
    assert info["size"] == len(body) and info["sha256"] == hashlib.sha256(body).hexdigest()
    assert info["region"] and info["segments"] == 1 and info["state"] == "staged"
    assert info["compression"]["plain_bytes"] == len(body)
    assert info["compression"]["sealed_bytes"] > len(body)  # random data does not compress
    assert info["encryption"]["keys"] == "managed" and info["encryption"]["recipients"][0].startswith("age1")
    reply = alice.get("/objects/acme/data/files/big.bin", expect=200)
    assert reply.content == body and reply.headers["content-type"] == "application/x-test"
    reply = alice.get("/objects/acme/data/files/big.bin", headers={"Range": "bytes=1048570-1048580"},
                      expect=206)
    assert reply.content == body[1048570:1048581]
    assert reply.headers["content-range"] == f"bytes 1048570-1048580/{len(body)}"
    alice.get("/objects/acme/data/files/big.bin", headers={"Range": f"bytes={len(body)}-"}, expect=416)
    text = b"compressible " * 10000
    small = alice.put("/objects/acme/data/files/text.txt", content=text, expect=201).json()
    assert small["compression"]["ratio"] > 10


def test_an_encoded_slash_in_a_key_is_a_slash(world: World) -> None:
    alice = world.alice
    alice.put("/objects/acme/data/enc%2Fslash.txt", content=b"nested", expect=201)
    alice.put("/objects/acme/data/lit%252Fname.txt", content=b"literal", expect=201)
    assert alice.get("/objects/acme/data/enc/slash.txt", expect=200).content == b"nested"
    assert alice.get("/objects/acme/data/lit%252Fname.txt", expect=200).content == b"literal"
    alice.get("/objects/acme/data/lit/name.txt", expect=404)
    listed = alice.get("/objects", params={"org": "acme", "bucket": "data", "prefix": "lit"}).json()
    assert [o["key"] for o in listed["objects"]] == ["lit%2Fname.txt"]


def test_resumable_upload_session(world: World) -> None:
    bob = world.bob
    first = secrets.token_bytes(5 * MiB)
    second = secrets.token_bytes(1234)
    session = bob.post("/uploads", json={"org": "acme", "bucket": "data", "key": "sessions/x.bin",
                                         "content_type": "application/x-big"}, expect=201).json()
    uid = session["upload_id"]
    assert session["parts"] == [] and session["min_part_size"] == 5 * MiB
    bob.put(f"/uploads/{uid}/parts/2", content=b"a wrong second part", expect=200)
    part = bob.put(f"/uploads/{uid}/parts/1", content=first, expect=200).json()
    assert part["sha256"] == hashlib.sha256(first).hexdigest()
    # After an interruption the client asks what arrived, and sends only the rest.
    received = bob.get(f"/uploads/{uid}", expect=200).json()["parts"]
    assert [(p["part_number"], p["size"]) for p in received] == [(1, len(first)), (2, 19)]
    bob.put(f"/uploads/{uid}/parts/2", content=second, expect=200)
    listed = bob.get("/uploads", params={"org": "acme", "bucket": "data", "prefix": "sessions/x"},
                     expect=200).json()
    assert uid in [u["upload_id"] for u in listed["uploads"]]
    done = bob.post(f"/uploads/{uid}/complete", expect=200).json()
    assert done["size"] == len(first) + len(second) and done["segments"] == 2
    assert done["sha256"].endswith("-2") and done["content_type"] == "application/x-big"
    assert bob.get("/objects/acme/data/sessions/x.bin", expect=200).content == first + second
    bob.get(f"/uploads/{uid}", expect=404)
    # Parts but the last must be 5 MiB; an explicit part list is checked.
    small = bob.post("/uploads", json={"org": "acme", "bucket": "data", "key": "sessions/y.bin"},
                     expect=201).json()["upload_id"]
    p1 = bob.put(f"/uploads/{small}/parts/1", content=b"tiny", expect=200).json()
    bob.put(f"/uploads/{small}/parts/2", content=b"tiny too", expect=200)
    assert bob.post(f"/uploads/{small}/complete", expect=400).json()["error"] == "EntityTooSmall"
    reply = bob.post(f"/uploads/{small}/complete",
                     json={"parts": [{"part_number": 1, "etag": p1["etag"]}]}, expect=200)
    assert reply.json()["size"] == 4
    bob.delete(f"/uploads/{small}", expect=404)


def test_listing_search_and_pagination(world: World) -> None:
    alice = world.alice
    names = []
    for i in range(25):
        ext = "txt" if i % 3 else "jpg"
        key = f"list/{i:02d}-item.{ext}"
        alice.put(f"/objects/acme/data/{key}", content=b"x" * (100 * i + 1), expect=201)
        names.append(key)
    alice.put("/objects/acme/data/list/sub/deep.txt", content=b"deep", expect=201)
    q = {"org": "acme", "bucket": "data", "prefix": "list/"}

    seen, cursor, pages = [], None, 0
    while True:
        params = {**q, "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = alice.get("/objects", params=params, expect=200).json()
        assert len(page["objects"]) <= 4
        seen += [o["key"] for o in page["objects"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [*names, "list/sub/deep.txt"] and pages == 7

    page = alice.get("/objects", params={**q, "delimiter": "/"}, expect=200).json()
    assert page["prefixes"] == ["list/sub/"] and len(page["objects"]) == 25
    jpgs = alice.get("/objects", params={**q, "name": "*.jpg"}, expect=200).json()["objects"]
    assert [o["key"] for o in jpgs] == [k for k in names if k.endswith(".jpg")]
    whole = alice.get("/objects", params={**q, "name": "list/sub/*"}, expect=200).json()["objects"]
    assert [o["key"] for o in whole] == ["list/sub/deep.txt"]
    sized = alice.get("/objects", params={**q, "min_size": 1000, "max_size": 1501}, expect=200).json()
    assert [o["size"] for o in sized["objects"]] == [1001, 1101, 1201, 1301, 1401, 1501]
    future = alice.get("/objects", params={**q, "modified_after": "2999-01-01T00:00:00Z"}).json()
    assert future["objects"] == [] and future["next_cursor"] is None
    past = alice.get("/objects", params={**q, "modified_before": "2999-01-01T00:00:00Z"}).json()
    assert len(past["objects"]) == 26
    # Filters page too: 2 matches per page, cursor followed.
    found, cursor = [], None
    while True:
        params = {**q, "name": "*.jpg", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = alice.get("/objects", params=params).json()
        found += [o["key"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert found == [k for k in names if k.endswith(".jpg")]

    alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data",
                                              "prefix": "list/sub/", "mode": "archive"}, expect=200)
    cold = alice.get("/objects", params={**q, "state": "archived"}, expect=200).json()["objects"]
    assert [(o["key"], o["storage_class"]) for o in cold] == [("list/sub/deep.txt", "DEEP_ARCHIVE")]
    by_class = alice.get("/objects", params={**q, "storage_class": "DEEP_ARCHIVE"}).json()["objects"]
    assert [o["key"] for o in by_class] == ["list/sub/deep.txt"]
    reply = alice.get("/objects/acme/data/list/sub/deep.txt", expect=403)
    assert reply.json()["error"] == "InvalidObjectState"


def test_storage_modes_pin_archive_unpin(world: World) -> None:
    alice = world.alice
    for key in ("pins/keep.txt", "pins/go.txt", "pins/keep.txt.bak", "keep.txt"):
        alice.put(f"/objects/acme/data/{key}", content=key.encode() * 50, expect=201)
    target = {"org": "acme", "bucket": "data", "key": "pins/keep.txt"}
    pinned = alice.post("/objects/storage-mode", json={**target, "mode": "pin"}, expect=200).json()
    assert pinned["keep_hot"] == ["pins/keep.txt"]
    root = alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data",
                                                     "key": "keep.txt", "mode": "pin"}).json()
    assert root["keep_hot"] == ["pins/keep.txt", "[k/]eep.txt"]
    policy = alice.get("/orgs/acme/buckets/data/policy", expect=200).json()
    assert policy["rules"]["keep_hot"] == ["pins/keep.txt", "[k/]eep.txt"]
    assert policy["effective"]["keep_hot"] == ["pins/keep.txt", "[k/]eep.txt"]
    done = alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data",
                                                     "prefix": "pins/", "mode": "archive"},
                      expect=200).json()
    assert done["archived_objects"] == 2 and done["failures"] == 0
    states = {o["key"]: o["state"] for o in alice.get("/objects", params={
        "org": "acme", "bucket": "data", "prefix": "pins/"}).json()["objects"]}
    assert states == {"pins/keep.txt": "staged", "pins/go.txt": "archived",
                      "pins/keep.txt.bak": "archived"}
    # Archiving one object archives exactly it, pinned or not.
    alice.post("/objects/storage-mode", json={**target, "mode": "unpin"}, expect=200)
    alice.post("/objects/storage-mode", json={**target, "mode": "unpin"}, expect=400)
    one = alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data",
                                                    "key": "keep.txt", "mode": "archive"}).json()
    assert one["archived_objects"] == 1
    assert alice.get("/metadata/acme/data/keep.txt").json()["state"] == "archived"
    assert alice.get("/metadata/acme/data/pins/keep.txt").json()["state"] == "staged"
    alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data", "key": "keep.txt",
                                              "mode": "unpin"}, expect=200)
    assert "keep_hot" not in alice.get("/orgs/acme/buckets/data/policy").json()["rules"]


def test_restores_quote_progress_download_and_copy(world: World) -> None:
    alice, bob = world.alice, world.bob
    files = {f"cold/{i}.bin": secrets.token_bytes(2000 + i) for i in range(4)}
    for key, data in files.items():
        alice.put(f"/objects/acme/data/{key}", content=data, expect=201)
    alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data", "prefix": "cold/",
                                              "mode": "archive"}, expect=200)
    alice.put("/objects/acme/data/cold/hot.txt", content=b"still hot", expect=201)
    alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data", "key": "cold/hot.txt",
                                              "mode": "unpin"}, expect=400)
    target = {"org": "acme", "bucket": "data", "prefix": "cold/"}
    quote = alice.post("/restores", json={**target, "priority": "Bulk", "dry_run": True},
                       expect=200).json()
    assert quote["status"] == "quoted" and quote["restore_id"] is None
    assert quote["objects"] == 5 and float(quote["quote_usd"]) > 0
    standard = alice.post("/restores", json={**target, "priority": "Standard", "dry_run": True}).json()
    assert float(standard["quote_usd"]) > float(quote["quote_usd"])
    # The four archived objects were packed into one container: it is quoted once.
    single = alice.post("/restores", json={"org": "acme", "bucket": "data", "key": "cold/0.bin",
                                           "dry_run": True}).json()
    assert single["quote_usd"] == quote["quote_usd"]

    # A budget below the quote refuses before anything starts.
    alice.patch("/orgs/acme/settings", json={"restore_budget_usd": "0.0000001"}, expect=200)
    refused = alice.post("/restores", json=target, expect=403).json()
    assert refused["error"] == "RestoreBudgetExceeded"
    assert alice.get("/restores", params={"org": "acme"}).json()["restores"][0]["target"] != "cold/"
    settings = alice.patch("/orgs/acme/settings", json={"restore_budget_usd": 10}).json()
    assert settings["restore_budget_usd"] == "10"

    job = alice.post("/restores", json={**target, "priority": "Bulk"}, expect=201).json()
    rid = job["restore_id"]
    assert job["status"] in ("running", "ready") and job["progress"]["objects_total"] == 5
    assert job["progress"]["objects_done"] >= 1  # the hot one
    alice.get("/objects/acme/data/cold/0.bin", expect=403)
    ready = wait_for(lambda: (j := alice.get(f"/restores/{rid}", expect=200).json())["status"] == "ready" and j,
                     20, "the restore")
    assert ready["progress"] == {"objects_done": 5, "objects_total": 5,
                                 "bytes_done": ready["progress"]["bytes_total"],
                                 "bytes_total": sum(map(len, files.values())) + 9,
                                 "objects_copied": 0, "objects_failed": 0}
    assert ready["download"] is None  # a folder: per-object links
    items = alice.get(f"/restores/{rid}/objects", params={"limit": 3}, expect=200).json()
    assert len(items["items"]) == 3 and items["next_cursor"]
    rest = alice.get(f"/restores/{rid}/objects", params={"cursor": items["next_cursor"]}).json()
    links = {i["key"]: i["download_url"] for i in items["items"] + rest["items"]}
    assert set(links) == {*files, "cold/hot.txt"}
    for key, data in files.items():
        assert links[key].startswith(API + "/objects/acme/data/")
        assert alice.get(links[key][len(API):], expect=200).content == data

    # One object: a download link once ready. Asking again joins the same restore.
    world.alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data",
                                                    "key": "docs/b.txt", "mode": "archive"})
    one = alice.post("/restores", json={"org": "acme", "bucket": "data", "key": "docs/b.txt"},
                     expect=201).json()
    done = wait_for(lambda: (j := alice.get(f"/restores/{one['restore_id']}").json())["download"] and j,
                    20, "the single restore")
    assert done["download"]["url"] == API + "/objects/acme/data/docs/b.txt"
    assert done["download"]["expires_at"] is not None

    # A copy to another bucket is finished in the background.
    world.alice.post("/objects/storage-mode", json={"org": "acme", "bucket": "data",
                                                    "prefix": "docs/", "mode": "archive"})
    copy = alice.post("/restores", json={"org": "acme", "bucket": "data", "prefix": "docs/",
                                         "destination": {"bucket": "restored", "prefix": "back/"}},
                      expect=201).json()
    finished = wait_for(lambda: (j := alice.get(f"/restores/{copy['restore_id']}").json())["status"] == "done" and j,
                        30, "the copy to the destination")
    assert finished["progress"]["objects_copied"] == finished["objects"] >= 1
    copied = alice.get("/objects", params={"org": "acme", "bucket": "restored", "prefix": "back/"}).json()
    assert {o["state"] for o in copied["objects"]} == {"staged"}
    assert alice.get("/objects/acme/restored/back/b.txt", expect=200).content == b"hello " * 1000
    # Bob needs the restore right; with a bucket grant he may.
    bob.post("/restores", json={**target, "dry_run": True}, expect=403)
    alice.post("/orgs/acme/grants", json={"user": "bob", "rights": ["restore"], "bucket": "data"},
               expect=201)
    bob.post("/restores", json={**target, "dry_run": True}, expect=200)
    bob.get(f"/restores/{rid}", expect=200)  # now he may follow the bucket's restores
    alice.post("/orgs/acme/grants/revoke", json={"user": "bob", "rights": ["restore"],
                                                 "bucket": "data"}, expect=200)


def test_vault_objects_hand_out_sealed_segments(world: World) -> None:
    from gateway.sealing import unseal
    from gateway.streams import IteratorReader

    alice, bob = world.alice, world.bob
    data = secrets.token_bytes(MiB + 99)
    info = alice.put("/objects/acme/vault/secret.bin", content=data, expect=201).json()
    assert info["encryption"]["keys"] == "vault"
    reply = bob.get("/objects/acme/vault/secret.bin", expect=403)
    assert reply.json()["error"] == "VaultSealed"
    manifest = bob.get("/sealed/acme/vault/secret.bin", expect=200).json()
    assert manifest["vault"] is True and len(manifest["segments"]) == 1
    plain = b""
    for segment in manifest["segments"]:
        sealed = bob.get(segment["url"][len(API):], expect=200)
        assert int(sealed.headers["content-length"]) == segment["sealed_size"]
        plain += b"".join(unseal(IteratorReader(iter([sealed.content])), [world.vault_identity],
                                 expected_header_mac=base64.b64decode(segment["header_mac"])))
    assert plain == data
    assert hashlib.sha256(plain).hexdigest() == manifest["segments"][0]["sha256"]
    bob.get("/sealed-segments/acme/vault/secret.bin", params={"part": 2}, expect=400)
    # The gateway cannot read vault objects, so a restore of them is for download only.
    reply = alice.post("/restores", json={"org": "acme", "bucket": "vault", "prefix": "",
                                          "destination": {"bucket": "restored"}}, expect=400)
    assert "vault" in reply.json()["message"]


def test_admin_changes_take_effect(world: World) -> None:
    alice, bob = world.alice, world.bob
    # Quota: writes over it are refused with a clear error.
    alice.put("/orgs/acme/quota", json={"quota_bytes": 1}, expect=200)
    assert bob.put("/objects/acme/data/q.txt", content=b"too much", expect=403).json()["error"] == "QuotaExceeded"
    quota = alice.put("/orgs/acme/quota", json={"quota_bytes": None}, expect=200).json()
    assert quota["quota_bytes"] is None and quota["stored_bytes"] > 0
    bob.put("/objects/acme/data/q.txt", content=b"fits", expect=201)
    # Members and roles.
    alice.put("/orgs/acme/members/carol", json={"role": "admin"}, expect=200)
    members = dict((m["user"], m["role"]) for m in alice.get("/orgs/acme/members").json()["members"])
    assert members["carol"] == "admin"
    alice.delete("/orgs/acme/members/carol", expect=204)
    alice.delete("/orgs/acme/members/carol", expect=404)
    # A grant gives bob the archive right on one bucket.
    grant = alice.post("/orgs/acme/grants", json={"user": "bob", "rights": ["archive"],
                                                  "bucket": "data"}, expect=201).json()
    assert grant == {"org": "acme", "user": "bob", "bucket": "data", "rights": ["archive"]}
    bob.post("/objects/storage-mode", json={"org": "acme", "bucket": "data", "key": "q.txt",
                                            "mode": "pin"}, expect=200)
    left = alice.post("/orgs/acme/grants/revoke", json={"user": "bob", "rights": ["archive"],
                                                        "bucket": "data"}, expect=200).json()
    assert left == {"grant": None}
    bob.post("/objects/storage-mode", json={"org": "acme", "bucket": "data", "key": "q.txt",
                                            "mode": "unpin"}, expect=403)
    # Restore on read and the budget are org settings.
    settings = alice.patch("/orgs/acme/settings", json={
        "restore_on_read": True, "restore_tier": "Bulk", "restore_budget_usd": None}).json()
    assert settings["restore_on_read"] is True and settings["restore_tier"] == "Bulk"
    assert settings["restore_budget_usd"] is None
    assert bob.get("/orgs/acme/settings").json() == settings
    # Policies: stored rules, the effective policy, validation by the engine's rules.
    policy = alice.put("/orgs/acme/policy", json={"transition_after": "2h", "preset": "restic"},
                       expect=200).json()
    assert policy["rules"] == {"transition_after": 7200.0, "preset": "restic"}
    assert policy["effective"]["transition_after"] == 7200.0
    bucket_policy = alice.put("/orgs/acme/buckets/data/policy", json={"min_size": 10}).json()
    assert bucket_policy["effective"]["preset"] == "restic"  # inherited from the org
    assert bucket_policy["effective"]["min_size"] == 10
    alice.put("/orgs/acme/policy", json={"include": ["[unclosed"]}, expect=400)
    alice.delete("/orgs/acme/buckets/data/policy", expect=204)
    alice.delete("/orgs/acme/policy", expect=204)
    # Retention window of a bucket; a bucket with objects cannot go.
    bucket = alice.patch("/orgs/acme/buckets/data", json={"retention_days": 90}, expect=200).json()
    assert bucket["retention_days"] == 90
    assert alice.get("/orgs/acme/buckets/data").json()["retention_days"] == 90
    assert alice.delete("/orgs/acme/buckets/data", expect=409).json()["error"] == "BucketNotEmpty"
    # The audit log of the org shows what was done, newest first.
    actions = [e["action"] for e in alice.get("/audit", params={"org": "acme", "limit": 200}).json()["entries"]]
    for expected in ("bucket.retention", "policy.set", "org.settings", "grant.add",
                     "membership.remove", "quota.set", "restore.job", "storage.pin"):
        assert expected in actions, expected


def test_usage_by_hour_and_day_per_user(world: World) -> None:
    alice, bob = world.alice, world.bob
    # Read counters are flushed every few seconds.
    report = wait_for(lambda: (r := alice.get("/usage", params={"org": "acme", "granularity": "hour"},
                                             expect=200).json())["totals"].get("GET") and r,
                      20, "read counters to be flushed")
    assert report["granularity"] == "hour"
    users = {p["user"] for p in report["series"] if p["action"] == "PUT"}
    assert {"alice", "bob"} <= users
    assert report["totals"]["PUT"]["count"] >= 10 and report["totals"]["PUT"]["bytes"] > 0
    classes = {s["storage_class"] for s in report["storage"]}
    assert {"STANDARD", "DEEP_ARCHIVE"} <= classes
    daily = alice.get("/usage", params={"org": "acme", "granularity": "day"}).json()
    assert daily["totals"]["PUT"] == report["totals"]["PUT"]
    assert all(p["period"].endswith("T00:00:00Z") for p in daily["series"])
    of_bob = alice.get("/usage", params={"org": "acme", "user": "bob"}).json()
    assert {p["user"] for p in of_bob["series"]} == {"bob"}
    assert bob.get("/usage", params={"org": "acme"}).json()["series"] == of_bob["series"]
    bob.get("/usage", params={"org": "acme", "user": "alice"}, expect=403)
    bob.get("/usage", params={"org": "acme", "bucket": "data"}, expect=200)
    alice.get("/usage", params={"org": "acme", "granularity": "hour",
                                "since": "2020-01-01T00:00:00Z"}, expect=400)


def test_every_documented_operation_was_exercised(world: World) -> None:
    documented = {(m.upper(), p) for p, ops in world.doc.document["paths"].items() for m in ops}
    missing = documented - world.doc.seen
    assert not missing, sorted(missing)


def test_failed_logins_are_throttled_with_retry_after(gateway_process: Any) -> None:
    gateway = gateway_process({"engine": {"enabled": False},
                               "identity": {"login_max_failures": 2, "login_backoff": 60}})
    doc = fetch_document(gateway)
    anonymous = Api(gateway, doc, name="anonymous")
    for _ in range(2):
        anonymous.post("/auth/token", json={"username": "admin", "password": "wrong-password"},
                       expect=401)
    reply = anonymous.post("/auth/token", json={"username": "admin", "password": gateway.admin_auth[1]},
                           expect=429)
    assert reply.json()["error"] == "TooManyRequests"
    assert 0 < int(reply.headers["retry-after"]) <= 60
    anonymous.get("/me", auth=("admin", "wrong-password"), expect=429)
    anonymous.close()
