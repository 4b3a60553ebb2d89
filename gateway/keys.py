"""Operator key tasks: master key rotation and org identity export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from gateway.errors import NotFound

if TYPE_CHECKING:
    from gateway.app import Gateway


def rotate_master(gateway: Gateway) -> int:
    """Re-wrap every org identity under the current master key; return how many changed.

    Data is never touched: segments are sealed to org identities, which do not change. The
    keyring must still hold the previous master key so the old wrappings can be opened.
    Idempotent: an org already wrapped by the current key is skipped.
    """
    keyring = gateway.keyring
    changed = 0
    for org in gateway.catalog.list_orgs():
        if org.identity_key_id == keyring.key_id:
            continue
        identity = keyring.unwrap(org.identity_wrapped)
        gateway.catalog.set_org_identity(
            org.id, identity_wrapped=keyring.wrap(identity), key_id=keyring.key_id
        )
        refreshed = gateway.catalog.get_org_by_id(org.id)
        if refreshed is not None:
            gateway.objects.store_identity_blobs(refreshed)
        gateway.catalog.audit("operator", "keys.rotate_master", org_id=org.id)
        changed += 1
    gateway.objects.forget_identities()
    return changed


def export_org_identity(gateway: Gateway, org_name: str, out: TextIO, *, actor: str = "operator") -> None:
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
