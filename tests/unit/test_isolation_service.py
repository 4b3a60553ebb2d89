"""No request crosses an org, at the ObjectService level (the front ends' suites add the
protocols on top).

Org B (user bob) holds a bucket, an empty bucket, an object and a multipart upload in
progress. Users of org A try every ObjectService operation on org B's things: as an org admin
of A, through an access key of A whose user is also in B, and as a gateway operator. Every
attempt must be denied, with a message that names nothing of B and reads exactly like the
same attempt on things that do not exist. Afterwards org B is unchanged.

Runs on SQLite and MariaDB, as the catalog suite does.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from catalog.api import Catalog
from catalog.records import ROLE_ADMIN, ROLE_MEMBER
from gateway import principals, sealing
from gateway.config import IdentityConfig
from gateway.errors import AccessDenied
from gateway.identity import IdentityService
from gateway.objects import ObjectService
from gateway.principals import NO_ACCESS, Principal, operator_principal
from tiering.backends import open_backend

ENGINES = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
OPERATOR = operator_principal("test-operator")
PASSWORD = "isolation-password"
SECRET_DATA = b"org B's private bytes"


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        principals, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(principals, "_dummy_hash", None)


@dataclass
class Target:
    """The names an attack uses: org B's real ones, or ghosts that exist nowhere."""

    org: str
    bucket: str
    empty_bucket: str
    key: str
    mp_key: str
    upload_id: str


@dataclass
class World:
    objects: ObjectService
    identity: IdentityService
    a_org: str
    a_bucket: str
    a_key: str
    a_mp_key: str
    a_upload: str
    b: Target
    bob: Principal
    attackers: dict[str, Principal]
    #: Every name of org B that must never show up in an answer to someone outside it.
    b_names: list[str]

    def b_snapshot(self) -> Any:
        """What org B holds, as bob sees it."""
        svc, bob, b = self.objects, self.bob, self.b
        buckets = [x.name for x in svc.list_buckets(bob, b.org)]
        listing = {
            name: [(o.key, o.etag, o.size) for o in svc.list_objects(bob, b.org, name).objects]
            for name in buckets
        }
        uploads = [u.upload_id for u in svc.list_multipart_uploads(bob, b.org, b.bucket).uploads]
        data = b"".join(svc.get_object(bob, b.org, b.bucket, b.key).body)
        return buckets, listing, uploads, data


def uid() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="module", params=ENGINES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("isolation")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp}/catalog.db"
    else:
        url = request.getfixturevalue("mariadb_server").create_database()
    catalog = Catalog(url)
    catalog.upgrade()
    keyring = sealing.MasterKeyring(sealing.MasterKey.generate())
    backend = open_backend("local", {"type": "localfs", "root": str(tmp / "blobs")})
    objects = ObjectService(
        catalog,
        {"local": backend},
        keyring,
        default_backend="local",
        default_region="local",
        block_size=64 * 1024,
        small_object_threshold=0,
    )
    identity = IdentityService(
        catalog, keyring, config=IdentityConfig(), ensure_org=objects.ensure_org
    )
    try:
        yield _populate(objects, identity)
    finally:
        identity.close()
        objects.close()
        catalog.close()


def _populate(objects: ObjectService, identity: IdentityService) -> World:
    a_org, b_org = f"alpha-{uid()}", f"bravo-{uid()}"
    identity.create_org(OPERATOR, a_org)
    identity.create_org(OPERATOR, b_org)
    alice_name, bob_name, carol_name = f"alice-{uid()}", f"bob-{uid()}", f"carol-{uid()}"
    identity.create_user(OPERATOR, alice_name, password=PASSWORD, org=a_org, role=ROLE_ADMIN)
    identity.create_user(OPERATOR, bob_name, password=PASSWORD, org=b_org, role=ROLE_ADMIN)
    identity.create_user(OPERATOR, carol_name, password=PASSWORD, org=a_org, role=ROLE_ADMIN)
    identity.add_member(OPERATOR, b_org, carol_name, role=ROLE_ADMIN)

    alice = identity.authenticate_password(alice_name, PASSWORD, client="127.0.0.1")
    bob = identity.authenticate_password(bob_name, PASSWORD)
    carol_key, _ = identity.create_access_key(OPERATOR, carol_name, org=a_org)
    carol_in_a, _ = identity.authenticate_access_key(carol_key.access_key_id)

    a_bucket, a_key, a_mp_key = f"abucket-{uid()}", f"a-key-{uid()}", f"a-mp-{uid()}"
    objects.create_bucket(alice, a_org, a_bucket)
    objects.put_object(alice, a_org, a_bucket, a_key, io.BytesIO(b"A's own"), size=7)
    a_upload = objects.create_multipart_upload(alice, a_org, a_bucket, a_mp_key).upload_id

    b_bucket, b_empty = f"bsecret-{uid()}", f"bempty-{uid()}"
    b_key, b_mp_key = f"b-secret-key-{uid()}", f"b-mp-{uid()}"
    objects.create_bucket(bob, b_org, b_bucket)
    objects.create_bucket(bob, b_org, b_empty)
    objects.put_object(
        bob, b_org, b_bucket, b_key, io.BytesIO(SECRET_DATA), size=len(SECRET_DATA)
    )
    b_upload = objects.create_multipart_upload(bob, b_org, b_bucket, b_mp_key).upload_id
    b = Target(b_org, b_bucket, b_empty, b_key, b_mp_key, b_upload)
    return World(
        objects=objects,
        identity=identity,
        a_org=a_org,
        a_bucket=a_bucket,
        a_key=a_key,
        a_mp_key=a_mp_key,
        a_upload=a_upload,
        b=b,
        bob=bob,
        attackers={"org-a-admin": alice, "key-of-a": carol_in_a, "operator": OPERATOR},
        b_names=[b_org, b_bucket, b_empty, b_key, b_mp_key, b_upload, bob_name],
    )


def ghost() -> Target:
    """Names that exist nowhere, shaped like org B's."""
    return Target(
        org=f"bravo-{uid()}",
        bucket=f"bsecret-{uid()}",
        empty_bucket=f"bempty-{uid()}",
        key=f"b-secret-key-{uid()}",
        mp_key=f"b-mp-{uid()}",
        upload_id=uuid.uuid4().hex,
    )


Attack = Callable[[World, Principal, Target], Any]


def _read_all(opened: Any) -> bytes:
    return b"".join(opened.body)


ATTACKS: dict[str, Attack] = {
    "list buckets": lambda w, p, t: w.objects.list_buckets(p, t.org),
    "head bucket": lambda w, p, t: w.objects.head_bucket(p, t.org, t.bucket),
    "create bucket": lambda w, p, t: w.objects.create_bucket(p, t.org, f"planted-{uid()}"),
    "delete bucket": lambda w, p, t: w.objects.delete_bucket(p, t.org, t.empty_bucket),
    "list objects": lambda w, p, t: w.objects.list_objects(p, t.org, t.bucket),
    "list with prefix": lambda w, p, t: w.objects.list_objects(
        p, t.org, t.bucket, prefix="b-", delimiter="/"
    ),
    "head object": lambda w, p, t: w.objects.head_object(p, t.org, t.bucket, t.key),
    "head object with key": lambda w, p, t: w.objects.head_object_with_key(
        p, t.org, t.bucket, t.key
    ),
    "read": lambda w, p, t: _read_all(w.objects.get_object(p, t.org, t.bucket, t.key)),
    "write": lambda w, p, t: w.objects.put_object(
        p, t.org, t.bucket, f"planted-{uid()}", io.BytesIO(b"x"), size=1
    ),
    "overwrite": lambda w, p, t: w.objects.put_object(
        p, t.org, t.bucket, t.key, io.BytesIO(b"overwritten"), size=11
    ),
    "delete": lambda w, p, t: w.objects.delete_object(p, t.org, t.bucket, t.key),
    "copy from": lambda w, p, t: w.objects.copy_object(
        p, t.org, t.bucket, t.key, w.a_bucket, f"stolen-{uid()}", dst_org_name=w.a_org
    ),
    "copy to": lambda w, p, t: w.objects.copy_object(
        p, w.a_org, w.a_bucket, w.a_key, t.bucket, f"planted-{uid()}", dst_org_name=t.org
    ),
    "copy within": lambda w, p, t: w.objects.copy_object(
        p, t.org, t.bucket, t.key, t.bucket, f"copy-{uid()}"
    ),
    "move": lambda w, p, t: w.objects.move_object(
        p, t.org, t.bucket, t.key, t.bucket, f"moved-{uid()}"
    ),
    "move folder": lambda w, p, t: w.objects.move_prefix(p, t.org, t.bucket, "b", t.bucket, "c/"),
    "restore": lambda w, p, t: w.objects.request_restore(p, t.org, t.bucket, t.key),
    "start upload": lambda w, p, t: w.objects.create_multipart_upload(
        p, t.org, t.bucket, f"planted-{uid()}"
    ),
    "get upload": lambda w, p, t: w.objects.get_multipart_upload(
        p, t.org, t.bucket, t.mp_key, t.upload_id
    ),
    "upload part": lambda w, p, t: w.objects.upload_part(
        p, t.org, t.bucket, t.mp_key, t.upload_id, 1, io.BytesIO(b"part"), size=4
    ),
    "copy part from": lambda w, p, t: w.objects.upload_part_copy(
        p, w.a_org, w.a_bucket, w.a_mp_key, w.a_upload, 1, t.bucket, t.key, src_org_name=t.org
    ),
    "list parts": lambda w, p, t: w.objects.list_parts(p, t.org, t.bucket, t.mp_key, t.upload_id),
    "complete upload": lambda w, p, t: w.objects.complete_multipart_upload(
        p, t.org, t.bucket, t.mp_key, t.upload_id, []
    ),
    "abort upload": lambda w, p, t: w.objects.abort_multipart_upload(
        p, t.org, t.bucket, t.mp_key, t.upload_id
    ),
    "list uploads": lambda w, p, t: w.objects.list_multipart_uploads(p, t.org, t.bucket),
    "abort all uploads": lambda w, p, t: w.objects.abort_bucket_uploads(p, t.org, t.bucket),
}


@pytest.mark.parametrize("attacker", ["org-a-admin", "key-of-a", "operator"])
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_every_operation_on_another_org_is_denied_alike(
    world: World, attacker: str, attack: str
) -> None:
    principal = world.attackers[attacker]
    run = ATTACKS[attack]
    before = world.b_snapshot()
    with pytest.raises(AccessDenied) as real:
        run(world, principal, world.b)
    with pytest.raises(AccessDenied) as fake:
        run(world, principal, ghost())
    message = str(real.value)
    # Existence is never revealed: the same words whether B's things exist or not...
    assert message == str(fake.value) == f"Access denied: {NO_ACCESS}"
    assert real.value.code == "AccessDenied" and real.value.http_status == 403
    # ...and nothing of B is named, even though the caller named it.
    for name in world.b_names:
        assert name not in message and name not in repr(real.value.details)
    assert world.b_snapshot() == before


@pytest.mark.parametrize(
    "trick",
    [
        "{b}/",
        "/{b}",
        "./{b}",
        "{a}/../{b}",
        "{a}/{b}",
        "{a}%2F..%2F{b}",
        "{a}\\..\\{b}",
        "{b}\x00",
        "{B}",
        " {b}",
        "{b}\u200b",
        "%62{rest}",
        "{a}\xc0\xae\xc0\xae/{b}",
    ],
)
def test_path_tricks_in_org_names_reach_nothing(world: World, trick: str) -> None:
    alice = world.attackers["org-a-admin"]
    b = world.b.org
    name = trick.format(a=world.a_org, b=b, B=b.upper(), rest=b[1:])
    for call in (
        lambda: world.objects.list_buckets(alice, name),
        lambda: _read_all(world.objects.get_object(alice, name, world.b.bucket, world.b.key)),
        lambda: world.objects.put_object(alice, name, world.b.bucket, "x", io.BytesIO(b"x"), size=1),
    ):
        with pytest.raises(AccessDenied) as caught:
            call()
        assert str(caught.value) == f"Access denied: {NO_ACCESS}"


def test_listings_show_only_what_the_user_may_see(world: World) -> None:
    svc = world.objects
    alice = world.attackers["org-a-admin"]
    assert svc.list_orgs(alice) == [world.a_org]
    assert svc.list_orgs(world.attackers["key-of-a"]) == [world.a_org]
    assert svc.list_orgs(OPERATOR) == []
    assert [b.name for b in svc.list_buckets(alice, world.a_org)] == [world.a_bucket]
    listing = svc.list_objects(alice, world.a_org, world.a_bucket)
    assert [o.key for o in listing.objects] == [world.a_key]


def test_a_member_with_bucket_grants_sees_only_those_buckets(world: World) -> None:
    identity, svc, b = world.identity, world.objects, world.b
    strict = IdentityService(
        identity.catalog,
        identity.keyring,
        config=IdentityConfig(member_default_rights=[]),
        ensure_org=svc.ensure_org,
    )
    try:
        name = f"dave-{uid()}"
        identity.create_user(OPERATOR, name, password=PASSWORD, org=b.org, role=ROLE_MEMBER)
        identity.grant(OPERATOR, b.org, name, ["read"], bucket=b.bucket)
        dave = strict.authenticate_password(name, PASSWORD)
        assert [x.name for x in svc.list_buckets(dave, b.org)] == [b.bucket]
        assert _read_all(svc.get_object(dave, b.org, b.bucket, b.key)) == SECRET_DATA
        with pytest.raises(AccessDenied, match="the read right on bucket"):
            svc.list_objects(dave, b.org, b.empty_bucket)
        with pytest.raises(AccessDenied, match="the write right on bucket"):
            svc.put_object(dave, b.org, b.bucket, "x", io.BytesIO(b"x"), size=1)
    finally:
        strict.close()


def test_members_need_the_archive_and_restore_rights(world: World) -> None:
    identity, svc, b = world.identity, world.objects, world.b
    name = f"erin-{uid()}"
    identity.create_user(OPERATOR, name, password=PASSWORD, org=b.org, role=ROLE_MEMBER)
    erin = identity.authenticate_password(name, PASSWORD)
    key = f"cold-{uid()}"
    with pytest.raises(AccessDenied, match="the archive right on bucket"):
        svc.put_object(
            erin, b.org, b.bucket, key, io.BytesIO(b"ice"), size=3, storage_class="DEEP_ARCHIVE"
        )
    with pytest.raises(AccessDenied, match="the restore right on bucket"):
        svc.request_restore(erin, b.org, b.bucket, b.key)
    identity.grant(OPERATOR, b.org, name, ["archive", "restore"], bucket=b.bucket)
    erin = identity.authenticate_password(name, PASSWORD)
    svc.put_object(
        erin, b.org, b.bucket, key, io.BytesIO(b"ice"), size=3, storage_class="DEEP_ARCHIVE"
    )
    assert svc.request_restore(erin, b.org, b.bucket, key) is not None
    svc.delete_object(erin, b.org, b.bucket, key)
