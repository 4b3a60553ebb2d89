"""Bodies on the WebDAV data path, never held whole.

- :class:`RequestBody` hands a PUT's request body (``wsgi.input``) straight to
  ``ObjectService.put_object``, which pulls it through the sealer in block-sized reads. No
  thread, no queue and no copy beyond the server's own socket reads. wsgidav's PUT handler
  offers the body as an iterator of ``block_size`` pieces to ``writelines``; the upload
  ignores that iterator and reads the same stream directly, which saves joining those
  pieces back into the sealer's blocks. A body that ends early (a client that
  disconnects) is shorter than its Content-Length, so ``put_object`` refuses it and
  nothing becomes visible.
- :class:`RangeReader` is what wsgidav's GET handler reads from: it opens the object only
  at the first ``read``, after wsgidav has ``seek``-ed to the range start, and asks the
  ObjectService for exactly ``[start, start + length)``, so a range read fetches and
  decrypts only the blocks that cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class RequestBody:
    """A readable over ``environ["wsgi.input"]`` that notes when the body has ended."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ
        self._input = environ["wsgi.input"]
        self.count = 0
        self.ended = False

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            raise ValueError("read() needs a size on the data path")
        if self.ended or size == 0:
            return b""
        data: bytes = self._input.read(size)
        if data:
            self.count += len(data)
            self._environ["wsgidav.some_input_read"] = 1
        else:
            self.ended = True
            # wsgidav closes the connection after a request whose body it thinks unread.
            self._environ["wsgidav.all_input_read"] = 1
        return data


class RangeReader:
    """A lazily opened, forward-only file object over ``open_range(start, length)``."""

    def __init__(
        self, open_range: Callable[[int, int], Iterator[bytes]], length: Callable[[], int]
    ) -> None:
        self._open_range = open_range
        self._length = length
        self._start = 0
        self._body: Iterator[bytes] | None = None
        self._chunk = b""
        self._offset = 0
        self._done = False

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or self._body is not None:
            raise OSError("only an absolute seek before the first read is supported")
        self._start = offset
        return offset

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            raise ValueError("read() needs a size on the data path")
        if self._body is None:
            length = self._length()
            self._body = self._open_range(self._start, length) if length > 0 else iter(())
        while not self._done:
            chunk, offset = self._chunk, self._offset
            if offset < len(chunk):
                if offset == 0 and len(chunk) <= size:
                    self._chunk = b""
                    return chunk
                piece = chunk[offset : offset + size]
                self._offset = offset + len(piece)
                return piece
            try:
                self._chunk, self._offset = next(self._body), 0
            except StopIteration:
                self._done = True
        return b""

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
        self._done = True
