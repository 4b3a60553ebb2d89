"""``coolstorage seal`` / ``unseal``: the stored format from the command line.

The work is done by :mod:`gateway.sealing.cli` (``seal_command`` / ``unseal_command``);
this module only adds the parsers.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway.cli import CommandContext


def register(subparsers: Any) -> None:
    seal: argparse.ArgumentParser = subparsers.add_parser(
        "seal",
        help="seal a file into one segment (age + seekable zstd) for the given recipients",
    )
    seal.add_argument("input", nargs="?", default="-", help="file to seal (default: stdin)")
    seal.add_argument("-o", "--output", default="-", help="where to write (default: stdout)")
    seal.add_argument(
        "-r", "--recipient", action="append", default=[], metavar="AGE1...",
        help="an age X25519 recipient (repeatable)",
    )
    seal.set_defaults(func=run_seal)

    unseal: argparse.ArgumentParser = subparsers.add_parser(
        "unseal", help="turn a sealed segment back into its plaintext"
    )
    unseal.add_argument("input", nargs="?", default="-", help="segment to read (default: stdin)")
    unseal.add_argument("-o", "--output", default="-", help="where to write (default: stdout)")
    unseal.add_argument(
        "-i", "--identity", action="append", default=[], metavar="FILE",
        help="an age identity file (repeatable)",
    )
    unseal.set_defaults(func=run_unseal)


def run_seal(ctx: CommandContext) -> int:
    from gateway.sealing.cli import seal_command  # type: ignore[import-not-found]

    return int(seal_command(ctx.args) or 0)


def run_unseal(ctx: CommandContext) -> int:
    from gateway.sealing.cli import unseal_command  # type: ignore[import-not-found]

    return int(unseal_command(ctx.args) or 0)
