"""The file objects over chunk iterators that feed a body into a new segment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.streams import ChunkReader, IteratorReader


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = iter(chunks)
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self.chunks)

    def close(self) -> None:
        self.closed = True


def test_reads_across_chunks_in_the_sizes_asked_and_closes_the_source() -> None:
    source = Chunks(b"abc", b"", b"defgh", b"i")
    reader = IteratorReader(source)
    assert [reader.read(2), reader.read(4), reader.read(10), reader.read(1)] == [
        b"ab", b"cdef", b"ghi", b""
    ]
    reader.close()
    assert source.closed
    assert IteratorReader(Chunks(b"ab", b"cd")).read(-1) == b"abcd"


def test_a_chunk_reader_never_reads_everything_at_once() -> None:
    reader = ChunkReader(Chunks(b"abc", b"def"))
    with pytest.raises(ValueError, match="needs a size"):
        reader.read()
    with pytest.raises(ValueError, match="needs a size"):
        reader.read(None)
    assert reader.read(4) == b"abcd" and reader.read(4) == b"ef"
