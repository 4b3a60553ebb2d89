"""First start: a local admin and an S3 access key, so a newcomer can connect at once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from catalog.records import ROLE_ADMIN
from gateway.credentials import create_access_key
from gateway.errors import AlreadyExists
from gateway.principals import hash_password

if TYPE_CHECKING:
    from gateway.app import Gateway

FIRST_ADMIN = "admin"
FIRST_ORG = "default"


@dataclass(frozen=True)
class FirstAdmin:
    """Credentials created at first start; printed once and never stored in clear."""

    user: str
    password: str
    org: str
    access_key_id: str
    secret_access_key: str


def ensure_first_admin(gateway: Gateway) -> FirstAdmin | None:
    """Create the first admin when the catalog has no user yet; else return None.

    Two replicas starting together race on the user's unique name: the loser gets
    ``AlreadyExists`` and returns None.
    """
    catalog = gateway.catalog
    if catalog.list_users():
        return None
    password = secrets.token_urlsafe(18)
    try:
        user = catalog.create_user(
            FIRST_ADMIN, password_hash=hash_password(password), is_operator=True
        )
    except AlreadyExists:
        return None
    org = gateway.objects.ensure_org(FIRST_ORG)
    catalog.add_membership(org.id, user.id, ROLE_ADMIN)
    key, secret = create_access_key(catalog, gateway.keyring, user_id=user.id, org_id=org.id)
    catalog.audit("system", "bootstrap.first_admin", org_id=org.id, user=user.name)
    return FirstAdmin(
        user=user.name,
        password=password,
        org=org.name,
        access_key_id=key.access_key_id,
        secret_access_key=secret,
    )
