"""The identity service: turns credentials into principals, for every front end.

S3 (access keys, SigV4), WebDAV (HTTP Basic), the admin API (bearer tokens) and the CLI all
authenticate here, so one user is one principal with one set of rights everywhere. The
administration of users, orgs, memberships, grants, quotas, access keys and tokens lives
here too, so every change is checked and audited in one place.

**Authenticators** (``identity.authenticators``, in order): ``local`` (catalog users with an
argon2id hash) and ``ldap`` (``[ldap]``). The chain follows :mod:`gateway.authn`: the first
authenticator that knows the user decides; an unreachable directory is skipped, and if
nobody accepted the login the "unavailable" error is reported rather than "wrong password".

**Directory users** become catalog users on their first login (no password hash, source
``ldap``), so they can hold access keys and grants. Their org roles from ``group_mappings``
are synced into memberships at every login (orgs are created with their keys when new);
memberships in orgs that ``group_mappings`` names follow the directory, other memberships
are left alone. A directory user may never take over a catalog user of another source
that has the same name.

**Personal orgs**: a user who belongs to no org gets one, named ``~`` plus the user name
made safe (lowercase letters, digits, ``.``, ``_``, ``-``; ``~alice`` for ``alice``,
``~j.smith`` for ``J.Smith``), with the user as its admin. The ``~`` prefix is reserved for
personal orgs (``org add`` refuses it), so no other org can ever be mistaken for one; two
users whose names map to the same name are told apart by a suffix from a hash of the
full name (``~j.smith-3fa2c1``).

**Cache**: a successful authentication is cached for at most ``identity.cache_ttl``
seconds (never more than 30) under an HMAC, keyed by a random per-process key, of the user
name and the secret (or of the access key id, or of the token), so no secret is kept in
memory as a key, and a burst of requests neither binds to LDAP nor runs argon2 each time.
The principal (with its rights) is cached with it. Lookups behind a cache miss read the
catalog fresh, never through the catalog's own cache, so a revoked key, a changed password,
a removed membership or grant stops working on every replica within ``cache_ttl``; on the
replica that made the change it stops at once. An access key's secret is cached wrapped by
the master key, as it is stored, and unwrapped per request.

**Throttling**: failed logins are counted per user name and per client address (IPv6 per
/64) in the catalog, so replicas agree. From the ``login_max_failures``-th failure within
``login_window`` seconds on, further attempts are refused for ``login_backoff`` seconds,
doubling with each further failure up to an hour, without even checking the password.
A cached successful login is still served, so an attacker cannot lock a working client
out; a successful login clears the user's counter.

**Audit**: logins (success, failure, a block starting), user creation, password changes,
membership, grant and quota changes, key creation and revocation, token issue and
revocation are rows of the catalog's audit log. Secrets never are.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from catalog.identity import (
    FAILURE_CLIENT,
    FAILURE_USER,
    SOURCE_LOCAL,
    Grant,
    QuotaUsage,
    UserFacts,
)
from catalog.records import ROLE_ADMIN, ROLE_MEMBER, AccessKey, Org, User
from gateway.authn import (
    AuthenticationFailed,
    Authenticator,
    AuthenticatorUnavailable,
    Identity,
)
from gateway.credentials import access_key_secret, create_access_key
from gateway.errors import (
    AccessDenied,
    AlreadyExists,
    ConfigError,
    CoolStorageError,
    InvalidArgument,
    InvalidName,
    NotFound,
)
from gateway.principals import (
    NO_ACCESS,
    ROLES,
    Action,
    Principal,
    authorize,
    build_principal,
    hash_password,
    parse_rights,
    rights_names,
    verify_password,
)

if TYPE_CHECKING:
    from catalog.api import Catalog
    from gateway.config import Config, IdentityConfig
    from gateway.objects import Keyring

log = logging.getLogger(__name__)

#: The longest a successful authentication is ever cached, whatever the config says.
MAX_CACHE_TTL = 30.0
#: The longest a login block lasts, however many failures.
MAX_LOGIN_BACKOFF = 3600.0
#: Password length limits for local users (argon2 of megabytes would be a cheap DoS).
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
#: Prefix reserved for personal orgs.
PERSONAL_PREFIX = "~"

_ORG_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9+/=_-]{1,128}")


# -- errors --------------------------------------------------------------------------------
class UnknownAccessKey(AccessDenied):
    """Access denied: the access key {0} does not exist or was revoked"""

    code = "InvalidAccessKeyId"


class InvalidToken(AccessDenied):
    """Access denied: the token is unknown, expired or revoked"""

    code = "InvalidToken"
    http_status = 401


class LoginThrottled(AccessDenied):
    """Access denied: too many failed logins; try again in {0} s"""

    code = "AccessDenied"

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        #: Seconds until a login may be tried again (for a Retry-After header).
        self.retry_after = retry_after


# -- names ---------------------------------------------------------------------------------
def validate_org_name(name: str, *, personal: bool = False) -> None:
    """Org names: 1-63 of lowercase letters, digits, ``.``, ``_`` and ``-``, starting with a
    letter or digit (safe as a WebDAV folder name and in URLs); a personal org's name is
    ``~`` and such a name, and no other org's name may start with ``~``."""
    if personal and not name.startswith(PERSONAL_PREFIX):
        raise InvalidName(f"{name!r}: a personal org name starts with {PERSONAL_PREFIX}")
    bare = name[len(PERSONAL_PREFIX) :] if personal else name
    if not _ORG_NAME.fullmatch(bare):
        reserved = (
            f" ({PERSONAL_PREFIX} starts personal org names only)"
            if not personal and name.startswith(PERSONAL_PREFIX)
            else ""
        )
        raise InvalidName(
            f"{name!r}: an org name has 1 to 63 lowercase letters, digits, dots, underscores "
            f"and hyphens, and starts with a letter or digit{reserved}"
        )


def personal_org_name(username: str, *, disambiguate: bool = False) -> str:
    """The personal org name of ``username`` (see the module docstring); with
    ``disambiguate``, the variant with a hash suffix used when two names collide."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", username.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-._")[:48] or "user"
    if disambiguate:
        digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:6]
        slug = f"{slug}-{digest}"
    return PERSONAL_PREFIX + slug


def validate_user_name(name: str) -> None:
    """User names: 1-255 characters, no control or invisible characters, no surrounding
    spaces and no ``:`` (HTTP Basic could not carry it)."""
    ok = (
        isinstance(name, str)
        and 0 < len(name) <= 255
        and name == name.strip()
        and ":" not in name
        and not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name)
    )
    if not ok:
        raise InvalidName(
            f"{name!r}: a user name has 1 to 255 characters, no control characters, no "
            "surrounding spaces and no ':'"
        )


def check_password(password: str) -> None:
    """Refuse passwords a local user may not have (too short or absurdly long)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidArgument(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


# -- the local authenticator ---------------------------------------------------------------
class LocalAuthenticator(Authenticator):
    """Users stored in the catalog with an argon2id password hash.

    A user without a hash (a directory user provisioned at first login) is not this
    authenticator's: it answers None so the next one (LDAP) decides. An unknown user costs
    the same argon2 time as a wrong password.
    """

    name = "local"

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def authenticate(self, username: str, password: str) -> Identity | None:
        if not password or len(password) > MAX_PASSWORD_LENGTH or len(username) > 255:
            raise AuthenticationFailed(username)
        user = self.catalog.find_user(username)
        if user is None or not user.password_hash:
            verify_password(None, password)
            return None
        if not verify_password(user.password_hash, password):
            raise AuthenticationFailed(username)
        return Identity(username=user.name, source=SOURCE_LOCAL)


# -- records the service returns -----------------------------------------------------------
@dataclass(frozen=True)
class IssuedToken:
    """A new bearer token: shown to its owner once, stored only as a hash."""

    token: str
    expires_at: datetime
    principal: Principal


@dataclass(frozen=True)
class KeyInfo:
    """An access key as listings show it (never with its secret)."""

    access_key_id: str
    user: str
    org: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class GrantInfo:
    """A grant with names instead of ids."""

    org: str
    user: str
    bucket: str | None
    rights: tuple[str, ...]


@dataclass(frozen=True)
class _KeyEntry:
    principal: Principal
    #: The key record: its secret stays wrapped by the master key while cached.
    key: AccessKey


@dataclass(frozen=True)
class _TokenEntry:
    principal: Principal
    expires_at: datetime


def _utcnow() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    """How a bearer token is stored: the hex SHA-256 of it (the token is 256 random bits)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def client_subject(client: str) -> str:
    """The throttling subject of a client address: the address itself, IPv6 per /64 (one
    host usually holds a whole /64)."""
    text = client.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text[:255]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class IdentityService:
    """Authentication and access administration for every front end (see the module
    docstring). Thread-safe: one instance serves all request threads."""

    def __init__(
        self,
        catalog: Catalog,
        keyring: Keyring,
        *,
        config: IdentityConfig | None = None,
        authenticators: Sequence[Authenticator] | None = None,
        ensure_org: Callable[[str], Org] | None = None,
        directory_orgs: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        """``authenticators`` default to the local one; ``ensure_org`` creates an org with
        its keys (``ObjectService.ensure_org``), needed for new orgs and personal orgs;
        ``directory_orgs`` are the orgs whose memberships follow the directory. ``clock``
        drives the cache, ``now`` the throttling and token times (tests pass their own)."""
        from catalog.cache import TTLCache
        from gateway.config import IdentityConfig

        self.catalog = catalog
        self.keyring = keyring
        self.config = config or IdentityConfig()
        self.authenticators: list[Authenticator] = (
            list(authenticators) if authenticators is not None else [LocalAuthenticator(catalog)]
        )
        self.member_default_rights = parse_rights(self.config.member_default_rights)
        self.directory_orgs = frozenset(directory_orgs)
        for name in sorted(self.directory_orgs):
            try:
                validate_org_name(name)
            except InvalidName as error:
                raise ConfigError(f"ldap.group_mappings: {error}") from None
        self._ensure_org_fn = ensure_org
        self._now = now
        self._cache: TTLCache[object] = TTLCache(
            min(self.config.cache_ttl, MAX_CACHE_TTL), clock=clock
        )
        # Cache keys are HMACs under a key that never leaves this process.
        self._hmac_key = secrets.token_bytes(32)

    @classmethod
    def from_config(
        cls,
        config: Config,
        catalog: Catalog,
        keyring: Keyring,
        *,
        ensure_org: Callable[[str], Org] | None = None,
    ) -> IdentityService:
        """The service ``[identity]`` and ``[ldap]`` describe; ``ConfigError`` for bad LDAP
        options (nothing connects yet)."""
        authenticators: list[Authenticator] = []
        try:
            for name in config.identity.authenticators:
                if name == "local":
                    authenticators.append(LocalAuthenticator(catalog))
                elif name == "ldap":
                    from gateway.ldap_auth import LdapAuthenticator

                    authenticators.append(LdapAuthenticator.from_options(config.ldap.options()))
                else:
                    raise ConfigError(f"identity.authenticators: unknown authenticator {name!r}")
            directory = config.ldap.mapped_orgs if "ldap" in config.identity.authenticators else ()
            return cls(
                catalog,
                keyring,
                config=config.identity,
                authenticators=authenticators,
                ensure_org=ensure_org,
                directory_orgs=directory,
            )
        except BaseException:
            for authenticator in authenticators:
                authenticator.close()
            raise

    def close(self) -> None:
        """Release authenticator connections and forget cached principals."""
        self._cache.clear()
        for authenticator in self.authenticators:
            try:
                authenticator.close()
            except Exception:
                log.exception("error while closing the %s authenticator", authenticator.name)

    # -- cache -----------------------------------------------------------------------------
    def _cache_key(self, kind: str, *parts: str) -> bytes:
        mac = hmac.new(self._hmac_key, kind.encode(), hashlib.sha256)
        for part in parts:
            data = part.encode("utf-8", "surrogatepass")
            # Length-prefixed, so ("a\0b", "c") and ("a", "b\0c") never collide.
            mac.update(len(data).to_bytes(8, "big"))
            mac.update(data)
        return mac.digest()

    def forget(self, user_id: int) -> None:
        """Drop this process's cached authentications of one user (after a local change;
        other replicas follow within ``cache_ttl``)."""

        def of_user(_key: object, value: object) -> bool:
            principal = getattr(value, "principal", value)
            return isinstance(principal, Principal) and principal.user_id == user_id

        self._cache.invalidate_where(of_user)

    def forget_all(self) -> None:
        """Drop every cached authentication of this process."""
        self._cache.clear()

    # -- authentication --------------------------------------------------------------------
    def authenticate_password(
        self, username: str, password: str, *, client: str | None = None
    ) -> Principal:
        """The principal for a user name and password (WebDAV Basic, API login).

        ``client`` is the caller's address, for throttling failed logins. Raises
        ``AccessDenied`` for a wrong user name or password (:class:`LoginThrottled`, with
        ``retry_after``, while blocked), ``AuthenticatorUnavailable`` when no authenticator
        accepted and a directory could not be asked.
        """
        cache_key = self._cache_key("password", username, password)
        cached = self._cache.get(cache_key)
        if isinstance(cached, Principal):
            return cached
        subjects = self._subjects(username, client)
        wait = self.catalog.login_blocked(subjects, now=self._now())
        if wait > 0:
            log.info("login of %r refused: throttled for %.0f s more", username, wait)
            raise LoginThrottled(math.ceil(wait))
        try:
            identity = self._run_chain(username, password)
        except AuthenticationFailed:
            self._login_failed(username, client, subjects, "wrong user name or password")
            raise
        except AuthenticatorUnavailable as error:
            self._audit_login(username, "login.unavailable", client, reason=str(error))
            raise
        if identity is None:
            self._login_failed(username, client, subjects, "unknown user")
            raise AuthenticationFailed(username)
        try:
            principal = self._principal_for_identity(identity)
        except AccessDenied as error:
            self._audit_login(username, "login.failure", client, reason=str(error))
            raise
        self.catalog.clear_login_failures(subjects[:1])
        self._audit_login(principal.name, "login.success", client, source=identity.source)
        self._cache.put(cache_key, principal)
        return principal

    def authenticate_access_key(self, access_key_id: str) -> tuple[Principal, str]:
        """The principal an S3 access key stands for, scoped to the key's org, and the
        key's secret (for the front end to verify the request signature).

        Raises :class:`UnknownAccessKey` for an unknown or revoked key, a key whose user is
        disabled or gone, or whose user has left the key's org.
        """
        if not isinstance(access_key_id, str) or not _ACCESS_KEY_ID.fullmatch(access_key_id):
            raise UnknownAccessKey(str(access_key_id)[:128])
        cache_key = self._cache_key("access-key", access_key_id)
        cached = self._cache.get(cache_key)
        if isinstance(cached, _KeyEntry):
            return cached.principal, access_key_secret(self.keyring, cached.key)
        key = self.catalog.lookup_access_key(access_key_id)
        if key is None or key.revoked_at is not None:
            raise UnknownAccessKey(access_key_id)
        facts = self.catalog.user_facts(user_id=key.user_id)
        if facts is None or facts.user.disabled:
            raise UnknownAccessKey(access_key_id)
        org_name = next((m.org_name for m in facts.memberships if m.org_id == key.org_id), None)
        if org_name is None:
            raise UnknownAccessKey(access_key_id)
        principal = self._build(facts, scope_org=org_name)
        self._cache.put(cache_key, _KeyEntry(principal, key))
        return principal, access_key_secret(self.keyring, key)

    def authenticate_token(self, token: str) -> Principal:
        """The principal of an admin API bearer token; :class:`InvalidToken` for an
        unknown, expired or revoked token."""
        if not isinstance(token, str) or not 16 <= len(token) <= 256:
            raise InvalidToken()
        cache_key = self._cache_key("token", token)
        cached = self._cache.get(cache_key)
        now = self._now()
        if isinstance(cached, _TokenEntry):
            if cached.expires_at > now:
                return cached.principal
            self._cache.invalidate(cache_key)
            raise InvalidToken()
        row = self.catalog.api_token(token_hash(token))
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise InvalidToken()
        facts = self.catalog.user_facts(user_id=row.user_id)
        if facts is None or facts.user.disabled:
            raise InvalidToken()
        principal = self._build(facts)
        self._cache.put(cache_key, _TokenEntry(principal, row.expires_at))
        return principal

    def issue_token(
        self,
        username: str,
        password: str,
        *,
        client: str | None = None,
        ttl: float | None = None,
    ) -> IssuedToken:
        """Log in with a user name and password (throttled like any login) and issue a
        bearer token valid for ``ttl`` seconds (default ``identity.token_ttl``)."""
        principal = self.authenticate_password(username, password, client=client)
        return self.issue_token_for(principal, ttl=ttl)

    def issue_token_for(self, principal: Principal, *, ttl: float | None = None) -> IssuedToken:
        """Issue a bearer token for an already authenticated user."""
        if principal.user_id is None:
            raise InvalidArgument("tokens are issued to users only")
        seconds = self.config.token_ttl if ttl is None else ttl
        if not 0 < seconds <= self.config.token_ttl:
            raise InvalidArgument(
                f"a token lives between 1 and {self.config.token_ttl:g} seconds"
            )
        token = secrets.token_urlsafe(32)
        now = self._now()
        expires_at = now + timedelta(seconds=seconds)
        self.catalog.create_api_token(
            token_hash(token), user_id=principal.user_id, expires_at=expires_at
        )
        # Tokens expired for a day are of no use even to an audit: drop them as we go.
        try:
            self.catalog.purge_api_tokens(expired_before=now - timedelta(days=1))
        except CoolStorageError:
            log.warning("could not purge expired API tokens", exc_info=True)
        self.catalog.audit(principal.name, "token.issue", expires_at=expires_at.isoformat())
        return IssuedToken(token=token, expires_at=expires_at, principal=principal)

    def revoke_token(self, token: str, *, actor: Principal | None = None) -> bool:
        """Revoke a bearer token (logout); True if it existed. With ``actor``, only its
        owner or an operator may revoke it."""
        self._cache.invalidate(self._cache_key("token", token))
        digest = token_hash(token)
        if actor is not None and not actor.is_operator:
            row = self.catalog.api_token(digest)
            if row is None or row.user_id != actor.user_id:
                return False
        row = self.catalog.revoke_api_token(digest)
        if row is None:
            return False
        self.catalog.audit(actor.name if actor else "token", "token.revoke", user_id=row.user_id)
        return True

    # -- the chain and provisioning --------------------------------------------------------
    def _run_chain(self, username: str, password: str) -> Identity | None:
        unavailable: AuthenticatorUnavailable | None = None
        for authenticator in self.authenticators:
            try:
                identity = authenticator.authenticate(username, password)
            except AuthenticatorUnavailable as error:
                log.warning("authenticator %s skipped: %s", authenticator.name, error)
                unavailable = unavailable or error
                continue
            if identity is not None:
                return identity
        if unavailable is not None:
            raise unavailable
        return None

    def _build(self, facts: UserFacts, *, scope_org: str | None = None) -> Principal:
        return build_principal(
            facts, member_default_rights=self.member_default_rights, scope_org=scope_org
        )

    def _principal_for_identity(self, identity: Identity) -> Principal:
        facts = self.catalog.user_facts(name=identity.username)
        if identity.source != SOURCE_LOCAL:
            facts = self._provision(identity, facts)
        if facts is None:
            raise AuthenticationFailed(identity.username)
        if facts.user.disabled:
            raise AccessDenied("the account is disabled")
        return self._build(facts)

    def _provision(self, identity: Identity, facts: UserFacts | None) -> UserFacts:
        """Make a directory user a catalog user and sync their org roles."""
        profile = {
            key: value
            for key, value in (
                ("display_name", identity.display_name),
                ("email", identity.email),
                *identity.attributes.items(),
            )
            if value
        }
        if facts is None:
            try:
                self.catalog.create_user_from(
                    identity.username, source=identity.source, profile=profile
                )
                self.catalog.audit(identity.source, "user.create", user=identity.username)
            except AlreadyExists:
                pass  # another replica provisioned the same user just now
            facts = self.catalog.user_facts(name=identity.username)
            assert facts is not None
        if facts.source != identity.source:
            log.warning(
                "%s login of %r refused: the name belongs to a %s user",
                identity.source,
                identity.username,
                facts.source,
            )
            raise AccessDenied(
                f"the user name {identity.username} belongs to a {facts.source} account"
            )
        if facts.profile != profile:
            self.catalog.set_user_profile(facts.user.id, profile)
        if self._sync_roles(facts, identity.org_roles, actor=identity.source):
            facts = self._refresh(facts)
        if not facts.memberships:
            self._personal_org(facts.user, actor=identity.source)
            facts = self._refresh(facts)
        return facts

    def _refresh(self, facts: UserFacts) -> UserFacts:
        refreshed = self.catalog.user_facts(user_id=facts.user.id)
        if refreshed is None:
            raise AuthenticationFailed(facts.user.name)
        return refreshed

    def _sync_roles(self, facts: UserFacts, org_roles: dict[str, str], *, actor: str) -> bool:
        current = {m.org_name: m for m in facts.memberships}
        changed = False
        for org_name, role in sorted(org_roles.items()):
            member = current.get(org_name)
            if member is not None and member.role == role:
                continue
            org = self._ensure_org(org_name)
            self.catalog.add_membership(org.id, facts.user.id, role)
            self.catalog.audit(
                actor, "membership.add", org_id=org.id, user=facts.user.name, role=role
            )
            changed = True
        for org_name, member in current.items():
            if org_name in self.directory_orgs and org_name not in org_roles:
                self.catalog.remove_member(member.org_id, facts.user.id)
                self.catalog.audit(
                    actor, "membership.remove", org_id=member.org_id, user=facts.user.name
                )
                changed = True
        return changed

    def _ensure_org(self, name: str) -> Org:
        org = self.catalog.get_org(name)
        if org is not None:
            return org
        if self._ensure_org_fn is None:
            raise CoolStorageError(
                f"cannot create org {name}: the identity service has no object service"
            )
        return self._ensure_org_fn(name)

    def _personal_org(self, user: User, *, actor: str) -> Org:
        for disambiguate in (False, True):
            name = personal_org_name(user.name, disambiguate=disambiguate)
            org = self._ensure_org(name)
            if self.catalog.claim_personal_org(org.id, user.id):
                self.catalog.add_membership(org.id, user.id, ROLE_ADMIN)
                self.catalog.audit(
                    actor, "membership.add", org_id=org.id, user=user.name, role=ROLE_ADMIN,
                    personal=True,
                )
                return org
        raise CoolStorageError(f"cannot create a personal org for {user.name}")

    # -- throttling and login audit --------------------------------------------------------
    def _subjects(self, username: str, client: str | None) -> list[tuple[str, str]]:
        subjects = [(FAILURE_USER, username.casefold()[:1024])]
        if client:
            subjects.append((FAILURE_CLIENT, client_subject(client)))
        return subjects

    def _login_failed(
        self, username: str, client: str | None, subjects: list[tuple[str, str]], reason: str
    ) -> None:
        config = self.config
        blocked = self.catalog.record_login_failure(
            subjects,
            window=config.login_window,
            max_failures=config.login_max_failures,
            backoff=config.login_backoff,
            max_backoff=MAX_LOGIN_BACKOFF,
            now=self._now(),
        )
        self._audit_login(username, "login.failure", client, reason=reason)
        if blocked > 0:
            log.warning(
                "too many failed logins for %r%s: blocked for %.0f s",
                username,
                f" from {client}" if client else "",
                blocked,
            )
            self._audit_login(username, "login.blocked", client, seconds=math.ceil(blocked))

    def _audit_login(self, username: str, action: str, client: str | None, **details: object) -> None:
        try:
            self.catalog.audit(username[:200], action, org_id=None, client=client, **details)
        except CoolStorageError:
            log.exception("could not write the audit row of a login")

    # -- administration: checks ------------------------------------------------------------
    @staticmethod
    def _require_operator(actor: Principal) -> None:
        if not actor.is_operator:
            raise AccessDenied("only an operator may do this")

    def _manageable_org(self, actor: Principal, org_name: str) -> Org:
        """The org, if ``actor`` may manage it (operators may manage every org)."""
        if actor.is_operator:
            org = self.catalog.get_org(org_name)
            if org is None:
                raise NotFound(f"org {org_name}")
            return org
        org = self.catalog.get_org(org_name) if actor.role_in(org_name) else None
        authorize(actor, Action.MANAGE, org)
        assert org is not None
        return org

    def _user(self, name: str) -> UserFacts:
        facts = self.catalog.user_facts(name=name)
        if facts is None:
            raise NotFound(f"user {name}")
        return facts

    # -- administration: users -------------------------------------------------------------
    def create_user(
        self,
        actor: Principal,
        name: str,
        *,
        password: str | None,
        org: str | None = None,
        role: str = ROLE_MEMBER,
        is_operator: bool = False,
    ) -> User:
        """Create a local user (operators only). With ``org``, a member of it (``role``);
        without, the admin of a new personal org. ``password`` None makes a user who cannot
        log in with a password (keys only)."""
        self._require_operator(actor)
        validate_user_name(name)
        if role not in ROLES:
            raise InvalidArgument(f"role must be one of {', '.join(ROLES)}")
        target = None
        if org is not None:
            target = self.catalog.get_org(org)
            if target is None:
                raise NotFound(f"org {org} (create it first: coolstorage org add {org})")
        if password is not None:
            check_password(password)
        user = self.catalog.create_user_from(
            name,
            source=SOURCE_LOCAL,
            password_hash=hash_password(password) if password is not None else None,
            is_operator=is_operator,
        )
        self.catalog.audit(actor.name, "user.create", user=name, operator=is_operator)
        if target is not None:
            self.catalog.add_membership(target.id, user.id, role)
            self.catalog.audit(actor.name, "membership.add", org_id=target.id, user=name, role=role)
        else:
            self._personal_org(user, actor=actor.name)
        return user

    def set_password(self, actor: Principal, name: str, password: str) -> None:
        """Change a local user's password (an operator, or the user themselves). The user's
        bearer tokens are revoked; cached logins with the old password end here at once and
        on other replicas within ``cache_ttl``."""
        facts = self._user(name)
        if not actor.is_operator and actor.user_id != facts.user.id:
            raise AccessDenied("only an operator or the user may change a password")
        if facts.source != SOURCE_LOCAL:
            raise InvalidArgument(
                f"{name} is a {facts.source} user: change the password in the directory"
            )
        check_password(password)
        self.catalog.update_user(facts.user.id, password_hash=hash_password(password))
        revoked = self.catalog.revoke_user_tokens(facts.user.id)
        self.forget(facts.user.id)
        self.catalog.audit(actor.name, "password.change", user=name, tokens_revoked=revoked)

    def set_disabled(self, actor: Principal, name: str, disabled: bool) -> None:
        """Disable (or enable again) a user: a disabled user's logins, keys and tokens stop
        working (operators only)."""
        self._require_operator(actor)
        facts = self._user(name)
        self.catalog.update_user(facts.user.id, disabled=disabled)
        self.forget(facts.user.id)
        self.catalog.audit(actor.name, "user.disable" if disabled else "user.enable", user=name)

    def list_users(self, actor: Principal) -> list[UserFacts]:
        """Every user with source and memberships (operators only)."""
        self._require_operator(actor)
        return self.catalog.all_user_facts()

    # -- administration: orgs, members, grants, quotas -------------------------------------
    def create_org(self, actor: Principal, name: str) -> Org:
        """Create an org with its keys (operators only); ``AlreadyExists`` if it exists."""
        self._require_operator(actor)
        validate_org_name(name)
        if self.catalog.get_org(name) is not None:
            raise AlreadyExists(f"org {name}")
        org = self._ensure_org(name)
        self.catalog.audit(actor.name, "org.create", org_id=org.id)
        return org

    def list_orgs(self, actor: Principal) -> list[Org]:
        """Every org for an operator, else the orgs the actor belongs to."""
        if actor.is_operator:
            return self.catalog.list_orgs()
        orgs = [self.catalog.get_org(name) for name in actor.orgs()]
        return [org for org in orgs if org is not None]

    def add_member(
        self, actor: Principal, org_name: str, user_name: str, *, role: str = ROLE_MEMBER
    ) -> None:
        """Add a user to an org or change their role (org admins and operators)."""
        if role not in ROLES:
            raise InvalidArgument(f"role must be one of {', '.join(ROLES)}")
        org = self._manageable_org(actor, org_name)
        facts = self._user(user_name)
        self.catalog.add_membership(org.id, facts.user.id, role)
        self.forget(facts.user.id)
        self.catalog.audit(actor.name, "membership.add", org_id=org.id, user=user_name, role=role)

    def remove_member(self, actor: Principal, org_name: str, user_name: str) -> bool:
        """Remove a user from an org, with their grants there; True if they were in it."""
        org = self._manageable_org(actor, org_name)
        facts = self._user(user_name)
        removed = self.catalog.remove_member(org.id, facts.user.id)
        self.forget(facts.user.id)
        if removed:
            self.catalog.audit(actor.name, "membership.remove", org_id=org.id, user=user_name)
        return removed

    def members(self, actor: Principal, org_name: str) -> list[tuple[str, str]]:
        """``(user name, role)`` of the org's members, by name (org admins, operators)."""
        org = self._manageable_org(actor, org_name)
        result = []
        for membership in self.catalog.members_of(org.id):
            user = self.catalog.get_user_by_id(membership.user_id)
            if user is not None:
                result.append((user.name, membership.role))
        return sorted(result)

    def grant(
        self,
        actor: Principal,
        org_name: str,
        user_name: str,
        rights: Iterable[str],
        *,
        bucket: str | None = None,
    ) -> GrantInfo:
        """Grant rights to a member, in the whole org or in one bucket (by name)."""
        actions = parse_rights(rights)
        if not actions:
            raise InvalidArgument("name at least one right")
        org = self._manageable_org(actor, org_name)
        facts = self._member(org, user_name)
        grant = self.catalog.add_grant(
            org.id, facts.user.id, [a.value for a in actions], bucket=bucket
        )
        self.forget(facts.user.id)
        self.catalog.audit(
            actor.name, "grant.add", org_id=org.id, user=user_name, bucket=bucket,
            rights=rights_names(actions),
        )
        return self._grant_info(org.name, user_name, grant)

    def revoke_grant(
        self,
        actor: Principal,
        org_name: str,
        user_name: str,
        rights: Iterable[str],
        *,
        bucket: str | None = None,
    ) -> GrantInfo | None:
        """Take granted rights away again; what is left of the grant (None: nothing).
        Default member rights are not grants: change ``identity.member_default_rights``."""
        actions = parse_rights(rights)
        if not actions:
            raise InvalidArgument("name at least one right")
        org = self._manageable_org(actor, org_name)
        facts = self._user(user_name)
        grant = self.catalog.remove_grant(
            org.id, facts.user.id, [a.value for a in actions], bucket=bucket
        )
        self.forget(facts.user.id)
        self.catalog.audit(
            actor.name, "grant.remove", org_id=org.id, user=user_name, bucket=bucket,
            rights=rights_names(actions),
        )
        return None if grant is None else self._grant_info(org.name, user_name, grant)

    def list_grants(
        self, actor: Principal, org_name: str, *, user_name: str | None = None
    ) -> list[GrantInfo]:
        """The org's grants, optionally of one user (org admins, operators)."""
        org = self._manageable_org(actor, org_name)
        user_id = self._user(user_name).user.id if user_name is not None else None
        names: dict[int, str] = {}
        result = []
        for grant in self.catalog.list_grants(org_id=org.id, user_id=user_id):
            if grant.user_id not in names:
                user = self.catalog.get_user_by_id(grant.user_id)
                names[grant.user_id] = user.name if user else str(grant.user_id)
            result.append(self._grant_info(org.name, names[grant.user_id], grant))
        return sorted(result, key=lambda g: (g.user, g.bucket or ""))

    @staticmethod
    def _grant_info(org: str, user: str, grant: Grant) -> GrantInfo:
        known = {a for a in Action if a.value in grant.rights}
        return GrantInfo(org=org, user=user, bucket=grant.bucket, rights=tuple(rights_names(known)))

    def _member(self, org: Org, user_name: str) -> UserFacts:
        facts = self._user(user_name)
        if not any(m.org_id == org.id for m in facts.memberships):
            raise InvalidArgument(f"{user_name} is not a member of org {org.name}")
        return facts

    def set_quota(self, actor: Principal, org_name: str, quota_bytes: int | None) -> QuotaUsage:
        """Set the org's quota in bytes (None removes it); returns usage against it. Data
        already stored stays; writes that would pass the quota are refused."""
        if quota_bytes is not None and quota_bytes < 0:
            raise InvalidArgument("a quota cannot be negative")
        org = self._manageable_org(actor, org_name)
        self.catalog.set_org_quota(org.id, quota_bytes)
        self.catalog.audit(actor.name, "quota.set", org_id=org.id, quota_bytes=quota_bytes)
        usage = self.catalog.quota_usage(org.id)
        assert usage is not None
        return usage

    def quota_usage(self, actor: Principal, org_name: str) -> QuotaUsage:
        """What the org stores against its quota (any member, or an operator)."""
        if actor.is_operator:
            org = self.catalog.get_org(org_name)
            if org is None:
                raise NotFound(f"org {org_name}")
        else:
            org = self.catalog.get_org(org_name) if actor.role_in(org_name) else None
            if org is None:
                raise AccessDenied(NO_ACCESS)
        usage = self.catalog.quota_usage(org.id)
        if usage is None:
            raise NotFound(f"org {org_name}")
        return usage

    # -- administration: access keys -------------------------------------------------------
    def create_access_key(
        self, actor: Principal, user_name: str, *, org: str | None = None
    ) -> tuple[AccessKey, str]:
        """A new S3 access key of a user in one of their orgs, and its secret (shown once).

        The user themselves, an admin of the org or an operator may create it. Without
        ``org`` the user's only org is taken. An org admin is told the same for a user who
        does not exist as for one outside the org: whether a name exists elsewhere is not
        theirs to learn.
        """
        facts = self.catalog.user_facts(name=user_name)
        is_self = facts is not None and actor.user_id == facts.user.id
        trusted = actor.is_operator or is_self
        if not trusted:
            if org is None:
                raise InvalidArgument("name the org the key is for")
            self._manageable_org(actor, org)
        if facts is None:
            if actor.is_operator:
                raise NotFound(f"user {user_name}")
            raise InvalidArgument(f"{user_name} is not a member of org {org}")
        if org is None:
            if len(facts.memberships) != 1:
                names = ", ".join(m.org_name for m in facts.memberships) or "none"
                raise InvalidArgument(
                    f"{user_name} belongs to {len(facts.memberships)} orgs ({names}): name one"
                )
            membership = facts.memberships[0]
        else:
            found = next((m for m in facts.memberships if m.org_name == org), None)
            if found is None:
                raise InvalidArgument(f"{user_name} is not a member of org {org}")
            membership = found
        key, secret = create_access_key(
            self.catalog, self.keyring, user_id=facts.user.id, org_id=membership.org_id
        )
        self.catalog.audit(
            actor.name, "key.create", org_id=membership.org_id, user=user_name,
            access_key_id=key.access_key_id,
        )
        return key, secret

    def list_access_keys(self, actor: Principal, *, user_name: str | None = None) -> list[KeyInfo]:
        """Access keys without secrets: all (operators), else the actor's own and those in
        orgs the actor manages; optionally of one user (for others than operators, a user
        who does not exist simply has no keys to show)."""
        user_id = None
        if user_name is not None:
            facts = self.catalog.user_facts(name=user_name)
            if facts is None:
                if actor.is_operator:
                    raise NotFound(f"user {user_name}")
                return []
            user_id = facts.user.id
        keys = self.catalog.list_access_keys(user_id)
        users: dict[int, str] = {}
        orgs: dict[int, str] = {}
        result = []
        for key in keys:
            if key.org_id not in orgs:
                found = self.catalog.get_org_by_id(key.org_id)
                orgs[key.org_id] = found.name if found else str(key.org_id)
            if not (
                actor.is_operator
                or key.user_id == actor.user_id
                or actor.may(Action.MANAGE, orgs[key.org_id])
            ):
                continue
            if key.user_id not in users:
                user = self.catalog.get_user_by_id(key.user_id)
                users[key.user_id] = user.name if user else str(key.user_id)
            result.append(
                KeyInfo(
                    access_key_id=key.access_key_id,
                    user=users[key.user_id],
                    org=orgs[key.org_id],
                    created_at=key.created_at,
                    revoked_at=key.revoked_at,
                )
            )
        return result

    def revoke_access_key(self, actor: Principal, access_key_id: str) -> bool:
        """Revoke a key (its owner, an admin of its org, or an operator); True if it was
        live. It stops working here at once and on other replicas within ``cache_ttl``."""
        key = self.catalog.lookup_access_key(access_key_id)
        if key is None:
            raise NotFound(f"access key {access_key_id}")
        if not actor.is_operator and key.user_id != actor.user_id:
            org = self.catalog.get_org_by_id(key.org_id)
            if org is None or not actor.may(Action.MANAGE, org.name):
                raise NotFound(f"access key {access_key_id}")
        self.catalog.revoke_access_key(access_key_id)
        self._cache.invalidate(self._cache_key("access-key", access_key_id))
        if key.revoked_at is not None:
            return False
        owner = self.catalog.get_user_by_id(key.user_id)
        self.catalog.audit(
            actor.name, "key.revoke", org_id=key.org_id, access_key_id=access_key_id,
            user=owner.name if owner else key.user_id,
        )
        return True
