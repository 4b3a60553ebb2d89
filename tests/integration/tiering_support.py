"""Helpers of the tiering tests: a gateway config in a directory, a corpus of small, large
and multipart objects written through the ObjectService, and checks of what came back."""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog.records import ROLE_ADMIN
from gateway.config import Config, load_config
from gateway.multipart import CompletedPartSpec
from gateway.objects import ObjectService
from gateway.principals import Principal
from tests.fixtures.servers import deep_merge, run_coolstorage, to_toml
from tiering.backends.base import Backend

ORG = "acme"
BUCKET = "backups"
MiB = 1 << 20


def write_config(
    directory: Path,
    *,
    backend: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """A config with one backend ``cold`` (localfs with a 1 s restore delay unless given),
    tiering due at once, 16 MiB containers and short leases; listeners off.

    ``pack_threshold`` is 1 MiB here (the default is 16 MiB), so the corpus's 1.5-3 MiB
    singles are copied cold one by one, as the engine, crash and interop tests expect;
    tests of mid-size packing override it."""
    var = directory / "var"
    config: dict[str, Any] = {
        "server": {
            "data_dir": str(var),
            "s3_listen": "",
            "webdav_listen": "",
            "admin_listen": "",
        },
        "storage": {"default_backend": "cold"},
        "backends": {
            "cold": dict(
                backend
                or {"type": "localfs", "root": str(var / "blobs"), "restore_delay": 1}
            )
        },
        "tiering": {
            "transition_after": 0,
            "container_target_size": 16 * MiB,
            "pack_threshold": MiB,
            "lease_ttl": 3,
            "restore_poll_interval": 0.2,
        },
        "engine": {"orphan_age": 3600},
        "log": {"level": "warning"},
    }
    path = directory / "coolstorage.toml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(to_toml(deep_merge(config, overrides or {})))
    return path


def config_of(path: Path) -> Config:
    return load_config(path, env={})


def admin(org: str = ORG) -> Principal:
    return Principal(name="tester", user_id=None, roles={org: ROLE_ADMIN})


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read(svc: ObjectService, key: str, *, org: str = ORG, bucket: str = BUCKET) -> bytes:
    return b"".join(svc.get_object(admin(org), org, bucket, key).body)


def tier_once(config_path: Path, *, env: Mapping[str, str] | None = None) -> Any:
    """``coolstorage tier run --once`` in its own process."""
    return run_coolstorage("tier", "run", "--once", "--config", str(config_path), env=env,
                           timeout=300)


def blobs(backend: Backend) -> dict[str, str]:
    """Key -> storage class of every blob but the org identity blobs (``keys/``)."""
    return {b.key: b.storage_class for b in backend.list("") if not b.key.startswith("keys/")}


@dataclass
class Corpus:
    """What was written: key -> SHA-256 of the plaintext."""

    small: dict[str, str] = field(default_factory=dict)
    single: dict[str, str] = field(default_factory=dict)
    multipart: dict[str, str] = field(default_factory=dict)

    @property
    def all(self) -> dict[str, str]:
        return {**self.small, **self.single, **self.multipart}


def write_corpus(
    svc: ObjectService,
    *,
    small: int = 1000,
    small_max: int = 48 * 1024,
    singles: int = 3,
    single_size: tuple[int, int] = (3 * MiB // 2, 3 * MiB),
    mids: int = 0,
    multipart: tuple[tuple[int, ...], ...] = ((5 * MiB, 5 * MiB, 200 * 1024), (5 * MiB, MiB + 77)),
    seed: int = 7,
    org: str = ORG,
    bucket: str = BUCKET,
) -> Corpus:
    """Write ``small`` small objects (1 B to ``small_max``), ``singles`` objects of
    ``single_size`` bytes (1.5-3 MiB), ``mids`` objects of 1.5-3 MiB (kept with the small
    ones in :attr:`Corpus.small`, keys ``mid/``) and one multipart object per entry of
    ``multipart`` (its part sizes)."""
    rng = random.Random(seed)
    who = admin(org)
    svc.ensure_org(org)
    if svc.catalog.get_bucket(svc.catalog.get_org(org).id, bucket) is None:  # type: ignore[union-attr]
        svc.create_bucket(who, org, bucket)
    corpus = Corpus()
    for i in range(small):
        data = os.urandom(rng.randint(1, small_max))
        key = f"small/{i // 100:02d}/file-{i:04d}.bin"
        svc.put_object(who, org, bucket, key, io.BytesIO(data), size=len(data))
        corpus.small[key] = digest(data)
    for i in range(mids):
        data = os.urandom(rng.randint(3 * MiB // 2, 3 * MiB))
        key = f"mid/file-{i}.bin"
        svc.put_object(who, org, bucket, key, io.BytesIO(data), size=len(data))
        corpus.small[key] = digest(data)
    for i in range(singles):
        data = os.urandom(rng.randint(*single_size))
        key = f"large/single-{i}.bin"
        svc.put_object(who, org, bucket, key, io.BytesIO(data), size=len(data))
        corpus.single[key] = digest(data)
    for i, sizes in enumerate(multipart):
        key = f"large/multipart-{i}.bin"
        upload = svc.create_multipart_upload(who, org, bucket, key)
        whole = hashlib.sha256()
        specs = []
        for number, size in enumerate(sizes, 1):
            data = os.urandom(size)
            whole.update(data)
            part = svc.upload_part(
                who, org, bucket, key, upload.upload_id, number, io.BytesIO(data), size=size
            )
            specs.append(CompletedPartSpec(number, part.md5))
        svc.complete_multipart_upload(who, org, bucket, key, upload.upload_id, specs)
        corpus.multipart[key] = whole.hexdigest()
    return corpus
