"""The tiering engine's rules, one at a time, over a real SQLite catalog, localfs and
sealing: policies and presets, leases, container garbage and rewrites (with a fake
clock), restore polling, budgets, the webhook, and the commands."""

from __future__ import annotations

import http.server
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.cli import main
from gateway.errors import ObjectArchived, RestoreBudgetExceeded
from tests.integration.tiering_support import (
    BUCKET,
    ORG,
    admin,
    blobs,
    config_of,
    digest,
    read,
    write_config,
    write_corpus,
)
from tiering.backends.localfs import LocalFSBackend
from tiering.engine import Engine, orphan_sweep_task, restores_task
from tiering.policy import store_rules
from tiering.restores import poll_restores
from tiering.retention import purge_retained
from tiering.sweep import sweep_orphans
from tiering.transitions import Tierer, TieringSettings
from tiering.webhook import SIGNATURE_HEADER, verify_signature

RESTIC_ID = "3f" * 32


@pytest.fixture
def gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """A gateway whose localfs restores take ``restore_delay`` (param, default 0) s."""
    delay = getattr(request, "param", 0)
    path = write_config(
        tmp_path,
        backend={"type": "localfs", "root": str(tmp_path / "var" / "blobs"), "restore_delay": delay},
    )
    with Gateway.open(config_of(path)) as gw:
        gw.objects.ensure_org(ORG)
        gw.objects.create_bucket(admin(), ORG, BUCKET)
        yield gw


def tierer(gw: Gateway, *, owner: str = "engine-a", clock: Any = None, **settings: Any) -> Tierer:
    base = TieringSettings.from_config(gw.config)
    for name, value in settings.items():
        base = TieringSettings(**{**base.__dict__, name: value})
    return Tierer(gw.catalog, gw.objects.backends, base, owner=owner, clock=clock)


def put(gw: Gateway, key: str, data: bytes, **kw: Any) -> None:
    gw.objects.put_object(admin(), ORG, BUCKET, key, io.BytesIO(data), size=len(data), **kw)


def restore_and_read(gw: Gateway, key: str) -> bytes:
    try:
        gw.objects.request_restore(admin(), ORG, BUCKET, key)
    except Exception as error:  # already restored or running: fine for reading
        assert error.__class__.__name__ in ("RestoreInProgress",), error
    poll_restores(gw.catalog, gw.objects.backends)
    return read(gw.objects, key)


# -- policies ------------------------------------------------------------------------------


def test_restic_preset_and_keep_hot_rules_per_bucket(gateway: Gateway) -> None:
    org = gateway.catalog.get_org(ORG)
    bucket = gateway.catalog.get_bucket(org.id, BUCKET)  # type: ignore[union-attr]
    assert org is not None and bucket is not None
    store_rules(gateway.catalog, org.id, bucket.id, {"preset": "restic"}, updated_by="test")
    hot = ["repo/config", f"repo/keys/{RESTIC_ID}", f"repo/snapshots/{RESTIC_ID}",
           f"repo/index/{RESTIC_ID}", f"repo/locks/{RESTIC_ID}"]
    cold = [f"repo/data/3f/{RESTIC_ID}", f"repo/data/00/{'0' * 64}"]
    for key in hot + cold:
        put(gateway, key, os.urandom(2000))
    put(gateway, "big-pack-in-data", os.urandom(2 << 20))  # not a restic pack name
    report = tierer(gateway).run_pass()
    assert report.archived_objects == 2 and report.packs == 1
    for key in [*hot, "big-pack-in-data"]:
        assert gateway.objects.head_object(admin(), ORG, BUCKET, key).state == "staged", key
        read(gateway.objects, key)
    for key in cold:
        assert gateway.objects.head_object(admin(), ORG, BUCKET, key).state == "archived", key


def test_age_and_a_cold_put(gateway: Gateway) -> None:
    org = gateway.catalog.get_org(ORG)
    assert org is not None
    store_rules(gateway.catalog, org.id, None, {"transition_after": "12h"}, updated_by="t")
    put(gateway, "young", b"y" * 100)
    put(gateway, "asked-cold", b"c" * 100, storage_class="DEEP_ARCHIVE")
    report = tierer(gateway).run_pass()
    assert report.archived_objects == 1
    assert gateway.objects.head_object(admin(), ORG, BUCKET, "young").state == "staged"
    # Twelve hours later (a fake clock), the young one is due.
    later = datetime.now(UTC) + timedelta(hours=12, minutes=1)
    assert tierer(gateway, clock=lambda: later).run_pass().archived_objects == 1
    assert gateway.objects.head_object(admin(), ORG, BUCKET, "young").state == "archived"
    # A disabled policy keeps everything hot, but not what a client asked to be cold.
    store_rules(gateway.catalog, org.id, None, {"enabled": False}, updated_by="t")
    put(gateway, "hot-forever", b"h" * 100)
    put(gateway, "cold-anyway", b"d" * 100, storage_class="DEEP_ARCHIVE")
    assert tierer(gateway, clock=lambda: later).run_pass().archived_objects == 1
    assert gateway.objects.head_object(admin(), ORG, BUCKET, "hot-forever").state == "staged"
    assert gateway.catalog.get_object(
        gateway.catalog.get_bucket(org.id, BUCKET).id, "cold-anyway"  # type: ignore[union-attr]
    ).segments[0].blob.storage_class == "DEEP_ARCHIVE"  # type: ignore[union-attr]


# -- leases --------------------------------------------------------------------------------


def test_jobs_held_by_another_engine_are_left_to_it(gateway: Gateway) -> None:
    corpus = write_corpus(gateway.objects, small=10, singles=1, multipart=())
    org = gateway.catalog.get_org(ORG)
    assert org is not None
    single = gateway.catalog.get_object(
        gateway.catalog.get_bucket(org.id, BUCKET).id, "large/single-0.bin"  # type: ignore[union-attr]
    )
    assert single is not None
    pack_lease = f"tier:pack:{org.id}:cold:org"
    blob_lease = f"tier:blob:{single.segments[0].blob.id}"
    for lease in (pack_lease, blob_lease):
        assert gateway.catalog.acquire_lease(lease, "engine-b", 60)
    report = tierer(gateway).run_pass()
    assert report.archived_objects == 0 and report.skipped == 2
    assert len(blobs(gateway.backends["cold"])) == 1
    gateway.catalog.release_lease(pack_lease, "engine-b")
    gateway.catalog.release_lease(blob_lease, "engine-b")
    report = tierer(gateway).run_pass()
    assert report.archived_objects == 11 and report.skipped == 0
    assert gateway.catalog.lease_holder(pack_lease) is None  # released after the pass
    for key, expected in corpus.all.items():
        assert digest(restore_and_read(gateway, key)) == expected


# -- containers: garbage and rewrites ------------------------------------------------------


def test_deleted_members_are_garbage_and_the_last_one_removes_the_container(
    gateway: Gateway,
) -> None:
    corpus = write_corpus(gateway.objects, small=6, singles=0, multipart=())
    tierer(gateway).run_pass()
    backend = gateway.backends["cold"]
    (container_key,) = blobs(backend)
    org = gateway.catalog.get_org(ORG)
    assert org is not None
    record = gateway.catalog.get_object(
        gateway.catalog.get_bucket(org.id, BUCKET).id, sorted(corpus.small)[0]  # type: ignore[union-attr]
    )
    assert record is not None
    blob_id = record.segments[0].blob.id
    full = gateway.catalog.get_container(blob_id)
    assert full is not None and full.member_count == 6 and full.live_share == 1.0
    keys = sorted(corpus.small)
    for key in keys[:4]:
        gateway.objects.delete_object(admin(), ORG, BUCKET, key)
    shrunk = gateway.catalog.get_container(blob_id)
    assert shrunk is not None and 0 < shrunk.live_share < 0.5
    assert blobs(backend) == {container_key: "DEEP_ARCHIVE"}
    for key in keys[4:]:
        assert digest(restore_and_read(gateway, key)) == corpus.small[key]
        gateway.objects.delete_object(admin(), ORG, BUCKET, key)
    # The container is younger than 180 days: its deleted members are retained (hidden,
    # still billed) until then, and it stays.
    assert blobs(backend) == {container_key: "DEEP_ARCHIVE"}
    assert len(gateway.catalog.list_retained(record.bucket_id)) == 6
    report = purge_retained(
        gateway.catalog, gateway.objects.backends, now=datetime.now(UTC) + timedelta(days=181)
    )
    assert (report.purged, report.blobs_deleted) == (6, 1)
    assert blobs(backend) == {}
    assert gateway.catalog.get_container(blob_id) is None


def test_a_container_is_rewritten_only_past_180_days_and_below_the_live_share(
    gateway: Gateway,
) -> None:
    corpus = write_corpus(gateway.objects, small=20, small_max=20_000, singles=0, multipart=())
    start = datetime.now(UTC)
    clock = [start]
    engine = tierer(gateway, clock=lambda: clock[0])
    engine.run_pass()
    backend = gateway.backends["cold"]
    (old_key,) = blobs(backend)
    keys = sorted(corpus.small)
    kept = keys[::5]  # 4 of 20 stay
    for key in keys:
        if key not in kept:
            gateway.objects.delete_object(admin(), ORG, BUCKET, key)

    clock[0] = start + timedelta(days=100)
    report = engine.rewrite_pass()
    assert (report.rewrite_restores, report.rewrites) == (0, 0)

    # Past 180 days, but a client's restored copy is in use until day 400: left alone.
    gateway.objects.request_restore(admin(), ORG, BUCKET, kept[0], days=400)
    clock[0] = start + timedelta(days=181)
    # The deleted members were retained to day 180; purged now, they are garbage.
    purged = purge_retained(gateway.catalog, gateway.objects.backends, now=clock[0])
    assert (purged.purged, purged.blobs_deleted) == (16, 0)
    report = engine.rewrite_pass()
    assert (report.rewrite_restores, report.rewrites) == (0, 0)
    gateway.catalog.purge_expired_restores(start + timedelta(days=500))

    # Now first a Bulk copy is asked for, then the live members move.
    report = engine.rewrite_pass()
    assert report.rewrites + report.rewrite_restores >= 1
    if report.rewrites == 0:
        report = engine.rewrite_pass()
        assert report.rewrites == 1
    (new_key,) = blobs(backend)
    assert new_key != old_key
    org = gateway.catalog.get_org(ORG)
    assert org is not None
    bucket = gateway.catalog.get_bucket(org.id, BUCKET)
    assert bucket is not None
    record = gateway.catalog.get_object(bucket.id, kept[1])
    assert record is not None and record.segments[0].blob.key == new_key
    box = gateway.catalog.get_container(record.segments[0].blob.id)
    assert box is not None and box.kind == "rewrite" and box.member_count == 4
    assert box.live_share == 1.0
    for key in kept:
        view = gateway.objects.head_object(admin(), ORG, BUCKET, key)
        assert view.storage_class == "DEEP_ARCHIVE" and view.state == "archived"
    for key in kept:
        assert digest(restore_and_read(gateway, key)) == corpus.small[key]
    # Nothing is rewritten twice: the new container is young and full.
    clock[0] = start + timedelta(days=400)
    assert engine.rewrite_pass().rewrites == 0


def test_a_member_deleted_while_packing_is_left_out(gateway: Gateway, monkeypatch: Any) -> None:
    corpus = write_corpus(gateway.objects, small=5, singles=0, multipart=())
    victim = sorted(corpus.small)[2]
    engine = tierer(gateway)
    flush = engine._flush

    def delete_then_flush(group: Any, report: Any) -> None:
        gateway.objects.delete_object(admin(), ORG, BUCKET, victim)
        flush(group, report)

    monkeypatch.setattr(engine, "_flush", delete_then_flush)
    report = engine.run_pass()
    assert report.failures == 0 and report.archived_objects == 4
    assert len(blobs(gateway.backends["cold"])) == 1
    org = gateway.catalog.get_org(ORG)
    assert org is not None
    record = gateway.catalog.get_object(
        gateway.catalog.get_bucket(org.id, BUCKET).id, sorted(corpus.small)[0]  # type: ignore[union-attr]
    )
    assert record is not None
    box = gateway.catalog.get_container(record.segments[0].blob.id)
    assert box is not None and box.member_count == 4
    assert gateway.catalog.tiering_counts().staged_blobs == 0
    for other in sorted(corpus.small):
        if other != victim:
            assert digest(restore_and_read(gateway, other)) == corpus.small[other]


# -- restores ------------------------------------------------------------------------------


@pytest.mark.parametrize("gateway", [1.5], indirect=True)
def test_restore_polls_back_off_until_the_copy_is_readable(gateway: Gateway) -> None:
    data = os.urandom(3 << 20)
    put(gateway, "big", data)
    tierer(gateway).run_pass()
    ticket = gateway.objects.request_restore(admin(), ORG, BUCKET, "big", tier="Bulk")
    assert ticket.status == "started" and ticket.expires_at is None
    now = datetime.now(UTC)
    first = poll_restores(gateway.catalog, gateway.objects.backends, now=now, min_delay=5)
    assert (first.polled, len(first.completed)) == (1, 0)
    assert gateway.catalog.due_restore_polls(now + timedelta(seconds=4)) == []
    assert len(gateway.catalog.due_restore_polls(now + timedelta(seconds=6))) == 1
    threading.Event().wait(1.6)
    later = poll_restores(
        gateway.catalog, gateway.objects.backends, now=now + timedelta(seconds=6)
    )
    assert len(later.completed) == 1
    view = gateway.objects.head_object(admin(), ORG, BUCKET, "big")
    assert view.state == "restored" and view.restore_expiry is not None
    assert read(gateway.objects, "big") == data


def test_the_restore_budget_refuses_beyond_the_month(gateway: Gateway) -> None:
    for name in ("one", "two"):
        put(gateway, name, os.urandom(3 << 20))
    tierer(gateway).run_pass()
    org = gateway.catalog.get_org(ORG)
    assert org is not None
    gateway.catalog.update_org_settings(org.id, {"restore_budget_usd": "0.0002"})
    ticket = gateway.objects.request_restore(admin(), ORG, BUCKET, "one")
    assert ticket.quote_usd is not None and Decimal(0) < ticket.quote_usd < Decimal("0.0002")
    spent = gateway.catalog.restore_spend(org.id, datetime.now(UTC) - timedelta(days=1))
    assert spent == ticket.quote_usd
    with pytest.raises(RestoreBudgetExceeded) as refused:
        gateway.objects.request_restore(admin(), ORG, BUCKET, "two")
    assert refused.value.code == "RestoreBudgetExceeded" and refused.value.http_status == 403
    assert "monthly restore budget of 0.0002 USD" in str(refused.value)
    assert gateway.objects.head_object(admin(), ORG, BUCKET, "two").state == "archived"
    assert gateway.catalog.restore_spend(org.id, datetime.now(UTC) - timedelta(days=1)) == spent
    gateway.catalog.update_org_settings(org.id, {"restore_budget_usd": None})
    assert gateway.objects.request_restore(admin(), ORG, BUCKET, "two").status == "started"


class _Receiver(http.server.BaseHTTPRequestHandler):
    answers: list[int]
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers.items()), body))
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_the_webhook_announces_each_completion_signed_and_retried(tmp_path: Path) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"answers": [503], "received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        path = write_config(
            tmp_path,
            backend={"type": "localfs", "root": str(tmp_path / "blobs"), "restore_delay": 0},
            overrides={
                "tiering": {
                    "restore_webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
                    "restore_webhook_secret": "s3cret",
                }
            },
        )
        config = config_of(path)
        with Gateway.open(config) as gw:
            gw.objects.ensure_org(ORG)
            gw.objects.create_bucket(admin(), ORG, BUCKET)
            put(gw, "doc.txt", b"hello" * 100)
            tierer(gw).run_pass()
            gw.objects.request_restore(admin(), ORG, BUCKET, "doc.txt", days=3)
            engine = Engine(gw, [restores_task(config)])
            engine.run_once_blocking()
            assert len(received) == 2  # a 503, then a delivery
            headers, body = received[-1]
            assert verify_signature(b"s3cret", body, headers[SIGNATURE_HEADER])
            assert not verify_signature(b"wrong", body, headers[SIGNATURE_HEADER])
            message = json.loads(body)
            assert message["event"] == "restore.completed" and message["org"] == ORG
            assert message["objects"] == [{"bucket": BUCKET, "key": "doc.txt"}]
            assert message["days"] == 3 and message["expires_at"] and message["quote_usd"]
            # A retry is the same message: same body, signature and delivery id.
            assert received[0][1] == body
            assert received[0][0]["X-CoolStorage-Delivery"] == headers["X-CoolStorage-Delivery"]
            engine.run_once_blocking()
            assert len(received) == 2  # announced once
    finally:
        server.shutdown()
        server.server_close()


# -- commands ------------------------------------------------------------------------------


def test_tier_archive_status_and_restore_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, overrides={"tiering": {"transition_after": 43200}})
    with Gateway.open(config_of(path)) as gw:
        gw.objects.ensure_org(ORG)
        gw.objects.create_bucket(admin(), ORG, BUCKET)
        for key in ("docs/a", "docs/b", "other/c"):
            put(gw, key, key.encode() * 1000)
    config = ["--config", str(path)]
    # Young objects: a normal pass archives nothing; `tier archive` ignores the age.
    assert main(["tier", "run", "--once", *config]) == 0
    assert "tiering: 0 objects archived" in capsys.readouterr().out
    assert main(["tier", "archive", f"{BUCKET}/docs/", *config]) == 0
    assert "2 objects archived" in capsys.readouterr().out
    assert main(["tier", "status", "--json", *config]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["objects_by_class"]["DEEP_ARCHIVE"]["objects"] == 2
    assert status["objects_by_class"]["STANDARD"]["objects"] == 1
    assert status["containers"] == 1 and status["staged_blobs"] == 1
    assert main(["tier", "status", *config]) == 0
    assert "containers: 1" in capsys.readouterr().out
    assert main(["restore", f"{BUCKET}/docs/a", "--org", ORG, "--tier", "Bulk", *config]) == 0
    assert "restore of backups/docs/a started (Bulk); quote 0.0" in capsys.readouterr().out
    assert main(["restore", f"{BUCKET}/other/c", *config]) == 1
    assert "not archived" in capsys.readouterr().err
    assert main(["tier", "archive", "nope", *config]) == 1
    with Gateway.open(config_of(path)) as gw:
        with pytest.raises(ObjectArchived):
            gw.objects.get_object(admin(), ORG, BUCKET, "docs/a")
        assert sweep_orphans(gw.catalog, gw.objects.backends, datetime.now(UTC)) == 0


def test_job_leases_are_renewed_while_a_long_job_runs(gateway: Gateway) -> None:
    import trio

    from tiering.engine import run_holding_leases
    from tiering.transitions import Leases

    leases = Leases(gateway.catalog, "engine-a", ttl=1.0)
    holders: list[object] = []

    def long_job(*, stop: threading.Event) -> str:
        assert leases.acquire("tier:test-job")
        for _ in range(5):  # 2.5 s: well past the 1 s lifetime without renewal
            threading.Event().wait(0.5)
            holders.append(gateway.catalog.lease_holder("tier:test-job"))
        assert not stop.is_set()
        leases.release("tier:test-job")
        return "done"

    engine = Engine(gateway, [])
    assert trio.run(run_holding_leases, engine, leases, long_job) == "done"
    assert all(h is not None and h[0] == "engine-a" for h in holders), holders  # type: ignore[index]
    assert gateway.catalog.lease_holder("tier:test-job") is None


def test_the_sweep_task_removes_backend_leftovers_at_most_hourly(gateway: Gateway) -> None:
    """A data file a crash left behind goes with the sweep (with an orphan age of 0 here),
    and the tree is walked for such files once an hour, not at every sweep."""
    backend = gateway.backends["cold"]
    assert isinstance(backend, LocalFSBackend)
    debris = backend.root / "crashed~d0123456789abcdef"
    debris.write_bytes(b"half a blob")
    engine = Engine(gateway, [orphan_sweep_task(interval=300, orphan_age=0)])
    time.sleep(0.01)  # the file's inode change time must lie before the cutoff
    engine.run_once_blocking()
    assert not debris.exists()
    debris.write_bytes(b"another crash")
    time.sleep(0.01)
    engine.run_once_blocking()
    assert debris.exists()  # looked for again only an hour after the last look
