"""End to end: objects written through the ObjectService go cold with one
``coolstorage tier run --once``, and come back through restores, on localfs (with a restore
delay) and on a moto server standing in for S3."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.errors import ObjectArchived, RestoreInProgress
from gateway.objects import ObjectService
from tests.integration.tiering_support import (
    BUCKET,
    ORG,
    admin,
    blobs,
    config_of,
    digest,
    read,
    tier_once,
    write_config,
    write_corpus,
)


@pytest.fixture(params=["localfs", "moto"])
def backend_options(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any] | None:
    if request.param == "localfs":
        return None  # write_config's default: localfs with a 1 s restore delay
    options: dict[str, Any] = request.getfixturevalue("moto_s3_options")
    return options


def restore_everything(svc: ObjectService, keys: list[str]) -> dict[str, Any]:
    """Ask for every key; objects sharing a container collapse onto its one restore."""
    tickets: dict[str, Any] = {}
    for key in keys:
        try:
            tickets[key] = svc.request_restore(admin(), ORG, BUCKET, key, days=2)
        except RestoreInProgress:
            tickets[key] = None
    return tickets


def test_write_archive_restore_read(tmp_path: Path, backend_options: dict[str, Any] | None) -> None:
    config_path = write_config(tmp_path, backend=backend_options)
    with Gateway.open(config_of(config_path)) as gateway:
        svc = gateway.objects
        backend = gateway.backends["cold"]
        corpus = write_corpus(svc)
        assert gateway.catalog.tiering_counts().staged_blobs == 1000 + 1  # + a last part
        assert len(blobs(backend)) == 3 + 2 + 2  # singles and multipart parts over 1 MiB

        done = tier_once(config_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1005 objects archived" in done.stdout

        # At most 5 large blobs (3 copied singles, 2 joined multipart objects) plus 2 packs.
        stored = blobs(backend)
        assert set(stored.values()) == {"DEEP_ARCHIVE"}
        assert sum(k.startswith("blobs/") for k in stored) == 3
        assert sum(k.startswith("containers/") for k in stored) == 4
        counts = gateway.catalog.tiering_counts()
        assert counts.staged_blobs == 0 and counts.hot_blobs == 0
        assert counts.objects_by_class["DEEP_ARCHIVE"][0] == 1005
        assert counts.containers == 4 and counts.container_live_bytes == counts.container_members_bytes

        small_key = sorted(corpus.small)[500]
        multi_key = sorted(corpus.multipart)[0]
        single_key = sorted(corpus.single)[1]
        for key in (small_key, multi_key, single_key):
            view = svc.head_object(admin(), ORG, BUCKET, key)
            assert (view.state, view.storage_class) == ("archived", "DEEP_ARCHIVE")
            with pytest.raises(ObjectArchived) as caught:
                svc.get_object(admin(), ORG, BUCKET, key)
            assert caught.value.code == "InvalidObjectState"
        listed = svc.list_objects(admin(), ORG, BUCKET, prefix="small/00/")
        assert {o.storage_class for o in listed.objects} == {"DEEP_ARCHIVE"}

        tickets = restore_everything(svc, [small_key, multi_key, single_key])
        for ticket in tickets.values():
            assert ticket is not None and ticket.status == "started"
            assert ticket.quote_usd is not None and ticket.quote_usd > 0
        if backend_options is None:
            # localfs takes a second: the restore is visible as running meanwhile.
            assert svc.head_object(admin(), ORG, BUCKET, small_key).state == "restoring"
            with pytest.raises(RestoreInProgress):
                svc.request_restore(admin(), ORG, BUCKET, small_key)
            with pytest.raises(ObjectArchived):
                svc.get_object(admin(), ORG, BUCKET, small_key)
            time.sleep(1.2)
        polled = tier_once(config_path)
        assert polled.returncode == 0, polled.stdout + polled.stderr
        # moto finishes a restore at once (the request already saw it readable).
        assert ("3 completed" if backend_options is None else "0 restores polled") in polled.stdout
        for key in (small_key, multi_key, single_key):
            view = svc.head_object(admin(), ORG, BUCKET, key)
            assert view.state == "restored" and view.restore_expiry is not None
            assert digest(read(svc, key)) == corpus.all[key]

        # Every object comes back, the small ones from the two packs' restored copies.
        restore_everything(svc, sorted(corpus.all))
        if backend_options is None:
            time.sleep(1.2)
        polled = tier_once(config_path)
        assert polled.returncode == 0, polled.stdout + polled.stderr
        # (Every object on localfs; on moto, whose requests are slow, every 20th small one.)
        step = 1 if backend_options is None else 20
        check = {**dict(sorted(corpus.small.items())[::step]), **corpus.single, **corpus.multipart}
        for key, expected in sorted(check.items()):
            assert digest(read(svc, key)) == expected, key

        # A restored copy is read in place: another pass moves nothing, copies nothing.
        again = tier_once(config_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "tiering: nothing to do" in again.stdout or "tiering: 0 objects" in again.stdout
        assert blobs(backend) == stored
