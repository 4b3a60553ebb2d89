"""What a year of backups costs under the default tiering policy, next to the floor.

Run: ``.venv/bin/python bench/tiering_cost.py`` (a few seconds). A synthetic backup corpus
of 100,000 files with log-normal sizes (median 16 KiB, sigma 2; seeded) is written once,
kept 12 months, restored once in full with Bulk and downloaded. The cost model
(tiering/cost.py, AWS us-east-1 list prices) counts every line: staging, PUTs (each part of
a multipart upload is one), copies to Deep Archive, storage, the 40 KiB overhead per
archived object, retrieval per GB and per request, the restored copies' day, a GET per
file downloaded, and egress.

The one figure: the total under the engine's default policy (the ``[tiering]`` defaults of
gateway/config.py: staging up to ``transition_after``, objects of up to
``small_object_threshold`` staged in the catalog, objects of up to ``pack_threshold`` PUT
to STANDARD and read back once, all of them packed into containers of about
``container_target_size`` written straight to Deep Archive as one PutObject each (the s3
backend's default ``single_put_max``; its ``part_size`` beyond), larger objects copied to
Deep Archive one by one; one restore per container or object), as a ratio to the floor (the same bytes in Deep Archive for 12 months, one Bulk
retrieval and the egress, no overheads). Target: at most 1.10. Beside it, the same ratio
for one object per file with 7 days of staging and a lifecycle transition each.

Stored sizes are measured, not guessed: a few objects and a container are sealed with the
real sealer (random, incompressible data, as backups mostly are) to learn the per-object
sealing overhead and the container index bytes per member.

A table of other thresholds and part sizes follows, to show what the target needs. Exits
1 if the target is missed.
"""

from __future__ import annotations

import argparse
import inspect
import io
import math
import os
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import TieringConfig
from gateway.sealing import SealingReader, SegmentMetadata, generate_identity
from gateway.sealing.container import ContainerWriter
from tiering.backends.s3 import S3Backend
from tiering.cost import GB, KiB, MiB, Policy, Prices, Scenario, ScenarioResult

TARGET = Decimal("1.10")
MONTH_DAYS = 30


def corpus(files: int, median: int, sigma: float, seed: int) -> list[int]:
    """``files`` log-normal sizes in bytes (at least 1)."""
    rng = random.Random(seed)
    mu = math.log(median)
    return [max(1, round(rng.lognormvariate(mu, sigma))) for _ in range(files)]


@dataclass(frozen=True)
class Overheads:
    """Bytes sealing adds: per object ``fixed + per_byte * size``; per container member
    ``index`` bytes of the sealed index (footer included)."""

    fixed: float
    per_byte: float
    index: float

    def sealed(self, size: int) -> int:
        return size + round(self.fixed + self.per_byte * size)


def _seal(data: bytes, key: str, recipient: str) -> tuple[bytes, object, SegmentMetadata]:
    metadata = SegmentMetadata(
        org="acme-backups",
        bucket="laptop-backups",
        key=key,
        content_type="application/octet-stream",
        mtime=1_780_000_000.0,
    )
    reader = SealingReader(io.BytesIO(data), metadata, [recipient])
    sealed = reader.read()
    return sealed, reader.result, metadata


def measure_overheads() -> Overheads:
    """Seal random objects of 1 KiB and 16 MiB, and pack 200 sealed 16 KiB objects."""
    _, recipient = generate_identity()
    key = "home/alice/projects/cool-storage/docs/2026/notes/meeting-0001.md"
    small, big = 1 * KiB, 16 * MiB
    small_over = len(_seal(os.urandom(small), key, recipient)[0]) - small
    big_over = len(_seal(os.urandom(big), key, recipient)[0]) - big
    per_byte = (big_over - small_over) / (big - small)
    fixed = small_over - per_byte * small
    members = [_seal(os.urandom(16 * KiB), f"{key[:-7]}{i:04d}.md", recipient) for i in range(200)]
    writer = ContainerWriter(
        ((io.BytesIO(sealed), metadata, result) for sealed, result, metadata in members),  # type: ignore[misc]
        [recipient],
    )
    size = 0
    while chunk := writer.read(1 << 20):
        size += len(chunk)
    index = (size - sum(len(m[0]) for m in members)) / len(members)
    return Overheads(fixed=fixed, per_byte=per_byte, index=index)


def stored_sizes(sizes: list[int], policy: Policy, over: Overheads) -> list[int]:
    """Each file's bytes in the backend: sealed, plus its index entry when packed."""
    packed = max(policy.small_object_threshold, policy.pack_threshold)
    return [over.sealed(s) + (round(over.index) if s < packed else 0) for s in sizes]


def run(sizes: list[int], policy: Policy, over: Overheads, days: int) -> ScenarioResult:
    scenario = Scenario(
        stored_sizes(sizes, policy, over),
        prices=Prices(),
        horizon_days=days,
        restore_tier="Bulk",
        restore_days=1,
        floor_bytes=sum(sizes),
    )
    return scenario.run(policy)


def usd(value: Decimal) -> str:
    return f"{value:.4f}"


def print_table(results: dict[str, ScenarioResult]) -> None:
    names = list(results)
    # Every result's lines, each new one placed before its successor in that result.
    labels: list[str] = []
    for result in results.values():
        following: str | None = None
        for label, _ in reversed(result.quote.lines):
            if label not in labels:
                labels.insert(labels.index(following) if following else len(labels), label)
            following = label
    width = max(len(label) for label in labels) + 2
    print(f"{'line (USD)':<{width}}" + "".join(f"{n:>22}" for n in names))
    for label in labels:
        row = [results[n].quote.line(label) for n in names]
        if all(v == 0 for v in row):
            continue
        print(f"{label:<{width}}" + "".join(f"{usd(v):>22}" for v in row))
    print(f"{'total':<{width}}" + "".join(f"{usd(results[n].quote.total):>22}" for n in names))
    print(f"{'floor':<{width}}" + "".join(f"{usd(results[n].floor.total):>22}" for n in names))
    for label, _ in results[names[0]].floor.lines:
        row = [results[n].floor.line(label) for n in names]
        print(f"{'  ' + label:<{width}}" + "".join(f"{usd(v):>22}" for v in row))
    print(
        f"{'blobs in Deep Archive':<{width}}" + "".join(f"{results[n].blobs:>22,}" for n in names)
    )
    print(f"{'ratio to the floor':<{width}}" + "".join(f"{results[n].ratio:>22.3f}" for n in names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--median", type=int, default=16 * KiB, help="median size, bytes")
    parser.add_argument("--sigma", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args(argv)

    days = args.months * MONTH_DAYS
    sizes = corpus(args.files, args.median, args.sigma, args.seed)
    defaults = TieringConfig()
    s3_defaults = inspect.signature(S3Backend.__init__).parameters
    part_size: int = s3_defaults["part_size"].default
    single_put_max: int = s3_defaults["single_put_max"].default
    policy = Policy.from_tiering(defaults, part_size=part_size, single_put_max=single_put_max)
    per_file = Policy(
        staging_days=Decimal(7),
        small_object_threshold=0,
        transition="transition",
        part_size=part_size,
        label="one object per file, 7 days",
    )
    over = measure_overheads()

    small = [s for s in sizes if s < policy.small_object_threshold]
    mid = [s for s in sizes if policy.small_object_threshold <= s < policy.pack_threshold]
    total = sum(sizes)
    print(
        f"corpus: {len(sizes):,} files, {total / GB:.2f} GB (median {args.median // KiB} KiB, "
        f"sigma {args.sigma:g}, seed {args.seed}), largest {max(sizes) / MiB:.1f} MiB; "
        f"{len(small):,} files ({sum(small) / total:.0%} of the bytes) of up to "
        f"{defaults.small_object_threshold // KiB} KiB, {len(mid):,} more "
        f"({sum(mid) / total:.0%}) of up to {defaults.pack_threshold // MiB} MiB"
    )
    print(
        f"sealing (measured): {over.fixed:.0f} bytes + {over.per_byte:.3%} per object, "
        f"{over.index:.0f} index bytes per container member"
    )
    print(
        f"default policy ([tiering] defaults): staging {defaults.transition_after / 3600:g} h, "
        f"catalog staging up to {defaults.small_object_threshold // KiB} KiB, packing up to "
        f"{defaults.pack_threshold // MiB} MiB, containers of "
        f"{defaults.container_target_size // MiB} MiB in one PUT each (s3 single_put_max "
        f"{single_put_max // MiB} MiB, else {part_size // MiB} MiB parts), larger objects "
        f"copied; "
        f"kept {args.months} months, one Bulk restore (copies kept 1 day) and download"
    )
    print()
    results = {
        "default policy": run(sizes, policy, over, days),
        "one object per file": run(sizes, per_file, over, days),
    }
    print_table(results)
    print()

    print("what the target needs: ratio to the floor under the default staging, by the size")
    print("below which objects are staged and packed, and by how containers are uploaded")
    parts: dict[str, tuple[int, int | None]] = {
        "8 MiB parts": (8 * MiB, None),
        "64 MiB parts": (64 * MiB, None),
        "single PUT": (part_size, single_put_max),
    }
    print(f"{'packed up to':<14}" + "".join(f"{name:>16}" for name in parts))
    for threshold in (1 * MiB, 2 * MiB, 4 * MiB, 8 * MiB, 16 * MiB):
        row = []
        for size, single in parts.values():
            variant = Policy(
                staging_days=policy.staging_days,
                small_object_threshold=policy.small_object_threshold,
                pack_threshold=threshold + 1,
                container_target=policy.container_target,
                part_size=size,
                single_put_max=single,
            )
            row.append(run(sizes, variant, over, days).ratio)
        print(f"{threshold // MiB:>4} MiB      " + "".join(f"{r:>16.3f}" for r in row))
    print()

    ratio = results["default policy"].ratio
    ok = ratio <= TARGET
    print(
        f"tiering cost: {ratio:.3f} x the floor under the default policy (target <= {TARGET}), "
        f"{results['one object per file'].ratio:.2f} x for one object per file with 7 days "
        f"of staging: {'ok' if ok else 'TARGET MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
