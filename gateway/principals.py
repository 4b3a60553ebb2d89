"""Who is asking, and may they: principals, password hashing and the one policy function.

Every ObjectService call carries a :class:`Principal` and is checked by :func:`authorize`
before any data or metadata is touched. Front ends never decide access themselves.

A denial never says whether the org, bucket or key exists: the message names only what the
caller asked for, so one org never learns another's names.
"""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from catalog.records import ROLE_ADMIN, Org
from gateway.errors import AccessDenied

if TYPE_CHECKING:
    from catalog.api import Catalog


class Action(enum.Enum):
    """What a principal wants to do; each maps to a grantable right."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ARCHIVE = "archive"
    RESTORE = "restore"
    MANAGE = "manage"


@dataclass(frozen=True)
class Principal:
    """An authenticated user, as one request sees them.

    ``roles`` maps org names to the user's role there. ``scope_org`` narrows the principal to
    one org: an S3 access key belongs to one user in one org and sees only that org.
    """

    name: str
    user_id: int | None
    roles: dict[str, str] = field(default_factory=dict)
    scope_org: str | None = None
    is_operator: bool = False

    def orgs(self) -> list[str]:
        """The org names this principal may see, sorted."""
        if self.scope_org is not None:
            return [self.scope_org] if self.scope_org in self.roles else []
        return sorted(self.roles)

    def role_in(self, org_name: str) -> str | None:
        if self.scope_org is not None and org_name != self.scope_org:
            return None
        return self.roles.get(org_name)


def authorize(
    principal: Principal, action: Action, org: Org | None, bucket: str | None = None
) -> None:
    """Raise ``AccessDenied`` unless ``principal`` may do ``action`` in ``org``/``bucket``.

    ``org`` is None when the named org does not exist: that is denied with the same message
    as an org the principal is not in, so existence is never revealed.
    """
    target = bucket if bucket is not None else "this resource"
    if org is None:
        raise AccessDenied(target)
    role = principal.role_in(org.name)
    if role is None:
        raise AccessDenied(target)
    if action is Action.MANAGE and role != ROLE_ADMIN:
        raise AccessDenied(target)


_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` in the PHC string format."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; constant-time, and False for a missing hash."""
    if not password_hash:
        # Burn comparable time so a missing user is not told apart by timing.
        hmac.compare_digest(password, password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def principal_for_user(catalog: Catalog, user_id: int, *, scope_org: str | None = None) -> Principal:
    """Build the principal of a known user from their memberships."""
    user = catalog.get_user_by_id(user_id)
    if user is None or user.disabled:
        raise AccessDenied("unknown or disabled user")
    roles: dict[str, str] = {}
    for membership in catalog.memberships_of(user.id):
        org = catalog.get_org_by_id(membership.org_id)
        if org is not None:
            roles[org.name] = membership.role
    return Principal(
        name=user.name,
        user_id=user.id,
        roles=roles,
        scope_org=scope_org,
        is_operator=user.is_operator,
    )


def authenticate_password(catalog: Catalog, username: str, password: str) -> Principal:
    """A local user's principal if the password is right, else ``AccessDenied``."""
    user = catalog.get_user(username)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise AccessDenied("wrong user name or password")
    return principal_for_user(catalog, user.id)


class _HasCatalog:
    catalog: Catalog


def authenticate_basic(gateway: _HasCatalog, username: str, password: str) -> Principal:
    """HTTP Basic credentials checked against the gateway's users."""
    return authenticate_password(gateway.catalog, username, password)
