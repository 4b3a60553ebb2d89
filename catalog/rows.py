"""Small helpers every catalog area shares: the clock, JSON columns, batching, and the
conversion of common rows into records."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Row

from catalog import schema as s
from catalog.records import AccessKey, Blob, User

T = TypeVar("T")

#: Rows per statement when a query takes a list of ids (``IN (...)``).
CHUNK = 500


def now() -> datetime:
    """The catalog's clock: aware UTC."""
    return datetime.now(UTC)


def json_dict(value: Any) -> dict[str, Any]:
    """A JSON column as a dict, whichever way the driver hands it over (dict, str, bytes)."""
    if value is None:
        return {}
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8")
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        name=row.name,
        password_hash=row.password_hash,
        created_at=row.created_at,
        disabled=bool(row.disabled),
        is_operator=bool(row.is_operator),
    )


def access_key(row: Row[Any]) -> AccessKey:
    return AccessKey(
        access_key_id=row.access_key_id,
        user_id=row.user_id,
        org_id=row.org_id,
        secret_wrapped=bytes(row.secret_wrapped),
        secret_key_id=row.secret_key_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def blob(row: Row[Any], prefix: str = "") -> Blob:
    """A blob from a row of ``blobs`` or of a join that labels its columns ``prefix...``
    (see :func:`blob_columns`)."""
    return Blob(
        id=int(getattr(row, f"{prefix}id")),
        org_id=getattr(row, f"{prefix}org_id"),
        backend=getattr(row, f"{prefix}backend"),
        key=getattr(row, f"{prefix}key"),
        size=int(getattr(row, f"{prefix}size")),
        storage_class=getattr(row, f"{prefix}storage_class"),
        created_at=getattr(row, f"{prefix}created_at"),
    )


def blob_columns(prefix: str, *, with_id: bool = True) -> tuple[Any, ...]:
    """The ``blobs`` columns labelled ``prefix...``, for a join read by :func:`blob`.
    ``with_id`` False leaves the id out, for a join whose own ``{prefix}id`` column (a
    segment's ``blob_id``) already holds it."""
    b = s.blobs.c
    return (
        *((b.id.label(f"{prefix}id"),) if with_id else ()),
        b.org_id.label(f"{prefix}org_id"),
        b.backend.label(f"{prefix}backend"),
        b.key.label(f"{prefix}key"),
        b.size.label(f"{prefix}size"),
        b.storage_class.label(f"{prefix}storage_class"),
        b.created_at.label(f"{prefix}created_at"),
    )
