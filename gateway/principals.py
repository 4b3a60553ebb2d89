"""Who is asking, and may they: principals, rights, password hashing and the one policy function.

Every ObjectService call carries a :class:`Principal` and is checked by :func:`authorize`
before any data or metadata is touched. Front ends never decide access themselves.

The model:

- A user belongs to orgs as ``admin`` or ``member``. An org admin holds every right in the
  org. A member holds the configured default rights (``identity.member_default_rights``,
  read, write and delete unless changed) plus what admins granted: for the whole org, or
  for one bucket by name.
- Rights (:class:`Action`): ``read``, ``write``, ``delete``, ``archive`` (cold storage
  classes and tiering policies), ``restore`` (spending on retrievals), ``manage``
  (members, grants, quotas, the org's keys).
- The identity service loads a user's memberships and grants once per authentication and
  puts the computed rights on the principal, which is cached with the authentication, so
  :func:`authorize` never queries anything.

A denial never says whether the org, bucket or key exists: to someone outside the org every
refusal reads the same, whatever they named, so one org never learns another's names.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from catalog.records import ROLE_ADMIN, ROLE_MEMBER, Org
from gateway.errors import AccessDenied, InvalidArgument

if TYPE_CHECKING:
    from catalog.api import Catalog
    from catalog.identity import UserFacts

ROLES = (ROLE_ADMIN, ROLE_MEMBER)


class Action(enum.Enum):
    """What a principal wants to do; each maps to a grantable right of the same name."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    ARCHIVE = "archive"
    RESTORE = "restore"
    MANAGE = "manage"


#: Every right (what an org admin holds).
ALL_RIGHTS: frozenset[Action] = frozenset(Action)
#: What a member holds without grants, unless ``identity.member_default_rights`` says else.
DEFAULT_MEMBER_RIGHTS: frozenset[Action] = frozenset({Action.READ, Action.WRITE, Action.DELETE})

#: The one message for "not yours, or not there": it must not depend on what exists.
NO_ACCESS = "you have no access to this org or bucket (or it does not exist)"


def parse_rights(names: Iterable[str]) -> frozenset[Action]:
    """Right names to actions; ``all`` stands for every right. ``InvalidArgument`` names an
    unknown right."""
    rights: set[Action] = set()
    for name in names:
        key = name.strip().lower()
        if key == "all":
            rights |= ALL_RIGHTS
            continue
        try:
            rights.add(Action(key))
        except ValueError:
            known = ", ".join(a.value for a in Action)
            raise InvalidArgument(f"{name!r} is not a right (rights: {known}, or all)") from None
    return frozenset(rights)


def rights_names(rights: Iterable[Action]) -> list[str]:
    """Right names in the canonical order of :class:`Action`."""
    chosen = set(rights)
    return [a.value for a in Action if a in chosen]


@dataclass(frozen=True)
class OrgRights:
    """A principal's rights in one org: org-wide, plus extra rights per bucket name."""

    org: frozenset[Action]
    buckets: Mapping[str, frozenset[Action]] = field(default_factory=dict)

    def allows(self, action: Action, bucket: str | None = None) -> bool:
        """True if ``action`` is allowed in the org (``bucket`` None) or in ``bucket``."""
        if action in self.org:
            return True
        return bucket is not None and action in self.buckets.get(bucket, frozenset())

    def sees(self, bucket: str) -> bool:
        """True if ``bucket`` may be listed: the principal may read it."""
        return self.allows(Action.READ, bucket)


_ADMIN_RIGHTS = OrgRights(ALL_RIGHTS)
# A principal built by trusted code without a rights lookup (``rights`` None): the role
# alone decides, as before grants existed.
_LEGACY_MEMBER_RIGHTS = OrgRights(ALL_RIGHTS - {Action.MANAGE})
_NO_RIGHTS = OrgRights(frozenset())


@dataclass(frozen=True)
class Principal:
    """An authenticated user, as one request sees them.

    ``roles`` maps org names to the user's role there. ``scope_org`` narrows the principal to
    one org: an S3 access key belongs to one user in one org and sees only that org.
    ``rights`` maps org names to :class:`OrgRights`; the identity service always fills it.
    When it is None (a principal built by trusted code, such as tests or internal tools),
    the role alone decides: an admin may do everything, a member everything but manage.
    ``is_operator`` marks a gateway operator, who administers users and orgs (CLI, admin
    API) but reads no org's data without a membership.
    """

    name: str
    user_id: int | None
    roles: dict[str, str] = field(default_factory=dict)
    scope_org: str | None = None
    is_operator: bool = False
    rights: Mapping[str, OrgRights] | None = None
    #: Where the user comes from (``local``, ``ldap``...).
    source: str = "local"

    def orgs(self) -> list[str]:
        """The org names this principal may see, sorted."""
        if self.scope_org is not None:
            return [self.scope_org] if self.scope_org in self.roles else []
        return sorted(self.roles)

    def role_in(self, org_name: str) -> str | None:
        """The role in ``org_name``, None outside it (or outside the key's org)."""
        if self.scope_org is not None and org_name != self.scope_org:
            return None
        return self.roles.get(org_name)

    def rights_in(self, org_name: str) -> OrgRights | None:
        """The rights in ``org_name``; None when the principal is not in it."""
        role = self.role_in(org_name)
        if role is None:
            return None
        if self.rights is None:
            return _ADMIN_RIGHTS if role == ROLE_ADMIN else _LEGACY_MEMBER_RIGHTS
        return self.rights.get(org_name, _NO_RIGHTS)

    def may(self, action: Action, org_name: str, bucket: str | None = None) -> bool:
        """True if :func:`authorize` would allow ``action`` in ``org_name``/``bucket``."""
        rights = self.rights_in(org_name)
        return rights is not None and rights.allows(action, bucket)

    def scoped(self, org_name: str) -> Principal:
        """This principal narrowed to one org (as an access key of that org sees it)."""
        return Principal(
            name=self.name,
            user_id=self.user_id,
            roles=self.roles,
            scope_org=org_name,
            is_operator=self.is_operator,
            rights=self.rights,
            source=self.source,
        )


def operator_principal(name: str = "operator") -> Principal:
    """The principal of an operator at the command line: administers everything, belongs
    to no org (so it reads no org's data)."""
    return Principal(name=name, user_id=None, is_operator=True, rights=MappingProxyType({}))


def authorize(
    principal: Principal, action: Action, org: Org | None, bucket: str | None = None
) -> None:
    """Raise ``AccessDenied`` unless ``principal`` may do ``action`` in ``org``/``bucket``.

    ``org`` is None when the named org does not exist: that is denied with the same message
    as an org the principal is not in, so existence is never revealed. A member who lacks a
    right is told which right, since they know the org already.
    """
    if org is None:
        raise AccessDenied(NO_ACCESS)
    rights = principal.rights_in(org.name)
    if rights is None:
        raise AccessDenied(NO_ACCESS)
    if not rights.allows(action, bucket):
        where = f"bucket {bucket}" if bucket is not None else f"org {org.name}"
        raise AccessDenied(f"the {action.value} right on {where} is needed")


def build_principal(
    facts: UserFacts,
    *,
    member_default_rights: Iterable[Action] = DEFAULT_MEMBER_RIGHTS,
    scope_org: str | None = None,
) -> Principal:
    """The principal of a user from their memberships and grants (see the module docstring).

    Grants naming a right this version does not know are ignored.
    """
    defaults = frozenset(member_default_rights)
    names = {m.org_id: m.org_name for m in facts.memberships}
    org_grants: dict[int, set[Action]] = {}
    bucket_grants: dict[int, dict[str, set[Action]]] = {}
    for grant in facts.grants:
        known = {a for a in Action if a.value in grant.rights}
        if grant.bucket is None:
            org_grants.setdefault(grant.org_id, set()).update(known)
        else:
            bucket_grants.setdefault(grant.org_id, {}).setdefault(grant.bucket, set()).update(known)
    roles: dict[str, str] = {}
    rights: dict[str, OrgRights] = {}
    for membership in facts.memberships:
        name = names[membership.org_id]
        roles[name] = membership.role
        if membership.role == ROLE_ADMIN:
            rights[name] = _ADMIN_RIGHTS
            continue
        rights[name] = OrgRights(
            org=frozenset(defaults | org_grants.get(membership.org_id, set())),
            buckets=MappingProxyType(
                {
                    bucket: frozenset(granted)
                    for bucket, granted in bucket_grants.get(membership.org_id, {}).items()
                }
            ),
        )
    return Principal(
        name=facts.user.name,
        user_id=facts.user.id,
        roles=roles,
        scope_org=scope_org,
        is_operator=facts.user.is_operator,
        rights=MappingProxyType(rights),
        source=facts.source,
    )


# -- passwords -----------------------------------------------------------------------------
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` in the PHC string format."""
    return _hasher.hash(password)


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(24))
    return _dummy_hash


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; constant-time, and False for a missing hash.

    A missing hash is checked against a dummy hash anyway, so an unknown user name takes as
    long as a wrong password and cannot be told apart by timing.
    """
    try:
        if not password_hash:
            _hasher.verify(_dummy(), password)
            return False
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- compatibility helpers (the identity service is the front ends' way in) -----------------
def principal_for_user(
    catalog: Catalog,
    user_id: int,
    *,
    scope_org: str | None = None,
    member_default_rights: Iterable[Action] = DEFAULT_MEMBER_RIGHTS,
) -> Principal:
    """Build the principal of a known user from their memberships and grants (read fresh)."""
    facts = catalog.user_facts(user_id=user_id)
    if facts is None or facts.user.disabled:
        raise AccessDenied("unknown or disabled user")
    return build_principal(
        facts, member_default_rights=member_default_rights, scope_org=scope_org
    )


def authenticate_password(catalog: Catalog, username: str, password: str) -> Principal:
    """A local user's principal if the password is right, else ``AccessDenied``.

    No throttling, no cache, no other authenticators: front ends use
    :meth:`gateway.identity.IdentityService.authenticate_password` instead.
    """
    user = catalog.find_user(username)
    if not verify_password(user.password_hash if user else None, password) or user is None:
        raise AccessDenied("wrong user name or password")
    return principal_for_user(catalog, user.id)


class _HasCatalog(Protocol):
    catalog: Catalog


def authenticate_basic(gateway: _HasCatalog, username: str, password: str) -> Principal:
    """HTTP Basic credentials, checked by the gateway's identity service when it has one
    (authenticator chain, cache, throttling), else against local users."""
    identity = getattr(gateway, "identity", None)
    if identity is not None:
        principal: Principal = identity.authenticate_password(username, password)
        return principal
    return authenticate_password(gateway.catalog, username, password)
