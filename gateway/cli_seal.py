"""``coolstorage seal`` / ``unseal``: the stored format from the command line.

``coolstorage seal --recipient age1... < plain > sealed`` writes one segment (also a valid
age file: ``age -d -i key.txt < sealed | zstd -d`` gives the plaintext back);
``coolstorage unseal --identity key.txt [--range 0-99] < sealed > plain`` reads it back.
The work is done by :mod:`gateway.sealing.cli`; this module only adds the parsers.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gateway.cli import CommandContext


def register(subparsers: Any) -> None:
    from gateway.sealing.segment import DEFAULT_BLOCK_SIZE, DEFAULT_LEVEL

    seal: argparse.ArgumentParser = subparsers.add_parser(
        "seal",
        help="seal stdin into one segment (age + seekable zstd) on stdout",
        description="Compress stdin into seekable zstd frames, encrypt it to the age "
        "recipients and write the segment to stdout.",
    )
    seal.add_argument(
        "-r",
        "--recipient",
        action="append",
        required=True,
        metavar="AGE1...",
        help="an age X25519 recipient (repeatable)",
    )
    seal.add_argument(
        "--block-size",
        type=int,
        default=DEFAULT_BLOCK_SIZE,
        metavar="BYTES",
        help=f"plaintext bytes per zstd frame (default: {DEFAULT_BLOCK_SIZE})",
    )
    seal.add_argument(
        "--level", type=int, default=DEFAULT_LEVEL, help=f"zstd level (default: {DEFAULT_LEVEL})"
    )
    seal.set_defaults(func=run_seal)

    unseal: argparse.ArgumentParser = subparsers.add_parser(
        "unseal",
        help="turn a segment on stdin back into its plaintext on stdout",
        description="Decrypt and decompress a segment read from stdin; with --range, only "
        "that byte range of the plaintext (reading only the frames it needs).",
    )
    unseal.add_argument(
        "-i", "--identity", required=True, metavar="FILE", help="an age identity file"
    )
    unseal.add_argument(
        "--range",
        metavar="START-END",
        help="a plaintext byte range: START-END inclusive, START- or -N (the last N bytes)",
    )
    unseal.set_defaults(func=run_unseal)


def run_seal(ctx: CommandContext) -> int:
    from gateway.sealing.cli import seal_command

    args = ctx.args
    return seal_command(
        args.recipient, sys.stdin.buffer, sys.stdout.buffer, args.block_size, args.level
    )


def run_unseal(ctx: CommandContext) -> int:
    from gateway.sealing.cli import unseal_command

    args = ctx.args
    return unseal_command(args.identity, args.range, sys.stdin.buffer, sys.stdout.buffer)
