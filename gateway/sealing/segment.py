"""Segments: ``age( zstd-seekable( M + plaintext blocks + T + seek table ) )``.

:class:`SealingReader` turns a plaintext stream into sealed bytes (a pull-model file object a
backend's ``put`` can consume), :func:`unseal` streams a whole segment back, and
:func:`unseal_range` reads a plaintext byte range with one backend range read of exactly
the age chunks that cover the zstd frames overlapping the range. docs/FORMAT.md is the
byte-level specification.

Design note: the M frame leads the stream so a segment names itself in its first age chunk,
but a streamed write only knows the plaintext's size and digests at its end. They go in the
T ("trailer") frame, a second skippable frame just before the seek table; ``zstd -d`` skips
both, and the seek table lists both (decompressed size 0) so every frame is accounted for.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import zstandard
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from gateway.errors import InvalidArgument, InvalidRange
from gateway.sealing import age, frames
from gateway.sealing.age import CHUNK_SIZE, NONCE_SIZE, SEALED_CHUNK_SIZE, TAG_SIZE
from gateway.sealing.errors import FORMAT, HEADER, MISMATCH, PAYLOAD, SealedDataError
from gateway.streams import Readable

DEFAULT_BLOCK_SIZE = 4 << 20
DEFAULT_LEVEL = 3
MAX_BLOCK_SIZE = 1 << 30
#: Blocks smaller than this are hashed inline; larger ones in a helper thread.
_INLINE_HASH = 256 << 10

KIND_OBJECT = "object"
KIND_CONTAINER_INDEX = "container-index"

Identities = Sequence[str]
Fetch = Callable[[int, int], Iterable[bytes]]


@dataclass(frozen=True)
class SegmentMetadata:
    """What a segment says about itself in its M frame (names as of write time)."""

    org: str
    bucket: str
    key: str
    part_number: int | None = None
    upload_id: str | None = None
    content_type: str = ""
    mtime: float = 0.0
    #: ``object`` for object data, ``container-index`` for a container's index.
    kind: str = KIND_OBJECT

    def to_fields(self) -> dict[str, Any]:
        return {
            "org": self.org,
            "bucket": self.bucket,
            "key": self.key,
            "part_number": self.part_number,
            "upload_id": self.upload_id,
            "content_type": self.content_type,
            "mtime": self.mtime,
            "kind": self.kind,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> SegmentMetadata:
        try:
            part = fields.get("part_number")
            upload = fields.get("upload_id")
            meta = cls(
                org=str(fields["org"]),
                bucket=str(fields["bucket"]),
                key=str(fields["key"]),
                part_number=None if part is None else int(part),
                upload_id=None if upload is None else str(upload),
                content_type=str(fields.get("content_type", "")),
                mtime=float(fields.get("mtime", 0.0)),
                kind=str(fields.get("kind", KIND_OBJECT)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise frames.FrameError(f"bad metadata fields ({exc})") from None
        return meta


@dataclass(frozen=True)
class SealResult:
    """What sealing one segment produced; the catalog keeps all of it.

    ``age_header`` is every byte of the segment before the first payload chunk: the age
    header text and the 16-byte payload nonce, so ``len(age_header) == payload_offset`` and
    a range read needs nothing else from the blob. ``seek_table`` is the whole seek table
    frame. ``header_mac`` is the age header MAC, checked on every read to detect a blob
    swapped for another segment of the same recipients.
    """

    plain_size: int
    md5: str
    sha256: str
    sealed_size: int
    age_header: bytes
    payload_offset: int
    seek_table: bytes
    header_mac: bytes
    recipients: tuple[str, ...]


_hash_pool: ThreadPoolExecutor | None = None
_hash_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _hash_pool
    if _hash_pool is None:
        with _hash_pool_lock:
            if _hash_pool is None:
                _hash_pool = ThreadPoolExecutor(
                    max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="seal-hash"
                )
    return _hash_pool


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """A per-thread compressor for ``level`` (only one-shot ``compress`` is used on it)."""
    cache: dict[int, zstandard.ZstdCompressor] | None = getattr(_local, "cctx", None)
    if cache is None:
        cache = _local.cctx = {}
    cctx = cache.get(level)
    if cctx is None:
        cctx = cache[level] = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
    return cctx


def _decompressor() -> zstandard.ZstdDecompressor:
    """A per-thread decompressor (only one-shot ``decompress`` is used on it)."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


class SealingReader(io.RawIOBase):
    """A read-only file object yielding the sealed bytes of ``plaintext``.

    Memory stays bounded by a few blocks whatever the size, when read with ``size >= 0``.
    ``read(size)`` returns exactly ``size`` bytes except at the end. After the last byte has
    been read, :attr:`result` describes the segment. Each block is hashed (MD5 and SHA-256,
    one helper-pool job each) while this thread compresses and encrypts it; hashlib, zstd
    and ChaCha20 all release the GIL, so a seal uses about two cores.
    """

    def __init__(
        self,
        plaintext: Readable,
        metadata: SegmentMetadata,
        recipients: Sequence[str],
        *,
        block_size: int = DEFAULT_BLOCK_SIZE,
        level: int = DEFAULT_LEVEL,
    ) -> None:
        super().__init__()
        if not 1 <= block_size <= MAX_BLOCK_SIZE:
            raise InvalidArgument(f"block size must be between 1 and {MAX_BLOCK_SIZE}")
        if not -7 <= level <= 22:
            raise InvalidArgument("zstd level must be between -7 and 22")
        if not recipients:
            raise InvalidArgument("a segment needs at least one recipient")
        self._src = plaintext
        self._block_size = block_size
        self._recipients = tuple(recipients)
        self._level = level
        file_key = age.new_file_key()
        header = age.build_header(file_key, self._recipients)
        nonce = secrets.token_bytes(NONCE_SIZE)
        self._cipher = age.payload_cipher(file_key, nonce)
        self._prefix = header.encoded + nonce
        self._header_mac = header.mac
        self._queue: deque[bytes] = deque([self._prefix])
        self._queue_pos = 0
        self._queued = len(self._prefix)
        self._sealed = len(self._prefix)
        self._pending = bytearray()
        self._chunk_index = 0
        self._entries: list[frames.SeekEntry] = []
        self._md5 = hashlib.md5()
        self._sha = hashlib.sha256()
        self._hashing: tuple[Future[None], ...] = ()
        self._blocks_read = 0
        self._source_ended = False
        self._readinto = getattr(plaintext, "readinto", None)
        self._buffers: tuple[bytearray, bytearray] | None = None
        self._plain_size = 0
        self._finished = False
        self._result: SealResult | None = None
        meta = frames.skippable_frame(frames.META_MAGIC, frames.meta_payload(metadata.to_fields()))
        self._add_frame(meta, 0, frames.EMPTY_CHECKSUM)

    # -- io.RawIOBase --------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while part := self.read(8 << 20):
                parts.append(part)
            return b"".join(parts)
        while self._queued < size and not self._finished:
            self._step()
        return self._take(min(size, self._queued))

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    @property
    def result(self) -> SealResult:
        """The segment's description; only once every sealed byte has been read."""
        if self._result is None or self._queued:
            raise RuntimeError("the sealed stream has not been read to its end")
        return self._result

    # -- pipeline ----------------------------------------------------------------------

    def _take(self, size: int) -> bytes:
        if not size:
            return b""
        queue = self._queue
        first = queue[0]
        if self._queue_pos == 0 and len(first) == size:
            queue.popleft()
            self._queued -= size
            return first
        parts = []
        need = size
        while need:
            head = queue[0]
            avail = len(head) - self._queue_pos
            if avail <= need:
                parts.append(memoryview(head)[self._queue_pos :] if self._queue_pos else head)
                queue.popleft()
                self._queue_pos = 0
                need -= avail
            else:
                parts.append(memoryview(head)[self._queue_pos : self._queue_pos + need])
                self._queue_pos += need
                need = 0
        self._queued -= size
        return b"".join(parts)

    def _read_block(self) -> Any:
        """The next block (a full one unless the source ends), or an empty value at the end.

        The first block is read with ``read`` (a small object allocates no more than it
        needs); later ones go with ``readinto`` into two reused buffers, alternating, so the
        one being hashed is never overwritten (and no page is faulted in per block).
        A short block means the source ended: it is not asked again (a small object would
        otherwise allocate both buffers only to learn that).
        """
        if self._source_ended:
            return b""
        if self._blocks_read and self._readinto is not None:
            if self._buffers is None:
                self._buffers = (bytearray(self._block_size), bytearray(self._block_size))
            view = memoryview(self._buffers[self._blocks_read % 2])
            got = 0
            try:
                while got < self._block_size:
                    count = self._readinto(view[got:])
                    if count is None:
                        raise InvalidArgument("the plaintext stream is non-blocking")
                    if not count:
                        break
                    got += count
            except NotImplementedError:
                if got:
                    raise
                self._readinto = None  # a file object that only implements read()
            else:
                self._blocks_read += 1
                self._source_ended = got < self._block_size
                return view[:got]
        parts = []
        got = 0
        while got < self._block_size:
            piece = self._src.read(self._block_size - got)
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        self._blocks_read += 1
        self._source_ended = got < self._block_size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _wait_hash(self) -> None:
        for job in self._hashing:
            job.result()
        self._hashing = ()

    def _step(self) -> None:
        block = self._read_block()
        size = len(block)
        if not size:
            self._finish()
            return
        self._wait_hash()
        if size < _INLINE_HASH:
            self._md5.update(block)
            self._sha.update(block)
        else:
            pool = _pool()
            self._hashing = (
                pool.submit(self._md5.update, block),
                pool.submit(self._sha.update, block),
            )
        # A chunker emits the frame in 64 KiB pieces: no large output buffer to allocate
        # (and page-fault) per block, which costs more than the compression of random data.
        # The compressor is the current thread's: a reader may be drained by another thread
        # than the one that made it, and a block is compressed within this one call.
        chunker = _compressor(self._level).chunker(size=size, chunk_size=CHUNK_SIZE)
        compressed = 0
        tail = b""
        for finish in (False, True):
            for piece in chunker.finish() if finish else chunker.compress(block):
                compressed += len(piece)
                tail = piece[-4:] if len(piece) >= 4 else (tail + piece)[-4:]
                self._encrypt(piece, final=False)
        self._plain_size += size
        self._entries.append(frames.SeekEntry(compressed, size, int.from_bytes(tail, "little")))

    def _finish(self) -> None:
        self._wait_hash()
        md5 = self._md5.hexdigest()
        sha = self._sha.hexdigest()
        trailer = frames.trailer_payload({"size": self._plain_size, "md5": md5, "sha256": sha})
        self._add_frame(
            frames.skippable_frame(frames.TRAILER_MAGIC, trailer), 0, frames.EMPTY_CHECKSUM
        )
        table = frames.seek_table_frame(self._entries)
        self._encrypt(table, final=True)
        self._finished = True
        self._result = SealResult(
            plain_size=self._plain_size,
            md5=md5,
            sha256=sha,
            sealed_size=self._sealed,
            age_header=self._prefix,
            payload_offset=len(self._prefix),
            seek_table=table,
            header_mac=self._header_mac,
            recipients=self._recipients,
        )

    def _add_frame(self, frame: bytes, plain: int, checksum: int) -> None:
        self._entries.append(frames.SeekEntry(len(frame), plain, checksum))
        self._encrypt(frame, final=False)

    def _emit(self, chunk: Any, *, last: bool) -> None:
        sealed = self._cipher.encrypt(age.chunk_nonce(self._chunk_index, last=last), chunk, None)
        self._chunk_index += 1
        self._queue.append(sealed)
        self._queued += len(sealed)
        self._sealed += len(sealed)

    def _encrypt(self, data: bytes, *, final: bool) -> None:
        """Encrypt the stream's next bytes; a chunk is sealed once it is known whether it is last."""
        view = memoryview(data)
        size = len(view)
        pos = 0
        if self._pending:
            pos = min(CHUNK_SIZE - len(self._pending), size)
            self._pending += view[:pos]
            if len(self._pending) < CHUNK_SIZE or (pos == size and not final):
                if final:
                    self._emit(self._pending, last=True)
                    self._pending = bytearray()
                return
            last = final and pos == size
            self._emit(self._pending, last=last)
            self._pending = bytearray()
            if last:
                return
        while size - pos > CHUNK_SIZE:
            self._emit(view[pos : pos + CHUNK_SIZE], last=False)
            pos += CHUNK_SIZE
        if final:
            self._emit(view[pos:], last=True)
        else:
            self._pending = bytearray(view[pos:])


# --- reading -----------------------------------------------------------------------------


def plain_size_of(seek_table: bytes) -> int:
    """The plaintext size of a segment, from its seek table frame."""
    try:
        return frames.segment_layout(seek_table).plain_size
    except frames.FrameError as exc:
        raise SealedDataError(f"bad seek table: {exc}", kind=FORMAT) from None


def _error(reason: str, name: str, offset: int, kind: str = FORMAT) -> SealedDataError:
    return SealedDataError(reason, segment=name, offset=offset, kind=kind)


class _StreamParser:
    """Splits a zstd stream into frames, decompresses data frames, collects our skippable ones."""

    _HEAD, _FRAME, _SKIP = range(3)

    def __init__(self, name: str, payload_offset: int) -> None:
        self._name = name
        self._payload_offset = payload_offset
        self._dctx = zstandard.ZstdDecompressor()
        self._state = self._HEAD
        self._head = bytearray()
        self._dobj: Any = None
        self._frame_in = 0
        self._frame_out = 0
        self._descriptor = -1
        self._tail = b""
        self._skip_left = 0
        self._skip_size = 0
        self._skip_magic = 0
        self._skip_buf: bytearray | None = None
        self.pos = 0
        self.plain = 0
        self.observed: list[frames.SeekEntry] = []
        self.kinds: list[int] = []
        self.collected: dict[int, tuple[int, bytes]] = {}
        self.trailer_fields: dict[str, Any] | None = None

    def _where(self) -> int:
        return self._payload_offset + (self.pos // CHUNK_SIZE) * SEALED_CHUNK_SIZE

    def feed(self, data: Any) -> Iterator[bytes]:
        view = memoryview(data)
        while view:
            if self._state == self._FRAME:
                try:
                    out = self._dobj.decompress(view)
                except zstandard.ZstdError as exc:
                    raise _error(f"bad zstd frame: {exc}", self._name, self._where()) from None
                if self._descriptor < 0:
                    self._descriptor = view[0]
                consumed = len(view) - len(self._dobj.unused_data) if self._dobj.eof else len(view)
                if consumed >= 4:
                    self._tail = bytes(view[consumed - 4 : consumed])
                else:
                    self._tail = (self._tail + bytes(view[:consumed]))[-4:]
                self._frame_in += consumed
                self.pos += consumed
                view = view[consumed:]
                if out:
                    self._frame_out += len(out)
                    self.plain += len(out)
                    yield out
                if self._dobj.eof:
                    checksum = (
                        int.from_bytes(self._tail, "little") if self._descriptor & 0x04 else None
                    )
                    self._record(
                        frames.SeekEntry(self._frame_in, self._frame_out, checksum),
                        frames.ZSTD_MAGIC,
                    )
                    self._state = self._HEAD
            elif self._state == self._SKIP:
                take = min(self._skip_left, len(view))
                if self._skip_buf is not None:
                    self._skip_buf += view[:take]
                self._skip_left -= take
                self.pos += take
                view = view[take:]
                if not self._skip_left:
                    self._end_skippable()
            else:
                need = 8 if len(self._head) >= 4 else 4
                take = min(need - len(self._head), len(view))
                self._head += view[:take]
                self.pos += take
                view = view[take:]
                if len(self._head) < 4:
                    continue
                magic = int.from_bytes(self._head[:4], "little")
                if magic == frames.ZSTD_MAGIC:
                    self._dobj = self._dctx.decompressobj()
                    self._dobj.decompress(bytes(self._head))
                    self._frame_in, self._frame_out, self._descriptor, self._tail = 4, 0, -1, b""
                    self._head.clear()
                    self._state = self._FRAME
                elif frames.is_skippable(magic):
                    if len(self._head) < 8:
                        continue
                    self._skip_magic = magic
                    self._skip_left = self._skip_size = int.from_bytes(self._head[4:8], "little")
                    keep = magic in (
                        frames.META_MAGIC,
                        frames.TRAILER_MAGIC,
                        frames.SEEK_TABLE_MAGIC,
                    )
                    self._skip_buf = bytearray(self._head) if keep else None
                    if (
                        keep
                        and magic != frames.SEEK_TABLE_MAGIC
                        and self._skip_left > frames.MAX_META_SIZE
                    ):
                        raise _error("metadata frame too large", self._name, self._where())
                    self._head.clear()
                    self._state = self._SKIP
                    if not self._skip_left:
                        self._end_skippable()
                else:
                    raise _error("not a zstd frame", self._name, self._where())

    def _end_skippable(self) -> None:
        if self._skip_buf is not None:
            self.collected.setdefault(self._skip_magic, (len(self.observed), bytes(self._skip_buf)))
        self._record(frames.SeekEntry(self._skip_size + 8, 0, None), self._skip_magic)
        self._skip_buf = None
        self._state = self._HEAD

    def _record(self, entry: frames.SeekEntry, magic: int) -> None:
        self.observed.append(entry)
        self.kinds.append(magic)

    def finish(self, *, verify_digests: bool) -> None:
        where = self._where()
        if self._state != self._HEAD or self._head:
            raise _error("the zstd stream ends inside a frame", self._name, where)
        name = self._name
        meta = self.collected.get(frames.META_MAGIC)
        if meta is not None:
            if meta[0] != 0:
                raise _error("the M frame is not the first frame", name, where)
            try:
                frames.parse_versioned(meta[1][8:], frames.META_NAME, frames.META_VERSIONS)
            except frames.FrameError as exc:
                raise _error(str(exc), name, where) from None
        table = self.collected.get(frames.SEEK_TABLE_MAGIC)
        if table is not None:
            index, raw = table
            if index != len(self.observed) - 1:
                raise _error("the seek table is not the last frame", name, where)
            try:
                entries = frames.parse_seek_table(raw)
            except frames.FrameError as exc:
                raise _error(f"bad seek table: {exc}", name, where) from None
            if len(entries) != index:
                raise _error("the seek table does not list every frame", name, where)
            for i, (listed, seen, magic) in enumerate(
                zip(entries, self.observed, self.kinds, strict=False)
            ):
                if (listed.compressed, listed.decompressed) != (seen.compressed, seen.decompressed):
                    raise _error(f"seek table entry {i} does not match its frame", name, where)
                checked = magic == frames.ZSTD_MAGIC and None not in (
                    listed.checksum,
                    seen.checksum,
                )
                if checked and listed.checksum != seen.checksum:
                    raise _error(f"seek table checksum {i} does not match its frame", name, where)
        trailer = self.collected.get(frames.TRAILER_MAGIC)
        if trailer is not None:
            try:
                _, fields = frames.parse_versioned(
                    trailer[1][8:], frames.TRAILER_NAME, frames.TRAILER_VERSIONS
                )
            except frames.FrameError as exc:
                raise _error(str(exc), name, where) from None
            if fields.get("size") != self.plain:
                raise _error("the plaintext size differs from the trailer's", name, where)
            self.trailer_fields = fields
        if verify_digests and trailer is None:
            raise _error("no trailer frame to verify digests against", name, where)


class _Digests:
    def __init__(self) -> None:
        self.md5 = hashlib.md5()
        self.sha = hashlib.sha256()

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.sha.update(data)


def _read_nonce(stream: Readable, rest: bytes, name: str, offset: int) -> tuple[bytes, bytes]:
    while len(rest) < NONCE_SIZE:
        piece = stream.read(NONCE_SIZE - len(rest))
        if not piece:
            raise _error("the payload nonce is missing or short", name, offset, HEADER)
        rest += piece
    return rest[:NONCE_SIZE], rest[NONCE_SIZE:]


def unseal(
    sealed: Readable,
    identities: Identities,
    *,
    expected_header_mac: bytes | None = None,
    name: str = "",
    verify_digests: bool = False,
) -> Iterator[bytes]:
    """Stream the whole plaintext of a sealed segment.

    The header is read, checked against ``expected_header_mac`` (the MAC recorded at write
    time) and authenticated before this returns; the payload is then decrypted chunk by
    chunk as the iterator is consumed, each chunk authenticated before any of its plaintext
    is released. Truncation, trailing bytes and a stream that does not match its own seek
    table raise :class:`SealedDataError` (at the point they are found, so possibly after
    earlier plaintext was yielded). A plain zstd stream encrypted by the ``age`` CLI is
    accepted too. With ``verify_digests`` the MD5 and SHA-256 in the T frame are checked at
    the end (the AEAD already authenticates every byte; this costs throughput).
    """
    header, rest = age.read_header(sealed, segment=name)
    if expected_header_mac is not None and not hmac.compare_digest(header.mac, expected_header_mac):
        raise _error(
            "the header MAC differs from the recorded one (swapped blob?)", name, 0, MISMATCH
        )
    file_key = age.unwrap_file_key(header, identities, segment=name)
    nonce, rest = _read_nonce(sealed, rest, name, len(header.encoded))
    cipher = age.payload_cipher(file_key, nonce)
    return _unseal_payload(
        cipher, sealed, rest, name, len(header.encoded) + NONCE_SIZE, verify_digests
    )


_BATCH_CHUNKS = 8
_BATCH = _BATCH_CHUNKS * SEALED_CHUNK_SIZE


class _BatchReader:
    """Reads the sealed payload a batch of chunks at a time into two reused buffers.

    Two buffers, so the next batch can be read (to learn whether the current one ends the
    payload) while the current one is still to be decrypted; reused, so they stay in cache
    and no page is faulted in per batch.
    """

    def __init__(self, stream: Readable, first: bytes) -> None:
        self._stream = stream
        self._readinto = getattr(stream, "readinto", None)
        self._buffers = (bytearray(_BATCH), bytearray(_BATCH))
        self._count = 0
        self._first = first

    def read(self) -> memoryview:
        """The next batch: full-size unless the stream ends in it; empty at the end."""
        view = memoryview(self._buffers[self._count % 2])
        self._count += 1
        got = len(self._first)
        if got:
            view[:got] = self._first
            self._first = b""
        while got < _BATCH:
            count = self._fill(view[got:])
            if not count:
                break
            got += count
        return view[:got]

    def _fill(self, target: memoryview) -> int:
        if self._readinto is not None:
            try:
                count = self._readinto(target)
            except NotImplementedError:
                self._readinto = None
            else:
                if count is None:
                    raise InvalidArgument("the sealed stream is non-blocking")
                return int(count)
        piece = self._stream.read(len(target))
        target[: len(piece)] = piece
        return len(piece)


def _unseal_payload(
    cipher: ChaCha20Poly1305,
    sealed: Readable,
    rest: bytes,
    name: str,
    payload_offset: int,
    verify: bool,
) -> Iterator[bytes]:
    parser = _StreamParser(name, payload_offset)
    digests = _Digests() if verify else None
    reader = _BatchReader(sealed, rest)
    plain = bytearray(_BATCH_CHUNKS * CHUNK_SIZE)
    out = memoryview(plain)
    index = 0
    current = reader.read()
    if not current:
        raise _error("the payload has no chunk", name, payload_offset, PAYLOAD)
    while current:
        following = reader.read()
        fill = 0
        count = -(-len(current) // SEALED_CHUNK_SIZE)
        for i in range(count):
            chunk = current[i * SEALED_CHUNK_SIZE : (i + 1) * SEALED_CHUNK_SIZE]
            last = not following and i == count - 1
            size = len(chunk) - TAG_SIZE
            offset = payload_offset + index * SEALED_CHUNK_SIZE
            if size < 0 or (last and index > 0 and size == 0):
                raise _error("short or empty payload chunk", name, offset, PAYLOAD)
            try:
                cipher.decrypt_into(
                    age.chunk_nonce(index, last=last), chunk, None, out[fill : fill + size]
                )
            except InvalidTag:
                reason = "payload chunk failed authentication" + (
                    " (truncated or extended?)" if last else ""
                )
                raise _error(reason, name, offset, PAYLOAD) from None
            fill += size
            index += 1
        # Only authenticated plaintext reaches the parser, and only after its whole batch is.
        for piece in parser.feed(out[:fill]):
            if digests is not None:
                digests.update(piece)
            yield piece
        current = following
    parser.finish(verify_digests=verify)
    if digests is not None and parser.trailer_fields is not None:
        fields = parser.trailer_fields
        if (
            fields.get("md5") != digests.md5.hexdigest()
            or fields.get("sha256") != digests.sha.hexdigest()
        ):
            raise _error(
                "the plaintext digests differ from the trailer's", name, payload_offset, FORMAT
            )


def _decompress_frame(
    frame: bytes | bytearray, entry: frames.SeekEntry, name: str, offset: int
) -> bytes:
    if len(frame) < 4 or int.from_bytes(frame[:4], "little") != frames.ZSTD_MAGIC:
        raise _error("a data frame does not start with the zstd magic", name, offset)
    try:
        out = _decompressor().decompress(frame, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise _error(f"bad zstd frame: {exc}", name, offset) from None
    if len(out) != entry.decompressed:
        raise _error("a frame's size differs from the seek table's", name, offset)
    if (
        frames.frame_checksum_flag(bytes(frame[:5]))
        and int.from_bytes(frame[-4:], "little") != entry.checksum
    ):
        raise _error("a frame's checksum differs from the seek table's", name, offset)
    return out


def _payload_key(
    age_header: bytes, payload_offset: int, identities: Identities, name: str
) -> tuple[age.Header, ChaCha20Poly1305]:
    if len(age_header) != payload_offset or payload_offset <= NONCE_SIZE:
        raise InvalidArgument("age_header must be the segment's whole prefix: header and nonce")
    header_bytes = bytes(age_header[:-NONCE_SIZE])
    if age.header_length(header_bytes) != len(header_bytes):
        raise _error(
            "invalid age header: the stored header does not end where it should", name, 0, HEADER
        )
    header = age.parse_header(header_bytes, segment=name)
    file_key = age.unwrap_file_key(header, identities, segment=name)
    return header, age.payload_cipher(file_key, bytes(age_header[-NONCE_SIZE:]))


def _sealed_chunk_size(layout: frames.SegmentLayout, index: int) -> int:
    return min(CHUNK_SIZE, layout.stream_size - index * CHUNK_SIZE) + TAG_SIZE


def unseal_range(
    start: int,
    end: int,
    *,
    age_header: bytes,
    payload_offset: int,
    seek_table: bytes,
    fetch: Fetch,
    identities: Identities,
    name: str = "",
) -> Iterator[bytes]:
    """Stream plaintext bytes ``[start, end)`` of a segment from its recorded description.

    ``fetch(offset, length)`` returns the sealed segment's bytes ``[offset, offset+length)``
    (relative to the segment's start) as an iterable of pieces. It is called once, before
    this returns (so a backend error surfaces here), for exactly the age chunks that cover
    the zstd frames overlapping the range; not at all for an empty range. The header is
    authenticated before this returns; each chunk before any of its plaintext is released.
    """
    try:
        layout = frames.segment_layout(seek_table)
    except frames.FrameError as exc:
        raise _error(f"bad seek table: {exc}", name, 0) from None
    if not 0 <= start <= end <= layout.plain_size:
        raise InvalidRange(f"{start}-{end}", layout.plain_size)
    _, cipher = _payload_key(age_header, payload_offset, identities, name)
    if start == end:
        return iter(())
    wanted = layout.frames_for(start, end)
    z0 = layout.offsets[wanted.start]
    z1 = layout.offsets[wanted.stop]
    k0, k1 = z0 // CHUNK_SIZE, (z1 - 1) // CHUNK_SIZE
    offset = payload_offset + k0 * SEALED_CHUNK_SIZE
    length = sum(_sealed_chunk_size(layout, k) for k in range(k0, k1 + 1))
    pieces = fetch(offset, length)
    return _range_payload(cipher, layout, wanted, start, end, k0, k1, pieces, name, payload_offset)


def _range_payload(
    cipher: ChaCha20Poly1305,
    layout: frames.SegmentLayout,
    wanted: range,
    start: int,
    end: int,
    k0: int,
    k1: int,
    pieces: Iterable[bytes],
    name: str,
    payload_offset: int,
) -> Iterator[bytes]:
    last_chunk = (layout.stream_size - 1) // CHUNK_SIZE
    z0, z1 = layout.offsets[wanted.start], layout.offsets[wanted.stop]
    frame_index = wanted.start
    frame = bytearray()
    index = k0 - 1
    for index, chunk in enumerate(age.rechunk(pieces, SEALED_CHUNK_SIZE), k0):
        offset = payload_offset + index * SEALED_CHUNK_SIZE
        if index > k1 or len(chunk) != _sealed_chunk_size(layout, index):
            raise _error("the fetched bytes do not have the expected length", name, offset, PAYLOAD)
        try:
            plain = cipher.decrypt(age.chunk_nonce(index, last=index == last_chunk), chunk, None)
        except InvalidTag:
            raise _error("payload chunk failed authentication", name, offset, PAYLOAD) from None
        base = index * CHUNK_SIZE
        view = memoryview(plain)[max(z0 - base, 0) : max(min(z1 - base, len(plain)), 0)]
        while view:
            entry = layout.entries[frame_index]
            take = min(entry.compressed - len(frame), len(view))
            frame += view[:take]
            view = view[take:]
            if len(frame) < entry.compressed:
                continue
            data = _decompress_frame(frame, entry, name, offset)
            frame = bytearray()
            plain_start = layout.plain_start(frame_index)
            lo, hi = max(start - plain_start, 0), min(end - plain_start, len(data))
            yield data if (lo, hi) == (0, len(data)) else data[lo:hi]
            frame_index += 1
    if index != k1 or frame_index != wanted.stop:
        raise _error(
            "the fetched bytes end early",
            name,
            payload_offset + (index + 1) * SEALED_CHUNK_SIZE,
            PAYLOAD,
        )


# --- inspecting a sealed segment without the catalog ----------------------------------


@dataclass(frozen=True)
class SegmentInfo:
    """A segment's description recovered from its bytes (what the catalog would hold)."""

    age_header: bytes
    payload_offset: int
    seek_table: bytes
    header_mac: bytes
    sealed_size: int
    plain_size: int


def _fetch_all(fetch: Fetch, offset: int, length: int) -> bytes:
    data = b"".join(fetch(offset, length))
    if len(data) != length:
        raise _error("the fetched bytes do not have the expected length", "", offset, PAYLOAD)
    return data


def _read_prefix(fetch: Fetch, size: int, name: str) -> bytes:
    got = b""
    want = min(size, 4096)
    while True:
        got = _fetch_all(fetch, 0, want)
        end = age.header_length(got)
        if end is not None and end + NONCE_SIZE <= size:
            return (
                got[: end + NONCE_SIZE]
                if end + NONCE_SIZE <= len(got)
                else _fetch_all(fetch, 0, end + NONCE_SIZE)
            )
        if end is not None or want >= min(size, age.MAX_HEADER_SIZE):
            raise _error("invalid age header: truncated or too long", name, 0, HEADER)
        want = min(size, want * 4)


def inspect_segment(
    fetch: Fetch, size: int, identities: Identities, *, name: str = ""
) -> SegmentInfo:
    """Recover a segment's header, payload offset and seek table from its bytes.

    Reads the header and the last age chunks (where the seek table is), authenticating
    both; used by the CLI and by recovery tools that have no catalog.
    """
    prefix = _read_prefix(fetch, size, name)
    header, cipher = _payload_key(prefix, len(prefix), identities, name)
    payload_offset = len(prefix)
    try:
        stream_size = age.plain_payload_size(size - payload_offset)
    except ValueError:
        raise _error(
            "the sealed size is not a valid age payload size", name, payload_offset, PAYLOAD
        ) from None
    last_chunk = (stream_size - 1) // CHUNK_SIZE

    def plain_tail(first_chunk: int) -> bytes:
        offset = payload_offset + first_chunk * SEALED_CHUNK_SIZE
        data = _fetch_all(fetch, offset, size - offset)
        out = []
        for index, chunk in enumerate(age.rechunk([data], SEALED_CHUNK_SIZE), first_chunk):
            try:
                out.append(
                    cipher.decrypt(age.chunk_nonce(index, last=index == last_chunk), chunk, None)
                )
            except InvalidTag:
                raise _error(
                    "payload chunk failed authentication",
                    name,
                    payload_offset + index * SEALED_CHUNK_SIZE,
                    PAYLOAD,
                ) from None
        return b"".join(out)

    if stream_size < frames.SEEK_FOOTER_SIZE:
        raise _error("no seek table", name, payload_offset)
    tail = plain_tail(max(0, (stream_size - frames.SEEK_FOOTER_SIZE) // CHUNK_SIZE))
    try:
        table_size = frames.seek_table_size(tail[-frames.SEEK_FOOTER_SIZE :])
    except (frames.FrameError, ValueError) as exc:
        raise _error(f"no seek table ({exc})", name, payload_offset) from None
    if table_size > stream_size:
        raise _error("the seek table is larger than the stream", name, payload_offset)
    first = (stream_size - table_size) // CHUNK_SIZE
    tail_start = ((stream_size - frames.SEEK_FOOTER_SIZE) // CHUNK_SIZE) * CHUNK_SIZE
    if first * CHUNK_SIZE < tail_start:
        tail = plain_tail(first)
        tail_start = first * CHUNK_SIZE
    table = tail[stream_size - table_size - tail_start :]
    try:
        layout = frames.segment_layout(table)
    except frames.FrameError as exc:
        raise _error(f"bad seek table: {exc}", name, payload_offset) from None
    if layout.stream_size != stream_size:
        raise _error("the seek table does not describe this stream", name, payload_offset)
    return SegmentInfo(prefix, payload_offset, table, header.mac, size, layout.plain_size)


def read_metadata(
    fetch: Fetch, size: int, identities: Identities, *, name: str = ""
) -> SegmentMetadata:
    """The M frame of a segment, reading and authenticating only its first age chunk(s)."""
    prefix = _read_prefix(fetch, size, name)
    _, cipher = _payload_key(prefix, len(prefix), identities, name)
    payload_offset = len(prefix)
    try:
        stream_size = age.plain_payload_size(size - payload_offset)
    except ValueError:
        raise _error(
            "the sealed size is not a valid age payload size", name, payload_offset, PAYLOAD
        ) from None
    last_chunk = (stream_size - 1) // CHUNK_SIZE
    plain = bytearray()
    index = 0
    need = 8
    while len(plain) < need:
        if index > last_chunk:
            raise _error("the stream ends inside its M frame", name, payload_offset)
        offset = payload_offset + index * SEALED_CHUNK_SIZE
        chunk = _fetch_all(fetch, offset, min(SEALED_CHUNK_SIZE, size - offset))
        try:
            plain += cipher.decrypt(age.chunk_nonce(index, last=index == last_chunk), chunk, None)
        except InvalidTag:
            raise _error("payload chunk failed authentication", name, offset, PAYLOAD) from None
        index += 1
        if len(plain) >= 8:
            magic = int.from_bytes(plain[:4], "little")
            if magic != frames.META_MAGIC:
                raise _error("the segment has no M frame", name, payload_offset)
            need = 8 + int.from_bytes(plain[4:8], "little")
            if need > frames.MAX_META_SIZE:
                raise _error("metadata frame too large", name, payload_offset)
    try:
        _, fields = frames.parse_versioned(
            bytes(plain[8:need]), frames.META_NAME, frames.META_VERSIONS
        )
        return SegmentMetadata.from_fields(fields)
    except frames.FrameError as exc:
        raise _error(str(exc), name, payload_offset) from None
