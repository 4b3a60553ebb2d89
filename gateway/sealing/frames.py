"""The zstd side of a segment: skippable frames, the metadata frames and the seek table.

The plaintext of a segment's age payload is a Zstandard stream in the seekable format
(facebook/zstd ``contrib/seekable_format``)::

    M frame        skippable, magic 0x184D2A5C: "coolstorage.meta.v1\\n" + JSON + "\\n"
    data frames    one independent zstd frame per plaintext block, content size and checksum set
    T frame        skippable, magic 0x184D2A5D: "coolstorage.trailer.v1\\n" + JSON + "\\n"
    seek table     skippable, magic 0x184D2A5E: entries (compressed size, decompressed size,
                   XXH64 low 32 bits) for every frame above, then the 9-byte footer

``zstd -d`` skips all three skippable frames and prints exactly the plaintext. The M and T
payloads start with a versioned name line; a reader accepts every version it knows and
rejects newer ones by name. JSON readers ignore fields they do not know.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ZSTD_MAGIC = 0xFD2FB528
SKIPPABLE_MASK = 0xFFFFFFF0
SKIPPABLE_BASE = 0x184D2A50
META_MAGIC = 0x184D2A5C
TRAILER_MAGIC = 0x184D2A5D
SEEK_TABLE_MAGIC = 0x184D2A5E
SEEKABLE_FOOTER_MAGIC = 0x8F92EAB1
CHECKSUM_FLAG = 0x80
RESERVED_BITS = 0x7C
SEEK_FOOTER_SIZE = 9
#: Low 32 bits of XXH64 of no bytes: the checksum entry of a skippable frame.
EMPTY_CHECKSUM = 0x51D8E999
#: Largest M or T payload a reader accepts (keys are at most 1 KiB; this leaves room).
MAX_META_SIZE = 1 << 20

META_NAME = "coolstorage.meta"
TRAILER_NAME = "coolstorage.trailer"
META_VERSIONS = frozenset({1})
TRAILER_VERSIONS = frozenset({1})

_NAME_LINE = re.compile(rb"(coolstorage\.[a-z]+)\.v([0-9]{1,6})\n")


class FrameError(ValueError):
    """Bytes that are not a valid frame or table of this format."""


def skippable_frame(magic: int, payload: bytes) -> bytes:
    """A zstd skippable frame with ``magic`` holding ``payload``."""
    return struct.pack("<II", magic, len(payload)) + payload


def is_skippable(magic: int) -> bool:
    return magic & SKIPPABLE_MASK == SKIPPABLE_BASE


def _versioned(name: str, version: int, fields: dict[str, Any]) -> bytes:
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return f"{name}.v{version}\n{body}\n".encode("ascii")


def parse_versioned(
    payload: bytes, name: str, versions: frozenset[int]
) -> tuple[int, dict[str, Any]]:
    """Split ``<name>.v<N>\\n<json>\\n`` and check the name and that version N is known."""
    match = _NAME_LINE.match(payload)
    if not match or match.group(1).decode() != name:
        raise FrameError(f"not a {name} record")
    version = int(match.group(2))
    if version not in versions:
        raise FrameError(f"{name} version {version} is newer than this reader ({sorted(versions)})")
    try:
        fields = json.loads(payload[match.end() :])
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"{name}: bad JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise FrameError(f"{name}: not a JSON object")
    return version, fields


def meta_payload(fields: dict[str, Any]) -> bytes:
    return _versioned(META_NAME, 1, fields)


def trailer_payload(fields: dict[str, Any]) -> bytes:
    return _versioned(TRAILER_NAME, 1, fields)


@dataclass(frozen=True)
class SeekEntry:
    """One frame of the stream: compressed and decompressed sizes and checksum (or None)."""

    compressed: int
    decompressed: int
    checksum: int | None


def seek_table_frame(entries: Sequence[SeekEntry]) -> bytes:
    """The seek table skippable frame, with checksums, for ``entries``."""
    parts = [struct.pack("<III", e.compressed, e.decompressed, e.checksum or 0) for e in entries]
    parts.append(struct.pack("<IBI", len(entries), CHECKSUM_FLAG, SEEKABLE_FOOTER_MAGIC))
    return skippable_frame(SEEK_TABLE_MAGIC, b"".join(parts))


def seek_table_size(footer: bytes) -> int:
    """The size of a whole seek table frame, from its last 9 bytes."""
    count, descriptor, magic = struct.unpack("<IBI", footer)
    if magic != SEEKABLE_FOOTER_MAGIC:
        raise FrameError("no seekable footer magic")
    entry = 12 if descriptor & CHECKSUM_FLAG else 8
    return 8 + count * entry + SEEK_FOOTER_SIZE


def parse_seek_table(frame: bytes) -> list[SeekEntry]:
    """Parse a whole seek table frame (skippable header included), strictly."""
    if len(frame) < 8 + SEEK_FOOTER_SIZE:
        raise FrameError("seek table too short")
    magic, size = struct.unpack_from("<II", frame)
    if magic != SEEK_TABLE_MAGIC or size != len(frame) - 8:
        raise FrameError("bad seek table frame header")
    count, descriptor, footer_magic = struct.unpack_from(
        "<IBI", frame, len(frame) - SEEK_FOOTER_SIZE
    )
    if footer_magic != SEEKABLE_FOOTER_MAGIC:
        raise FrameError("bad seekable footer magic")
    if descriptor & RESERVED_BITS:
        raise FrameError("seek table reserved bits set")
    checksums = bool(descriptor & CHECKSUM_FLAG)
    entry = 12 if checksums else 8
    if size != count * entry + SEEK_FOOTER_SIZE:
        raise FrameError("seek table size does not match its frame count")
    entries = []
    for i in range(count):
        if checksums:
            c, d, x = struct.unpack_from("<III", frame, 8 + i * 12)
            entries.append(SeekEntry(c, d, x))
        else:
            c, d = struct.unpack_from("<II", frame, 8 + i * 8)
            entries.append(SeekEntry(c, d, None))
    return entries


@dataclass(frozen=True)
class SegmentLayout:
    """Where things are in a v1 segment's zstd stream, derived from its seek table.

    A v1 segment's table is ``[M, data frames..., T]``: M and T are skippable (decompressed
    size 0); every data frame but the last holds exactly ``block_size`` bytes and the last
    holds 1 to ``block_size``. Checking this regularity means a tampered size in a stored
    table is caught even when the frames it describes are never read.
    """

    entries: tuple[SeekEntry, ...]
    #: Offset of each entry's frame in the zstd stream (one more item: the seek table's offset).
    offsets: tuple[int, ...]
    block_size: int
    plain_size: int
    #: Length of the whole zstd stream (the age payload's plaintext), seek table included.
    stream_size: int

    @property
    def data_frames(self) -> int:
        return len(self.entries) - 2

    def frames_for(self, start: int, end: int) -> range:
        """Entry indexes of the data frames overlapping plaintext ``[start, end)`` (non-empty)."""
        return range(1 + start // self.block_size, 2 + (end - 1) // self.block_size)

    def plain_start(self, entry_index: int) -> int:
        return (entry_index - 1) * self.block_size


def segment_layout(seek_table: bytes) -> SegmentLayout:
    """Parse and check a v1 segment's seek table frame."""
    entries = parse_seek_table(seek_table)
    if seek_table[-5] != CHECKSUM_FLAG:
        raise FrameError("a segment's seek table descriptor is exactly the checksum flag")
    if len(entries) < 2:
        raise FrameError("a segment's seek table lists at least the M and T frames")
    for entry in (entries[0], entries[-1]):
        if (
            entry.decompressed
            or entry.checksum != EMPTY_CHECKSUM
            or not 8 < entry.compressed <= MAX_META_SIZE + 8
        ):
            raise FrameError("the first and last frames of a segment are its M and T frames")
    data = entries[1:-1]
    block = data[0].decompressed if data else 0
    for i, entry in enumerate(data):
        if entry.decompressed == 0 or entry.compressed == 0:
            raise FrameError(f"data frame {i} is empty")
        if entry.decompressed != block and (i != len(data) - 1 or entry.decompressed > block):
            raise FrameError(f"data frame {i} does not hold a whole block")
        if entry.checksum is None:
            raise FrameError("a segment's seek table carries checksums")
    offsets = [0]
    for entry in entries:
        offsets.append(offsets[-1] + entry.compressed)
    plain = sum(e.decompressed for e in data)
    return SegmentLayout(
        tuple(entries), tuple(offsets), block, plain, offsets[-1] + len(seek_table)
    )


def frame_checksum_flag(frame_header: bytes) -> bool:
    """Whether a zstd frame (magic + descriptor byte at least) carries a content checksum."""
    return bool(frame_header[4] & 0x04)
