"""What the API's handlers share: the gateway, the one access check, and renderers.

Access is decided by :func:`gateway.principals.authorize` (data and org settings) and by the
identity service's admin methods (users, members, grants, quotas, keys): the handlers never
decide on their own. Renderers turn records into the JSON the schema components describe.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from admin.validation import ValidationError
from gateway.errors import AccessDenied, BucketNotFound, NotFound
from gateway.principals import NO_ACCESS, Action, Principal, authorize

if TYPE_CHECKING:
    from admin.restores import RestoreJobs
    from catalog.records import Bucket, Org
    from gateway.app import Gateway
    from gateway.objects import ObjectView


class ApiServices:
    """The gateway and the API's own services, shared by every request thread."""

    def __init__(self, gateway: Gateway) -> None:
        from admin.restores import RestoreJobs

        self.gateway = gateway
        self.restores: RestoreJobs = RestoreJobs(gateway)

    @property
    def catalog(self) -> Any:
        return self.gateway.catalog

    @property
    def objects(self) -> Any:
        return self.gateway.objects

    @property
    def identity(self) -> Any:
        return self.gateway.identity

    # -- access --------------------------------------------------------------------------
    def org(
        self,
        principal: Principal,
        org_name: str,
        action: Action,
        bucket: str | None = None,
        *,
        operator_ok: bool = False,
    ) -> Org:
        """The org, if ``principal`` may do ``action`` there (in ``bucket``); operators too
        when ``operator_ok`` (administration across orgs). Denials never reveal whether
        the org exists."""
        if operator_ok and principal.is_operator:
            found = self.catalog.get_org(org_name)
            if found is None:
                raise NotFound(f"org {org_name}")
            return found  # type: ignore[no-any-return]
        org = self.catalog.get_org(org_name) if principal.role_in(org_name) else None
        authorize(principal, action, org, bucket)
        assert org is not None
        return org  # type: ignore[no-any-return]

    def member_org(self, principal: Principal, org_name: str, *, operator_ok: bool = True) -> Org:
        """The org if the principal belongs to it (any role), or is an operator."""
        if operator_ok and principal.is_operator:
            return self.org(principal, org_name, Action.READ, operator_ok=True)
        org = self.catalog.get_org(org_name) if principal.role_in(org_name) else None
        if org is None:
            raise AccessDenied(NO_ACCESS)
        return org  # type: ignore[no-any-return]

    def bucket(self, org: Org, name: str) -> Bucket:
        found = self.catalog.get_bucket(org.id, name)
        if found is None:
            raise BucketNotFound(name)
        return found  # type: ignore[no-any-return]


# -- rendering ---------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def object_url(org: str, bucket: str, key: str, *, kind: str = "objects") -> str:
    """The API path of an object (``kind``: ``objects`` for the content, ``metadata``,
    ``sealed``)."""
    return f"/api/v1/{kind}/{quote(org, safe='')}/{quote(bucket, safe='')}/{quote(key, safe='/')}"


def object_summary(view: ObjectView) -> dict[str, Any]:
    record = view.record
    return {
        "key": record.key,
        "size": record.size,
        "etag": record.etag,
        "sha256": record.sha256,
        "content_type": record.content_type,
        "storage_class": view.storage_class,
        "state": view.state,
        "modified_at": iso(record.modified_at),
        "restore_expiry": iso(view.restore_expiry),
    }


def object_info(view: ObjectView, org: Org, bucket: Bucket) -> dict[str, Any]:
    """An object with where and how it is stored (the view's record must carry segments)."""
    record = view.record
    sealed = sum(s.sealed_size for s in record.segments)
    recipients = sorted({r for s in record.segments for r in s.recipient.split(",") if r})
    if record.sse_recipient is not None:
        keys = "customer"
    elif bucket.vault_recipient is not None and org.recipient not in recipients:
        keys = "vault"
    else:
        keys = "managed"
    info = object_summary(view)
    info.update(
        {
            "org": org.name,
            "bucket": bucket.name,
            "created_at": iso(record.created_at),
            "last_access": iso(record.last_access),
            "region": bucket.region,
            "segments": len(record.segments),
            "compression": {
                "algorithm": "zstd (seekable)",
                "plain_bytes": record.size,
                "sealed_bytes": sealed,
                "ratio": round(record.size / sealed, 4) if sealed else 0.0,
            },
            "encryption": {
                "scheme": "age (X25519, ChaCha20-Poly1305)",
                "keys": keys,
                "recipients": recipients,
            },
            "metadata": dict(record.user_metadata),
        }
    )
    return info


def org_json(org: Org, principal: Principal) -> dict[str, Any]:
    return {
        "name": org.name,
        "created_at": iso(org.created_at),
        "role": principal.role_in(org.name),
        "quota_bytes": org.quota_bytes,
        "stored_bytes": org.stored_bytes,
        "recipient": org.recipient,
    }


def bucket_json(org: Org, bucket: Bucket) -> dict[str, Any]:
    retention = bucket.settings.get("retention_days")
    return {
        "org": org.name,
        "name": bucket.name,
        "region": bucket.region,
        "created_at": iso(bucket.created_at),
        "vault": bucket.vault_recipient is not None,
        "vault_recipient": bucket.vault_recipient,
        "retention_days": retention if isinstance(retention, int) else None,
    }


# -- cursors -----------------------------------------------------------------------------------


def encode_cursor(value: Mapping[str, Any]) -> str:
    """An opaque page cursor (base64url of a small JSON object)."""
    raw = json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None, field: str = "query.cursor") -> dict[str, Any] | None:
    """The object behind a cursor from :func:`encode_cursor`; a 400 for anything else."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError(field, "not a cursor this API handed out") from None
    if not isinstance(value, dict):
        raise ValidationError(field, "not a cursor this API handed out")
    return value
