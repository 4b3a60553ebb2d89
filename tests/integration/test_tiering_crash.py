"""Killing the engine (SIGKILL) in the middle of a transition, at every step, then running it
again loses and duplicates nothing: every object is archived exactly once, readable after a
restore, and after a sweep the backend holds exactly the blobs the catalog references.

The engine dies through ``COOLSTORAGE_TEST_CRASH_AT`` (tiering/crashpoints.py), which makes
``coolstorage tier run --once`` send itself SIGKILL at the named step."""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest

from gateway.app import Gateway
from gateway.errors import RestoreInProgress
from tests.integration.tiering_support import (
    BUCKET,
    ORG,
    Corpus,
    MiB,
    admin,
    blobs,
    config_of,
    digest,
    read,
    tier_once,
    write_config,
    write_corpus,
)
from tiering.backends.localfs import LocalFSBackend
from tiering.crashpoints import ENV
from tiering.restores import poll_restores
from tiering.sweep import remove_leftovers, sweep_orphans

POINTS = [
    "pack:after-intent",
    "pack:after-put",
    "pack:after-commit",
    "join:after-put",
    "join:after-commit",
    "single:after-copy",
    "single:after-commit",
]
#: Long enough that no lease expires by itself during a scenario (the test releases them).
LEASE_TTL = 120


def scenario_config(directory: Path) -> Path:
    return write_config(
        directory,
        backend={"type": "localfs", "root": str(directory / "var" / "blobs"), "restore_delay": 0},
        overrides={"tiering": {"lease_ttl": LEASE_TTL}},
    )


def held_job_leases(config_path: Path) -> list[tuple[str, str]]:
    """``(name, owner)`` of the unexpired tiering job leases (read behind the catalog's back)."""
    import sqlalchemy as sa

    config = config_of(config_path)
    engine = sa.create_engine(config.catalog.url.reveal())
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT name, owner FROM leases WHERE name LIKE 'tier:%'")
            ).all()
    finally:
        engine.dispose()
    return [(r.name, r.owner) for r in rows]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Corpus]:
    """A data directory with 40 small objects, 2 single large ones and a multipart one
    (a 5 MiB part in the backend, a 300 KiB last part staged), nothing archived yet."""
    directory = tmp_path_factory.mktemp("crash-template")
    with Gateway.open(config_of(scenario_config(directory))) as gateway:
        corpus = write_corpus(
            gateway.objects, small=40, small_max=30_000, singles=2,
            multipart=((5 * MiB, 300 * 1024),),
        )
    return directory / "var", corpus


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_transition_resumes_exactly_once(
    point: str, template: tuple[Path, Corpus], tmp_path: Path
) -> None:
    var, corpus = template
    shutil.copytree(var, tmp_path / "var")
    config_path = scenario_config(tmp_path)

    crashed = tier_once(config_path, env={ENV: point})
    assert crashed.returncode == -9, crashed.stdout + crashed.stderr

    # The dead engine's job lease outlives it: another engine leaves that job alone...
    # (The pack group's lease is taken when planning, before the joins and copies run.)
    held = held_job_leases(config_path)
    job = {"pack": "tier:pack:", "join": "tier:object:", "single": "tier:blob:"}[
        point.split(":")[0]
    ]
    assert any(name.startswith(job) for name, _ in held), held
    unfinished = len(held) - (1 if point.endswith("after-commit") else 0)
    early = tier_once(config_path)
    assert early.returncode == 0, early.stdout + early.stderr
    assert f"{unfinished} jobs left to other engines" in early.stdout
    # ...until the lease expires (here: released, as if its time had passed); then the
    # job is done again, from the start.
    with Gateway.open(config_of(config_path)) as gateway:
        for name, owner in held:
            gateway.catalog.release_lease(name, owner)
    again = tier_once(config_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 jobs left to other engines, 0 failed" in again.stdout

    with Gateway.open(config_of(config_path)) as gateway:
        catalog, backend = gateway.catalog, gateway.backends["cold"]
        counts = catalog.tiering_counts()
        assert counts.objects_by_class == {
            "DEEP_ARCHIVE": (len(corpus.all), counts.objects_by_class["DEEP_ARCHIVE"][1])
        }
        # One pack and one joined multipart object, live in full: no duplicate members.
        assert counts.containers == 2
        assert counts.container_live_bytes == counts.container_members_bytes

        # Whatever the crash left behind is an orphan with an intent: the sweep removes it.
        sweep_orphans(catalog, gateway.objects.backends, datetime.now(UTC) + timedelta(seconds=1))
        assert catalog.due_intents(datetime.now(UTC) + timedelta(days=1)) == []
        # Below the blobs, a killed write may have left a data file no record names.
        remove_leftovers(gateway.objects.backends, datetime.now(UTC) + timedelta(seconds=1))
        files = [p.name for p in cast(LocalFSBackend, backend).root.rglob("*") if p.is_file()]
        assert len([n for n in files if "~d" in n]) == len([n for n in files if n.endswith("~meta")])
        assert not [n for n in files if "~t" in n]
        counts = catalog.tiering_counts()
        assert counts.staged_blobs == 0 and counts.hot_blobs == 0
        bucket = catalog.get_bucket(catalog.get_org(ORG).id, BUCKET)  # type: ignore[union-attr]
        assert bucket is not None
        referenced = set()
        for key in corpus.all:
            record = catalog.get_object(bucket.id, key)
            assert record is not None
            assert {s.blob.storage_class for s in record.segments} == {"DEEP_ARCHIVE"}
            referenced |= {s.blob.key for s in record.segments}
        stored = blobs(backend)
        assert set(stored) == referenced  # no orphans, nothing missing
        assert len(stored) == 2 + 2  # two copied singles, the pack and the joined object

        for key in corpus.all:
            with contextlib.suppress(RestoreInProgress):
                gateway.objects.request_restore(admin(), ORG, BUCKET, key)
        poll_restores(catalog, gateway.objects.backends)
        for key, expected in corpus.all.items():
            assert digest(read(gateway.objects, key)) == expected, key
