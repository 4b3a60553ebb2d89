"""The admin API's catalog queries (catalog/admin.py) on SQLite and MariaDB: restore jobs
and their items, blobs of many objects, storage by class, hourly usage rows, audit pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from catalog.admin import ITEM_COPIED, ITEM_FAILED, ITEM_READY, ITEM_REQUESTED, NewJobItem
from catalog.api import Catalog
from catalog.records import Bucket, Org, UsageEvent
from tests.integration.catalog_support import ENGINES, fresh_catalog_url, unique_name
from tests.integration.test_catalog import obj, seg


@pytest.fixture(scope="module", params=ENGINES)
def catalog(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    url = fresh_catalog_url(request.param, request, tmp_path_factory.mktemp("admin-catalog"))
    cat = Catalog(url, cache_ttl=0)
    cat.upgrade()
    yield cat
    cat.close()


@pytest.fixture
def org(catalog: Catalog) -> Org:
    return catalog.create_org(unique_name("org"), recipient="age1r", identity_wrapped=b"w",
                              identity_key_id="mk1")


@pytest.fixture
def bucket(catalog: Catalog, org: Org) -> Bucket:
    return catalog.create_bucket(org.id, unique_name("bucket"), region="eu", backend="local")


def test_restore_jobs_and_items(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    keys = [f"dir/ü-{i:04d}" for i in range(1203)]
    items = [NewJobItem(k, i, ITEM_READY if i % 2 else ITEM_REQUESTED) for i, k in enumerate(keys)]
    job = catalog.create_restore_job(
        org_id=org.id, bucket_id=bucket.id, bucket=bucket.name, kind="prefix", target="dir/",
        tier="Bulk", days=3, destination={"bucket": "x", "prefix": "p/"}, status="running",
        user_id=None, requested_by="alice", quote_usd=Decimal("0.012345"), items=items,
    )
    assert job.objects_total == 1203 and job.bytes_total == sum(range(1203))
    assert job.objects_ready == 601 and job.quote_usd == Decimal("0.012345")
    assert job.destination == {"bucket": "x", "prefix": "p/"} and job.target == "dir/"
    first = catalog.restore_job_items(job.id, limit=1000)
    rest = catalog.restore_job_items(job.id, after_seq=first[-1].seq)
    assert [i.key for i in first + rest] == keys
    catalog.set_restore_item_states(job.id, {0: (ITEM_FAILED, "gone " * 400), 1: (ITEM_COPIED, None)})
    changed = catalog.restore_job_items(job.id, limit=2)
    assert changed[0].state == ITEM_FAILED and len(changed[0].error or "") == 1024
    assert changed[1].state == ITEM_COPIED and changed[1].error is None
    catalog.update_restore_job(job.id, status="copying", objects_copied=1, error="x")
    again = catalog.get_restore_job(job.id)
    assert again is not None and again.status == "copying" and again.objects_copied == 1
    assert again.updated_at >= job.updated_at
    other = catalog.create_restore_job(
        org_id=org.id, bucket_id=bucket.id, bucket=bucket.name, kind="object", target="k",
        tier="Standard", days=1, destination=None, status="ready", user_id=7,
        requested_by="bob", quote_usd=None, items=[NewJobItem("k", 1, ITEM_READY)],
    )
    listed = catalog.list_restore_jobs(org_ids=[org.id])
    assert [j.id for j in listed] == [other.id, job.id]
    assert [j.id for j in catalog.list_restore_jobs(user_id=7)] == [other.id]
    assert [j.id for j in catalog.list_restore_jobs(org_ids=[org.id], before_id=other.id)] == [job.id]
    assert job.id in [j.id for j in catalog.jobs_with_status(["copying"])]
    assert catalog.get_restore_job(10**9) is None


def test_blobs_storage_usage_and_audit(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    shared = seg(unique_name("blob"), size=50)
    a = catalog.commit_object(obj(bucket, "a", size=50, segments=(shared,))).object
    b = catalog.commit_object(obj(bucket, "b", size=70, segments=(
        seg(unique_name("blob"), part=1, size=30), seg(unique_name("blob"), part=2, size=40)))).object
    found = catalog.object_blobs([a.id, b.id, a.id])
    assert [x.size for x in found[a.id]] == [250]
    assert len(found[b.id]) == 2 and found[b.id][0].size == 230
    assert catalog.object_blobs([]) == {}
    assert catalog.storage_by_class(org.id) == {"STANDARD": (2, 120)}

    now = datetime.now(UTC)
    for user in (3, 3, 4):
        catalog.record_usage(UsageEvent(org_id=org.id, action="PUT", user_id=user,
                                        bucket_id=bucket.id, bytes=10))
    catalog.add_read_counts({(org.id, bucket.id, "GET"): (5, 500)})
    rows = catalog.usage_rows(org.id, since=now - timedelta(hours=2), until=now + timedelta(hours=2))
    by = {(r.user_id, r.action): (r.count, r.bytes) for r in rows}
    assert by[(3, "PUT")] == (2, 20) and by[(4, "PUT")] == (1, 10) and by[(None, "GET")] == (5, 500)
    mine = catalog.usage_rows(org.id, since=now - timedelta(hours=2), until=now + timedelta(hours=2),
                              user_id=3)
    assert {(r.action, r.count) for r in mine} == {("PUT", 2)}
    of_bucket = catalog.usage_rows(org.id, since=now - timedelta(hours=2),
                                   until=now + timedelta(hours=2), bucket_id=bucket.id)
    assert {r.bucket_id for r in of_bucket} == {bucket.id}
    assert catalog.usage_rows(org.id, since=now + timedelta(hours=2), until=now + timedelta(hours=3)) == []

    for n in range(5):
        catalog.audit("alice", f"test.{n}", org_id=org.id, n=n)
    page = catalog.audit_page(org_id=org.id, limit=2)
    assert [e.action for e in page] == ["test.4", "test.3"]
    older = catalog.audit_page(org_id=org.id, before_id=page[-1].id, limit=10)
    assert [e.action for e in older][:3] == ["test.2", "test.1", "test.0"]
    assert older[0].details == {"n": 2}
