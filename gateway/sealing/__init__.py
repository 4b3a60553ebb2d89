"""The sealed stored format: age-encrypted seekable zstd segments and containers.

No HTTP and no SQL here: callers hand in streams and get streams back. docs/FORMAT.md is the
byte-level specification; :mod:`gateway.sealing.segment` and :mod:`gateway.sealing.container`
hold the readers and writers, :mod:`gateway.sealing.keys` the key types.
"""

from gateway.sealing.container import (
    ContainerMember,
    ContainerReader,
    ContainerResult,
    ContainerWriter,
    read_container_index,
)
from gateway.sealing.errors import SealedDataError
from gateway.sealing.keys import (
    MasterKey,
    MasterKeyring,
    generate_identity,
    key_id_of,
    parse_identity_file,
    parse_recipient,
    recipient_of,
    sse_c_identity,
    sse_c_matches,
)
from gateway.sealing.segment import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_LEVEL,
    SealingReader,
    SealResult,
    SegmentInfo,
    SegmentMetadata,
    inspect_segment,
    plain_size_of,
    read_metadata,
    unseal,
    unseal_range,
)

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_LEVEL",
    "ContainerMember",
    "ContainerReader",
    "ContainerResult",
    "ContainerWriter",
    "MasterKey",
    "MasterKeyring",
    "SealResult",
    "SealedDataError",
    "SealingReader",
    "SegmentInfo",
    "SegmentMetadata",
    "generate_identity",
    "inspect_segment",
    "key_id_of",
    "parse_identity_file",
    "parse_recipient",
    "plain_size_of",
    "read_container_index",
    "read_metadata",
    "recipient_of",
    "sse_c_identity",
    "sse_c_matches",
    "unseal",
    "unseal_range",
]
