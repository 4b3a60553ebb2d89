"""``coolstorage user|org|key``: users, orgs, members, grants, quotas and S3 access keys.

For operators without the admin API. Every command acts as the operator (audit actor
``operator``) through :class:`gateway.identity.IdentityService`, so the checks and audit
rows are the same as the admin API's. Each command takes ``--json`` for scripts.

Passwords (``user add``, ``user passwd``) are read from standard input when it is not a
terminal (the first line), else asked twice without echo; ``--generate-password`` (or an
empty answer at the prompt) makes a random one and prints it once. Sizes accept suffixes:
``10GiB``, ``500MB``, ``1.5TiB`` (``KB``/``MB``... are powers of 1000, ``KiB``/``MiB``...
powers of 1024).
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from catalog.records import ROLE_ADMIN, ROLE_MEMBER
from gateway.cli import CommandContext
from gateway.errors import InvalidArgument
from gateway.principals import ROLES, Action, operator_principal

if TYPE_CHECKING:
    from catalog.identity import QuotaUsage
    from gateway.app import Gateway
    from gateway.identity import GrantInfo

ACTOR = "operator"

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "p": 1000**5,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """Bytes from ``123``, ``10GiB``, ``500 MB``, ``1.5TiB``; ``InvalidArgument`` otherwise."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise InvalidArgument(
            f"{text!r} is not a size (bytes, or a number with KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    value = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value >= 2**63:
        raise InvalidArgument(f"{text!r} is too large")
    return int(value)


def format_size(size: int | None) -> str:
    """A size for people: ``1.5 GiB``, ``512 B``; ``-`` for None."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# -- registration --------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    _register_user(subparsers)
    _register_org(subparsers)
    _register_key(subparsers)


def _command(
    commands: Any, name: str, func: Callable[[CommandContext], int], help: str, **kwargs: Any
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=help, **kwargs)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=func)
    return parser


def _group(subparsers: Any, name: str, help: str) -> Any:
    group: argparse.ArgumentParser = subparsers.add_parser(name, help=help)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(title=f"{name} commands", metavar="COMMAND")


def _register_user(subparsers: Any) -> None:
    commands = _group(subparsers, "user", "local users: add, passwd, list, disable, enable")
    add = _command(
        commands,
        "add",
        run_user_add,
        "add a local user",
        description="Add a local user. With --org, a member of that org (--admin: its "
        "admin); without, the admin of a new personal org ~NAME. The password is read from "
        "standard input when it is not a terminal, else asked twice; --generate-password "
        "(or an empty answer) makes one and prints it once.",
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--org", metavar="ORG", help="an existing org to join")
    add.add_argument("--admin", action="store_true", help="make the user an admin of --org")
    add.add_argument(
        "--operator", action="store_true", help="let the user administer the whole gateway"
    )
    add.add_argument(
        "--generate-password", action="store_true", help="generate a password and print it"
    )
    passwd = _command(
        commands,
        "passwd",
        run_user_passwd,
        "change a local user's password",
        description="Change a local user's password (read like `user add` does). The "
        "user's API tokens are revoked; logins with the old password stop on every replica "
        "within identity.cache_ttl.",
    )
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument(
        "--generate-password", action="store_true", help="generate a password and print it"
    )
    _command(commands, "list", run_user_list, "list users with their orgs")
    for name, func, text in (
        ("disable", run_user_disable, "stop a user's logins, keys and tokens"),
        ("enable", run_user_enable, "let a disabled user in again"),
    ):
        parser = _command(commands, name, func, text)
        parser.add_argument("name", metavar="NAME")


def _register_org(subparsers: Any) -> None:
    commands = _group(subparsers, "org", "orgs: add, list, members, grants, quotas")
    add = _command(commands, "add", run_org_add, "add an org (with its own encryption key)")
    add.add_argument("name", metavar="NAME")
    _command(commands, "list", run_org_list, "list orgs with usage and quota")

    member_parser: argparse.ArgumentParser = commands.add_parser(
        "member", help="add, remove or list members"
    )
    member_parser.set_defaults(group_parser=member_parser)
    members = member_parser.add_subparsers(title="org member commands", metavar="COMMAND")
    madd = _command(members, "add", run_member_add, "add a user to an org, or change their role")
    madd.add_argument("org", metavar="ORG")
    madd.add_argument("user", metavar="USER")
    madd.add_argument("--role", choices=ROLES, default=ROLE_MEMBER, help="default: member")
    mremove = _command(
        members, "remove", run_member_remove, "remove a user from an org (and their grants)"
    )
    mremove.add_argument("org", metavar="ORG")
    mremove.add_argument("user", metavar="USER")
    mlist = _command(members, "list", run_member_list, "list an org's members")
    mlist.add_argument("org", metavar="ORG")

    rights_help = f"rights: {', '.join(a.value for a in Action)}, or all"
    for name, func, text in (
        ("grant", run_grant, "grant rights to a member, in the org or one bucket"),
        ("revoke", run_revoke, "take granted rights away again"),
    ):
        parser = _command(commands, name, func, text, epilog=rights_help)
        parser.add_argument("org", metavar="ORG")
        parser.add_argument("user", metavar="USER")
        parser.add_argument("rights", metavar="RIGHT", nargs="+", help=rights_help)
        parser.add_argument("--bucket", metavar="BUCKET", help="only in this bucket")
    grants = _command(commands, "grants", run_grants, "list an org's grants")
    grants.add_argument("org", metavar="ORG")
    grants.add_argument("--user", metavar="USER", help="only this user's")

    quota = _command(
        commands,
        "quota",
        run_quota,
        "show usage against the quota, or set it",
        description="Without a value, show what the org stores against its quota. With one, "
        "set the quota (10GiB, 500GB, bytes) or remove it (none). Stored data is never "
        "removed; writes that would pass the quota are refused.",
    )
    quota.add_argument("org", metavar="ORG")
    quota.add_argument("size", metavar="BYTES|none", nargs="?")


def _register_key(subparsers: Any) -> None:
    commands = _group(subparsers, "key", "S3 access keys: create, list, revoke")
    create = _command(
        commands,
        "create",
        run_key_create,
        "create an S3 access key for a user in one org",
        description="Create an access key; its secret is printed once and stored only "
        "wrapped by the master key. --json prints exactly "
        '{"access_key_id": ..., "secret_access_key": ...}.',
    )
    create.add_argument("--user", required=True, metavar="NAME")
    create.add_argument("--org", metavar="ORG", help="needed when the user is in several orgs")
    klist = _command(commands, "list", run_key_list, "list access keys (never their secrets)")
    klist.add_argument("--user", metavar="NAME", help="only this user's keys")
    revoke = _command(
        commands,
        "revoke",
        run_key_revoke,
        "revoke an access key",
        description="Revoke a key: it stops working on every replica within "
        "identity.cache_ttl.",
    )
    revoke.add_argument("access_key_id", metavar="ID")


# -- helpers -------------------------------------------------------------------------------
def _open(ctx: CommandContext) -> Gateway:
    return ctx.open_gateway()


def _emit(ctx: CommandContext, data: Any, text: str | Sequence[str]) -> None:
    if ctx.args.json:
        ctx.stdout.write(json.dumps(data, default=_json_default, ensure_ascii=False) + "\n")
        return
    lines = [text] if isinstance(text, str) else list(text)
    if lines:
        ctx.stdout.write("\n".join(lines) + "\n")


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def read_new_password(ctx: CommandContext, *, generate: bool) -> tuple[str, bool]:
    """The new password and whether it was generated (see the module docstring)."""
    if generate:
        return secrets.token_urlsafe(18), True
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        line = stdin.readline() if stdin is not None else ""
        password = line.rstrip("\r\n")
        if not password:
            raise InvalidArgument(
                "no password on standard input (pipe one in, or use --generate-password)"
            )
        return password, False
    first = getpass.getpass("New password (empty: generate one): ")
    if not first:
        return secrets.token_urlsafe(18), True
    second = getpass.getpass("Repeat the password: ")
    if first != second:
        raise InvalidArgument("the two passwords differ")
    return first, False


def _usage_dict(usage: QuotaUsage) -> dict[str, Any]:
    return {
        "org": usage.org_name,
        "stored_bytes": usage.stored_bytes,
        "quota_bytes": usage.quota_bytes,
        "free_bytes": usage.free_bytes,
    }


def _usage_line(usage: QuotaUsage) -> str:
    if usage.quota_bytes is None:
        return f"org {usage.org_name}: {format_size(usage.stored_bytes)} stored, no quota"
    percent = usage.fraction * 100 if usage.fraction is not None else 0.0
    return (
        f"org {usage.org_name}: {format_size(usage.stored_bytes)} stored of "
        f"{format_size(usage.quota_bytes)} ({percent:.1f}%), "
        f"{format_size(usage.free_bytes)} free"
    )


def _grant_dict(grant: GrantInfo) -> dict[str, Any]:
    return {
        "org": grant.org,
        "user": grant.user,
        "bucket": grant.bucket,
        "rights": list(grant.rights),
    }


# -- user ----------------------------------------------------------------------------------
def run_user_add(ctx: CommandContext) -> int:
    args = ctx.args
    if args.admin and not args.org:
        raise InvalidArgument("--admin needs --org (a user is always the admin of a personal org)")
    password, generated = read_new_password(ctx, generate=args.generate_password)
    with _open(ctx) as gateway:
        user = gateway.identity.create_user(
            operator_principal(ACTOR),
            args.name,
            password=password,
            org=args.org,
            role=ROLE_ADMIN if args.admin else ROLE_MEMBER,
            is_operator=args.operator,
        )
        facts = gateway.catalog.user_facts(user_id=user.id)
    memberships = facts.memberships if facts else ()
    org = memberships[0].org_name if memberships else None
    role = memberships[0].role if memberships else None
    data: dict[str, Any] = {
        "user": user.name,
        "org": org,
        "role": role,
        "operator": user.is_operator,
    }
    text = [f"added user {user.name}" + (f" ({role} of org {org})" if org else "")]
    if generated:
        data["password"] = password
        text.append(f"password: {password}")
    _emit(ctx, data, text)
    return 0


def run_user_passwd(ctx: CommandContext) -> int:
    password, generated = read_new_password(ctx, generate=ctx.args.generate_password)
    with _open(ctx) as gateway:
        gateway.identity.set_password(operator_principal(ACTOR), ctx.args.name, password)
    data: dict[str, Any] = {"user": ctx.args.name}
    text = [f"changed the password of {ctx.args.name}"]
    if generated:
        data["password"] = password
        text.append(f"password: {password}")
    _emit(ctx, data, text)
    return 0


def run_user_list(ctx: CommandContext) -> int:
    with _open(ctx) as gateway:
        users = gateway.identity.list_users(operator_principal(ACTOR))
    data = [
        {
            "user": f.user.name,
            "source": f.source,
            "operator": f.user.is_operator,
            "disabled": f.user.disabled,
            "orgs": {m.org_name: m.role for m in f.memberships},
        }
        for f in users
    ]
    rows = [
        [
            f.user.name,
            f.source,
            ",".join(
                flag
                for flag, on in (("operator", f.user.is_operator), ("disabled", f.user.disabled))
                if on
            )
            or "-",
            ", ".join(f"{m.org_name} ({m.role})" for m in f.memberships) or "-",
        ]
        for f in users
    ]
    _emit(ctx, data, _table(rows, ["USER", "SOURCE", "FLAGS", "ORGS"]))
    return 0


def _set_disabled(ctx: CommandContext, disabled: bool) -> int:
    with _open(ctx) as gateway:
        gateway.identity.set_disabled(operator_principal(ACTOR), ctx.args.name, disabled)
    word = "disabled" if disabled else "enabled"
    _emit(ctx, {"user": ctx.args.name, "disabled": disabled}, f"{word} user {ctx.args.name}")
    return 0


def run_user_disable(ctx: CommandContext) -> int:
    return _set_disabled(ctx, True)


def run_user_enable(ctx: CommandContext) -> int:
    return _set_disabled(ctx, False)


# -- org -----------------------------------------------------------------------------------
def run_org_add(ctx: CommandContext) -> int:
    with _open(ctx) as gateway:
        org = gateway.identity.create_org(operator_principal(ACTOR), ctx.args.name)
    _emit(ctx, {"org": org.name, "recipient": org.recipient}, f"added org {org.name}")
    return 0


def run_org_list(ctx: CommandContext) -> int:
    with _open(ctx) as gateway:
        orgs = gateway.identity.list_orgs(operator_principal(ACTOR))
        counts = {org.id: len(gateway.catalog.members_of(org.id)) for org in orgs}
    data = [
        {
            "org": org.name,
            "members": counts[org.id],
            "stored_bytes": org.stored_bytes,
            "quota_bytes": org.quota_bytes,
        }
        for org in orgs
    ]
    rows = [
        [org.name, str(counts[org.id]), format_size(org.stored_bytes), format_size(org.quota_bytes)]
        for org in orgs
    ]
    _emit(ctx, data, _table(rows, ["ORG", "MEMBERS", "STORED", "QUOTA"]))
    return 0


def run_member_add(ctx: CommandContext) -> int:
    args = ctx.args
    with _open(ctx) as gateway:
        gateway.identity.add_member(operator_principal(ACTOR), args.org, args.user, role=args.role)
    _emit(
        ctx,
        {"org": args.org, "user": args.user, "role": args.role},
        f"{args.user} is now {args.role} of org {args.org}",
    )
    return 0


def run_member_remove(ctx: CommandContext) -> int:
    args = ctx.args
    with _open(ctx) as gateway:
        removed = gateway.identity.remove_member(operator_principal(ACTOR), args.org, args.user)
    text = (
        f"removed {args.user} from org {args.org}"
        if removed
        else f"{args.user} was not a member of org {args.org}"
    )
    _emit(ctx, {"org": args.org, "user": args.user, "removed": removed}, text)
    return 0


def run_member_list(ctx: CommandContext) -> int:
    with _open(ctx) as gateway:
        members = gateway.identity.members(operator_principal(ACTOR), ctx.args.org)
    _emit(
        ctx,
        [{"user": user, "role": role} for user, role in members],
        _table([[user, role] for user, role in members], ["USER", "ROLE"]),
    )
    return 0


def run_grant(ctx: CommandContext) -> int:
    args = ctx.args
    with _open(ctx) as gateway:
        grant = gateway.identity.grant(
            operator_principal(ACTOR), args.org, args.user, args.rights, bucket=args.bucket
        )
    where = f"bucket {grant.bucket}" if grant.bucket else f"org {grant.org}"
    _emit(
        ctx,
        _grant_dict(grant),
        f"{grant.user} now holds {', '.join(grant.rights)} in {where} (beyond the defaults)",
    )
    return 0


def run_revoke(ctx: CommandContext) -> int:
    args = ctx.args
    with _open(ctx) as gateway:
        grant = gateway.identity.revoke_grant(
            operator_principal(ACTOR), args.org, args.user, args.rights, bucket=args.bucket
        )
    where = f"bucket {args.bucket}" if args.bucket else f"org {args.org}"
    if grant is None:
        data: dict[str, Any] = {
            "org": args.org,
            "user": args.user,
            "bucket": args.bucket,
            "rights": [],
        }
        text = f"{args.user} holds no granted rights in {where} now"
    else:
        data = _grant_dict(grant)
        text = f"{args.user} still holds {', '.join(grant.rights)} in {where}"
    _emit(ctx, data, text)
    return 0


def run_grants(ctx: CommandContext) -> int:
    with _open(ctx) as gateway:
        grants = gateway.identity.list_grants(
            operator_principal(ACTOR), ctx.args.org, user_name=ctx.args.user
        )
    _emit(
        ctx,
        [_grant_dict(g) for g in grants],
        _table(
            [[g.user, g.bucket or "(whole org)", ",".join(g.rights)] for g in grants],
            ["USER", "BUCKET", "RIGHTS"],
        ),
    )
    return 0


def run_quota(ctx: CommandContext) -> int:
    args = ctx.args
    actor = operator_principal(ACTOR)
    with _open(ctx) as gateway:
        if args.size is None:
            usage = gateway.identity.quota_usage(actor, args.org)
        else:
            size = None if args.size.strip().lower() == "none" else parse_size(args.size)
            usage = gateway.identity.set_quota(actor, args.org, size)
    _emit(ctx, _usage_dict(usage), _usage_line(usage))
    return 0


# -- key -----------------------------------------------------------------------------------
def run_key_create(ctx: CommandContext) -> int:
    args = ctx.args
    with _open(ctx) as gateway:
        key, secret = gateway.identity.create_access_key(
            operator_principal(ACTOR), args.user, org=args.org
        )
        org = gateway.catalog.get_org_by_id(key.org_id)
    _emit(
        ctx,
        {"access_key_id": key.access_key_id, "secret_access_key": secret},
        [
            f"access key for {args.user} in org {org.name if org else key.org_id} "
            "(the secret is shown only now):",
            f"access_key_id = {key.access_key_id}",
            f"secret_access_key = {secret}",
        ],
    )
    return 0


def run_key_list(ctx: CommandContext) -> int:
    with _open(ctx) as gateway:
        keys = gateway.identity.list_access_keys(
            operator_principal(ACTOR), user_name=ctx.args.user
        )
    data = [
        {
            "access_key_id": k.access_key_id,
            "user": k.user,
            "org": k.org,
            "created_at": k.created_at,
            "revoked_at": k.revoked_at,
        }
        for k in keys
    ]
    rows = [
        [
            k.access_key_id,
            k.user,
            k.org,
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            "revoked " + k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "active",
        ]
        for k in keys
    ]
    _emit(ctx, data, _table(rows, ["ACCESS KEY ID", "USER", "ORG", "CREATED", "STATUS"]))
    return 0


def run_key_revoke(ctx: CommandContext) -> int:
    key_id = ctx.args.access_key_id
    with _open(ctx) as gateway:
        revoked = gateway.identity.revoke_access_key(operator_principal(ACTOR), key_id)
    text = f"revoked access key {key_id}" if revoked else f"access key {key_id} was already revoked"
    _emit(ctx, {"access_key_id": key_id, "revoked": revoked}, text)
    return 0
