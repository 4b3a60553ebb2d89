"""Containers: members copied byte for byte, a sealed index, a footer, and range reads."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator

import pytest

from gateway.errors import IntegrityError
from gateway.sealing import SealingReader, SealResult, SegmentMetadata, generate_identity, unseal
from gateway.sealing.container import (
    FOOTER_SIZE,
    ContainerReader,
    ContainerWriter,
    parse_footer,
    read_container_index,
)
from gateway.sealing.errors import SealedDataError

IDENTITY, RECIPIENT = generate_identity()
VAULT_IDENTITY, VAULT_RECIPIENT = generate_identity()


def seal(
    data: bytes, meta: SegmentMetadata, recipient: str = RECIPIENT
) -> tuple[bytes, SealResult]:
    reader = SealingReader(io.BytesIO(data), meta, [recipient], block_size=16 * 1024)
    sealed = reader.read()
    return sealed, reader.result


def build(
    items: list[tuple[bytes, SegmentMetadata, SealResult]], recipient: str = RECIPIENT
) -> tuple[bytes, ContainerWriter]:
    writer = ContainerWriter(((io.BytesIO(s), m, r) for s, m, r in items), [recipient])
    out = bytearray()
    while piece := writer.read(70_000):
        out += piece
    return bytes(out), writer


class Fetcher:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> Iterator[bytes]:
        self.calls.append((offset, length))
        yield self.blob[offset : offset + length]


@pytest.fixture(scope="module")
def packed() -> tuple[
    dict[str, bytes], list[tuple[bytes, SegmentMetadata, SealResult]], bytes, ContainerWriter
]:
    objects = {f"small/{i}": os.urandom(i * 7000) + b"text " * i * 100 for i in range(6)}
    items = []
    for key, data in objects.items():
        meta = SegmentMetadata("acme", "backups", key, content_type="application/octet-stream")
        sealed, result = seal(data, meta)
        items.append((sealed, meta, result))
    blob, writer = build(items)
    return objects, items, blob, writer


def test_members_are_copied_byte_for_byte(packed) -> None:  # type: ignore[no-untyped-def]
    objects, items, blob, writer = packed
    result = writer.result
    assert result.size == len(blob)
    for (sealed, meta, seal_result), member in zip(items, result.members, strict=True):
        assert blob[member.offset : member.offset + member.sealed_size] == sealed
        assert member.metadata == meta and member.header_mac == seal_result.header_mac
        assert member.seek_table == seal_result.seek_table
        # each member is still a complete segment on its own
        plain = b"".join(
            unseal(io.BytesIO(sealed), [IDENTITY], expected_header_mac=member.header_mac)
        )
        assert plain == objects[meta.key]
    assert parse_footer(blob[-FOOTER_SIZE:], len(blob)) == (
        len(items),
        result.index_offset,
        result.index_length,
    )
    assert writer.members == list(result.members)


def test_reader_finds_members_by_name_and_range_reads_them(packed) -> None:  # type: ignore[no-untyped-def]
    objects, _, blob, writer = packed
    fetch = Fetcher(blob)
    reader = ContainerReader(
        fetch, len(blob), [IDENTITY], expected_index_mac=writer.result.index.header_mac
    )
    assert [m.metadata.key for m in reader.members] == list(objects)
    for key, data in objects.items():
        (member,) = reader.find("backups", key)
        assert b"".join(reader.read(member)) == data
        if len(data) > 20:
            fetch.calls.clear()
            assert b"".join(reader.read(member, 7, len(data) - 9)) == data[7:-9]
            assert len(fetch.calls) == 2  # the member's header, then one range
            assert all(
                member.offset <= off and off + n <= member.offset + member.sealed_size
                for off, n in fetch.calls
            )
    assert reader.find("backups", "missing") == []
    assert reader.find("other", "small/1") == []


def test_multipart_parts_are_found_in_order() -> None:
    parts = [os.urandom(20_000 + i) for i in range(4)]
    items = []
    for number in (3, 1, 4, 2):
        meta = SegmentMetadata("acme", "b", "big.iso", part_number=number, upload_id="up-1")
        sealed, result = seal(parts[number - 1], meta)
        items.append((sealed, meta, result))
    blob, _ = build(items)
    reader = ContainerReader(Fetcher(blob), len(blob), [IDENTITY])
    found = reader.find("b", "big.iso")
    assert [m.metadata.part_number for m in found] == [1, 2, 3, 4]
    assert b"".join(b"".join(reader.read(m)) for m in found) == b"".join(parts)


def test_empty_container_and_vault_members_need_no_decryption() -> None:
    blob, _writer = build([])
    assert read_container_index(Fetcher(blob), len(blob), [IDENTITY]) == []
    # A vault member is sealed to its owner: the container is still built (never decrypted).
    meta = SegmentMetadata("acme", "vault", "secret")
    sealed, result = seal(b"owner only", meta, VAULT_RECIPIENT)
    blob, _ = build([(sealed, meta, result)])
    (member,) = read_container_index(Fetcher(blob), len(blob), [IDENTITY])
    reader = ContainerReader(Fetcher(blob), len(blob), [IDENTITY])
    with pytest.raises(SealedDataError) as info:
        b"".join(reader.read(member))
    assert info.value.kind == "no_match"
    owner = ContainerReader(Fetcher(blob), len(blob), [IDENTITY, VAULT_IDENTITY])
    assert b"".join(owner.read(member)) == b"owner only"


def test_writer_refuses_a_member_that_does_not_match_its_record(packed) -> None:  # type: ignore[no-untyped-def]
    _, items, _, _ = packed
    (sealed, meta, result), (other, _, _) = items[2], items[3]
    for bad in (sealed[:-1], sealed + b"x", other):
        with pytest.raises(SealedDataError) as info:
            build([(bad, meta, result)])
        assert info.value.kind == "mismatch"


def test_any_flip_in_index_or_footer_is_detected(packed) -> None:  # type: ignore[no-untyped-def]
    _, _, blob, writer = packed
    start = writer.result.index_offset
    positions = list(range(start, start + 400, 7)) + list(
        range(len(blob) - FOOTER_SIZE - 100, len(blob))
    )
    for pos in positions:
        damaged = bytearray(blob)
        damaged[pos] ^= 0x04
        with pytest.raises(IntegrityError):
            read_container_index(Fetcher(bytes(damaged)), len(damaged), [IDENTITY])


def test_swapped_index_and_member_headers_are_detected(packed) -> None:  # type: ignore[no-untyped-def]
    objects, items, blob, writer = packed
    other_blob, other_writer = build(items[:2])
    # The index of another container of the same org, spliced in with a matching footer.
    index = other_blob[other_writer.result.index_offset : -FOOTER_SIZE]
    spliced_footer = bytearray(blob[-FOOTER_SIZE:])
    body = blob[: writer.result.index_offset] + index
    from gateway.sealing.container import footer_bytes

    spliced = body + footer_bytes(2, writer.result.index_offset, len(index))
    assert bytes(spliced_footer) != spliced[-FOOTER_SIZE:]
    with pytest.raises(SealedDataError) as info:
        read_container_index(
            Fetcher(spliced),
            len(spliced),
            [IDENTITY],
            expected_index_mac=writer.result.index.header_mac,
        )
    assert info.value.kind == "mismatch"
    # Without the recorded MAC the index is a valid one, but it no longer tiles the blob.
    with pytest.raises(SealedDataError):
        read_container_index(Fetcher(spliced), len(spliced), [IDENTITY])
    # A member whose bytes were replaced by another segment of the same org.
    reader = ContainerReader(Fetcher(blob), len(blob), [IDENTITY])
    m0, m1 = reader.members[1], reader.members[2]
    swapped = bytearray(blob)
    replacement = seal(b"x" * 10, SegmentMetadata("acme", "backups", "evil"))[0]
    swapped[m0.offset : m0.offset + len(replacement)] = replacement
    tampered = ContainerReader(Fetcher(bytes(swapped)), len(swapped), [IDENTITY])
    with pytest.raises(SealedDataError) as info:
        b"".join(tampered.read(tampered.members[1]))
    assert info.value.kind in {"mismatch", "header"}
    assert b"".join(tampered.read(m1)) == objects[m1.metadata.key]


def test_footer_layout_is_fixed() -> None:
    blob, writer = build([])
    footer = blob[-FOOTER_SIZE:]
    version, flags, count, offset, length = struct.unpack_from("<IIQQQ", footer)
    assert (version, flags, count, offset, length) == (1, 0, 0, 0, writer.result.index_length)
    assert footer[-8:] == b"COOLPACK" and footer[32:52] == bytes(20)
