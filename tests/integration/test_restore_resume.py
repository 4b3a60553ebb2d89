"""A folder restore whose start died midway (the process killed while it asked for the
objects' restores one by one) is finished by the admin API's background worker: the
objects never asked for are asked for, once its start lease is free, and the job becomes
ready. In process, on the localfs backend with a 1 s restore delay."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from admin.restores import (
    KIND_PREFIX,
    READY,
    RESUME_WINDOW,
    RUNNING,
    CopyWorker,
    RestoreJobs,
    start_lease,
)
from admin.storage_mode import archive_now
from gateway.app import Gateway
from gateway.bootstrap import ensure_first_admin
from gateway.principals import Principal, principal_for_user
from tests.integration.tiering_support import config_of, write_config
from tiering.restores import poll_restores

MiB = 1 << 20
KEYS = [f"cold/{i}.bin" for i in range(3)]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Gateway, Principal, RestoreJobs]]:
    gateway = Gateway.open(config_of(write_config(tmp_path)))
    try:
        first = ensure_first_admin(gateway)
        assert first is not None
        user = gateway.catalog.user_facts(name=first.user)
        assert user is not None
        principal = principal_for_user(gateway.catalog, user.user.id)
        gateway.objects.create_bucket(principal, "default", "data")
        # Above the 1 MiB pack threshold: each object is its own cold blob and restore.
        for key in KEYS:
            data = os.urandom(MiB + 300_000)
            gateway.objects.put_object(principal, "default", "data", key, io.BytesIO(data),
                                       size=len(data))
        org = gateway.catalog.get_org("default")
        bucket = gateway.catalog.get_bucket(org.id, "data")  # type: ignore[union-attr]
        report, _ = archive_now(gateway, principal, org, bucket, "cold/", "prefix")  # type: ignore[arg-type]
        assert report.archived_objects == len(KEYS)
        yield gateway, principal, RestoreJobs(gateway)
    finally:
        gateway.close()


def states(gateway: Gateway, principal: Principal) -> list[str]:
    return [gateway.objects.head_object(principal, "default", "data", k).state for k in KEYS]


def test_a_restore_whose_start_died_is_resumed(
    world: tuple[Gateway, Principal, RestoreJobs], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, principal, jobs = world
    plan = jobs.plan(principal, "default", "data", kind=KIND_PREFIX, target="cold/",
                     tier="Bulk", days=1)
    real = gateway.objects.request_restore
    calls: list[str] = []

    def dies_after_the_first(*args: Any, **kwargs: Any) -> Any:
        if calls:
            raise KeyboardInterrupt("the process dies here")
        calls.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(gateway.objects, "request_restore", dies_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        jobs.start(principal, plan, destination=None)
    monkeypatch.undo()
    assert states(gateway, principal) == ["restoring", "archived", "archived"]
    [job] = gateway.catalog.jobs_with_status((RUNNING,))

    # While someone holds the start lease (a start still running), nothing is resumed.
    assert gateway.catalog.acquire_lease(start_lease(job.id), "a-live-start", 60)
    worker = CopyWorker(jobs, owner="replica-2")
    worker.run_once()
    assert states(gateway, principal) == ["restoring", "archived", "archived"]
    gateway.catalog.release_lease(start_lease(job.id), "a-live-start")

    worker.run_once()
    assert states(gateway, principal) == ["restoring"] * 3
    worker.run_once()  # nothing left to ask for: no second request, no second charge
    assert len(gateway.catalog.jobs_with_status((RUNNING,))) == 1

    time.sleep(1.2)
    poll_restores(gateway.catalog, gateway.objects.backends, min_delay=0)
    progress = jobs.refresh(gateway.catalog.get_restore_job(job.id), force=True)  # type: ignore[arg-type]
    assert progress.job.status == READY
    assert progress.job.objects_ready == len(KEYS) and progress.job.objects_failed == 0


def test_an_old_job_is_not_resumed(
    world: tuple[Gateway, Principal, RestoreJobs], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the resume window an archived object may be one whose restore came and went:
    asking again would pay twice."""
    gateway, principal, jobs = world
    plan = jobs.plan(principal, "default", "data", kind=KIND_PREFIX, target="cold/",
                     tier="Bulk", days=1)

    def dies(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt("the process dies here")

    monkeypatch.setattr(gateway.objects, "request_restore", dies)
    with pytest.raises(KeyboardInterrupt):
        jobs.start(principal, plan, destination=None)
    monkeypatch.undo()
    [job] = gateway.catalog.jobs_with_status((RUNNING,))
    old = replace(job, requested_at=job.requested_at - RESUME_WINDOW - timedelta(minutes=1))
    assert jobs.resume_requests(old, owner="replica-2") == 0
    assert states(gateway, principal) == ["archived"] * 3
    assert jobs.resume_requests(job, owner="replica-2") == len(KEYS)


def test_a_copy_job_behind_a_page_of_download_jobs_is_still_copied(
    world: tuple[Gateway, Principal, RestoreJobs],
) -> None:
    """Download jobs stay ready until someone looks at them; however many there are, the
    worker still reaches a running job and copies what of it is readable already."""
    gateway, principal, jobs = world
    org = gateway.catalog.get_org("default")
    assert org is not None
    bucket = gateway.catalog.get_bucket(org.id, "data")
    assert bucket is not None
    for i in range(105):
        gateway.catalog.create_restore_job(
            org_id=org.id, bucket_id=bucket.id, bucket="data", kind="object", target=f"k{i}",
            tier="Bulk", days=1, destination=None, status=READY, user_id=principal.user_id,
            requested_by=principal.name, quote_usd=None, items=[],
        )
    gateway.objects.create_bucket(principal, "default", "copies")
    hot = b"still hot"
    gateway.objects.put_object(principal, "default", "data", "cold/hot.txt", io.BytesIO(hot),
                               size=len(hot))
    plan = jobs.plan(principal, "default", "data", kind=KIND_PREFIX, target="cold/",
                     tier="Bulk", days=1)
    job = jobs.start(principal, plan, destination={"bucket": "copies", "prefix": "back/"})
    assert job.status == RUNNING  # the archived objects are on their way
    assert CopyWorker(jobs, owner="replica-2").run_once() == 1
    copied = gateway.objects.get_object(principal, "default", "copies", "back/hot.txt")
    assert b"".join(copied.body) == hot
