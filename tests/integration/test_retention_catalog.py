"""Deleted-but-retained objects in the catalog, on SQLite and on MariaDB: young cold
objects kept to day 180, per-bucket retention windows, recovery, purging, stored bytes,
and migration 0008 going down and up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from catalog.api import Catalog
from catalog.records import Bucket, NewObject, NewSegment, Org
from catalog.retention import retention_days, validate_retention_days
from gateway.errors import BucketNotEmpty, InvalidArgument, ObjectNotFound, PreconditionFailed
from tests.integration.catalog_support import ENGINES, fresh_catalog_url, unique_name


@pytest.fixture(scope="module", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def catalog(
    engine_name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    cat = Catalog(fresh_catalog_url(engine_name, request, tmp_path_factory.mktemp("rc")), cache_ttl=0)
    cat.upgrade()
    yield cat
    cat.close()


@pytest.fixture
def org(catalog: Catalog) -> Org:
    return catalog.create_org(
        unique_name("org"), recipient="age1r", identity_wrapped=b"w", identity_key_id="k"
    )


@pytest.fixture
def bucket(catalog: Catalog, org: Org) -> Bucket:
    return catalog.create_bucket(org.id, unique_name("bucket"), region="r", backend="local")


def seg(key: str, *, size: int = 1100) -> NewSegment:
    return NewSegment(
        part_number=1, backend="local", blob_key=key, blob_size=size, storage_class="STANDARD",
        blob_offset=0, sealed_size=size, plain_size=size - 100, md5="m", sha256="s",
        age_header=b"age-encryption.org/v1\n", payload_offset=30, seek_table=b"\x01",
        header_mac=b"\x02" * 32, recipient="age1r",
    )


def put(catalog: Catalog, bucket: Bucket, key: str, blob: str, *, etag: str = "e") -> int:
    segment = seg(blob)
    new = NewObject(
        bucket_id=bucket.id, key=key, size=segment.plain_size, etag=etag, sha256="s",
        content_type="text/plain", user_metadata={"a": "b"}, storage_class="STANDARD",
        segments=(segment,), modified_at=datetime.now(UTC),
    )
    return catalog.commit_object(new).object.id


def stored(catalog: Catalog, org: Org) -> int:
    found = catalog.get_org_by_id(org.id)
    assert found is not None
    return found.stored_bytes


def test_hot_objects_without_a_window_are_deleted_as_before(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    blob = unique_name("blob")
    put(catalog, bucket, "hot", blob)
    assert stored(catalog, org) == 1000
    removed, garbage = catalog.delete_object(bucket.id, "hot")
    assert removed is not None and [g.blob_key for g in garbage] == [blob]
    assert catalog.list_retained(bucket.id) == []
    assert stored(catalog, org) == 0


def test_young_cold_object_is_hidden_and_kept_to_day_180(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    blob = unique_name("cold")
    object_id = put(catalog, bucket, "cold", blob)
    record = catalog.get_object(bucket.id, "cold")
    assert record is not None
    catalog.mark_blobs_archived([record.segments[0].blob.id], "DEEP_ARCHIVE")
    before = datetime.now(UTC)

    removed, garbage = catalog.delete_object(bucket.id, "cold")
    assert removed is not None and garbage == []
    assert catalog.get_object(bucket.id, "cold") is None
    assert catalog.list_objects(bucket.id).objects == []
    [kept] = catalog.list_retained(bucket.id)
    assert (kept.key, kept.object_id, kept.reason, kept.size) == ("cold", object_id, "delete", 1000)
    assert kept.storage_class == "DEEP_ARCHIVE"
    day_180 = record.segments[0].blob.created_at + timedelta(days=180)
    assert kept.retain_until == day_180 and kept.retain_until > before
    # The blob is still needed: not garbage, the sweep leaves it alone.
    assert catalog.blob_is_referenced("local", blob)
    assert catalog.forget_blob("local", blob) is False
    # Counted as storage until purged.
    assert stored(catalog, org) == 1000
    assert catalog.retained_totals(org.id) == (1, 1000)

    assert catalog.purge_retained(datetime.now(UTC)).purged == 0
    done = catalog.purge_retained(day_180 + timedelta(seconds=1))
    assert done.purged == 1 and done.bytes == 1000
    assert [g.blob_key for g in done.garbage] == [blob]
    assert catalog.list_retained(bucket.id) == []
    assert stored(catalog, org) == 0
    assert catalog.forget_blob("local", blob) is True


def test_retention_window_keeps_overwritten_and_deleted_versions(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    catalog.update_bucket_settings(bucket.id, {"retention_days": 7})
    first, second = unique_name("v1"), unique_name("v2")
    put(catalog, bucket, "doc", first, etag="one")
    start = datetime.now(UTC)
    result_garbage = catalog.commit_object(
        NewObject(
            bucket_id=bucket.id, key="doc", size=1000, etag="two", sha256="s",
            content_type="text/plain", user_metadata={}, storage_class="STANDARD",
            segments=(seg(second),), modified_at=datetime.now(UTC),
        )
    ).garbage
    assert result_garbage == []  # the old blob is kept with the retained version
    # Both versions count: the retained one is storage the org keeps.
    assert stored(catalog, org) == 2000
    [old] = catalog.list_retained(bucket.id, key="doc")
    assert (old.etag, old.reason) == ("one", "overwrite")
    assert start + timedelta(days=7) <= old.retain_until <= datetime.now(UTC) + timedelta(days=7)

    with pytest.raises(PreconditionFailed):
        catalog.recover_retained(bucket.id, "doc")
    catalog.delete_object(bucket.id, "doc")
    assert catalog.get_object(bucket.id, "doc") is None
    versions = catalog.list_retained(bucket.id, prefix="do")
    assert [(v.etag, v.reason) for v in versions] == [("two", "delete"), ("one", "overwrite")]
    assert stored(catalog, org) == 2000

    # The newest by default; a named one otherwise.
    back = catalog.recover_retained(bucket.id, "doc", versions[1].id)
    assert (back.etag, back.user_metadata, back.segments[0].blob.key) == ("one", {"a": "b"}, first)
    assert back.content_type == "text/plain"
    live = catalog.get_object(bucket.id, "doc")
    assert live is not None and live.etag == "one"
    assert [v.etag for v in catalog.list_retained(bucket.id)] == ["two"]
    assert stored(catalog, org) == 2000
    with pytest.raises(ObjectNotFound):
        catalog.recover_retained(bucket.id, "doc", versions[1].id)
    with pytest.raises(ObjectNotFound):
        catalog.recover_retained(bucket.id, "nothing")

    # A rename onto an existing key keeps the target too.
    put(catalog, bucket, "other", unique_name("v3"), etag="three")
    catalog.rename_object(bucket.id, "other", bucket.id, "doc")
    kept = {v.etag: v.reason for v in catalog.list_retained(bucket.id)}
    assert kept == {"two": "delete", "one": "move"}

    # Purged after the window: both versions' bytes leave the org, their blobs are garbage.
    done = catalog.purge_retained(datetime.now(UTC) + timedelta(days=8))
    assert done.purged == 2 and done.bytes == 2000
    assert {g.blob_key for g in done.garbage} == {first, second}
    assert stored(catalog, org) == 1000


def test_a_bucket_with_kept_versions_of_its_window_cannot_be_deleted(
    catalog: Catalog, org: Org
) -> None:
    """Deleting every object and then the bucket must not get round the retention window;
    versions kept only for Deep Archive's minimum do not hold a bucket without a window."""
    protected = catalog.create_bucket(org.id, unique_name("protected"), region="r", backend="local")
    catalog.update_bucket_settings(protected.id, {"retention_days": 7})
    put(catalog, protected, "doc", unique_name("blob"))
    catalog.delete_object(protected.id, "doc")
    with pytest.raises(BucketNotEmpty, match="retention window keeps 1 deleted versions"):
        catalog.delete_bucket(protected.id)
    catalog.recover_retained(protected.id, "doc")
    catalog.delete_object(protected.id, "doc")
    catalog.purge_retained(datetime.now(UTC) + timedelta(days=8))
    catalog.delete_bucket(protected.id)

    plain = catalog.create_bucket(org.id, unique_name("plain"), region="r", backend="local")
    put(catalog, plain, "cold", unique_name("cold"))
    record = catalog.get_object(plain.id, "cold")
    assert record is not None
    catalog.mark_blobs_archived([record.segments[0].blob.id], "DEEP_ARCHIVE")
    catalog.delete_object(plain.id, "cold")
    assert len(catalog.list_retained(plain.id)) == 1
    catalog.delete_bucket(plain.id)


def test_retention_setting_values() -> None:
    assert retention_days(None) == 0
    assert retention_days({"retention_days": 30}) == 30
    assert retention_days({"retention_days": "30"}) == 0
    assert retention_days({"retention_days": -1}) == 0
    assert validate_retention_days(0) == 0
    for bad in (-1, "7", 1.5, True, 40_000):
        with pytest.raises(InvalidArgument):
            validate_retention_days(bad)


def test_migration_0008_down_and_up(
    engine_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from alembic import command

    fresh = Catalog(fresh_catalog_url(engine_name, request, tmp_path), cache_ttl=0)
    try:
        config = fresh._alembic_config()

        def run(step: str, revision: str) -> None:
            with fresh._engine.begin() as conn:
                config.attributes["connection"] = conn
                getattr(command, step)(config, revision)

        tables = {"retained_objects", "retained_segments"}
        run("upgrade", "0008")
        assert tables <= set(sa.inspect(fresh._engine).get_table_names())
        run("downgrade", "0007")
        assert not tables & set(sa.inspect(fresh._engine).get_table_names())
        run("upgrade", "0008")
        assert tables <= set(sa.inspect(fresh._engine).get_table_names())
    finally:
        fresh.close()
