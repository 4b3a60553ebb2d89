"""``coolstorage keys``: master key rotation and org identity export."""

from __future__ import annotations

import argparse
import os
from typing import Any

from gateway.cli import CommandContext
from gateway.errors import ConfigError


def register(subparsers: Any) -> None:
    group: argparse.ArgumentParser = subparsers.add_parser(
        "keys", help="master key rotation and org key export"
    )
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(title="keys commands", metavar="COMMAND")

    rotate = commands.add_parser(
        "rotate-master",
        help="re-wrap every org identity under the current master key",
        description="After putting a new key in keys.master_key_file (or "
        "COOLSTORAGE_KEYS_MASTER_KEY) and listing the old key file in "
        "keys.previous_master_key_files, re-wrap every org identity and access-key secret "
        "under the new key. Stored data is not touched. Idempotent.",
    )
    rotate.set_defaults(func=run_rotate)

    export = commands.add_parser(
        "export",
        help="write an org's age identity, to decrypt its data without the gateway",
        description="Write the org's age identity file (AGE-SECRET-KEY-1...). With it, "
        "`age -d -i FILE segment | zstd -d` recovers any segment of the org. The export is "
        "audit-logged.",
    )
    export.add_argument("--org", required=True, metavar="NAME", help="the org to export")
    export.add_argument(
        "--out",
        metavar="FILE",
        help="write to FILE (created with mode 0600; must not exist) instead of stdout",
    )
    export.set_defaults(func=run_export)


def run_rotate(ctx: CommandContext) -> int:
    from gateway.keys import rotate_master

    gateway = ctx.open_gateway()
    try:
        changed = rotate_master(gateway)
    finally:
        gateway.close()
    ctx.stdout.write(
        f"re-wrapped {changed} org identities under master key {gateway.keyring.key_id}\n"
    )
    return 0


def run_export(ctx: CommandContext) -> int:
    from gateway.keys import export_org_identity

    if ctx.args.out is None:
        gateway = ctx.open_gateway()
        try:
            export_org_identity(gateway, ctx.args.org, ctx.stdout)
        finally:
            gateway.close()
        return 0
    # Claim the output file first: a wrong path should fail before anything is opened.
    try:
        fd = os.open(ctx.args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise ConfigError(f"--out {ctx.args.out}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            gateway = ctx.open_gateway()
            try:
                export_org_identity(gateway, ctx.args.org, out)
            finally:
                gateway.close()
    except BaseException:
        os.unlink(ctx.args.out)
        raise
    ctx.stderr.write(f"wrote the identity of org {ctx.args.org} to {ctx.args.out}\n")
    return 0
