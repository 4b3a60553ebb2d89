"""WebDAV locks and dead properties in the catalog, on SQLite and on the MariaDB server the
fixtures start (as tests/integration/test_catalog.py does), and the lock manager over them:
two managers on one catalog stand for two gateway replicas."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from wsgidav.dav_error import DAVError

from catalog.api import Catalog
from catalog.records import NewObject, ObjectRecord
from gateway.errors import InvalidName
from protocols.webdav.locks import CatalogLockManager, CatalogLockStorage
from tests.integration.catalog_support import ENGINES, fresh_catalog_url


@pytest.fixture(scope="module", params=ENGINES)
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    url = fresh_catalog_url(request.param, request, tmp_path_factory.mktemp("dav"))
    cat = Catalog(url, cache_ttl=0)
    cat.upgrade()
    yield cat
    cat.close()


def _root() -> str:
    return f"/org-{uuid.uuid4().hex[:8]}/bucket"


def _lock(
    catalog: Catalog, path: str, *, timeout: float = 60, scope: str = "exclusive", depth: str = "0"
) -> str:
    token = f"opaquelocktoken:{uuid.uuid4().hex}"
    catalog.dav_create_lock(
        path,
        token=token,
        principal="alice",
        scope=scope,
        type="write",
        depth=depth,
        owner=b"<owner xmlns='DAV:'>t</owner>",
        timeout=timeout,
    )
    return token


def test_locks_are_found_by_path_and_below(catalog: Catalog) -> None:
    root = _root()
    on_dir = _lock(catalog, f"{root}/a/b/")
    below = _lock(catalog, f"{root}/a/b/c d/ë")
    sibling = _lock(catalog, f"{root}/a/bc")
    _lock(catalog, f"{root}/a/b0")

    assert [x.token for x in catalog.dav_locks_at(f"{root}/a/b")] == [on_dir]
    children = catalog.dav_locks_at(f"{root}/a/b", include_root=False, include_children=True)
    assert [x.token for x in children] == [below]
    assert children[0].root == f"{root}/a/b/c d/ë"
    both = catalog.dav_locks_at(f"{root}/a/b/", include_children=True)
    assert [x.token for x in both] == [on_dir, below]
    assert sibling not in [
        x.token
        for x in catalog.dav_locks_at(f"{root}/a", include_root=False, include_children=False)
    ]
    assert len(catalog.dav_locks_at(root, include_root=False, include_children=True)) == 4
    everything = catalog.dav_locks_at("/", include_root=True, include_children=True)
    assert {on_dir, below, sibling} <= {x.token for x in everything}
    on_paths = catalog.dav_locks_on_paths([f"{root}/a/b", f"{root}/a", root])
    assert [x.token for x in on_paths] == [on_dir]

    got = catalog.dav_get_lock(below)
    assert got is not None and got.owner.startswith(b"<owner") and got.scope == "exclusive"
    assert got.expires_at > datetime.now(UTC)
    assert catalog.dav_delete_lock(below) is True
    assert catalog.dav_delete_lock(below) is False
    assert catalog.dav_get_lock(below) is None
    with pytest.raises(InvalidName):
        catalog.dav_locks_at("/" + "x" * 3000)


def test_expired_locks_are_ignored_refreshed_and_purged(catalog: Catalog) -> None:
    root = _root()
    token = _lock(catalog, f"{root}/brief", timeout=0.3)
    assert catalog.dav_get_lock(token) is not None
    refreshed = catalog.dav_refresh_lock(token, 0.6)
    assert refreshed is not None and refreshed.timeout == 0.6
    time.sleep(0.7)
    assert catalog.dav_get_lock(token) is None
    assert catalog.dav_locks_at(f"{root}/brief") == []
    assert catalog.dav_refresh_lock(token, 60) is None
    assert catalog.dav_purge_expired_locks() >= 1


def _objects(catalog: Catalog, key: str) -> list[ObjectRecord]:
    """Two objects (``key`` and ``key-2``) in a new bucket."""
    org = catalog.create_org(
        f"org-{uuid.uuid4().hex[:8]}", recipient="age1x", identity_wrapped=b"w", identity_key_id="k"
    )
    bucket = catalog.create_bucket(org.id, "bucket", region="r", backend="local")
    catalog.import_objects(
        [
            NewObject(
                bucket_id=bucket.id,
                key=name,
                size=1,
                etag='"x"',
                sha256="0" * 64,
                content_type="text/plain",
                user_metadata={},
                storage_class="STANDARD",
                segments=(),
                modified_at=datetime.now(UTC),
            )
            for name in (key, key + "-2")
        ]
    )
    return catalog.list_objects(bucket.id).objects


def test_dead_properties_belong_to_their_object(catalog: Catalog) -> None:
    first, second = _objects(catalog, "file.txt")
    object_id, other = first.id, second.id
    big = b"<x:big xmlns:x='urn:t'>" + b"v" * 70_000 + b"</x:big>"
    name = "{urn:t}" + "n" * 900
    props = catalog.dav_update_properties(
        object_id, {"{urn:t}a": b"<x:a xmlns:x='urn:t'>1</x:a>", "{urn:t}big": big, name: b"<v/>"}
    )
    assert set(props) == {"{urn:t}a", "{urn:t}big", name}
    assert catalog.dav_properties(object_id)["{urn:t}big"] == big
    catalog.dav_update_properties(object_id, {"{urn:t}a": None, "{urn:t}b": b"<b/>"})
    assert set(catalog.dav_properties(object_id)) == {"{urn:t}b", "{urn:t}big", name}
    catalog.dav_copy_properties(object_id, other)
    assert catalog.dav_properties_of([object_id, other, 10**12]) == {
        object_id: catalog.dav_properties(object_id),
        other: catalog.dav_properties(object_id),
    }
    assert catalog.dav_properties_by_keys(
        first.bucket_id, ["file.txt", "file.txt-2", "nothing"]
    ) == {
        "file.txt": catalog.dav_properties(object_id),
        "file.txt-2": catalog.dav_properties(object_id),
    }
    assert catalog.dav_properties_by_keys(first.bucket_id + 1, ["file.txt"]) == {}
    catalog.dav_delete_properties(other)
    assert catalog.dav_properties(other) == {}
    # Deleting the object deletes its properties, whoever deletes it.
    catalog.delete_object(first.bucket_id, first.key)
    assert catalog.dav_properties(object_id) == {}
    assert catalog.dav_properties(other) == {}


# -- the lock manager: replicas sharing one catalog ------------------------------------------


def _manager(catalog: Catalog) -> CatalogLockManager:
    return CatalogLockManager(CatalogLockStorage(catalog, max_timeout=3600))


def _acquire(
    manager: CatalogLockManager,
    url: str,
    *,
    scope: str = "exclusive",
    depth: str = "0",
    principal: str = "alice",
) -> dict:
    return manager.acquire(
        url=url,
        lock_type="write",
        lock_scope=scope,
        lock_depth=depth,
        lock_owner=b"",
        timeout=None,
        principal=principal,
        token_list=[],
    )


def test_a_lock_taken_on_one_replica_binds_the_other(catalog: Catalog) -> None:
    one, two = _manager(catalog), _manager(catalog)
    url = quote(f"{_root()}/shared dir/é.txt")
    lock = _acquire(one, url)
    assert lock["root"] == url and lock["timeout"] == 3600  # capped
    with pytest.raises(DAVError) as refused:
        _acquire(two, url, principal="bob")
    assert refused.value.value == 423
    with pytest.raises(DAVError):
        two.check_write_permission(url=url, depth="0", token_list=[], principal="alice")
    two.check_write_permission(url=url, depth="0", token_list=[lock["token"]], principal="alice")
    parent = url.rsplit("/", 1)[0]
    with pytest.raises(DAVError):
        two.check_write_permission(url=parent, depth="infinity", token_list=[], principal="alice")
    two.check_write_permission(url=parent, depth="0", token_list=[], principal="alice")
    assert [x["token"] for x in two.get_indirect_url_lock_list(url)] == [lock["token"]]
    assert two.is_url_locked_by_token(url, lock["token"])
    two.release(lock["token"])
    assert one.get_url_lock_list(url) == []
    shared = [_acquire(one, url, scope="shared"), _acquire(two, url, scope="shared")]
    assert len(one.get_url_lock_list(url)) == 2
    for item in shared:
        one.release(item["token"])


def test_of_two_racing_conflicting_locks_the_older_stands(catalog: Catalog) -> None:
    """Both replicas passed their conflict check before either stored its lock."""
    one, two = _manager(catalog), _manager(catalog)
    folder = quote(f"{_root()}/race")
    older = one.storage.create(folder, _lock_request(depth="infinity"))
    younger = two.storage.create(folder + "/inner.txt", _lock_request())
    with pytest.raises(DAVError) as withdrawn:
        two._withdraw_if_raced(younger)
    assert withdrawn.value.value == 423
    one._withdraw_if_raced(older)  # the older one sees the younger, and stays
    assert [x["token"] for x in one.get_url_lock_list(folder, recursive=True)] == [older["token"]]
    shared_a = one.storage.create(folder + "/s", _lock_request(scope="shared"))
    one.release(older["token"])
    shared_b = two.storage.create(folder + "/s", _lock_request(scope="shared"))
    two._withdraw_if_raced(shared_b)  # shared locks do not conflict
    assert len(one.get_url_lock_list(folder + "/s")) == 2
    for item in (shared_a, shared_b):
        one.release(item["token"])


def _lock_request(*, scope: str = "exclusive", depth: str = "0") -> dict:
    return {
        "type": "write",
        "scope": scope,
        "depth": depth,
        "owner": b"",
        "timeout": 60,
        "principal": "alice",
    }
