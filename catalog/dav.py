"""Catalog queries for WebDAV locks and dead properties.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_dav`. Every gateway replica reads and writes the same rows, so
a lock taken through one replica is honoured by all of them.

Locks are addressed by path (``/org/bucket/a/b``: not percent-encoded, no trailing slash),
as WebDAV addresses them; the WebDAV front end turns its URLs into these paths. Times are
this machine's clock: replicas need clocks within a small fraction of a lock's lifetime of
each other (NTP), as for leases.

Dead properties belong to objects by id (see :mod:`catalog.tables_dav`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog.base import CatalogBase
from catalog.rows import now as _now
from catalog.tables_dav import MAX_LOCK_PATH_BYTES, dav_locks, dav_properties
from gateway.errors import InvalidArgument, InvalidName

#: Object ids per statement when reading properties of a listing page.
_ID_CHUNK = 500


@dataclass(frozen=True)
class DavLock:
    """One WebDAV lock as stored.

    ``id`` orders creation (smaller is older). ``owner`` is the client's ``<owner>`` XML
    element as bytes (possibly empty). ``timeout`` is the lifetime granted in seconds.
    """

    id: int
    token: str
    root: str
    principal: str
    scope: str
    type: str
    depth: str
    owner: bytes
    timeout: float
    created_at: datetime
    expires_at: datetime


def _lock(row: Row[Any]) -> DavLock:
    return DavLock(
        id=int(row.id),
        token=row.token,
        root=row.root,
        principal=row.principal,
        scope=row.scope,
        type=row.type,
        depth=row.depth,
        owner=bytes(row.owner),
        timeout=float(row.timeout),
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


def normalize_lock_path(path: str) -> str:
    """``/a/b/`` and ``a/b`` become ``/a/b``; the root stays ``/``. ``InvalidName`` if too
    long to store."""
    normalized = "/" + path.strip("/")
    if len(normalized.encode("utf-8")) > MAX_LOCK_PATH_BYTES:
        raise InvalidName(f"a locked path is at most {MAX_LOCK_PATH_BYTES} bytes of UTF-8")
    return normalized


def _below(path: str) -> tuple[bytes, bytes]:
    """The byte range ``[low, high)`` of every path strictly below ``path``."""
    base = b"" if path == "/" else path.encode("utf-8")
    # "0" follows "/" in byte order: everything starting with base + "/" sorts in between.
    return base + b"/", base + b"0"


class DavQueries(CatalogBase):
    """Queries for WebDAV locks and dead properties."""

    # -- locks -----------------------------------------------------------------------------
    def dav_create_lock(
        self,
        path: str,
        *,
        token: str,
        principal: str,
        scope: str,
        type: str,
        depth: str,
        owner: bytes,
        timeout: float,
    ) -> DavLock:
        """Store a new lock on ``path`` valid for ``timeout`` seconds (expired locks are
        purged in the same transaction). Checking for conflicts is the caller's job; see
        :meth:`dav_locks_at` and ``id`` ordering."""
        root = normalize_lock_path(path)
        if timeout <= 0:
            raise InvalidArgument("a lock needs a positive timeout")

        def tx(conn: Connection) -> DavLock:
            now = _now()
            conn.execute(dav_locks.delete().where(dav_locks.c.expires_at <= now))
            done = conn.execute(
                dav_locks.insert().values(
                    token=token,
                    root=root,
                    principal=principal,
                    scope=scope,
                    type=type,
                    depth=depth,
                    owner=owner,
                    timeout=timeout,
                    created_at=now,
                    expires_at=now + timedelta(seconds=timeout),
                )
            )
            assert done.inserted_primary_key is not None
            row = conn.execute(
                sa.select(dav_locks).where(dav_locks.c.id == done.inserted_primary_key[0])
            ).one()
            return _lock(row)

        return self._write(tx, what=f"lock token {token}")

    def dav_get_lock(self, token: str) -> DavLock | None:
        """The unexpired lock with ``token``, else None."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(dav_locks).where(
                    dav_locks.c.token == token, dav_locks.c.expires_at > _now()
                )
            ).first()
        )
        return None if row is None else _lock(row)

    def dav_refresh_lock(self, token: str, timeout: float) -> DavLock | None:
        """Give an unexpired lock a new lifetime of ``timeout`` seconds from now; None if
        the lock is gone or expired."""
        if timeout <= 0:
            raise InvalidArgument("a lock needs a positive timeout")

        def tx(conn: Connection) -> DavLock | None:
            now = _now()
            done = conn.execute(
                dav_locks.update()
                .where(dav_locks.c.token == token, dav_locks.c.expires_at > now)
                .values(timeout=timeout, expires_at=now + timedelta(seconds=timeout))
            )
            if done.rowcount == 0:
                return None
            return _lock(conn.execute(sa.select(dav_locks).where(dav_locks.c.token == token)).one())

        return self._write(tx)

    def dav_delete_lock(self, token: str) -> bool:
        """Remove a lock; False if there was none (or it had expired)."""

        done = self._write(
            lambda conn: conn.execute(dav_locks.delete().where(dav_locks.c.token == token))
        )
        return bool(done.rowcount)

    def dav_locks_at(
        self, path: str, *, include_root: bool = True, include_children: bool = False
    ) -> list[DavLock]:
        """Unexpired locks whose root is ``path`` (with ``include_root``) and/or lies below
        it (with ``include_children``), oldest first."""
        root = normalize_lock_path(path)
        conditions = []
        if include_root:
            conditions.append(dav_locks.c.root == root)
        if include_children:
            low, high = _below(root)
            conditions.append(sa.and_(dav_locks.c.root >= low, dav_locks.c.root < high))
        if not conditions:
            return []
        query = (
            sa.select(dav_locks)
            .where(sa.or_(*conditions), dav_locks.c.expires_at > _now())
            .order_by(dav_locks.c.id)
        )
        rows = self._read(lambda conn: conn.execute(query).all())
        return [_lock(r) for r in rows]

    def dav_locks_on_paths(self, paths: Iterable[str]) -> list[DavLock]:
        """Unexpired locks rooted at any of ``paths`` (a path and its ancestors, say) in one
        query, oldest first."""
        roots = sorted({normalize_lock_path(p) for p in paths})
        if not roots:
            return []
        query = (
            sa.select(dav_locks)
            .where(dav_locks.c.root.in_(roots), dav_locks.c.expires_at > _now())
            .order_by(dav_locks.c.id)
        )
        return [_lock(r) for r in self._read(lambda conn: conn.execute(query).all())]

    def dav_purge_expired_locks(self) -> int:
        """Delete expired locks; returns how many."""
        done = self._write(
            lambda conn: conn.execute(dav_locks.delete().where(dav_locks.c.expires_at <= _now()))
        )
        return int(done.rowcount or 0)

    # -- dead properties -------------------------------------------------------------------
    def dav_properties(self, object_id: int) -> dict[str, bytes]:
        """The dead properties of one object: Clark name -> XML bytes."""
        return self.dav_properties_of([object_id]).get(object_id, {})

    def dav_properties_of(self, object_ids: Iterable[int]) -> dict[int, dict[str, bytes]]:
        """Dead properties of many objects (a listing page), a few queries in all; objects
        without properties are absent from the result."""
        ids = sorted(set(object_ids))
        found: dict[int, dict[str, bytes]] = {}
        if not ids:
            return found

        def tx(conn: Connection) -> None:
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                rows = conn.execute(
                    sa.select(
                        dav_properties.c.object_id, dav_properties.c.name, dav_properties.c.value
                    )
                    .where(dav_properties.c.object_id.in_(chunk))
                    .order_by(dav_properties.c.object_id, dav_properties.c.name)
                )
                for row in rows:
                    found.setdefault(int(row.object_id), {})[row.name] = bytes(row.value)

        self._read(tx)
        return found

    def dav_properties_by_keys(
        self, bucket_id: int, keys: Iterable[str]
    ) -> dict[str, dict[str, bytes]]:
        """Dead properties of the objects at ``keys`` of a bucket (the markers of the
        sub-folders in a listing), a few queries in all; keys without properties (or
        without an object) are absent from the result."""
        wanted = sorted(set(keys))
        found: dict[str, dict[str, bytes]] = {}
        if not wanted:
            return found

        def tx(conn: Connection) -> None:
            for start in range(0, len(wanted), _ID_CHUNK):
                chunk = wanted[start : start + _ID_CHUNK]
                rows = conn.execute(
                    sa.select(s.objects.c.key, dav_properties.c.name, dav_properties.c.value)
                    .join(dav_properties, dav_properties.c.object_id == s.objects.c.id)
                    .where(s.objects.c.bucket_id == bucket_id, s.objects.c.key.in_(chunk))
                )
                for row in rows:
                    found.setdefault(row.key, {})[row.name] = bytes(row.value)

        self._read(tx)
        return found

    def dav_update_properties(
        self, object_id: int, changes: Mapping[str, bytes | None]
    ) -> dict[str, bytes]:
        """Set (bytes) or remove (None) dead properties of an object in one transaction;
        returns them all afterwards. ``NotFound`` if the object is gone."""

        def tx(conn: Connection) -> dict[str, bytes]:
            for name, value in changes.items():
                conn.execute(
                    dav_properties.delete().where(
                        dav_properties.c.object_id == object_id, dav_properties.c.name == name
                    )
                )
                if value is not None:
                    conn.execute(
                        dav_properties.insert().values(object_id=object_id, name=name, value=value)
                    )
            rows = conn.execute(
                sa.select(dav_properties.c.name, dav_properties.c.value).where(
                    dav_properties.c.object_id == object_id
                )
            )
            return {r.name: bytes(r.value) for r in rows}

        return self._write(tx, what=f"properties of object {object_id}")

    def dav_copy_properties(self, source_id: int, target_id: int) -> None:
        """Make the target's dead properties a copy of the source's (a WebDAV COPY)."""
        if source_id == target_id:
            return

        def tx(conn: Connection) -> None:
            conn.execute(dav_properties.delete().where(dav_properties.c.object_id == target_id))
            rows = conn.execute(
                sa.select(dav_properties.c.name, dav_properties.c.value).where(
                    dav_properties.c.object_id == source_id
                )
            ).all()
            if rows:
                conn.execute(
                    dav_properties.insert(),
                    [{"object_id": target_id, "name": r.name, "value": r.value} for r in rows],
                )

        self._write(tx, what=f"properties of object {target_id}")

    def dav_delete_properties(self, object_id: int) -> None:
        """Remove every dead property of an object."""
        self._write(
            lambda conn: conn.execute(
                dav_properties.delete().where(dav_properties.c.object_id == object_id)
            )
        )
