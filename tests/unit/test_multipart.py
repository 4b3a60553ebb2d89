"""Multipart uploads in the ObjectService, over a real SQLite catalog, localfs and sealing."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from catalog.api import Catalog
from catalog.records import ROLE_MEMBER
from gateway import sealing
from gateway.errors import AccessDenied, BadDigest, InvalidArgument, ObjectNotFound
from gateway.multipart import (
    CompletedPartSpec,
    EntityTooSmall,
    InvalidPart,
    InvalidPartOrder,
    NoSuchUpload,
    multipart_etag,
)
from gateway.objects import ObjectService, RangeSpec
from gateway.principals import Principal
from tiering.backends import open_backend
from tiering.sweep import sweep_orphans

BLOCK = 64 * 1024
BUCKET = "photos"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ObjectService]:
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
        small_object_threshold=0,
    )
    yield svc
    svc.close()
    catalog.close()


@pytest.fixture
def alice(service: ObjectService) -> Principal:
    service.ensure_org("acme")
    principal = Principal(name="alice", user_id=None, roles={"acme": ROLE_MEMBER})
    service.create_bucket(principal, "acme", BUCKET)
    return principal


def blobs(svc: ObjectService) -> set[str]:
    return {b.key for b in svc.backends["local"].list("blobs/")}


def start(svc: ObjectService, who: Principal, key: str = "big", **kw: Any) -> str:
    return svc.create_multipart_upload(who, "acme", BUCKET, key, **kw).upload_id


def upload(svc: ObjectService, who: Principal, upload_id: str, number: int, data: bytes,
           key: str = "big", **kw: Any) -> str:
    part = svc.upload_part(
        who, "acme", BUCKET, key, upload_id, number, io.BytesIO(data), size=len(data), **kw
    )
    assert part.md5 == hashlib.md5(data).hexdigest()
    return part.md5


def complete(svc: ObjectService, who: Principal, upload_id: str, parts: list[tuple[int, str]],
             key: str = "big", **kw: Any) -> Any:
    kw.setdefault("min_part_size", 1)
    specs = [CompletedPartSpec(n, f'"{etag}"') for n, etag in parts]
    return svc.complete_multipart_upload(who, "acme", BUCKET, key, upload_id, specs, **kw)


def read(svc: ObjectService, who: Principal, key: str = "big", rng: RangeSpec | None = None,
         **kw: Any) -> bytes:
    return b"".join(svc.get_object(who, "acme", BUCKET, key, byte_range=rng, **kw).body)


def test_complete_references_the_part_blobs_and_computes_s3_digests(
    service: ObjectService, alice: Principal
) -> None:
    chunks = [os.urandom(3 * BLOCK + 7), os.urandom(BLOCK), os.urandom(17)]
    upload_id = start(service, alice, content_type="text/x-test", user_metadata={"a": "b"})
    etags = [upload(service, alice, upload_id, n, c) for n, c in zip((1, 3, 9), chunks, strict=True)]
    before = blobs(service)
    assert len(before) == 3
    done = complete(service, alice, upload_id, list(zip((1, 3, 9), etags, strict=True)))
    # No data was copied: the object's segments are the three part blobs.
    assert blobs(service) == before
    record = service.head_object(alice, "acme", BUCKET, "big").record
    assert {s.blob.key for s in record.segments} == before
    assert [s.part_number for s in record.segments] == [1, 3, 9]
    md5s = b"".join(hashlib.md5(c).digest() for c in chunks)
    assert record.etag == f'"{hashlib.md5(md5s).hexdigest()}-3"' == done.object.etag
    shas = b"".join(hashlib.sha256(c).digest() for c in chunks)
    assert record.sha256 == f"{hashlib.sha256(shas).hexdigest()}-3"
    assert record.content_type == "text/x-test" and record.user_metadata == {"a": "b"}
    data = b"".join(chunks)
    assert read(service, alice) == data
    start_at = len(chunks[0]) - 5
    assert read(service, alice, rng=RangeSpec(start_at, start_at + BLOCK)) == data[
        start_at : start_at + BLOCK + 1
    ]
    # Each part's own M frame names the upload and the part.
    segment = record.segments[1]
    backend = service.backends["local"]
    meta = sealing.read_metadata(
        lambda off, n: backend.get(segment.blob.key, start=off, end=off + n),
        segment.sealed_size,
        [service.org_identity(service.catalog.get_org("acme"))],  # type: ignore[arg-type]
    )
    assert (meta.part_number, meta.upload_id, meta.key) == (3, upload_id, "big")
    with pytest.raises(NoSuchUpload):
        service.list_parts(alice, "acme", BUCKET, "big", upload_id)


def test_reuploading_a_part_replaces_it_and_unlisted_parts_are_deleted(
    service: ObjectService, alice: Principal
) -> None:
    upload_id = start(service, alice)
    upload(service, alice, upload_id, 1, b"old part")
    first = blobs(service)
    etag1 = upload(service, alice, upload_id, 1, b"new part one")
    assert len(blobs(service)) == 1 and blobs(service) != first
    etag2 = upload(service, alice, upload_id, 2, b"two")
    upload(service, alice, upload_id, 3, b"three, never listed")
    page = service.list_parts(alice, "acme", BUCKET, "big", upload_id)
    assert [(p.part_number, p.size) for p in page.parts] == [(1, 12), (2, 3), (3, 19)]
    complete(service, alice, upload_id, [(1, etag1), (2, etag2)])
    assert read(service, alice) == b"new part onetwo"
    assert len(blobs(service)) == 2


def test_completion_checks(service: ObjectService, alice: Principal) -> None:
    upload_id = start(service, alice)
    small = upload(service, alice, upload_id, 1, b"x" * 100)
    other = upload(service, alice, upload_id, 2, b"y" * 100)
    with pytest.raises(InvalidPart):
        complete(service, alice, upload_id, [(1, small), (3, other)])
    with pytest.raises(InvalidPart):
        complete(service, alice, upload_id, [(1, other)])
    with pytest.raises(InvalidPartOrder):
        complete(service, alice, upload_id, [(2, other), (1, small)])
    with pytest.raises(EntityTooSmall):
        complete(service, alice, upload_id, [(1, small), (2, other)], min_part_size=5 << 20)
    with pytest.raises(NoSuchUpload):
        complete(service, alice, "not-an-upload", [(1, small)])
    with pytest.raises(NoSuchUpload):
        complete(service, alice, upload_id, [(1, small)], key="another-key")
    # None of that left an object behind; a good list still completes.
    with pytest.raises(ObjectNotFound):
        service.head_object(alice, "acme", BUCKET, "big")
    complete(service, alice, upload_id, [(1, small), (2, other)], min_part_size=100)
    assert read(service, alice) == b"x" * 100 + b"y" * 100


def test_last_part_may_be_small_with_real_sizes(service: ObjectService, alice: Principal) -> None:
    upload_id = start(service, alice)
    big = os.urandom(5 << 20)
    etags = [upload(service, alice, upload_id, 1, big), upload(service, alice, upload_id, 2, b"z")]
    done = complete(service, alice, upload_id, [(1, etags[0]), (2, etags[1])], min_part_size=5 << 20)
    assert done.object.size == len(big) + 1
    assert done.object.etag.strip('"') == multipart_etag(etags)


def test_abort_removes_parts_and_the_upload(service: ObjectService, alice: Principal) -> None:
    upload_id = start(service, alice)
    upload(service, alice, upload_id, 1, b"a")
    upload(service, alice, upload_id, 2, b"b")
    assert len(blobs(service)) == 2
    service.abort_multipart_upload(alice, "acme", BUCKET, "big", upload_id)
    assert blobs(service) == set()
    with pytest.raises(NoSuchUpload):
        service.abort_multipart_upload(alice, "acme", BUCKET, "big", upload_id)
    with pytest.raises(NoSuchUpload):
        upload(service, alice, upload_id, 3, b"c")
    assert blobs(service) == set()


def test_stale_uploads_are_aborted_and_the_sweep_keeps_parts(
    service: ObjectService, alice: Principal
) -> None:
    old = start(service, alice, key="old")
    upload(service, alice, old, 1, b"part of an old upload", key="old")
    # The orphan sweep settles intents only: a recorded part has none, so it stays.
    sweep_orphans(service.catalog, service.backends, datetime.now(UTC) + timedelta(days=1))
    assert len(blobs(service)) == 1
    assert service.abort_stale_uploads(datetime.now(UTC) - timedelta(days=7)) == 0
    assert len(blobs(service)) == 1
    assert service.abort_stale_uploads(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert blobs(service) == set()
    with pytest.raises(NoSuchUpload):
        service.list_parts(alice, "acme", BUCKET, "old", old)


def test_upload_part_copy_reseals_a_range(service: ObjectService, alice: Principal) -> None:
    source = os.urandom(4 * BLOCK)
    service.put_object(alice, "acme", BUCKET, "src", io.BytesIO(source), size=len(source))
    upload_id = start(service, alice)
    part, view = service.upload_part_copy(
        alice, "acme", BUCKET, "big", upload_id, 1, BUCKET, "src",
        byte_range=RangeSpec(BLOCK - 3, 2 * BLOCK + 4),
    )
    expected = source[BLOCK - 3 : 2 * BLOCK + 5]
    assert part.md5 == hashlib.md5(expected).hexdigest() and view.record.key == "src"
    whole, _ = service.upload_part_copy(alice, "acme", BUCKET, "big", upload_id, 2, BUCKET, "src")
    complete(service, alice, upload_id, [(1, part.md5), (2, whole.md5)])
    assert read(service, alice) == expected + source
    # The copy has its own blobs: deleting the source leaves it whole.
    service.delete_object(alice, "acme", BUCKET, "src")
    assert read(service, alice) == expected + source


def test_declared_digests_are_checked_by_the_sealer(
    service: ObjectService, alice: Principal
) -> None:
    data = b"some body"
    upload_id = start(service, alice)
    with pytest.raises(BadDigest):
        upload(service, alice, upload_id, 1, data, expected_sha256="00" * 32)
    with pytest.raises(BadDigest):
        upload(service, alice, upload_id, 1, data, expected_md5="00" * 16)
    assert blobs(service) == set()
    assert service.list_parts(alice, "acme", BUCKET, "big", upload_id).parts == []
    upload(service, alice, upload_id, 1, data, expected_sha256=hashlib.sha256(data).hexdigest(),
           expected_md5=hashlib.md5(data).hexdigest())
    with pytest.raises(BadDigest):
        service.put_object(alice, "acme", BUCKET, "k", io.BytesIO(data), size=len(data),
                           expected_sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ObjectNotFound):
        service.head_object(alice, "acme", BUCKET, "k")
    assert len(blobs(service)) == 1
    service.put_object(alice, "acme", BUCKET, "k", io.BytesIO(data), size=len(data),
                       expected_sha256=hashlib.sha256(data).hexdigest(),
                       expected_md5=hashlib.md5(data).hexdigest())
    assert read(service, alice, "k") == data


def test_upload_aborted_during_completion_leaves_nothing(
    service: ObjectService, alice: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload_id = start(service, alice)
    etag = upload(service, alice, upload_id, 1, b"racing")
    real = service.catalog.list_parts

    def list_then_abort(*args: Any, **kw: Any) -> Any:
        parts = real(*args, **kw)
        service.abort_multipart_upload(alice, "acme", BUCKET, "big", upload_id)
        return parts

    monkeypatch.setattr(service.catalog, "list_parts", list_then_abort)
    with pytest.raises(InvalidPart):
        complete(service, alice, upload_id, [(1, etag)])
    with pytest.raises(ObjectNotFound):
        service.head_object(alice, "acme", BUCKET, "big")
    assert blobs(service) == set()


def test_customer_keys_follow_the_upload(service: ObjectService, alice: Principal) -> None:
    key = os.urandom(32)
    upload_id = start(service, alice, sse_customer_key=key)
    with pytest.raises(InvalidArgument):
        upload(service, alice, upload_id, 1, b"no key")
    with pytest.raises(AccessDenied):
        upload(service, alice, upload_id, 1, b"wrong key", sse_customer_key=os.urandom(32))
    etag = upload(service, alice, upload_id, 1, b"secret", sse_customer_key=key)
    complete(service, alice, upload_id, [(1, etag)])
    assert read(service, alice, sse_customer_key=key) == b"secret"
    with pytest.raises(InvalidArgument):
        read(service, alice)
    view = service.head_object_with_key(alice, "acme", BUCKET, "big", sse_customer_key=key)
    assert view.record.sse_recipient is not None
    with pytest.raises(AccessDenied):
        service.head_object_with_key(alice, "acme", BUCKET, "big", sse_customer_key=os.urandom(32))


def test_listing_uploads_and_parts(service: ObjectService, alice: Principal) -> None:
    ids: dict[str, list[str]] = {}
    for key in ["a/1", "a/2", "b", "c/x/y", "a/1"]:
        ids.setdefault(key, []).append(start(service, alice, key=key))
    page = service.list_multipart_uploads(alice, "acme", BUCKET)
    assert [(u.key, u.upload_id) for u in page.uploads] == [
        ("a/1", ids["a/1"][0]), ("a/1", ids["a/1"][1]), ("a/2", ids["a/2"][0]),
        ("b", ids["b"][0]), ("c/x/y", ids["c/x/y"][0]),
    ]
    page = service.list_multipart_uploads(alice, "acme", BUCKET, delimiter="/")
    assert [u.key for u in page.uploads] == ["b"] and page.common_prefixes == ["a/", "c/"]
    page = service.list_multipart_uploads(alice, "acme", BUCKET, max_uploads=2)
    assert page.is_truncated and (page.next_key_marker, page.next_upload_id_marker) == (
        "a/1", ids["a/1"][1])
    rest = service.list_multipart_uploads(
        alice, "acme", BUCKET, key_marker=page.next_key_marker,
        upload_id_marker=page.next_upload_id_marker,
    )
    assert [u.key for u in rest.uploads] == ["a/2", "b", "c/x/y"] and not rest.is_truncated
    after_key = service.list_multipart_uploads(alice, "acme", BUCKET, key_marker="a/1")
    assert [u.key for u in after_key.uploads] == ["a/2", "b", "c/x/y"]
    prefixed = service.list_multipart_uploads(alice, "acme", BUCKET, prefix="a/", max_uploads=1,
                                              delimiter="/")
    assert [u.key for u in prefixed.uploads] == ["a/1"] and prefixed.is_truncated

    upload_id = ids["b"][0]
    for n in (5, 1, 3):
        upload(service, alice, upload_id, n, bytes([n]) * n, key="b")
    first = service.list_parts(alice, "acme", BUCKET, "b", upload_id, max_parts=2)
    assert [p.part_number for p in first.parts] == [1, 3] and first.next_part_number_marker == 3
    second = service.list_parts(alice, "acme", BUCKET, "b", upload_id, part_number_marker=3)
    assert [p.part_number for p in second.parts] == [5] and not second.is_truncated


def test_deleting_a_bucket_aborts_its_uploads(service: ObjectService, alice: Principal) -> None:
    upload_id = start(service, alice)
    upload(service, alice, upload_id, 1, b"part")
    assert service.abort_bucket_uploads(alice, "acme", BUCKET) == 1
    service.delete_bucket(alice, "acme", BUCKET)
    assert blobs(service) == set()


def test_part_numbers_are_bounded(service: ObjectService, alice: Principal) -> None:
    upload_id = start(service, alice)
    for bad in (0, 10001):
        with pytest.raises(InvalidArgument):
            upload(service, alice, upload_id, bad, b"x")
    upload(service, alice, upload_id, 10000, b"last possible part")


def test_the_engine_expires_stale_uploads(service: ObjectService, alice: Principal) -> None:
    from types import SimpleNamespace

    from gateway.config import load_config
    from tiering.engine import Engine, default_tasks, multipart_expiry_task

    assert "multipart-expiry" in [t.name for t in default_tasks(load_config(env={}))]
    upload_id = start(service, alice)
    upload(service, alice, upload_id, 1, b"forgotten")
    gateway = SimpleNamespace(objects=service, catalog=service.catalog, instance_id="engine-1")
    kept = Engine(gateway, [multipart_expiry_task(60, 1)])  # type: ignore[arg-type]
    assert kept.run_once_blocking() == {"multipart-expiry": 0}
    assert len(blobs(service)) == 1
    expired = Engine(gateway, [multipart_expiry_task(60, 0)])  # type: ignore[arg-type]
    assert expired.run_once_blocking() == {"multipart-expiry": 1}
    assert blobs(service) == set()
    with pytest.raises(NoSuchUpload):
        service.list_parts(alice, "acme", BUCKET, "big", upload_id)
