"""S3 access keys: generated here, secrets stored wrapped by the master key.

SigV4 needs the secret itself to recompute a signature, so it cannot be stored as a hash;
it is wrapped (AES-256-GCM) by the operator's master key instead and unwrapped per lookup.
"""

from __future__ import annotations

import secrets
import string
from typing import TYPE_CHECKING

from catalog.records import AccessKey

if TYPE_CHECKING:
    from catalog.api import Catalog
    from gateway.objects import Keyring

#: Master-key wrapping context of access key secrets (docs/FORMAT.md, Keys).
ACCESS_KEY_CONTEXT = b"access-key-secret"

_ID_ALPHABET = string.ascii_uppercase + string.digits


def new_access_key_id() -> str:
    """A 20-character id shaped like AWS's (``CS`` and 18 random characters)."""
    return "CS" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(18))


def new_secret_access_key() -> str:
    """40 random characters, as AWS secrets are."""
    return secrets.token_urlsafe(30)[:40]


def create_access_key(
    catalog: Catalog, keyring: Keyring, *, user_id: int, org_id: int
) -> tuple[AccessKey, str]:
    """Create a key for ``user_id`` in ``org_id``; return it and its secret (shown once)."""
    secret = new_secret_access_key()
    key = catalog.create_access_key(
        new_access_key_id(),
        user_id=user_id,
        org_id=org_id,
        secret_wrapped=keyring.wrap(secret.encode(), context=ACCESS_KEY_CONTEXT),
        secret_key_id=keyring.key_id,
    )
    return key, secret


def access_key_secret(keyring: Keyring, key: AccessKey) -> str:
    """The plain secret of ``key`` (for signature checks only; never logged)."""
    return keyring.unwrap(key.secret_wrapped, context=ACCESS_KEY_CONTEXT).decode()

