"""Catalog queries for users, memberships, access keys, grants, tokens, login failures.

A mixin of :class:`catalog.api.Catalog` over :class:`catalog.base.CatalogBase`; its tables
live in :mod:`catalog.tables_identity` (users, memberships and access keys are core tables).

Unlike the core's ``get_user``/``get_access_key``, the reads here are never cached: the
identity service (``gateway/identity.py``) reads fresh and keeps the result in its own cache
for at most 30 seconds, so a revocation takes effect on every replica within that one bound
instead of two stacked ones.

A user's ``settings`` JSON holds ``source`` (``local``, ``ldap``...; missing means
``local``) and ``profile`` (directory attributes such as ``country`` used by placement).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from catalog import schema as s
from catalog import tables_identity as t
from catalog.base import CatalogBase
from catalog.records import AccessKey, User
from catalog.rows import access_key as _access_key_row
from catalog.rows import now as _now
from catalog.rows import user as _user_row
from gateway.errors import CoolStorageError, InvalidArgument

#: Where a user comes from when nothing says otherwise.
SOURCE_LOCAL = "local"

#: Login failure counter kinds.
FAILURE_USER = "user"
FAILURE_CLIENT = "client"


@dataclass(frozen=True)
class Grant:
    """Rights a member holds beyond the defaults, in the whole org (``bucket`` None) or in
    one bucket, by name."""

    org_id: int
    user_id: int
    bucket: str | None
    rights: frozenset[str]


@dataclass(frozen=True)
class MemberRole:
    """One membership with its org's name."""

    org_id: int
    org_name: str
    role: str


@dataclass(frozen=True)
class UserFacts:
    """A user and everything a principal is built from, read in one transaction."""

    user: User
    source: str
    profile: dict[str, str] = field(default_factory=dict)
    memberships: tuple[MemberRole, ...] = ()
    grants: tuple[Grant, ...] = ()


@dataclass(frozen=True)
class ApiToken:
    """A bearer token of the admin API (the token itself is never stored)."""

    id: int
    user_id: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class QuotaUsage:
    """What an org stores against its quota (``quota_bytes`` None: no quota)."""

    org_id: int
    org_name: str
    stored_bytes: int
    quota_bytes: int | None

    @property
    def free_bytes(self) -> int | None:
        """Bytes that may still be written (never negative), None without a quota."""
        if self.quota_bytes is None:
            return None
        return max(0, self.quota_bytes - self.stored_bytes)

    @property
    def fraction(self) -> float | None:
        """Stored bytes as a fraction of the quota (may pass 1.0 after a quota cut)."""
        if self.quota_bytes is None:
            return None
        if self.quota_bytes == 0:
            return 0.0 if self.stored_bytes == 0 else float("inf")
        return self.stored_bytes / self.quota_bytes


def _settings(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bytes | bytearray):
        value = value.decode("utf-8")
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value or {})


def _token_row(row: Row[Any]) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _rights_text(rights: Iterable[str]) -> str:
    names = sorted(set(rights))
    for name in names:
        if not name or "," in name or len(name) > 32:
            raise InvalidArgument(f"{name!r} is not a right name")
    return ",".join(names)


def _rights_set(text: str) -> frozenset[str]:
    return frozenset(part for part in text.split(",") if part)


def _merge_grants(rows: Iterable[Row[Any]]) -> list[Grant]:
    """One grant per (org, user, bucket), rights united, sorted."""
    merged: dict[tuple[int, int, str | None], set[str]] = {}
    for row in rows:
        merged.setdefault((row.org_id, row.user_id, row.bucket), set()).update(
            _rights_set(row.rights)
        )
    return [
        Grant(org_id=o, user_id=u, bucket=b, rights=frozenset(r))
        for (o, u, b), r in sorted(merged.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or ""))
        if r
    ]


def failure_key(kind: str, subject: str) -> str:
    """The ``login_failures`` key of a subject (fixed length whatever the subject)."""
    return hashlib.sha256(f"{kind}\0{subject}".encode("utf-8", "surrogatepass")).hexdigest()


class IdentityQueries(CatalogBase):
    """Queries for users, memberships, access keys, grants, tokens, login failures."""

    # -- users -----------------------------------------------------------------------------
    def create_user(
        self,
        name: str,
        *,
        password_hash: str | None,
        is_operator: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> User:
        """``AlreadyExists`` if a user of that name exists."""
        now = _now()

        def tx(conn: Connection) -> User:
            conn.execute(
                s.users.insert().values(
                    name=name,
                    password_hash=password_hash,
                    created_at=now,
                    disabled=False,
                    is_operator=is_operator,
                    settings=dict(settings) if settings is not None else None,
                )
            )
            return _user_row(conn.execute(sa.select(s.users).where(s.users.c.name == name)).one())

        return self._write(tx, what=f"user {name}")

    def create_user_from(
        self,
        name: str,
        *,
        source: str,
        password_hash: str | None = None,
        is_operator: bool = False,
        profile: Mapping[str, str] | None = None,
    ) -> User:
        """Create a user of ``source`` (``local``, ``ldap``...); ``AlreadyExists`` if the
        name is taken."""
        settings: dict[str, Any] = {"source": source}
        if profile:
            settings["profile"] = dict(profile)
        return self.create_user(
            name, password_hash=password_hash, is_operator=is_operator, settings=settings
        )

    def find_user(self, name: str) -> User | None:
        """The user called ``name``, read fresh (never cached)."""
        row = self._read(
            lambda conn: conn.execute(sa.select(s.users).where(s.users.c.name == name)).first()
        )
        return None if row is None else _user_row(row)

    def user_facts(self, *, user_id: int | None = None, name: str | None = None) -> UserFacts | None:
        """The user (by id or name) with source, profile, memberships and grants, read
        fresh in one transaction; None if there is no such user."""
        if (user_id is None) == (name is None):
            raise TypeError("give user_id or name")

        def tx(conn: Connection) -> UserFacts | None:
            where = s.users.c.id == user_id if user_id is not None else s.users.c.name == name
            row = conn.execute(sa.select(s.users).where(where)).first()
            if row is None:
                return None
            members = conn.execute(
                sa.select(s.memberships.c.org_id, s.orgs.c.name, s.memberships.c.role)
                .join(s.orgs, s.orgs.c.id == s.memberships.c.org_id)
                .where(s.memberships.c.user_id == row.id)
                .order_by(s.orgs.c.name)
            ).all()
            grant_rows = conn.execute(
                sa.select(t.grants).where(t.grants.c.user_id == row.id)
            ).all()
            settings = _settings(row.settings)
            return UserFacts(
                user=_user_row(row),
                source=str(settings.get("source") or SOURCE_LOCAL),
                profile={str(k): str(v) for k, v in (settings.get("profile") or {}).items()},
                memberships=tuple(MemberRole(m.org_id, m.name, m.role) for m in members),
                grants=tuple(_merge_grants(grant_rows)),
            )

        return self._read(tx)

    def all_user_facts(self) -> list[UserFacts]:
        """Every user with source and memberships (grants left empty), by name."""

        def tx(conn: Connection) -> list[UserFacts]:
            users = conn.execute(sa.select(s.users).order_by(s.users.c.name)).all()
            members = conn.execute(
                sa.select(s.memberships.c.user_id, s.memberships.c.org_id, s.orgs.c.name, s.memberships.c.role)
                .join(s.orgs, s.orgs.c.id == s.memberships.c.org_id)
                .order_by(s.orgs.c.name)
            ).all()
            by_user: dict[int, list[MemberRole]] = {}
            for m in members:
                by_user.setdefault(m.user_id, []).append(MemberRole(m.org_id, m.name, m.role))
            result = []
            for row in users:
                settings = _settings(row.settings)
                result.append(
                    UserFacts(
                        user=_user_row(row),
                        source=str(settings.get("source") or SOURCE_LOCAL),
                        profile={
                            str(k): str(v) for k, v in (settings.get("profile") or {}).items()
                        },
                        memberships=tuple(by_user.get(row.id, ())),
                    )
                )
            return result

        return self._read(tx)

    def set_user_profile(self, user_id: int, profile: Mapping[str, str]) -> None:
        """Replace the user's profile attributes (from the directory)."""

        def tx(conn: Connection) -> None:
            row = conn.execute(
                sa.select(s.users.c.settings).where(s.users.c.id == user_id).with_for_update()
            ).first()
            if row is None:
                raise InvalidArgument(f"no user with id {user_id}")
            settings = _settings(row.settings)
            settings["profile"] = dict(profile)
            conn.execute(s.users.update().where(s.users.c.id == user_id).values(settings=settings))

        self._write(tx)

    # -- memberships -----------------------------------------------------------------------
    def remove_member(self, org_id: int, user_id: int) -> bool:
        """Remove a membership and the member's grants in that org; True if there was one."""

        def tx(conn: Connection) -> bool:
            done = conn.execute(
                s.memberships.delete().where(
                    s.memberships.c.org_id == org_id, s.memberships.c.user_id == user_id
                )
            )
            conn.execute(
                t.grants.delete().where(t.grants.c.org_id == org_id, t.grants.c.user_id == user_id)
            )
            return bool(done.rowcount)

        removed = self._write(tx)
        self._cache.invalidate(("members", user_id))
        return removed

    def claim_personal_org(self, org_id: int, user_id: int) -> bool:
        """Mark the org as ``user_id``'s personal org unless another user holds it; True if
        it is (now) theirs."""

        def tx(conn: Connection) -> bool:
            row = conn.execute(
                sa.select(s.orgs.c.settings).where(s.orgs.c.id == org_id).with_for_update()
            ).first()
            if row is None:
                raise InvalidArgument(f"no org with id {org_id}")
            settings = _settings(row.settings)
            owner = settings.get("personal_for")
            if owner is not None:
                return bool(owner == user_id)
            settings["personal_for"] = user_id
            conn.execute(s.orgs.update().where(s.orgs.c.id == org_id).values(settings=settings))
            return True

        claimed = self._write(tx)
        self._cache.invalidate(("org", org_id))
        return claimed

    # -- grants ----------------------------------------------------------------------------
    def _grant_rows(
        self, conn: Connection, org_id: int, user_id: int, bucket: str | None
    ) -> list[Row[Any]]:
        match = t.grants.c.bucket.is_(None) if bucket is None else t.grants.c.bucket == bucket
        return list(
            conn.execute(
                sa.select(t.grants)
                .where(t.grants.c.org_id == org_id, t.grants.c.user_id == user_id, match)
                .order_by(t.grants.c.id)
                .with_for_update()
            ).all()
        )

    def _set_grant(
        self, conn: Connection, rows: list[Row[Any]], org_id: int, user_id: int,
        bucket: str | None, rights: set[str],
    ) -> None:
        if not rights:
            for row in rows:
                conn.execute(t.grants.delete().where(t.grants.c.id == row.id))
            return
        text = _rights_text(rights)
        if rows:
            conn.execute(t.grants.update().where(t.grants.c.id == rows[0].id).values(rights=text))
            for row in rows[1:]:
                conn.execute(t.grants.delete().where(t.grants.c.id == row.id))
        else:
            conn.execute(
                t.grants.insert().values(
                    org_id=org_id, user_id=user_id, bucket=bucket, rights=text, created_at=_now()
                )
            )

    def add_grant(
        self, org_id: int, user_id: int, rights: Iterable[str], *, bucket: str | None = None
    ) -> Grant:
        """Add ``rights`` to the user's grant in the org (or in one bucket); returns the
        whole grant now in force. Idempotent."""
        wanted = set(rights)
        _rights_text(wanted)

        def tx(conn: Connection) -> Grant:
            rows = self._grant_rows(conn, org_id, user_id, bucket)
            current: set[str] = set()
            for row in rows:
                current |= _rights_set(row.rights)
            current |= wanted
            self._set_grant(conn, rows, org_id, user_id, bucket, current)
            return Grant(org_id, user_id, bucket, frozenset(current))

        return self._write(tx, what="grant", retry_unique=True)

    def remove_grant(
        self, org_id: int, user_id: int, rights: Iterable[str], *, bucket: str | None = None
    ) -> Grant | None:
        """Take ``rights`` away from the grant; returns what is left (None when nothing)."""
        unwanted = set(rights)

        def tx(conn: Connection) -> Grant | None:
            rows = self._grant_rows(conn, org_id, user_id, bucket)
            current: set[str] = set()
            for row in rows:
                current |= _rights_set(row.rights)
            current -= unwanted
            self._set_grant(conn, rows, org_id, user_id, bucket, current)
            return Grant(org_id, user_id, bucket, frozenset(current)) if current else None

        return self._write(tx, what="grant")

    def list_grants(self, *, org_id: int | None = None, user_id: int | None = None) -> list[Grant]:
        """Grants, optionally of one org and/or one user (never cached)."""
        query = sa.select(t.grants)
        if org_id is not None:
            query = query.where(t.grants.c.org_id == org_id)
        if user_id is not None:
            query = query.where(t.grants.c.user_id == user_id)
        return _merge_grants(self._read(lambda conn: conn.execute(query).all()))

    # -- access keys -----------------------------------------------------------------------
    def lookup_access_key(self, access_key_id: str) -> AccessKey | None:
        """The key, revoked or not, read fresh (never cached)."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(s.access_keys).where(s.access_keys.c.access_key_id == access_key_id)
            ).first()
        )
        return None if row is None else _access_key_row(row)

    # -- API tokens ------------------------------------------------------------------------
    def create_api_token(self, token_hash: str, *, user_id: int, expires_at: datetime) -> ApiToken:
        """Store a token by its hash; ``AlreadyExists`` on a (vanishingly unlikely) clash."""
        now = _now()

        def tx(conn: Connection) -> ApiToken:
            conn.execute(
                t.api_tokens.insert().values(
                    token_hash=token_hash, user_id=user_id, created_at=now, expires_at=expires_at
                )
            )
            return _token_row(
                conn.execute(
                    sa.select(t.api_tokens).where(t.api_tokens.c.token_hash == token_hash)
                ).one()
            )

        return self._write(tx, what="API token")

    def api_token(self, token_hash: str) -> ApiToken | None:
        """The token stored under ``token_hash`` (expired and revoked ones too)."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(t.api_tokens).where(t.api_tokens.c.token_hash == token_hash)
            ).first()
        )
        return None if row is None else _token_row(row)

    def revoke_api_token(self, token_hash: str) -> ApiToken | None:
        """Mark the token revoked (idempotent); the token, or None if there is none."""
        now = _now()

        def tx(conn: Connection) -> ApiToken | None:
            conn.execute(
                t.api_tokens.update()
                .where(t.api_tokens.c.token_hash == token_hash, t.api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = conn.execute(
                sa.select(t.api_tokens).where(t.api_tokens.c.token_hash == token_hash)
            ).first()
            return None if row is None else _token_row(row)

        return self._write(tx)

    def revoke_user_tokens(self, user_id: int) -> int:
        """Revoke every live token of the user; how many were revoked."""
        now = _now()
        done = self._write(
            lambda conn: conn.execute(
                t.api_tokens.update()
                .where(
                    t.api_tokens.c.user_id == user_id,
                    t.api_tokens.c.revoked_at.is_(None),
                    t.api_tokens.c.expires_at > now,
                )
                .values(revoked_at=now)
            )
        )
        return int(done.rowcount)

    def purge_api_tokens(self, *, expired_before: datetime) -> int:
        """Delete tokens that expired before ``expired_before``; how many."""
        done = self._write(
            lambda conn: conn.execute(
                t.api_tokens.delete().where(t.api_tokens.c.expires_at < expired_before)
            )
        )
        return int(done.rowcount)

    # -- login failures --------------------------------------------------------------------
    def login_blocked(self, subjects: Sequence[tuple[str, str]], *, now: datetime | None = None) -> float:
        """Seconds until every one of ``subjects`` (``(kind, subject)``) may try again;
        0 when none is blocked."""
        if not subjects:
            return 0.0
        at = now or _now()
        keys = [failure_key(kind, subject) for kind, subject in subjects]
        rows = self._read(
            lambda conn: conn.execute(
                sa.select(t.login_failures.c.blocked_until).where(
                    t.login_failures.c.key.in_(keys), t.login_failures.c.blocked_until > at
                )
            ).all()
        )
        return max(((r.blocked_until - at).total_seconds() for r in rows), default=0.0)

    def record_login_failure(
        self,
        subjects: Sequence[tuple[str, str]],
        *,
        window: float,
        max_failures: int,
        backoff: float,
        max_backoff: float,
        now: datetime | None = None,
    ) -> float:
        """Count one failed login against each subject; returns the seconds the worst of
        them is now blocked (0 if none).

        A subject's count restarts once its first counted failure is older than ``window``
        (and any block has run out). From the ``max_failures``-th failure on, each failure
        blocks the subject for ``backoff`` seconds, doubled for every failure beyond that,
        at most ``max_backoff``. Replicas agree because the counters live here, updated
        under a row lock.
        """
        at = now or _now()
        horizon = timedelta(seconds=window)

        def tx(conn: Connection) -> float:
            worst = 0.0
            for kind, subject in subjects:
                key = failure_key(kind, subject)
                row = conn.execute(
                    sa.select(t.login_failures)
                    .where(t.login_failures.c.key == key)
                    .with_for_update()
                ).first()
                failures, first = 1, at
                if row is not None:
                    blocked = row.blocked_until is not None and row.blocked_until > at
                    if blocked or at - row.first_at <= horizon:
                        failures, first = int(row.failures) + 1, row.first_at
                until: datetime | None = None
                if failures >= max_failures:
                    seconds = min(backoff * 2.0 ** min(failures - max_failures, 32), max_backoff)
                    until = at + timedelta(seconds=seconds)
                    worst = max(worst, seconds)
                values = {
                    "failures": failures,
                    "first_at": first,
                    "last_at": at,
                    "blocked_until": until,
                }
                if row is None:
                    conn.execute(
                        t.login_failures.insert().values(
                            key=key, kind=kind, subject=subject[:255], **values
                        )
                    )
                else:
                    conn.execute(
                        t.login_failures.update().where(t.login_failures.c.key == key).values(**values)
                    )
            return worst

        worst = self._write(tx, what="login failure", retry_unique=True)
        # Forget subjects that have been quiet for long; a separate, best-effort statement.
        stale = at - timedelta(seconds=max(window, max_backoff) * 2)
        with contextlib.suppress(CoolStorageError):
            self._write(
                lambda conn: conn.execute(
                    t.login_failures.delete().where(
                        t.login_failures.c.last_at < stale,
                        sa.or_(
                            t.login_failures.c.blocked_until.is_(None),
                            t.login_failures.c.blocked_until < at,
                        ),
                    )
                )
            )
        return worst

    def clear_login_failures(self, subjects: Sequence[tuple[str, str]]) -> None:
        """Forget the failures of ``subjects`` (after a successful login)."""
        if not subjects:
            return
        keys = [failure_key(kind, subject) for kind, subject in subjects]
        self._write(
            lambda conn: conn.execute(
                t.login_failures.delete().where(t.login_failures.c.key.in_(keys))
            )
        )

    # -- quotas ----------------------------------------------------------------------------
    def quota_usage(self, org_id: int) -> QuotaUsage | None:
        """The org's stored bytes and quota, read fresh; None if there is no such org."""
        row = self._read(
            lambda conn: conn.execute(
                sa.select(s.orgs.c.id, s.orgs.c.name, s.orgs.c.stored_bytes, s.orgs.c.quota_bytes)
                .where(s.orgs.c.id == org_id)
            ).first()
        )
        if row is None:
            return None
        return QuotaUsage(
            org_id=row.id,
            org_name=row.name,
            stored_bytes=int(row.stored_bytes),
            quota_bytes=None if row.quota_bytes is None else int(row.quota_bytes),
        )
