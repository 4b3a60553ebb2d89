"""Recovery without the gateway: only the org identity, the blobs and docs/FORMAT.md.

The gateway writes blobs as a backend would hold them (a single-segment object, a multipart
object as several part segments, and a container of small objects); then the catalog is
"thrown away": nothing of what sealing returned is used. The object is found by its name in
the M frames (or the container index) and restored by the shell functions that
docs/FORMAT.md publishes, which use only ``age``, ``zstd`` and coreutils.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import BinaryIO

import pytest

from gateway.sealing import SealingReader, SealResult, SegmentMetadata, generate_identity
from gateway.sealing.container import ContainerWriter

FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"
ORG = "acme"


def require(name: str) -> None:
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed; install it with: apt-get install {name}")


def recovery_script() -> str:
    text = FORMAT_MD.read_text()
    match = re.search(
        r"<!-- recovery-script:start -->\n```bash\n(.*?)```\n<!-- recovery-script:end -->",
        text,
        re.S,
    )
    assert match, "docs/FORMAT.md lost its recovery script"
    return match.group(1)


def seal(data: bytes, meta: SegmentMetadata, recipient: str) -> tuple[bytes, SealResult]:
    reader = SealingReader(io.BytesIO(data), meta, [recipient], block_size=64 * 1024)
    return reader.read(), reader.result


@pytest.fixture(scope="module")
def backend(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, dict[tuple[str, str], bytes]]:
    """A directory of blobs as the gateway leaves them, and the org's key file."""
    require("age")
    require("zstd")
    identity, recipient = generate_identity()
    _, other_recipient = generate_identity()
    root = tmp_path_factory.mktemp("recovery")
    blobs = root / "blobs"
    (blobs / "seg").mkdir(parents=True)
    (blobs / "pack").mkdir()
    key = root / "key.txt"
    key.write_text(f"# org {ORG}\n{identity}\n")
    objects: dict[tuple[str, str], bytes] = {}

    def put(data: bytes, meta: SegmentMetadata, to: str = recipient) -> tuple[bytes, SealResult]:
        sealed, result = seal(data, meta, to)
        (blobs / "seg" / os.urandom(8).hex()).write_bytes(sealed)
        return sealed, result

    # A simple PUT, plus an unrelated object and a blob of another org.
    objects["photos", "2024/cat.jpg"] = os.urandom(150_000) + b"meow" * 1000
    put(
        objects["photos", "2024/cat.jpg"],
        SegmentMetadata(ORG, "photos", "2024/cat.jpg", content_type="image/jpeg"),
    )
    put(b"decoy", SegmentMetadata(ORG, "photos", "2024/cat.jpg.bak"))
    put(b"not ours", SegmentMetadata("other-org", "photos", "x"), other_recipient)
    # A multipart upload: three parts, written out of order.
    parts = [os.urandom(100_000 + i) + b"part %d" % i for i in range(3)]
    objects["backups", "disk.img"] = b"".join(parts)
    for number in (2, 3, 1):
        put(
            parts[number - 1],
            SegmentMetadata(ORG, "backups", "disk.img", part_number=number, upload_id="u-42"),
        )
    # A container of small objects.
    members: list[tuple[BinaryIO, SegmentMetadata, SealResult]] = []
    for i in range(5):
        data = os.urandom(3000 * i) + b"small object %d" % i
        meta = SegmentMetadata(ORG, "docs", f"notes/{i}.txt", content_type="text/plain")
        objects["docs", f"notes/{i}.txt"] = data
        sealed, result = seal(data, meta, recipient)
        members.append((io.BytesIO(sealed), meta, result))
    writer = ContainerWriter(members, [recipient])
    (blobs / "pack" / "c-0001").write_bytes(writer.read())
    return blobs, key, objects


def restore(blobs: Path, key: Path, bucket: str, name: str) -> bytes:
    script = recovery_script() + '\nrestore_object "$1" "$2" "$3"\n'
    done = subprocess.run(
        ["bash", "-c", script, "restore", str(blobs), bucket, name],
        env={**os.environ, "KEY": str(key)},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


@pytest.mark.parametrize(
    ("bucket", "name"),
    [
        ("photos", "2024/cat.jpg"),
        ("backups", "disk.img"),
        ("docs", "notes/3.txt"),
        ("docs", "notes/0.txt"),
    ],
    ids=["single-segment", "multipart", "container-member", "container-first-member"],
)
def test_restore_by_name_with_the_documented_recipe(backend, bucket: str, name: str) -> None:  # type: ignore[no-untyped-def]
    blobs, key, objects = backend
    assert restore(blobs, key, bucket, name) == objects[bucket, name]


def test_unknown_names_restore_nothing(backend) -> None:  # type: ignore[no-untyped-def]
    blobs, key, _ = backend
    assert restore(blobs, key, "photos", "2024/dog.jpg") == b""


def test_documented_one_liners(backend) -> None:  # type: ignore[no-untyped-def]
    """The standalone commands of FORMAT.md, run as written."""
    blobs, key, objects = backend
    container = blobs / "pack" / "c-0001"
    footer = subprocess.run(
        f"tail -c 64 {container} | od -An -t u8 -j 8 -N 24",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout.split()
    count, index_offset, index_length = (int(x) for x in footer)
    assert count == 5 and index_offset + index_length + 64 == container.stat().st_size
    index = subprocess.run(
        f"tail -c +$(({index_offset} + 1)) {container} | head -c {index_length} | age -d -i {key} | zstd -d",
        shell=True,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert index.splitlines()[0] == "coolstorage.index.v1" and len(index.splitlines()) == 6
    for segment in (blobs / "seg").iterdir():
        meta = subprocess.run(
            f"age -d -i {key} {segment} | head -c 1048584 | tail -c +9 | head -n 2 | tail -n 1",
            shell=True,
            capture_output=True,
            check=False,
        ).stdout
        if b'"key":"2024/cat.jpg"' in meta:
            plain = subprocess.run(
                f"age -d -i {key} {segment} | zstd -d", shell=True, capture_output=True, check=True
            )
            assert plain.stdout == objects["photos", "2024/cat.jpg"]
            break
    else:
        pytest.fail("no segment names 2024/cat.jpg in its M frame")


def test_format_md_states_the_constants_the_code_uses() -> None:
    from gateway.sealing import container, frames

    text = FORMAT_MD.read_text()
    for value in (
        frames.META_MAGIC,
        frames.TRAILER_MAGIC,
        frames.SEEK_TABLE_MAGIC,
        frames.SEEKABLE_FOOTER_MAGIC,
        frames.EMPTY_CHECKSUM,
    ):
        assert f"0x{value:08X}" in text
    for word in (
        container.FOOTER_MAGIC.decode(),
        "coolstorage.meta.v1",
        "coolstorage.trailer.v1",
        "coolstorage.index.v1",
    ):
        assert word in text
    assert "age -d -i key.txt SEGMENT | zstd -d" in text
