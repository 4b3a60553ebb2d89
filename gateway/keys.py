"""Operator key tasks: master key rotation and org identity export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from gateway.credentials import ACCESS_KEY_CONTEXT
from gateway.errors import NotFound
from gateway.objects import ORG_IDENTITY_CONTEXT

if TYPE_CHECKING:
    from gateway.app import Gateway


def rotate_master(gateway: Gateway) -> int:
    """Re-wrap every org identity and S3 secret under the current master key; return how
    many values changed.

    Data is never touched: segments are sealed to org identities, which do not change. The
    keyring must still hold the previous master key so the old wrappings can be opened.
    Idempotent and resumable: a value already wrapped by the current key is skipped.
    """
    keyring = gateway.keyring
    catalog = gateway.catalog
    changed = 0
    for org in catalog.list_orgs():
        if org.identity_key_id == keyring.key_id:
            continue
        identity = keyring.unwrap(org.identity_wrapped, context=ORG_IDENTITY_CONTEXT)
        catalog.set_org_identity(
            org.id,
            identity_wrapped=keyring.wrap(identity, context=ORG_IDENTITY_CONTEXT),
            key_id=keyring.key_id,
        )
        refreshed = catalog.get_org_by_id(org.id)
        if refreshed is not None:
            gateway.objects.store_identity_blobs(refreshed)
        catalog.audit("operator", "keys.rotate_master", org_id=org.id)
        changed += 1
    for key in catalog.list_access_keys():
        if key.secret_key_id == keyring.key_id:
            continue
        secret = keyring.unwrap(key.secret_wrapped, context=ACCESS_KEY_CONTEXT)
        catalog.set_access_key_secret(
            key.access_key_id,
            secret_wrapped=keyring.wrap(secret, context=ACCESS_KEY_CONTEXT),
            secret_key_id=keyring.key_id,
        )
        changed += 1
    gateway.objects.forget_identities()
    return changed


def export_org_identity(
    gateway: Gateway, org_name: str, out: TextIO, *, actor: str = "operator"
) -> None:
    """Write the org's age identity file, so the org can decrypt without the gateway.

    The export is audit-logged; the identity itself never goes to a log.
    """
    org = gateway.catalog.get_org(org_name)
    if org is None:
        raise NotFound(f"org {org_name!r}")
    identity = gateway.objects.org_identity(org)
    out.write(f"# created: {datetime.now(UTC).isoformat(timespec='seconds')}\n")
    out.write(f"# org: {org.name}\n")
    out.write(f"# public key: {org.recipient}\n")
    out.write(identity + "\n")
    gateway.catalog.audit(actor, "keys.export", org_id=org.id)
