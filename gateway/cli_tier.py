"""``coolstorage tier ...`` and ``coolstorage restore``: the tiering engine by hand.

- ``tier run``: run the background engine (tiering, restores, sweeps) in the foreground
  until SIGTERM or Ctrl-C, for a deployment that runs it apart from the gateways
  (``serve --no-engine`` there); ``--once`` does every task once, everything that is due
  now, waiting for nothing, and exits (1 if a task failed).
- ``tier archive BUCKET[/PREFIX]``: archive a bucket (or the keys under a prefix) now,
  whatever the objects' age; keep-hot rules and the bucket's policy still apply.
- ``tier status``: objects by class and state, staged bytes, containers, ongoing restores.
- ``tier retained list BUCKET[/PREFIX]``: deleted or overwritten versions still kept (a
  young cold blob, or the bucket's ``retention_days`` window), with their ids;
  ``tier retained recover BUCKET/KEY [--id N]`` puts one back (the newest by default).
- ``restore BUCKET/KEY``: ask for a readable copy of an archived object, as an org admin
  would (quoted, and charged to the org's monthly restore budget).

``--org`` may be left out when the catalog holds exactly one org.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import TYPE_CHECKING, Any

from gateway.cli import CommandContext
from gateway.errors import InvalidArgument

if TYPE_CHECKING:
    from catalog.records import Org
    from gateway.app import Gateway


def register(subparsers: Any) -> None:
    group: argparse.ArgumentParser = subparsers.add_parser(
        "tier", help="run and inspect the tiering engine"
    )
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(title="tier commands", metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the background engine (tiering, restores, sweeps)",
        description="Run the engine in the foreground until SIGTERM or Ctrl-C. Leases in "
        "the catalog keep each job single, so it may run beside gateways that run their "
        "own engine.",
    )
    run.add_argument(
        "--once",
        action="store_true",
        help="do every task once (all work that is due now), wait for nothing, and exit",
    )
    run.set_defaults(func=run_engine)

    archive = commands.add_parser(
        "archive",
        help="archive a bucket or prefix now, whatever the age",
        description="Pack, join and copy to the cold class everything under BUCKET[/PREFIX] "
        "that the bucket's policy lets go cold, ignoring its staging age.",
    )
    archive.add_argument("target", metavar="BUCKET[/PREFIX]")
    archive.add_argument("--org", help="the bucket's org (default: the only org)")
    archive.set_defaults(func=run_archive)

    status = commands.add_parser(
        "status",
        help="counts by state, staged bytes, containers and restores",
        description="What is hot, staged, archived and being restored, over all orgs.",
    )
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=run_status)

    retained = commands.add_parser(
        "retained",
        help="list or recover deleted and overwritten objects still kept",
        description="Deleted or overwritten objects are kept (hidden) while their cold "
        "blob is younger than the class's minimum duration, or for the bucket's "
        "retention_days; list them, or put one back at its key.",
    )
    retained.set_defaults(group_parser=retained)
    retained_commands = retained.add_subparsers(title="retained commands", metavar="COMMAND")
    listing = retained_commands.add_parser("list", help="list retained versions")
    listing.add_argument("target", metavar="BUCKET[/PREFIX]")
    listing.add_argument("--org", help="the bucket's org (default: the only org)")
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(func=run_retained_list)
    recover = retained_commands.add_parser(
        "recover",
        help="put a retained version back at its key",
        description="Make a retained version of BUCKET/KEY the live object again (the "
        "newest unless --id names one). Fails if an object exists at KEY.",
    )
    recover.add_argument("target", metavar="BUCKET/KEY")
    recover.add_argument("--org", help="the bucket's org (default: the only org)")
    recover.add_argument("--id", type=int, dest="retained_id", help="the version's id")
    recover.set_defaults(func=run_retained_recover)

    restore = subparsers.add_parser(
        "restore",
        help="ask for a readable copy of an archived object",
        description="Start a restore of BUCKET/KEY as an org admin would: it is quoted and "
        "charged to the org's monthly restore budget; the engine notices when it is done.",
    )
    restore.add_argument("target", metavar="BUCKET/KEY")
    restore.add_argument("--org", help="the bucket's org (default: the only org)")
    restore.add_argument(
        "--tier", choices=("Standard", "Bulk"), default="Standard", help="retrieval tier"
    )
    restore.add_argument(
        "--days", type=int, default=1, help="days the restored copy stays readable (default 1)"
    )
    restore.set_defaults(func=run_restore)


# -- handlers ------------------------------------------------------------------------------


def run_engine(ctx: CommandContext) -> int:
    from tiering.engine import Engine, default_tasks

    config = ctx.config
    with ctx.open_gateway() as gateway:
        engine = Engine(gateway, default_tasks(config))
        if ctx.args.once:
            results = engine.run_once_blocking()
            failed = 0
            for name, result in results.items():
                stats = engine.stats[name]
                if stats.last_error is not None:
                    failed += 1
                    ctx.stdout.write(f"{name}: failed: {stats.last_error}\n")
                elif stats.runs == 0:
                    ctx.stdout.write(f"{name}: skipped (another engine holds its lease)\n")
                else:
                    ctx.stdout.write(f"{name}: {_describe(result)}\n")
                    failed += int(getattr(result, "failures", 0) > 0)
            return 1 if failed else 0
        return _run_until_signal(engine, ctx)


def _run_until_signal(engine: Any, ctx: CommandContext) -> int:
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        engine.start()
        ctx.stdout.write("engine running; stop it with Ctrl-C or SIGTERM\n")
        ctx.stdout.flush()
        while not stopping.wait(1.0):
            if not engine.running:
                ctx.stderr.write("the engine stopped unexpectedly\n")
                return 1
    finally:
        engine.stop(timeout=30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def run_archive(ctx: CommandContext) -> int:
    import trio

    from tiering.engine import Engine, run_holding_leases
    from tiering.transitions import Tierer, TieringSettings

    bucket_name, _, prefix = ctx.args.target.partition("/")
    with ctx.open_gateway() as gateway:
        org = _org(gateway, ctx.args.org)
        bucket = gateway.catalog.get_bucket(org.id, bucket_name)
        if bucket is None:
            raise InvalidArgument(f"org {org.name} has no bucket {bucket_name!r}")
        tierer = Tierer(
            gateway.catalog,
            gateway.objects.backends,
            TieringSettings.from_config(ctx.config),
            owner=gateway.instance_id,
        )
        engine = Engine(gateway, [])

        async def archive() -> Any:
            try:
                return await run_holding_leases(
                    engine,
                    tierer.leases,
                    tierer.run_pass,
                    ignore_age=True,
                    bucket_id=bucket.id,
                    prefix=prefix,
                )
            finally:
                tierer.leases.release_all()

        report = trio.run(archive)
        ctx.stdout.write(f"{org.name}/{ctx.args.target}: {report}\n")
        return 1 if report.failures else 0


def run_status(ctx: CommandContext) -> int:
    with ctx.open_gateway() as gateway:
        counts = gateway.catalog.tiering_counts()
    if ctx.args.json:
        data = {
            "objects_by_class": {
                cls: {"objects": n, "bytes": b} for cls, (n, b) in counts.objects_by_class.items()
            },
            "restoring_objects": counts.restoring_objects,
            "restored_objects": counts.restored_objects,
            "staged_blobs": counts.staged_blobs,
            "staged_bytes": counts.staged_bytes,
            "hot_blobs": counts.hot_blobs,
            "hot_bytes": counts.hot_bytes,
            "containers": counts.containers,
            "container_bytes": counts.container_bytes,
            "container_live_bytes": counts.container_live_bytes,
            "container_members_bytes": counts.container_members_bytes,
            "ongoing_restores": counts.ongoing_restores,
        }
        ctx.stdout.write(json.dumps(data, sort_keys=True) + "\n")
        return 0
    out = ctx.stdout
    out.write("objects by storage class:\n")
    for cls, (n, total) in sorted(counts.objects_by_class.items()):
        out.write(f"  {cls:<14} {n:>10} objects  {_size(total):>10}\n")
    if not counts.objects_by_class:
        out.write("  (none)\n")
    out.write(f"restoring: {counts.restoring_objects} objects; restored and readable: "
              f"{counts.restored_objects} objects\n")
    out.write(f"staged in the catalog: {counts.staged_blobs} blobs, "
              f"{_size(counts.staged_bytes)}\n")
    out.write(f"hot blobs in backends: {counts.hot_blobs}, {_size(counts.hot_bytes)}\n")
    live = (
        f"{100 * counts.container_live_bytes / counts.container_members_bytes:.0f}% live"
        if counts.container_members_bytes
        else "empty"
    )
    out.write(f"containers: {counts.containers}, {_size(counts.container_bytes)} ({live})\n")
    out.write(f"ongoing restores: {counts.ongoing_restores}\n")
    return 0


def run_restore(ctx: CommandContext) -> int:
    from catalog.records import ROLE_ADMIN
    from gateway.principals import Principal

    bucket_name, _, key = ctx.args.target.partition("/")
    if not key:
        raise InvalidArgument("name the object as BUCKET/KEY")
    with ctx.open_gateway() as gateway:
        org = _org(gateway, ctx.args.org)
        # The operator at the command line acts as an admin of the org it names.
        principal = Principal(name="operator (cli)", user_id=None, roles={org.name: ROLE_ADMIN})
        ticket = gateway.objects.request_restore(
            principal, org.name, bucket_name, key, days=ctx.args.days, tier=ctx.args.tier
        )
    quote = f"{ticket.quote_usd} USD" if ticket.quote_usd is not None else "not quoted"
    if ticket.status == "available":
        ctx.stdout.write(
            f"{bucket_name}/{key} is readable already (until {_when(ticket.expires_at)})\n"
        )
    elif ticket.expires_at is not None:
        ctx.stdout.write(
            f"{bucket_name}/{key} is readable now (its bytes were still hot) until "
            f"{_when(ticket.expires_at)}; quote {quote}\n"
        )
    else:
        ctx.stdout.write(
            f"restore of {bucket_name}/{key} started ({ticket.tier}); quote {quote}; the "
            "engine marks it done when the copy is readable\n"
        )
    return 0


def run_retained_list(ctx: CommandContext) -> int:
    bucket_name, _, prefix = ctx.args.target.partition("/")
    with ctx.open_gateway() as gateway:
        org = _org(gateway, ctx.args.org)
        rows = gateway.objects.list_retained(_operator(org), org.name, bucket_name, prefix)
    for row in rows:
        if ctx.args.json:
            ctx.stdout.write(json.dumps({
                "id": row.id, "key": row.key, "size": row.size, "etag": row.etag,
                "storage_class": row.storage_class, "reason": row.reason,
                "deleted_at": row.deleted_at.isoformat(),
                "retain_until": row.retain_until.isoformat(),
            }) + "\n")
        else:
            ctx.stdout.write(
                f"{row.id:>8}  {row.key}  {_size(row.size)}  {row.storage_class}  "
                f"{row.reason} {_when(row.deleted_at)}, kept until {_when(row.retain_until)}\n"
            )
    if not rows and not ctx.args.json:
        ctx.stdout.write("no retained objects\n")
    return 0


def run_retained_recover(ctx: CommandContext) -> int:
    bucket_name, _, key = ctx.args.target.partition("/")
    if not key:
        raise InvalidArgument("name the object as BUCKET/KEY")
    with ctx.open_gateway() as gateway:
        org = _org(gateway, ctx.args.org)
        record = gateway.objects.recover_retained(
            _operator(org), org.name, bucket_name, key, ctx.args.retained_id
        )
    ctx.stdout.write(f"recovered {bucket_name}/{key} ({_size(record.size)}, "
                     f"{record.storage_class})\n")
    return 0


# -- helpers -------------------------------------------------------------------------------


def _operator(org: Org) -> Any:
    """The operator at the command line acts as an admin of the org it names."""
    from catalog.records import ROLE_ADMIN
    from gateway.principals import Principal

    return Principal(name="operator (cli)", user_id=None, roles={org.name: ROLE_ADMIN})


def _org(gateway: Gateway, name: str | None) -> Org:
    if name:
        org = gateway.catalog.get_org(name)
        if org is None:
            raise InvalidArgument(f"no org named {name!r}")
        return org
    orgs = gateway.catalog.list_orgs()
    if len(orgs) != 1:
        names = ", ".join(o.name for o in orgs) or "none"
        raise InvalidArgument(f"name the org with --org (orgs: {names})")
    return orgs[0]


def _describe(result: object) -> str:
    if result is None:
        return "nothing to do"
    if hasattr(result, "polled"):
        done = len(getattr(result, "completed", []))
        return f"{result.polled} restores polled, {done} completed"
    return str(result)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "unknown"
