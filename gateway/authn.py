"""Authenticators: who a user name and password belong to.

Authenticators are chained in the configured order (for example ``["local", "ldap"]``).
Each answers one of three ways:

- an :class:`Identity` when it knows the user and the password is right;
- ``None`` when it does not know the user, so the next authenticator is asked;
- :class:`AuthenticationFailed` when it knows the user and the password is wrong, which ends
  the chain (a wrong LDAP password must not fall through to a local user of the same name).

An authenticator whose server is unreachable raises :class:`AuthenticatorUnavailable`; the
chain logs it and asks the next one, so a local admin can still log in while LDAP is down.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from gateway.errors import AccessDenied, CoolStorageError


class AuthenticationFailed(AccessDenied):
    """Access denied: wrong user name or password"""

    code = "AccessDenied"


class AuthenticatorUnavailable(CoolStorageError):
    """The {0} directory cannot be reached: {1}"""

    code = "AuthenticatorUnavailable"
    http_status = 503
    retryable = True


@dataclass(frozen=True)
class Identity:
    """A user as an authenticator vouches for them.

    ``org_roles`` maps org names to ``admin`` or ``member`` (from LDAP group mapping, or empty
    for a local user, whose memberships live in the catalog). ``attributes`` carries profile
    data other parts use, such as ``country`` or ``latitude``/``longitude`` for placement.
    """

    username: str
    source: str
    display_name: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    org_roles: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


class Authenticator(ABC):
    """One source of users (local catalog users, an LDAP directory, Seafile)."""

    #: The name used in config (``identity.authenticators = ["local", "ldap"]``).
    name: str

    @abstractmethod
    def authenticate(self, username: str, password: str) -> Identity | None:
        """Check ``password`` for ``username`` (see the module docstring for the answers).

        Must compare secrets in constant time and never log the password.
        """

    def close(self) -> None:  # noqa: B027 - optional hook; most authenticators hold nothing
        """Release connections."""
