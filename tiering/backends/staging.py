"""The staging backend: small sealed blobs kept in the catalog database until packed.

Not a plugin users configure: the gateway always has one, named :data:`STAGING`, over its
own catalog. A small object's sealed segment lands here instead of costing a backend PUT of
its own; the tiering engine later packs staged segments byte for byte into a container in a
real backend and repoints their segment rows, so nothing is decrypted or re-sealed.

Blobs here are bounded (``max_size``), so ``put`` may hold one in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from gateway.errors import BlobNotFound, ConfigError, InvalidArgument, InvalidRange
from gateway.streams import Readable
from tiering.backends.base import STANDARD, Backend, BlobInfo, Capability

if TYPE_CHECKING:
    from catalog.api import Catalog

#: The name of the staging backend instance in the gateway's backend map.
STAGING = "staging"


class StagingBackend(Backend):
    """Blobs as rows of the catalog's ``staged_blobs`` table."""

    plugin: ClassVar[str] = "staging"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.RANGE_READ, Capability.LIST}
    )

    def __init__(self, catalog: Catalog, *, max_size: int, name: str = STAGING) -> None:
        super().__init__(name)
        self.catalog = catalog
        self.max_size = max_size

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> Backend:
        raise ConfigError("the staging backend is built in; it cannot be configured")

    def put(
        self,
        key: str,
        stream: Readable,
        *,
        size: int | None = None,
        storage_class: str = STANDARD,
    ) -> BlobInfo:
        if storage_class != STANDARD:
            raise InvalidArgument("staged blobs are always STANDARD")
        pieces = []
        total = 0
        while True:
            piece = stream.read(min(1 << 20, self.max_size + 1 - total))
            if not piece:
                break
            total += len(piece)
            if total > self.max_size:
                raise InvalidArgument(f"a staged blob is at most {self.max_size} bytes")
            pieces.append(piece)
        data = b"".join(pieces)
        at = self.catalog.put_staged(key, data)
        return BlobInfo(key=key, size=len(data), storage_class=STANDARD, modified_at=at)

    def get(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        found = self.catalog.get_staged(key)
        if found is None:
            raise BlobNotFound(key)
        data = found[0]
        stop = len(data) if end is None else min(end, len(data))
        if start < 0 or start > len(data) or stop < start:
            raise InvalidRange(f"{start}-{end}", len(data))
        return iter((data[start:stop],))

    def head(self, key: str) -> BlobInfo:
        found = self.catalog.get_staged(key)
        if found is None:
            raise BlobNotFound(key)
        return BlobInfo(key=key, size=len(found[0]), storage_class=STANDARD, modified_at=found[1])

    def delete(self, key: str) -> None:
        self.catalog.delete_staged(key)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        after: str | None = None
        while True:
            rows = self.catalog.list_staged(prefix, after=after, limit=1000)
            for key, size, at in rows:
                yield BlobInfo(key=key, size=size, storage_class=STANDARD, modified_at=at)
            if len(rows) < 1000:
                return
            after = rows[-1][0]
