"""Catalog conformance suite: every test runs on SQLite and on a MariaDB server started for
the session (tests/fixtures/mariadb.py).

One database per engine and module keeps it fast; tests make their own orgs and buckets
with unique names, so they never see each other's rows.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.api import Catalog
from catalog.counters import ReadCounters
from catalog.records import Bucket, NewObject, NewSegment, Org, UsageEvent
from catalog.schema import metadata
from gateway.errors import (
    AlreadyExists,
    BucketNotEmpty,
    BucketNotFound,
    CatalogError,
    InvalidArgument,
    InvalidName,
    ObjectNotFound,
    PreconditionFailed,
    QuotaExceeded,
)
from tests.integration.catalog_support import ENGINES, fresh_catalog_url, unique_name


@pytest.fixture(scope="module", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def catalog(
    engine_name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    url = fresh_catalog_url(engine_name, request, tmp_path_factory.mktemp("catalog"))
    cat = Catalog(url, cache_ttl=0)
    cat.upgrade()
    yield cat
    cat.close()


@pytest.fixture
def org(catalog: Catalog) -> Org:
    return catalog.create_org(
        unique_name("org"), recipient="age1recipient", identity_wrapped=b"\x00wrapped\xff", identity_key_id="mk1"
    )


@pytest.fixture
def bucket(catalog: Catalog, org: Org) -> Bucket:
    return catalog.create_bucket(org.id, unique_name("bucket"), region="eu-west-1", backend="local")


def seg(blob_key: str, *, part: int = 1, size: int = 100, blob_id: int | None = None) -> NewSegment:
    return NewSegment(
        part_number=part,
        backend="local",
        blob_key=blob_key,
        blob_size=size + 200,
        storage_class="STANDARD",
        blob_offset=0,
        sealed_size=size + 200,
        plain_size=size,
        md5=f"md5-{part}",
        sha256=f"sha-{part}",
        age_header=b"age-encryption.org/v1\n-> X25519 abc\n--- mac\n",
        payload_offset=64,
        seek_table=b"\x01\x02\x03",
        header_mac=b"\x99" * 32,
        recipient="age1recipient",
        blob_id=blob_id,
    )


def obj(
    bucket: Bucket,
    key: str,
    *,
    size: int = 100,
    etag: str = "etag-1",
    segments: tuple[NewSegment, ...] | None = None,
) -> NewObject:
    return NewObject(
        bucket_id=bucket.id,
        key=key,
        size=size,
        etag=etag,
        sha256="sha",
        content_type="application/octet-stream",
        user_metadata={"color": "blue", "ünï": "cödé"},
        storage_class="STANDARD",
        segments=segments if segments is not None else (seg(unique_name("blob"), size=size),),
        modified_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        headers={"Cache-Control": "no-cache"},
    )


# -- lifecycle ----------------------------------------------------------------------------


def test_upgrade_is_idempotent_and_check_passes(catalog: Catalog) -> None:
    catalog.upgrade()
    catalog.check()
    assert catalog.current_revision() == catalog.head_revision()


def test_migrated_schema_matches_the_metadata(catalog: Catalog) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with catalog._engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, metadata)
    assert diffs == []


def test_check_reports_an_empty_database(
    engine_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    empty = Catalog(fresh_catalog_url(engine_name, request, tmp_path), cache_ttl=0)
    try:
        with pytest.raises(CatalogError, match="coolstorage db upgrade"):
            empty.check()
        with pytest.raises(CatalogError, match="coolstorage db upgrade"):
            empty.get_org("anything")
    finally:
        empty.close()


# -- orgs, users, keys --------------------------------------------------------------------


def test_orgs(catalog: Catalog) -> None:
    name = unique_name("acme")
    org = catalog.create_org(name, recipient="age1x", identity_wrapped=b"w1", identity_key_id="k1")
    assert org.name == name and org.stored_bytes == 0 and org.quota_bytes is None
    assert org.created_at.tzinfo is not None
    with pytest.raises(AlreadyExists):
        catalog.create_org(name, recipient="age1y", identity_wrapped=b"w", identity_key_id="k")
    assert catalog.get_org(name) == org
    assert catalog.get_org_by_id(org.id) == org
    assert catalog.get_org(name.upper()) is None  # names never fold
    assert org in catalog.list_orgs()
    catalog.set_org_identity(org.id, identity_wrapped=b"w2", key_id="k2")
    catalog.set_org_quota(org.id, 12345)
    again = catalog.get_org(name)
    assert again is not None
    assert (again.identity_wrapped, again.identity_key_id, again.recipient) == (b"w2", "k2", "age1x")
    assert again.quota_bytes == 12345
    updated = catalog.update_org_settings(org.id, {"restore_on_read": True, "x": 1})
    assert updated.settings == {"restore_on_read": True, "x": 1}
    updated = catalog.update_org_settings(org.id, {"x": None})
    assert updated.settings == {"restore_on_read": True}


def test_users_and_memberships(catalog: Catalog, org: Org) -> None:
    name = unique_name("alice")
    user = catalog.create_user(name, password_hash="$argon2id$...", is_operator=False)
    with pytest.raises(AlreadyExists):
        catalog.create_user(name, password_hash=None)
    assert catalog.get_user(name) == user
    assert catalog.get_user_by_id(user.id) == user
    assert user in catalog.list_users()
    m = catalog.add_membership(org.id, user.id, "member")
    assert catalog.add_membership(org.id, user.id, "member") == m  # idempotent
    catalog.add_membership(org.id, user.id, "admin")
    assert [(x.org_id, x.role) for x in catalog.memberships_of(user.id)] == [(org.id, "admin")]
    assert [x.user_id for x in catalog.members_of(org.id)] == [user.id]
    changed = catalog.update_user(user.id, disabled=True, password_hash=None)
    assert changed.disabled and changed.password_hash is None
    assert catalog.update_user(user.id, is_operator=True).password_hash is None
    catalog.remove_membership(org.id, user.id)
    assert catalog.memberships_of(user.id) == []


def test_access_keys(catalog: Catalog, org: Org) -> None:
    user = catalog.create_user(unique_name("bob"), password_hash=None)
    key_id = "AK" + uuid.uuid4().hex[:16].upper()
    key = catalog.create_access_key(
        key_id, user_id=user.id, org_id=org.id, secret_wrapped=b"\x01sealed", secret_key_id="mk1"
    )
    assert key.revoked_at is None and key.secret_wrapped == b"\x01sealed"
    with pytest.raises(AlreadyExists):
        catalog.create_access_key(
            key_id, user_id=user.id, org_id=org.id, secret_wrapped=b"x", secret_key_id="mk1"
        )
    assert catalog.get_access_key(key_id) == key
    assert catalog.list_access_keys(user.id) == [key]
    catalog.revoke_access_key(key_id)
    revoked = catalog.get_access_key(key_id)
    assert revoked is not None and revoked.revoked_at is not None
    catalog.revoke_access_key(key_id)
    again = catalog.get_access_key(key_id)
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert catalog.get_access_key("AKNONE") is None


# -- buckets ------------------------------------------------------------------------------


def test_buckets(catalog: Catalog, org: Org) -> None:
    other = catalog.create_org(unique_name("other"), recipient="r", identity_wrapped=b"w", identity_key_id="k")
    b1 = catalog.create_bucket(org.id, "photos", region="eu-west-1", backend="local")
    b2 = catalog.create_bucket(org.id, "archive", region="us-east-1", backend="s3", vault_recipient="age1v")
    # Bucket names are unique per org, not globally.
    b3 = catalog.create_bucket(other.id, "photos", region="eu-west-1", backend="local")
    assert b3.id != b1.id
    with pytest.raises(AlreadyExists):
        catalog.create_bucket(org.id, "photos", region="x", backend="local")
    assert [b.name for b in catalog.list_buckets(org.id)] == ["archive", "photos"]
    assert catalog.get_bucket(org.id, "photos") == b1
    assert catalog.get_bucket(org.id, "PHOTOS") is None
    assert catalog.get_bucket_by_id(b2.id) == b2 and b2.vault_recipient == "age1v"
    catalog.commit_object(obj(b1, "a"))
    with pytest.raises(BucketNotEmpty):
        catalog.delete_bucket(b1.id)
    catalog.delete_object(b1.id, "a")
    catalog.delete_bucket(b1.id)
    assert catalog.get_bucket(org.id, "photos") is None
    assert catalog.get_bucket_by_id(b1.id) is None
    with pytest.raises(BucketNotFound):
        catalog.commit_object(obj(b1, "late-write"))
    with pytest.raises(BucketNotFound):
        catalog.delete_bucket(b1.id)
    # A new bucket never gets a deleted bucket's id.
    b4 = catalog.create_bucket(org.id, "photos", region="eu-west-1", backend="local")
    assert b4.id != b1.id
    s = catalog.update_bucket_settings(b4.id, {"keep_hot": ["config"]})
    assert s.settings == {"keep_hot": ["config"]}


# -- keys ---------------------------------------------------------------------------------

AWKWARD_KEYS = [
    "plain",
    "with space",
    "trailing space ",
    "trailing space  ",
    "Trailing Space ",
    "percent%20encoded%2F",
    "plus+sign",
    "ctl-\x01\x02\x03\x1f\x7f",
    "tab\tnewline\ncr\r",
    "4-byte-\U0001f600-\U00010348",
    "é-composed",
    "e\u0301-decomposed",
    "quotes'\"<>&",
    "back\\slash",
    "dir/",
    "dir//double",
    "/leading",
    "a" * 1020 + "\U0001f600",  # exactly 1,024 bytes
    "\u00ff\u0100\uffff",
    "~!@#$^*()[]{}|;:,.?=`",
]


def test_keys_with_every_allowed_character_round_trip_in_byte_order(
    catalog: Catalog, bucket: Bucket
) -> None:
    assert len(AWKWARD_KEYS[17].encode()) == 1024
    for key in AWKWARD_KEYS:
        catalog.commit_object(obj(bucket, key))
    for key in AWKWARD_KEYS:
        got = catalog.get_object(bucket.id, key)
        assert got is not None and got.key == key
    listed: list[str] = []
    marker = None
    while True:
        page = catalog.list_objects(bucket.id, start_after=marker, max_keys=7)
        listed += [o.key for o in page.objects]
        if not page.is_truncated:
            break
        marker = page.next_marker
    assert listed == sorted(AWKWARD_KEYS, key=lambda k: k.encode())
    assert catalog.count_objects(bucket.id) == len(AWKWARD_KEYS)
    # Prefixes are bytewise too: no folding of case or trailing spaces.
    page = catalog.list_objects(bucket.id, prefix="trailing space ")
    assert [o.key for o in page.objects] == ["trailing space ", "trailing space  "]
    page = catalog.list_objects(bucket.id, prefix="ctl-\x01")
    assert [o.key for o in page.objects] == ["ctl-\x01\x02\x03\x1f\x7f"]
    page = catalog.list_objects(bucket.id, prefix="4-byte-\U0001f600")
    assert len(page.objects) == 1


def test_key_limits(catalog: Catalog, bucket: Bucket) -> None:
    with pytest.raises(InvalidName):
        catalog.commit_object(obj(bucket, "b" * 1025))
    with pytest.raises(InvalidName):
        catalog.commit_object(obj(bucket, "a" * 1021 + "\U0001f600"))
    with pytest.raises(InvalidName):
        catalog.commit_object(obj(bucket, ""))
    with pytest.raises(InvalidName):
        catalog.commit_object(obj(bucket, "lone-\ud800-surrogate"))


# -- listing ------------------------------------------------------------------------------


def model_listing(
    keys: list[str], prefix: str, delimiter: str | None, start_after: str | None
) -> list[tuple[str, str]]:
    """What S3 lists: keys after the marker under the prefix, rolled up into common
    prefixes; a marker that is itself a common prefix skips that prefix."""
    p = prefix.encode()
    d = delimiter.encode() if delimiter else None
    m = start_after.encode() if start_after is not None else None
    entries: list[tuple[str, str]] = []
    seen: set[bytes] = set()
    for k in sorted(key.encode() for key in keys):
        if not k.startswith(p) or (m is not None and k <= m):
            continue
        if d is not None:
            at = k.find(d, len(p))
            if at >= 0:
                cp = k[: at + len(d)]
                if cp != m and cp not in seen:
                    seen.add(cp)
                    entries.append(("prefix", cp.decode()))
                continue
        entries.append(("key", k.decode()))
    return entries


def list_all(
    catalog: Catalog, bucket_id: int, prefix: str, delimiter: str | None, page: int
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    marker: str | None = None
    for _ in range(10_000):
        result = catalog.list_objects(
            bucket_id, prefix=prefix, delimiter=delimiter, start_after=marker, max_keys=page
        )
        entries = [("key", o.key) for o in result.objects] + [
            ("prefix", cp) for cp in result.common_prefixes
        ]
        entries.sort(key=lambda e: e[1].encode())
        assert len(entries) <= page
        out += entries
        if not result.is_truncated:
            assert result.next_marker is None
            return out
        assert len(entries) == page
        assert result.next_marker == entries[-1][1]
        marker = result.next_marker
    raise AssertionError("listing did not end")


ALPHABET = ["a", "b", "/", "-", " ", "\x01", "é", "\U0001f600", "%", "+", "ab/"]
key_strategy = st.lists(st.sampled_from(ALPHABET), min_size=1, max_size=6).map("".join)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    keys=st.sets(key_strategy, max_size=30),
    prefix=st.sampled_from(["", "a", "a/", "/", "é", "ab", "\U0001f600"]),
    delimiter=st.sampled_from([None, "/", "-", "b/", "\U0001f600"]),
    page=st.integers(min_value=1, max_value=6),
    marker=st.one_of(st.none(), key_strategy),
)
def test_listing_matches_the_model(
    catalog: Catalog,
    org: Org,
    keys: set[str],
    prefix: str,
    delimiter: str | None,
    page: int,
    marker: str | None,
) -> None:
    bucket = catalog.create_bucket(org.id, unique_name("h"), region="r", backend="local")
    catalog.import_objects(obj(bucket, k, segments=()) for k in keys)
    assert list_all(catalog, bucket.id, prefix, delimiter, page) == model_listing(
        list(keys), prefix, delimiter, None
    )
    one = catalog.list_objects(
        bucket.id, prefix=prefix, delimiter=delimiter, start_after=marker, max_keys=page
    )
    got = sorted(
        [("key", o.key) for o in one.objects] + [("prefix", c) for c in one.common_prefixes],
        key=lambda e: e[1].encode(),
    )
    expected = model_listing(list(keys), prefix, delimiter, marker)
    assert got == expected[:page]
    assert one.is_truncated == (len(expected) > page)


def test_listing_details(catalog: Catalog, bucket: Bucket) -> None:
    keys = ["a/1", "a/2", "a/b/1", "b", "c/1", "c/2", "d"]
    catalog.import_objects(obj(bucket, k, segments=()) for k in keys)
    page = catalog.list_objects(bucket.id, delimiter="/", max_keys=2)
    assert (page.common_prefixes, [o.key for o in page.objects]) == (["a/"], ["b"])
    assert page.is_truncated and page.next_marker == "b"
    page = catalog.list_objects(bucket.id, delimiter="/", start_after="a/")
    assert (page.common_prefixes, [o.key for o in page.objects]) == (["c/"], ["b", "d"])
    assert not page.is_truncated and page.next_marker is None
    # A marker below the prefix starts at the prefix; one above it gives nothing.
    page = catalog.list_objects(bucket.id, prefix="c/", start_after="a")
    assert [o.key for o in page.objects] == ["c/1", "c/2"]
    assert catalog.list_objects(bucket.id, prefix="c/", start_after="c0").objects == []
    empty = catalog.list_objects(bucket.id, max_keys=0)
    assert empty.objects == [] and empty.common_prefixes == [] and not empty.is_truncated
    listed = catalog.list_objects(bucket.id, prefix="a/", delimiter="/").objects
    assert [o.key for o in listed] == ["a/1", "a/2"]
    assert listed[0].user_metadata == {"color": "blue", "ünï": "cödé"}
    assert listed[0].segments == ()
    assert [o.key for o in catalog.iter_objects(bucket.id, page_size=2)] == keys
    with pytest.raises(InvalidArgument):
        catalog.list_objects(bucket.id, max_keys=-1)


def test_listing_skips_common_prefixes_with_one_seek_each(
    catalog: Catalog, bucket: Bucket
) -> None:
    """The number of rows fetched is bounded by the page, not by the keys skipped."""
    catalog.import_objects(
        obj(bucket, f"dir{d}/file{i:04d}", segments=()) for d in range(5) for i in range(400)
    )
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "FROM objects" in statement:
            statements.append(statement)

    sa.event.listen(catalog._engine, "after_cursor_execute", count)
    try:
        page = catalog.list_objects(bucket.id, delimiter="/", max_keys=1000)
    finally:
        sa.event.remove(catalog._engine, "after_cursor_execute", count)
    assert page.common_prefixes == [f"dir{d}/" for d in range(5)]
    assert not page.is_truncated
    # 5 prefixes of 400 keys: a scan would need 2,000 rows in one or more queries; the
    # adaptive walk needs a first batch, a few shrinking ones and one seek per prefix.
    assert len(statements) <= 12


# -- commits ------------------------------------------------------------------------------


def test_commit_get_and_segments(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    big_table = bytes(range(256)) * 400  # 100 KiB: more than a MySQL BLOB holds
    parts = (
        replace(seg("mp-3", part=3), seek_table=big_table),
        seg("mp-1", part=1),
        seg("mp-2", part=2),
    )
    intent = catalog.add_intent("local", "mp-1")
    new = obj(bucket, "big/object", size=300, etag="abc-3", segments=parts)
    result = catalog.commit_object(new, intent_ids=[intent.id])
    assert result.replaced is None and result.garbage == []
    got = catalog.get_object(bucket.id, "big/object")
    assert got is not None and got == result.object
    assert [s.part_number for s in got.segments] == [1, 2, 3]
    assert got.segments[2].seek_table == big_table
    assert got.segments[0].blob.key == "mp-1" and got.segments[0].blob.org_id == org.id
    assert got.segments[0].header_mac == b"\x99" * 32
    assert got.modified_at == datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert got.headers == {"Cache-Control": "no-cache"}
    assert got.etag == "abc-3" and got.size == 300
    assert intent.id not in [i.id for i in catalog.due_intents(_future(), limit=100_000)]
    assert catalog.blob_is_referenced("local", "mp-2")
    assert not catalog.blob_is_referenced("local", "never-written")
    assert catalog.get_object(bucket.id, "big/objec") is None
    stored = catalog.get_org_by_id(org.id)
    assert stored is not None and stored.stored_bytes == 300


def _future() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=1)


def test_preconditions(catalog: Catalog, bucket: Bucket) -> None:
    catalog.commit_object(obj(bucket, "k", etag="v1"), if_none_match=True)
    with pytest.raises(PreconditionFailed):
        catalog.commit_object(obj(bucket, "k", etag="v2"), if_none_match=True)
    with pytest.raises(PreconditionFailed):
        catalog.commit_object(obj(bucket, "k", etag="v2"), if_match="nope")
    with pytest.raises(PreconditionFailed):
        catalog.commit_object(obj(bucket, "absent", etag="v2"), if_match="*")
    with pytest.raises(PreconditionFailed):
        catalog.commit_object(obj(bucket, "absent", etag="v2"), if_match="v1")
    catalog.commit_object(obj(bucket, "k", etag="v2"), if_match='"v1"')
    catalog.commit_object(obj(bucket, "k", etag="v3"), if_match="*")
    got = catalog.get_object(bucket.id, "k")
    assert got is not None and got.etag == "v3"
    assert catalog.get_object(bucket.id, "absent") is None


def test_quota(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    catalog.set_org_quota(org.id, 1000)
    catalog.commit_object(obj(bucket, "a", size=600), quota_org_id=org.id)
    with pytest.raises(QuotaExceeded, match=org.name):
        catalog.commit_object(obj(bucket, "b", size=600), quota_org_id=org.id)
    assert catalog.get_object(bucket.id, "b") is None
    # Overwriting counts only the difference.
    catalog.commit_object(obj(bucket, "a", size=1000), quota_org_id=org.id)
    catalog.commit_object(obj(bucket, "a", size=10), quota_org_id=org.id)
    catalog.commit_object(obj(bucket, "b", size=990), quota_org_id=org.id)
    current = catalog.get_org_by_id(org.id)
    assert current is not None and current.stored_bytes == 1000
    # Without quota_org_id (e.g. an operator's restore) the write goes through.
    catalog.commit_object(obj(bucket, "c", size=5))
    catalog.delete_object(bucket.id, "c")
    catalog.set_org_quota(org.id, None)
    catalog.commit_object(obj(bucket, "d", size=5000), quota_org_id=org.id)
    current = catalog.get_org_by_id(org.id)
    assert current is not None and current.stored_bytes == 6000


def test_overwrite_makes_garbage_only_of_unshared_blobs(catalog: Catalog, bucket: Bucket) -> None:
    first = catalog.commit_object(obj(bucket, "src", segments=(seg("blob-A"),))).object
    blob_a = first.segments[0].blob
    # A copy shares the blob.
    copy = catalog.commit_object(
        obj(bucket, "copy", segments=(seg("blob-A", blob_id=blob_a.id),))
    ).object
    assert copy.segments[0].blob.id == blob_a.id
    # Overwriting the source leaves blob A alone: the copy still uses it.
    result = catalog.commit_object(obj(bucket, "src", segments=(seg("blob-B"),)))
    assert result.replaced is not None and result.replaced.id == first.id
    assert result.garbage == []
    # Overwriting the copy too makes blob A garbage, with a garbage intent.
    result = catalog.commit_object(obj(bucket, "copy", segments=(seg("blob-C"),)))
    assert [(g.backend, g.blob_key, g.reason) for g in result.garbage] == [
        ("local", "blob-A", "garbage")
    ]
    assert not catalog.blob_is_referenced("local", "blob-A")
    due = catalog.due_intents(_future(), limit=100_000)
    assert result.garbage[0].id in [i.id for i in due]
    # A copy that still holds blob A's id must not resurrect it.
    with pytest.raises(ObjectNotFound):
        catalog.commit_object(obj(bucket, "late-copy", segments=(seg("blob-A", blob_id=blob_a.id),)))
    # The sweep deletes it from the backend, then forgets the row and the intent.
    assert catalog.forget_blob("local", "blob-A")
    assert catalog.forget_blob("local", "blob-A")  # already gone: still unreferenced
    catalog.remove_intent(result.garbage[0].id)
    assert result.garbage[0].id not in [i.id for i in catalog.due_intents(_future(), limit=100_000)]
    assert not catalog.forget_blob("local", "blob-B")  # in use: the row stays
    assert catalog.blob_is_referenced("local", "blob-B")
    # Rewriting an object onto its own blob (a metadata-only copy) is no garbage either.
    src = catalog.get_object(bucket.id, "src")
    assert src is not None
    blob_b = src.segments[0].blob
    result = catalog.commit_object(obj(bucket, "src", segments=(seg("blob-B", blob_id=blob_b.id),)))
    assert result.garbage == []


def test_delete_object(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    catalog.commit_object(obj(bucket, "x", size=70, segments=(seg("del-1"), seg("del-2", part=2))))
    before = catalog.get_org_by_id(org.id)
    assert before is not None and before.stored_bytes == 70
    deleted, garbage = catalog.delete_object(
        bucket.id, "x", usage=UsageEvent(org_id=org.id, action="DELETE", bucket_id=bucket.id)
    )
    assert deleted is not None and deleted.key == "x" and len(deleted.segments) == 2
    assert sorted(g.blob_key for g in garbage) == ["del-1", "del-2"]
    assert catalog.get_object(bucket.id, "x") is None
    after = catalog.get_org_by_id(org.id)
    assert after is not None and after.stored_bytes == 0
    assert catalog.delete_object(bucket.id, "x") == (None, [])
    assert catalog.usage_totals(org.id)["DELETE"] == (1, 0)


def test_rename_object(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    other_bucket = catalog.create_bucket(org.id, unique_name("other"), region="r", backend="local")
    original = catalog.commit_object(obj(bucket, "old name", size=10, segments=(seg("ren-1"),))).object
    moved, garbage = catalog.rename_object(bucket.id, "old name", bucket.id, "new name")
    assert garbage == [] and moved.key == "new name" and moved.id == original.id
    assert moved.segments[0].blob.key == "ren-1"
    assert moved.modified_at == original.modified_at
    assert catalog.get_object(bucket.id, "old name") is None
    catalog.commit_object(obj(bucket, "target", size=20, segments=(seg("ren-2"),)))
    with pytest.raises(PreconditionFailed):
        catalog.rename_object(bucket.id, "new name", bucket.id, "target", overwrite=False)
    moved, garbage = catalog.rename_object(bucket.id, "new name", bucket.id, "target")
    assert [g.blob_key for g in garbage] == ["ren-2"]
    assert catalog.get_object(bucket.id, "target") == moved
    moved, _ = catalog.rename_object(bucket.id, "target", other_bucket.id, "elsewhere")
    assert moved.bucket_id == other_bucket.id
    assert catalog.count_objects(bucket.id) == 0
    with pytest.raises(ObjectNotFound):
        catalog.rename_object(bucket.id, "target", bucket.id, "x")
    stranger = catalog.create_org(unique_name("stranger"), recipient="r", identity_wrapped=b"w", identity_key_id="k")
    their_bucket = catalog.create_bucket(stranger.id, "b", region="r", backend="local")
    with pytest.raises(InvalidArgument):
        catalog.rename_object(other_bucket.id, "elsewhere", their_bucket.id, "stolen")
    current = catalog.get_org_by_id(org.id)
    assert current is not None and current.stored_bytes == 10
    same, garbage = catalog.rename_object(other_bucket.id, "elsewhere", other_bucket.id, "elsewhere")
    assert same.key == "elsewhere" and garbage == []


def test_import_objects(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    n = catalog.import_objects(
        (obj(bucket, f"imp/{i:05d}", size=1, segments=(seg(f"imp-{i}"),)) for i in range(1200)),
        batch_size=500,
    )
    assert n == 1200
    assert catalog.count_objects(bucket.id) == 1200
    got = catalog.get_object(bucket.id, "imp/00042")
    assert got is not None and got.segments[0].blob.key == "imp-42"
    current = catalog.get_org_by_id(org.id)
    assert current is not None and current.stored_bytes == 1200
    with pytest.raises(AlreadyExists):
        catalog.import_objects([obj(bucket, "imp/00001")])


def test_touch_last_access(catalog: Catalog, bucket: Bucket) -> None:
    o = catalog.commit_object(obj(bucket, "read-me")).object
    assert o.last_access is None
    at = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    catalog.touch_last_access([o.id], at)
    got = catalog.get_object(bucket.id, "read-me")
    assert got is not None and got.last_access == at


# -- concurrency --------------------------------------------------------------------------


def test_concurrent_commits_from_threads(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    errors: list[BaseException] = []
    winners: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for i in range(12):
                catalog.commit_object(obj(bucket, f"t{n}/{i}", size=1))
                catalog.commit_object(obj(bucket, "shared", size=5, etag=f"{n}-{i}"))
            try:
                catalog.commit_object(obj(bucket, "once", size=1, etag=str(n)), if_none_match=True)
                with lock:
                    winners.append(str(n))
            except PreconditionFailed:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1
    assert catalog.count_objects(bucket.id) == 6 * 12 + 2
    current = catalog.get_org_by_id(org.id)
    assert current is not None and current.stored_bytes == 6 * 12 + 5 + 1
    once = catalog.get_object(bucket.id, "once")
    assert once is not None and once.etag == winners[0]


# -- usage --------------------------------------------------------------------------------


def test_usage_is_recorded_with_the_write_and_not_without_it(
    catalog: Catalog, org: Org, bucket: Bucket
) -> None:
    put = UsageEvent(org_id=org.id, action="PUT", bucket_id=bucket.id, user_id=7, bytes=100)
    catalog.commit_object(obj(bucket, "u"), usage=put)
    catalog.commit_object(obj(bucket, "u2"), usage=put)
    with pytest.raises(PreconditionFailed):
        catalog.commit_object(obj(bucket, "u"), usage=put, if_none_match=True)
    catalog.set_org_quota(org.id, 10)
    with pytest.raises(QuotaExceeded):
        catalog.commit_object(obj(bucket, "u3"), usage=put, quota_org_id=org.id)
    assert catalog.usage_totals(org.id) == {"PUT": (2, 200)}
    catalog.record_usage(UsageEvent(org_id=org.id, action="RESTORE", bytes=1))
    assert catalog.usage_totals(org.id)["RESTORE"] == (1, 1)
    assert catalog.usage_summary(org.id, bucket_id=bucket.id) == {"PUT": (2, 200)}
    assert catalog.usage_summary(org.id, since=_future() + timedelta(hours=1)) == {}


def test_read_counters_flush(catalog: Catalog, org: Org, bucket: Bucket) -> None:
    o = catalog.commit_object(obj(bucket, "hot")).object
    counters = ReadCounters(catalog, interval=0.05)
    counters.add(org.id, bucket.id, "GET", nbytes=1000)
    counters.add(org.id, bucket.id, "GET", nbytes=24)
    counters.add(org.id, None, "LIST")
    counters.note_read(o)
    assert catalog.usage_totals(org.id) == {}
    counters.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and catalog.usage_totals(org.id) == {}:
            time.sleep(0.02)
    finally:
        counters.stop()
    assert catalog.usage_totals(org.id) == {"GET": (2, 1024), "LIST": (1, 0)}
    hot = catalog.get_object(bucket.id, "hot")
    assert hot is not None and hot.last_access is not None
    # Counts add up in the same hour's row.
    catalog.add_read_counts({(org.id, bucket.id, "GET"): (3, 3)})
    assert catalog.usage_totals(org.id)["GET"] == (5, 1027)
    # A recent last_access is not written again.
    counters.note_read(hot)
    assert counters.flush() == 0


# -- leases -------------------------------------------------------------------------------


def test_leases(catalog: Catalog) -> None:
    name = unique_name("lease")
    assert catalog.acquire_lease(name, "node-a", 60)
    assert not catalog.acquire_lease(name, "node-b", 60)
    assert catalog.acquire_lease(name, "node-a", 60)  # renewal
    holder = catalog.lease_holder(name)
    assert holder is not None and holder[0] == "node-a"
    catalog.release_lease(name, "node-b")  # not the holder: no effect
    assert not catalog.acquire_lease(name, "node-b", 60)
    catalog.release_lease(name, "node-a")
    assert catalog.lease_holder(name) is None
    assert catalog.acquire_lease(name, "node-b", 0.3)
    assert not catalog.acquire_lease(name, "node-a", 60)
    time.sleep(0.4)
    assert catalog.lease_holder(name) is None
    assert catalog.acquire_lease(name, "node-a", 60)  # expired: taken over
    assert not catalog.acquire_lease(name, "node-b", 60)


def test_leases_race(catalog: Catalog) -> None:
    name = unique_name("race")
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def take(owner: str) -> None:
        barrier.wait()
        results.append(catalog.acquire_lease(name, owner, 60))

    threads = [threading.Thread(target=take, args=(f"n{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]


# -- audit --------------------------------------------------------------------------------


def test_audit(catalog: Catalog, org: Org) -> None:
    catalog.audit("admin", "org.create", org_id=org.id, name=org.name)
    catalog.audit("admin", "user.disable", org_id=org.id, user="bob", at=datetime(2026, 1, 1))
    catalog.audit("system", "startup")
    entries = catalog.audit_entries(org_id=org.id)
    assert [e.action for e in entries] == ["user.disable", "org.create"]
    assert entries[0].details == {"user": "bob", "at": "2026-01-01 00:00:00"}
    assert entries[1].org_id == org.id and entries[1].at.tzinfo is not None
    assert catalog.audit_entries(limit=1)[0].action == "startup"


# -- caching ------------------------------------------------------------------------------


def test_cache_is_bounded_and_local_changes_show_at_once(
    catalog: Catalog, engine_name: str, org: Org
) -> None:
    url = catalog._engine.url.render_as_string(hide_password=False)
    cached = Catalog(url, cache_ttl=0.5)
    try:
        user = catalog.create_user(unique_name("carol"), password_hash=None)
        key_id = "AK" + uuid.uuid4().hex[:16].upper()
        catalog.create_access_key(
            key_id, user_id=user.id, org_id=org.id, secret_wrapped=b"s", secret_key_id="k"
        )
        first = cached.get_access_key(key_id)
        assert first is not None and first.revoked_at is None
        # Revoked through another instance (another replica): seen within the TTL.
        catalog.revoke_access_key(key_id)
        seen = cached.get_access_key(key_id)
        assert seen is not None and seen.revoked_at is None  # still cached
        time.sleep(0.6)
        seen = cached.get_access_key(key_id)
        assert seen is not None and seen.revoked_at is not None
        # Through the same instance: at once.
        key2 = "AK" + uuid.uuid4().hex[:16].upper()
        cached.create_access_key(key2, user_id=user.id, org_id=org.id, secret_wrapped=b"s", secret_key_id="k")
        assert cached.get_access_key(key2) is not None
        cached.revoke_access_key(key2)
        k2 = cached.get_access_key(key2)
        assert k2 is not None and k2.revoked_at is not None
        # A bucket deleted elsewhere may still be returned from the cache, but never
        # written to.
        b = cached.create_bucket(org.id, unique_name("cb"), region="r", backend="local")
        assert cached.get_bucket(org.id, b.name) == b
        catalog.delete_bucket(b.id)
        assert cached.get_bucket(org.id, b.name) == b
        with pytest.raises(BucketNotFound):
            cached.commit_object(obj(b, "resurrect"))
        b2 = cached.create_bucket(org.id, unique_name("cb"), region="r", backend="local")
        cached.delete_bucket(b2.id)
        assert cached.get_bucket(org.id, b2.name) is None
        # Stored bytes seen through the cache follow local writes at once.
        b3 = cached.create_bucket(org.id, unique_name("cb"), region="r", backend="local")
        before = cached.get_org_by_id(org.id)
        assert before is not None
        cached.commit_object(obj(b3, "k", size=33))
        after = cached.get_org_by_id(org.id)
        assert after is not None and after.stored_bytes == before.stored_bytes + 33
    finally:
        cached.close()
