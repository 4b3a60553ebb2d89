"""``coolstorage config check``: validate the configuration and show it."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli import CommandContext


def register(subparsers: Any) -> None:
    group: argparse.ArgumentParser = subparsers.add_parser(
        "config", help="inspect the configuration"
    )
    commands = group.add_subparsers(title="config commands", metavar="COMMAND")
    group.set_defaults(group_parser=group)
    check = commands.add_parser(
        "check",
        help="validate the config and print the effective values (secrets hidden)",
        description="Read the config file and environment exactly as serve would, report "
        "the first problem as one line (exit 2), or print the effective configuration as "
        "TOML with every secret shown as ***.",
    )
    check.set_defaults(func=run_check)


def run_check(ctx: CommandContext) -> int:
    from gateway.config import dump_config

    ctx.stdout.write(dump_config(ctx.config))
    return 0
