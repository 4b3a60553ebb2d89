"""A restic repository keeps working after its ``data/`` went cold.

restic talks to an in-process gateway's S3 endpoint (tests/fixtures/s3gateway.py); the
bucket has the ``restic`` tiering preset, so one ``coolstorage tier run --once`` archives
the pack files under ``data/`` and leaves ``config``, ``keys/``, ``snapshots/`` and
``index/`` hot. On the host whose cache is warm, ``snapshots``, ``check --with-cache`` and a
new ``backup`` still work (restic reads tree blobs from its cache); ``restore`` needs the
data packs and works once they are restored, which is also what a second host (with no
cache) must do first (README.md, "Tiering and restores")."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.fixtures.s3gateway import s3_gateway
from tests.integration.tiering_support import blobs, tier_once, write_config
from tiering.policy import store_rules

BUCKET = "restic-repo"
#: The default localfs backend of the in-process gateway takes this long to restore.
RESTORE_DELAY = 5


def restic_binary() -> str:
    path = shutil.which("restic")
    if path is None:
        pytest.fail("restic not found: install it: apt-get install restic", pytrace=False)
    return path


def run(cmd: list[str], env: Mapping[str, str], *, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, timeout=300, check=False)
    if ok:
        assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def make_tree(root: Path) -> Path:
    for i in range(150):
        folder = root / f"d{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.txt").write_bytes(os.urandom(i * 53 % 9000))
    (root / "big.bin").write_bytes(os.urandom(6 << 20))
    return root


def diff(a: Path, b: Path) -> None:
    result = subprocess.run(["diff", "-r", str(a), str(b)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_restic_after_data_is_archived(tmp_path: Path) -> None:
    restic = restic_binary()
    # `tier run --once` in its own process, over the same data directory as the gateway.
    config_path = write_config(tmp_path, overrides={"backends": None, "storage": None})
    with s3_gateway(tmp_path, overrides={"tiering": {"transition_after": 0}}) as s3:
        env = s3.env()
        env.update({
            "RESTIC_PASSWORD": "correct horse battery staple",
            "RESTIC_REPOSITORY": f"s3:{s3.url}/{BUCKET}",
            "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
        })
        tree = make_tree(tmp_path / "data")
        run([restic, "init"], env)
        catalog = s3.gateway.catalog
        org = catalog.get_org(s3.org)
        assert org is not None
        bucket = catalog.get_bucket(org.id, BUCKET)
        assert bucket is not None
        store_rules(catalog, org.id, bucket.id, {"preset": "restic"}, updated_by="test")
        run([restic, "backup", str(tree)], env)

        done = tier_once(config_path)
        assert done.returncode == 0, done.stdout + done.stderr
        client = s3.client()
        classes: dict[str, str] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                classes[item["Key"]] = item.get("StorageClass", "STANDARD")
        data = {k for k in classes if k.startswith("data/")}
        assert data and {classes[k] for k in data} == {"DEEP_ARCHIVE"}
        others = set(classes) - data
        assert {k.split("/")[0] for k in others} >= {"config", "keys", "snapshots", "index"}
        assert {classes[k] for k in others} == {"STANDARD"}
        assert set(blobs(s3.gateway.backends["local"]).values()) == {"DEEP_ARCHIVE"}

        # The host with a warm cache keeps working.
        snapshots = run([restic, "snapshots", "--json"], env).stdout
        assert snapshots.count('"id"') == 1
        run([restic, "check", "--with-cache"], env)
        (tree / "new.txt").write_bytes(os.urandom(4000))
        run([restic, "backup", str(tree)], env)
        assert run([restic, "snapshots", "--json"], env).stdout.count('"id"') == 2

        # Restoring files needs the data packs back: they answer InvalidObjectState until
        # restored. (Another pass archives the pack the new backup wrote.)
        assert tier_once(config_path).returncode == 0
        data = {
            item["Key"]
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix="data/"
            )
            for item in page.get("Contents", [])
        }
        with pytest.raises(ClientError) as refused:
            client.get_object(Bucket=BUCKET, Key=sorted(data)[0])
        assert refused.value.response["Error"]["Code"] == "InvalidObjectState"
        for key in sorted(data):
            try:
                client.restore_object(
                    Bucket=BUCKET, Key=key,
                    RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Bulk"}},
                )
            except ClientError as error:  # packs sharing a container share its restore
                assert error.response["Error"]["Code"] == "RestoreAlreadyInProgress"
        time.sleep(RESTORE_DELAY + 0.3)
        polled = tier_once(config_path)
        assert polled.returncode == 0, polled.stdout + polled.stderr
        run([restic, "restore", "latest", "--target", str(tmp_path / "restored")], env)
        diff(tree, tmp_path / "restored" / tree.relative_to("/"))
        run([restic, "check", "--read-data"], env)
