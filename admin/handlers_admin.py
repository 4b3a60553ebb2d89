"""Administration: orgs, members, grants, quotas, S3 access keys, org settings (restore on
read, restore budget), tiering and keep-hot policies, buckets and their retention, regions,
users and the audit log.

Each call goes through the identity layer's decision point: the identity service's admin
methods (users, orgs, members, grants, quotas, keys) or :func:`gateway.principals.authorize`
(settings, policies, buckets). Org admins manage their orgs; operators every org, regions
and users.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from admin.api import Reply, Request
from admin.service import bucket_json, decode_cursor, encode_cursor, iso, org_json
from admin.validation import ValidationError
from gateway.errors import AccessDenied, InvalidArgument, NotFound
from gateway.principals import Action

if TYPE_CHECKING:
    from catalog.identity import UserFacts
    from catalog.placement import RegionRecord


# -- orgs ------------------------------------------------------------------------------------


def list_orgs(req: Request) -> Reply:
    """``GET /orgs``: every org for an operator, else the caller's orgs."""
    orgs = req.services.identity.list_orgs(req.principal)
    return Reply(200, {"orgs": [org_json(o, req.principal) for o in orgs]})


def create_org(req: Request) -> Reply:
    """``POST /orgs``: a new org with its keys (operators)."""
    org = req.services.identity.create_org(req.principal, req.body["name"])
    return Reply(201, org_json(org, req.principal))


def get_org(req: Request) -> Reply:
    """``GET /orgs/{org}``: one org (its members and operators)."""
    org = req.services.member_org(req.principal, req.params["org"])
    return Reply(200, org_json(org, req.principal))


# -- members ---------------------------------------------------------------------------------


def list_members(req: Request) -> Reply:
    """``GET /orgs/{org}/members`` (org admins, operators)."""
    org = req.params["org"]
    members = req.services.identity.members(req.principal, org)
    return Reply(200, {"org": org, "members": [{"user": u, "role": r} for u, r in members]})


def put_member(req: Request) -> Reply:
    """``PUT /orgs/{org}/members/{user}``: add a user, or change their role."""
    p = req.params
    req.services.identity.add_member(req.principal, p["org"], p["user"], role=req.body["role"])
    return Reply(200, {"user": p["user"], "role": req.body["role"]})


def delete_member(req: Request) -> Reply:
    """``DELETE /orgs/{org}/members/{user}``: remove a member and their grants there."""
    p = req.params
    if not req.services.identity.remove_member(req.principal, p["org"], p["user"]):
        raise NotFound(f"{p['user']} is not a member of org {p['org']}")
    return Reply(204)


# -- grants ----------------------------------------------------------------------------------


def _grant_json(grant: Any) -> dict[str, Any]:
    return {"org": grant.org, "user": grant.user, "bucket": grant.bucket, "rights": list(grant.rights)}


def list_grants(req: Request) -> Reply:
    """``GET /orgs/{org}/grants`` (optionally of one ``user``)."""
    p = req.params
    grants = req.services.identity.list_grants(req.principal, p["org"], user_name=p.get("user"))
    return Reply(200, {"grants": [_grant_json(g) for g in grants]})


def add_grant(req: Request) -> Reply:
    """``POST /orgs/{org}/grants``: grant rights to a member, org-wide or in one bucket."""
    b = req.body
    grant = req.services.identity.grant(
        req.principal, req.params["org"], b["user"], b["rights"], bucket=b.get("bucket")
    )
    return Reply(201, _grant_json(grant))


def revoke_grant(req: Request) -> Reply:
    """``POST /orgs/{org}/grants/revoke``: take granted rights away; what is left."""
    b = req.body
    left = req.services.identity.revoke_grant(
        req.principal, req.params["org"], b["user"], b["rights"], bucket=b.get("bucket")
    )
    return Reply(200, {"grant": _grant_json(left) if left is not None else None})


# -- quotas ----------------------------------------------------------------------------------


def _quota_json(usage: Any) -> dict[str, Any]:
    return {
        "org": usage.org_name,
        "quota_bytes": usage.quota_bytes,
        "stored_bytes": max(0, usage.stored_bytes),
        "free_bytes": usage.free_bytes,
    }


def get_quota(req: Request) -> Reply:
    """``GET /orgs/{org}/quota``: stored bytes against the quota (any member)."""
    return Reply(200, _quota_json(req.services.identity.quota_usage(req.principal, req.params["org"])))


def put_quota(req: Request) -> Reply:
    """``PUT /orgs/{org}/quota``: set the quota in bytes (null removes it)."""
    usage = req.services.identity.set_quota(
        req.principal, req.params["org"], req.body["quota_bytes"]
    )
    return Reply(200, _quota_json(usage))


# -- org settings ----------------------------------------------------------------------------


def _settings_json(req: Request, org: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    from tiering.policy import restore_on_read, restore_tier
    from tiering.restores import month_start, restore_budget

    budget = restore_budget(org.settings)
    spent = req.services.catalog.restore_spend(org.id, month_start(datetime.now(UTC)))
    return {
        "org": org.name,
        "restore_on_read": restore_on_read(org.settings),
        "restore_tier": restore_tier(org.settings),
        "restore_budget_usd": _usd(budget),
        "restore_spent_usd": _usd(spent) or "0",
    }


def _usd(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def get_settings(req: Request) -> Reply:
    """``GET /orgs/{org}/settings``: restore on read, its tier, the monthly restore budget
    and this month's spend (any member)."""
    org = req.services.member_org(req.principal, req.params["org"])
    return Reply(200, _settings_json(req, org))


def patch_settings(req: Request) -> Reply:
    """``PATCH /orgs/{org}/settings`` (the manage right)."""
    services = req.services
    org = services.org(req.principal, req.params["org"], Action.MANAGE, operator_ok=True)
    changes: dict[str, Any] = {}
    body = req.body
    if "restore_on_read" in body:
        changes["restore_on_read"] = bool(body["restore_on_read"])
    if "restore_tier" in body:
        changes["restore_tier"] = body["restore_tier"]
    if "restore_budget_usd" in body:
        value = body["restore_budget_usd"]
        if value is not None:
            try:
                amount = Decimal(str(value))
            except InvalidOperation:
                raise ValidationError("body.restore_budget_usd", "expected an amount") from None
            if not amount.is_finite() or amount < 0:
                raise ValidationError("body.restore_budget_usd", "expected an amount of 0 or more")
            value = format(amount.normalize(), "f")
        changes["restore_budget_usd"] = value
    if changes:
        org = services.catalog.update_org_settings(org.id, changes)
        services.catalog.audit(req.principal.name, "org.settings", org_id=org.id, **changes)
    return Reply(200, _settings_json(req, org))


# -- tiering policies ------------------------------------------------------------------------


def _policy_target(req: Request, action: Action) -> tuple[Any, Any]:
    p = req.params
    services = req.services
    bucket_name = p.get("bucket")
    org = services.org(req.principal, p["org"], action, bucket_name, operator_ok=True)
    bucket = services.bucket(org, bucket_name) if bucket_name is not None else None
    return org, bucket


def _policy_json(req: Request, org: Any, bucket: Any) -> dict[str, Any]:
    from tiering.policy import policy_from_config

    default = policy_from_config(req.services.gateway.config.tiering)
    org_rules, bucket_rules = req.services.catalog.tiering_rules(org.id, bucket.id if bucket else 0)
    effective = default
    for rules in (org_rules, bucket_rules if bucket is not None else {}):
        with contextlib.suppress(InvalidArgument):
            effective = effective.with_rules(rules)
    return {
        "org": org.name,
        "bucket": bucket.name if bucket is not None else None,
        "rules": bucket_rules if bucket is not None else org_rules,
        "effective": effective.to_rules(),
    }


def get_policy(req: Request) -> Reply:
    """``GET /orgs/{org}/policy`` and ``.../buckets/{bucket}/policy``: the stored rules and
    the effective policy (config defaults, then org, then bucket)."""
    org, bucket = _policy_target(req, Action.READ)
    return Reply(200, _policy_json(req, org, bucket))


def put_policy(req: Request) -> Reply:
    """``PUT`` a policy: replace the level's rules (the archive right)."""
    from tiering.policy import store_rules

    org, bucket = _policy_target(req, Action.ARCHIVE)
    store_rules(
        req.services.catalog, org.id, bucket.id if bucket is not None else None, req.body,
        updated_by=req.principal.name,
    )
    req.services.catalog.audit(
        req.principal.name, "policy.set", org_id=org.id,
        bucket=bucket.name if bucket is not None else None, rules=req.body,
    )
    return Reply(200, _policy_json(req, org, bucket))


def delete_policy(req: Request) -> Reply:
    """``DELETE`` a policy: the level inherits again."""
    from tiering.policy import store_rules

    org, bucket = _policy_target(req, Action.ARCHIVE)
    store_rules(
        req.services.catalog, org.id, bucket.id if bucket is not None else None, None,
        updated_by=req.principal.name,
    )
    req.services.catalog.audit(
        req.principal.name, "policy.remove", org_id=org.id,
        bucket=bucket.name if bucket is not None else None,
    )
    return Reply(204)


# -- buckets ---------------------------------------------------------------------------------


def list_buckets(req: Request) -> Reply:
    """``GET /orgs/{org}/buckets``: the buckets the caller may read."""
    org_name = req.params["org"]
    buckets = req.services.objects.list_buckets(req.principal, org_name)
    org = req.services.catalog.get_org(org_name)
    return Reply(200, {"org": org_name, "buckets": [bucket_json(org, b) for b in buckets]})


def create_bucket(req: Request) -> Reply:
    """``POST /orgs/{org}/buckets``: a bucket (placed by the org's region, the user's
    location or the default unless ``region`` is given); with ``vault_recipient`` a vault
    bucket the gateway can write but never read."""
    b = req.body
    bucket = req.services.objects.create_bucket(
        req.principal, req.params["org"], b["name"], region=b.get("region"),
        vault_recipient=b.get("vault_recipient"), client_address=req.client,
    )
    org = req.services.catalog.get_org(req.params["org"])
    return Reply(201, bucket_json(org, bucket))


def get_bucket(req: Request) -> Reply:
    """``GET /orgs/{org}/buckets/{bucket}``."""
    p = req.params
    bucket = req.services.objects.head_bucket(req.principal, p["org"], p["bucket"])
    return Reply(200, bucket_json(req.services.catalog.get_org(p["org"]), bucket))


def patch_bucket(req: Request) -> Reply:
    """``PATCH /orgs/{org}/buckets/{bucket}``: the retention window of deleted and
    overwritten objects (days; null: none) (the manage right)."""
    p = req.params
    services = req.services
    org = services.org(req.principal, p["org"], Action.MANAGE, p["bucket"], operator_ok=True)
    bucket = services.bucket(org, p["bucket"])
    days = req.body["retention_days"]
    bucket = services.catalog.update_bucket_settings(bucket.id, {"retention_days": days})
    services.catalog.audit(
        req.principal.name, "bucket.retention", org_id=org.id, bucket=bucket.name, days=days
    )
    return Reply(200, bucket_json(org, bucket))


def delete_bucket(req: Request) -> Reply:
    """``DELETE /orgs/{org}/buckets/{bucket}``: an empty bucket (409 otherwise)."""
    p = req.params
    req.services.objects.delete_bucket(req.principal, p["org"], p["bucket"])
    return Reply(204)


# -- access keys -----------------------------------------------------------------------------


def list_keys(req: Request) -> Reply:
    """``GET /keys``: the caller's keys and those of orgs they manage (all for operators)."""
    keys = req.services.identity.list_access_keys(req.principal, user_name=req.params.get("user"))
    return Reply(
        200,
        {
            "keys": [
                {
                    "access_key_id": k.access_key_id,
                    "user": k.user,
                    "org": k.org,
                    "created_at": iso(k.created_at),
                    "revoked_at": iso(k.revoked_at),
                }
                for k in keys
            ]
        },
    )


def create_key(req: Request) -> Reply:
    """``POST /keys``: a new S3 access key of a user (default: the caller) in an org; the
    secret is shown once."""
    b = req.body
    user = b.get("user", req.principal.name)
    key, secret = req.services.identity.create_access_key(req.principal, user, org=b["org"])
    return Reply(
        201,
        {
            "access_key_id": key.access_key_id,
            "secret_access_key": secret,
            "user": user,
            "org": b["org"],
            "created_at": iso(key.created_at),
        },
    )


def delete_key(req: Request) -> Reply:
    """``DELETE /keys/{access_key_id}``: revoke a key (its owner, an org admin, operators)."""
    req.services.identity.revoke_access_key(req.principal, req.params["access_key_id"])
    return Reply(204)


# -- regions (operators) ---------------------------------------------------------------------


def _require_operator(req: Request) -> None:
    if not req.principal.is_operator:
        raise AccessDenied("only an operator may do this")


def _region_json(region: RegionRecord) -> dict[str, Any]:
    return {
        "code": region.code,
        "name": region.name,
        "backend": region.backend,
        "bucket": region.bucket,
        "latitude": region.latitude,
        "longitude": region.longitude,
        "countries": list(region.countries),
        "prices": dict(region.prices) if region.prices is not None else None,
        "source": region.source,
    }


def list_regions(req: Request) -> Reply:
    """``GET /regions`` (operators)."""
    _require_operator(req)
    return Reply(200, {"regions": [_region_json(r) for r in req.services.catalog.list_regions()]})


def put_region(req: Request) -> Reply:
    """``PUT /regions/{code}``: create or replace a region (operators); an admin's write
    survives restarts (the config file no longer overrides it)."""
    from catalog.placement import RegionRecord
    from tiering.placement import region_from_record

    _require_operator(req)
    b = req.body
    code = req.params["code"]
    if b["backend"] not in req.services.objects.backends:
        raise ValidationError("body.backend", f"no backend named {b['backend']!r} is configured")
    record = RegionRecord(
        code=code,
        backend=b["backend"],
        name=b.get("name", ""),
        latitude=b.get("latitude"),
        longitude=b.get("longitude"),
        countries=tuple(c.upper() for c in b.get("countries", [])),
        bucket=b.get("bucket", ""),
        prices=b.get("prices"),
    )
    region_from_record(record)
    stored = req.services.catalog.put_region(record)
    req.services.catalog.audit(req.principal.name, "region.put", region=code)
    return Reply(200, _region_json(stored))


def delete_region(req: Request) -> Reply:
    """``DELETE /regions/{code}`` (operators); buckets there keep their region."""
    _require_operator(req)
    code = req.params["code"]
    if not req.services.catalog.delete_region(code):
        raise NotFound(f"region {code}")
    req.services.catalog.audit(req.principal.name, "region.delete", region=code)
    return Reply(204)


# -- users (operators) -----------------------------------------------------------------------


def _user_json(facts: UserFacts) -> dict[str, Any]:
    return {
        "name": facts.user.name,
        "source": facts.source,
        "operator": facts.user.is_operator,
        "disabled": facts.user.disabled,
        "orgs": [{"org": m.org_name, "role": m.role} for m in facts.memberships],
    }


def list_users(req: Request) -> Reply:
    """``GET /users`` (operators)."""
    return Reply(200, {"users": [_user_json(f) for f in req.services.identity.list_users(req.principal)]})


def create_user(req: Request) -> Reply:
    """``POST /users`` (operators): a local user, in ``org`` or with a personal org."""
    b = req.body
    identity = req.services.identity
    identity.create_user(
        req.principal, b["name"], password=b.get("password"), org=b.get("org"),
        role=b.get("role", "member"), is_operator=b.get("operator", False),
    )
    facts = req.services.catalog.user_facts(name=b["name"])
    return Reply(201, _user_json(facts))


def patch_user(req: Request) -> Reply:
    """``PATCH /users/{user}``: change a password (operators, or the user), disable or
    enable (operators)."""
    b = req.body
    name = req.params["user"]
    identity = req.services.identity
    if not req.principal.is_operator and req.principal.name != name:
        raise AccessDenied("only an operator or the user may change this user")
    if "password" in b:
        identity.set_password(req.principal, name, b["password"])
    if "disabled" in b:
        identity.set_disabled(req.principal, name, bool(b["disabled"]))
    facts = req.services.catalog.user_facts(name=name)
    if facts is None:
        raise NotFound(f"user {name}")
    return Reply(200, _user_json(facts))


# -- audit -----------------------------------------------------------------------------------


def audit_log(req: Request) -> Reply:
    """``GET /audit``: newest first; an org's entries for its admins, everything (or one
    org) for operators."""
    p = req.params
    services = req.services
    principal = req.principal
    org_id = None
    if "org" in p:
        org = services.org(principal, p["org"], Action.MANAGE, operator_ok=True)
        org_id = org.id
    elif not principal.is_operator:
        raise ValidationError("query.org", "is required (only operators read the whole log)")
    cursor = decode_cursor(p.get("cursor")) or {}
    before = cursor.get("before")
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        raise ValidationError("query.cursor", "not a cursor this API handed out")
    limit: int = p.get("limit", 100)
    entries = services.catalog.audit_page(org_id=org_id, before_id=before, limit=limit)
    names: dict[int, str | None] = {}
    out = []
    for entry in entries:
        if entry.org_id is not None and entry.org_id not in names:
            found = services.catalog.get_org_by_id(entry.org_id)
            names[entry.org_id] = found.name if found is not None else None
        out.append(
            {
                "id": entry.id,
                "at": iso(entry.at),
                "actor": entry.actor,
                "action": entry.action,
                "org": names.get(entry.org_id) if entry.org_id is not None else None,
                "details": entry.details,
            }
        )
    next_cursor = encode_cursor({"before": entries[-1].id}) if len(entries) == limit else None
    return Reply(200, {"entries": out, "next_cursor": next_cursor})
