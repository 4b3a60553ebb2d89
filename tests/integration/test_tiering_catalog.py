"""The tiering queries of the catalog on SQLite and on MariaDB: the archive commit (one
transaction per container), containers and their live share, restore charges against a
budget, webhook notices, policies, and migration 0005 going down and up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa

from catalog.api import Catalog
from catalog.records import Bucket, NewObject, NewSegment, Org
from catalog.tiering import ArchiveMove, NewContainer
from gateway.errors import RestoreBudgetExceeded
from tests.integration.catalog_support import ENGINES, fresh_catalog_url, unique_name
from tiering.transitions import HOT_CLASSES


@pytest.fixture(scope="module", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def catalog(
    engine_name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    cat = Catalog(fresh_catalog_url(engine_name, request, tmp_path_factory.mktemp("tc")), cache_ttl=0)
    cat.upgrade()
    yield cat
    cat.close()


@pytest.fixture
def org(catalog: Catalog) -> Org:
    return catalog.create_org(unique_name("org"), recipient="age1r", identity_wrapped=b"w",
                              identity_key_id="k")


@pytest.fixture
def bucket(catalog: Catalog, org: Org) -> Bucket:
    return catalog.create_bucket(org.id, unique_name("bucket"), region="r", backend="local")


def seg(key: str, *, backend: str = "staging", part: int = 1, sealed: int = 300) -> NewSegment:
    return NewSegment(
        part_number=part, backend=backend, blob_key=key, blob_size=sealed,
        storage_class="STANDARD", blob_offset=0, sealed_size=sealed, plain_size=sealed - 100,
        md5="m", sha256="s", age_header=b"age-encryption.org/v1\n", payload_offset=30,
        seek_table=b"\x01", header_mac=b"\x02" * 32, recipient="age1r",
    )


def put(catalog: Catalog, bucket: Bucket, key: str, *segments: NewSegment,
        storage_class: str = "STANDARD") -> int:
    new = NewObject(
        bucket_id=bucket.id, key=key, size=sum(s.plain_size for s in segments), etag="e",
        sha256="s", content_type="x", user_metadata={}, storage_class=storage_class,
        segments=segments, modified_at=datetime.now(UTC),
    )
    return catalog.commit_object(new).object.id


def blob_id(catalog: Catalog, bucket: Bucket, key: str, part: int = 1) -> int:
    record = catalog.get_object(bucket.id, key)
    assert record is not None
    return next(s.blob.id for s in record.segments if s.part_number == part)


def container(members: int, size: int) -> NewContainer:
    return NewContainer(kind="pack", member_count=members, members_bytes=size,
                        index_offset=size, index_length=100, index_header_mac=b"\x07" * 32)


def test_commit_archive_repoints_members_in_one_transaction(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    keys = [unique_name("k") for _ in range(3)]
    for key in keys:
        put(catalog, bucket, key, seg(unique_name("staged")))
    copy = unique_name("copy")  # a copy sharing the first object's staged blob
    first = catalog.get_object(bucket.id, keys[0])
    assert first is not None
    shared = first.segments[0]
    put(catalog, bucket, copy, NewSegment(**{**seg("x").__dict__, "blob_key": shared.blob.key,
                                             "blob_id": shared.blob.id}))
    # A multipart object: a part in the backend and a staged last part.
    multi = unique_name("multi")
    put(catalog, bucket, multi, seg(unique_name("part"), backend="local"),
        seg(unique_name("last"), part=2))
    hot, _ = catalog.hot_objects(hot_classes=HOT_CLASSES, limit=1000)
    assert {keys[0], copy, multi} <= {r.key for r in hot}
    young, _ = catalog.hot_objects(
        hot_classes=HOT_CLASSES, limit=1000, created_before=datetime.now(UTC) - timedelta(hours=1)
    )
    assert not {keys[0], copy, multi} & {r.key for r in young}

    ids = [blob_id(catalog, bucket, k) for k in keys]
    staged_keys = set()
    for key in keys:
        record = catalog.get_object(bucket.id, key)
        assert record is not None
        staged_keys.add(record.segments[0].blob.key)
    intent = catalog.add_intent("local", "containers/new-1")
    result = catalog.commit_archive(
        org_id=org.id, backend="local", key="containers/new-1", size=2000,
        storage_class="DEEP_ARCHIVE",
        moves=[ArchiveMove(b, 0, 300 * i) for i, b in enumerate(ids)],
        intent_id=intent.id, container=container(3, 900),
    )
    assert result.moved_segments == 4 and result.archived_objects == 4
    assert {(i.backend, i.blob_key) for i in result.garbage} == {
        ("staging", k) for k in staged_keys
    }
    for i, key in enumerate(keys):
        record = catalog.get_object(bucket.id, key)
        assert record is not None and record.storage_class == "DEEP_ARCHIVE"
        assert (record.segments[0].blob.key, record.segments[0].blob_offset) == (
            "containers/new-1", 300 * i
        )
    copied = catalog.get_object(bucket.id, copy)
    assert copied is not None and copied.segments[0].blob.id == result.blob.id
    pending = catalog.due_intents(datetime.now(UTC) + timedelta(seconds=1), limit=10_000)
    assert intent.id not in {i.id for i in pending}  # the container is referenced now
    box = catalog.get_container(result.blob.id)
    assert box is not None and box.member_count == 3 and box.live_bytes == 900
    assert box.live_share == 1.0

    # Joining the multipart object: it turns cold only when every part has moved.
    part = blob_id(catalog, bucket, multi, 1)
    last = blob_id(catalog, bucket, multi, 2)
    half = catalog.commit_archive(
        org_id=org.id, backend="local", key="containers/new-2", size=400,
        storage_class="DEEP_ARCHIVE", moves=[ArchiveMove(part, 0, 0)], intent_id=None,
    )
    assert half.archived_objects == 0
    record = catalog.get_object(bucket.id, multi)
    assert record is not None and record.storage_class == "STANDARD"
    done = catalog.commit_archive(
        org_id=org.id, backend="local", key="containers/new-3", size=400,
        storage_class="DEEP_ARCHIVE", moves=[ArchiveMove(last, 0, 0)], intent_id=None,
    )
    assert done.archived_objects == 1

    # Moving an archived blob again (another engine did the job) changes nothing: the new
    # blob is garbage at once.
    again = catalog.commit_archive(
        org_id=org.id, backend="local", key="containers/dup", size=900,
        storage_class="DEEP_ARCHIVE", moves=[ArchiveMove(ids[1], 0, 0)], intent_id=None,
    )
    assert again.moved_segments == 0
    assert [i.blob_key for i in again.garbage] == ["containers/dup"]


def test_vanished_members_are_skipped(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    keep, gone = unique_name("keep"), unique_name("gone")
    put(catalog, bucket, keep, seg(unique_name("s")))
    put(catalog, bucket, gone, seg(unique_name("s")))
    ids = [blob_id(catalog, bucket, keep), blob_id(catalog, bucket, gone)]
    _, garbage = catalog.delete_object(bucket.id, gone)
    assert len(garbage) == 1  # declared garbage, not yet forgotten
    result = catalog.commit_archive(
        org_id=org.id, backend="local", key=unique_name("containers/c"), size=700,
        storage_class="DEEP_ARCHIVE",
        moves=[ArchiveMove(ids[0], 0, 0), ArchiveMove(ids[1], 0, 300)],
        intent_id=None, container=container(2, 600),
    )
    assert result.moved_segments == 1
    box = catalog.get_container(result.blob.id)
    assert box is not None and box.live_bytes == 300 and box.live_share == 0.5


def test_a_rewrite_never_moves_members_out_of_a_clients_restored_copy(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    key = unique_name("k")
    put(catalog, bucket, key, seg(unique_name("s")))
    packed = catalog.commit_archive(
        org_id=org.id, backend="local", key=unique_name("containers/old"), size=400,
        storage_class="DEEP_ARCHIVE", moves=[ArchiveMove(blob_id(catalog, bucket, key), 0, 0)],
        intent_id=None, container=container(1, 300),
    )
    old = packed.blob.id
    now = datetime.now(UTC)
    catalog.start_restore(old, org_id=org.id, tier="Bulk", days=5, requested_by="u",
                          done=True, expires_at=now + timedelta(days=5))
    blocked = catalog.commit_archive(
        org_id=org.id, backend="local", key=unique_name("containers/new"), size=400,
        storage_class="DEEP_ARCHIVE", moves=[ArchiveMove(old, 0, 0)], intent_id=None,
        from_cold=True, now=now,
    )
    assert blocked.moved_segments == 0
    later = now + timedelta(days=6)
    moved = catalog.commit_archive(
        org_id=org.id, backend="local", key=unique_name("containers/new"), size=400,
        storage_class="DEEP_ARCHIVE", moves=[ArchiveMove(old, 0, 0)], intent_id=None,
        from_cold=True, now=later,
    )
    assert moved.moved_segments == 1
    assert [i.blob_key for i in moved.garbage] == [packed.blob.key]
    found = catalog.containers_created_before(later + timedelta(seconds=1))
    assert old in {c.blob.id for c in found}


def test_restore_charges_respect_the_budget_under_concurrency(catalog: Catalog, org: Org) -> None:
    month = datetime.now(UTC) - timedelta(days=1)
    results: list[object] = []

    def charge() -> None:
        try:
            results.append(catalog.charge_restore(
                org.id, Decimal("0.40"), budget=Decimal("1.00"), since=month, size=1,
                tier="Bulk", requested_by="u", detail="b/k",
            ))
        except RestoreBudgetExceeded as error:
            results.append(error)

    threads = [threading.Thread(target=charge) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    charged = [r for r in results if isinstance(r, int)]
    assert len(charged) == 2 and catalog.restore_spend(org.id, month) == Decimal("0.80")
    refused = [r for r in results if isinstance(r, RestoreBudgetExceeded)]
    assert len(refused) == 2 and "0.20 USD left" in str(refused[0])
    catalog.refund_restore(charged[0])
    assert catalog.restore_spend(org.id, month) == Decimal("0.40")
    # Charges of an earlier month do not count.
    assert catalog.restore_spend(org.id, datetime.now(UTC) + timedelta(seconds=1)) == 0


def test_webhook_notices(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    key = unique_name("k")
    put(catalog, bucket, key, seg(unique_name("s"), backend="local"))
    blob = blob_id(catalog, bucket, key)
    since = datetime.now(UTC) - timedelta(minutes=1)
    catalog.start_restore(blob, org_id=org.id, tier="Standard", days=1, requested_by="u",
                          done=True, expires_at=datetime.now(UTC) + timedelta(days=1))
    rows = [r for r in catalog.unnotified_restores(since) if r.blob.id == blob]
    assert len(rows) == 1 and rows[0].completed_at is not None
    assert catalog.objects_in_blob(blob) == [(bucket.id, key)]
    catalog.mark_restore_notified(blob, rows[0].completed_at, datetime.now(UTC))
    assert blob not in {r.blob.id for r in catalog.unnotified_restores(since)}
    # A later restore of the same blob is a new completion, announced again.
    catalog.start_restore(blob, org_id=org.id, tier="Bulk", days=2, requested_by="u",
                          done=True, expires_at=datetime.now(UTC) + timedelta(days=2),
                          now=datetime.now(UTC) + timedelta(seconds=1))
    assert blob in {r.blob.id for r in catalog.unnotified_restores(since)}


def test_policy_rows(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    catalog.set_tiering_policy(org.id, None, {"preset": "kopia"}, updated_by="a")
    catalog.set_tiering_policy(org.id, bucket.id, {"min_size": 3}, updated_by="b")
    catalog.set_tiering_policy(org.id, bucket.id, {"min_size": 4}, updated_by="b")
    assert catalog.tiering_rules(org.id, bucket.id) == ({"preset": "kopia"}, {"min_size": 4})
    assert [(p.bucket_id, p.rules) for p in catalog.tiering_policies(org.id)] == [
        (None, {"preset": "kopia"}), (bucket.id, {"min_size": 4})
    ]
    catalog.set_tiering_policy(org.id, bucket.id, None, updated_by="b")
    assert catalog.tiering_rules(org.id, bucket.id) == ({"preset": "kopia"}, {})


def test_concurrent_policy_updates_lose_nothing(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    """Eight writers each add their keep-hot rule at once (as eight pins do): a plain
    read-then-write kept only some of them."""
    catalog.set_tiering_policy(org.id, bucket.id, {"min_size": 3}, updated_by="a")
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def add(pattern: str) -> None:
        def change(current: dict[str, object]) -> dict[str, object]:
            keep = list(cast(list[str], current.get("keep_hot", [])))
            return {**current, "keep_hot": [*keep, pattern]}

        try:
            start.wait(10)
            catalog.update_tiering_policy(org.id, bucket.id, change, updated_by="pin")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f"dir{i}/**",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    _, rules = catalog.tiering_rules(org.id, bucket.id)
    assert rules["min_size"] == 3
    assert sorted(rules["keep_hot"]) == sorted(f"dir{i}/**" for i in range(8))
    # A change that raises leaves the rules as they were.
    def refuse(_current: dict[str, object]) -> None:
        raise ValueError("not pinned")

    with pytest.raises(ValueError, match="not pinned"):
        catalog.update_tiering_policy(org.id, bucket.id, refuse, updated_by="x")
    assert catalog.tiering_rules(org.id, bucket.id)[1] == rules


def test_migration_0005_goes_down_and_up(
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

        tables = {"restores", "staged_blobs", "tiering_policies", "containers", "restore_charges"}
        run("upgrade", "0005")
        assert tables <= set(sa.inspect(fresh._engine).get_table_names())
        run("downgrade", "0004")
        assert not tables & set(sa.inspect(fresh._engine).get_table_names())
        assert "ix_blobs_class" not in {
            i["name"] for i in sa.inspect(fresh._engine).get_indexes("blobs")
        }
        run("upgrade", "0005")
        assert tables <= set(sa.inspect(fresh._engine).get_table_names())
    finally:
        fresh.close()
