"""The ``coolstorage`` command.

Each command group lives in its own module with a ``register(subparsers)`` function that adds
its parsers and sets ``func`` to a handler ``handler(ctx: CommandContext) -> int``. Adding a
group (``user``, ``org``, ``tier``...) is one module and one line in :data:`COMMAND_MODULES`.

The global options ``--config``, ``--log-level`` and ``--log-format`` are accepted before
or after the command name. Any :class:`~gateway.errors.CoolStorageError` reaching
:func:`main` is printed as one line, ``coolstorage: error: <message>``, with exit status 2
for a configuration problem and 1 otherwise; only a bug shows a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from gateway.config import LOG_FORMATS, LOG_LEVELS, Config, load_config
from gateway.errors import ConfigError, CoolStorageError
from gateway.logs import redact, register_secret, setup_logging

if TYPE_CHECKING:
    from gateway.app import Gateway

PROG = "coolstorage"

#: Modules with a ``register(subparsers)`` function, in the order ``--help`` lists them.
COMMAND_MODULES: list[str] = [
    "gateway.cli_serve",
    "gateway.cli_config",
    "gateway.cli_db",
    "gateway.cli_keys",
    "gateway.cli_seal",
    "gateway.cli_identity",
    "gateway.cli_tier",
    "gateway.cli_client",
]


class CommandParser(argparse.ArgumentParser):
    """An argument parser that also accepts the global options (for sub-commands)."""

    def __init__(self, *args: Any, global_options: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if global_options:
            add_global_options(self, default=argparse.SUPPRESS)


def add_global_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="the TOML config file (default: $COOLSTORAGE_CONFIG, else ./coolstorage.toml "
        "when present, else built-in defaults)",
    )
    group.add_argument(
        "--log-level", choices=LOG_LEVELS, default=default, help="log level (default: info)"
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=default,
        help="log line format: text for people, json for machines (default: text)",
    )


class CommandContext:
    """What a command handler gets: its arguments, and the config and gateway on demand.

    The config is loaded (and logging set up from it) the first time :attr:`config` is
    used, so commands that need no config never fail on one.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        *,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.args = args
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self._log_stream = stderr
        self._config: Config | None = None
        self.overrides: dict[str, dict[str, Any]] = {}
        log_overrides = {
            key: value
            for key, value in (
                ("level", getattr(args, "log_level", None)),
                ("format", getattr(args, "log_format", None)),
            )
            if value is not None
        }
        if log_overrides:
            self.overrides["log"] = log_overrides

    def override(self, section: str, key: str, value: Any) -> None:
        """Set an explicit value (from a command's own option) before the config loads."""
        if self._config is not None:
            raise RuntimeError("the config is already loaded")
        self.overrides.setdefault(section, {})[key] = value

    @property
    def config(self) -> Config:
        if self._config is None:
            config = load_config(getattr(self.args, "config", None), overrides=self.overrides)
            for secret in config.secrets():
                register_secret(secret)
            setup_logging(config.log.level, config.log.format, stream=self._log_stream)
            self._config = config
        return self._config

    def open_gateway(self, *, upgrade: bool | None = None) -> Gateway:
        """Open the whole gateway (catalog, backends, keys); the caller closes it."""
        from gateway.app import Gateway

        return Gateway.open(self.config, upgrade=upgrade)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every registered command."""
    parser = CommandParser(
        prog=PROG,
        description="Cool Storage: a storage gateway that compresses, encrypts, catalogues "
        "and tiers data into cheap cold storage.",
        global_options=False,
    )
    add_global_options(parser, default=None)
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=CommandParser
    )
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    func = getattr(args, "func", None)
    if func is None:
        # A command group without its sub-command (``coolstorage db``) prints its help.
        (getattr(args, "group_parser", None) or parser).print_help(sys.stderr)
        return 2
    ctx = CommandContext(args)
    try:
        return int(func(ctx) or 0)
    except CoolStorageError as error:
        print(f"{PROG}: error: {error_line(error)}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1


def error_line(error: BaseException) -> str:
    """One line for an error: its first line, with secrets masked."""
    text = redact(str(error)).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    return first

if __name__ == "__main__":
    sys.exit(main())
