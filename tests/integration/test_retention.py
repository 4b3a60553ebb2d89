"""Deleted-but-retained objects through the ObjectService, the engine and the commands, on
localfs: a young archived object is hidden at once and kept to day 180, a bucket's
retention window keeps overwritten and deleted versions recoverable, purges free blobs."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.cli import main
from gateway.errors import ObjectArchived, ObjectNotFound, PreconditionFailed
from tests.integration.tiering_support import (
    BUCKET,
    ORG,
    MiB,
    admin,
    blobs,
    config_of,
    read,
    write_config,
)
from tiering.engine import Engine, default_tasks
from tiering.retention import purge_retained
from tiering.transitions import Tierer, TieringSettings


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Gateway, Path]]:
    path = write_config(tmp_path)
    with Gateway.open(config_of(path)) as gw:
        gw.objects.ensure_org(ORG)
        gw.objects.create_bucket(admin(), ORG, BUCKET)
        yield gw, path


def put(gw: Gateway, key: str, data: bytes) -> None:
    gw.objects.put_object(admin(), ORG, BUCKET, key, io.BytesIO(data), size=len(data))


def stored(gw: Gateway) -> int:
    org = gw.catalog.get_org(ORG)
    assert org is not None
    return org.stored_bytes


def test_young_archived_objects_are_hidden_and_kept(setup: tuple[Gateway, Path]) -> None:
    gw, _ = setup
    svc = gw.objects
    big, small = os.urandom(2 * MiB), os.urandom(5000)
    put(gw, "big.bin", big)  # above the tests' 1 MiB pack threshold: copied cold alone
    put(gw, "small.txt", small)
    put(gw, "other.txt", b"stays")
    tierer = Tierer(gw.catalog, svc.backends, TieringSettings.from_config(gw.config), owner="t")
    assert tierer.run_pass(ignore_age=True).archived_objects == 3
    cold_blob = next(k for k in blobs(gw.backends["cold"]) if k.startswith("blobs/"))
    total = stored(gw)

    assert svc.delete_object(admin(), ORG, BUCKET, "big.bin")
    assert svc.delete_object(admin(), ORG, BUCKET, "small.txt")
    for key in ("big.bin", "small.txt"):
        with pytest.raises(ObjectNotFound):
            svc.head_object(admin(), ORG, BUCKET, key)
        with pytest.raises(ObjectNotFound):
            svc.get_object(admin(), ORG, BUCKET, key)
    assert [o.key for o in svc.list_objects(admin(), ORG, BUCKET).objects] == ["other.txt"]
    kept = svc.list_retained(admin(), ORG, BUCKET)
    assert [(k.key, k.reason, k.storage_class) for k in kept] == [
        ("big.bin", "delete", "DEEP_ARCHIVE"),
        ("small.txt", "delete", "DEEP_ARCHIVE"),
    ]
    assert all(k.retain_until > datetime.now(UTC) + timedelta(days=179) for k in kept)
    # Storage, not a fee: still counted, and the cold blob is still there.
    assert stored(gw) == total
    assert cold_blob in blobs(gw.backends["cold"])

    # Recovered: archived again, at its key.
    back = svc.recover_retained(admin(), ORG, BUCKET, "small.txt")
    assert back.size == len(small)
    assert svc.head_object(admin(), ORG, BUCKET, "small.txt").storage_class == "DEEP_ARCHIVE"
    with pytest.raises(ObjectArchived):
        svc.get_object(admin(), ORG, BUCKET, "small.txt")

    # Nothing is purged before day 180; after it the lone blob goes, the container stays.
    assert purge_retained(gw.catalog, svc.backends).purged == 0
    later = datetime.now(UTC) + timedelta(days=181)
    report = purge_retained(gw.catalog, svc.backends, now=later)
    assert (report.purged, report.bytes, report.blobs_deleted) == (1, 2 * MiB, 1)
    assert cold_blob not in blobs(gw.backends["cold"])
    assert stored(gw) == total - 2 * MiB
    assert svc.list_retained(admin(), ORG, BUCKET) == []


def test_retention_window_through_the_commands(
    setup: tuple[Gateway, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gw, path = setup
    svc = gw.objects
    bucket = gw.catalog.get_bucket(gw.catalog.get_org(ORG).id, BUCKET)  # type: ignore[union-attr]
    assert bucket is not None
    gw.catalog.update_bucket_settings(bucket.id, {"retention_days": 30})
    put(gw, "notes.txt", b"first version")
    put(gw, "notes.txt", b"second version")
    assert read(svc, "notes.txt") == b"second version"
    assert stored(gw) == len(b"first version") + len(b"second version")
    svc.delete_object(admin(), ORG, BUCKET, "notes.txt")
    with pytest.raises(ObjectNotFound):
        read(svc, "notes.txt")

    config = ["--config", str(path)]
    assert main(["tier", "retained", "list", f"{BUCKET}/notes", "--json", *config]) == 0
    import json

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["key"], r["reason"]) for r in rows] == [
        ("notes.txt", "delete"),
        ("notes.txt", "overwrite"),
    ]
    oldest = rows[1]["id"]
    assert main(["tier", "retained", "recover", f"{BUCKET}/notes.txt", "--id", str(oldest),
                 *config]) == 0
    assert "recovered backups/notes.txt" in capsys.readouterr().out
    assert read(svc, "notes.txt") == b"first version"
    # The key is taken now: another recovery is refused, nothing is dropped.
    with pytest.raises(PreconditionFailed):
        svc.recover_retained(admin(), ORG, BUCKET, "notes.txt")
    assert main(["tier", "retained", "recover", f"{BUCKET}/notes.txt", *config]) == 1
    assert main(["tier", "retained", "list", BUCKET, *config]) == 0
    assert "delete" in capsys.readouterr().out

    # The engine's retention task purges after the window (nothing is due yet).
    engine = Engine(gw, default_tasks(gw.config))
    results = engine.run_once_blocking(["retention"])
    assert getattr(results["retention"], "purged", None) == 0
    report = purge_retained(gw.catalog, svc.backends, now=datetime.now(UTC) + timedelta(days=31))
    assert report.purged == 1
    assert stored(gw) == len(b"first version")
