"""Listing cost does not grow with the bucket: one page from 1,000,000 keys vs 10,000.

Builds two SQLite catalogs through ``Catalog.import_objects``:

- large: 1,000 prefixes ``pNNNN/`` of 1,000 keys each (1,000,000 keys);
- small: 100 prefixes of 100 keys each (10,000 keys);

then times ``Catalog.list_objects`` (median of several runs, warm cache):

- without a delimiter: one 1,000-key page starting in the middle of the bucket;
- with the ``/`` delimiter: the root page, 1,000 common prefixes in the large bucket, each
  standing for 1,000 keys that must be skipped, not scanned. The small bucket has only 100
  common prefixes, so its full root page (100 entries) is compared per entry, i.e. scaled to
  1,000 entries; a second figure compares the same 100-entry page in both buckets.

Prints each time and the ratios large/small; the goal is a ratio of at most 2 (an O(bucket)
listing would show about 100). The last line is the largest ratio. Populating takes about a
minute; ``--dir`` keeps the databases for reruns (``--reuse``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from catalog.api import Catalog
from catalog.records import NewObject

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _objects(bucket_id: int, prefixes: int, per_prefix: int) -> Iterator[NewObject]:
    for p in range(prefixes):
        for k in range(per_prefix):
            yield NewObject(
                bucket_id=bucket_id,
                key=f"p{p:04d}/k{k:04d}",
                size=1,
                etag="d41d8cd98f00b204e9800998ecf8427e",
                sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                content_type="application/octet-stream",
                user_metadata={},
                storage_class="STANDARD",
                segments=(),
                modified_at=WHEN,
            )


def build(path: Path, prefixes: int, per_prefix: int, *, reuse: bool) -> tuple[Catalog, int]:
    """A catalog at ``path`` with one bucket of ``prefixes * per_prefix`` keys."""
    if path.exists() and not reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    catalog = Catalog(f"sqlite:///{path}", cache_ttl=0)
    catalog.upgrade()
    org = catalog.get_org("bench")
    if org is None:
        org = catalog.create_org(
            "bench", recipient="age1bench", identity_wrapped=b"-", identity_key_id="bench"
        )
    bucket = catalog.get_bucket(org.id, "bucket")
    if bucket is None:
        bucket = catalog.create_bucket(org.id, "bucket", region="local", backend="localfs")
    expected = prefixes * per_prefix
    if catalog.count_objects(bucket.id) != expected:
        if catalog.count_objects(bucket.id):
            raise SystemExit(f"{path} holds a different bucket; remove it or drop --reuse")
        started = time.perf_counter()
        catalog.import_objects(_objects(bucket.id, prefixes, per_prefix), batch_size=10_000)
        print(
            f"populated {expected:,} keys in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return catalog, bucket.id


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", type=Path, help="where to keep the databases (default: a temp dir)"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse databases already in --dir")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        large, large_bucket = build(folder / "large.db", 1000, 1000, reuse=args.reuse)
        small, small_bucket = build(folder / "small.db", 100, 100, reuse=args.reuse)
        try:
            return report(large, large_bucket, small, small_bucket, args.runs)
        finally:
            large.close()
            small.close()


def report(large: Catalog, lb: int, small: Catalog, sb: int, runs: int) -> int:
    def flat(cat: Catalog, bucket: int, marker: str) -> Callable[[], object]:
        def run() -> None:
            page = cat.list_objects(bucket, start_after=marker, max_keys=1000)
            assert len(page.objects) == 1000 and page.is_truncated

        return run

    def delimited(cat: Catalog, bucket: int, max_keys: int, entries: int) -> Callable[[], object]:
        def run() -> None:
            page = cat.list_objects(bucket, delimiter="/", max_keys=max_keys)
            assert len(page.common_prefixes) == entries and not page.objects

        return run

    flat_large = median_seconds(flat(large, lb, "p0500/k0499"), runs)
    flat_small = median_seconds(flat(small, sb, "p0050/k0049"), runs)
    delim_large = median_seconds(delimited(large, lb, 1000, 1000), runs)
    delim_small = median_seconds(delimited(small, sb, 1000, 100), runs)
    delim_large_100 = median_seconds(delimited(large, lb, 100, 100), runs)

    r_flat = flat_large / flat_small
    r_delim = (delim_large / 1000) / (delim_small / 100)
    r_delim_100 = delim_large_100 / delim_small
    ms = 1000.0
    print("catalog list_objects on SQLite, median of", runs, "runs")
    print(
        f"  no delimiter, 1,000-key page:      1M keys {flat_large * ms:7.2f} ms   "
        f"10k keys {flat_small * ms:7.2f} ms   ratio {r_flat:.2f}"
    )
    print(
        f"  '/' delimiter, per 1,000 entries:  1M keys {delim_large * ms:7.2f} ms   "
        f"10k keys {delim_small * 10 * ms:7.2f} ms   ratio {r_delim:.2f}"
        f"   (10k: its whole root, 100 prefixes, {delim_small * ms:.2f} ms, x10)"
    )
    print(
        f"  '/' delimiter, 100-entry page:     1M keys {delim_large_100 * ms:7.2f} ms   "
        f"10k keys {delim_small * ms:7.2f} ms   ratio {r_delim_100:.2f}"
    )
    worst = max(r_flat, r_delim, r_delim_100)
    print(f"max ratio (goal <= 2): {worst:.2f}")
    return 0 if worst <= 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
