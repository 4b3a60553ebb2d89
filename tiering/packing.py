"""Building container blobs from sealed segments already stored somewhere.

A container (gateway/sealing/container.py) is its members' sealed bytes, copied byte for
byte, then a sealed index and a footer. The engine builds three kinds:

- ``pack``: small objects' segments out of the staging table, so Deep Archive sees one
  object (one PUT, one 40 KB overhead, one restore) per ~128 MiB instead of one per file;
- ``join``: the part segments of one multipart object, so it is one blob and one restore;
- ``rewrite``: the live members of an old container whose members were mostly deleted.

Nothing is decrypted: the catalog's segment rows carry everything the container writer
checks (sizes, age header, seek table, header MAC), and each member is streamed from where
it is now (a staged row, a part blob, a range of the old container), one at a time, so
memory stays bounded by one member's read buffer.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from catalog.records import Blob, Segment
from gateway.errors import BackendError, BlobNotFound
from gateway.sealing import ContainerResult, ContainerWriter, SealResult, SegmentMetadata
from gateway.streams import IteratorReader
from tiering.backends.base import Backend

log = logging.getLogger(__name__)

#: Where containers live in a backend: ``containers/<org id>/<uuid>``.
CONTAINER_PREFIX = "containers/"
#: Bytes of a container being assembled that stay in memory before it spills to disk.
_SPOOL_MEMORY = 1 << 20
#: Read size while assembling a container.
_COPY_SIZE = 1 << 20


@dataclass(frozen=True)
class Member:
    """A sealed segment to copy into a container: where its bytes are now and what they
    are. ``blob``/``offset`` locate it (offset 0 of a staged or part blob, or a range of an
    old container); ``metadata`` is what the index will say about it."""

    blob: Blob
    offset: int
    segment: Segment
    metadata: SegmentMetadata


def seal_result(segment: Segment) -> SealResult:
    """The :class:`SealResult` the catalog recorded for ``segment`` (what the container
    writer checks each member's bytes against)."""
    return SealResult(
        plain_size=segment.plain_size,
        md5=segment.md5,
        sha256=segment.sha256,
        sealed_size=segment.sealed_size,
        age_header=segment.age_header,
        payload_offset=segment.payload_offset,
        seek_table=segment.seek_table,
        header_mac=segment.header_mac,
        recipients=tuple(r for r in segment.recipient.split(",") if r),
    )


def write_container(
    backend: Backend,
    key: str,
    members: Sequence[Member],
    *,
    source: Callable[[Blob], Backend],
    recipients: Sequence[str],
    index_metadata: SegmentMetadata,
    storage_class: str,
    level: int = 3,
    spool_dir: str | None = None,
) -> tuple[ContainerResult, list[Member]]:
    """Write a container of ``members`` to ``backend`` at ``key``, straight into
    ``storage_class``, and verify it landed there whole.

    Returns the result and the members actually written, in the order of
    ``result.members``: a member whose bytes are gone by the time the writer reaches it
    (its object was deleted meanwhile) is left out. ``source(blob)`` is the backend a
    member's bytes are read from. The caller has recorded an intent for ``key``; on any
    error the caller discards the blob. The container is assembled in a temporary file
    (in ``spool_dir``, default the system's; only ``_SPOOL_MEMORY`` bytes in memory) and
    then stored with its exact size.
    """
    opened: list[IteratorReader] = []
    written: list[Member] = []

    def streams() -> Iterator[tuple[IteratorReader, SegmentMetadata, SealResult]]:
        for member in members:
            while opened:
                opened.pop().close()
            start = member.offset
            try:
                chunks = source(member.blob).get(
                    member.blob.key, start=start, end=start + member.segment.sealed_size
                )
            except BlobNotFound:
                log.debug("member %s vanished before packing; left out", member.blob.key)
                continue
            reader = IteratorReader(chunks)
            opened.append(reader)
            written.append(member)
            yield reader, member.metadata, seal_result(member.segment)

    writer = ContainerWriter(streams(), recipients, index_metadata=index_metadata, level=level)
    # The container is built into a temporary file first, so the backend gets its exact
    # size: the s3 backend then sends it as one PutObject (one request in the cold class)
    # instead of a multipart upload of many. Its index length is only known once sealed.
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY, dir=spool_dir) as spool:
        try:
            while chunk := writer.read(_COPY_SIZE):
                spool.write(chunk)
            result = writer.result
        finally:
            writer.close()
            while opened:
                opened.pop().close()
        spool.seek(0)
        backend.put(key, spool, size=result.size, storage_class=storage_class)
    verify_blob(backend, key, size=result.size, storage_class=storage_class)
    return result, written


def verify_blob(backend: Backend, key: str, *, size: int, storage_class: str) -> None:
    """``BackendError`` unless ``key`` exists with ``size`` bytes in ``storage_class``."""
    info = backend.head(key)
    if info.size != size or info.storage_class != storage_class:
        raise BackendError(
            f"{key} is {info.size} bytes in {info.storage_class} after writing; expected "
            f"{size} bytes in {storage_class}",
            retryable=True,
        )
