"""The ObjectService over a real SQLite catalog, a real localfs backend and real sealing."""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.api import Catalog
from catalog.records import ROLE_MEMBER
from gateway import sealing
from gateway.errors import (
    AccessDenied,
    BucketNotEmpty,
    BucketNotFound,
    InvalidArgument,
    InvalidName,
    InvalidRange,
    NotArchived,
    ObjectArchived,
    ObjectNotFound,
    PreconditionFailed,
    QuotaExceeded,
    RestoreInProgress,
    VaultSealed,
)
from gateway.objects import ObjectService, RangeSpec
from gateway.principals import Principal
from tiering.backends import open_backend
from tiering.sweep import sweep_orphans

BLOCK = 64 * 1024


@pytest.fixture
def service(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ObjectService]:
    catalog = Catalog(f"sqlite:///{tmp_path}/catalog.db")
    catalog.upgrade()
    backend = open_backend("local", {"type": "localfs", "root": str(tmp_path / "blobs")})
    keyring = sealing.MasterKeyring(sealing.MasterKey.generate())
    svc = ObjectService(
        catalog,
        {"local": backend},
        keyring,
        default_backend="local",
        default_region="local",
        block_size=BLOCK,
        small_object_threshold=getattr(request, "param", 0),
    )
    yield svc
    svc.close()
    catalog.close()


def member_of(svc: ObjectService, org: str, name: str = "alice") -> Principal:
    svc.ensure_org(org)
    return Principal(name=name, user_id=None, roles={org: ROLE_MEMBER})


@pytest.fixture
def alice(service: ObjectService) -> Principal:
    principal = member_of(service, "acme")
    service.create_bucket(principal, "acme", "photos")
    return principal


def put(svc: ObjectService, who: Principal, key: str, data: bytes, **kw: object) -> None:
    svc.put_object(who, "acme", "photos", key, io.BytesIO(data), size=len(data), **kw)  # type: ignore[arg-type]


def read(svc: ObjectService, who: Principal, key: str, rng: RangeSpec | None = None) -> bytes:
    return b"".join(svc.get_object(who, "acme", "photos", key, byte_range=rng).body)


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 17])
def test_put_get_round_trip(service: ObjectService, alice: Principal, size: int) -> None:
    data = os.urandom(size)
    put(service, alice, "a/b.bin", data)
    assert read(service, alice, "a/b.bin") == data
    view = service.head_object(alice, "acme", "photos", "a/b.bin")
    assert view.record.size == size
    assert view.storage_class == "STANDARD"
    assert view.record.etag == f'"{hashlib.md5(data).hexdigest()}"'


def test_ranges_are_exact(service: ObjectService, alice: Principal) -> None:
    data = os.urandom(3 * BLOCK + 100)
    put(service, alice, "r", data)
    for start, end in [(0, 0), (BLOCK - 1, BLOCK), (BLOCK, 2 * BLOCK + 5), (len(data) - 1, None)]:
        got = read(service, alice, "r", RangeSpec(start, end))
        assert got == data[start : None if end is None else end + 1]
    assert read(service, alice, "r", RangeSpec(None, 10)) == data[-10:]
    assert read(service, alice, "r", RangeSpec(5, 10**9)) == data[5:]
    with pytest.raises(InvalidRange):
        service.get_object(alice, "acme", "photos", "r", byte_range=RangeSpec(len(data), None))


def test_overwrite_and_delete_remove_old_blobs(
    service: ObjectService, alice: Principal, tmp_path: Path
) -> None:
    backend = service.backends["local"]
    put(service, alice, "k", b"one")
    first = service.head_object(alice, "acme", "photos", "k").record.segments[0].blob.key
    put(service, alice, "k", b"two")
    assert read(service, alice, "k") == b"two"
    assert [b.key for b in backend.list("blobs/")] != [] and first not in [
        b.key for b in backend.list("blobs/")
    ]
    assert service.delete_object(alice, "acme", "photos", "k") is True
    assert list(backend.list("blobs/")) == []
    assert service.delete_object(alice, "acme", "photos", "k") is False
    with pytest.raises(ObjectNotFound):
        read(service, alice, "k")


def test_listing_with_delimiter(service: ObjectService, alice: Principal) -> None:
    for key in ["a/1", "a/2", "b/1", "c", "d/e/f"]:
        put(service, alice, key, b"x")
    page = service.list_objects(alice, "acme", "photos", delimiter="/")
    assert [o.key for o in page.objects] == ["c"]
    assert page.common_prefixes == ["a/", "b/", "d/"]
    page = service.list_objects(alice, "acme", "photos", prefix="a/", max_keys=1)
    assert [o.key for o in page.objects] == ["a/1"] and page.is_truncated
    page = service.list_objects(alice, "acme", "photos", prefix="a/", start_after=page.next_marker)
    assert [o.key for o in page.objects] == ["a/2"] and not page.is_truncated


def test_copy_shares_blobs_within_an_org(service: ObjectService, alice: Principal) -> None:
    backend = service.backends["local"]
    data = os.urandom(2 * BLOCK)
    put(service, alice, "src", data)
    service.create_bucket(alice, "acme", "other")
    service.copy_object(alice, "acme", "photos", "src", "other", "dst")
    assert len(list(backend.list("blobs/"))) == 1
    service.delete_object(alice, "acme", "photos", "src")
    assert len(list(backend.list("blobs/"))) == 1
    assert b"".join(service.get_object(alice, "acme", "other", "dst").body) == data
    service.delete_object(alice, "acme", "other", "dst")
    assert list(backend.list("blobs/")) == []


def test_copy_across_orgs_reseals(service: ObjectService, alice: Principal) -> None:
    service.ensure_org("beta")
    both = Principal(name="alice", user_id=None, roles={"acme": ROLE_MEMBER, "beta": ROLE_MEMBER})
    service.create_bucket(both, "beta", "inbox")
    put(service, both, "doc", b"hello across orgs")
    service.copy_object(both, "acme", "photos", "doc", "inbox", "doc", dst_org_name="beta")
    assert b"".join(service.get_object(both, "beta", "inbox", "doc").body) == b"hello across orgs"
    beta = service.catalog.get_org("beta")
    record = service.head_object(both, "beta", "inbox", "doc").record
    assert beta is not None and record.segments[0].recipient == beta.recipient


def test_move_object_and_folder(service: ObjectService, alice: Principal) -> None:
    for key in ["dir/a", "dir/sub/b", "other"]:
        put(service, alice, key, key.encode())
    service.move_object(alice, "acme", "photos", "other", "photos", "renamed")
    assert read(service, alice, "renamed") == b"other"
    assert service.move_prefix(alice, "acme", "photos", "dir/", "photos", "new/") == 2
    keys = [o.key for o in service.list_objects(alice, "acme", "photos").objects]
    assert keys == ["new/a", "new/sub/b", "renamed"]
    assert read(service, alice, "new/sub/b") == b"dir/sub/b"
    with pytest.raises(PreconditionFailed):
        put(service, alice, "x", b"1")
        service.move_object(alice, "acme", "photos", "x", "photos", "renamed", overwrite=False)


def test_other_orgs_are_invisible(service: ObjectService, alice: Principal) -> None:
    put(service, alice, "secret", b"s")
    mallory = member_of(service, "evil", "mallory")
    for call in [
        lambda: service.list_buckets(mallory, "acme"),
        lambda: service.get_object(mallory, "acme", "photos", "secret"),
        lambda: service.head_object(mallory, "acme", "photos", "secret"),
        lambda: service.delete_object(mallory, "acme", "photos", "secret"),
        lambda: service.list_objects(mallory, "acme", "photos"),
        lambda: service.put_object(mallory, "acme", "photos", "x", io.BytesIO(b"")),
        lambda: service.list_buckets(mallory, "no-such-org"),
    ]:
        with pytest.raises(AccessDenied) as caught:
            call()
        assert "acme" not in str(caught.value) and "no-such-org" not in str(caught.value)
    assert read(service, alice, "secret") == b"s"
    assert service.list_orgs(mallory) == ["evil"]


def test_deep_archive_class_is_cold_at_once(service: ObjectService, alice: Principal) -> None:
    put(service, alice, "cold", b"ice", storage_class="DEEP_ARCHIVE")
    view = service.head_object(alice, "acme", "photos", "cold")
    assert view.storage_class == "DEEP_ARCHIVE" and view.state == "archived"
    with pytest.raises(ObjectArchived) as caught:
        read(service, alice, "cold")
    assert caught.value.code == "InvalidObjectState"


def test_vault_bucket_is_write_only(service: ObjectService, alice: Principal) -> None:
    identity, recipient = sealing.generate_identity()
    service.create_bucket(alice, "acme", "vault", vault_recipient=recipient)
    service.put_object(alice, "acme", "vault", "v", io.BytesIO(b"private"))
    with pytest.raises(VaultSealed):
        service.get_object(alice, "acme", "vault", "v")
    segment = service.head_object(alice, "acme", "vault", "v").record.segments[0]
    sealed = b"".join(service.backends["local"].get(segment.blob.key))
    assert b"".join(sealing.unseal(io.BytesIO(sealed), [identity])) == b"private"


def test_sse_c_key_is_needed_and_checked(service: ObjectService, alice: Principal) -> None:
    key = os.urandom(32)
    put(service, alice, "c", b"customer", sse_customer_key=key)
    with pytest.raises(InvalidArgument):
        read(service, alice, "c")
    with pytest.raises(AccessDenied):
        service.get_object(alice, "acme", "photos", "c", sse_customer_key=os.urandom(32))
    body = service.get_object(alice, "acme", "photos", "c", sse_customer_key=key).body
    assert b"".join(body) == b"customer"


class ExplodingStream:
    def __init__(self, good: int) -> None:
        self.left = good

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError("client went away")
        n = min(size, self.left)
        self.left -= n
        return b"x" * n


def test_failed_upload_leaves_nothing(service: ObjectService, alice: Principal) -> None:
    with pytest.raises(ConnectionResetError):
        service.put_object(alice, "acme", "photos", "cut", ExplodingStream(3 * BLOCK))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        service.put_object(alice, "acme", "photos", "short", io.BytesIO(b"abc"), size=10)
    assert service.list_objects(alice, "acme", "photos").objects == []
    assert list(service.backends["local"].list("blobs/")) == []
    future = datetime.now(UTC) + timedelta(days=1)
    assert service.catalog.due_intents(future) == []


def test_preconditions_and_quota(service: ObjectService, alice: Principal) -> None:
    put(service, alice, "p", b"1")
    with pytest.raises(PreconditionFailed):
        put(service, alice, "p", b"2", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        put(service, alice, "p", b"2", if_match='"0000"')
    etag = service.head_object(alice, "acme", "photos", "p").record.etag
    put(service, alice, "p", b"3", if_match=etag)
    org = service.catalog.get_org("acme")
    assert org is not None
    service.catalog.set_org_quota(org.id, 100)
    with pytest.raises(QuotaExceeded):
        put(service, alice, "big", b"x" * 200)
    with pytest.raises(QuotaExceeded):
        service.put_object(alice, "acme", "photos", "big2", io.BytesIO(b"x" * 200))
    assert read(service, alice, "p") == b"3"
    assert list(service.backends["local"].list("blobs/")) and len(
        list(service.backends["local"].list("blobs/"))
    ) == 1


def test_names_are_checked(service: ObjectService, alice: Principal) -> None:
    with pytest.raises(InvalidName):
        service.create_bucket(alice, "acme", "Bad_Name")
    with pytest.raises(InvalidName):
        put(service, alice, "k" * 1025, b"")
    for bad in ["a/../b", "..", "./x", "a/.", "nul\x00byte"]:
        with pytest.raises(InvalidName):
            put(service, alice, bad, b"")
    put(service, alice, "é" * 512, b"ok")
    put(service, alice, "a/..b/.c/...", b"ok")
    with pytest.raises(BucketNotFound):
        service.put_object(alice, "acme", "nope", "k", io.BytesIO(b""))
    with pytest.raises(BucketNotEmpty):
        service.delete_bucket(alice, "acme", "photos")


def test_sweep_removes_orphans_of_a_crashed_upload(service: ObjectService, alice: Principal) -> None:
    backend = service.backends["local"]
    intent = service.catalog.add_intent("local", "blobs/1/1/crashed")
    backend.put("blobs/1/1/crashed", io.BytesIO(b"half"), size=4)
    put(service, alice, "kept", b"kept")
    assert sweep_orphans(service.catalog, service.backends, datetime.now(UTC) - timedelta(hours=1)) == 0
    assert sweep_orphans(service.catalog, service.backends, datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert [b.key for b in backend.list("blobs/")] == [
        s.blob.key for s in service.head_object(alice, "acme", "photos", "kept").record.segments
    ]
    assert service.catalog.due_intents(datetime.now(UTC) + timedelta(days=1)) == []
    assert intent.blob_key == "blobs/1/1/crashed"
    assert read(service, alice, "kept") == b"kept"


def test_reads_and_writes_are_metered(service: ObjectService, alice: Principal) -> None:
    put(service, alice, "m", b"12345")
    read(service, alice, "m")
    service.counters.flush()
    org = service.catalog.get_org("acme")
    assert org is not None
    totals = service.catalog.usage_totals(org.id)
    assert totals["PUT"] == (1, 5)
    assert totals["GET"] == (1, 5)


def test_restore_of_an_object_archived_at_put_completes_at_once(
    service: ObjectService, alice: Principal
) -> None:
    put(service, alice, "cold", b"ice", storage_class="DEEP_ARCHIVE")
    with pytest.raises(NotArchived):
        put(service, alice, "warm", b"w")
        service.request_restore(alice, "acme", "photos", "warm")
    ticket = service.request_restore(alice, "acme", "photos", "cold", days=2, tier="Bulk")
    assert ticket.status == "started" and ticket.expires_at is not None
    view = service.head_object(alice, "acme", "photos", "cold")
    assert view.state == "restored" and view.storage_class == "DEEP_ARCHIVE"
    assert view.restore_expiry is not None
    assert view.restore_expiry > datetime.now(UTC) + timedelta(days=1, hours=23)
    assert read(service, alice, "cold") == b"ice"
    again = service.request_restore(alice, "acme", "photos", "cold")
    assert again.status == "available"
    with pytest.raises(InvalidArgument):
        service.request_restore(alice, "acme", "photos", "cold", tier="Expedited")


def test_restore_of_a_cold_blob_waits_for_the_backend(
    service: ObjectService, alice: Principal, tmp_path: Path
) -> None:
    slow = open_backend(
        "slow", {"type": "localfs", "root": str(tmp_path / "slow"), "restore_delay": 0.5}
    )
    service.backends["slow"] = slow
    bucket = service.catalog.create_bucket(
        service.catalog.get_org("acme").id,  # type: ignore[union-attr]
        "deep",
        region="local",
        backend="slow",
    )
    data = os.urandom(3 * BLOCK)
    service.put_object(alice, "acme", "deep", "k", io.BytesIO(data))
    service.put_object(alice, "acme", "deep", "twin", io.BytesIO(b"t"))
    record = service.head_object(alice, "acme", "deep", "k").record
    # What the tiering engine does when it archives: move the blob, then the class.
    slow.set_storage_class(record.segments[0].blob.key, "DEEP_ARCHIVE")
    service.catalog.mark_blobs_archived([record.segments[0].blob.id], "DEEP_ARCHIVE")
    service.copy_object(alice, "acme", "deep", "k", "deep", "copy")
    assert service.head_object(alice, "acme", "deep", "k").state == "archived"
    with pytest.raises(ObjectArchived):
        read_from = service.get_object(alice, "acme", "deep", "k")
        b"".join(read_from.body)
    assert service.request_restore(alice, "acme", "deep", "k").status == "started"
    assert service.head_object(alice, "acme", "deep", "k").state == "restoring"
    with pytest.raises(RestoreInProgress):
        service.request_restore(alice, "acme", "deep", "copy")  # shares the blob
    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while service.head_object(alice, "acme", "deep", "k").state != "restored":
        assert datetime.now(UTC) < deadline, "restore never completed"
        time.sleep(0.1)
    assert b"".join(service.get_object(alice, "acme", "deep", "k").body) == data
    assert b"".join(service.get_object(alice, "acme", "deep", "copy").body) == data
    assert bucket.backend == "slow"


@pytest.mark.parametrize("service", [BLOCK], indirect=True)
def test_small_objects_are_staged_in_the_catalog(service: ObjectService, alice: Principal) -> None:
    backend = service.backends["local"]
    small, edge, large = os.urandom(100), os.urandom(BLOCK), os.urandom(BLOCK + 1)
    put(service, alice, "small", small)
    service.put_object(alice, "acme", "photos", "edge", io.BytesIO(edge))  # size unknown
    service.put_object(alice, "acme", "photos", "large", io.BytesIO(large))  # size unknown
    assert [b.key.rsplit("/", 1)[0] for b in backend.list("blobs/")] != []
    assert len(list(backend.list("blobs/"))) == 1
    staged = list(service.backends["staging"].list("blobs/"))
    assert len(staged) == 2
    for key, data in [("small", small), ("edge", edge), ("large", large)]:
        assert read(service, alice, key) == data
        assert read(service, alice, key, RangeSpec(10, 20)) == data[10:21]
    segment = service.head_object(alice, "acme", "photos", "small").record.segments[0]
    assert segment.blob.backend == "staging"
    service.delete_object(alice, "acme", "photos", "small")
    service.delete_object(alice, "acme", "photos", "edge")
    assert list(service.backends["staging"].list("blobs/")) == []
    assert service.catalog.due_intents(datetime.now(UTC) + timedelta(days=1)) == []
