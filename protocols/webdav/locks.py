"""WebDAV locks (RFC 4918 class 2) kept in the catalog, so every replica honours them.

:class:`CatalogLockStorage` is a wsgidav lock storage (the contract of
``wsgidav.lock_man.lock_storage.LockStorageDict``) over :class:`catalog.dav.DavQueries`.
wsgidav hands it *ref URLs* (``quote("/org/bucket/a b")`` = ``/org/bucket/a%20b``); the
catalog keeps the decoded path, which is shorter and sorts like the keys.

:class:`CatalogLockManager` is wsgidav's ``LockManager`` with two changes:

- conflict checks read a path's own and its ancestors' locks in one query instead of one
  per ancestor (every write checks them);
- a lock is granted first and then verified: wsgidav checks for conflicts and creates the
  lock under a lock of its own process, which says nothing about another replica granting
  a conflicting lock at the same instant. After storing its lock, a replica looks for a
  conflicting lock created *before* its own (a smaller row id); if there is one, it
  withdraws its lock and answers 423 Locked. Of two racing grants the older stands, and
  at least the younger one sees it (both rows are committed before either looks).

Expiry: every read ignores expired rows; they are deleted whenever a lock is created. A
lock asking for an infinite or too long timeout gets ``webdav.lock_timeout_max``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, unquote

from wsgidav import util
from wsgidav.dav_error import HTTP_LOCKED, DAVError, DAVErrorCondition
from wsgidav.lock_man.lock_manager import (
    LockManager,
    generate_lock_token,
    normalize_lock_root,
    validate_lock,
)

from catalog.dav import DavLock, DavQueries
from protocols.webdav.errors import translated

LockDict = dict[str, Any]

_CONFLICT = "{DAV:}no-conflicting-lock"


def ref_url(path: str) -> str:
    """A decoded path as wsgidav's ref URL (what ``get_ref_url`` returns)."""
    return quote(path)


def lock_path(url: str) -> str:
    """A ref URL as the decoded path the catalog stores."""
    return normalize_lock_root(unquote(url))


def lock_dict(lock: DavLock) -> LockDict:
    """A stored lock in wsgidav's dictionary form."""
    return {
        "id": lock.id,
        "token": lock.token,
        "root": ref_url(lock.root),
        "principal": lock.principal,
        "scope": lock.scope,
        "type": lock.type,
        "depth": lock.depth,
        "owner": lock.owner,
        "timeout": lock.timeout,
        "expire": lock.expires_at.timestamp(),
    }


def ancestors(path: str) -> list[str]:
    """``/a/b/c`` -> ``["/a/b/c", "/a/b", "/a", "/"]``."""
    path = normalize_lock_root(path)
    found = [path]
    while path != "/":
        path = path.rsplit("/", 1)[0] or "/"
        found.append(path)
    return found


def conflicts(a: LockDict, b: LockDict) -> bool:
    """Whether two locks may not coexist: one is exclusive and one covers the other."""
    if a["scope"] == "shared" and b["scope"] == "shared":
        return False
    root_a, root_b = a["root"], b["root"]
    if normalize_lock_root(root_a) == normalize_lock_root(root_b):
        return True
    if util.is_child_uri(root_a, root_b):
        return a["depth"] == "infinity"
    if util.is_child_uri(root_b, root_a):
        return b["depth"] == "infinity"
    return False


class CatalogLockStorage:
    """wsgidav lock storage over the catalog (see the module docstring)."""

    def __init__(self, catalog: DavQueries, *, max_timeout: float) -> None:
        self.catalog = catalog
        self.max_timeout = max_timeout

    def __repr__(self) -> str:
        return "CatalogLockStorage"

    def open(self) -> None:
        """Nothing to open: the catalog's pool connects on demand."""

    def close(self) -> None:
        """Nothing to close: the catalog belongs to the gateway."""

    def cleanup(self) -> None:
        """Purge expired locks."""
        with translated():
            self.catalog.dav_purge_expired_locks()

    def clear(self) -> None:
        """Delete every lock (tests only)."""
        for lock in self.get_lock_list(
            "/", include_root=True, include_children=True, token_only=False
        ):
            self.delete(lock["token"])

    def _timeout(self, timeout: Any) -> float:
        value = float(timeout) if timeout is not None else self.max_timeout
        if value <= 0 or value > self.max_timeout:
            return self.max_timeout
        return value

    def get(self, token: str) -> LockDict | None:
        """The unexpired lock with ``token``, or None."""
        with translated():
            lock = self.catalog.dav_get_lock(token)
        return None if lock is None else lock_dict(lock)

    def create(self, path: str, lock: LockDict) -> LockDict:
        """Store a new lock on ``path``; fills in ``root``, ``timeout``, ``expire``,
        ``token`` (and ``id``) and returns the dictionary."""
        root = lock_path(path)
        lock["root"] = ref_url(root)
        lock["timeout"] = self._timeout(lock.get("timeout"))
        lock["expire"] = time.time() + lock["timeout"]
        validate_lock(lock)
        token = generate_lock_token()
        with translated():
            stored = self.catalog.dav_create_lock(
                root,
                token=token,
                principal=lock["principal"],
                scope=lock["scope"],
                type=lock["type"],
                depth=lock["depth"],
                owner=lock["owner"],
                timeout=lock["timeout"],
            )
        lock.update(lock_dict(stored))
        return lock

    def refresh(self, token: str, *, timeout: Any) -> LockDict:
        """Give a lock a new lifetime; ``ValueError`` if it is gone."""
        with translated():
            lock = self.catalog.dav_refresh_lock(token, self._timeout(timeout))
        if lock is None:
            raise ValueError(f"no such lock: {token}")
        return lock_dict(lock)

    def delete(self, token: str) -> bool:
        """Remove a lock; False if there was none."""
        with translated():
            return self.catalog.dav_delete_lock(token)

    def get_lock_list(
        self, path: str, *, include_root: bool, include_children: bool, token_only: bool
    ) -> list[Any]:
        """Unexpired locks rooted at ``path`` and/or below it."""
        with translated():
            locks = self.catalog.dav_locks_at(
                lock_path(path), include_root=include_root, include_children=include_children
            )
        if token_only:
            return [lock.token for lock in locks]
        return [lock_dict(lock) for lock in locks]

    def locks_on(self, paths: list[str]) -> list[LockDict]:
        """Unexpired locks rooted at any of ``paths`` (ref URLs), in one query."""
        with translated():
            locks = self.catalog.dav_locks_on_paths([lock_path(p) for p in paths])
        return [lock_dict(lock) for lock in locks]


class CatalogLockManager(LockManager):
    """wsgidav's lock manager over :class:`CatalogLockStorage` (see the module docstring)."""

    storage: CatalogLockStorage

    def __init__(self, storage: CatalogLockStorage) -> None:
        super().__init__(storage)

    def _ancestor_locks(self, url: str) -> list[LockDict]:
        paths = [ref_url(p) for p in ancestors(lock_path(url))]
        return self.storage.locks_on(paths)

    def _get_write_conflicts(
        self, url: str, depth: str, token_list: list[str], principal: str
    ) -> DAVErrorCondition:
        url = normalize_lock_root(url)
        errcond = DAVErrorCondition(_CONFLICT)
        for lock in self._ancestor_locks(url):
            own = normalize_lock_root(lock["root"]) == url
            if not own and lock["depth"] != "infinity":
                continue
            if principal == lock["principal"] and lock["token"] in token_list:
                continue
            errcond.add_href(lock["root"])
        if depth == "infinity":
            for lock in self.storage.get_lock_list(
                url, include_root=False, include_children=True, token_only=False
            ):
                errcond.add_href(lock["root"])
        return errcond

    def get_indirect_url_lock_list(
        self, url: str, *, principal: str | None = None
    ) -> list[LockDict]:
        url = normalize_lock_root(url)
        found = []
        for lock in self._ancestor_locks(url):
            if normalize_lock_root(lock["root"]) != url and lock["depth"] != "infinity":
                continue
            if principal is None or principal == lock["principal"]:
                found.append(lock)
        return found

    def acquire(
        self,
        *,
        url: str,
        lock_type: str,
        lock_scope: str,
        lock_depth: str,
        lock_owner: bytes,
        timeout: Any,
        principal: str,
        token_list: list[str],
    ) -> LockDict:
        lock: LockDict = super().acquire(
            url=url,
            lock_type=lock_type,
            lock_scope=lock_scope,
            lock_depth=lock_depth,
            lock_owner=lock_owner,
            timeout=timeout,
            principal=principal,
            token_list=token_list,
        )
        self._withdraw_if_raced(lock)
        return lock

    def _withdraw_if_raced(self, lock: LockDict) -> None:
        """Withdraw ``lock`` if an older conflicting lock exists (another replica's)."""
        nearby = self._ancestor_locks(lock["root"])
        if lock["depth"] == "infinity":
            nearby += self.storage.get_lock_list(
                lock["root"], include_root=False, include_children=True, token_only=False
            )
        older = [
            other
            for other in nearby
            if other["id"] < lock["id"]
            and other["token"] != lock["token"]
            and conflicts(lock, other)
        ]
        if older:
            self.storage.delete(lock["token"])
            errcond = DAVErrorCondition(_CONFLICT)
            for other in older:
                errcond.add_href(other["root"])
            raise DAVError(HTTP_LOCKED, err_condition=errcond)
