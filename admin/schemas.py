"""The API's JSON schema components (``#/components/schemas`` of the OpenAPI document).

Written as data: the router checks request bodies and parameters against these, the
document publishes them, and the tests validate every reply against them.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def obj(
    properties: dict[str, Schema],
    required: tuple[str, ...] | list[str] = (),
    *,
    additional: bool | Schema = False,
    description: str = "",
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    schema["additionalProperties"] = additional
    if description:
        schema["description"] = description
    return schema


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


def integer(**extra: Any) -> Schema:
    return {"type": "integer", **extra}


BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
USD: Schema = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "An amount in US dollars, as a decimal string.",
}
SIZE: Schema = {"type": "integer", "minimum": 0}
ORG_NAME: Schema = string(minLength=1, maxLength=64, description="An org name.")
BUCKET_NAME: Schema = string(minLength=1, maxLength=63, description="A bucket name.")
KEY: Schema = string(minLength=1, maxLength=1024, description="An object key (may hold '/').")
PREFIX: Schema = string(maxLength=1024, description="A key prefix ('' for everything).")
USER_NAME: Schema = string(minLength=1, maxLength=255)
ROLE: Schema = {"type": "string", "enum": ["admin", "member"]}
RIGHT: Schema = {
    "type": "string",
    "enum": ["read", "write", "delete", "archive", "restore", "manage", "all"],
}
RIGHT_NAME: Schema = {
    "type": "string",
    "enum": ["read", "write", "delete", "archive", "restore", "manage"],
}
STATE: Schema = {"type": "string", "enum": ["staged", "archived", "restoring", "restored"]}
TIER: Schema = {"type": "string", "enum": ["Bulk", "Standard"]}
STORAGE_CLASS: Schema = string(maxLength=32)
CURSOR: Schema = nullable(string(description="Pass as `cursor` to get the next page; null at the end."))


COMPONENTS: dict[str, Schema] = {
    "Error": obj(
        {
            "error": string(description="A stable error code (NoSuchKey, AccessDenied...)."),
            "message": string(),
            "field": string(description="The request field at fault, for a 400."),
        },
        ["error", "message"],
        description="Every error answer.",
    ),
    # -- auth ------------------------------------------------------------------------------
    "TokenRequest": obj(
        {
            "username": USER_NAME,
            "password": string(minLength=1, maxLength=1024),
            "ttl_seconds": integer(minimum=60, description="Shorter than the server's maximum."),
        },
        ["username", "password"],
    ),
    "Token": obj(
        {"token": string(), "expires_at": TIME, "user": string()},
        ["token", "expires_at", "user"],
    ),
    "OrgRights": obj(
        {
            "org": string(),
            "role": ROLE,
            "rights": array(RIGHT_NAME),
            "bucket_rights": {"type": "object", "additionalProperties": array(RIGHT_NAME)},
        },
        ["org", "role", "rights", "bucket_rights"],
    ),
    "Me": obj(
        {"user": string(), "operator": BOOL, "source": string(), "orgs": array(ref("OrgRights"))},
        ["user", "operator", "source", "orgs"],
    ),
    # -- objects ---------------------------------------------------------------------------
    "ObjectSummary": obj(
        {
            "key": string(),
            "size": SIZE,
            "etag": string(),
            "sha256": string(),
            "content_type": string(),
            "storage_class": string(),
            "state": STATE,
            "modified_at": TIME,
            "restore_expiry": nullable(TIME),
        },
        ["key", "size", "etag", "sha256", "content_type", "storage_class", "state",
         "modified_at", "restore_expiry"],
    ),
    "ObjectList": obj(
        {
            "org": string(),
            "bucket": string(),
            "objects": array(ref("ObjectSummary")),
            "prefixes": array(string(), description="Common prefixes (with a delimiter)."),
            "next_cursor": CURSOR,
            "scanned": integer(minimum=0, description="Catalog rows this page looked at."),
        },
        ["org", "bucket", "objects", "prefixes", "next_cursor", "scanned"],
    ),
    "Compression": obj(
        {"algorithm": string(), "plain_bytes": SIZE, "sealed_bytes": SIZE, "ratio": {"type": "number"}},
        ["algorithm", "plain_bytes", "sealed_bytes", "ratio"],
    ),
    "Encryption": obj(
        {
            "scheme": string(),
            "keys": {"type": "string", "enum": ["managed", "vault", "customer"]},
            "recipients": array(string()),
        },
        ["scheme", "keys", "recipients"],
    ),
    "ObjectInfo": obj(
        {
            "org": string(),
            "bucket": string(),
            "key": string(),
            "size": SIZE,
            "etag": string(),
            "sha256": string(),
            "content_type": string(),
            "storage_class": string(),
            "state": STATE,
            "created_at": TIME,
            "modified_at": TIME,
            "last_access": nullable(TIME),
            "restore_expiry": nullable(TIME),
            "region": string(),
            "segments": integer(minimum=0),
            "compression": ref("Compression"),
            "encryption": ref("Encryption"),
            "metadata": {"type": "object", "additionalProperties": string()},
        },
        ["org", "bucket", "key", "size", "etag", "sha256", "content_type", "storage_class",
         "state", "created_at", "modified_at", "last_access", "restore_expiry", "region",
         "segments", "compression", "encryption", "metadata"],
    ),
    "ObjectRef": obj(
        {"org": ORG_NAME, "bucket": BUCKET_NAME, "key": KEY},
        ["bucket", "key"],
    ),
    "CopyRequest": obj(
        {
            "org": ORG_NAME,
            "bucket": BUCKET_NAME,
            "key": KEY,
            "destination": ref("ObjectRef"),
            "storage_class": {"type": "string", "enum": ["STANDARD", "DEEP_ARCHIVE"]},
        },
        ["org", "bucket", "key", "destination"],
    ),
    "MoveRequest": obj(
        {
            "org": ORG_NAME,
            "bucket": BUCKET_NAME,
            "key": KEY,
            "prefix": string(minLength=1, maxLength=1024),
            "destination": obj(
                {"bucket": BUCKET_NAME, "key": KEY, "prefix": string(maxLength=1024)},
                ["bucket"],
            ),
            "overwrite": BOOL,
        },
        ["org", "bucket", "destination"],
        description="Move one object (`key`, to `destination.key`) or a folder (`prefix`, "
        "to `destination.prefix`).",
    ),
    "MoveResult": obj(
        {"moved": integer(minimum=0), "object": nullable(ref("ObjectInfo"))},
        ["moved", "object"],
    ),
    "StorageModeRequest": obj(
        {
            "org": ORG_NAME,
            "bucket": BUCKET_NAME,
            "key": KEY,
            "prefix": string(maxLength=1024),
            "mode": {"type": "string", "enum": ["archive", "pin", "unpin"]},
        },
        ["org", "bucket", "mode"],
        description="The target is one object (`key`) or a folder (`prefix`).",
    ),
    "StorageModeResult": obj(
        {
            "mode": string(),
            "org": string(),
            "bucket": string(),
            "target": string(),
            "kind": {"type": "string", "enum": ["object", "prefix"]},
            "archived_objects": integer(minimum=0),
            "failures": integer(minimum=0),
            "keep_hot": array(string(), description="The bucket's keep-hot rules after the change."),
            "detail": string(),
        },
        ["mode", "org", "bucket", "target", "kind", "archived_objects", "failures",
         "keep_hot", "detail"],
    ),
    "SealedSegment": obj(
        {
            "part_number": integer(minimum=1),
            "sealed_size": SIZE,
            "plain_size": SIZE,
            "sha256": string(),
            "md5": string(),
            "header_mac": string(description="Base64 of the age header MAC recorded at write."),
            "url": string(),
        },
        ["part_number", "sealed_size", "plain_size", "sha256", "md5", "header_mac", "url"],
    ),
    "SealedManifest": obj(
        {
            "org": string(),
            "bucket": string(),
            "key": string(),
            "size": SIZE,
            "etag": string(),
            "sha256": string(),
            "content_type": string(),
            "vault": BOOL,
            "recipients": array(string()),
            "segments": array(ref("SealedSegment")),
        },
        ["org", "bucket", "key", "size", "etag", "sha256", "content_type", "vault",
         "recipients", "segments"],
    ),
    # -- uploads ---------------------------------------------------------------------------
    "UploadCreate": obj(
        {
            "org": ORG_NAME,
            "bucket": BUCKET_NAME,
            "key": KEY,
            "content_type": string(minLength=1, maxLength=255),
            "storage_class": {"type": "string", "enum": ["STANDARD", "DEEP_ARCHIVE"]},
        },
        ["org", "bucket", "key"],
    ),
    "Part": obj(
        {"part_number": integer(minimum=1), "size": SIZE, "etag": string(), "sha256": string(),
         "created_at": TIME},
        ["part_number", "size", "etag", "sha256", "created_at"],
    ),
    "Upload": obj(
        {
            "upload_id": string(),
            "org": string(),
            "bucket": string(),
            "key": string(),
            "content_type": string(),
            "storage_class": string(),
            "created_at": TIME,
            "min_part_size": integer(minimum=1),
            "max_parts": integer(minimum=1),
            "parts": array(ref("Part")),
        },
        ["upload_id", "org", "bucket", "key", "content_type", "storage_class", "created_at",
         "min_part_size", "max_parts", "parts"],
    ),
    "UploadList": obj(
        {"uploads": array(ref("Upload")), "next_cursor": CURSOR},
        ["uploads", "next_cursor"],
    ),
    "UploadComplete": obj(
        {
            "parts": array(
                obj({"part_number": integer(minimum=1, maximum=10000), "etag": string(minLength=1)},
                    ["part_number", "etag"]),
                minItems=1,
                maxItems=10000,
            ),
        },
        description="Without `parts`, every received part in order.",
    ),
    # -- restores --------------------------------------------------------------------------
    "CopyDestination": obj({"bucket": BUCKET_NAME, "prefix": string(maxLength=1024)}, ["bucket"]),
    "RestoreRequest": obj(
        {
            "org": ORG_NAME,
            "bucket": BUCKET_NAME,
            "key": KEY,
            "prefix": string(maxLength=1024),
            "priority": TIER,
            "days": integer(minimum=1, maximum=365),
            "destination": {
                "anyOf": [{"type": "string", "enum": ["download"]}, ref("CopyDestination")]
            },
            "dry_run": BOOL,
        },
        ["org", "bucket"],
        description="The target is one object (`key`) or a folder (`prefix`).",
    ),
    "RestoreProgress": obj(
        {
            "objects_done": integer(minimum=0),
            "objects_total": integer(minimum=0),
            "bytes_done": integer(minimum=0),
            "bytes_total": integer(minimum=0),
            "objects_copied": integer(minimum=0),
            "objects_failed": integer(minimum=0),
        },
        ["objects_done", "objects_total", "bytes_done", "bytes_total", "objects_copied",
         "objects_failed"],
    ),
    "Download": obj(
        {"url": string(), "sealed": BOOL, "expires_at": nullable(TIME)},
        ["url", "sealed", "expires_at"],
    ),
    "RestoreJob": obj(
        {
            "restore_id": nullable(integer(minimum=1)),
            "org": string(),
            "bucket": string(),
            "kind": {"type": "string", "enum": ["object", "prefix"]},
            "target": string(),
            "priority": TIER,
            "days": integer(minimum=1),
            "destination": {
                "anyOf": [{"type": "string", "enum": ["download"]}, ref("CopyDestination")]
            },
            "status": {
                "type": "string",
                "enum": ["quoted", "running", "ready", "copying", "done", "failed", "expired"],
            },
            "quote_usd": nullable(USD),
            "budget_left_usd": nullable(USD),
            "objects": integer(minimum=0),
            "bytes": integer(minimum=0),
            "progress": ref("RestoreProgress"),
            "requested_by": string(),
            "requested_at": nullable(TIME),
            "download": nullable(ref("Download")),
            "objects_url": nullable(string()),
            "error": nullable(string()),
        },
        ["restore_id", "org", "bucket", "kind", "target", "priority", "days", "destination",
         "status", "quote_usd", "budget_left_usd", "objects", "bytes", "progress",
         "requested_by", "requested_at", "download", "objects_url", "error"],
    ),
    "RestoreList": obj(
        {"restores": array(ref("RestoreJob")), "next_cursor": CURSOR},
        ["restores", "next_cursor"],
    ),
    "RestoreItem": obj(
        {
            "key": string(),
            "size": SIZE,
            "state": string(),
            "item_state": string(),
            "error": nullable(string()),
            "download_url": nullable(string()),
        },
        ["key", "size", "state", "item_state", "error", "download_url"],
    ),
    "RestoreItems": obj(
        {"restore_id": integer(minimum=1), "items": array(ref("RestoreItem")), "next_cursor": CURSOR},
        ["restore_id", "items", "next_cursor"],
    ),
    # -- usage -----------------------------------------------------------------------------
    "UsagePoint": obj(
        {
            "period": TIME,
            "user": nullable(string()),
            "action": string(),
            "count": integer(minimum=0),
            "bytes": integer(minimum=0),
        },
        ["period", "user", "action", "count", "bytes"],
    ),
    "StorageClassUsage": obj(
        {"storage_class": string(), "objects": integer(minimum=0), "bytes": integer(minimum=0)},
        ["storage_class", "objects", "bytes"],
    ),
    "Usage": obj(
        {
            "org": string(),
            "granularity": {"type": "string", "enum": ["hour", "day"]},
            "since": TIME,
            "until": TIME,
            "user": nullable(string()),
            "bucket": nullable(string()),
            "stored_bytes": integer(minimum=0),
            "quota_bytes": nullable(integer(minimum=0)),
            "storage": array(ref("StorageClassUsage")),
            "series": array(ref("UsagePoint")),
            "totals": {
                "type": "object",
                "additionalProperties": obj(
                    {"count": integer(minimum=0), "bytes": integer(minimum=0)}, ["count", "bytes"]
                ),
            },
        },
        ["org", "granularity", "since", "until", "user", "bucket", "stored_bytes",
         "quota_bytes", "storage", "series", "totals"],
    ),
    # -- orgs, members, grants, quotas -----------------------------------------------------
    "Org": obj(
        {
            "name": string(),
            "created_at": TIME,
            "role": nullable(ROLE),
            "quota_bytes": nullable(integer(minimum=0)),
            "stored_bytes": integer(minimum=0),
            "recipient": string(),
        },
        ["name", "created_at", "role", "quota_bytes", "stored_bytes", "recipient"],
    ),
    "OrgList": obj({"orgs": array(ref("Org"))}, ["orgs"]),
    "OrgCreate": obj({"name": ORG_NAME}, ["name"]),
    "Member": obj({"user": string(), "role": ROLE}, ["user", "role"]),
    "MemberList": obj({"org": string(), "members": array(ref("Member"))}, ["org", "members"]),
    "MemberPut": obj({"role": ROLE}, ["role"]),
    "Grant": obj(
        {"org": string(), "user": string(), "bucket": nullable(string()), "rights": array(RIGHT_NAME)},
        ["org", "user", "bucket", "rights"],
    ),
    "GrantList": obj({"grants": array(ref("Grant"))}, ["grants"]),
    "GrantRequest": obj(
        {"user": USER_NAME, "rights": array(RIGHT, minItems=1), "bucket": BUCKET_NAME},
        ["user", "rights"],
    ),
    "GrantRevoked": obj({"grant": nullable(ref("Grant"))}, ["grant"]),
    "Quota": obj(
        {
            "org": string(),
            "quota_bytes": nullable(integer(minimum=0)),
            "stored_bytes": integer(minimum=0),
            "free_bytes": nullable(integer(minimum=0)),
        },
        ["org", "quota_bytes", "stored_bytes", "free_bytes"],
    ),
    "QuotaPut": obj({"quota_bytes": nullable(integer(minimum=0))}, ["quota_bytes"]),
    "OrgSettings": obj(
        {
            "org": string(),
            "restore_on_read": BOOL,
            "restore_tier": TIER,
            "restore_budget_usd": nullable(USD),
            "restore_spent_usd": USD,
        },
        ["org", "restore_on_read", "restore_tier", "restore_budget_usd", "restore_spent_usd"],
    ),
    "OrgSettingsPatch": obj(
        {
            "restore_on_read": BOOL,
            "restore_tier": TIER,
            "restore_budget_usd": {
                "anyOf": [USD, {"type": "number", "minimum": 0}, {"type": "null"}],
                "description": "Monthly cap in USD; null removes it.",
            },
        }
    ),
    # -- keys ------------------------------------------------------------------------------
    "AccessKey": obj(
        {
            "access_key_id": string(),
            "user": string(),
            "org": string(),
            "created_at": TIME,
            "revoked_at": nullable(TIME),
        },
        ["access_key_id", "user", "org", "created_at", "revoked_at"],
    ),
    "AccessKeyList": obj({"keys": array(ref("AccessKey"))}, ["keys"]),
    "AccessKeyCreate": obj({"org": ORG_NAME, "user": USER_NAME}, ["org"]),
    "AccessKeySecret": obj(
        {
            "access_key_id": string(),
            "secret_access_key": string(description="Shown once."),
            "user": string(),
            "org": string(),
            "created_at": TIME,
        },
        ["access_key_id", "secret_access_key", "user", "org", "created_at"],
    ),
    # -- tiering policies ------------------------------------------------------------------
    "PolicyRules": obj(
        {
            "enabled": BOOL,
            "transition_after": {
                "anyOf": [{"type": "number", "minimum": 0}, string(pattern=r"^\s*\d+(\.\d+)?\s*[smhdw]?\s*$")],
                "description": "Seconds, or a duration such as 12h or 7d.",
            },
            "basis": {"type": "string", "enum": ["write", "access"]},
            "min_size": integer(minimum=0),
            "max_size": integer(minimum=0),
            "include": array(string(minLength=1)),
            "exclude": array(string(minLength=1)),
            "keep_hot": array(string(minLength=1)),
            "preset": {"type": "string", "enum": ["", "restic", "kopia"]},
        },
        description="Tiering rules; keys left out inherit from the org, then the config.",
    ),
    "Policy": obj(
        {
            "org": string(),
            "bucket": nullable(string()),
            "rules": {"type": "object"},
            "effective": {"type": "object"},
        },
        ["org", "bucket", "rules", "effective"],
    ),
    # -- buckets ---------------------------------------------------------------------------
    "Bucket": obj(
        {
            "org": string(),
            "name": string(),
            "region": string(),
            "created_at": TIME,
            "vault": BOOL,
            "vault_recipient": nullable(string()),
            "retention_days": nullable(integer(minimum=0)),
        },
        ["org", "name", "region", "created_at", "vault", "vault_recipient", "retention_days"],
    ),
    "BucketList": obj({"org": string(), "buckets": array(ref("Bucket"))}, ["org", "buckets"]),
    "BucketCreate": obj(
        {
            "name": BUCKET_NAME,
            "region": string(minLength=1, maxLength=64),
            "vault_recipient": string(pattern="^age1", maxLength=255,
                                      description="An age recipient: makes a vault bucket."),
        },
        ["name"],
    ),
    "BucketPatch": obj(
        {"retention_days": nullable(integer(minimum=0, maximum=36500))},
        ["retention_days"],
    ),
    # -- regions ---------------------------------------------------------------------------
    "Region": obj(
        {
            "code": string(),
            "name": string(),
            "backend": string(),
            "bucket": string(),
            "latitude": nullable({"type": "number"}),
            "longitude": nullable({"type": "number"}),
            "countries": array(string()),
            "prices": nullable({"type": "object"}),
            "source": string(),
        },
        ["code", "name", "backend", "bucket", "latitude", "longitude", "countries", "prices",
         "source"],
    ),
    "RegionList": obj({"regions": array(ref("Region"))}, ["regions"]),
    "RegionPut": obj(
        {
            "name": string(maxLength=255),
            "backend": string(minLength=1, maxLength=64),
            "bucket": string(maxLength=255),
            "latitude": nullable({"type": "number", "minimum": -90, "maximum": 90}),
            "longitude": nullable({"type": "number", "minimum": -180, "maximum": 180}),
            "countries": array(string(pattern="^[A-Za-z]{2}$")),
            "prices": nullable({"type": "object"}),
        },
        ["backend"],
    ),
    # -- audit and users -------------------------------------------------------------------
    "AuditEntry": obj(
        {
            "id": integer(minimum=1),
            "at": TIME,
            "actor": string(),
            "action": string(),
            "org": nullable(string()),
            "details": {"type": "object"},
        },
        ["id", "at", "actor", "action", "org", "details"],
    ),
    "AuditPage": obj(
        {"entries": array(ref("AuditEntry")), "next_cursor": CURSOR},
        ["entries", "next_cursor"],
    ),
    "User": obj(
        {
            "name": string(),
            "source": string(),
            "operator": BOOL,
            "disabled": BOOL,
            "orgs": array(obj({"org": string(), "role": ROLE}, ["org", "role"])),
        },
        ["name", "source", "operator", "disabled", "orgs"],
    ),
    "UserList": obj({"users": array(ref("User"))}, ["users"]),
    "UserCreate": obj(
        {
            "name": USER_NAME,
            "password": nullable(string(minLength=1, maxLength=1024)),
            "org": ORG_NAME,
            "role": ROLE,
            "operator": BOOL,
        },
        ["name"],
    ),
    "UserPatch": obj({"password": string(minLength=1, maxLength=1024), "disabled": BOOL}),
}
