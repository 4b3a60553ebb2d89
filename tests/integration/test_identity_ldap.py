"""The identity service's authenticator chain against a real OpenLDAP slapd
(tests/fixtures/slapd.py), configured the way an operator does: [identity] and [ldap] in a
TOML file. Runs on SQLite and MariaDB catalogs.

Directory (see the fixture): alice is in research-admins and finance, bob in the posixGroup
ops, carol in research and research-admins, eve in no group.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from catalog.api import Catalog
from catalog.records import ROLE_ADMIN, ROLE_MEMBER
from gateway import principals, sealing
from gateway.authn import AuthenticationFailed, AuthenticatorUnavailable
from gateway.config import load_config
from gateway.errors import AccessDenied
from gateway.identity import IdentityService, personal_org_name
from gateway.ldap_auth import LdapAuthenticator
from gateway.objects import ObjectService
from gateway.principals import operator_principal
from tests.fixtures.slapd import SlapdServer
from tests.integration.catalog_support import ENGINES, fresh_catalog_url
from tiering.backends import open_backend

GROUPS = "ou=groups,dc=example,dc=org"
OPERATOR = operator_principal("test-operator")
LOCAL_PASSWORD = "local-admin-password"

MAPPINGS = [
    {"group": f"cn=research,{GROUPS}", "org": "research", "role": "member"},
    {"group": "research-admins", "org": "research", "role": "admin"},
    {"group": f"cn=finance,{GROUPS}", "org": "finance", "role": "member"},
    {"group": "ops", "org": "ops", "role": "member"},
]


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        principals, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(principals, "_dummy_hash", None)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)


def write_config(path: Path, slapd: SlapdServer, **ldap: Any) -> Path:
    authenticators = ldap.pop("authenticators", ["local", "ldap"])
    options: dict[str, Any] = {
        "url": slapd.url,
        "bind_dn": slapd.bind_dn,
        "bind_password": slapd.bind_password,
        "user_base": slapd.user_base,
        "group_base": slapd.group_base,
        "connect_timeout": 2,
        "receive_timeout": 2,
        "group_mappings": MAPPINGS,
    }
    options.update(ldap)
    lines = [
        "[server]",
        f'data_dir = "{path.parent}"',
        "[identity]",
        f"authenticators = {_toml(authenticators)}",
        "[ldap]",
        *(f"{key} = {_toml(value)}" for key, value in options.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", params=ENGINES)
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalog]:
    url = fresh_catalog_url(request.param, request, tmp_path_factory.mktemp("identity-ldap"))
    cat = Catalog(url)
    cat.upgrade()
    yield cat
    cat.close()


@pytest.fixture(scope="module")
def objects(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectService]:
    root = tmp_path_factory.mktemp("blobs")
    svc = ObjectService(
        catalog,
        {"local": open_backend("local", {"type": "localfs", "root": str(root)})},
        sealing.MasterKeyring(sealing.MasterKey.generate()),
        default_backend="local",
        default_region="local",
        small_object_threshold=0,
    )
    yield svc
    svc.close()


Make = Callable[..., IdentityService]


@pytest.fixture
def make(
    catalog: Catalog, objects: ObjectService, slapd: SlapdServer, tmp_path: Path
) -> Iterator[Make]:
    """Identity services built from a TOML config, as the gateway builds its own."""
    made: list[IdentityService] = []

    def build(**ldap: Any) -> IdentityService:
        file = write_config(tmp_path / f"c-{len(made)}.toml", slapd, **ldap)
        config = load_config(file, env={})
        service = IdentityService.from_config(
            config, catalog, objects.keyring, ensure_org=objects.ensure_org
        )
        made.append(service)
        return service

    yield build
    for service in made:
        service.close()


def local_admin(service: IdentityService) -> str:
    name = f"admin-{uuid.uuid4().hex[:8]}"
    service.create_user(OPERATOR, name, password=LOCAL_PASSWORD)
    return name


# -- good, bad, unknown --------------------------------------------------------------------
def test_good_password_provisions_the_user_with_two_orgs(
    make: Make, slapd: SlapdServer, catalog: Catalog
) -> None:
    service = make()
    principal = service.authenticate_password("alice", slapd.users["alice"], client="127.0.0.1")
    assert principal.name == "alice" and principal.source == "ldap"
    assert principal.roles == {"research": ROLE_ADMIN, "finance": ROLE_MEMBER}

    facts = catalog.user_facts(name="alice")
    assert facts is not None and facts.source == "ldap"
    assert facts.user.password_hash is None
    assert facts.profile["email"] == "alice@example.org"
    assert facts.profile["country"] == "FI"
    for name in ("research", "finance"):
        org = catalog.get_org(name)
        assert org is not None and org.recipient.startswith("age1")
    actions = {(e.actor, e.action) for e in catalog.audit_entries(limit=50)}
    assert ("alice", "login.success") in actions


def test_bad_password_and_unknown_user_are_denied_alike(make: Make, slapd: SlapdServer) -> None:
    service = make()
    with pytest.raises(AuthenticationFailed) as bad:
        service.authenticate_password("bob", "not-bobs-password")
    with pytest.raises(AccessDenied) as unknown:
        service.authenticate_password(f"nobody-{uuid.uuid4().hex[:6]}", "whatever-pass")
    assert str(bad.value) == str(unknown.value) == "Access denied: wrong user name or password"


def test_posix_group_and_no_group(make: Make, slapd: SlapdServer) -> None:
    service = make()
    assert service.authenticate_password("bob", slapd.users["bob"]).roles == {"ops": ROLE_MEMBER}
    eve = service.authenticate_password("eve", slapd.users["eve"])
    assert eve.roles == {personal_org_name("eve"): ROLE_ADMIN} == {"~eve": ROLE_ADMIN}


def test_directory_orgs_follow_the_directory(
    make: Make, slapd: SlapdServer, catalog: Catalog, objects: ObjectService
) -> None:
    service = make()
    service.authenticate_password("carol", slapd.users["carol"])
    # An operator put carol into ops (a directory org) and into a local org by hand.
    local_org = f"local-{uuid.uuid4().hex[:8]}"
    service.create_org(OPERATOR, local_org)
    objects.ensure_org("ops")
    service.add_member(OPERATOR, "ops", "carol")
    service.add_member(OPERATOR, local_org, "carol")
    service.forget_all()
    roles = service.authenticate_password("carol", slapd.users["carol"]).roles
    assert roles == {"research": ROLE_ADMIN, local_org: ROLE_MEMBER}


def test_success_is_cached_so_a_burst_does_not_bind_again(
    make: Make, slapd: SlapdServer
) -> None:
    service = make()
    service.authenticate_password("alice", slapd.users["alice"])
    ldap = next(a for a in service.authenticators if isinstance(a, LdapAuthenticator))
    ldap.close()  # any further bind would now fail as unavailable
    for _ in range(20):
        assert service.authenticate_password("alice", slapd.users["alice"]).name == "alice"
    with pytest.raises(AuthenticatorUnavailable):
        service.authenticate_password("bob", slapd.users["bob"])


# -- LDAP down -----------------------------------------------------------------------------
@pytest.mark.parametrize("order", [["local", "ldap"], ["ldap", "local"]])
def test_ldap_down_is_a_clear_error_and_a_local_admin_still_works(
    make: Make, catalog: Catalog, order: list[str]
) -> None:
    service = make(
        authenticators=order, url=f"ldap://127.0.0.1:{closed_port()}", connect_timeout=1
    )
    admin = local_admin(service)
    assert service.authenticate_password(admin, LOCAL_PASSWORD).name == admin
    with pytest.raises(AuthenticatorUnavailable) as caught:
        service.authenticate_password("alice", "alice-Wonder-1")
    message = str(caught.value)
    assert "LDAP directory cannot be reached" in message and "refused" in message
    assert "alice-Wonder-1" not in message
    assert caught.value.http_status == 503
    # An outage does not count as a failed login.
    assert catalog.login_blocked([("user", "alice")]) == 0


def test_a_directory_login_cannot_take_over_a_local_user(
    make: Make, slapd: SlapdServer, catalog: Catalog
) -> None:
    # "o'neil,j+1" exists in the directory; a local user of that name exists too.
    service = make(authenticators=["ldap", "local"])
    name = "o'neil,j+1"
    if catalog.user_facts(name=name) is None:
        service.create_user(OPERATOR, name, password=LOCAL_PASSWORD)
    with pytest.raises(AccessDenied, match="belongs to a local account"):
        service.authenticate_password(name, slapd.users[name])
    # With LDAP first, a wrong LDAP password ends the chain: the local password is refused.
    with pytest.raises(AuthenticationFailed):
        service.authenticate_password(name, LOCAL_PASSWORD)
    # With local users first, the local user logs in as before.
    assert make().authenticate_password(name, LOCAL_PASSWORD).name == name


def test_the_bind_password_is_a_secret(slapd: SlapdServer, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "c.toml", slapd), env={})
    assert str(config.ldap.bind_password) == "***"
    assert slapd.bind_password in config.secrets()
    options = config.ldap.options()
    assert "enabled" not in options and options["url"] == slapd.url
    assert config.ldap.mapped_orgs == {"research", "finance", "ops"}
