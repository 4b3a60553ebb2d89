"""Auth: log in for a bearer token, log out, and who am I."""

from __future__ import annotations

from typing import Any

from admin.api import CHALLENGE, Reply, Request
from admin.service import iso
from admin.wsgi import HTTPProblem
from gateway.authn import AuthenticatorUnavailable
from gateway.errors import AccessDenied
from gateway.principals import rights_names


def create_token(req: Request) -> Reply:
    """``POST /auth/token``: a bearer token for a user name and password (401 if wrong;
    429 with Retry-After while throttled)."""
    body = req.body
    identity = req.services.identity
    try:
        issued = identity.issue_token(
            body["username"],
            body["password"],
            client=req.client,
            ttl=body.get("ttl_seconds"),
        )
    except AuthenticatorUnavailable:
        raise
    except AccessDenied as error:
        if getattr(error, "retry_after", None) is not None:
            raise
        raise HTTPProblem(401, "Unauthorized", str(error), CHALLENGE) from None
    return Reply(
        201,
        {"token": issued.token, "expires_at": iso(issued.expires_at), "user": issued.principal.name},
    )


def delete_token(req: Request) -> Reply:
    """``DELETE /auth/token``: revoke the bearer token the request came with (logout)."""
    if req.token is None:
        raise HTTPProblem(400, "InvalidRequest", "log out with the bearer token to revoke")
    req.services.identity.revoke_token(req.token, actor=req.principal)
    return Reply(204)


def me(req: Request) -> Reply:
    """``GET /me``: the caller, their orgs, roles and rights."""
    principal = req.principal
    orgs: list[dict[str, Any]] = []
    for name in principal.orgs():
        rights = principal.rights_in(name)
        role = principal.role_in(name)
        if rights is None or role is None:
            continue
        orgs.append(
            {
                "org": name,
                "role": role,
                "rights": rights_names(rights.org),
                "bucket_rights": {b: rights_names(r) for b, r in sorted(rights.buckets.items())},
            }
        )
    return Reply(
        200,
        {
            "user": principal.name,
            "operator": principal.is_operator,
            "source": principal.source,
            "orgs": orgs,
        },
    )
