"""One conformance suite for every storage backend (fsspec's abstract-test style).

:class:`BackendSuite` holds the tests; each backend gets a thin subclass whose ``backend``
fixture builds an instance (``localfs`` in a temporary directory, ``s3`` on the moto server
that ``tests/fixtures/moto.py`` starts), plus the tests only that backend can answer
(multipart uploads and UploadPartCopy on s3; restore delays, expiry and the on-disk layout
on localfs). Test data comes from :class:`PatternReader`, a seeded generator, never a file.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import threading
import time
import tracemalloc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from gateway.errors import (
    BackendError,
    BlobNotFound,
    ConfigError,
    InvalidArgument,
    InvalidName,
    InvalidRange,
    ObjectArchived,
)
from tests.fixtures.moto import moto_client
from tiering.backends import open_backend
from tiering.backends.base import DEEP_ARCHIVE, STANDARD, Backend, Capability, RestoreStatus
from tiering.backends.localfs import LocalFSBackend
from tiering.backends.s3 import S3Backend

MiB = 1024 * 1024
LARGE = 20 * MiB
_BLOCK = 64 * 1024


def _block(seed: int, index: int) -> bytes:
    return random.Random(seed * 1_000_003 + index).randbytes(_BLOCK)


class PatternReader:
    """A stream of ``size`` seeded pseudo-random bytes, generated as it is read.

    Reads return at most ``max_read`` bytes (streams may return short reads), ``read()``
    without a size fails the test (a backend must never slurp a stream), and with
    ``fail_after`` the read that would pass that offset raises, like a client going away.
    """

    def __init__(
        self, seed: int, size: int, *, fail_after: int | None = None, max_read: int = 300_000
    ) -> None:
        self.seed = seed
        self.size = size
        self.fail_after = fail_after
        self.max_read = max_read
        self.position = 0
        self.largest_read = 0

    def read(self, n: int | None = -1) -> bytes:
        assert n is not None and n >= 0, "a backend called read() without a size"
        self.largest_read = max(self.largest_read, n)
        n = min(n, self.max_read, self.size - self.position)
        if self.fail_after is not None and self.position + n > self.fail_after:
            raise RuntimeError("the client went away")
        out = []
        end = self.position + n
        pos = self.position
        while pos < end:
            index, offset = divmod(pos, _BLOCK)
            piece = _block(self.seed, index)[offset : offset + end - pos]
            out.append(piece)
            pos += len(piece)
        self.position = end
        return b"".join(out)


def pattern_digest(seed: int, size: int) -> str:
    """SHA-256 of what ``PatternReader(seed, size)`` yields."""
    digest = hashlib.sha256()
    reader = PatternReader(seed, size, max_read=MiB)
    while chunk := reader.read(MiB):
        digest.update(chunk)
    return digest.hexdigest()


def pattern_bytes(seed: int, size: int) -> bytes:
    return PatternReader(seed, size, max_read=size).read(size)


def stream_digest(chunks: Iterable[bytes]) -> tuple[str, int, int]:
    """(SHA-256, length, largest chunk) of an iterator, without keeping it."""
    digest = hashlib.sha256()
    length = largest = 0
    for chunk in chunks:
        digest.update(chunk)
        length += len(chunk)
        largest = max(largest, len(chunk))
    return digest.hexdigest(), length, largest


def read_all(backend: Backend, key: str, **kwargs: Any) -> bytes:
    return b"".join(backend.get(key, **kwargs))


def put_bytes(backend: Backend, key: str, data: bytes, **kwargs: Any) -> Any:
    return backend.put(key, io.BytesIO(data), size=len(data), **kwargs)


def as_stream(reader: PatternReader) -> BinaryIO:
    return cast(BinaryIO, reader)


def wait_readable(backend: Backend, key: str, timeout: float = 10.0) -> RestoreStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = backend.restore_status(key)
        if status.readable or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


class BackendSuite:
    """The contract of :class:`tiering.backends.base.Backend`, for any implementation."""

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        raise NotImplementedError("each backend's subclass provides this fixture")

    # -- put / get / head / delete -----------------------------------------------------

    def test_put_get_head(self, backend: Backend) -> None:
        data = pattern_bytes(1, 100_000)
        info = put_bytes(backend, "org/1/blob", data)
        assert (info.key, info.size, info.storage_class) == ("org/1/blob", len(data), STANDARD)
        assert read_all(backend, "org/1/blob") == data
        head = backend.head("org/1/blob")
        assert (head.key, head.size, head.storage_class, head.restore) == (
            "org/1/blob",
            len(data),
            STANDARD,
            None,
        )
        assert head.modified_at is not None
        assert abs(head.modified_at - datetime.now(UTC)) < timedelta(minutes=5)

    def test_missing_blob(self, backend: Backend) -> None:
        with pytest.raises(BlobNotFound):
            backend.get("no/such/blob")
        with pytest.raises(BlobNotFound):
            backend.head("no/such/blob")
        with pytest.raises(BlobNotFound):
            backend.get("no/such/blob", start=0, end=0)
        with pytest.raises(BlobNotFound):
            backend.copy("no/such/blob", "elsewhere")
        with pytest.raises(BlobNotFound):
            backend.set_storage_class("no/such/blob", DEEP_ARCHIVE)
        with pytest.raises(BlobNotFound):
            backend.request_restore("no/such/blob", days=1)

    @pytest.mark.parametrize(
        ("start", "end"),
        [
            (0, None),
            (0, 1),
            (0, 1000),
            (999, None),
            (999, 1000),
            (1000, None),  # start at the end: nothing
            (1000, 1000),
            (500, 500),
            (0, 5000),  # end past the end is clipped
            (998, 5000),
            (123, 457),
        ],
    )
    def test_ranges_at_edges(self, backend: Backend, start: int, end: int | None) -> None:
        data = pattern_bytes(2, 1000)
        put_bytes(backend, "ranged", data)
        assert read_all(backend, "ranged", start=start, end=end) == data[start:end]

    @pytest.mark.parametrize(("start", "end"), [(1001, None), (2000, 3000), (-1, None), (5, 4)])
    def test_unsatisfiable_ranges(self, backend: Backend, start: int, end: int | None) -> None:
        put_bytes(backend, "ranged", pattern_bytes(2, 1000))
        with pytest.raises(InvalidRange):
            read_all(backend, "ranged", start=start, end=end)

    def test_empty_blob(self, backend: Backend) -> None:
        info = backend.put("empty", io.BytesIO(b""), size=0)
        assert info.size == 0
        assert backend.head("empty").size == 0
        assert read_all(backend, "empty") == b""
        assert read_all(backend, "empty", start=0, end=10) == b""
        with pytest.raises(InvalidRange):
            read_all(backend, "empty", start=1)
        assert [i.key for i in backend.list("empt")] == ["empty"]

    def test_put_without_size_hint(self, backend: Backend) -> None:
        data = pattern_bytes(3, 300_000)
        info = backend.put("nohint", io.BytesIO(data))
        assert info.size == len(data)
        assert read_all(backend, "nohint") == data

    def test_large_blob_streamed(self, backend: Backend) -> None:
        reader = PatternReader(4, LARGE)
        info = backend.put("large/blob", as_stream(reader), size=LARGE)
        assert info.size == LARGE == reader.position
        assert reader.largest_read <= 5 * MiB  # read in pieces, never all at once
        digest, length, largest = stream_digest(backend.get("large/blob"))
        assert (digest, length) == (pattern_digest(4, LARGE), LARGE)
        assert largest <= MiB
        # A range across a part boundary (5 MiB on s3) reads the right bytes.
        start, end = 5 * MiB - 1000, 5 * MiB + 1000
        expected = pattern_bytes(4, end)[start:end]
        assert read_all(backend, "large/blob", start=start, end=end) == expected

    def test_failed_put_leaves_no_blob(self, backend: Backend) -> None:
        with pytest.raises(RuntimeError, match="client went away"):
            backend.put("broken", as_stream(PatternReader(5, 1 * MiB, fail_after=300_000)))
        with pytest.raises(BlobNotFound):
            backend.head("broken")
        assert list(backend.list("broken")) == []

    def test_failed_large_put_leaves_no_blob(self, backend: Backend) -> None:
        # Fails after two 5 MiB parts went out (a multipart upload on s3).
        reader = PatternReader(6, LARGE, fail_after=12 * MiB)
        with pytest.raises(RuntimeError, match="client went away"):
            backend.put("broken/large", as_stream(reader), size=LARGE)
        with pytest.raises(BlobNotFound):
            backend.head("broken/large")
        assert list(backend.list("broken")) == []

    def test_failed_overwrite_keeps_old_blob(self, backend: Backend) -> None:
        put_bytes(backend, "kept", b"the old bytes")
        with pytest.raises(RuntimeError):
            backend.put("kept", as_stream(PatternReader(7, MiB, fail_after=1000)))
        assert read_all(backend, "kept") == b"the old bytes"

    def test_overwrite(self, backend: Backend) -> None:
        put_bytes(backend, "over", b"first version, longer")
        put_bytes(backend, "over", b"second")
        assert read_all(backend, "over") == b"second"
        assert backend.head("over").size == 6
        assert [i.key for i in backend.list("over")] == ["over"]

    def test_delete_is_idempotent(self, backend: Backend) -> None:
        put_bytes(backend, "dir/doomed", b"x")
        backend.delete("dir/doomed")
        with pytest.raises(BlobNotFound):
            backend.head("dir/doomed")
        backend.delete("dir/doomed")
        backend.delete("never/existed")
        assert list(backend.list()) == []

    def test_get_iterator_closed_early(self, backend: Backend) -> None:
        backend.put("early", as_stream(PatternReader(8, 3 * MiB)), size=3 * MiB)
        chunks = backend.get("early")
        first = next(iter(chunks))
        assert first == pattern_bytes(8, len(first))
        cast(Any, chunks).close()
        with pytest.raises(StopIteration):
            next(iter(chunks))
        # The backend still works (no connection or file left dangling in a bad state).
        assert backend.head("early").size == 3 * MiB

    # -- copy and storage classes ------------------------------------------------------

    def test_copy(self, backend: Backend) -> None:
        data = pattern_bytes(9, 200_000)
        put_bytes(backend, "src/a", data)
        info = backend.copy("src/a", "dst/b")
        assert (info.key, info.size, info.storage_class) == ("dst/b", len(data), STANDARD)
        assert read_all(backend, "dst/b") == data
        backend.delete("src/a")
        assert read_all(backend, "dst/b") == data  # a copy, not a reference that goes away
        # Copy over an existing blob replaces it.
        put_bytes(backend, "src/c", b"replacement")
        backend.copy("src/c", "dst/b")
        assert read_all(backend, "dst/b") == b"replacement"

    def test_copy_into_deep_archive(self, backend: Backend) -> None:
        put_bytes(backend, "hot", b"bytes")
        info = backend.copy("hot", "cold", storage_class=DEEP_ARCHIVE)
        assert info.storage_class == DEEP_ARCHIVE
        assert backend.head("cold").storage_class == DEEP_ARCHIVE
        with pytest.raises(ObjectArchived):
            backend.get("cold")
        assert read_all(backend, "hot") == b"bytes"

    def test_deep_archive_needs_restore(self, backend: Backend) -> None:
        data = pattern_bytes(10, 50_000)
        put_bytes(backend, "arch/blob", data)
        info = backend.set_storage_class("arch/blob", DEEP_ARCHIVE)
        assert info.storage_class == DEEP_ARCHIVE
        head = backend.head("arch/blob")
        assert head.storage_class == DEEP_ARCHIVE
        assert head.size == len(data)
        assert head.restore == RestoreStatus(requested=False)
        assert backend.restore_status("arch/blob") == RestoreStatus(requested=False)
        with pytest.raises(ObjectArchived) as caught:
            backend.get("arch/blob")
        assert caught.value.code == "InvalidObjectState"
        with pytest.raises(ObjectArchived):
            backend.get("arch/blob", start=10, end=20)
        with pytest.raises(ObjectArchived):
            backend.get("arch/blob", start=5, end=5)
        with pytest.raises(ObjectArchived):
            backend.copy("arch/blob", "arch/copy")
        with pytest.raises(ObjectArchived):
            backend.set_storage_class("arch/blob", STANDARD)
        with pytest.raises(ObjectArchived):
            backend.set_storage_class("arch/blob", "GLACIER")
        assert backend.head("arch/blob").storage_class == DEEP_ARCHIVE
        # Moving into the class it is in changes nothing.
        assert backend.set_storage_class("arch/blob", DEEP_ARCHIVE).storage_class == DEEP_ARCHIVE

        status = backend.request_restore("arch/blob", days=2)
        assert status.requested
        status = wait_readable(backend, "arch/blob")
        assert status.readable
        assert status.expires_at is not None
        now = datetime.now(UTC)
        assert now + timedelta(days=1) < status.expires_at < now + timedelta(days=3)
        assert backend.head("arch/blob").restore == status
        assert read_all(backend, "arch/blob") == data
        assert read_all(backend, "arch/blob", start=10, end=20) == data[10:20]
        # Asking again is not an error.
        assert backend.request_restore("arch/blob", days=2).requested
        # A restored blob can be copied and moved back to a hot class.
        backend.copy("arch/blob", "arch/copy", storage_class=STANDARD)
        assert read_all(backend, "arch/copy") == data
        info = backend.set_storage_class("arch/blob", STANDARD)
        assert info.storage_class == STANDARD
        assert backend.head("arch/blob").restore is None
        assert read_all(backend, "arch/blob") == data

    def test_put_straight_into_deep_archive(self, backend: Backend) -> None:
        info = put_bytes(backend, "cold/direct", b"archived at once", storage_class=DEEP_ARCHIVE)
        assert info.storage_class == DEEP_ARCHIVE
        assert backend.head("cold/direct").storage_class == DEEP_ARCHIVE
        with pytest.raises(ObjectArchived):
            backend.get("cold/direct")
        backend.request_restore("cold/direct", days=1, tier="Bulk")
        assert wait_readable(backend, "cold/direct").readable
        assert read_all(backend, "cold/direct") == b"archived at once"

    def test_large_blob_into_deep_archive(self, backend: Backend) -> None:
        size = 11 * MiB
        backend.put("cold/large", as_stream(PatternReader(11, size)), storage_class=DEEP_ARCHIVE)
        assert backend.head("cold/large").storage_class == DEEP_ARCHIVE
        with pytest.raises(ObjectArchived):
            backend.get("cold/large")
        backend.request_restore("cold/large", days=1)
        assert wait_readable(backend, "cold/large").readable
        assert stream_digest(backend.get("cold/large"))[:2] == (pattern_digest(11, size), size)

    def test_restore_of_hot_blob_is_refused(self, backend: Backend) -> None:
        put_bytes(backend, "hot", b"x")
        with pytest.raises(InvalidArgument):
            backend.request_restore("hot", days=1)
        assert backend.restore_status("hot") == RestoreStatus(requested=False)

    @pytest.mark.parametrize(
        ("days", "tier"), [(0, "Standard"), (1, "Fast"), (True, "Bulk"), (10**9, "Standard")]
    )
    def test_restore_arguments_checked(self, backend: Backend, days: Any, tier: str) -> None:
        put_bytes(backend, "cold", b"x", storage_class=DEEP_ARCHIVE)
        with pytest.raises(InvalidArgument):
            backend.request_restore("cold", days=days, tier=tier)

    def test_unknown_storage_class(self, backend: Backend) -> None:
        with pytest.raises(InvalidArgument):
            put_bytes(backend, "x", b"x", storage_class="COLDEST")
        with pytest.raises(BlobNotFound):
            backend.head("x")
        put_bytes(backend, "y", b"y")
        with pytest.raises(InvalidArgument):
            backend.set_storage_class("y", "COLDEST")

    # -- listing and keys --------------------------------------------------------------

    def test_list_by_prefix_in_order(self, backend: Backend) -> None:
        keys = ["b", "a/b/c", "a", "a-c", "a/b", "a0", "a/b-", "Z", "é/x", "a/%41", "a/~t"]
        for number, key in enumerate(keys):
            put_bytes(backend, key, b"x" * number)
        put_bytes(backend, "a/cold", b"c", storage_class=DEEP_ARCHIVE)
        keys.append("a/cold")
        listed = list(backend.list())
        assert [i.key for i in listed] == sorted(keys, key=lambda k: k.encode())
        assert sorted(keys) == sorted(keys, key=lambda k: k.encode())  # str order is S3 order
        sizes = {i.key: i.size for i in listed}
        assert all(sizes[key] == number for number, key in enumerate(keys[:-1]))
        assert {i.key: i.storage_class for i in listed}["a/cold"] == DEEP_ARCHIVE
        assert [i.key for i in backend.list("a/")] == [
            "a/%41",
            "a/b",
            "a/b-",
            "a/b/c",
            "a/cold",
            "a/~t",
        ]
        assert [i.key for i in backend.list("a/b")] == ["a/b", "a/b-", "a/b/c"]
        assert [i.key for i in backend.list("a")][:3] == ["a", "a-c", "a/%41"]
        assert [i.key for i in backend.list("é")] == ["é/x"]
        assert list(backend.list("nothing")) == []

    @pytest.mark.parametrize(
        "key",
        ["", "/abs", "a/../b", "..", "a/./b", "a//b", "trailing/", "nul\x00", "x" * 1025, "\udc80"],
    )
    def test_bad_keys_refused(self, backend: Backend, key: str) -> None:
        with pytest.raises(InvalidName):
            put_bytes(backend, key, b"x")
        with pytest.raises(InvalidName):
            backend.get(key)
        with pytest.raises(InvalidName):
            backend.head(key)
        with pytest.raises(InvalidName):
            backend.delete(key)

    def test_odd_but_valid_keys(self, backend: Backend) -> None:
        keys = ["...", ".hidden", "sp ace/t~lde", "%2E", "ünï/cödé", "a\\b", "x" * 200]
        for key in keys:
            put_bytes(backend, key, key.encode())
        for key in keys:
            assert read_all(backend, key) == key.encode()
        assert sorted(i.key for i in backend.list()) == sorted(keys)

    def test_capabilities(self, backend: Backend) -> None:
        assert {
            Capability.RANGE_READ,
            Capability.STORAGE_CLASSES,
            Capability.RESTORE,
            Capability.SERVER_SIDE_COPY,
            Capability.LIST,
        } <= backend.capabilities

    # -- threads -----------------------------------------------------------------------

    def test_thread_safety(self, backend: Backend) -> None:
        """Writers, readers and deleters at once; readers never see a mixed blob."""
        versions = {pattern_bytes(100 + v, 64 * 1024 + v) for v in range(4)}
        put_bytes(backend, "shared", next(iter(versions)))
        errors: list[BaseException] = []
        stop = time.monotonic() + 3.0

        def worker(number: int) -> None:
            rng = random.Random(number)
            own = f"thread/{number}"
            try:
                for round_ in range(12):
                    if time.monotonic() > stop:
                        break
                    data = rng.randbytes(rng.randrange(0, 200_000))
                    put_bytes(backend, own, data)
                    assert read_all(backend, own) == data
                    assert backend.head(own).size == len(data)
                    put_bytes(backend, "shared", rng.choice(sorted(versions)))
                    assert read_all(backend, "shared") in versions
                    if round_ % 3 == 0:
                        backend.copy("shared", f"{own}-copy")
                        assert read_all(backend, f"{own}-copy") in versions
                    backend.delete(own)
                    backend.delete(own)
                    list(backend.list("thread/"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert read_all(backend, "shared") in versions
        assert all(i.key.endswith("-copy") for i in backend.list("thread/"))


# -- localfs ---------------------------------------------------------------------------


class TestLocalFS(BackendSuite):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Iterator[Backend]:
        backend = open_backend("test", {"type": "localfs", "root": str(tmp_path / "blobs")})
        yield backend
        backend.close()

    @staticmethod
    def files(backend: Backend) -> list[str]:
        root = cast(LocalFSBackend, backend).root
        found = []
        for directory, _, names in os.walk(root):
            found += [os.path.relpath(os.path.join(directory, n), root) for n in names]
        return sorted(n for n in found if not n.startswith("."))

    def test_failed_put_leaves_no_file(self, backend: Backend) -> None:
        with pytest.raises(RuntimeError):
            backend.put("a/b/broken", as_stream(PatternReader(5, MiB, fail_after=1000)))
        put_bytes(backend, "kept", b"old")
        with pytest.raises(RuntimeError):
            backend.put("kept", as_stream(PatternReader(5, MiB, fail_after=1000)))
        assert [n.split("~")[1][0] for n in self.files(backend)] == ["d", "m"]

    def test_layout_one_record_and_one_data_file(self, backend: Backend) -> None:
        put_bytes(backend, "x/y", b"1")
        put_bytes(backend, "x/y", b"22")
        backend.set_storage_class("x/y", DEEP_ARCHIVE)
        names = self.files(backend)
        assert len(names) == 2
        assert names[1] == os.path.join("x", "y~meta")
        assert names[0].startswith(os.path.join("x", "y~d"))
        backend.delete("x/y")
        assert self.files(backend) == []
        assert not (cast(LocalFSBackend, backend).root / "x").exists()  # empty dirs go

    def test_blob_and_directory_of_the_same_name(self, backend: Backend) -> None:
        put_bytes(backend, "a", b"file")
        put_bytes(backend, "a/b", b"below")
        assert read_all(backend, "a") == b"file"
        backend.delete("a")
        assert read_all(backend, "a/b") == b"below"

    def test_copy_is_a_hard_link(self, backend: Backend) -> None:
        put_bytes(backend, "src", b"linked")
        backend.copy("src", "dst")
        root = cast(LocalFSBackend, backend).root
        data = [root / n for n in self.files(backend) if "~d" in n]
        assert len(data) == 2
        assert data[0].stat().st_ino == data[1].stat().st_ino

    def test_leftovers_of_interrupted_writes_are_removed(self, backend: Backend) -> None:
        root = cast(LocalFSBackend, backend).root
        put_bytes(backend, "a/b", b"kept")
        backend.copy("a/b", "a/linked")
        live = sorted(self.files(backend))
        # What crashes leave: a data file never committed, one whose record was replaced
        # before the old one was unlinked, a record being written, a data file of no blob.
        for name in ("b~d0123456789abcdef", "b~t0123456789abcdef", "none~dfedcba9876543210"):
            (root / "a" / name).write_bytes(b"debris")
        (root / "a" / "b~dnot-a-generation").write_bytes(b"not ours")
        # Nothing is old enough yet: the inode change time is now.
        past = datetime.now(UTC) - timedelta(hours=1)
        assert backend.remove_leftovers(past) == 0
        assert backend.remove_leftovers(datetime.now(UTC) + timedelta(seconds=5)) == 3
        assert sorted(self.files(backend)) == sorted([*live, os.path.join("a", "b~dnot-a-generation")])
        assert read_all(backend, "a/b") == b"kept" and read_all(backend, "a/linked") == b"kept"

    def test_restore_takes_the_delay(self, tmp_path: Path) -> None:
        backend = LocalFSBackend.from_options("slow", {"root": str(tmp_path), "restore_delay": 0.4})
        put_bytes(backend, "cold", b"later", storage_class=DEEP_ARCHIVE)
        status = backend.request_restore("cold", days=1)
        assert status == RestoreStatus(requested=True, ongoing=True)
        assert backend.head("cold").restore == status
        with pytest.raises(ObjectArchived):
            backend.get("cold")
        # Asking again while it runs changes nothing.
        assert backend.request_restore("cold", days=5) == status
        started = time.monotonic()
        assert wait_readable(backend, "cold").readable
        assert 0.2 < time.monotonic() - started < 2.0
        assert read_all(backend, "cold") == b"later"
        backend.close()

    def test_restore_expires_after_the_days(self, backend: Backend) -> None:
        local = cast(LocalFSBackend, backend)
        put_bytes(local, "cold", b"for a while", storage_class=DEEP_ARCHIVE)
        status = local.request_restore("cold", days=2)
        assert status.expires_at is not None
        assert read_all(local, "cold") == b"for a while"
        real = time.time
        local.clock = lambda: real() + 1.5 * 86400
        assert read_all(local, "cold") == b"for a while"
        # Asking again extends the copy to two days from "now".
        extended = local.request_restore("cold", days=2)
        assert extended.expires_at is not None
        assert extended.expires_at - status.expires_at > timedelta(days=1.4)
        local.clock = lambda: real() + 4 * 86400
        assert local.restore_status("cold") == RestoreStatus(requested=False)
        with pytest.raises(ObjectArchived):
            local.get("cold")
        # A new restore after expiry works again.
        assert local.request_restore("cold", days=1).readable
        assert read_all(local, "cold") == b"for a while"

    def test_state_survives_reopening(self, tmp_path: Path) -> None:
        first = LocalFSBackend.from_options("a", {"root": str(tmp_path)})
        put_bytes(first, "cold", b"kept", storage_class=DEEP_ARCHIVE)
        first.request_restore("cold", days=3)
        first.close()
        second = LocalFSBackend.from_options("b", {"root": str(tmp_path)})
        assert second.head("cold").restore is not None
        assert read_all(second, "cold") == b"kept"
        second.close()

    def test_root_is_created(self, tmp_path: Path) -> None:
        root = tmp_path / "new" / "deeper"
        backend = open_backend("x", {"type": "localfs", "root": str(root)})
        assert root.is_dir()
        backend.close()

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({}, "option 'root' is required"),
            ({"root": "ROOT", "colour": "blue"}, "unknown option(s) 'colour'"),
            ({"root": "ROOT", "restore_delay": "soon"}, "'restore_delay' must be a number"),
            ({"root": "ROOT", "restore_delay": -1}, "'restore_delay' must be at least"),
            ({"root": "ROOT", "fsync": 1}, "'fsync' must be true or false"),
            ({"root": "FILE"}, "is not a directory"),
            ({"root": "FILE/below"}, "cannot create root"),
            ({"root": "/proc/coolstorage"}, "cannot create root"),
            ({"root": "/proc"}, "is not writable"),
        ],
    )
    def test_config_errors(self, tmp_path: Path, options: dict[str, Any], message: str) -> None:
        (tmp_path / "file").write_text("not a directory")
        options = dict(options)
        for key, value in options.items():
            if isinstance(value, str):
                value = value.replace("ROOT", str(tmp_path / "root"))
                options[key] = value.replace("FILE", str(tmp_path / "file"))
        with pytest.raises(ConfigError) as caught:
            open_backend("nas", {"type": "localfs", **options})
        text = str(caught.value)
        assert message in text
        assert text.startswith("backend 'nas' (localfs): ")
        assert "\n" not in text

    def test_memory_stays_bounded(self, backend: Backend) -> None:
        size = 32 * MiB
        tracemalloc.start()
        try:
            backend.put("big", as_stream(PatternReader(12, size)), size=size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 * MiB
        assert backend.head("big").size == size


# -- s3 on moto ------------------------------------------------------------------------


class TestS3(BackendSuite):
    @pytest.fixture
    def backend(self, moto_s3_options: dict[str, Any]) -> Iterator[Backend]:
        # single_put_max 0: the suite's large blobs exercise multipart uploads.
        backend = open_backend(
            "test", {**moto_s3_options, "part_size": "5 MiB", "single_put_max": 0}
        )
        yield backend
        backend.close()

    @pytest.fixture
    def client(self, moto_server: str) -> Iterator[Any]:
        client = moto_client(moto_server)
        yield client
        client.close()

    def test_large_blob_is_a_multipart_upload(
        self, backend: Backend, client: Any, moto_bucket: str
    ) -> None:
        backend.put("mp", as_stream(PatternReader(13, LARGE)), size=LARGE)
        head = client.head_object(Bucket=moto_bucket, Key="mp")
        assert head["ETag"].strip('"').endswith("-4")  # 20 MiB in 5 MiB parts
        assert head["ContentLength"] == LARGE
        # Without a size hint too, and a blob of exactly one part is one PutObject.
        backend.put("mp2", as_stream(PatternReader(13, 11 * MiB)))
        assert client.head_object(Bucket=moto_bucket, Key="mp2")["ETag"].endswith('-3"')
        backend.put("one", as_stream(PatternReader(13, 5 * MiB)))
        assert "-" not in client.head_object(Bucket=moto_bucket, Key="one")["ETag"]
        assert stream_digest(backend.get("mp2"))[:2] == (pattern_digest(13, 11 * MiB), 11 * MiB)

    def test_known_size_up_to_single_put_max_is_one_put_object(
        self, moto_s3_options: dict[str, Any], client: Any, moto_bucket: str
    ) -> None:
        backend = open_backend(
            "single", {**moto_s3_options, "part_size": "5 MiB", "single_put_max": "16 MiB"}
        )
        try:
            size = 12 * MiB + 5
            tracemalloc.start()
            try:
                backend.put("one", as_stream(PatternReader(21, size, max_read=MiB)), size=size)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert peak < 12 * MiB  # spooled to disk past part_size, never held whole
            head = client.head_object(Bucket=moto_bucket, Key="one")
            assert "-" not in head["ETag"] and head["ContentLength"] == size
            assert stream_digest(backend.get("one"))[:2] == (pattern_digest(21, size), size)
            # Above single_put_max, or without a size hint: multipart as before.
            backend.put("over", as_stream(PatternReader(22, 17 * MiB)), size=17 * MiB)
            assert client.head_object(Bucket=moto_bucket, Key="over")["ETag"].endswith('-4"')
            backend.put("unknown", as_stream(PatternReader(23, 12 * MiB)))
            assert client.head_object(Bucket=moto_bucket, Key="unknown")["ETag"].endswith('-3"')
            # A hint that was too short: the spooled bytes become part 1 of a multipart upload.
            backend.put("short", as_stream(PatternReader(24, 20 * MiB)), size=MiB)
            head = client.head_object(Bucket=moto_bucket, Key="short")
            assert head["ETag"].endswith('-2"') and head["ContentLength"] == 20 * MiB
            assert stream_digest(backend.get("short"))[:2] == (
                pattern_digest(24, 20 * MiB),
                20 * MiB,
            )
            # A failed spooled put leaves nothing.
            with pytest.raises(RuntimeError):
                backend.put(
                    "failed", as_stream(PatternReader(25, 8 * MiB, fail_after=6 * MiB)), size=8 * MiB
                )
            with pytest.raises(BlobNotFound):
                backend.head("failed")
        finally:
            backend.close()

    def test_failed_multipart_upload_is_aborted(
        self, backend: Backend, client: Any, moto_bucket: str
    ) -> None:
        with pytest.raises(RuntimeError):
            backend.put("aborted", as_stream(PatternReader(14, LARGE, fail_after=16 * MiB)))
        assert client.list_multipart_uploads(Bucket=moto_bucket).get("Uploads", []) == []

    def test_incomplete_multipart_uploads_are_aborted_when_old(
        self, backend: Backend, client: Any, moto_bucket: str
    ) -> None:
        prefix = cast(S3Backend, backend).prefix
        key = f"{prefix}leftover-{time.monotonic_ns()}"
        upload = client.create_multipart_upload(Bucket=moto_bucket, Key=key)["UploadId"]

        def pending() -> list[str]:
            uploads = client.list_multipart_uploads(Bucket=moto_bucket).get("Uploads", [])
            return [u["UploadId"] for u in uploads if u["Key"] == key]

        # moto reports every upload as initiated on 2010-11-10 (real S3 gives the time it
        # started): a cutoff before that date must keep it.
        initiated = client.list_multipart_uploads(Bucket=moto_bucket, Prefix=key)["Uploads"][0][
            "Initiated"
        ]
        assert backend.remove_leftovers(initiated - timedelta(seconds=1)) == 0
        assert pending() == [upload]
        assert backend.remove_leftovers(datetime.now(UTC) + timedelta(minutes=1)) >= 1
        assert pending() == []

    def test_large_copy_uses_upload_part_copy(
        self, moto_s3_options: dict[str, Any], client: Any, moto_bucket: str
    ) -> None:
        backend = open_backend(
            "copy",
            {
                **moto_s3_options,
                "part_size": 5 * MiB,
                "copy_threshold": "6 MiB",
                "copy_part_size": "5 MiB",
                "max_concurrency": 2,
            },
        )
        size = 12 * MiB + 17
        backend.put("orig", as_stream(PatternReader(15, size)), size=size)
        info = backend.copy("orig", "copied", storage_class=DEEP_ARCHIVE)
        assert (info.size, info.storage_class) == (size, DEEP_ARCHIVE)
        head = client.head_object(Bucket=moto_bucket, Key="copied")
        assert head["ETag"].endswith('-3"')  # 5 + 5 + 2 MiB ranges
        assert head["StorageClass"] == DEEP_ARCHIVE
        backend.request_restore("copied", days=1)
        assert wait_readable(backend, "copied").readable
        assert stream_digest(backend.get("copied"))[:2] == (pattern_digest(15, size), size)
        # A change of class of a large blob is a multipart copy onto itself.
        backend.set_storage_class("orig", DEEP_ARCHIVE)
        assert client.head_object(Bucket=moto_bucket, Key="orig")["StorageClass"] == DEEP_ARCHIVE
        # A small blob still goes through one CopyObject.
        put_bytes(backend, "small", b"small")
        backend.copy("small", "small2")
        assert "-" not in client.head_object(Bucket=moto_bucket, Key="small2")["ETag"]
        backend.close()

    def test_memory_stays_bounded(self, moto_s3_options: dict[str, Any]) -> None:
        backend = open_backend(
            "mem", {**moto_s3_options, "part_size": 5 * MiB, "max_concurrency": 2}
        )
        size = 40 * MiB
        tracemalloc.start()
        try:
            backend.put("big", as_stream(PatternReader(16, size, max_read=MiB)), size=size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # (max_concurrency + 1) parts of 5 MiB, plus what botocore needs per request.
        assert peak < 20 * MiB
        assert backend.head("big").size == size
        backend.close()

    def test_prefix_isolates_keys(
        self, moto_s3_options: dict[str, Any], client: Any, moto_bucket: str
    ) -> None:
        backend = open_backend("pfx", {**moto_s3_options, "prefix": "tenant/"})
        put_bytes(backend, "a/b", b"inside")
        client.put_object(Bucket=moto_bucket, Key="outside", Body=b"x")
        assert client.get_object(Bucket=moto_bucket, Key="tenant/a/b")["Body"].read() == b"inside"
        assert [i.key for i in backend.list()] == ["a/b"]
        backend.copy("a/b", "c")
        assert [i.key for i in backend.list()] == ["a/b", "c"]
        backend.close()

    def test_storage_class_mapping(
        self, moto_s3_options: dict[str, Any], client: Any, moto_bucket: str
    ) -> None:
        backend = open_backend(
            "map",
            {
                **moto_s3_options,
                "storage_class": {"DEEP_ARCHIVE": "GLACIER", "GLACIER": "ONEZONE_IA"},
            },
        )
        put_bytes(backend, "k", b"x", storage_class=DEEP_ARCHIVE)
        assert client.head_object(Bucket=moto_bucket, Key="k")["StorageClass"] == "GLACIER"
        assert backend.head("k").storage_class == DEEP_ARCHIVE
        assert [i.storage_class for i in backend.list()] == [DEEP_ARCHIVE]
        with pytest.raises(ObjectArchived):
            backend.get("k")
        backend.close()

    def test_credentials_from_files(self, moto_s3_options: dict[str, Any], tmp_path: Path) -> None:
        (tmp_path / "id").write_text(moto_s3_options["access_key_id"] + "\n")
        (tmp_path / "secret").write_text(moto_s3_options["secret_access_key"] + "\n")
        options = {k: v for k, v in moto_s3_options.items() if "key" not in k}
        backend = open_backend(
            "files",
            {
                **options,
                "access_key_id_file": str(tmp_path / "id"),
                "secret_access_key_file": str(tmp_path / "secret"),
            },
        )
        put_bytes(backend, "k", b"v")
        assert "secret" not in repr(backend) and "moto-test" not in repr(backend)
        backend.close()

    def test_create_bucket(self, moto_s3_options: dict[str, Any], client: Any) -> None:
        name = moto_s3_options["bucket"] + "-new"
        options = {**moto_s3_options, "bucket": name}
        with pytest.raises(ConfigError, match=r"does not exist .*create_bucket = true"):
            open_backend("nb", options)
        backend = open_backend("nb", {**options, "create_bucket": True})
        put_bytes(backend, "k", b"v")
        # Creating it again (a second replica starting) is fine.
        open_backend("nb2", {**options, "create_bucket": True}).close()
        backend.delete("k")
        backend.close()
        client.delete_bucket(Bucket=name)

    @pytest.mark.parametrize(
        ("extra", "message"),
        [
            ({"bucket": None}, "option 'bucket' is required"),
            ({"part_size": 1024}, "'part_size' must be at least 5242880"),
            ({"part_size": "lots"}, "cannot read 'lots' as a byte count"),
            ({"max_concurrency": 0}, "'max_concurrency' must be at least 1"),
            ({"create_bucket": "yes"}, "'create_bucket' must be true or false"),
            ({"secret_access_key": None}, "give both access_key_id and secret_access_key"),
            ({"access_key_id_file": "/nonexistent/id"}, "give either 'access_key_id' or"),
            ({"storage_class": {"DEEP_ARCHIVE": "STANDARD"}}, "maps both DEEP_ARCHIVE and"),
            ({"storage_class": {"COLD": "GLACIER"}}, "unknown class 'COLD'"),
            ({"addressing_style": "sideways"}, "addressing_style must be"),
            ({"buckett": "typo"}, "unknown option(s) 'buckett'"),
        ],
    )
    def test_config_errors(
        self, moto_s3_options: dict[str, Any], extra: dict[str, Any], message: str
    ) -> None:
        options = {**moto_s3_options, **extra}
        options = {k: v for k, v in options.items() if v is not None}
        with pytest.raises(ConfigError) as caught:
            open_backend("s3x", options)
        assert message in str(caught.value)
        assert moto_s3_options["secret_access_key"] not in str(caught.value)

    def test_unreachable_endpoint(self, moto_s3_options: dict[str, Any]) -> None:
        options = {
            **moto_s3_options,
            "endpoint_url": "http://127.0.0.1:9",
            "max_attempts": 1,
            "connect_timeout": 1,
        }
        with pytest.raises(ConfigError, match="cannot reach bucket"):
            open_backend("down", options)

    def test_network_failure_is_retryable(self) -> None:
        # Nothing listens on the discard port: every attempt is refused.
        down = S3Backend("down", moto_client("http://127.0.0.1:9"), "bucket")
        for call in (lambda: down.head("k"), lambda: put_bytes(down, "k", b"v")):
            with pytest.raises(BackendError) as caught:
                call()
            assert caught.value.retryable
            assert "k" in str(caught.value)
        down.close()


def test_chunk_iterator_reader_roundtrip() -> None:
    """The default ``copy`` path reads a ``get`` iterator through ``_IteratorReader``."""
    from gateway.streams import IteratorReader as _IteratorReader

    chunks = [b"abc", b"", b"defgh", b"i"]
    reader = _IteratorReader(iter(chunks))
    assert reader.read(2) == b"ab"
    assert reader.read(4) == b"cdef"
    assert reader.read(0) == b""
    assert reader.read(-1) == b"ghi"
    assert reader.read(5) == b""
