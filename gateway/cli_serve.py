"""``coolstorage serve``: run the listeners and the background engine."""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli import CommandContext


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="run the S3, WebDAV and admin listeners and the background engine",
        description="Run the gateway until SIGTERM or Ctrl-C. On the first start with an "
        "empty catalog, an admin user and an S3 access key are created and printed once.",
    )
    parser.add_argument(
        "--no-engine",
        action="store_true",
        help="do not run the background engine here (it runs elsewhere)",
    )
    parser.set_defaults(func=run)


def run(ctx: CommandContext) -> int:
    from gateway.server import serve

    if ctx.args.no_engine:
        ctx.override("engine", "enabled", False)
    return serve(ctx.config, out=ctx.stdout)
