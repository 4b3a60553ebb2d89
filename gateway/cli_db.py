"""``coolstorage db upgrade``: bring the catalog schema to the latest version."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli import CommandContext


def register(subparsers: Any) -> None:
    group: argparse.ArgumentParser = subparsers.add_parser("db", help="manage the catalog database")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(title="db commands", metavar="COMMAND")
    upgrade = commands.add_parser(
        "upgrade",
        help="run the catalog migrations up to the latest schema",
        description="Run the Alembic migrations of the catalog named by catalog.url. Safe "
        "to run again; serve does it itself when catalog.auto_upgrade is true.",
    )
    upgrade.set_defaults(func=run_upgrade)


def run_upgrade(ctx: CommandContext) -> int:
    from catalog.api import Catalog

    config = ctx.config
    catalog = Catalog(config.catalog.url.reveal(), pool_size=1)
    try:
        catalog.upgrade()
        catalog.check()
    finally:
        catalog.close()
    ctx.stdout.write("the catalog is at the latest schema\n")
    return 0
