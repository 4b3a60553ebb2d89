"""The identity service over a real catalog: authentication, the cache and revocation, login
throttling, tokens, rights and grants, personal orgs, quotas, administration checks, audit.

Every test runs on SQLite and on the MariaDB server of tests/fixtures/mariadb.py, as the
catalog suite does. One database per engine and module; tests use unique names.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from catalog.api import Catalog
from catalog.records import ROLE_ADMIN, ROLE_MEMBER
from gateway import principals, sealing
from gateway.authn import (
    AuthenticationFailed,
    Authenticator,
    AuthenticatorUnavailable,
    Identity,
)
from gateway.config import IdentityConfig
from gateway.errors import (
    AccessDenied,
    AlreadyExists,
    ConfigError,
    InvalidArgument,
    InvalidName,
    NotFound,
    QuotaExceeded,
)
from gateway.identity import (
    IdentityService,
    InvalidToken,
    LocalAuthenticator,
    LoginThrottled,
    UnknownAccessKey,
    client_subject,
    personal_org_name,
    token_hash,
    validate_org_name,
)
from gateway.objects import ObjectService
from gateway.principals import (
    NO_ACCESS,
    Action,
    Principal,
    authorize,
    operator_principal,
    verify_password,
)
from tiering.backends import open_backend

ENGINES = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]
OPERATOR = operator_principal("test-operator")
PASSWORD = "correct horse battery"


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with small costs: the same code path, a fraction of the default's 150 ms."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        principals, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(principals, "_dummy_hash", None)


@pytest.fixture(scope="module", params=ENGINES)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('identity')}/catalog.db"
    url: str = request.getfixturevalue("mariadb_server").create_database()
    return url


@pytest.fixture(scope="module")
def catalog(db_url: str) -> Iterator[Catalog]:
    # The catalog's own cache is on (30 s), as in production: revocation tests prove the
    # identity service reads around it.
    cat = Catalog(db_url)
    cat.upgrade()
    yield cat
    cat.close()


@pytest.fixture(scope="module")
def replica_catalog(db_url: str, catalog: Catalog) -> Iterator[Catalog]:
    """A second Catalog over the same database: what another gateway replica holds."""
    cat = Catalog(db_url)
    yield cat
    cat.close()


@pytest.fixture(scope="module")
def keyring() -> sealing.MasterKeyring:
    return sealing.MasterKeyring(sealing.MasterKey.generate())


@pytest.fixture(scope="module")
def objects(
    catalog: Catalog, keyring: sealing.MasterKeyring, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ObjectService]:
    root = tmp_path_factory.mktemp("blobs")
    backend = open_backend("local", {"type": "localfs", "root": str(root)})
    svc = ObjectService(
        catalog,
        {"local": backend},
        keyring,
        default_backend="local",
        default_region="local",
        block_size=64 * 1024,
        small_object_threshold=0,
    )
    yield svc
    svc.close()


class FakeClock:
    """A monotonic clock the test moves (for the cache)."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


class FakeNow:
    """A wall clock the test moves (for throttling and tokens)."""

    def __init__(self) -> None:
        self.value = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


class Counting(Authenticator):
    """Wraps an authenticator and counts the calls that reach it."""

    def __init__(self, inner: Authenticator) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def authenticate(self, username: str, password: str) -> Identity | None:
        self.calls += 1
        return self.inner.authenticate(username, password)


@dataclass
class FakeDirectory(Authenticator):
    """A directory in memory: users with passwords and org roles; can be taken down."""

    users: dict[str, tuple[str, dict[str, str]]]
    down: bool = False
    name: str = "ldap"

    def authenticate(self, username: str, password: str) -> Identity | None:
        if self.down:
            raise AuthenticatorUnavailable("LDAP", "connection refused (is the server running?)")
        entry = self.users.get(username)
        if entry is None:
            return None
        if entry[0] != password:
            raise AuthenticationFailed(username)
        return Identity(
            username=username,
            source="ldap",
            display_name=username.title(),
            org_roles=dict(entry[1]),
            attributes={"country": "FI"},
        )


Make = Callable[..., IdentityService]


@pytest.fixture
def make(catalog: Catalog, keyring: sealing.MasterKeyring, objects: ObjectService) -> Iterator[Make]:
    """Build identity services (replicas) over the module's catalog; closed afterwards."""
    made: list[IdentityService] = []

    def build(
        *,
        cat: Catalog | None = None,
        authenticators: list[Authenticator] | None = None,
        directory_orgs: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        **config: Any,
    ) -> IdentityService:
        used = cat or catalog
        kwargs: dict[str, Any] = {"clock": clock}
        if now is not None:
            kwargs["now"] = now
        service = IdentityService(
            used,
            keyring,
            config=IdentityConfig(**config),
            authenticators=authenticators,
            ensure_org=objects.ensure_org,
            directory_orgs=directory_orgs,
            **kwargs,
        )
        made.append(service)
        return service

    yield build
    for service in made:
        service.close()


def uname(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


def new_org(service: IdentityService) -> str:
    name = uname("org")
    service.create_org(OPERATOR, name)
    return name


def new_user(
    service: IdentityService,
    *,
    org: str | None = None,
    role: str = ROLE_MEMBER,
    password: str = PASSWORD,
    stem: str = "user",
) -> str:
    name = uname(stem)
    service.create_user(OPERATOR, name, password=password, org=org, role=role)
    return name


# -- local authentication ------------------------------------------------------------------
def test_local_login_gives_roles_and_rights(make: Make) -> None:
    service = make()
    org = new_org(service)
    admin = new_user(service, org=org, role=ROLE_ADMIN, stem="admin")
    member = new_user(service, org=org)

    p = service.authenticate_password(admin, PASSWORD)
    assert p.name == admin and p.roles == {org: ROLE_ADMIN} and p.source == "local"
    assert all(p.may(action, org) for action in Action)
    m = service.authenticate_password(member, PASSWORD)
    assert m.roles == {org: ROLE_MEMBER}
    assert [a for a in Action if m.may(a, org)] == [Action.READ, Action.WRITE, Action.DELETE]


def test_wrong_password_and_unknown_user_read_the_same(make: Make) -> None:
    service = make()
    user = new_user(service, org=new_org(service))
    with pytest.raises(AccessDenied) as wrong:
        service.authenticate_password(user, "not the password")
    with pytest.raises(AccessDenied) as unknown:
        service.authenticate_password(uname("nobody"), "not the password")
    assert str(wrong.value) == str(unknown.value) == "Access denied: wrong user name or password"
    assert wrong.value.code == unknown.value.code == "AccessDenied"


def test_unknown_user_costs_an_argon2_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = principals._hasher

    class Spy:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_)
            return real.verify(hash_, password)

    monkeypatch.setattr(principals, "_hasher", Spy())
    assert verify_password(None, "anything") is False
    assert verify_password("", "anything") is False
    assert len(calls) == 2 and all(h.startswith("$argon2id$") for h in calls)


def test_disabled_user_cannot_log_in(make: Make) -> None:
    service = make()
    user = new_user(service, org=new_org(service))
    service.set_disabled(OPERATOR, user, True)
    with pytest.raises(AccessDenied, match="disabled"):
        service.authenticate_password(user, PASSWORD)
    service.set_disabled(OPERATOR, user, False)
    assert service.authenticate_password(user, PASSWORD).name == user


def test_short_passwords_and_bad_names_are_refused(make: Make) -> None:
    service = make()
    with pytest.raises(InvalidArgument, match="at least 8"):
        service.create_user(OPERATOR, uname("u"), password="short")
    for bad in ["", " padded", "a:b", "tab\there", "x" * 256]:
        with pytest.raises(InvalidName):
            service.create_user(OPERATOR, bad, password=PASSWORD)
    name = new_user(service)
    with pytest.raises(AlreadyExists):
        service.create_user(OPERATOR, name, password=PASSWORD)


# -- the cache -----------------------------------------------------------------------------
def test_success_is_cached_under_an_hmac(make: Make, catalog: Catalog) -> None:
    counting = Counting(LocalAuthenticator(catalog))
    service = make(authenticators=[counting])
    user = new_user(service, org=new_org(service))
    for _ in range(3):
        service.authenticate_password(user, PASSWORD)
    assert counting.calls == 1
    # A wrong password is never answered from the cache.
    with pytest.raises(AccessDenied):
        service.authenticate_password(user, PASSWORD + "x")
    assert counting.calls == 2
    keys = [k for k in service._cache._data if isinstance(k, bytes) and len(k) == 32]
    assert keys and len(keys) == len(service._cache._data)
    for key in keys:
        assert PASSWORD.encode() not in key and user.encode() not in key


def test_cache_ttl_is_capped_at_30_seconds(make: Make, catalog: Catalog) -> None:
    clock = FakeClock()
    counting = Counting(LocalAuthenticator(catalog))
    service = make(authenticators=[counting], clock=clock, cache_ttl=30)
    assert service._cache.ttl == 30
    user = new_user(service, org=new_org(service))
    service.authenticate_password(user, PASSWORD)
    clock.advance(29.9)
    service.authenticate_password(user, PASSWORD)
    assert counting.calls == 1
    clock.advance(0.1)
    service.authenticate_password(user, PASSWORD)
    assert counting.calls == 2
    with pytest.raises(ConfigError, match="between 0 and 30"):
        IdentityConfig(cache_ttl=31).validate()
    # Even a config that skipped validation cannot cache longer than 30 s.
    assert make(cache_ttl=3600)._cache.ttl == 30


def test_password_change_takes_effect_at_once_locally(make: Make) -> None:
    service = make()
    user = new_user(service, org=new_org(service))
    service.authenticate_password(user, PASSWORD)
    service.set_password(OPERATOR, user, "a brand new password")
    with pytest.raises(AccessDenied):
        service.authenticate_password(user, PASSWORD)
    assert service.authenticate_password(user, "a brand new password").name == user


def test_revocations_reach_another_replica_after_a_short_ttl(
    make: Make, replica_catalog: Catalog
) -> None:
    ttl = 0.5
    a = make(cache_ttl=ttl)
    b = make(cat=replica_catalog, cache_ttl=ttl)
    org = new_org(a)
    user = new_user(a, org=org)
    key, secret = a.create_access_key(OPERATOR, user, org=org)

    assert b.authenticate_password(user, PASSWORD).name == user
    assert b.authenticate_access_key(key.access_key_id)[1] == secret
    a.set_password(OPERATOR, user, "the next password")
    a.revoke_access_key(OPERATOR, key.access_key_id)
    changed = time.monotonic()

    # The other replica may serve its cached answers, but only until the ttl runs out.
    deadline = changed + ttl + 5
    while True:
        try:
            b.authenticate_password(user, PASSWORD)
        except AccessDenied:
            break
        assert time.monotonic() < deadline, "the old password kept working"
        time.sleep(0.05)
    assert time.monotonic() - changed <= ttl + 0.5
    # The key was cached after the password (an argon2 check later), so it may outlive the
    # password's entry a little; both were cached before the change, so neither outlives
    # the change by more than the ttl.
    time.sleep(max(0.0, changed + ttl + 0.05 - time.monotonic()))
    with pytest.raises(UnknownAccessKey):
        b.authenticate_access_key(key.access_key_id)
    assert b.authenticate_password(user, "the next password").name == user


def test_revocation_takes_effect_within_the_configured_ttl(
    make: Make, replica_catalog: Catalog
) -> None:
    # Two replicas with the production ttl, each on its own Catalog (whose own cache holds
    # users and keys for 30 s of real time): replica B must stop accepting the revoked key
    # and the old password when *its* identity cache runs out, whatever the catalog cached.
    clock = FakeClock()
    a = make(cache_ttl=30)
    b = make(cat=replica_catalog, cache_ttl=30, clock=clock)
    org = new_org(a)
    user = new_user(a, org=org)
    key, _ = a.create_access_key(OPERATOR, user, org=org)
    replica_catalog.get_access_key(key.access_key_id)  # warm the replica catalog's cache
    replica_catalog.get_user(user)

    b.authenticate_access_key(key.access_key_id)
    b.authenticate_password(user, PASSWORD)
    a.revoke_access_key(OPERATOR, key.access_key_id)
    a.set_password(OPERATOR, user, "the next password")

    clock.advance(a.config.cache_ttl - 0.01)
    b.authenticate_access_key(key.access_key_id)  # still within the ttl: allowed
    clock.advance(0.01)
    with pytest.raises(UnknownAccessKey):
        b.authenticate_access_key(key.access_key_id)
    with pytest.raises(AccessDenied):
        b.authenticate_password(user, PASSWORD)


def test_membership_and_grant_changes_reach_a_cached_principal(make: Make) -> None:
    clock = FakeClock()
    service = make(clock=clock)
    other = make(clock=clock)
    org = new_org(service)
    user = new_user(service, org=org)
    assert not other.authenticate_password(user, PASSWORD).may(Action.ARCHIVE, org)
    service.grant(OPERATOR, org, user, ["archive"])
    # Locally at once; on the other replica after its ttl.
    assert service.authenticate_password(user, PASSWORD).may(Action.ARCHIVE, org)
    assert not other.authenticate_password(user, PASSWORD).may(Action.ARCHIVE, org)
    clock.advance(30)
    assert other.authenticate_password(user, PASSWORD).may(Action.ARCHIVE, org)
    service.remove_member(OPERATOR, org, user)
    clock.advance(30)
    assert other.authenticate_password(user, PASSWORD).orgs() == []


# -- throttling ----------------------------------------------------------------------------
def test_failed_logins_are_throttled_without_checking_the_password(
    make: Make, catalog: Catalog
) -> None:
    now = FakeNow()
    counting = Counting(LocalAuthenticator(catalog))
    service = make(
        authenticators=[counting], now=now, login_max_failures=3, login_window=60,
        login_backoff=30,
    )
    user = new_user(service, org=new_org(service))
    for _ in range(3):
        with pytest.raises(AccessDenied) as caught:
            service.authenticate_password(user, "guess", client="192.0.2.10")
        assert not isinstance(caught.value, LoginThrottled)
    calls = counting.calls
    with pytest.raises(LoginThrottled) as throttled:
        service.authenticate_password(user, PASSWORD, client="198.51.100.7")
    assert str(throttled.value) == "Access denied: too many failed logins; try again in 30 s"
    assert throttled.value.retry_after == 30 and throttled.value.code == "AccessDenied"
    assert counting.calls == calls  # the password was not even checked

    now.advance(31)
    assert service.authenticate_password(user, PASSWORD).name == user
    # The success cleared the user's counter: one more failure does not block again.
    with pytest.raises(AccessDenied) as again:
        service.authenticate_password(user, "guess")
    assert not isinstance(again.value, LoginThrottled)


def test_backoff_doubles_and_the_window_forgets(make: Make) -> None:
    now = FakeNow()
    service = make(now=now, login_max_failures=2, login_window=120, login_backoff=10)
    user = new_user(service, org=new_org(service))

    def fail() -> None:
        with pytest.raises(AccessDenied):
            service.authenticate_password(user, "guess")

    fail()
    fail()
    with pytest.raises(LoginThrottled) as first:
        service.authenticate_password(user, PASSWORD)
    assert first.value.retry_after == 10
    now.advance(11)
    fail()  # the third failure in the window
    with pytest.raises(LoginThrottled) as second:
        service.authenticate_password(user, PASSWORD)
    assert second.value.retry_after == 20
    now.advance(21 + 120)  # the block ran out and the window passed
    fail()
    assert service.authenticate_password(user, PASSWORD).name == user


def test_a_client_address_is_throttled_across_user_names(make: Make) -> None:
    now = FakeNow()
    service = make(now=now, login_max_failures=3, login_window=60, login_backoff=30)
    org = new_org(service)
    victim = new_user(service, org=org)
    bystander = new_user(service, org=org)
    for _ in range(3):
        with pytest.raises(AccessDenied):
            service.authenticate_password(uname("guess"), "guess", client="2001:db8::1")
    # Same /64, another user name: refused; another address: fine.
    with pytest.raises(LoginThrottled):
        service.authenticate_password(victim, PASSWORD, client="2001:db8::2")
    assert service.authenticate_password(bystander, PASSWORD, client="2001:db8:1::9").name
    assert client_subject("2001:db8::5") == client_subject("2001:db8::ffff") == "2001:db8::/64"
    assert client_subject("::ffff:192.0.2.1") == "192.0.2.1"


def test_replicas_share_the_failure_counters(make: Make, replica_catalog: Catalog) -> None:
    now = FakeNow()
    a = make(now=now, login_max_failures=4, login_window=60, login_backoff=30)
    b = make(cat=replica_catalog, now=now, login_max_failures=4, login_window=60, login_backoff=30)
    user = new_user(a, org=new_org(a))
    for replica in (a, b, a, b):
        with pytest.raises(AccessDenied):
            replica.authenticate_password(user, "guess")
    for replica in (a, b):
        with pytest.raises(LoginThrottled):
            replica.authenticate_password(user, PASSWORD)


def test_a_cached_login_survives_an_attack_on_the_account(make: Make) -> None:
    now = FakeNow()
    service = make(now=now, login_max_failures=2, login_window=60, login_backoff=300)
    user = new_user(service, org=new_org(service))
    service.authenticate_password(user, PASSWORD)
    for _ in range(3):
        with pytest.raises(AccessDenied):
            service.authenticate_password(user, "guess", client="203.0.113.5")
    assert service.authenticate_password(user, PASSWORD).name == user


# -- the chain -----------------------------------------------------------------------------
def test_directory_down_gives_a_clear_error_and_local_users_still_work(
    make: Make, catalog: Catalog
) -> None:
    directory = FakeDirectory(users={"dana-" + uuid.uuid4().hex[:6]: ("dana-pass", {})}, down=True)
    service = make(authenticators=[directory, LocalAuthenticator(catalog)])
    admin = new_user(service, org=new_org(service), role=ROLE_ADMIN)
    assert service.authenticate_password(admin, PASSWORD).name == admin
    dana = next(iter(directory.users))
    with pytest.raises(AuthenticatorUnavailable, match="cannot be reached"):
        service.authenticate_password(dana, "dana-pass")
    # An outage is not a failed login: nobody gets locked out by it.
    assert catalog.login_blocked([("user", dana.casefold())]) == 0


def test_a_wrong_directory_password_ends_the_chain(make: Make, catalog: Catalog) -> None:
    name = uname("erin")
    directory = FakeDirectory(users={name: ("directory-pass", {})})
    service = make(authenticators=[directory, LocalAuthenticator(catalog)])
    with pytest.raises(AuthenticationFailed):
        service.authenticate_password(name, "other-pass")


def test_directory_users_are_provisioned_and_synced(make: Make, catalog: Catalog) -> None:
    research, finance = uname("research"), uname("finance")
    name = uname("frank")
    directory = FakeDirectory(
        users={name: ("frank-pass", {research: ROLE_ADMIN, finance: ROLE_MEMBER})}
    )
    service = make(
        authenticators=[LocalAuthenticator(catalog), directory],
        directory_orgs=(research, finance),
    )
    p = service.authenticate_password(name, "frank-pass")
    assert p.roles == {research: ROLE_ADMIN, finance: ROLE_MEMBER} and p.source == "ldap"
    facts = catalog.user_facts(name=name)
    assert facts is not None and facts.source == "ldap" and facts.user.password_hash is None
    assert facts.profile == {"display_name": name.title(), "country": "FI"}
    for org_name in (research, finance):
        org = catalog.get_org(org_name)
        assert org is not None and org.recipient.startswith("age1")  # created with its keys
    # An operator's membership elsewhere stays; directory orgs follow the directory.
    other = new_org(service)
    service.add_member(OPERATOR, other, name)
    directory.users[name] = ("frank-pass", {finance: ROLE_ADMIN})
    service.forget_all()
    p = service.authenticate_password(name, "frank-pass")
    assert p.roles == {finance: ROLE_ADMIN, other: ROLE_MEMBER}
    # The local authenticator does not claim a directory user (no hash), nor their password.
    assert LocalAuthenticator(catalog).authenticate(name, "frank-pass") is None


def test_a_directory_user_without_orgs_gets_a_personal_org(make: Make, catalog: Catalog) -> None:
    name = uname("Gina.Smith")
    service = make(authenticators=[FakeDirectory(users={name: ("gina-pass", {})})])
    p = service.authenticate_password(name, "gina-pass")
    assert p.roles == {personal_org_name(name): ROLE_ADMIN}
    assert personal_org_name(name) == "~" + name.lower()


def test_a_directory_login_never_takes_over_a_local_account(make: Make, catalog: Catalog) -> None:
    service = make()
    name = new_user(service, org=new_org(service))
    directory = FakeDirectory(users={name: ("directory-pass", {})})
    chained = make(authenticators=[directory, LocalAuthenticator(catalog)])
    with pytest.raises(AccessDenied, match="belongs to a local account"):
        chained.authenticate_password(name, "directory-pass")


# -- personal orgs and names ---------------------------------------------------------------
def test_personal_orgs(make: Make, catalog: Catalog) -> None:
    service = make()
    stem = uuid.uuid4().hex[:8]
    first = f"J.Smith{stem}"
    second = f"j.smith{stem}"  # maps to the same org name
    service.create_user(OPERATOR, first, password=PASSWORD)
    service.create_user(OPERATOR, second, password=PASSWORD)
    p1 = service.authenticate_password(first, PASSWORD)
    p2 = service.authenticate_password(second, PASSWORD)
    assert p1.roles == {f"~j.smith{stem}": ROLE_ADMIN}
    assert p2.roles == {personal_org_name(second, disambiguate=True): ROLE_ADMIN}
    assert next(iter(p2.roles)).startswith(f"~j.smith{stem}-")
    for name in list(p1.roles) + list(p2.roles):
        validate_org_name(name, personal=True)
    with pytest.raises(InvalidName, match="personal"):
        service.create_org(OPERATOR, "~someone")
    for bad in ["", "Upper", "-dash", "a/b", "a b", "x" * 64, "~", "..", "é"]:
        with pytest.raises(InvalidName):
            validate_org_name(bad)
    assert personal_org_name("Ünïcode User!") == "~n-code-user"
    assert personal_org_name("...") == "~user"


# -- access keys ---------------------------------------------------------------------------
def test_access_keys(make: Make) -> None:
    service = make()
    org, other = new_org(service), new_org(service)
    user = new_user(service, org=org)
    service.add_member(OPERATOR, other, user)
    with pytest.raises(InvalidArgument, match="belongs to 2 orgs"):
        service.create_access_key(OPERATOR, user)
    key1, secret1 = service.create_access_key(OPERATOR, user, org=org)
    key2, _ = service.create_access_key(OPERATOR, user, org=org)
    key3, _ = service.create_access_key(OPERATOR, user, org=other)
    assert len({key1.access_key_id, key2.access_key_id, key3.access_key_id}) == 3
    assert secret1.encode() not in key1.secret_wrapped

    principal, secret = service.authenticate_access_key(key1.access_key_id)
    assert secret == secret1
    assert principal.scope_org == org and principal.orgs() == [org]
    assert principal.role_in(other) is None  # the key sees its own org only
    listed = service.list_access_keys(OPERATOR, user_name=user)
    assert {k.access_key_id for k in listed} == {
        key1.access_key_id, key2.access_key_id, key3.access_key_id
    }

    assert service.revoke_access_key(OPERATOR, key1.access_key_id) is True
    assert service.revoke_access_key(OPERATOR, key1.access_key_id) is False
    with pytest.raises(UnknownAccessKey) as caught:
        service.authenticate_access_key(key1.access_key_id)
    assert caught.value.code == "InvalidAccessKeyId"
    # Leaving the org ends the key; so does disabling the user.
    service.remove_member(OPERATOR, other, user)
    with pytest.raises(UnknownAccessKey):
        service.authenticate_access_key(key3.access_key_id)
    service.set_disabled(OPERATOR, user, True)
    with pytest.raises(UnknownAccessKey):
        service.authenticate_access_key(key2.access_key_id)
    for bad in ["", "x" * 200, "bad key", "CS\x00"]:
        with pytest.raises(UnknownAccessKey):
            service.authenticate_access_key(bad)


# -- tokens --------------------------------------------------------------------------------
def test_tokens(make: Make, catalog: Catalog) -> None:
    now = FakeNow()
    service = make(now=now, token_ttl=3600)
    user = new_user(service, org=new_org(service))
    issued = service.issue_token(user, PASSWORD, client="127.0.0.1")
    assert len(issued.token) >= 43 and issued.expires_at == now.value + timedelta(hours=1)
    assert service.authenticate_token(issued.token).name == user
    # Only the hash is stored.
    with catalog._engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_tokens")).all()
    assert all(issued.token not in str(tuple(r)) for r in rows)
    assert catalog.api_token(token_hash(issued.token)) is not None

    assert service.revoke_token(issued.token) is True
    with pytest.raises(InvalidToken):
        service.authenticate_token(issued.token)

    short = service.issue_token(user, PASSWORD, ttl=60)
    assert service.authenticate_token(short.token).name == user
    now.advance(61)
    with pytest.raises(InvalidToken):
        service.authenticate_token(short.token)
    with pytest.raises(InvalidArgument):
        service.issue_token(user, PASSWORD, ttl=7200)
    with pytest.raises(AccessDenied):
        service.issue_token(user, "wrong password")
    for bad in ["", "short", "x" * 300]:
        with pytest.raises(InvalidToken):
            service.authenticate_token(bad)


def test_a_password_change_revokes_tokens(make: Make) -> None:
    service = make()
    other = make()
    user = new_user(service, org=new_org(service))
    issued = service.issue_token(user, PASSWORD)
    service.set_password(OPERATOR, user, "completely new password")
    with pytest.raises(InvalidToken):
        other.authenticate_token(issued.token)


# -- rights and grants ---------------------------------------------------------------------
def test_grants_per_org_and_per_bucket(make: Make) -> None:
    service = make()
    org = new_org(service)
    user = new_user(service, org=org)
    service.grant(OPERATOR, org, user, ["archive"])
    info = service.grant(OPERATOR, org, user, ["restore", "read"], bucket="photos")
    assert info.rights == ("read", "restore") and info.bucket == "photos"
    p = service.authenticate_password(user, PASSWORD)
    assert p.may(Action.ARCHIVE, org) and p.may(Action.ARCHIVE, org, "any")
    assert p.may(Action.RESTORE, org, "photos") and not p.may(Action.RESTORE, org, "music")
    assert not p.may(Action.RESTORE, org) and not p.may(Action.MANAGE, org)
    grants = service.list_grants(OPERATOR, org)
    assert [(g.bucket, g.rights) for g in grants] == [(None, ("archive",)), ("photos", ("read", "restore"))]

    left = service.revoke_grant(OPERATOR, org, user, ["restore"], bucket="photos")
    assert left is not None and left.rights == ("read",)
    assert service.revoke_grant(OPERATOR, org, user, ["read"], bucket="photos") is None
    assert not service.authenticate_password(user, PASSWORD).may(Action.RESTORE, org, "photos")
    with pytest.raises(InvalidArgument, match="not a right"):
        service.grant(OPERATOR, org, user, ["fly"])
    with pytest.raises(InvalidArgument, match="not a member"):
        service.grant(OPERATOR, new_org(service), user, ["read"])

    # Leaving the org drops the grants: coming back starts from the defaults.
    service.remove_member(OPERATOR, org, user)
    service.add_member(OPERATOR, org, user)
    assert service.list_grants(OPERATOR, org, user_name=user) == []


def test_member_default_rights_are_configurable(make: Make) -> None:
    service = make(member_default_rights=["read"])
    org = new_org(service)
    user = new_user(service, org=org)
    p = service.authenticate_password(user, PASSWORD)
    assert p.may(Action.READ, org) and not p.may(Action.WRITE, org)
    service.grant(OPERATOR, org, user, ["write"], bucket="inbox")
    p = service.authenticate_password(user, PASSWORD)
    assert p.may(Action.WRITE, org, "inbox") and not p.may(Action.WRITE, org, "outbox")


def test_authorize_messages() -> None:
    from catalog.records import Org

    org = Org(
        id=1, name="acme", created_at=datetime.now(UTC), recipient="age1x",
        identity_wrapped=b"", identity_key_id="k",
    )
    outsider = Principal(name="mallory", user_id=9, roles={"evil": ROLE_ADMIN}, rights={})
    member = Principal(
        name="m", user_id=2, roles={"acme": ROLE_MEMBER},
        rights={"acme": principals.OrgRights(frozenset({Action.READ}))},
    )
    with pytest.raises(AccessDenied) as missing:
        authorize(outsider, Action.READ, None, "photos")
    with pytest.raises(AccessDenied) as foreign:
        authorize(outsider, Action.READ, org, "photos")
    assert str(missing.value) == str(foreign.value) == f"Access denied: {NO_ACCESS}"
    with pytest.raises(AccessDenied, match="the write right on bucket photos is needed"):
        authorize(member, Action.WRITE, org, "photos")
    authorize(member, Action.READ, org, "photos")


# -- administration checks -----------------------------------------------------------------
def test_org_admins_manage_their_org_only(make: Make) -> None:
    service = make()
    org, foreign = new_org(service), new_org(service)
    admin_name = new_user(service, org=org, role=ROLE_ADMIN)
    member_name = new_user(service, org=org)
    stranger = new_user(service, org=foreign)
    admin = service.authenticate_password(admin_name, PASSWORD)
    member = service.authenticate_password(member_name, PASSWORD)

    service.add_member(admin, org, stranger)
    service.grant(admin, org, member_name, ["restore"])
    service.set_quota(admin, org, 10**9)
    assert (member_name, ROLE_MEMBER) in service.members(admin, org)
    for call in (
        lambda: service.add_member(admin, foreign, member_name),
        lambda: service.grant(admin, foreign, stranger, ["read"]),
        lambda: service.set_quota(admin, foreign, 1),
        lambda: service.members(admin, foreign),
        lambda: service.quota_usage(admin, uname("no-such-org")),
    ):
        with pytest.raises(AccessDenied) as caught:
            call()
        assert foreign not in str(caught.value)
        assert str(caught.value) == f"Access denied: {NO_ACCESS}"
    with pytest.raises(AccessDenied, match="manage"):
        service.grant(member, org, member_name, ["manage"])
    with pytest.raises(AccessDenied, match="operator"):
        service.create_user(admin, uname("x"), password=PASSWORD)
    with pytest.raises(AccessDenied, match="operator"):
        service.create_org(admin, uname("org"))
    with pytest.raises(AccessDenied):
        service.set_password(member, admin_name, "hijacked password")
    service.set_password(member, member_name, "my own new password")


def test_who_may_create_list_and_revoke_keys(make: Make) -> None:
    service = make()
    org, foreign = new_org(service), new_org(service)
    admin_name = new_user(service, org=org, role=ROLE_ADMIN)
    member_name = new_user(service, org=org)
    outsider_name = new_user(service, org=foreign)
    admin = service.authenticate_password(admin_name, PASSWORD)
    member = service.authenticate_password(member_name, PASSWORD)
    outsider = service.authenticate_password(outsider_name, PASSWORD)

    own, _ = service.create_access_key(member, member_name)
    by_admin, _ = service.create_access_key(admin, member_name, org=org)
    foreign_key, _ = service.create_access_key(outsider, outsider_name)
    with pytest.raises(AccessDenied):
        service.create_access_key(member, admin_name, org=org)
    with pytest.raises(AccessDenied):
        service.create_access_key(admin, outsider_name, org=foreign)
    with pytest.raises(InvalidArgument, match="name the org"):
        service.create_access_key(admin, member_name)
    # An org admin learns nothing about names outside the org: a user of another org and
    # a user who exists nowhere get the same answers.
    for name in (outsider_name, "nobody-" + outsider_name):
        with pytest.raises(InvalidArgument) as refused:
            service.create_access_key(admin, name, org=org)
        assert str(refused.value).endswith(f": {name} is not a member of org {org}")
        with pytest.raises(InvalidArgument, match="name the org"):
            service.create_access_key(admin, name)
        assert service.list_access_keys(admin, user_name=name) == []
    with pytest.raises(NotFound):
        service.list_access_keys(OPERATOR, user_name="nobody-" + outsider_name)

    visible = {k.access_key_id for k in service.list_access_keys(member)}
    assert visible == {own.access_key_id, by_admin.access_key_id}
    assert foreign_key.access_key_id not in {
        k.access_key_id for k in service.list_access_keys(admin)
    }
    with pytest.raises(NotFound):
        service.revoke_access_key(admin, foreign_key.access_key_id)
    assert service.revoke_access_key(admin, own.access_key_id) is True
    assert service.revoke_access_key(member, by_admin.access_key_id) is True


# -- quotas --------------------------------------------------------------------------------
def test_quota_usage_is_visible_and_enforced(make: Make, objects: ObjectService) -> None:
    import io

    service = make()
    org = new_org(service)
    user = new_user(service, org=org)
    principal = service.authenticate_password(user, PASSWORD)
    usage = service.quota_usage(principal, org)
    assert (usage.stored_bytes, usage.quota_bytes, usage.fraction) == (0, None, None)

    usage = service.set_quota(OPERATOR, org, 1000)
    assert (usage.quota_bytes, usage.free_bytes) == (1000, 1000)
    objects.create_bucket(principal, org, "data")
    objects.put_object(principal, org, "data", "a", io.BytesIO(b"x" * 600), size=600)
    usage = service.quota_usage(principal, org)
    assert (usage.stored_bytes, usage.free_bytes, usage.fraction) == (600, 400, 0.6)
    with pytest.raises(QuotaExceeded) as caught:
        objects.put_object(principal, org, "data", "b", io.BytesIO(b"y" * 500), size=500)
    assert org in str(caught.value)
    service.set_quota(OPERATOR, org, None)
    assert service.quota_usage(OPERATOR, org).quota_bytes is None
    with pytest.raises(InvalidArgument):
        service.set_quota(OPERATOR, org, -1)


# -- audit ---------------------------------------------------------------------------------
def test_changes_and_logins_are_audited(make: Make, catalog: Catalog) -> None:
    service = make()
    org = new_org(service)
    user = new_user(service, org=org)
    service.authenticate_password(user, PASSWORD, client="127.0.0.1")
    with pytest.raises(AccessDenied):
        service.authenticate_password(user, "wrong password")
    key, secret = service.create_access_key(OPERATOR, user)
    service.revoke_access_key(OPERATOR, key.access_key_id)
    service.grant(OPERATOR, org, user, ["archive"])
    service.revoke_grant(OPERATOR, org, user, ["archive"])
    service.set_quota(OPERATOR, org, 5000)
    service.set_password(OPERATOR, user, "another good password")
    service.remove_member(OPERATOR, org, user)

    entries = catalog.audit_entries(limit=200)
    mine = [e for e in entries if e.actor == user or e.details.get("user") == user]
    actions = {e.action for e in mine}
    assert {
        "user.create", "membership.add", "login.success", "login.failure", "key.create",
        "key.revoke", "grant.add", "grant.remove", "password.change", "membership.remove",
    } <= actions
    org_id = catalog.get_org(org).id  # type: ignore[union-attr]
    assert any(e.action == "quota.set" for e in catalog.audit_entries(org_id=org_id))
    success = next(e for e in mine if e.action == "login.success")
    assert success.details["client"] == "127.0.0.1"
    for entry in entries:
        text = str(entry.details)
        assert PASSWORD not in text and secret not in text and "wrong password" not in text
