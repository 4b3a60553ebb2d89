"""Segments: round trips, exact range reads at every boundary, and tamper detection."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.errors import IntegrityError, InvalidArgument, InvalidRange
from gateway.sealing import (
    SealingReader,
    SealResult,
    SegmentMetadata,
    frames,
    generate_identity,
    inspect_segment,
    plain_size_of,
    read_metadata,
    unseal,
    unseal_range,
)
from gateway.sealing.age import CHUNK_SIZE, SEALED_CHUNK_SIZE
from gateway.sealing.errors import SealedDataError

BLOCK = 64 * 1024
IDENTITY, RECIPIENT = generate_identity()
OTHER_IDENTITY, OTHER_RECIPIENT = generate_identity()
META = SegmentMetadata(
    org="acme", bucket="photos", key="2024/cat.jpg", content_type="image/jpeg", mtime=1.5
)


def data_of(size: int, seed: int = 0) -> bytes:
    """Half incompressible, half compressible, so frames differ in size."""
    rnd = hashlib.shake_256(f"{seed}:{size}".encode()).digest(size // 2)
    text = (b"the quick brown fox %d " % seed) * (size // 20 + 1)
    return rnd + text[: size - len(rnd)]


def seal(
    data: bytes,
    *,
    block_size: int = BLOCK,
    meta: SegmentMetadata = META,
    recipients: tuple[str, ...] = (RECIPIENT,),
    read_size: int = 100_000,
) -> tuple[bytes, SealResult]:
    reader = SealingReader(io.BytesIO(data), meta, recipients, block_size=block_size)
    out = bytearray()
    while piece := reader.read(read_size):
        out += piece
    return bytes(out), reader.result


def whole(
    sealed: bytes, result: SealResult | None = None, identities: tuple[str, ...] = (IDENTITY,)
) -> bytes:
    mac = result.header_mac if result else None
    return b"".join(unseal(io.BytesIO(sealed), identities, expected_header_mac=mac, name="seg"))


class Fetcher:
    """A fetch callback over sealed bytes that records its calls."""

    def __init__(self, sealed: bytes, piece: int = 50_000) -> None:
        self.sealed = sealed
        self.piece = piece
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> Iterator[bytes]:
        self.calls.append((offset, length))
        data = self.sealed[offset : offset + length]
        return iter([data[i : i + self.piece] for i in range(0, len(data), self.piece)])


def read_range(
    sealed: bytes, result: SealResult, start: int, end: int, fetch: Fetcher | None = None
) -> bytes:
    fetch = fetch or Fetcher(sealed)
    return b"".join(
        unseal_range(
            start,
            end,
            age_header=result.age_header,
            payload_offset=result.payload_offset,
            seek_table=result.seek_table,
            fetch=fetch,
            identities=[IDENTITY],
            name="seg",
        )
    )


SIZES = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, CHUNK_SIZE - 1, CHUNK_SIZE + 1, 5 * BLOCK + 17]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_at_edges(size: int) -> None:
    data = data_of(size)
    sealed, result = seal(data)
    assert whole(sealed, result) == data
    assert result.plain_size == size == plain_size_of(result.seek_table)
    assert result.sealed_size == len(sealed)
    assert result.md5 == hashlib.md5(data).hexdigest()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.age_header == sealed[: result.payload_offset]
    assert result.recipients == (RECIPIENT,)
    assert read_range(sealed, result, 0, size) == data


@given(
    data=st.builds(
        data_of,
        st.sampled_from([*SIZES, 3 * BLOCK + 5, 6 * BLOCK])
        | st.integers(2 * BLOCK, 6 * BLOCK)
        | st.integers(0, 999),
        st.integers(0, 3),
    ),
    block_size=st.sampled_from([1000, 4096, BLOCK - 1, BLOCK, BLOCK + 1, 100_000]),
    read_size=st.sampled_from([1, 777, CHUNK_SIZE, SEALED_CHUNK_SIZE, 1 << 20]),
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_property(
    data: bytes, block_size: int, read_size: int, cut: tuple[float, float]
) -> None:
    event(f"size {len(data) // BLOCK} blocks")
    if read_size == 1 and len(data) > 20_000:
        read_size = 4099  # one-byte reads of big inputs only slow the test down
    sealed, result = seal(data, block_size=block_size, read_size=read_size)
    assert whole(sealed, result) == data
    a, b = sorted(int(c * len(data)) for c in cut)
    assert read_range(sealed, result, a, b) == data[a:b]


def test_many_blocks_and_metadata() -> None:
    data = data_of(300 * 1024 + 5)
    meta = SegmentMetadata(
        "acme", "b", "k", part_number=3, upload_id="u-1", content_type="text/plain", mtime=2.25
    )
    sealed, result = seal(data, block_size=4096, meta=meta)
    assert whole(sealed, result) == data
    layout = frames.segment_layout(result.seek_table)
    assert layout.data_frames == -(-len(data) // 4096) and layout.block_size == 4096
    fetch = Fetcher(sealed)
    assert read_metadata(fetch, len(sealed), [IDENTITY]) == meta
    info = inspect_segment(fetch, len(sealed), [IDENTITY])
    assert (info.age_header, info.seek_table, info.header_mac, info.plain_size) == (
        result.age_header,
        result.seek_table,
        result.header_mac,
        len(data),
    )


def test_unicode_and_odd_names_survive_the_m_frame() -> None:
    meta = SegmentMetadata("ørg", "b", "dir/ü\u2603 \ud800x\n", content_type="a/b; c=d")
    sealed, _ = seal(b"x", meta=meta)
    assert read_metadata(Fetcher(sealed), len(sealed), [IDENTITY]) == meta


def test_read_returns_exactly_what_was_asked_and_result_waits_for_the_end() -> None:
    reader = SealingReader(io.BytesIO(data_of(200_000)), META, [RECIPIENT], block_size=BLOCK)
    assert len(reader.read(0)) == 0
    assert len(reader.read(5)) == 5
    with pytest.raises(RuntimeError):
        _ = reader.result
    buf = bytearray(70_000)
    assert reader.readinto(buf) == 70_000
    rest = reader.read()
    assert reader.read(10) == b"" and reader.result.sealed_size == 5 + 70_000 + len(rest)


def test_two_recipients_either_identity_reads() -> None:
    data = data_of(3000)
    sealed, result = seal(data, recipients=(RECIPIENT, OTHER_RECIPIENT))
    assert whole(sealed, result, (OTHER_IDENTITY,)) == data
    assert whole(sealed, result, (IDENTITY,)) == data
    with pytest.raises(SealedDataError) as info:
        whole(sealed, result, (generate_identity()[0],))
    assert info.value.kind == "no_match"


def test_incompressible_data_grows_by_at_most_a_tenth_of_a_percent_plus_1k() -> None:
    for size in (0, 1, 1000, 3 << 20):
        _sealed, result = seal(os.urandom(size), block_size=1 << 20)
        assert result.sealed_size <= size * 1.001 + 1024, (size, result.sealed_size)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgument):
        SealingReader(io.BytesIO(b""), META, [])
    with pytest.raises(InvalidArgument):
        SealingReader(io.BytesIO(b""), META, [RECIPIENT], block_size=0)
    with pytest.raises(InvalidArgument):
        SealingReader(io.BytesIO(b""), META, ["age1notarecipient"])
    sealed, result = seal(b"abc")
    for start, end in [(-1, 2), (2, 1), (0, 4)]:
        with pytest.raises(InvalidRange):
            read_range(sealed, result, start, end)
    with pytest.raises(InvalidArgument):
        unseal_range(
            0,
            1,
            age_header=result.age_header[:-1],
            payload_offset=result.payload_offset,
            seek_table=result.seek_table,
            fetch=Fetcher(sealed),
            identities=[IDENTITY],
        )


def test_sealing_memory_is_bounded() -> None:
    class Source(io.RawIOBase):
        def __init__(self, size: int) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
            n = min(len(buffer), self.left)
            buffer[:n] = os.urandom(n)
            self.left -= n
            return n

    block = 256 * 1024
    tracemalloc.start()
    try:
        reader = SealingReader(Source(24 << 20), META, [RECIPIENT], block_size=block)  # type: ignore[arg-type]
        while reader.read(1 << 20):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.result.plain_size == 24 << 20
    assert peak < 12 * block, peak


def test_a_small_object_allocates_no_block_buffers() -> None:
    """A body shorter than one block ends the source: it is not read again, so sealing
    4 KiB with 4 MiB blocks does not allocate (and zero) two 4 MiB buffers to learn that."""
    data = data_of(4096)
    calls: list[str] = []

    class Body(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            calls.append("read")
            return super().read(size)

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
            calls.append("readinto")
            return super().readinto(buffer)

    block = 4 << 20
    tracemalloc.start()
    try:
        reader = SealingReader(Body(data), META, [RECIPIENT], block_size=block)
        sealed = reader.read(-1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert whole(sealed, reader.result) == data
    assert calls == ["read", "read"]  # the block, then the end of the source
    assert peak < block // 4, peak


# --- range reads -------------------------------------------------------------------------


def aligned_segment() -> tuple[bytes, SealResult, frames.SegmentLayout]:
    """A segment whose frame boundaries fall exactly on age chunk boundaries, often."""
    frame_size = 8192
    plain_meta = SegmentMetadata(**{**META.to_fields(), "content_type": ""})
    _, probe = seal(os.urandom(4000), block_size=4000, meta=plain_meta)
    entries = frames.parse_seek_table(probe.seek_table)
    block = frame_size - (entries[1].compressed - 4000)
    pad = (-entries[0].compressed) % frame_size
    meta = SegmentMetadata(**{**META.to_fields(), "content_type": "x" * pad})
    data = os.urandom(block * 40 + 123)
    sealed, result = seal(data, block_size=block, meta=meta)
    layout = frames.segment_layout(result.seek_table)
    assert layout.entries[0].compressed % frame_size == 0, "M frame not aligned"
    assert all(entry.compressed == frame_size for entry in layout.entries[1:-2]), (
        "frames not aligned"
    )
    assert sum(1 for off in layout.offsets if off % CHUNK_SIZE == 0) >= 4
    return sealed, result, layout


@pytest.mark.parametrize("kind", ["aligned", "mixed"])
def test_range_reads_exact_at_every_frame_and_chunk_boundary(kind: str) -> None:
    if kind == "aligned":
        sealed, result, layout = aligned_segment()
    else:
        data = data_of(40 * 4096 + 77, seed=3)
        sealed, result = seal(data, block_size=4096)
        layout = frames.segment_layout(result.seek_table)
    data = whole(sealed, result)
    size = len(data)
    # Plaintext positions at every frame boundary and at the plaintext positions whose
    # frames start or end on (or next to) a chunk boundary.
    points = {0, size}
    for i in range(1, layout.data_frames + 2):
        p = layout.plain_start(i)
        points.update({p - 1, p, p + 1})
    points = {p for p in points if 0 <= p <= size}
    ordered = sorted(points)
    for i, start in enumerate(ordered):
        for end in [*ordered[i : i + 4], size]:
            fetch = Fetcher(sealed)
            assert read_range(sealed, result, start, end, fetch) == data[start:end], (start, end)
            if start == end:
                assert not fetch.calls
                continue
            assert len(fetch.calls) == 1
            offset, length = fetch.calls[0]
            wanted = layout.frames_for(start, end)
            z0, z1 = layout.offsets[wanted.start], layout.offsets[wanted.stop]
            k0, k1 = z0 // CHUNK_SIZE, (z1 - 1) // CHUNK_SIZE
            assert offset == result.payload_offset + k0 * SEALED_CHUNK_SIZE
            assert length == min(result.sealed_size - offset, (k1 - k0 + 1) * SEALED_CHUNK_SIZE)


def test_small_range_fetches_only_the_chunks_of_its_frame() -> None:
    data = os.urandom(BLOCK * 8)
    sealed, result = seal(data, block_size=BLOCK)
    fetch = Fetcher(sealed)
    start = BLOCK * 4 + 100
    assert read_range(sealed, result, start, start + 4096, fetch) == data[start : start + 4096]
    ((_, length),) = fetch.calls
    assert length <= 3 * SEALED_CHUNK_SIZE  # one frame of ~64 KiB spans at most 2 chunks, +1


# --- tampering ---------------------------------------------------------------------------


def flip(data: bytes, pos: int, bit: int = 1) -> bytes:
    out = bytearray(data)
    out[pos] ^= bit
    return bytes(out)


def rejects(sealed: bytes, result: SealResult | None) -> SealedDataError:
    with pytest.raises(SealedDataError) as info:
        whole(sealed, result)
    return info.value


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, bytes, SealResult]:
    data = data_of(3 * CHUNK_SIZE + 1000, seed=9)
    sealed, result = seal(data, block_size=40_000)
    return data, sealed, result


def test_every_header_byte_is_protected(sample: tuple[bytes, bytes, SealResult]) -> None:
    _, sealed, result = sample
    for pos in range(result.payload_offset):
        for expected in (result, None):
            err = rejects(flip(sealed, pos), expected)
            assert err.segment == "seg"


def test_payload_flips_are_detected_with_segment_and_offset(
    sample: tuple[bytes, bytes, SealResult],
) -> None:
    _, sealed, result = sample
    chunks = -(-(len(sealed) - result.payload_offset) // SEALED_CHUNK_SIZE)
    for k in range(chunks):
        base = result.payload_offset + k * SEALED_CHUNK_SIZE
        end = min(base + SEALED_CHUNK_SIZE, len(sealed))
        for pos in (base, base + 1, (base + end) // 2, end - 17, end - 1):
            err = rejects(flip(sealed, pos, 0x80), result)
            assert err.kind == "payload" and err.offset == base
            assert "seg" in str(err) and str(base) in str(err)


def test_seek_table_in_the_blob_is_protected(sample: tuple[bytes, bytes, SealResult]) -> None:
    _, sealed, result = sample
    # The seek table is the end of the stream: its ciphertext is the blob's tail, before the tag.
    table_len = len(result.seek_table)
    for back in range(17, 17 + table_len):
        err = rejects(flip(sealed, len(sealed) - back), result)
        assert err.kind == "payload"


def test_tampered_stored_seek_table_never_yields_wrong_bytes(
    sample: tuple[bytes, bytes, SealResult],
) -> None:
    data, sealed, result = sample
    detected = 0
    for pos in range(len(result.seek_table)):
        for bit in (1, 0x80):
            table = flip(result.seek_table, pos, bit)
            tampered = SealResult(**{**result.__dict__, "seek_table": table})
            try:
                got = read_range(sealed, tampered, 0, len(data))
            except (SealedDataError, InvalidRange):
                detected += 1
                continue
            assert got == data, pos
    assert detected == 2 * len(result.seek_table)


def test_truncation_at_each_chunk_boundary_is_detected(
    sample: tuple[bytes, bytes, SealResult],
) -> None:
    _, sealed, result = sample
    cuts = [
        *list(range(result.payload_offset, len(sealed), SEALED_CHUNK_SIZE)),
        len(sealed) - 1,
        len(sealed) - 16,
    ]
    for cut in cuts:
        err = rejects(sealed[:cut], result)
        assert err.kind in {"payload", "header"}
    for cut in (0, 10, result.payload_offset - 1):
        rejects(sealed[:cut], result)


def test_swapped_chunks_and_appended_bytes_are_detected(
    sample: tuple[bytes, bytes, SealResult],
) -> None:
    _, sealed, result = sample
    p, s = result.payload_offset, SEALED_CHUNK_SIZE
    swapped = sealed[:p] + sealed[p + s : p + 2 * s] + sealed[p : p + s] + sealed[p + 2 * s :]
    assert rejects(swapped, result).kind == "payload"
    for extra in (b"\0", os.urandom(16), sealed[p : p + s]):
        assert rejects(sealed + extra, result).kind == "payload"
    # A range read of the last chunks of a longer (appended-to) blob sees the same recorded
    # layout, so it fetches exactly the recorded chunks and is unaffected by extra bytes.
    assert read_range(sealed + b"junk", result, 0, 10) == whole(sealed)[:10]


def test_blob_swapped_for_another_of_the_same_org_is_detected(
    sample: tuple[bytes, bytes, SealResult],
) -> None:
    data, _sealed, result = sample
    other, other_result = seal(data, block_size=40_000)
    err = rejects(other, result)
    assert err.kind == "mismatch"
    assert whole(other, other_result) == data  # it is a fine segment on its own
    with pytest.raises(SealedDataError) as info:
        read_range(other, result, 0, 100)
    assert info.value.kind == "payload"


def test_damaged_stream_inside_valid_encryption_is_a_format_error() -> None:
    """A segment re-encrypted by someone holding the recipient (not the key) is still checked."""
    from gateway.sealing import age

    data = data_of(10_000)
    sealed, result = seal(data, block_size=4096)
    stream = b"".join(age.decrypt(io.BytesIO(sealed), [IDENTITY]))
    layout = frames.segment_layout(result.seek_table)
    bad_table = stream[:-9] + struct.pack("<IBI", 99, 0x80, frames.SEEKABLE_FOOTER_MAGIC)
    cut_frame = stream[: layout.offsets[2] - 3] + stream[layout.offsets[2] :]
    for damaged in (bad_table, cut_frame, stream + b"x", b"\x00" + stream):
        resealed = age.encrypt(damaged, [RECIPIENT])
        with pytest.raises(IntegrityError):
            whole(resealed)


def test_verify_digests_checks_the_trailer() -> None:
    data = data_of(5000)
    sealed, _ = seal(data)
    assert b"".join(unseal(io.BytesIO(sealed), [IDENTITY], verify_digests=True)) == data


def test_sources_with_only_read_or_short_reads() -> None:
    data = data_of(5 * 4096 + 3)

    class ReadOnly(io.RawIOBase):
        """Implements read() only (readinto raises NotImplementedError), in short pieces."""

        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            return self.inner.read(min(size, 1000))

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def,override]
            return self.inner.readinto(memoryview(buffer)[:777])

    for source in (ReadOnly(), Trickle()):
        reader = SealingReader(source, META, [RECIPIENT], block_size=4096)  # type: ignore[arg-type]
        sealed = reader.read()
        assert whole(sealed, reader.result) == data
        assert frames.segment_layout(reader.result.seek_table).data_frames == 6


def test_readers_drained_by_other_threads_interleaved() -> None:
    """Readers made in one thread and drained, interleaved, by others give sound segments."""
    import threading

    datas = [data_of(300_000, seed=i) for i in range(4)]
    readers = [SealingReader(io.BytesIO(d), META, [RECIPIENT], block_size=4096) for d in datas]
    outs: list[bytearray] = [bytearray() for _ in readers]

    def drain(which: list[int]) -> None:
        while which:
            for i in list(which):
                piece = readers[i].read(10_000)
                if piece:
                    outs[i] += piece
                else:
                    which.remove(i)

    threads = [
        threading.Thread(target=drain, args=([0, 1],)),
        threading.Thread(target=drain, args=([2, 3],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for data, out, reader in zip(datas, outs, readers, strict=True):
        assert whole(bytes(out), reader.result) == data
