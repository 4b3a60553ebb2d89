"""The LDAP authenticator: find the user with a search (or a DN template), then bind as them.

How one :meth:`LdapAuthenticator.authenticate` call goes:

1. The password must not be empty: an LDAP simple bind with a DN and an empty password is an
   *unauthenticated* bind (RFC 4513 5.1.2) that many servers answer with success, so it
   would log anyone in. The user name must be non-empty, short, free of control characters
   and surrounding spaces; anything else is answered ``None`` (this directory has no such
   user) without asking the server.
2. The user's entry is found with a search as the service account (``bind_dn``) under
   ``user_base`` with ``user_filter``, the name escaped as RFC 4515 says, so ``*`` or
   ``a)(uid=*`` match only a user literally called that. No entry: ``None``. More than one:
   the directory is ambiguous and the login is refused. With ``user_dn_template`` the DN is
   built instead (the name escaped as an RFC 4514 RDN value) and, when a service account is
   configured, checked to exist.
3. A fresh connection binds as the user's DN with the password. ``invalidCredentials`` (and
   the other "you may not" answers) raise :class:`AuthenticationFailed`, which ends the
   authenticator chain: a wrong LDAP password never falls through to a local user. In
   template mode without a service account a missing user also looks like a wrong password
   to the server, so it ends the chain too (fail closed); configure a service account if
   local users must be reachable after LDAP in the chain.
4. Groups are searched under ``group_base`` with ``group_filter`` (``{dn}`` and
   ``{username}`` escaped), and ``group_mappings`` turn them into org roles: a user in two
   mapped groups gets two orgs, and ``admin`` wins over ``member`` within one org.

Anything that stops the directory from answering (refused or timed-out connections, TLS
failures, a refused service account, a missing search base, a busy server) raises
:class:`AuthenticatorUnavailable` with a plain reason, so the chain can ask the next
authenticator. Reasons and log lines never contain a password.

Threads: the authenticator is shared by all request threads. Service-account connections
come from a small lock-protected pool (each connection used by one thread at a time; a
pooled connection the server has dropped is replaced once, transparently); every user bind
uses its own connection, closed right after, so a user's bind never changes the identity of
a pooled connection.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import os
import re
import socket
import ssl
import threading
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SIMPLE, SUBTREE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPException,
    LDAPInvalidDnError,
    LDAPSocketOpenError,
    LDAPStartTLSError,
)
from ldap3.utils.dn import parse_dn

from gateway.authn import AuthenticationFailed, Authenticator, AuthenticatorUnavailable, Identity
from gateway.errors import ConfigError

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Longest user name passed to the directory; longer ones are nobody's.
MAX_USERNAME_LENGTH = 256
#: Longest password sent in a bind; longer ones are wrong.
MAX_PASSWORD_LENGTH = 4096
#: At most this many groups are read per user (a guard against huge answers).
MAX_GROUPS = 1000

ROLES = ("admin", "member")

# LDAP result codes (RFC 4511 4.1.9) that mean "the directory cannot answer now" rather
# than "no": busy, unavailable, time or admin limits, and "other" (OpenLDAP's answer when a
# backend is broken).
_UNAVAILABLE_RESULTS = {
    3: "timeLimitExceeded",
    11: "adminLimitExceeded",
    51: "busy",
    52: "unavailable",
    80: "other",
}
_NO_SUCH_OBJECT = 32
_SIZE_LIMIT_EXCEEDED = 4
_INVALID_DN_SYNTAX = 34
_INVALID_CREDENTIALS = 49

_OPTIONS = frozenset(
    {
        "url",
        "start_tls",
        "ca_file",
        "bind_dn",
        "bind_password",
        "bind_password_file",
        "user_dn_template",
        "user_base",
        "user_filter",
        "username_attribute",
        "group_base",
        "group_filter",
        "group_name_attribute",
        "display_name_attribute",
        "mail_attribute",
        "country_attribute",
        "latitude_attribute",
        "longitude_attribute",
        "connect_timeout",
        "receive_timeout",
        "pool_size",
        "group_mappings",
    }
)


class _Password:
    """A password that never shows itself in ``repr`` or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__


@dataclass(frozen=True)
class GroupMapping:
    """One ``group_mappings`` entry: members of ``group`` get ``role`` in ``org``.

    ``group`` is either a full DN (compared after normalisation: case, spaces and escapes
    do not matter) or a bare group name compared with the group's ``group_name_attribute``.
    """

    group: str
    org: str
    role: str

    @property
    def is_dn(self) -> bool:
        return "=" in self.group


@dataclass(frozen=True)
class _Endpoint:
    """One directory server from ``url``."""

    url: str
    host: str
    port: int
    use_ssl: bool


class LdapAuthenticator(Authenticator):
    """Authenticate against an LDAP directory (see the module docstring for the steps).

    Build it with :meth:`from_options` from the ``[ldap]`` config table. ``url`` may be one
    URL or a list of them, tried in order while a server cannot be reached.
    """

    name = "ldap"

    def __init__(
        self,
        *,
        urls: Sequence[str],
        start_tls: bool = False,
        ca_file: str | None = None,
        bind_dn: str | None = None,
        bind_password: str | None = None,
        user_dn_template: str | None = None,
        user_base: str | None = None,
        user_filter: str = "(uid={username})",
        username_attribute: str = "uid",
        group_base: str | None = None,
        group_filter: str = "(|(member={dn})(memberUid={username}))",
        group_name_attribute: str = "cn",
        display_name_attribute: str = "displayName",
        mail_attribute: str = "mail",
        country_attribute: str | None = "c",
        latitude_attribute: str | None = None,
        longitude_attribute: str | None = None,
        connect_timeout: float = 5.0,
        receive_timeout: float = 10.0,
        pool_size: int = 4,
        group_mappings: Sequence[GroupMapping] = (),
    ) -> None:
        if not urls:
            raise ConfigError("ldap: url is required")
        self._endpoints = [_parse_url(url) for url in urls]
        if start_tls and any(e.use_ssl for e in self._endpoints):
            raise ConfigError("ldap: start_tls cannot be combined with an ldaps:// url")
        if ca_file is not None and not os.access(ca_file, os.R_OK):
            raise ConfigError(f"ldap: ca_file {ca_file} cannot be read")
        if (bind_dn is None) != (bind_password is None):
            raise ConfigError("ldap: bind_dn and bind_password go together")
        if bind_password is not None and not bind_password:
            # An empty password would make the service bind an anonymous one.
            raise ConfigError("ldap: bind_password must not be empty")
        if user_dn_template is None:
            if user_base is None:
                raise ConfigError("ldap: set user_base (to search) or user_dn_template")
            _check_template("user_filter", user_filter, {"username"}, is_filter=True)
        else:
            _check_template("user_dn_template", user_dn_template, {"username"}, is_filter=False)
        if group_base is not None:
            _check_template("group_filter", group_filter, {"dn", "username"}, is_filter=True)
        elif group_mappings:
            raise ConfigError("ldap: group_mappings need group_base")
        for key, value in (
            ("connect_timeout", connect_timeout),
            ("receive_timeout", receive_timeout),
        ):
            if not value > 0:
                raise ConfigError(f"ldap: {key} must be a positive number of seconds")
        if pool_size < 1:
            raise ConfigError("ldap: pool_size must be at least 1")

        self._start_tls = start_tls
        self._ca_file = ca_file
        self._bind_dn = bind_dn
        self._bind_password = _Password(bind_password) if bind_password is not None else None
        self._user_dn_template = user_dn_template
        self._user_base = user_base
        self._user_filter = user_filter
        self._username_attribute = username_attribute
        self._group_base = group_base
        self._group_filter = group_filter
        self._group_name_attribute = group_name_attribute
        self._display_name_attribute = display_name_attribute
        self._mail_attribute = mail_attribute
        self._country_attribute = country_attribute
        self._latitude_attribute = latitude_attribute
        self._longitude_attribute = longitude_attribute
        self._connect_timeout = float(connect_timeout)
        # ldap3 packs the receive timeout into a struct timeval of whole seconds.
        self._receive_timeout = max(1, math.ceil(receive_timeout))
        self._mappings = tuple(group_mappings)
        self._pool = _ConnectionPool(
            self._open_service_connection,
            size=pool_size,
            wait=self._connect_timeout + self._receive_timeout,
        )
        self._user_attributes = sorted(
            {
                a
                for a in (
                    username_attribute,
                    display_name_attribute,
                    "cn",
                    mail_attribute,
                    country_attribute,
                    latitude_attribute,
                    longitude_attribute,
                )
                if a
            }
        )
        if (
            not start_tls
            and not any(e.use_ssl for e in self._endpoints)
            and not all(_is_loopback(e.host) for e in self._endpoints)
        ):
            log.warning(
                "LDAP passwords cross the network in the clear to %s; use ldaps:// or start_tls",
                ", ".join(e.url for e in self._endpoints),
            )

    # -- construction from config ----------------------------------------------------------
    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LdapAuthenticator:
        """Build an authenticator from the ``[ldap]`` config table.

        Unknown keys and wrongly typed values raise :class:`ConfigError` naming the key.
        ``bind_password`` may be a string or a config ``Secret`` (anything with
        ``reveal()``); ``bind_password_file`` reads it from a file instead.
        """
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"ldap: unknown option {unknown[0]!r}"
                + (f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else "")
            )
        opts = dict(options)
        url = opts.get("url")
        if isinstance(url, str):
            urls = [url]
        elif isinstance(url, list | tuple) and url and all(isinstance(u, str) for u in url):
            urls = list(url)
        else:
            raise ConfigError("ldap: url must be an ldap:// or ldaps:// URL (or a list of them)")

        password = opts.get("bind_password")
        if password is not None and hasattr(password, "reveal"):
            password = password.reveal()
        if "bind_password_file" in opts:
            if password is not None:
                raise ConfigError("ldap: set bind_password or bind_password_file, not both")
            path = _string(opts, "bind_password_file")
            try:
                password = Path(path).read_text(encoding="utf-8").rstrip("\r\n") if path else None
            except OSError as exc:
                raise ConfigError(
                    f"ldap: bind_password_file {path} cannot be read: {exc.strerror}"
                ) from None
        if password is not None and not isinstance(password, str):
            raise ConfigError("ldap: bind_password must be a string")

        kwargs: dict[str, Any] = {
            "urls": urls,
            "start_tls": _bool(opts, "start_tls", False),
            "ca_file": _string(opts, "ca_file"),
            "bind_dn": _string(opts, "bind_dn"),
            "bind_password": password,
            "user_dn_template": _string(opts, "user_dn_template"),
            "user_base": _string(opts, "user_base"),
            "group_base": _string(opts, "group_base"),
            "latitude_attribute": _string(opts, "latitude_attribute"),
            "longitude_attribute": _string(opts, "longitude_attribute"),
            "group_mappings": _mappings(opts.get("group_mappings", [])),
        }
        for key in (
            "user_filter",
            "username_attribute",
            "group_filter",
            "group_name_attribute",
            "display_name_attribute",
            "mail_attribute",
        ):
            value = _string(opts, key)
            if value is not None:
                kwargs[key] = value
        if "country_attribute" in opts:
            kwargs["country_attribute"] = _string(opts, "country_attribute")
        for key in ("connect_timeout", "receive_timeout"):
            if key in opts:
                kwargs[key] = _number(opts, key)
        if "pool_size" in opts:
            size = opts["pool_size"]
            if isinstance(size, bool) or not isinstance(size, int):
                raise ConfigError("ldap: pool_size must be an integer")
            kwargs["pool_size"] = size
        return cls(**kwargs)

    def __repr__(self) -> str:
        urls = ", ".join(e.url for e in self._endpoints)
        return f"LdapAuthenticator(url=[{urls}], bind_dn={self._bind_dn!r})"

    # -- the contract ----------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> Identity | None:
        """Check ``password`` for ``username`` in the directory (see the module docstring)."""
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            raise AuthenticationFailed(username if _valid_username(username) else "?")
        if not _valid_username(username):
            return None

        entry = self._find_user(username)
        if entry is None:
            return None
        user_dn, attributes = entry
        user_conn = self._user_bind(username, user_dn, password)
        groups: list[_Group] | None = None
        try:
            if self._bind_password is None:
                # No service account: the user reads their own entry and groups.
                found = self._search_one(user_conn, user_dn, "(objectClass=*)", BASE)
                if found is not None:
                    attributes = found[1]
                groups = self._find_groups(user_conn, user_dn, username)
        except _Dropped as dropped:
            raise self._unavailable(dropped.cause) from None
        finally:
            _unbind(user_conn)
        if groups is None:
            groups = self._with_service(lambda conn: self._find_groups(conn, user_dn, username))
        return self._identity(username, user_dn, attributes, groups)

    def close(self) -> None:
        """Unbind the pooled service connections; later calls fail as unavailable."""
        self._pool.close()

    # -- steps -----------------------------------------------------------------------------
    def _find_user(self, username: str) -> tuple[str, dict[str, list[str]]] | None:
        if self._user_dn_template is not None:
            user_dn = self._user_dn_template.format(username=escape_rdn_value(username))
            if self._bind_password is None:
                return user_dn, {}
            return self._with_service(
                lambda conn: self._search_one(conn, user_dn, "(objectClass=*)", BASE)
            )
        assert self._user_base is not None
        search_filter = self._user_filter.format(username=escape_filter_value(username))
        base = self._user_base
        return self._with_service(
            lambda conn: self._search_one(conn, base, search_filter, SUBTREE, username=username)
        )

    def _search_one(
        self,
        conn: Connection,
        base: str,
        search_filter: str,
        scope: str,
        *,
        username: str | None = None,
    ) -> tuple[str, dict[str, list[str]]] | None:
        """The one entry ``search_filter`` finds, ``None`` for none; refuses ambiguity."""
        entries, code = self._search(conn, base, search_filter, scope, self._user_attributes, 2)
        if code == _INVALID_DN_SYNTAX and scope == BASE:
            return None
        if code == _NO_SUCH_OBJECT:
            if scope == BASE:
                return None
            raise AuthenticatorUnavailable("LDAP", f"the search base {base} does not exist")
        if len(entries) > 1 or code == _SIZE_LIMIT_EXCEEDED:
            log.warning(
                "LDAP: user_filter matches several entries for %r under %s; refusing the login",
                username,
                base,
            )
            raise AuthenticationFailed(username or base)
        return entries[0] if entries else None

    def _user_bind(self, username: str, user_dn: str, password: str) -> Connection:
        """A connection bound as the user, or :class:`AuthenticationFailed`."""
        conn = self._connect(user_dn, password)
        try:
            ok = conn.bind()
        except LDAPInvalidDnError:
            _unbind(conn)
            raise AuthenticationFailed(username) from None
        except LDAPException as exc:
            _unbind(conn)
            raise self._unavailable(exc) from None
        except BaseException:
            _unbind(conn)
            raise
        if ok:
            return conn
        result = conn.result or {}
        code = result.get("result")
        _unbind(conn)
        if code in _UNAVAILABLE_RESULTS:
            raise AuthenticatorUnavailable(
                "LDAP", f"the server answered the bind with {_UNAVAILABLE_RESULTS[code]}"
            )
        if code != _INVALID_CREDENTIALS:
            log.info(
                "LDAP refused the bind of %r with %s", username, result.get("description", code)
            )
        raise AuthenticationFailed(username)

    def _find_groups(self, conn: Connection, user_dn: str, username: str) -> list[_Group]:
        if self._group_base is None:
            return []
        search_filter = self._group_filter.format(
            dn=escape_filter_value(user_dn), username=escape_filter_value(username)
        )
        entries, code = self._search(
            conn,
            self._group_base,
            search_filter,
            SUBTREE,
            [self._group_name_attribute],
            MAX_GROUPS,
        )
        if code == _NO_SUCH_OBJECT:
            raise AuthenticatorUnavailable(
                "LDAP", f"the group base {self._group_base} does not exist"
            )
        if code == _SIZE_LIMIT_EXCEEDED:
            log.warning(
                "LDAP: %r is in more than %d groups; reading the first", username, MAX_GROUPS
            )
        return [
            _Group(dn=dn, names=tuple(attrs.get(self._group_name_attribute.lower(), [])))
            for dn, attrs in entries
        ]

    def _identity(
        self,
        username: str,
        user_dn: str,
        attributes: dict[str, list[str]],
        groups: list[_Group],
    ) -> Identity:
        def first(attribute: str | None) -> str | None:
            if not attribute:
                return None
            values = attributes.get(attribute.lower()) or []
            return values[0] if values else None

        org_roles: dict[str, str] = {}
        for group in groups:
            for mapping in self._mappings:
                if _matches(mapping, group) and org_roles.get(mapping.org) != "admin":
                    org_roles[mapping.org] = mapping.role

        extra: dict[str, str] = {"dn": user_dn}
        country = first(self._country_attribute)
        if country:
            extra["country"] = country
        for key, attribute in (
            ("latitude", self._latitude_attribute),
            ("longitude", self._longitude_attribute),
        ):
            value = first(attribute)
            if value is None:
                continue
            limit = 90.0 if key == "latitude" else 180.0
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number) and -limit <= number <= limit:
                extra[key] = value.strip()
            else:
                log.warning("LDAP: ignoring %s %r of %s: not a coordinate", key, value, user_dn)

        return Identity(
            username=first(self._username_attribute) or username,
            source="ldap",
            display_name=first(self._display_name_attribute) or first("cn"),
            email=first(self._mail_attribute),
            groups=tuple(sorted(group.dn for group in groups)),
            org_roles=org_roles,
            attributes=extra,
        )

    # -- connections -----------------------------------------------------------------------
    def _connect(self, user: str | None, password: str | None) -> Connection:
        """An open (not yet bound) connection to the first server that answers."""
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self._ca_file)
        last: LDAPException | None = None
        for endpoint in self._endpoints:
            server = Server(
                endpoint.host,
                port=endpoint.port,
                use_ssl=endpoint.use_ssl,
                tls=tls,
                get_info=NONE,
                connect_timeout=self._connect_timeout,
            )
            conn = Connection(
                server,
                user=user,
                password=password,
                authentication=SIMPLE if user is not None else None,
                client_strategy=SYNC,
                auto_bind=False,
                raise_exceptions=False,
                read_only=True,
                auto_referrals=False,
                receive_timeout=self._receive_timeout,
                return_empty_attributes=False,
            )
            try:
                conn.open()
                if self._start_tls:
                    conn.start_tls()
                return conn
            except LDAPException as exc:
                _unbind(conn)
                last = exc
                log.warning(
                    "LDAP server %s cannot be used: %s",
                    endpoint.url,
                    _describe(exc, self._receive_timeout),
                )
        assert last is not None
        raise self._unavailable(last)

    def _open_service_connection(self) -> Connection:
        """A connection bound as the service account (or anonymous without one)."""
        password = self._bind_password.reveal() if self._bind_password else None
        conn = self._connect(self._bind_dn, password)
        try:
            ok = conn.bind()
        except LDAPException as exc:
            _unbind(conn)
            raise self._unavailable(exc) from None
        if not ok:
            result = conn.result or {}
            _unbind(conn)
            who = f"service account {self._bind_dn}" if self._bind_dn else "anonymous bind"
            raise AuthenticatorUnavailable(
                "LDAP", f"the {who} was refused: {result.get('description', 'unknown error')}"
            )
        return conn

    def _with_service(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work(conn)`` on a pooled service connection.

        A pooled connection may have been closed by the server since its last use (idle
        timeout, restart): a communication error on a reused connection is retried once on
        a fresh one.
        """
        for attempt in (1, 2):
            with self._pool.connection() as (conn, reused):
                try:
                    return work(conn)
                except _Dropped as dropped:
                    self._pool.discard(conn)
                    if reused and attempt == 1:
                        continue
                    raise self._unavailable(dropped.cause) from None
        raise AssertionError("unreachable")

    def _search(
        self,
        conn: Connection,
        base: str,
        search_filter: str,
        scope: str,
        attributes: list[str],
        limit: int,
    ) -> tuple[list[tuple[str, dict[str, list[str]]]], int]:
        """Entries as ``(dn, {lowercase attribute: [values]})`` and the result code."""
        try:
            conn.search(
                base,
                search_filter,
                search_scope=scope,
                attributes=attributes,
                size_limit=limit,
                time_limit=self._receive_timeout,
            )
        except LDAPInvalidDnError:
            return [], _INVALID_DN_SYNTAX
        except LDAPException as exc:
            raise _Dropped(exc) from None
        result = conn.result
        if result is None or conn.closed:
            raise _Dropped(LDAPSocketOpenError("the server closed the connection"))
        code = int(result.get("result", 80))
        if code in _UNAVAILABLE_RESULTS:
            raise AuthenticatorUnavailable(
                "LDAP", f"the server answered a search with {_UNAVAILABLE_RESULTS[code]}"
            )
        if code not in (0, _NO_SUCH_OBJECT, _SIZE_LIMIT_EXCEEDED, _INVALID_DN_SYNTAX):
            raise AuthenticatorUnavailable(
                "LDAP", f"a search under {base} failed: {result.get('description', code)}"
            )
        entries = []
        for item in conn.response or []:
            if item.get("type") != "searchResEntry":
                continue
            raw = item.get("attributes") or {}
            attrs = {
                str(key).lower(): [str(v) for v in (val if isinstance(val, list) else [val])]
                for key, val in raw.items()
            }
            entries.append((str(item["dn"]), attrs))
        return entries, code

    def _unavailable(self, exc: BaseException) -> AuthenticatorUnavailable:
        reason = _describe(exc, self._receive_timeout)
        urls = ", ".join(e.url for e in self._endpoints)
        log.warning("LDAP directory %s is unavailable: %s", urls, reason)
        return AuthenticatorUnavailable("LDAP", f"{urls}: {reason}")


# -- the service connection pool -----------------------------------------------------------
class _Dropped(Exception):
    """A communication failure on a connection (internal: triggers one retry)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _ConnectionPool:
    """At most ``size`` bound service connections, each lent to one thread at a time."""

    def __init__(self, factory: Callable[[], Connection], *, size: int, wait: float) -> None:
        self._factory = factory
        self._slots = threading.BoundedSemaphore(size)
        self._size = size
        self._wait = wait
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def connection(self) -> Iterator[tuple[Connection, bool]]:
        """Lend a connection and whether it was reused; broken ones must be discarded."""
        if self._closed:
            raise AuthenticatorUnavailable("LDAP", "the authenticator is closed")
        if not self._slots.acquire(timeout=self._wait):
            raise AuthenticatorUnavailable(
                "LDAP", f"all {self._size} service connections stayed busy for {self._wait:.0f} s"
            )
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            reused = conn is not None
            if conn is None:
                conn = self._factory()
            assert conn is not None
            try:
                yield conn, reused
            except BaseException:
                self.discard(conn)
                raise
            with self._lock:
                if not self._closed and not conn.closed:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                _unbind(conn)
        finally:
            self._slots.release()

    def discard(self, conn: Connection) -> None:
        """Close a connection that must not go back to the pool."""
        _unbind(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            _unbind(conn)


# -- helpers -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Group:
    dn: str
    names: tuple[str, ...]


def escape_filter_value(value: str) -> str:
    """Escape ``value`` for use inside an LDAP search filter (RFC 4515 3).

    ``*``, ``(``, ``)``, ``\\`` and NUL become ``\\XX`` hex escapes, so user input can only
    ever be matched literally.
    """
    out = []
    for char in value:
        if char in "*()\\\0":
            out.append(f"\\{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def escape_rdn_value(value: str) -> str:
    """Escape ``value`` for use as an attribute value in a DN (RFC 4514 2.4)."""
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in ',+"\\<>;=\0':
            out.append(f"\\{ord(char):02x}")
        elif (char == " " and index in (0, last)) or (char == "#" and index == 0):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def normalize_dn(dn: str) -> str:
    """A comparable form of ``dn``: types and values lower-cased, escapes decoded.

    Good enough for comparing group DNs from config with those the server returns (both
    use case-insensitive naming attributes in practice); not a full schema-aware match.
    """
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except LDAPInvalidDnError:
        return dn.strip().lower()
    rdns = []
    for attribute_type, value, separator in parts:
        rdns.append(f"{attribute_type.strip().lower()}={_unescape(value).strip().lower()}")
        rdns.append("+" if separator == "+" else ",")
    return "".join(rdns[:-1])


_HEX_ESCAPE = re.compile(r"\\([0-9a-fA-F]{2}|.)")


def _unescape(value: str) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(1)
        return chr(int(text, 16)) if len(text) == 2 else text

    return _HEX_ESCAPE.sub(replace, value)


def _matches(mapping: GroupMapping, group: _Group) -> bool:
    if mapping.is_dn:
        return normalize_dn(mapping.group) == normalize_dn(group.dn)
    wanted = mapping.group.casefold()
    return any(name.casefold() == wanted for name in group.names)


def _valid_username(username: str) -> bool:
    if not isinstance(username, str) or not username or len(username) > MAX_USERNAME_LENGTH:
        return False
    if username != username.strip():
        return False
    # Cc: control characters (NUL, newlines); Cf: invisible format characters such as
    # bidi overrides; Cs: lone surrogates that cannot be encoded.
    return not any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in username)


def _unbind(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.unbind()


# The readable part of an ssl error buried in ldap3's nested exception text.
_SSL_ERROR = re.compile(r"(\[SSL: \w+\][^(\'\"]*)")


def _describe(exc: BaseException, receive_timeout: float) -> str:
    """A short, secret-free reason for a connection failure."""
    text = str(exc)
    lowered = text.lower()
    if "doesn't match any name" in lowered or isinstance(exc, LDAPCertificateError):
        return "the server's TLS certificate does not name the host in the url"
    ssl_error = _SSL_ERROR.search(text)
    if "certificate" in lowered:
        detail = ssl_error.group(1).strip() if ssl_error else text
        return f"TLS certificate verification failed (check ca_file): {detail}"
    if isinstance(exc, LDAPStartTLSError):
        return f"StartTLS failed: {text}"
    if "refused" in lowered:
        return "connection refused (is the server running?)"
    if "timed out" in lowered or "timeout" in lowered or isinstance(exc, socket.timeout):
        return f"no answer within the timeout ({receive_timeout:g} s): {text}"
    if ssl_error or "ssl" in lowered or "tls" in lowered:
        return f"TLS failed: {ssl_error.group(1).strip() if ssl_error else text}"
    return text or type(exc).__name__


def _parse_url(url: str) -> _Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("ldap", "ldaps"):
        raise ConfigError(f"ldap: url {url!r} must start with ldap:// or ldaps://")
    if not parts.hostname:
        raise ConfigError(f"ldap: url {url!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
        raise ConfigError(f"ldap: url {url!r} must be just scheme://host[:port]")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"ldap: url {url!r} has a bad port") from None
    use_ssl = parts.scheme == "ldaps"
    return _Endpoint(
        url=f"{parts.scheme}://{parts.netloc}",
        host=parts.hostname,
        port=port or (636 if use_ssl else 389),
        use_ssl=use_ssl,
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_template(key: str, template: str, allowed: set[str], *, is_filter: bool) -> None:
    try:
        formatted = template.format(**{name: "x" for name in allowed})
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"ldap: {key} may only use the placeholders "
            f"{', '.join('{' + a + '}' for a in sorted(allowed))} ({exc})"
        ) from None
    if "{username}" not in template and key in ("user_filter", "user_dn_template"):
        raise ConfigError(f"ldap: {key} must contain {{username}}")
    if is_filter:
        depth = 0
        for char in formatted.replace("\\(", "").replace("\\)", ""):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                break
        if not (formatted.startswith("(") and formatted.endswith(")")) or depth != 0:
            raise ConfigError(f"ldap: {key} {template!r} is not a parenthesised LDAP filter")


def _string(opts: Mapping[str, Any], key: str) -> str | None:
    value = opts.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"ldap: {key} must be a string")
    return value or None


def _bool(opts: Mapping[str, Any], key: str, default: bool) -> bool:
    value = opts.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"ldap: {key} must be true or false")
    return value


def _number(opts: Mapping[str, Any], key: str) -> float:
    value = opts[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"ldap: {key} must be a number of seconds")
    return float(value)


def _mappings(raw: Any) -> list[GroupMapping]:
    if not isinstance(raw, list | tuple):
        raise ConfigError("ldap: group_mappings must be a list of {group, org, role} tables")
    mappings = []
    for index, item in enumerate(raw):
        where = f"ldap: group_mappings[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where} must be a table with group, org and role")
        unknown = sorted(set(item) - {"group", "org", "role"})
        if unknown:
            raise ConfigError(f"{where}: unknown option {unknown[0]!r}")
        group, org, role = item.get("group"), item.get("org"), item.get("role", "member")
        if not isinstance(group, str) or not group.strip():
            raise ConfigError(f"{where}.group must be a group DN or name")
        if not isinstance(org, str) or not org.strip():
            raise ConfigError(f"{where}.org must be an org name")
        if role not in ROLES:
            raise ConfigError(f"{where}.role must be one of {', '.join(ROLES)}, not {role!r}")
        mappings.append(GroupMapping(group=group.strip(), org=org.strip(), role=role))
    return mappings
