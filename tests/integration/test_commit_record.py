"""``commit_object`` builds the record it returns from what its transaction wrote instead of
reading the object back: that record must equal what a fresh ``get_object`` returns, on
SQLite and on MariaDB, for new objects, overwrites, copies that reuse a blob, segments that
share a blob and odd timestamps. Also: a commit refreshes the cached org's stored bytes
rather than dropping the org from the cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from catalog.api import Catalog
from catalog.cache import TTLCache
from catalog.records import Bucket, NewObject, NewSegment, Org, UsageEvent
from tests.integration.catalog_support import ENGINES, fresh_catalog_url, unique_name


@pytest.fixture(scope="module", params=ENGINES)
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    url = fresh_catalog_url(request.param, request, tmp_path_factory.mktemp("commit"))
    # The default cache: the org cache is part of what is checked here.
    cat = Catalog(url)
    cat.upgrade()
    yield cat
    cat.close()


@pytest.fixture
def org(catalog: Catalog) -> Org:
    return catalog.create_org(
        unique_name("org"), recipient="age1r", identity_wrapped=b"\x00w", identity_key_id="mk1"
    )


@pytest.fixture
def bucket(catalog: Catalog, org: Org) -> Bucket:
    return catalog.create_bucket(org.id, unique_name("bucket"), region="eu-west-1", backend="local")


def _seg(
    blob_key: str, *, part: int = 1, offset: int = 0, blob_id: int | None = None
) -> NewSegment:
    return NewSegment(
        part_number=part,
        backend="local",
        blob_key=blob_key,
        blob_size=5000,
        storage_class="STANDARD",
        blob_offset=offset,
        sealed_size=300 + part,
        plain_size=100 + part,
        md5=f"md5-{part}",
        sha256=f"sha-{part}",
        age_header=b"age-encryption.org/v1\n-> X25519 abc\n--- mac\n",
        payload_offset=64 + part,
        seek_table=b"\x01\x02\x03" * part,
        header_mac=bytes([part]) * 32,
        recipient="age1r",
        blob_id=blob_id,
    )


def _new(
    bucket: Bucket,
    key: str,
    *segments: NewSegment,
    modified_at: datetime = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
) -> NewObject:
    segments = segments or (_seg(unique_name("blob")),)
    return NewObject(
        bucket_id=bucket.id,
        key=key,
        size=sum(s.plain_size for s in segments),
        etag='"etag-1"',
        sha256="sha",
        content_type="text/plain; charset=utf-8",
        user_metadata={"color": "blue", "ünï": "cödé 😀"},
        storage_class="STANDARD",
        segments=segments,
        modified_at=modified_at,
        headers={"Cache-Control": "no-cache"},
    )


def _committed_equals_read(catalog: Catalog, new: NewObject, **kwargs: object) -> None:
    result = catalog.commit_object(new, **kwargs)  # type: ignore[arg-type]
    fresh = catalog.get_object(new.bucket_id, new.key)
    assert fresh is not None
    assert result.object == fresh
    # Same types too (a datetime equal across time zones, an int equal to a bool...).
    assert repr(result.object) == repr(fresh)


def test_new_object_record_equals_a_fresh_read(catalog: Catalog, bucket: Bucket) -> None:
    _committed_equals_read(catalog, _new(bucket, "dir/ключ 😀"))


@pytest.mark.parametrize(
    "modified_at",
    [
        datetime(2025, 6, 1, 12, 0, 0, 1),  # naive: taken as UTC
        datetime(2025, 6, 1, 12, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))),
        datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
    ],
)
def test_timestamps_read_back_as_committed(
    catalog: Catalog, bucket: Bucket, modified_at: datetime
) -> None:
    _committed_equals_read(catalog, _new(bucket, unique_name("k"), modified_at=modified_at))


def test_overwrite_record_equals_a_fresh_read(catalog: Catalog, bucket: Bucket) -> None:
    first = catalog.commit_object(_new(bucket, "same"))
    new = _new(bucket, "same", _seg(unique_name("blob2"), part=1))
    result = catalog.commit_object(new)
    assert result.replaced == first.object
    assert result.object.id == first.object.id
    assert result.object == catalog.get_object(bucket.id, "same")


def test_copy_reusing_a_blob_equals_a_fresh_read(catalog: Catalog, bucket: Bucket) -> None:
    source = catalog.commit_object(_new(bucket, "source")).object
    blob = source.segments[0].blob
    copy = _new(bucket, "copy", _seg(blob.key, blob_id=blob.id))
    _committed_equals_read(catalog, copy)
    # A copy onto an existing key, reusing the same blob again.
    _committed_equals_read(catalog, _new(bucket, "copy", _seg(blob.key, blob_id=blob.id)))


def test_segments_sharing_a_blob_out_of_order(catalog: Catalog, bucket: Bucket) -> None:
    shared = unique_name("container")
    new = _new(
        bucket,
        unique_name("multi"),
        _seg(shared, part=3, offset=900),
        _seg(shared, part=1, offset=0),
        _seg(unique_name("other"), part=2),
    )
    result = catalog.commit_object(new)
    assert [s.part_number for s in result.object.segments] == [1, 2, 3]
    assert result.object == catalog.get_object(bucket.id, new.key)


def test_staged_commit_with_usage_equals_a_fresh_read(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    new = _new(bucket, unique_name("small"))
    _committed_equals_read(
        catalog,
        new,
        staged={new.segments[0].blob_key: b"sealed bytes"},
        usage=UsageEvent(org_id=org.id, action="PUT", bucket_id=bucket.id, bytes=new.size),
        quota_org_id=org.id,
    )


def test_a_commit_refreshes_the_cached_orgs_stored_bytes(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    cached = catalog.get_org(org.name)
    assert cached is not None and cached.stored_bytes == 0
    new = _new(bucket, "k")
    catalog.commit_object(new, quota_org_id=org.id)
    after = catalog.get_org(org.name)
    assert after is not None and after.stored_bytes == new.size
    # Same value as the database (list_orgs is never cached).
    [listed] = [o for o in catalog.list_orgs() if o.id == org.id]
    assert after == listed
    catalog.delete_object(bucket.id, "k")
    gone = catalog.get_org(org.name)
    assert gone is not None and gone.stored_bytes == 0


def test_cache_update_keeps_the_expiry() -> None:
    now = [100.0]
    cache: TTLCache[int] = TTLCache(10.0, clock=lambda: now[0])
    cache.put("a", 1)
    now[0] = 105.0
    cache.update("a", lambda v: v + 1)
    assert cache.get("a") == 2
    now[0] = 110.5  # past the first put's expiry: the update did not extend it
    assert cache.get("a") is None
    cache.update("a", lambda v: v + 1)  # absent stays absent
    assert cache.get("a") is None
