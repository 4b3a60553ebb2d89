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
    # The default pack threshold (16 MiB): the 3 singles are above it, and 2 mid-size
    # objects (1.5-3 MiB, hot blobs in the backend) are packed with the small ones.
    config_path = write_config(
        tmp_path, backend=backend_options, overrides={"tiering": {"pack_threshold": 16 * MiB}}
    )
    with Gateway.open(config_of(config_path)) as gateway:
        svc = gateway.objects
        backend = gateway.backends["cold"]
        corpus = write_corpus(svc, single_size=(16 * MiB + 1, 17 * MiB), mids=2)
        assert gateway.catalog.tiering_counts().staged_blobs == 1000 + 1  # + a last part
        # Singles, mid-size objects and multipart parts over 1 MiB.
        assert len(blobs(backend)) == 3 + 2 + 2 + 2

        done = tier_once(config_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1007 objects archived" in done.stdout

        # At most 5 large blobs (3 copied singles, 2 joined multipart objects) plus 2 packs.
        stored = blobs(backend)
        assert set(stored.values()) == {"DEEP_ARCHIVE"}
        assert sum(k.startswith("blobs/") for k in stored) == 3
        assert sum(k.startswith("containers/") for k in stored) == 4
        counts = gateway.catalog.tiering_counts()
        assert counts.staged_blobs == 0 and counts.hot_blobs == 0
        assert counts.objects_by_class["DEEP_ARCHIVE"][0] == 1007
        mid_key = sorted(k for k in corpus.small if k.startswith("mid/"))[0]
        mid = gateway.catalog.get_object(
            gateway.catalog.get_bucket(gateway.catalog.get_org(ORG).id, BUCKET).id,  # type: ignore[union-attr]
            mid_key,
        )
        assert mid is not None and mid.segments[0].blob.key.startswith("containers/")
        assert counts.containers == 4 and counts.container_live_bytes == counts.container_members_bytes

        small_key = sorted(k for k in corpus.small if k.startswith("small/"))[500]
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
        mids = {k: v for k, v in corpus.small.items() if k.startswith("mid/")}
        check = {
            **dict(sorted(corpus.small.items())[::step]),
            **mids,
            **corpus.single,
            **corpus.multipart,
        }
        for key, expected in sorted(check.items()):
            assert digest(read(svc, key)) == expected, key

        # A restored copy is read in place: another pass moves nothing, copies nothing.
        again = tier_once(config_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "tiering: nothing to do" in again.stdout or "tiering: 0 objects" in again.stdout
        assert blobs(backend) == stored


def test_through_the_s3_endpoint_with_boto3(tmp_path: Path) -> None:
    """The same life through the S3 endpoint: boto3 writes (two objects multipart), one
    `tier run --once` archives, HEAD says DEEP_ARCHIVE, GET answers InvalidObjectState,
    RestoreObject is accepted with a quote, and the bytes come back after the restore."""
    import hashlib
    import os
    import random

    from botocore.exceptions import ClientError

    from tests.fixtures.s3gateway import s3_gateway

    tiering = {"transition_after": 0, "container_target_size": 16 << 20}
    # The gateway's default backend: localfs under data_dir, with its 5 s restore delay.
    config_path = write_config(tmp_path, overrides={"backends": None, "storage": None})
    with s3_gateway(tmp_path, overrides={"tiering": tiering}) as s3:
        client = s3.client()
        client.create_bucket(Bucket="tiered")
        rng = random.Random(3)
        sums: dict[str, str] = {}
        for i in range(1000):
            data = os.urandom(rng.randint(1, 40_000))
            key = f"small/{i:04d}"
            client.put_object(Bucket="tiered", Key=key, Body=data)
            sums[key] = hashlib.sha256(data).hexdigest()
        for i in range(3):
            data = os.urandom(2 << 20)
            client.put_object(Bucket="tiered", Key=f"large/{i}", Body=data)
            sums[f"large/{i}"] = hashlib.sha256(data).hexdigest()
        for i in range(2):
            key = f"multipart/{i}"
            upload = client.create_multipart_upload(Bucket="tiered", Key=key)["UploadId"]
            parts, whole = [], hashlib.sha256()
            for number, size in enumerate((5 << 20, 300_000 + i * (1 << 20)), 1):
                data = os.urandom(size)
                whole.update(data)
                etag = client.upload_part(
                    Bucket="tiered", Key=key, UploadId=upload, PartNumber=number, Body=data
                )["ETag"]
                parts.append({"PartNumber": number, "ETag": etag})
            client.complete_multipart_upload(
                Bucket="tiered", Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
            )
            sums[key] = whole.hexdigest()

        done = tier_once(config_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1005 objects archived" in done.stdout
        stored = blobs(s3.gateway.backends["local"])
        assert len(stored) == 3 + 2 + 2 and set(stored.values()) == {"DEEP_ARCHIVE"}

        chosen = ["small/0500", "multipart/0", "large/1"]
        for key in chosen:
            head = client.head_object(Bucket="tiered", Key=key)
            assert head["StorageClass"] == "DEEP_ARCHIVE"
            with pytest.raises(ClientError) as caught:
                client.get_object(Bucket="tiered", Key=key)
            assert caught.value.response["Error"]["Code"] == "InvalidObjectState"
        listed = client.list_objects_v2(Bucket="tiered", Prefix="small/00")["Contents"]
        assert {o["StorageClass"] for o in listed} == {"DEEP_ARCHIVE"}
        for key in chosen:
            answer = client.restore_object(
                Bucket="tiered", Key=key,
                RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Standard"}},
            )
            assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
            quote = answer["ResponseMetadata"]["HTTPHeaders"]["x-coolstorage-restore-quote-usd"]
            assert float(quote) > 0
        assert 'ongoing-request="true"' in client.head_object(Bucket="tiered", Key="small/0500")[
            "Restore"
        ]
        time.sleep(5.2)
        polled = tier_once(config_path)
        assert "3 completed" in polled.stdout, polled.stdout + polled.stderr
        for key in [*chosen, "small/0001"]:  # small/0001 shares small/0500's pack
            head = client.head_object(Bucket="tiered", Key=key)
            assert 'ongoing-request="false"' in head["Restore"]
            body = client.get_object(Bucket="tiered", Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == sums[key], key
