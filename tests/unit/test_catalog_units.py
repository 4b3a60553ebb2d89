"""Unit tests of the catalog's helpers: the TTL cache, URL redaction and error translation,
and the read counters (against a fake sink)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from catalog.api import Catalog, encode_key
from catalog.cache import TTLCache
from catalog.counters import ReadCounters
from catalog.db import display_url
from catalog.records import ObjectRecord
from gateway.errors import CatalogError, ConfigError, InvalidName


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_cache_expires_entries() -> None:
    clock = FakeClock()
    cache: TTLCache[str] = TTLCache(30, clock=clock)
    cache.put("a", "1")
    assert cache.get("a") == "1"
    clock.now += 29.9
    assert cache.get("a") == "1"
    clock.now += 0.2
    assert cache.get("a") is None
    assert len(cache) == 0


def test_ttl_cache_zero_ttl_never_caches_and_none_is_not_cached() -> None:
    off: TTLCache[int] = TTLCache(0)
    off.put("a", 1)
    assert off.get("a") is None
    calls: list[int] = []

    def load() -> int | None:
        calls.append(1)
        return None

    on: TTLCache[int | None] = TTLCache(30)
    assert on.get_or_load("missing", load) is None
    assert on.get_or_load("missing", load) is None
    assert len(calls) == 2  # a name that does not exist yet is looked up again


def test_ttl_cache_bounds_size_and_invalidates() -> None:
    cache: TTLCache[int] = TTLCache(30, maxsize=3)
    for i in range(5):
        cache.put(i, i)
    assert [cache.get(i) for i in range(5)] == [None, None, 2, 3, 4]
    cache.invalidate(3)
    assert cache.get(3) is None
    cache.invalidate_where(lambda k, v: v == 4)
    assert cache.get(4) is None and cache.get(2) == 2
    assert cache.get_or_load(2, lambda: 99) == 2
    cache.clear()
    assert len(cache) == 0


def test_display_url_hides_passwords() -> None:
    shown = display_url("mysql+pymysql://gw:s3cr3t-pass@db.example:3306/cool")
    assert "s3cr3t-pass" not in shown and "***" in shown and "db.example" in shown
    assert display_url("sqlite:////var/lib/cs/catalog.db") == "sqlite:////var/lib/cs/catalog.db"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_mysql_is_one_clear_line_without_the_password() -> None:
    url = f"mysql+pymysql://gw:pw-never-shown@127.0.0.1:{_closed_port()}/cool"
    catalog = Catalog(url, cache_ttl=0)
    try:
        with pytest.raises(CatalogError) as info:
            catalog.check()
    finally:
        catalog.close()
    message = str(info.value)
    assert "cannot reach the catalog database at mysql+pymysql://gw:***@127.0.0.1:" in message
    assert "pw-never-shown" not in message
    assert "\n" not in message


def test_sqlite_needs_a_reachable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Catalog("sqlite://")
    with pytest.raises(ConfigError):
        Catalog("sqlite:///:memory:")
    with pytest.raises(ConfigError):
        Catalog("postgresql://x@localhost/db")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(CatalogError, match="cannot reach the catalog database"):
        Catalog(f"sqlite:///{blocker}/sub/catalog.db")
    # The parent directory is created.
    catalog = Catalog(f"sqlite:///{tmp_path}/new/dir/catalog.db")
    try:
        assert (tmp_path / "new" / "dir").is_dir()
    finally:
        catalog.close()


def test_sqlite_commits_are_durable(tmp_path: Path) -> None:
    """Small objects are staged in the catalog: a commit must be on disk when it returns
    (WAL with synchronous=FULL), and foreign keys are enforced."""
    from catalog.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path}/catalog.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_encode_key_limits() -> None:
    assert encode_key("\U0001f600") == b"\xf0\x9f\x98\x80"
    assert len(encode_key("x" * 1024)) == 1024
    for bad in ("", "x" * 1025, "\udc80"):
        with pytest.raises(InvalidName):
            encode_key(bad)


class FakeSink:
    def __init__(self) -> None:
        self.counts: list[dict[tuple[int, int | None, str], tuple[int, int]]] = []
        self.touched: list[list[int]] = []
        self.fail = False

    def add_read_counts(self, counts: dict[tuple[int, int | None, str], tuple[int, int]]) -> None:
        if self.fail:
            raise CatalogError("down")
        self.counts.append(dict(counts))

    def touch_last_access(self, object_ids: list[int], at: datetime) -> None:
        self.touched.append(list(object_ids))


def _record(object_id: int, last_access: datetime | None) -> ObjectRecord:
    now = datetime.now(UTC)
    return ObjectRecord(
        id=object_id,
        bucket_id=1,
        key="k",
        size=1,
        etag="e",
        sha256="s",
        content_type="t",
        user_metadata={},
        created_at=now,
        modified_at=now,
        storage_class="STANDARD",
        last_access=last_access,
    )


def test_read_counters_add_up_and_survive_a_failed_flush() -> None:
    sink = FakeSink()
    counters = ReadCounters(sink, interval=60)
    counters.add(1, 2, "GET", nbytes=10)
    counters.add(1, 2, "GET", nbytes=5)
    counters.add(1, None, "LIST")
    sink.fail = True
    with pytest.raises(CatalogError):
        counters.flush()
    counters.add(1, 2, "GET", nbytes=1)
    assert counters.pending() == {(1, 2, "GET"): (3, 16), (1, None, "LIST"): (1, 0)}
    sink.fail = False
    assert counters.flush() == 2
    assert sink.counts == [{(1, 2, "GET"): (3, 16), (1, None, "LIST"): (1, 0)}]
    assert counters.flush() == 0 and len(sink.counts) == 1


def test_read_counters_touch_last_access_at_most_daily() -> None:
    sink = FakeSink()
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    counters = ReadCounters(sink, clock=lambda: now)
    counters.note_read(_record(1, None))
    counters.note_read(_record(2, now - timedelta(hours=23)))
    counters.note_read(_record(3, now - timedelta(days=1, seconds=1)))
    counters.note_read(_record(1, None))
    counters.flush()
    assert sink.touched == [[1, 3]]


def test_read_counters_stop_flushes_what_is_left() -> None:
    sink = FakeSink()
    counters = ReadCounters(sink, interval=3600)
    counters.start()
    counters.add(5, 6, "HEAD")
    counters.stop()
    assert sink.counts == [{(5, 6, "HEAD"): (1, 0)}]


def test_mariadb_fixture_says_how_to_install_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.fixtures import mariadb

    monkeypatch.setattr(mariadb, "_find", lambda name, *dirs: None)
    with pytest.raises(pytest.fail.Exception, match="apt-get install mariadb-server"):
        mariadb.start_mariadb(tmp_path)
