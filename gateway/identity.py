"""The identity service: turns credentials into principals, for every front end.

S3 (access keys, SigV4), WebDAV (HTTP Basic), the admin API (bearer tokens) and the CLI all
authenticate here, so one user is one principal with one set of rights everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.credentials import access_key_secret
from gateway.errors import AccessDenied
from gateway.principals import Principal, authenticate_password, principal_for_user

if TYPE_CHECKING:
    from catalog.api import Catalog
    from gateway.objects import Keyring


class UnknownAccessKey(AccessDenied):
    """Access denied: the access key {0} does not exist or was revoked"""

    code = "InvalidAccessKeyId"


class IdentityService:
    """Authentication for every front end."""

    def __init__(self, catalog: Catalog, keyring: Keyring) -> None:
        self.catalog = catalog
        self.keyring = keyring

    def authenticate_password(
        self, username: str, password: str, *, client: str | None = None
    ) -> Principal:
        """The principal for a user name and password (WebDAV Basic, API login).

        ``client`` is the caller's address, for throttling failed logins. Raises
        ``AccessDenied`` for a wrong user name or password.
        """
        return authenticate_password(self.catalog, username, password)

    def authenticate_access_key(self, access_key_id: str) -> tuple[Principal, str]:
        """The principal an S3 access key stands for, scoped to the key's org, and the
        key's secret (for the front end to verify the request signature).

        Raises :class:`UnknownAccessKey` for an unknown or revoked key.
        """
        key = self.catalog.get_access_key(access_key_id)
        if key is None or key.revoked_at is not None:
            raise UnknownAccessKey(access_key_id)
        org = self.catalog.get_org_by_id(key.org_id)
        if org is None:
            raise UnknownAccessKey(access_key_id)
        principal = principal_for_user(self.catalog, key.user_id, scope_org=org.name)
        return principal, access_key_secret(self.keyring, key)

    def close(self) -> None:
        """Release authenticator connections."""
