"""Assembly: the :class:`Gateway` holds everything a front end or the engine needs.

``Gateway.open(config)`` checks and prepares each part in the order a person would debug
them (database, backends, keys) and stops at the first problem with a one-line
:class:`~gateway.errors.CoolStorageError`; whatever was already opened is closed again.
Front ends get ``gateway.objects`` (the :class:`~gateway.objects.ObjectService`) and nothing
else; the engine also uses ``gateway.catalog`` and ``gateway.backends``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config import Config
from gateway.errors import ConfigError, CoolStorageError, NotFound
from gateway.identity import IdentityService

if TYPE_CHECKING:
    from catalog.api import Catalog
    from gateway.objects import ObjectService
    from gateway.sealing.keys import MasterKeyring
    from tiering.backends.base import Backend

log = logging.getLogger(__name__)

#: A key no backend holds: a HEAD of it tells whether the backend answers.
READY_PROBE_KEY = ".coolstorage-ready-probe"


@dataclass(frozen=True)
class Readiness:
    """The outcome of :meth:`Gateway.readiness`: ready, or the reasons it is not."""

    ready: bool
    problems: dict[str, str] = field(default_factory=dict)


class Gateway:
    """The opened parts of one gateway process. Build with :meth:`open`, end with :meth:`close`."""

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        backends: Mapping[str, Backend],
        keyring: MasterKeyring,
        objects: ObjectService,
        identity: IdentityService | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        #: Every backend by name; from :meth:`open`, the built-in staging backend included,
        #: so the engine and the sweep see every blob's home.
        self.backends: dict[str, Backend] = dict(backends)
        self.keyring = keyring
        self.objects = objects
        #: Authentication and access administration for every front end.
        self.identity = identity or IdentityService.from_config(
            config,
            catalog,
            keyring,
            ensure_org=objects.ensure_org if objects is not None else None,
        )
        #: Unique name of this process, used as the owner of catalog leases.
        self.instance_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._closed = False

    @classmethod
    def open(cls, config: Config, *, upgrade: bool | None = None) -> Gateway:
        """Open the catalog (running migrations if ``catalog.auto_upgrade``, or if
        ``upgrade`` says so), every configured backend and the master keyring.

        Raises ``CatalogError`` for an unreachable or outdated database and ``ConfigError``
        for an unknown backend plugin, an unusable backend root or a bad master key, each
        with one line naming the culprit.
        """
        from catalog.api import Catalog
        from gateway.objects import ObjectService
        from tiering.backends import open_backend
        from tiering.placement import Placement

        opened: list[Any] = []
        try:
            catalog = Catalog(
                config.catalog.url.reveal(),
                pool_size=config.catalog.pool_size,
                cache_ttl=config.catalog.cache_ttl,
            )
            opened.append(catalog)
            if config.catalog.auto_upgrade if upgrade is None else upgrade:
                catalog.upgrade()
            else:
                catalog.check()

            backends: dict[str, Backend] = {}
            for name, backend_config in config.backends.items():
                backend = open_backend(name, backend_config.options)
                opened.append(backend)
                backends[name] = backend

            keyring = load_keyring(config)
            placement = Placement.from_config(config, catalog, backends=backends)
            objects = ObjectService(
                catalog,
                backends,
                keyring,
                default_backend=config.storage.default_backend,
                default_region=config.storage.default_region,
                block_size=config.sealing.block_size,
                level=config.sealing.level,
                small_object_threshold=config.tiering.small_object_threshold,
                placement=placement,
            )
            identity = IdentityService.from_config(
                config, catalog, keyring, ensure_org=objects.ensure_org
            )
        except BaseException:
            for thing in reversed(opened):
                with contextlib.suppress(Exception):
                    thing.close()
            raise
        log.debug(
            "gateway opened",
            extra={"backends": ",".join(backends), "master_key": keyring.key_id},
        )
        return cls(config, catalog, objects.backends, keyring, objects, identity)

    def start_background(self) -> None:
        """Start what a long-running process needs beside its requests: the flusher of
        the read counters (``serve`` calls it; one-shot commands do not)."""
        self.objects.counters.start()

    def readiness(self) -> Readiness:
        """Whether the catalog answers and every backend is reachable, with reasons if not."""
        problems: dict[str, str] = {}
        try:
            self.catalog.check()
        except CoolStorageError as error:
            problems["catalog"] = _one_line(str(error))
        except Exception as error:  # a readiness probe must answer, whatever broke
            problems["catalog"] = f"{type(error).__name__}: {_one_line(str(error))}"
        for name, backend in self.backends.items():
            try:
                backend.head(READY_PROBE_KEY)
            except NotFound:
                pass
            except CoolStorageError as error:
                problems[f"backend {name}"] = _one_line(str(error))
            except Exception as error:
                problems[f"backend {name}"] = f"{type(error).__name__}: {_one_line(str(error))}"
        return Readiness(ready=not problems, problems=problems)

    def close(self) -> None:
        """Flush counters and release connections; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for closer in (self.objects.close, self.identity.close, *(b.close for b in self.backends.values()), self.catalog.close):
            try:
                closer()
            except Exception:
                log.exception("error while closing the gateway")

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_keyring(config: Config) -> MasterKeyring:
    """The master keyring: the current key from ``keys.master_key`` (environment) or else
    ``keys.master_key_file`` (created, 0600, on first start), plus the previous keys named in
    ``keys.previous_master_key_files`` for a rotation."""
    from gateway.sealing.keys import MasterKey, MasterKeyring

    keys = config.keys
    if keys.master_key:
        try:
            current = MasterKey.from_value(keys.master_key.reveal())
        except ConfigError as error:
            raise ConfigError(f"keys.master_key: {error}") from None
    else:
        ensure_master_key_file(Path(keys.master_key_file))
        current = MasterKey.from_file(keys.master_key_file)
    previous = [MasterKey.from_file(path) for path in keys.previous_master_key_files]
    return MasterKeyring(current, previous)


def ensure_master_key_file(path: Path) -> bool:
    """Create ``path`` with a new random master key (mode 0600) if it does not exist.

    Returns True when it created the file. Two processes starting at once cannot both
    create it: the file is opened with ``O_EXCL``, and the loser reads the winner's key.
    """
    if path.exists():
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    except OSError as error:
        raise ConfigError(
            f"keys.master_key_file: cannot create {path}: {error.strerror or error}"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(
            "# Cool Storage master key: it unlocks every org's data. Back it up; never share it.\n"
        )
        handle.write(f"# created {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
        handle.write(secrets.token_bytes(32).hex() + "\n")
    log.warning("created a new master key file %s: back it up, it unlocks all data", path)
    return True


def _one_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
