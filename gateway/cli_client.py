"""``coolstorage client ...``: the core API from the command line.

Objects are named ``ORG/BUCKET/KEY``; a folder is a prefix ending in ``/``
(``ORG/BUCKET/photos/``). ``login`` keeps a bearer token in the user's config directory
(mode 600; see :mod:`admin.client`); the other commands use it and say clearly when it has
expired, when a right is missing, and when an object is in cold storage.

- ``login --url URL [--user NAME] [--password-stdin]``, ``logout``
- ``ls [ORG[/BUCKET[/PREFIX]]]`` (``-r`` for everything below, filters as the API's)
- ``put FILE|FOLDER ORG/BUCKET[/PREFIX]``: parallel, resumable, skips what is stored
  unchanged, progress with bytes, rate and ETA (:mod:`admin.transfer`)
- ``get ORG/BUCKET/KEY [LOCAL]`` (``--identity FILE`` decrypts vault objects here)
- ``rm``, ``mv``, ``cp``; ``mode archive|pin|unpin TARGET``
- ``restore TARGET --priority Bulk|Standard --to download|BUCKET[/PREFIX]``: shows the
  quote and asks before spending, unless ``--yes``; ``--wait`` follows it
- ``status [RESTORE_ID]``, ``usage ORG``
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admin.client import ApiClient
    from gateway.cli import CommandContext


def register(subparsers: Any) -> None:
    group: argparse.ArgumentParser = subparsers.add_parser(
        "client",
        help="use a gateway's core API: upload, download, list, restore",
        description="Talk to a Cool Storage gateway's core API (log in first).",
    )
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(title="client commands", metavar="COMMAND")

    login = commands.add_parser("login", help="log in and keep a token (mode 600)")
    login.add_argument("--url", help="the admin listener, e.g. http://127.0.0.1:8081")
    login.add_argument("--user", help="user name (default: the one used last, else $USER)")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--ca-file", help="CA certificate to trust for https")
    login.add_argument("--insecure", action="store_true", help="do not verify https certificates")
    login.add_argument("--ttl", type=int, help="token lifetime in seconds (at most the server's)")
    login.set_defaults(func=run_login)

    logout = commands.add_parser("logout", help="revoke the token and forget it")
    logout.set_defaults(func=run_logout)

    ls = commands.add_parser("ls", help="list orgs, buckets or objects")
    ls.add_argument("target", nargs="?", default="", metavar="ORG[/BUCKET[/PREFIX]]")
    ls.add_argument("-r", "--recursive", action="store_true", help="everything below, no folders")
    ls.add_argument("--name", help="glob on the name (or the whole key if it holds '/')")
    ls.add_argument("--min-size", type=int)
    ls.add_argument("--max-size", type=int)
    ls.add_argument("--state", choices=("staged", "archived", "restoring", "restored"))
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=run_ls)

    put = commands.add_parser("put", help="upload a file or folder (resumable)")
    put.add_argument("source", metavar="FILE|FOLDER")
    put.add_argument("dest", metavar="ORG/BUCKET[/PREFIX]")
    put.add_argument("-j", "--jobs", type=int, default=4, help="files in parallel (default 4)")
    put.add_argument("--part-size", type=_size, default=None, help="multipart part size (16M)")
    put.add_argument("--multipart-threshold", type=_size, default=None,
                     help="files from this size go as multipart sessions (64M)")
    put.add_argument("--bwlimit", type=_size, default=0, help="bytes per second, e.g. 2M")
    put.add_argument("--no-progress", action="store_true")
    put.set_defaults(func=run_put)

    get = commands.add_parser("get", help="download an object or a folder")
    get.add_argument("source", metavar="ORG/BUCKET/KEY")
    get.add_argument("local", nargs="?", default=".", metavar="LOCAL")
    get.add_argument("--identity", help="age identity file: decrypt a vault object here")
    get.add_argument("--no-progress", action="store_true")
    get.set_defaults(func=run_get)

    rm = commands.add_parser("rm", help="delete an object (-r: a folder)")
    rm.add_argument("target", metavar="ORG/BUCKET/KEY")
    rm.add_argument("-r", "--recursive", action="store_true")
    rm.set_defaults(func=run_rm)

    mv = commands.add_parser("mv", help="move an object or a folder within an org")
    mv.add_argument("source", metavar="ORG/BUCKET/KEY")
    mv.add_argument("dest", metavar="ORG/BUCKET/KEY")
    mv.set_defaults(func=run_mv)

    cp = commands.add_parser("cp", help="copy an object")
    cp.add_argument("source", metavar="ORG/BUCKET/KEY")
    cp.add_argument("dest", metavar="ORG/BUCKET/KEY")
    cp.set_defaults(func=run_cp)

    mode = commands.add_parser("mode", help="archive now, pin hot or unpin")
    mode.add_argument("mode", choices=("archive", "pin", "unpin"))
    mode.add_argument("target", metavar="ORG/BUCKET/KEY|PREFIX/")
    mode.set_defaults(func=run_mode)

    restore = commands.add_parser("restore", help="restore an object or folder from cold storage")
    restore.add_argument("target", metavar="ORG/BUCKET/KEY|PREFIX/")
    restore.add_argument("--priority", choices=("Bulk", "Standard"), default="Bulk",
                         help="Bulk (cheapest, up to 48 h) or Standard (up to 12 h)")
    restore.add_argument("--to", default="download", metavar="download|BUCKET[/PREFIX]",
                         help="download it (default), or copy it to a bucket of the org")
    restore.add_argument("--days", type=int, default=1, help="days the copy stays readable")
    restore.add_argument("--yes", action="store_true", help="do not ask before spending")
    restore.add_argument("--wait", action="store_true", help="follow it until it is ready")
    restore.add_argument("--timeout", type=float, default=0, help="give up waiting after s")
    restore.set_defaults(func=run_restore)

    status = commands.add_parser("status", help="who am I, and restores")
    status.add_argument("restore_id", nargs="?", type=int)
    status.add_argument("--wait", action="store_true")
    status.add_argument("--timeout", type=float, default=0)
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)

    usage = commands.add_parser("usage", help="storage and requests of an org")
    usage.add_argument("org")
    usage.add_argument("--user")
    usage.add_argument("--by", choices=("hour", "day"), default="day")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(func=run_usage)


# -- helpers -----------------------------------------------------------------------------------


def _size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1] if value and value[-1] in "KMG" else ""
    try:
        return int(float(value[: len(value) - len(unit)]) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 512K, 16M)") from None


def _split(target: str, *, need_key: bool = False) -> tuple[str, str, str]:
    """``ORG/BUCKET/KEY`` into its parts (the key may be empty or a prefix)."""
    from admin.client import ClientError

    parts = target.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ClientError(f"{target!r}: expected ORG/BUCKET/KEY")
    key = parts[2] if len(parts) == 3 else ""
    if need_key and not key:
        raise ClientError(f"{target!r}: name an object, ORG/BUCKET/KEY")
    return parts[0], parts[1], key


def _client(ctx: CommandContext) -> ApiClient:
    from admin.client import ApiClient, load_login

    return ApiClient.from_login(load_login())


def _run(ctx: CommandContext, fn: Any) -> int:
    """Run a command body; a client error is one line on stderr and exit status 1."""
    from admin.client import ClientError

    try:
        return int(fn() or 0)
    except ClientError as error:
        ctx.stderr.write(f"coolstorage client: {error}\n")
        return 1


def _print(ctx: CommandContext, text: str = "") -> None:
    ctx.stdout.write(text + "\n")
    ctx.stdout.flush()


def _human(n: int) -> str:
    from admin.progress import human_bytes

    return human_bytes(n)


# -- commands ----------------------------------------------------------------------------------


def run_login(ctx: CommandContext) -> int:
    import os

    from admin.client import ApiClient, ClientError, Login, load_login, save_login

    def body() -> int:
        previous = None
        with contextlib.suppress(ClientError):
            previous = load_login()
        url = ctx.args.url or (previous.url if previous else None)
        if not url:
            raise ClientError("name the server with --url (e.g. http://127.0.0.1:8081)")
        user = ctx.args.user or (previous.user if previous else None) or os.environ.get("USER", "")
        if ctx.args.password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        elif sys.stdin.isatty():
            password = getpass.getpass(f"password of {user} at {url}: ")
        else:
            raise ClientError("no terminal to ask for the password: use --password-stdin")
        with ApiClient(url, ca_file=ctx.args.ca_file, insecure=ctx.args.insecure) as client:
            token = client.login(user, password, ttl=ctx.args.ttl)
        path = save_login(
            Login(url=url, user=token["user"], token=token["token"],
                  expires_at=token["expires_at"], ca_file=ctx.args.ca_file,
                  insecure=ctx.args.insecure)
        )
        _print(ctx, f"logged in to {url} as {token['user']} until {token['expires_at']} "
               f"(token in {path})")
        return 0

    return _run(ctx, body)


def run_logout(ctx: CommandContext) -> int:
    from admin.client import ApiClient, ClientError, forget_login, load_login

    def body() -> int:
        login = load_login()
        try:
            with ApiClient(login.url, token=login.token, ca_file=login.ca_file,
                           insecure=login.insecure) as client:
                client.logout()
        except ClientError as error:
            if error.status != 401:
                raise
        forget_login()
        _print(ctx, "logged out")
        return 0

    return _run(ctx, body)


def run_ls(ctx: CommandContext) -> int:
    def body() -> int:
        args = ctx.args
        with _client(ctx) as client:
            if not args.target:
                for org in client.call("GET", "/orgs")["orgs"]:
                    _print(ctx, json.dumps(org) if args.json else f"{org['name']}/  ({org['role'] or 'operator'})")
                return 0
            parts = args.target.split("/", 2)
            if len(parts) == 1 or not parts[1]:
                reply = client.call("GET", f"/orgs/{parts[0]}/buckets")
                for bucket in reply["buckets"]:
                    vault = "  vault" if bucket["vault"] else ""
                    _print(ctx, json.dumps(bucket) if args.json
                           else f"{parts[0]}/{bucket['name']}/  {bucket['region']}{vault}")
                return 0
            org, bucket, prefix = _split(args.target)
            count = 0
            for page in client.list_objects(
                org, bucket, prefix=prefix, delimiter=None if args.recursive else "/",
                name=args.name, min_size=args.min_size, max_size=args.max_size, state=args.state,
            ):
                for folder in page["prefixes"]:
                    _print(ctx, json.dumps({"prefix": folder}) if args.json
                           else f"{'':>9} {'':>10} {'':>16}  {folder}")
                for entry in page["objects"]:
                    count += 1
                    if args.json:
                        _print(ctx, json.dumps(entry))
                        continue
                    when = entry["modified_at"][:16].replace("T", " ")
                    _print(ctx, f"{entry['state']:>9} {_human(entry['size']):>10} {when:>16}  {entry['key']}")
            return 0

    return _run(ctx, body)


def run_put(ctx: CommandContext) -> int:
    from admin import transfer

    def body() -> int:
        args = ctx.args
        org, bucket, prefix = _split(args.dest)
        with _client(ctx) as client:
            report = transfer.put(
                client, Path(args.source), org, bucket, prefix,
                jobs=args.jobs, bwlimit=args.bwlimit,
                part_size=args.part_size or transfer.DEFAULT_PART_SIZE,
                multipart_threshold=args.multipart_threshold or transfer.DEFAULT_MULTIPART_THRESHOLD,
                progress_stream=ctx.stderr, show_progress=not args.no_progress,
                log=lambda line: _print(ctx, line),
            )
        _print(ctx, f"uploaded {report.uploaded} files ({_human(report.uploaded_bytes)}), "
               f"skipped {report.skipped} already stored"
               + (f", reused {report.resumed_parts} parts" if report.resumed_parts else ""))
        for key, problem in report.failed:
            ctx.stderr.write(f"coolstorage client: {key}: {problem}\n")
        if report.failed:
            ctx.stderr.write("coolstorage client: run the same command again to resume\n")
        return 1 if report.failed else 0

    return _run(ctx, body)


def run_get(ctx: CommandContext) -> int:
    from admin import transfer
    from admin.client import ClientError

    def body() -> int:
        args = ctx.args
        org, bucket, key = _split(args.source)
        identities = None
        if args.identity:
            from gateway.sealing import parse_identity_file

            try:
                identities = parse_identity_file(Path(args.identity).read_text())
            except OSError as error:
                raise ClientError(f"cannot read {args.identity}: {error.strerror}") from None
            except Exception as error:
                raise ClientError(f"{args.identity}: not an age identity file ({error})") from None
        with _client(ctx) as client:
            report = transfer.get(
                client, org, bucket, key, Path(args.local), identities=identities,
                progress_stream=ctx.stderr, show_progress=not args.no_progress,
            )
        _print(ctx, f"downloaded {report.downloaded} files ({_human(report.bytes)})")
        for name, problem in report.failed:
            ctx.stderr.write(f"coolstorage client: {name}: {problem}\n")
        return 1 if report.failed else 0

    return _run(ctx, body)


def run_rm(ctx: CommandContext) -> int:
    def body() -> int:
        org, bucket, key = _split(ctx.args.target, need_key=True)
        with _client(ctx) as client:
            if ctx.args.recursive:
                keys = [e["key"] for page in client.list_objects(org, bucket, prefix=key)
                        for e in page["objects"]]
                for name in keys:
                    client.delete_object(org, bucket, name)
                _print(ctx, f"deleted {len(keys)} objects")
            else:
                client.delete_object(org, bucket, key)
                _print(ctx, f"deleted {org}/{bucket}/{key}")
        return 0

    return _run(ctx, body)


def run_mv(ctx: CommandContext) -> int:
    from admin.client import ClientError

    def body() -> int:
        org, bucket, key = _split(ctx.args.source, need_key=True)
        dst_org, dst_bucket, dst_key = _split(ctx.args.dest)
        if dst_org != org:
            raise ClientError("mv moves within one org; use cp then rm across orgs")
        request: dict[str, Any] = {"org": org, "bucket": bucket, "destination": {"bucket": dst_bucket}}
        if key.endswith("/"):
            request["prefix"] = key
            request["destination"]["prefix"] = dst_key if not dst_key or dst_key.endswith("/") else dst_key + "/"
        else:
            request["key"] = key
            request["destination"]["key"] = dst_key + key.rsplit("/", 1)[-1] if (not dst_key or dst_key.endswith("/")) else dst_key
        with _client(ctx) as client:
            result = client.move(request)
        _print(ctx, f"moved {result['moved']} object{'s' if result['moved'] != 1 else ''}")
        return 0

    return _run(ctx, body)


def run_cp(ctx: CommandContext) -> int:
    def body() -> int:
        org, bucket, key = _split(ctx.args.source, need_key=True)
        dst_org, dst_bucket, dst_key = _split(ctx.args.dest)
        if not dst_key or dst_key.endswith("/"):
            dst_key += key.rsplit("/", 1)[-1]
        with _client(ctx) as client:
            info = client.copy(org, bucket, key, dst_bucket, dst_key, dst_org=dst_org)
        _print(ctx, f"copied to {dst_org}/{dst_bucket}/{info['key']}")
        return 0

    return _run(ctx, body)


def run_mode(ctx: CommandContext) -> int:
    def body() -> int:
        org, bucket, key = _split(ctx.args.target)
        request: dict[str, Any] = {"org": org, "bucket": bucket, "mode": ctx.args.mode}
        request["prefix" if (not key or key.endswith("/")) else "key"] = key
        with _client(ctx) as client:
            result = client.storage_mode(request)
        _print(ctx, f"{result['mode']} {org}/{bucket}/{key}: {result['detail']}")
        return 1 if result["failures"] else 0

    return _run(ctx, body)


def _restore_line(job: dict[str, Any]) -> str:
    progress = job["progress"]
    quote = f"{job['quote_usd']} USD" if job["quote_usd"] is not None else "not quoted"
    what = f"{job['org']}/{job['bucket']}/{job['target']}"
    line = (f"restore {job['restore_id']}: {what} ({job['priority']}) {job['status']}: "
            f"{progress['objects_done']}/{progress['objects_total']} objects, "
            f"{_human(progress['bytes_done'])} of {_human(progress['bytes_total'])} readable; "
            f"quote {quote}")
    if job["destination"] != "download":
        line += f"; copied {progress['objects_copied']} to {job['destination']['bucket']}"
    if job.get("error"):
        line += f"; {job['error']}"
    return line


def _follow(
    ctx: CommandContext, client: ApiClient, restore_id: int, timeout: float, *, shown: str = ""
) -> dict[str, Any]:
    from admin.client import ClientError

    deadline = time.monotonic() + timeout if timeout else None
    delay = 0.5
    last = shown
    while True:
        job = client.restore_status(restore_id)
        line = _restore_line(job)
        if line != last:
            _print(ctx, line)
            last = line
        if job["status"] in ("ready", "done", "failed", "expired"):
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise ClientError(f"restore {restore_id} is not ready yet; check later with "
                              f"`coolstorage client status {restore_id}`")
        time.sleep(delay)
        delay = min(delay * 1.5, 60.0)


def _ready_hint(ctx: CommandContext, job: dict[str, Any]) -> None:
    if job["status"] != "ready":
        return
    target = f"{job['org']}/{job['bucket']}/{job['target']}"
    extra = " --identity FILE" if job.get("download") and job["download"]["sealed"] else ""
    _print(ctx, f"ready: download with `coolstorage client get{extra} {target}`")


def run_restore(ctx: CommandContext) -> int:
    from admin.client import ClientError

    def body() -> int:
        args = ctx.args
        org, bucket, key = _split(args.target)
        request: dict[str, Any] = {"org": org, "bucket": bucket, "priority": args.priority,
                                   "days": args.days}
        request["prefix" if (not key or key.endswith("/")) else "key"] = key
        if args.to != "download":
            dest_bucket, _, dest_prefix = args.to.partition("/")
            request["destination"] = {"bucket": dest_bucket, "prefix": dest_prefix}
        with _client(ctx) as client:
            quote = client.restore({**request, "dry_run": True})
            cost = f"{quote['quote_usd']} USD" if quote["quote_usd"] is not None else "an unknown amount"
            ready = quote["progress"]["objects_done"]
            _print(ctx, f"restoring {quote['objects']} object{'s' if quote['objects'] != 1 else ''} "
                   f"({_human(quote['bytes'])}; {ready} readable already) with {args.priority} "
                   f"costs {cost}" + (f"; budget left this month: {quote['budget_left_usd']} USD"
                                      if quote["budget_left_usd"] is not None else ""))
            if not args.yes:
                if not sys.stdin.isatty():
                    raise ClientError("not started: confirm spending with --yes")
                answer = input("start it? [y/N] ").strip().lower()
                if answer not in ("y", "yes"):
                    _print(ctx, "not started")
                    return 1
            job = client.restore(request)
            line = _restore_line(job)
            _print(ctx, line)
            if args.wait:
                job = _follow(ctx, client, job["restore_id"], args.timeout, shown=line)
            else:
                _print(ctx, f"follow it with `coolstorage client status {job['restore_id']} --wait`")
            _ready_hint(ctx, job)
            return 1 if job["status"] == "failed" else 0

    return _run(ctx, body)


def run_status(ctx: CommandContext) -> int:
    from admin.client import load_login

    def body() -> int:
        args = ctx.args
        with _client(ctx) as client:
            if args.restore_id is not None:
                job = (_follow(ctx, client, args.restore_id, args.timeout) if args.wait
                       else client.restore_status(args.restore_id))
                if args.json:
                    _print(ctx, json.dumps(job))
                elif not args.wait:
                    _print(ctx, _restore_line(job))
                _ready_hint(ctx, job)
                return 1 if job["status"] == "failed" else 0
            me = client.me()
            login = load_login()
            if args.json:
                _print(ctx, json.dumps({"me": me, "restores": client.restores()["restores"]}))
                return 0
            _print(ctx, f"{me['user']} at {login.url} (token until {login.expires_at})"
                   + (", operator" if me["operator"] else ""))
            for org in me["orgs"]:
                _print(ctx, f"  {org['org']}: {org['role']} ({', '.join(org['rights'])})")
            restores = client.restores()["restores"]
            if restores:
                _print(ctx, "restores:")
                for job in restores:
                    _print(ctx, "  " + _restore_line(job))
        return 0

    return _run(ctx, body)


def run_usage(ctx: CommandContext) -> int:
    def body() -> int:
        args = ctx.args
        with _client(ctx) as client:
            report = client.usage(args.org, user=args.user, granularity=args.by)
        if args.json:
            _print(ctx, json.dumps(report))
            return 0
        quota = _human(report["quota_bytes"]) if report["quota_bytes"] is not None else "no quota"
        _print(ctx, f"{report['org']}: {_human(report['stored_bytes'])} stored ({quota})")
        for row in report["storage"]:
            _print(ctx, f"  {row['storage_class']:<14} {row['objects']:>10} objects  {_human(row['bytes']):>10}")
        who = f" of {report['user']}" if report["user"] else ""
        _print(ctx, f"requests{who} {report['since'][:10]} .. {report['until'][:10]}, by {report['granularity']}:")
        for action, total in sorted(report["totals"].items()):
            _print(ctx, f"  {action:<12} {total['count']:>10}  {_human(total['bytes']):>10}")
        for point in report["series"]:
            user = point["user"] or "-"
            _print(ctx, f"  {point['period'][:16].replace('T', ' ')}  {user:<12} {point['action']:<12} "
                   f"{point['count']:>8}  {_human(point['bytes']):>10}")
        return 0

    return _run(ctx, body)
