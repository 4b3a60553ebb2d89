"""Usage (ReportUsageMetrics, read side): storage by class now, and request counts and
bytes per hour or day, per org and per user.

Writes (PUT, COPY, DELETE, parts, completes) are metered with the user who made them;
reads (GET, HEAD, LIST) are counted per org and bucket in memory and flushed every few
seconds, without a user (DESIGN.md), so a per-user series holds writes only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from admin.api import Reply, Request
from admin.service import iso
from admin.validation import ValidationError, parse_datetime
from gateway.errors import AccessDenied, NotFound
from gateway.principals import Action

#: The longest window of one request, per granularity.
MAX_WINDOW = {"hour": timedelta(days=31), "day": timedelta(days=400)}
DEFAULT_WINDOW = {"hour": timedelta(hours=48), "day": timedelta(days=30)}


def _period(at: datetime, granularity: str) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if granularity == "day" else at


def usage(req: Request) -> Reply:
    """``GET /usage``: the org's usage, or one user's (a member who may not manage the org
    sees their own)."""
    p = req.params
    services = req.services
    principal = req.principal
    granularity: str = p.get("granularity", "day")
    org = services.member_org(principal, p["org"])
    manager = principal.is_operator or principal.may(Action.MANAGE, org.name)
    user_name: str | None = p.get("user")
    if user_name is None and not manager:
        user_name = principal.name
    if user_name is not None and not manager and user_name != principal.name:
        raise AccessDenied(f"the manage right on org {org.name} is needed for others' usage")
    user_id = None
    if user_name is not None:
        user = services.catalog.get_user(user_name)
        if user is None:
            raise NotFound(f"user {user_name}")
        user_id = user.id
    bucket_id = None
    if "bucket" in p:
        bucket_id = services.bucket(org, p["bucket"]).id

    now = datetime.now(UTC)
    until = parse_datetime(p["until"], "query.until") if "until" in p else now
    until = _period(until, "hour") + timedelta(hours=1) if until == now else until
    since = (
        parse_datetime(p["since"], "query.since")
        if "since" in p
        else _period(until - DEFAULT_WINDOW[granularity], granularity)
    )
    if since >= until:
        raise ValidationError("query.since", "must be before until")
    if until - since > MAX_WINDOW[granularity]:
        raise ValidationError(
            "query.since", f"a {granularity}ly series covers at most {MAX_WINDOW[granularity].days} days"
        )

    rows = services.catalog.usage_rows(
        org.id, since=since, until=until, user_id=user_id, bucket_id=bucket_id
    )
    names: dict[int, str] = {}
    points: dict[tuple[datetime, int | None, str], list[int]] = {}
    totals: dict[str, dict[str, int]] = {}
    for row in rows:
        key = (_period(row.hour, granularity), row.user_id, row.action)
        point = points.setdefault(key, [0, 0])
        point[0] += row.count
        point[1] += row.bytes
        total = totals.setdefault(row.action, {"count": 0, "bytes": 0})
        total["count"] += row.count
        total["bytes"] += row.bytes
    series: list[dict[str, Any]] = []
    for (period, uid, action), (count, nbytes) in sorted(
        points.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])
    ):
        name = None
        if uid is not None:
            if uid not in names:
                found = services.catalog.get_user_by_id(uid)
                names[uid] = found.name if found is not None else str(uid)
            name = names[uid]
        series.append(
            {"period": iso(period), "user": name, "action": action, "count": count, "bytes": nbytes}
        )
    storage = [
        {"storage_class": cls, "objects": n, "bytes": b}
        for cls, (n, b) in sorted(services.catalog.storage_by_class(org.id).items())
    ]
    return Reply(
        200,
        {
            "org": org.name,
            "granularity": granularity,
            "since": iso(since),
            "until": iso(until),
            "user": user_name,
            "bucket": p.get("bucket"),
            "stored_bytes": max(0, org.stored_bytes),
            "quota_bytes": org.quota_bytes,
            "storage": storage,
            "series": series,
            "totals": totals,
        },
    )
