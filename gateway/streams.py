"""Byte streams on the data path: what every layer reads from.

Bodies move between layers as objects with ``read(size) -> bytes`` (a WSGI input, a
sealer, an S3 chunk decoder), pulled in bounded pieces so nothing holds a whole object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class Readable(Protocol):
    """Anything with ``read(size)``; callers always pass a size on the data path."""

    def read(self, size: int = -1, /) -> bytes: ...


class IteratorReader:
    """A minimal read-only file object over an iterator of byte chunks.

    ``read(n)`` returns at most ``n`` bytes and holds at most one chunk beyond them, so a
    ``put`` that reads it in parts keeps its memory bound. ``close()`` closes the iterator
    (releasing the file or connection behind a ``get``).
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            pieces = [self._buffer[self._offset :]]
            pieces.extend(self._chunks)
            self._buffer, self._offset = b"", 0
            return b"".join(pieces)
        pieces = []
        need = size
        while need > 0:
            if self._offset >= len(self._buffer):
                try:
                    self._buffer, self._offset = next(self._chunks), 0
                except StopIteration:
                    break
                continue
            piece = self._buffer[self._offset : self._offset + need]
            self._offset += len(piece)
            need -= len(piece)
            pieces.append(piece)
        return b"".join(pieces)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class ChunkReader(IteratorReader):
    """An :class:`IteratorReader` that refuses to read everything at once: what it feeds
    (a copy's source into a new segment) is read in pieces, never held whole."""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("read() needs a size on the data path")
        return super().read(size)


class PrefixedReader:
    """Reads ``prefix`` first, then the rest of ``stream`` (after a bounded peek)."""

    def __init__(self, prefix: bytes, stream: Readable) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if self._prefix:
            take = len(self._prefix) if size < 0 else min(size, len(self._prefix))
            data = bytes(self._prefix[:take])
            self._prefix = self._prefix[take:]
            return data
        return self._stream.read(size)


def peek(stream: Readable, limit: int) -> tuple[bytes, bool]:
    """Read up to ``limit`` + 1 bytes: the bytes and whether the stream ended within
    ``limit`` (then the bytes are the whole stream)."""
    pieces: list[bytes] = []
    total = 0
    while total <= limit:
        piece = stream.read(limit + 1 - total)
        if not piece:
            return b"".join(pieces), True
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces), False
