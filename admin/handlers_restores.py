"""Restores (RetrieveObject): quote, start, follow, and download what came back."""

from __future__ import annotations

from typing import Any

from admin.api import Reply, Request
from admin.restores import job_json, plan_json
from admin.service import decode_cursor, encode_cursor
from admin.validation import ValidationError
from catalog.admin import KIND_OBJECT, KIND_PREFIX


def create_restore(req: Request) -> Reply:
    """``POST /restores``: quote a restore of an object or a folder (``dry_run``), or start
    it: ``{restore_id, quote_usd, objects, status, ...}``."""
    b = req.body
    if ("key" in b) == ("prefix" in b):
        raise ValidationError("body.key", "name either key (one object) or prefix (a folder)")
    kind = KIND_OBJECT if "key" in b else KIND_PREFIX
    target = b["key"] if kind == KIND_OBJECT else b["prefix"]
    destination_field = b.get("destination", "download")
    destination: dict[str, Any] | None = (
        None if destination_field == "download" else dict(destination_field)
    )
    if destination is not None:
        destination.setdefault("prefix", "")
    jobs = req.services.restores
    plan = jobs.plan(
        req.principal, b["org"], b["bucket"], kind=kind, target=target,
        tier=b.get("priority", "Bulk"), days=b.get("days", 1),
    )
    if b.get("dry_run", False):
        return Reply(200, plan_json(plan, destination=destination, requested_by=req.principal.name))
    job = jobs.start(req.principal, plan, destination=destination)
    progress = jobs.refresh(job)
    return Reply(
        201,
        job_json(req.services.catalog, progress.job, download=progress.download,
                 budget_left=plan.budget_left_usd),
        headers=[("Location", f"/api/v1/restores/{job.id}")],
    )


def get_restore(req: Request) -> Reply:
    """``GET /restores/{restore_id}``: status and progress, with a download link once ready."""
    jobs = req.services.restores
    job = jobs.get(req.principal, req.params["restore_id"])
    progress = jobs.refresh(job)
    return Reply(
        200, job_json(req.services.catalog, progress.job, download=progress.download, budget_left=None)
    )


def list_restores(req: Request) -> Reply:
    """``GET /restores``: the caller's restores (with ``org``: every restore of the org the
    caller may follow), newest first."""
    p = req.params
    jobs = req.services.restores
    principal = req.principal
    cursor = decode_cursor(p.get("cursor")) or {}
    before = cursor.get("before")
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        raise ValidationError("query.cursor", "not a cursor this API handed out")
    limit: int = p.get("limit", 50)
    if "org" in p:
        org = req.services.member_org(principal, p["org"])
        found = req.services.catalog.list_restore_jobs(org_ids=[org.id], before_id=before, limit=limit)
    else:
        if principal.user_id is None:
            found = []
        else:
            found = req.services.catalog.list_restore_jobs(
                user_id=principal.user_id, before_id=before, limit=limit
            )
    visible = [j for j in found if jobs.visible(principal, j)]
    next_cursor = encode_cursor({"before": found[-1].id}) if len(found) == limit else None
    return Reply(
        200,
        {
            "restores": [
                job_json(req.services.catalog, j, download=None, budget_left=None) for j in visible
            ],
            "next_cursor": next_cursor,
        },
    )


def restore_objects(req: Request) -> Reply:
    """``GET /restores/{restore_id}/objects``: the job's objects, their state and download
    links, a page at a time."""
    p = req.params
    jobs = req.services.restores
    job = jobs.get(req.principal, p["restore_id"])
    cursor = decode_cursor(p.get("cursor")) or {}
    after = cursor.get("after", -1)
    if not isinstance(after, int) or isinstance(after, bool):
        raise ValidationError("query.cursor", "not a cursor this API handed out")
    items, last = jobs.items_page(job, after_seq=after, limit=p.get("limit", 100))
    return Reply(
        200,
        {
            "restore_id": job.id,
            "items": items,
            "next_cursor": encode_cursor({"after": last}) if last is not None else None,
        },
    )
