"""The bodies of ``coolstorage seal`` and ``coolstorage unseal``, callable with binary streams.

``coolstorage seal --recipient R [--recipient R2] < plain > sealed`` writes one segment;
``coolstorage unseal --identity FILE [--range START-END] < sealed > plain`` reads one back
(a whole segment, or a byte range: ``START-END`` inclusive as in HTTP, ``START-`` to the
end, ``-N`` the last N bytes). Both return the exit status (0) and raise
:class:`gateway.errors.CoolStorageError` subclasses for bad input or damaged data; the
caller maps those to a message and a non-zero status. The output of ``seal`` is also a
valid age file: ``age -d -i key.txt < sealed | zstd -d`` gives the plaintext back.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from gateway.errors import InvalidArgument, InvalidRange
from gateway.sealing import keys
from gateway.sealing.segment import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_LEVEL,
    SealingReader,
    SegmentMetadata,
    inspect_segment,
    unseal,
    unseal_range,
)

_COPY = 1 << 20
_RANGE = re.compile(r"^\s*(\d*)-(\d*)\s*$")


def seal_command(
    recipients: Sequence[str],
    stdin: BinaryIO,
    stdout: BinaryIO,
    block_size: int = DEFAULT_BLOCK_SIZE,
    level: int = DEFAULT_LEVEL,
    *,
    metadata: SegmentMetadata | None = None,
) -> int:
    """Seal ``stdin`` to the ``age1...`` ``recipients`` and write the segment to ``stdout``."""
    if not recipients:
        raise InvalidArgument("give at least one --recipient age1...")
    for recipient in recipients:
        keys.parse_recipient(recipient)
    reader = SealingReader(
        stdin,
        metadata or SegmentMetadata(org="", bucket="", key=""),
        recipients,
        block_size=block_size,
        level=level,
    )
    while piece := reader.read(_COPY):
        stdout.write(piece)
    stdout.flush()
    return 0


def parse_range(text: str, size: int) -> tuple[int, int]:
    """``[start, end)`` for an HTTP-style byte range (``a-b`` inclusive, ``a-``, ``-n``)."""
    match = _RANGE.match(text)
    if not match or match.groups() == ("", ""):
        raise InvalidArgument(f"a range is START-END, START- or -N, not {text!r}")
    first, last = match.groups()
    if not first:
        count = int(last)
        if count == 0:
            raise InvalidRange(text, size)
        return max(size - count, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if start >= size or (last and int(last) < start):
        raise InvalidRange(text, size)
    return start, end


def _read_identities(identity_file: str | os.PathLike[str]) -> list[str]:
    try:
        text = Path(identity_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            f"cannot read the identity file {os.fspath(identity_file)}: {exc}"
        ) from None
    return keys.parse_identity_file(text)


def _seekable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, ValueError, OSError):
        return False


def unseal_command(
    identity_file: str | os.PathLike[str],
    range: str | None,
    stdin: BinaryIO,
    stdout: BinaryIO,
) -> int:
    """Unseal the segment on ``stdin`` (all of it, or ``range``) to ``stdout``."""
    identities = _read_identities(identity_file)
    if range is None:
        for piece in unseal(stdin, identities, name="stdin"):
            stdout.write(piece)
        stdout.flush()
        return 0
    if _seekable(stdin):
        _unseal_range(stdin, range, identities, stdout)
    else:
        # A range needs the seek table at the end: spool a pipe to disk, never to memory.
        with tempfile.TemporaryFile(prefix="coolstorage-unseal-") as spool:
            shutil.copyfileobj(stdin, spool, _COPY)
            spool.seek(0)
            _unseal_range(spool, range, identities, stdout)  # type: ignore[arg-type]
    stdout.flush()
    return 0


def _unseal_range(stream: BinaryIO, text: str, identities: list[str], stdout: BinaryIO) -> None:
    origin = stream.tell()
    size = stream.seek(0, io.SEEK_END) - origin

    def fetch(offset: int, length: int) -> Iterator[bytes]:
        stream.seek(origin + offset)
        left = length
        while left:
            piece = stream.read(min(left, _COPY))
            if not piece:
                return
            left -= len(piece)
            yield piece

    info = inspect_segment(fetch, size, identities, name="stdin")
    if info.plain_size == 0:
        raise InvalidRange(text, 0)
    start, end = parse_range(text, info.plain_size)
    pieces = unseal_range(
        start,
        end,
        age_header=info.age_header,
        payload_offset=info.payload_offset,
        seek_table=info.seek_table,
        fetch=fetch,
        identities=identities,
        name="stdin",
    )
    for piece in pieces:
        stdout.write(piece)
