"""The LDAP authenticator against a real OpenLDAP slapd (see tests/fixtures/slapd.py)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway.authn import AuthenticationFailed, AuthenticatorUnavailable, Identity
from gateway.errors import ConfigError
from gateway.ldap_auth import (
    LdapAuthenticator,
    escape_filter_value,
    escape_rdn_value,
    normalize_dn,
)
from tests.fixtures.slapd import SlapdServer, start_slapd

GROUPS = "ou=groups,dc=example,dc=org"

MAPPINGS = [
    {"group": f"cn=research,{GROUPS}", "org": "research", "role": "member"},
    {"group": "research-admins", "org": "research", "role": "admin"},
    # Written differently from what the server returns: case and spaces must not matter.
    {"group": "CN=Finance, OU=Groups, DC=Example, DC=Org", "org": "finance", "role": "member"},
    {"group": "ops", "org": "ops", "role": "member"},
]


def options(server: SlapdServer, **overrides: Any) -> dict[str, Any]:
    """Search-mode options for ``server``; ``None`` values remove a key."""
    opts: dict[str, Any] = {
        "url": server.url,
        "bind_dn": server.bind_dn,
        "bind_password": server.bind_password,
        "user_base": server.user_base,
        "group_base": server.group_base,
        "latitude_attribute": "csLatitude",
        "longitude_attribute": "csLongitude",
        "connect_timeout": 2,
        "receive_timeout": 2,
        "group_mappings": MAPPINGS,
    }
    opts.update(overrides)
    return {key: value for key, value in opts.items() if value is not None}


@pytest.fixture
def make(slapd: SlapdServer) -> Iterator[Any]:
    """Build authenticators from options and close them after the test."""
    made: list[LdapAuthenticator] = []

    def build(**overrides: Any) -> LdapAuthenticator:
        authenticator = LdapAuthenticator.from_options(options(slapd, **overrides))
        made.append(authenticator)
        return authenticator

    yield build
    for authenticator in made:
        authenticator.close()


@pytest.fixture
def ldap(make: Any) -> LdapAuthenticator:
    """A search-mode authenticator over plain LDAP."""
    return make()  # type: ignore[no-any-return]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the three answers ---------------------------------------------------------------------
def test_good_password_gives_the_full_identity(ldap: LdapAuthenticator, slapd: SlapdServer) -> None:
    identity = ldap.authenticate("alice", slapd.users["alice"])

    assert isinstance(identity, Identity)
    assert identity.username == "alice"
    assert identity.source == "ldap"
    assert identity.display_name == "Alice L."
    assert identity.email == "alice@example.org"
    assert identity.groups == tuple(
        sorted(f"cn={g},{GROUPS}" for g in ("research-admins", "finance", "everyone"))
    )
    assert identity.attributes == {
        "dn": slapd.user_dn("alice"),
        "country": "FI",
        "latitude": "60.1699",
        "longitude": "24.9384",
    }


def test_user_in_two_mapped_groups_gets_two_orgs(
    ldap: LdapAuthenticator, slapd: SlapdServer
) -> None:
    identity = ldap.authenticate("alice", slapd.users["alice"])
    assert identity is not None
    # research-admins by CN, finance by a differently written DN; "everyone" is unmapped.
    assert identity.org_roles == {"research": "admin", "finance": "member"}


def test_admin_wins_over_member_within_one_org(ldap: LdapAuthenticator, slapd: SlapdServer) -> None:
    identity = ldap.authenticate("carol", slapd.users["carol"])
    assert identity is not None
    assert f"cn=research,{GROUPS}" in identity.groups
    assert identity.org_roles == {"research": "admin"}
    # Without a display name the cn is used; no country attribute, no coordinates.
    assert identity.display_name == "Carol Singer"
    assert identity.attributes == {"dn": slapd.user_dn("carol")}


@pytest.mark.parametrize("admin_first", [True, False])
def test_admin_wins_whatever_the_mapping_order(
    make: Any, slapd: SlapdServer, admin_first: bool
) -> None:
    # One group mapped twice to the same org: the stronger role is kept in either order.
    mappings = [
        {"group": "research-admins", "org": "research", "role": "admin"},
        {"group": f"cn=research-admins,{GROUPS}", "org": "research", "role": "member"},
    ]
    ldap = make(group_mappings=mappings if admin_first else mappings[::-1])
    identity = ldap.authenticate("alice", slapd.users["alice"])
    assert identity is not None
    assert identity.org_roles == {"research": "admin"}


def test_posix_group_membership_by_member_uid(ldap: LdapAuthenticator, slapd: SlapdServer) -> None:
    identity = ldap.authenticate("bob", slapd.users["bob"])
    assert identity is not None
    assert identity.groups == (f"cn=everyone,{GROUPS}", f"cn=ops,{GROUPS}")
    assert identity.org_roles == {"ops": "member"}


def test_user_without_groups_has_no_orgs(ldap: LdapAuthenticator, slapd: SlapdServer) -> None:
    identity = ldap.authenticate("eve", slapd.users["eve"])
    assert identity is not None
    assert identity.groups == ()
    assert identity.org_roles == {}


def test_user_name_is_canonicalised_from_the_directory(
    ldap: LdapAuthenticator, slapd: SlapdServer
) -> None:
    identity = ldap.authenticate("ALICE", slapd.users["alice"])
    assert identity is not None
    assert identity.username == "alice"


def test_bad_password_fails(ldap: LdapAuthenticator, slapd: SlapdServer) -> None:
    with pytest.raises(AuthenticationFailed):
        ldap.authenticate("alice", slapd.users["alice"] + "x")
    with pytest.raises(AuthenticationFailed):
        ldap.authenticate("alice", slapd.users["bob"])


def test_empty_password_always_fails(ldap: LdapAuthenticator, make: Any) -> None:
    # An empty simple-bind password is an unauthenticated bind that servers accept.
    for name in ("alice", "nobody", "*"):
        with pytest.raises(AuthenticationFailed):
            ldap.authenticate(name, "")
    # Decided before any network traffic: also while the directory is down.
    down = make(url=f"ldap://127.0.0.1:{closed_port()}")
    with pytest.raises(AuthenticationFailed):
        down.authenticate("alice", "")


def test_unknown_user_is_none(ldap: LdapAuthenticator) -> None:
    assert ldap.authenticate("nobody", "whatever-password") is None


@pytest.mark.parametrize(
    "name",
    [
        "*",
        "a*",
        "al*ce",
        "a)(uid=*",
        "alice)(uid=*",
        "*)(|(uid=*",
        "alice)(|(objectClass=*",
        "alice\\2a",
        "alice\x00",
        "\x00",
        "alice\n",
        "ali\u202ece",
        " alice",
        "alice ",
        "",
        "a" * 300,
    ],
)
def test_injection_attempts_match_nobody(
    ldap: LdapAuthenticator, slapd: SlapdServer, name: str
) -> None:
    # Alice's real password: any match of her entry would log in.
    assert ldap.authenticate(name, slapd.users["alice"]) is None


def test_special_characters_are_matched_literally(
    ldap: LdapAuthenticator, slapd: SlapdServer
) -> None:
    name = "o'neil,j+1"
    identity = ldap.authenticate(name, slapd.users[name])
    assert identity is not None
    assert identity.username == name
    assert normalize_dn(identity.attributes["dn"]) == normalize_dn(slapd.user_dn(name))


def test_escaping_functions() -> None:
    assert escape_filter_value("a)(uid=*") == "a\\29\\28uid=\\2a"
    assert escape_filter_value("back\\slash\x00") == "back\\5cslash\\00"
    assert escape_rdn_value("o'neil,j+1") == "o'neil\\2cj\\2b1"
    assert escape_rdn_value(" #x ") == "\\ #x\\ "
    assert escape_rdn_value("#lead") == "\\#lead"
    assert normalize_dn("uid=o'neil\\2Cj\\2b1, OU=People,dc=Example") == (
        "uid=o'neil,j+1,ou=people,dc=example"
    )


# -- TLS -----------------------------------------------------------------------------------
def test_start_tls_with_the_ca_file(make: Any, slapd: SlapdServer) -> None:
    ldap = make(start_tls=True, ca_file=str(slapd.ca_file))
    identity = ldap.authenticate("alice", slapd.users["alice"])
    assert identity is not None
    assert identity.org_roles == {"research": "admin", "finance": "member"}


def test_ldaps_with_the_ca_file(make: Any, slapd: SlapdServer) -> None:
    ldap = make(url=slapd.ldaps_url, ca_file=str(slapd.ca_file))
    assert ldap.authenticate("bob", slapd.users["bob"]) is not None
    with pytest.raises(AuthenticationFailed):
        ldap.authenticate("bob", "wrong-password")


def test_ldaps_with_the_wrong_ca_is_unavailable(make: Any, slapd: SlapdServer) -> None:
    ldap = make(url=slapd.ldaps_url, ca_file=str(slapd.other_ca_file))
    with pytest.raises(AuthenticatorUnavailable) as caught:
        ldap.authenticate("alice", slapd.users["alice"])
    assert "TLS certificate verification failed (check ca_file)" in str(caught.value)
    assert caught.value.code == "AuthenticatorUnavailable"


def test_start_tls_with_the_wrong_ca_is_unavailable(make: Any, slapd: SlapdServer) -> None:
    ldap = make(start_tls=True, ca_file=str(slapd.other_ca_file))
    with pytest.raises(AuthenticatorUnavailable) as caught:
        ldap.authenticate("alice", slapd.users["alice"])
    assert "certificate" in str(caught.value)


def test_host_name_must_match_the_certificate(make: Any, slapd: SlapdServer) -> None:
    # The same listener reached by a name the certificate does not carry (it names
    # 127.0.0.1 and localhost): the IPv4-mapped IPv6 form of 127.0.0.1.
    url = slapd.ldaps_url.replace("127.0.0.1", "[::ffff:127.0.0.1]")
    ldap = make(url=url, ca_file=str(slapd.ca_file))
    with pytest.raises(AuthenticatorUnavailable) as caught:
        ldap.authenticate("alice", slapd.users["alice"])
    assert "does not name the host" in str(caught.value)
    # ...while localhost, which it names, works.
    ldap = make(url=slapd.ldaps_url.replace("127.0.0.1", "localhost"), ca_file=str(slapd.ca_file))
    assert ldap.authenticate("alice", slapd.users["alice"]) is not None


# -- the directory unavailable -------------------------------------------------------------
def test_server_down_is_unavailable_quickly(make: Any) -> None:
    port = closed_port()
    ldap = make(url=f"ldap://127.0.0.1:{port}", connect_timeout=1, receive_timeout=1)
    started = time.monotonic()
    with pytest.raises(AuthenticatorUnavailable) as caught:
        ldap.authenticate("alice", "some-password")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert message.startswith("The LDAP directory cannot be reached")
    assert f"127.0.0.1:{port}" in message
    assert "refused" in message
    assert caught.value.http_status == 503


def test_silent_server_times_out(make: Any) -> None:
    # A listener that accepts connections and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        ldap = make(url=url, connect_timeout=1, receive_timeout=1)
        started = time.monotonic()
        with pytest.raises(AuthenticatorUnavailable) as caught:
            ldap.authenticate("alice", "some-password")
        elapsed = time.monotonic() - started
    assert elapsed < 5
    assert "timeout" in str(caught.value) or "timed out" in str(caught.value)


def test_second_url_is_used_when_the_first_is_down(make: Any, slapd: SlapdServer) -> None:
    ldap = make(url=[f"ldap://127.0.0.1:{closed_port()}", slapd.url])
    assert ldap.authenticate("eve", slapd.users["eve"]) is not None


def test_refused_service_account_is_unavailable_without_leaking(
    make: Any, slapd: SlapdServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ldap = make(bind_password="not-the-service-secret")
    with pytest.raises(AuthenticatorUnavailable) as caught:
        ldap.authenticate("alice", slapd.users["alice"])
    assert "service account" in str(caught.value)
    assert "not-the-service-secret" not in str(caught.value)
    assert "not-the-service-secret" not in repr(ldap)
    with pytest.raises(AuthenticationFailed):
        make().authenticate("alice", "alices-wrong-password")
    assert "not-the-service-secret" not in caplog.text
    assert "alices-wrong-password" not in caplog.text


def test_missing_user_base_is_unavailable(make: Any, slapd: SlapdServer) -> None:
    ldap = make(user_base="ou=nowhere,dc=example,dc=org")
    with pytest.raises(AuthenticatorUnavailable, match="ou=nowhere"):
        ldap.authenticate("alice", slapd.users["alice"])


def test_pool_recovers_after_a_server_restart(tmp_path: Path) -> None:
    server = start_slapd(tmp_path)
    ldap = LdapAuthenticator.from_options(options(server, pool_size=2))
    try:
        assert ldap.authenticate("alice", server.users["alice"]) is not None
        server.stop()
        server.start()
        # The pooled service connection from before the restart is dead: it is replaced
        # without the login noticing.
        identity = ldap.authenticate("alice", server.users["alice"])
        assert identity is not None
        assert identity.org_roles == {"research": "admin", "finance": "member"}
        server.stop()
        with pytest.raises(AuthenticatorUnavailable, match="refused"):
            ldap.authenticate("alice", server.users["alice"])
        server.start()
        assert ldap.authenticate("bob", server.users["bob"]) is not None
    finally:
        ldap.close()
        server.stop()


# -- DN template mode ----------------------------------------------------------------------
def test_template_mode_without_a_service_account(make: Any, slapd: SlapdServer) -> None:
    ldap = make(
        bind_dn=None,
        bind_password=None,
        user_base=None,
        user_dn_template=f"uid={{username}},{slapd.user_base}",
    )
    identity = ldap.authenticate("alice", slapd.users["alice"])
    assert identity is not None
    # The user read their own entry and groups (anonymous users may read nothing here).
    assert identity.email == "alice@example.org"
    assert identity.org_roles == {"research": "admin", "finance": "member"}
    name = "o'neil,j+1"
    special = ldap.authenticate(name, slapd.users[name])
    assert special is not None
    assert normalize_dn(special.attributes["dn"]) == normalize_dn(slapd.user_dn(name))
    with pytest.raises(AuthenticationFailed):
        ldap.authenticate("alice", "wrong-password")
    # The server cannot tell a missing user from a wrong password: fail closed.
    with pytest.raises(AuthenticationFailed):
        ldap.authenticate("nobody", "whatever-password")
    with pytest.raises(AuthenticationFailed):
        ldap.authenticate("*", slapd.users["alice"])


def test_template_mode_with_a_service_account(make: Any, slapd: SlapdServer) -> None:
    ldap = make(user_base=None, user_dn_template=f"uid={{username}},{slapd.user_base}")
    identity = ldap.authenticate("carol", slapd.users["carol"])
    assert identity is not None
    assert identity.org_roles == {"research": "admin"}
    assert ldap.authenticate("nobody", "whatever-password") is None
    assert ldap.authenticate("a)(uid=*", slapd.users["alice"]) is None
    with pytest.raises(AuthenticationFailed):
        ldap.authenticate("carol", "wrong-password")


# -- threads -------------------------------------------------------------------------------
def test_concurrent_authentications(make: Any, slapd: SlapdServer) -> None:
    ldap = make(pool_size=3)
    opened = 0
    lock = threading.Lock()
    original = ldap._open_service_connection

    def counting() -> Any:
        nonlocal opened
        with lock:
            opened += 1
        return original()

    ldap._open_service_connection = counting  # type: ignore[method-assign]
    ldap._pool._factory = counting
    names = ["alice", "bob", "carol", "eve"] * 5
    barrier = threading.Barrier(len(names))

    def login(name: str) -> Identity | None:
        barrier.wait(timeout=10)
        return ldap.authenticate(name, slapd.users[name])

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        identities = list(pool.map(login, names))

    assert [i.username if i else None for i in identities] == names
    by_name = {i.username: i.org_roles for i in identities if i}
    assert by_name == {
        "alice": {"research": "admin", "finance": "member"},
        "bob": {"ops": "member"},
        "carol": {"research": "admin"},
        "eve": {},
    }
    # 20 logins shared at most pool_size service connections.
    assert 1 <= opened <= 3


# -- options -------------------------------------------------------------------------------
def test_unknown_option_is_named(slapd: SlapdServer) -> None:
    with pytest.raises(ConfigError, match="'user_fliter'"):
        LdapAuthenticator.from_options(options(slapd, user_fliter="(uid={username})"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": "http://127.0.0.1"}, "ldap:// or ldaps://"),
        ({"url": "ldaps://127.0.0.1", "start_tls": True}, "start_tls"),
        ({"start_tls": "yes"}, "start_tls"),
        ({"user_base": None}, "user_base"),
        ({"user_filter": "(uid={user})"}, "user_filter"),
        ({"user_filter": "(uid=fixed)"}, "{username}"),
        ({"group_filter": "(member={dn}"}, "group_filter"),
        ({"bind_password": None}, "bind_dn and bind_password"),
        ({"bind_password": ""}, "bind_password"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({"receive_timeout": 0}, "receive_timeout"),
        ({"pool_size": 0}, "pool_size"),
        ({"group_mappings": [{"group": "x", "org": "o", "role": "owner"}]}, "role"),
        ({"group_mappings": [{"group": "x", "org": "o", "rol": "admin"}]}, "'rol'"),
        ({"group_mappings": [{"group": "", "org": "o"}]}, "group"),
        ({"group_base": None}, "group_base"),
    ],
)
def test_bad_options(slapd: SlapdServer, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        LdapAuthenticator.from_options(options(slapd, **overrides))
    assert message in str(caught.value)


def test_secret_objects_and_password_files(slapd: SlapdServer, tmp_path: Path) -> None:
    class Secret:
        def __init__(self, value: str) -> None:
            self._value = value

        def reveal(self) -> str:
            return self._value

    ldap = LdapAuthenticator.from_options(options(slapd, bind_password=Secret(slapd.bind_password)))
    try:
        assert ldap.authenticate("eve", slapd.users["eve"]) is not None
    finally:
        ldap.close()
    secret_file = tmp_path / "bind-password"
    secret_file.write_text(slapd.bind_password + "\n")
    ldap = LdapAuthenticator.from_options(
        options(slapd, bind_password=None, bind_password_file=str(secret_file))
    )
    try:
        assert ldap.authenticate("eve", slapd.users["eve"]) is not None
    finally:
        ldap.close()
    assert slapd.bind_password not in repr(ldap)


def test_closed_authenticator_is_unavailable(make: Any, slapd: SlapdServer) -> None:
    ldap = make()
    assert ldap.authenticate("eve", slapd.users["eve"]) is not None
    ldap.close()
    with pytest.raises(AuthenticatorUnavailable, match="closed"):
        ldap.authenticate("eve", slapd.users["eve"])
