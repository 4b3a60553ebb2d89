"""Containers: sealed segments concatenated byte for byte, a sealed index and a fixed footer.

A container packs many small objects, or the parts of one multipart object, into one blob
so Deep Archive sees few objects. Building one never decrypts a member: member bytes are
copied as they are, so it works for customer-held keys too. Layout::

    member 0 | member 1 | ... | index segment | footer (64 bytes)

The index is itself a sealed segment (M frame kind ``container-index``) whose plaintext is
``coolstorage.index.v1\\n`` then one JSON object per member. The footer (little-endian)::

    0  u32 version (1)       4  u32 flags (0)        8  u64 member count
    16 u64 index offset      24 u64 index length     32 20 reserved zero bytes
    52 u32 CRC-32 of bytes 0..51                     56 8-byte magic "COOLPACK"
"""

from __future__ import annotations

import base64
import hmac
import io
import json
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidArgument
from gateway.sealing import age
from gateway.sealing.errors import FORMAT, MISMATCH, SealedDataError
from gateway.sealing.segment import (
    DEFAULT_LEVEL,
    KIND_CONTAINER_INDEX,
    Fetch,
    Identities,
    SealingReader,
    SealResult,
    SegmentMetadata,
    unseal,
    unseal_range,
)
from gateway.streams import Readable

FOOTER_MAGIC = b"COOLPACK"
FOOTER_SIZE = 64
FOOTER_VERSION = 1
INDEX_NAME = "coolstorage.index"
INDEX_VERSION = 1
_FOOTER = struct.Struct("<IIQQQ20sI8s")
_COPY_SIZE = 1 << 20
_SPOOL_SIZE = 8 << 20


@dataclass(frozen=True)
class ContainerMember:
    """One segment inside a container: where it is and what it is."""

    metadata: SegmentMetadata
    offset: int
    sealed_size: int
    plain_size: int
    md5: str
    sha256: str
    payload_offset: int
    seek_table: bytes
    header_mac: bytes

    def to_fields(self) -> dict[str, Any]:
        fields = self.metadata.to_fields()
        fields.update(
            offset=self.offset,
            sealed_size=self.sealed_size,
            plain_size=self.plain_size,
            md5=self.md5,
            sha256=self.sha256,
            payload_offset=self.payload_offset,
            seek_table=base64.b64encode(self.seek_table).decode(),
            header_mac=self.header_mac.hex(),
        )
        return fields

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> ContainerMember:
        try:
            return cls(
                metadata=SegmentMetadata.from_fields(fields),
                offset=int(fields["offset"]),
                sealed_size=int(fields["sealed_size"]),
                plain_size=int(fields["plain_size"]),
                md5=str(fields["md5"]),
                sha256=str(fields["sha256"]),
                payload_offset=int(fields["payload_offset"]),
                seek_table=base64.b64decode(fields["seek_table"], validate=True),
                header_mac=bytes.fromhex(fields["header_mac"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad index entry ({exc})") from None


@dataclass(frozen=True)
class ContainerResult:
    """What writing a container produced."""

    size: int
    members: tuple[ContainerMember, ...]
    index_offset: int
    index_length: int
    #: The index segment's description (its header MAC can be recorded and checked on read).
    index: SealResult


def footer_bytes(member_count: int, index_offset: int, index_length: int) -> bytes:
    """The 64-byte footer."""
    head = _FOOTER.pack(
        FOOTER_VERSION, 0, member_count, index_offset, index_length, bytes(20), 0, FOOTER_MAGIC
    )
    crc = zlib.crc32(head[:52])
    return head[:52] + struct.pack("<I", crc) + FOOTER_MAGIC


def parse_footer(data: bytes, size: int, *, name: str = "") -> tuple[int, int, int]:
    """``(member count, index offset, index length)`` from a container's last 64 bytes."""
    where = max(size - FOOTER_SIZE, 0)
    if len(data) != FOOTER_SIZE or data[-8:] != FOOTER_MAGIC:
        raise SealedDataError("no container footer", segment=name, offset=where, kind=FORMAT)
    version, flags, count, index_offset, index_length, _, crc, _ = _FOOTER.unpack(data)
    if zlib.crc32(data[:52]) != crc:
        raise SealedDataError(
            "the container footer checksum fails", segment=name, offset=where, kind=FORMAT
        )
    if version != FOOTER_VERSION:
        raise SealedDataError(
            f"container version {version} is newer than this reader",
            segment=name,
            offset=where,
            kind=FORMAT,
        )
    if flags or index_offset + index_length + FOOTER_SIZE != size:
        raise SealedDataError(
            "the container footer does not describe this blob",
            segment=name,
            offset=where,
            kind=FORMAT,
        )
    return count, index_offset, index_length


class ContainerWriter(io.RawIOBase):
    """A read-only file object yielding a container built from already sealed segments.

    ``members`` yields, for each segment, a stream of its sealed bytes with its metadata and
    :class:`SealResult` (as recorded in the catalog). Each is copied byte for byte; its
    length and leading bytes (the age header) are checked against the record so a wrong
    blob is never packed. The index is sealed to ``recipients``. After the last byte has
    been read, :attr:`result` tells each member's offset.
    """

    def __init__(
        self,
        members: Iterable[tuple[Readable, SegmentMetadata, SealResult]],
        recipients: Sequence[str],
        *,
        index_metadata: SegmentMetadata | None = None,
        level: int = DEFAULT_LEVEL,
    ) -> None:
        super().__init__()
        if not recipients:
            raise InvalidArgument("a container index needs at least one recipient")
        self._sources = iter(members)
        self._recipients = tuple(recipients)
        self._index_metadata = index_metadata
        self._level = level
        self._members: list[ContainerMember] = []
        self._offset = 0
        self._current: tuple[Readable, SegmentMetadata, SealResult] | None = None
        self._copied = 0
        self._head = bytearray()
        # Lives as long as this writer: closed when the index is sealed, or by close().
        self._index_lines: Any = tempfile.SpooledTemporaryFile(max_size=_SPOOL_SIZE)  # noqa: SIM115
        self._index_lines.write(f"{INDEX_NAME}.v{INDEX_VERSION}\n".encode())
        self._index_reader: SealingReader | None = None
        self._footer: bytes | None = None
        self._footer_pos = 0
        self._result: ContainerResult | None = None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._index_lines.close()
        super().close()

    @property
    def members(self) -> list[ContainerMember]:
        """The members copied so far, with their offsets."""
        return list(self._members)

    @property
    def result(self) -> ContainerResult:
        if self._result is None:
            raise RuntimeError("the container has not been read to its end")
        return self._result

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while part := self.read(_COPY_SIZE):
                parts.append(part)
            return b"".join(parts)
        parts = []
        want = size
        while want:
            piece = self._next(want)
            if not piece:
                break
            parts.append(piece)
            want -= len(piece)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _next(self, size: int) -> bytes:
        """Up to ``size`` next bytes (fewer at a boundary); empty at the end."""
        while True:
            if self._footer is not None:
                piece = self._footer[self._footer_pos : self._footer_pos + size]
                self._footer_pos += len(piece)
                return piece
            if self._index_reader is not None:
                piece = self._index_reader.read(size)
                if piece:
                    return piece
                self._finish()
                continue
            if self._current is None:
                source = next(self._sources, None)
                if source is None:
                    self._start_index()
                    continue
                self._current = source
                self._copied = 0
                self._head = bytearray()
            stream, metadata, seal = self._current
            left = seal.sealed_size - self._copied
            piece = stream.read(min(size, left, _COPY_SIZE)) if left else b""
            if piece:
                if len(self._head) < seal.payload_offset:
                    self._head += piece[: seal.payload_offset - len(self._head)]
                    if not seal.age_header.startswith(bytes(self._head)):
                        raise SealedDataError(
                            "a member's bytes do not start with its recorded header",
                            segment=metadata.key,
                            kind=MISMATCH,
                        )
                self._copied += len(piece)
                return bytes(piece)
            if left or stream.read(1):
                raise SealedDataError(
                    f"a member is not {seal.sealed_size} bytes long as recorded",
                    segment=metadata.key,
                    kind=MISMATCH,
                )
            self._add_member(metadata, seal)
            self._current = None

    def _add_member(self, metadata: SegmentMetadata, seal: SealResult) -> None:
        member = ContainerMember(
            metadata=metadata,
            offset=self._offset,
            sealed_size=seal.sealed_size,
            plain_size=seal.plain_size,
            md5=seal.md5,
            sha256=seal.sha256,
            payload_offset=seal.payload_offset,
            seek_table=seal.seek_table,
            header_mac=seal.header_mac,
        )
        self._members.append(member)
        self._offset += seal.sealed_size
        line = json.dumps(
            member.to_fields(), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )
        self._index_lines.write(line.encode("ascii") + b"\n")

    def _start_index(self) -> None:
        self._index_lines.seek(0)
        org = self._members[0].metadata.org if self._members else ""
        metadata = self._index_metadata or SegmentMetadata(org=org, bucket="", key="")
        if metadata.kind != KIND_CONTAINER_INDEX:
            metadata = SegmentMetadata(**{**metadata.to_fields(), "kind": KIND_CONTAINER_INDEX})
        self._index_reader = SealingReader(
            self._index_lines, metadata, self._recipients, level=self._level
        )

    def _finish(self) -> None:
        assert self._index_reader is not None
        index = self._index_reader.result
        self._index_lines.close()
        self._footer = footer_bytes(len(self._members), self._offset, index.sealed_size)
        self._result = ContainerResult(
            size=self._offset + index.sealed_size + FOOTER_SIZE,
            members=tuple(self._members),
            index_offset=self._offset,
            index_length=index.sealed_size,
            index=index,
        )


class _PiecesReader(io.RawIOBase):
    """A file object over an iterable of byte pieces."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        super().__init__()
        self._pieces = iter(pieces)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._buf + b"".join(self._pieces)
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._buf = bytes(piece)
        out, self._buf = self._buf[:size], self._buf[size:]
        return out


def _member_fetch(fetch: Fetch, member: ContainerMember) -> Fetch:
    def member_fetch(offset: int, length: int) -> Iterable[bytes]:
        if offset < 0 or offset + length > member.sealed_size:
            raise InvalidArgument("a read beyond the member's bytes")
        return fetch(member.offset + offset, length)

    return member_fetch


def read_container_index(
    fetch: Fetch,
    size: int,
    identities: Identities,
    *,
    expected_index_mac: bytes | None = None,
    name: str = "",
) -> list[ContainerMember]:
    """The members of a container blob of ``size`` bytes, from its footer and sealed index."""
    if size < FOOTER_SIZE:
        raise SealedDataError("too short for a container", segment=name, offset=0, kind=FORMAT)
    footer = b"".join(fetch(size - FOOTER_SIZE, FOOTER_SIZE))
    count, index_offset, index_length = parse_footer(footer, size, name=name)
    label = f"{name or 'container'} index"
    plain = unseal(
        _PiecesReader(fetch(index_offset, index_length)),
        identities,
        expected_header_mac=expected_index_mac,
        name=label,
        verify_digests=True,
    )
    lines = b"".join(plain).split(b"\n")
    if lines[0] != f"{INDEX_NAME}.v{INDEX_VERSION}".encode() or lines[-1] != b"":
        raise SealedDataError(
            "not a container index of a known version",
            segment=label,
            offset=index_offset,
            kind=FORMAT,
        )
    members = []
    end = 0
    for line in lines[1:-1]:
        try:
            member = ContainerMember.from_fields(json.loads(line))
        except ValueError as exc:
            raise SealedDataError(
                str(exc), segment=label, offset=index_offset, kind=FORMAT
            ) from None
        if member.offset != end or member.sealed_size <= member.payload_offset:
            raise SealedDataError(
                "index entries do not tile the container",
                segment=label,
                offset=index_offset,
                kind=FORMAT,
            )
        end += member.sealed_size
        members.append(member)
    if len(members) != count or end != index_offset:
        raise SealedDataError(
            "the index does not match the footer", segment=label, offset=index_offset, kind=FORMAT
        )
    return members


class ContainerReader:
    """Finds members of a container by name and range-reads them, without the catalog."""

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        identities: Identities,
        *,
        expected_index_mac: bytes | None = None,
        name: str = "",
    ) -> None:
        self._fetch = fetch
        self._identities = tuple(identities)
        self._name = name
        self.members = read_container_index(
            fetch, size, identities, expected_index_mac=expected_index_mac, name=name
        )

    def find(self, bucket: str, key: str, *, org: str | None = None) -> list[ContainerMember]:
        """The members holding ``bucket``/``key`` (several for a multipart object, by part number)."""
        found = [
            m
            for m in self.members
            if m.metadata.bucket == bucket
            and m.metadata.key == key
            and (org is None or m.metadata.org == org)
        ]
        return sorted(found, key=lambda m: m.metadata.part_number or 0)

    def read(
        self, member: ContainerMember, start: int = 0, end: int | None = None
    ) -> Iterator[bytes]:
        """Plaintext ``[start, end)`` of ``member`` (the whole of it by default).

        Reads the member's header (checking it against the index's header MAC), then one
        range of exactly the chunks the range needs.
        """
        fetch = _member_fetch(self._fetch, member)
        label = f"{self._name or 'container'}:{member.metadata.key}"
        header = b"".join(fetch(0, member.payload_offset))
        parsed = age.parse_header(header[: -age.NONCE_SIZE], segment=label)
        if not hmac.compare_digest(parsed.mac, member.header_mac):
            raise SealedDataError(
                "the member's header MAC differs from the index's", segment=label, kind=MISMATCH
            )
        return unseal_range(
            start,
            member.plain_size if end is None else end,
            age_header=header,
            payload_offset=member.payload_offset,
            seek_table=member.seek_table,
            fetch=fetch,
            identities=self._identities,
            name=label,
        )
