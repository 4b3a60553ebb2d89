"""The gateway's configuration: one TOML file, environment overrides, typed sections.

Options are built once, at start-up, into frozen dataclasses, one per TOML section. Each
value comes from the first of these that sets it:

1. explicit command-line arguments (``--log-level``, ``--log-format``),
2. environment variables ``COOLSTORAGE_<SECTION>_<KEY>`` (``COOLSTORAGE_SERVER_THREADS=32``;
   for a backend, ``COOLSTORAGE_BACKENDS_<NAME>_<KEY>``),
3. the TOML file (``coolstorage --config FILE``, else ``$COOLSTORAGE_CONFIG``, else
   ``./coolstorage.toml`` when present),
4. the defaults written here (and documented, option by option, in ``config.example.toml``).

Anything wrong stops start-up with a :class:`~gateway.errors.ConfigError` whose message is one
line naming the key and where the value came from; the CLI prints it and exits with status 2.

Secrets (the catalog URL, which may carry a password, and the master key) are
:class:`Secret` values whose ``str``/``repr`` is ``***``: a config dump or a log line cannot
show them by accident. Each secret option ``X`` may instead be read from a file named by
``X_file`` (a Kubernetes secret mounted as a file), and every secret value is registered with
:mod:`gateway.logs`, whose formatters mask it wherever it would appear.

Adding a section (``[identity]``, ``[ldap]``...) is local to this module: write a frozen
dataclass whose fields have defaults (mark a required field with ``required()``), give it a
``validate`` method if some values need more than a type check, and add one field to
:class:`Config`. Environment overrides, unknown-key checks, ``config check`` and the dump
then work for it with no further code.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gateway.errors import ConfigError

ENV_PREFIX = "COOLSTORAGE_"
#: The environment variable naming the config file (not itself an option).
CONFIG_ENV = "COOLSTORAGE_CONFIG"
DEFAULT_CONFIG_FILE = "coolstorage.toml"

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
LISTENERS = ("s3", "webdav", "admin")

#: Backend option names that hold secrets: hidden in dumps and masked in logs.
_SECRET_OPTION = re.compile(r"(secret|password|passwd|token|credential|private)", re.I)


class Secret:
    """A string that never shows itself: ``str``, ``repr`` and formatting give ``***``.

    Call :meth:`reveal` at the one place the value is really needed (opening the database,
    loading the key). Two secrets compare equal when their values do.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))


def required() -> Any:
    """Declare a section field that has no default: start-up stops if nothing sets it."""
    return field(default=None, metadata={"required": True})


# -- sections ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    """``[server]``: listeners, threads and where local state lives."""

    s3_listen: str = "127.0.0.1:9000"
    webdav_listen: str = "127.0.0.1:8080"
    admin_listen: str = "127.0.0.1:8081"
    tls_cert_file: str = ""
    tls_key_file: str = ""
    threads: int = 16
    request_queue_size: int = 128
    shutdown_timeout: float = 30.0
    data_dir: str = "./var"

    def validate(self) -> None:
        for name in LISTENERS:
            parse_listen(getattr(self, f"{name}_listen"), f"server.{name}_listen")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            missing = "tls_key_file" if self.tls_cert_file else "tls_cert_file"
            raise ConfigError(
                f"server.{missing}: required value missing (TLS needs both "
                "server.tls_cert_file and server.tls_key_file)"
            )
        _at_least("server.threads", self.threads, 1)
        _at_least("server.request_queue_size", self.request_queue_size, 1)
        _at_least("server.shutdown_timeout", self.shutdown_timeout, 0)
        if not self.data_dir:
            raise ConfigError("server.data_dir: must not be empty")

    def listen(self, listener: str) -> tuple[str, int] | None:
        """The ``(host, port)`` of ``listener`` (``s3``, ``webdav``, ``admin``); None if off."""
        return parse_listen(getattr(self, f"{listener}_listen"), f"server.{listener}_listen")

    @property
    def tls(self) -> tuple[str, str] | None:
        """``(certificate file, key file)`` when the listeners serve TLS."""
        if self.tls_cert_file and self.tls_key_file:
            return (self.tls_cert_file, self.tls_key_file)
        return None


@dataclass(frozen=True)
class CatalogConfig:
    """``[catalog]``: the SQL database holding all metadata."""

    #: Default: ``sqlite:///<server.data_dir>/catalog.db``.
    url: Secret = field(default_factory=lambda: Secret(""))
    pool_size: int = 10
    auto_upgrade: bool = True
    cache_ttl: float = 30.0

    def validate(self) -> None:
        url = self.url.reveal()
        if "://" not in url:
            raise ConfigError(
                "catalog.url: expected a database URL such as sqlite:///./var/catalog.db "
                "or mysql+pymysql://user:password@host/db"
            )
        _at_least("catalog.pool_size", self.pool_size, 1)
        if not 0 <= self.cache_ttl <= 30:
            raise ConfigError(
                "catalog.cache_ttl: must be between 0 and 30 seconds (a revoked key or "
                "password must stop working everywhere within 30 seconds)"
            )


@dataclass(frozen=True)
class StorageConfig:
    """``[storage]``: where new buckets go."""

    default_backend: str = "local"
    default_region: str = "local"


@dataclass(frozen=True)
class PlacementConfig:
    """``[placement]``: how a new bucket's region is chosen (tiering/placement.py).

    The regions themselves are ``[regions.CODE]`` tables; both are copied into the catalog
    at start-up, where the admin API can change them.
    """

    #: Client networks and where they are: a list of {cidr = "192.0.2.0/24", country =
    #: "DE"} or {cidr, latitude, longitude} tables, for users whose profile says neither.
    networks: Any = field(default_factory=list)
    #: Country locations added to or correcting the built-in table (capitals):
    #: {XX = [latitude, longitude]}.
    country_locations: Any = field(default_factory=dict)

    def validate(self) -> None:
        from gateway.errors import InvalidArgument
        from tiering.placement import parse_country_locations, parse_network

        if not isinstance(self.networks, list):
            raise ConfigError("placement.networks: expected a list of {cidr, country} tables")
        try:
            for table in self.networks:
                parse_network(table)
        except InvalidArgument as error:
            raise ConfigError(f"placement.networks: {error}") from None
        try:
            parse_country_locations(self.country_locations)
        except InvalidArgument as error:
            raise ConfigError(f"placement.{error}") from None


@dataclass(frozen=True)
class SealingConfig:
    """``[sealing]``: how segments are compressed before encryption."""

    block_size: int = 4 * 1024 * 1024
    level: int = 3

    def validate(self) -> None:
        if not 64 * 1024 <= self.block_size <= 64 * 1024 * 1024:
            raise ConfigError("sealing.block_size: must be between 65536 and 67108864 bytes")
        if not 1 <= self.level <= 22:
            raise ConfigError("sealing.level: must be a zstd level between 1 and 22")


@dataclass(frozen=True)
class WebdavConfig:
    """``[webdav]``: the WebDAV front end (network drives, davfs2, rclone)."""

    #: The realm named in ``WWW-Authenticate: Basic realm="..."``.
    realm: str = "Cool Storage"
    #: Bytes per read and write of a body; wsgidav's own default (8 KiB) is 2-3x slower.
    block_size: int = 1024 * 1024
    #: Answer ``PROPFIND`` with ``Depth: infinity`` (or no Depth) instead of refusing it
    #: with 403 ``propfind-finite-depth``; it walks a whole bucket in one request.
    allow_depth_infinity: bool = False
    #: How an empty folder is kept: "" stores a zero-byte object "folder/" (as the S3
    #: console does, so S3 listings show the folder too); a name such as ".keep" stores
    #: "folder/.keep" instead, hidden from WebDAV listings.
    folder_marker: str = ""
    #: Longest lifetime of a WebDAV lock in seconds; longer or infinite requests get this.
    lock_timeout_max: float = 86400.0
    #: Days a copy restored by reading an archived file stays readable (restore-on-read),
    #: unless the org's setting "restore_days" says otherwise.
    restore_days: int = 7
    #: Largest dead property (PROPPATCH) value, in bytes of XML.
    max_property_bytes: int = 65536
    #: Show an HTML listing when a browser GETs a folder.
    dir_browser: bool = True

    def validate(self) -> None:
        if not self.realm or '"' in self.realm or "\\" in self.realm:
            raise ConfigError("webdav.realm: must be non-empty, without quotes or backslashes")
        if not 64 * 1024 <= self.block_size <= 16 * 1024 * 1024:
            raise ConfigError("webdav.block_size: must be between 65536 and 16777216 bytes")
        if "/" in self.folder_marker or self.folder_marker in (".", ".."):
            raise ConfigError('webdav.folder_marker: "" or a file name without "/"')
        _at_least("webdav.lock_timeout_max", self.lock_timeout_max, 60)
        if not 1 <= self.restore_days <= 30000:
            raise ConfigError("webdav.restore_days: must be between 1 and 30000")
        _at_least("webdav.max_property_bytes", self.max_property_bytes, 1024)


@dataclass(frozen=True)
class KeysConfig:
    """``[keys]``: the operator's master key, which wraps every org's identity."""

    #: Default: ``<server.data_dir>/master.key``; created on first start when missing.
    master_key_file: str = ""
    master_key: Secret = field(default_factory=lambda: Secret(""))
    previous_master_key_files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class EngineConfig:
    """``[engine]``: the background engine running inside ``coolstorage serve``."""

    enabled: bool = True
    sweep_interval: float = 300.0
    orphan_age: float = 86400.0

    def validate(self) -> None:
        _at_least("engine.sweep_interval", self.sweep_interval, 1)
        _at_least("engine.orphan_age", self.orphan_age, 0)


@dataclass(frozen=True)
class TieringConfig:
    """``[tiering]``: the default policy, staging, containers, restores and their webhook.

    The policy keys (``enabled`` to ``preset``) are the defaults of every bucket; orgs and
    buckets override them with rules stored in the catalog (tiering/policy.py).
    """

    #: Let objects go cold at all (a PUT in a cold class goes cold regardless).
    enabled: bool = True
    #: Seconds an object stays hot (staged) before it goes cold: 12 hours. Staging is
    #: short on purpose: a week in STANDARD costs about 45% of a year in Deep Archive.
    transition_after: float = 43200.0
    #: "write" (age since the write) or "access" (since the last read).
    transition_basis: str = "write"
    #: Objects below this many bytes stay hot (0: none).
    min_size: int = 0
    #: Objects above this many bytes stay hot (0: no limit).
    max_size: int = 0
    #: Globs of keys that may go cold (empty: all).
    include: list[str] = field(default_factory=list)
    #: Globs of keys that stay hot.
    exclude: list[str] = field(default_factory=list)
    #: More globs of keys that stay hot.
    keep_hot: list[str] = field(default_factory=list)
    #: Built-in keep-hot rules: "restic", "kopia" or "" (usually set per bucket instead).
    preset: str = ""
    #: Objects up to this many bytes are staged in the catalog until packed (0: off).
    small_object_threshold: int = 1024 * 1024
    #: Objects up to this many bytes are packed into containers when they go cold, from
    #: the staging table or from their hot blob; larger ones are copied cold one by one.
    pack_threshold: int = 16 * 1024 * 1024
    #: Containers are filled up to about this many bytes.
    container_target_size: int = 128 * 1024 * 1024
    #: Join the parts of a multipart object into one container when it goes cold.
    join_multipart: bool = True
    #: The cold class archived blobs are written in.
    storage_class: str = "DEEP_ARCHIVE"
    #: Seconds between the engine's looks for due objects.
    interval: float = 300.0
    #: A container is rewritten once its live share is below this...
    rewrite_live_share: float = 0.5
    #: ...and it is older than this many days (Deep Archive bills 180 days anyway).
    rewrite_min_age_days: float = 180.0
    #: Restore tier of the copies a container rewrite reads from.
    rewrite_restore_tier: str = "Bulk"
    #: Seconds between the engine's checks for due restore polls...
    restore_poll_interval: float = 5.0
    #: ...and the longest a restore waits between two polls of the backend (backoff).
    restore_poll_max: float = 900.0
    #: POST a signed JSON message here when a restore completes ("" for none).
    restore_webhook_url: str = ""
    #: The HMAC-SHA256 key of the webhook's X-CoolStorage-Signature header.
    restore_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    #: Delivery attempts per message (with exponential backoff from 1 second).
    restore_webhook_attempts: int = 5
    #: Seconds a job lease lives without renewal (a crashed engine's job moves on after it).
    lease_ttl: float = 120.0

    def validate(self) -> None:
        from gateway.errors import CoolStorageError

        if self.transition_basis not in ("write", "access"):
            raise ConfigError('tiering.transition_basis: expected "write" or "access"')
        if self.preset not in ("", "restic", "kopia"):
            raise ConfigError('tiering.preset: expected "restic", "kopia" or ""')
        _at_least("tiering.transition_after", self.transition_after, 0)
        _at_least("tiering.min_size", self.min_size, 0)
        _at_least("tiering.max_size", self.max_size, 0)
        _at_least("tiering.small_object_threshold", self.small_object_threshold, 0)
        if self.small_object_threshold > 16 * 1024 * 1024:
            raise ConfigError(
                "tiering.small_object_threshold: at most 16777216 bytes (staged objects live "
                "in the catalog database)"
            )
        _at_least("tiering.pack_threshold", self.pack_threshold, 0)
        _at_least("tiering.container_target_size", self.container_target_size, 1024 * 1024)
        if self.storage_class not in ("DEEP_ARCHIVE", "GLACIER"):
            raise ConfigError('tiering.storage_class: expected "DEEP_ARCHIVE" or "GLACIER"')
        _at_least("tiering.interval", self.interval, 1)
        if not 0 <= self.rewrite_live_share <= 1:
            raise ConfigError("tiering.rewrite_live_share: must be between 0 and 1")
        _at_least("tiering.rewrite_min_age_days", self.rewrite_min_age_days, 0)
        if self.rewrite_restore_tier not in ("Standard", "Bulk"):
            raise ConfigError('tiering.rewrite_restore_tier: expected "Standard" or "Bulk"')
        if self.restore_poll_interval <= 0:
            raise ConfigError("tiering.restore_poll_interval: must be a positive number of seconds")
        _at_least("tiering.restore_poll_max", self.restore_poll_max, self.restore_poll_interval)
        if self.restore_webhook_url and not re.match(r"^https?://", self.restore_webhook_url):
            raise ConfigError("tiering.restore_webhook_url: expected an http:// or https:// URL")
        if self.restore_webhook_url and not self.restore_webhook_secret:
            raise ConfigError(
                "tiering.restore_webhook_secret: required value missing (the webhook's "
                "messages are signed with it)"
            )
        _at_least("tiering.restore_webhook_attempts", self.restore_webhook_attempts, 1)
        _at_least("tiering.lease_ttl", self.lease_ttl, 3)
        try:
            from tiering.policy import Policy, _glob

            for pattern in (*self.include, *self.exclude, *self.keep_hot):
                _glob(pattern)
            Policy()
        except CoolStorageError as error:
            raise ConfigError(f"tiering: {error}") from None


#: Authenticator names ``identity.authenticators`` may list.
AUTHENTICATORS = ("local", "ldap")
#: Right names (see gateway.principals.Action).
RIGHTS = ("read", "write", "delete", "archive", "restore", "manage")


@dataclass(frozen=True)
class IdentityConfig:
    """``[identity]``: authenticators, credential cache, default rights, tokens, throttling."""

    #: Tried in this order; "local" (catalog users) and "ldap" (the [ldap] section).
    authenticators: list[str] = field(default_factory=lambda: ["local"])
    #: Seconds a successful authentication is cached (0-30).
    cache_ttl: float = 30.0
    #: Rights every org member holds without grants.
    member_default_rights: list[str] = field(default_factory=lambda: ["read", "write", "delete"])
    #: Lifetime of admin API bearer tokens, in seconds.
    token_ttl: float = 43200.0
    #: Failed logins are counted per user name and per client address over this window...
    login_window: float = 300.0
    #: ...and from this many failures on, further attempts are refused...
    login_max_failures: int = 5
    #: ...for this many seconds, doubled with each further failure (at most an hour).
    login_backoff: float = 60.0

    def validate(self) -> None:
        if not self.authenticators:
            raise ConfigError("identity.authenticators: list at least one authenticator")
        for name in self.authenticators:
            if name not in AUTHENTICATORS:
                raise ConfigError(
                    f"identity.authenticators: unknown authenticator {name!r} "
                    f"(known: {', '.join(AUTHENTICATORS)})"
                )
        if len(set(self.authenticators)) != len(self.authenticators):
            raise ConfigError("identity.authenticators: an authenticator is listed twice")
        if not 0 <= self.cache_ttl <= 30:
            raise ConfigError(
                "identity.cache_ttl: must be between 0 and 30 seconds (a revoked key or "
                "password must stop working everywhere within 30 seconds)"
            )
        for name in self.member_default_rights:
            if name not in RIGHTS:
                raise ConfigError(
                    f"identity.member_default_rights: unknown right {name!r} "
                    f"(rights: {', '.join(RIGHTS)})"
                )
        _at_least("identity.token_ttl", self.token_ttl, 60)
        if self.login_window <= 0:
            raise ConfigError("identity.login_window: must be a positive number of seconds")
        _at_least("identity.login_max_failures", self.login_max_failures, 1)
        _at_least("identity.login_backoff", self.login_backoff, 0)


@dataclass(frozen=True)
class LdapConfig:
    """``[ldap]``: the directory, used when ``identity.authenticators`` lists "ldap".

    The keys are :meth:`gateway.ldap_auth.LdapAuthenticator.from_options`'s, which checks
    them when the gateway opens; empty strings mean "not set".
    """

    #: "ldap://host" or "ldaps://host:636", or a list of them tried in order.
    url: Any = ""
    start_tls: bool = False
    ca_file: str = ""
    bind_dn: str = ""
    bind_password: Secret = field(default_factory=lambda: Secret(""))
    user_dn_template: str = ""
    user_base: str = ""
    user_filter: str = "(uid={username})"
    username_attribute: str = "uid"
    group_base: str = ""
    group_filter: str = "(|(member={dn})(memberUid={username}))"
    group_name_attribute: str = "cn"
    display_name_attribute: str = "displayName"
    mail_attribute: str = "mail"
    country_attribute: str = "c"
    latitude_attribute: str = ""
    longitude_attribute: str = ""
    connect_timeout: float = 5.0
    receive_timeout: float = 10.0
    pool_size: int = 4
    #: A list of {group = "DN or name", org = "name", role = "admin" | "member"} tables.
    group_mappings: Any = field(default_factory=list)

    def validate(self) -> None:
        if not isinstance(self.url, str) and not (
            isinstance(self.url, list) and all(isinstance(u, str) for u in self.url)
        ):
            raise ConfigError("ldap.url: expected an ldap:// or ldaps:// URL or a list of them")
        if not isinstance(self.group_mappings, list):
            raise ConfigError(
                "ldap.group_mappings: expected a list of {group, org, role} tables"
            )

    def options(self) -> dict[str, Any]:
        """The options for ``LdapAuthenticator.from_options``: set values only (empty
        strings and an empty password left out; an empty ``country_attribute`` is passed,
        as it turns the attribute off). Every field is an authenticator option; a field
        that configures the gateway instead must be skipped here."""
        result: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                if value:
                    result[f.name] = value
                continue
            if value == "" and f.name != "country_attribute":
                continue
            result[f.name] = value
        return result

    @property
    def mapped_orgs(self) -> frozenset[str]:
        """The orgs ``group_mappings`` name: their memberships follow the directory."""
        return frozenset(
            str(m["org"]).strip()
            for m in self.group_mappings
            if isinstance(m, Mapping) and isinstance(m.get("org"), str)
        )


@dataclass(frozen=True)
class S3Config:
    """``[s3]``: the S3 endpoint.

    ``base_domains`` are the host names the endpoint answers virtual-hosted-style requests
    for (``bucket.s3.example.com`` with ``s3.example.com`` listed); any other Host is path
    style. A bucket's region (GetBucketLocation) is the bucket's own, set at creation from
    the client's LocationConstraint or ``storage.default_region``.
    """

    base_domains: list[str] = field(default_factory=list)
    #: Largest single PUT or part, in bytes (S3: 5 GiB).
    max_object_size: int = 5 * 1024**3
    #: Days after which an upload never completed is aborted and its parts deleted.
    multipart_expiry_days: float = 7.0
    #: Seconds between two runs of the expiry task (one engine at a time, by lease).
    multipart_expiry_interval: float = 3600.0
    #: Believe ``X-Forwarded-Proto: https`` from a TLS-terminating proxy (SSE-C needs TLS).
    trust_forwarded_proto: bool = False

    def validate(self) -> None:
        _at_least("s3.max_object_size", self.max_object_size, 1)
        _at_least("s3.multipart_expiry_days", self.multipart_expiry_days, 0)
        _at_least("s3.multipart_expiry_interval", self.multipart_expiry_interval, 1)
        for domain in self.base_domains:
            if not re.fullmatch(r"[A-Za-z0-9.-]+", domain) or domain.startswith("."):
                raise ConfigError(
                    f"s3.base_domains: {domain!r} is not a host name (e.g. s3.example.com)"
                )


@dataclass(frozen=True)
class LogConfig:
    """``[log]``: level and line format of the log on stderr."""

    level: str = "info"
    format: str = "text"

    def validate(self) -> None:
        if self.level.lower() not in LOG_LEVELS:
            raise ConfigError(f"log.level: expected one of {', '.join(LOG_LEVELS)}")
        if self.format not in LOG_FORMATS:
            raise ConfigError(f"log.format: expected one of {', '.join(LOG_FORMATS)}")


@dataclass(frozen=True, repr=False)
class BackendConfig:
    """One ``[backends.NAME]`` table: a plugin name and its options, passed through.

    The options are checked by the plugin itself (``open_backend``); here only ``type`` is
    required. ``options`` holds every key of the table, ``type`` included.
    """

    name: str
    type: str
    options: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"BackendConfig(name={self.name!r}, type={self.type!r}, options={self.public_options()!r})"

    def public_options(self) -> dict[str, Any]:
        """The options with secret-looking values replaced by ``***`` (for dumps)."""
        return {
            key: ("***" if _SECRET_OPTION.search(key) and not key.endswith("_file") else value)
            for key, value in self.options.items()
        }


@dataclass(frozen=True)
class RegionConfig:
    """One ``[regions.CODE]`` table: a place buckets can live (tiering/placement.py).

    ``backend`` names a ``[backends.NAME]`` table; ``bucket`` is that backend's bucket
    (shown to admins; default: the backend's ``bucket`` option). ``prices`` overrides the
    cost model's list prices (tiering/cost.py ``Prices``) key by key.
    """

    code: str
    backend: str
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None
    countries: tuple[str, ...] = ()
    bucket: str = ""
    prices: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Config:
    """The whole effective configuration. Build it with :func:`load_config`."""

    server: ServerConfig = field(default_factory=ServerConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    backends: Mapping[str, BackendConfig] = field(default_factory=dict)
    regions: Mapping[str, RegionConfig] = field(default_factory=dict)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    sealing: SealingConfig = field(default_factory=SealingConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    webdav: WebdavConfig = field(default_factory=WebdavConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    tiering: TieringConfig = field(default_factory=TieringConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    ldap: LdapConfig = field(default_factory=LdapConfig)
    s3: S3Config = field(default_factory=S3Config)
    log: LogConfig = field(default_factory=LogConfig)
    #: The TOML file read, if any (not an option).
    source: str | None = field(default=None, compare=False)

    #: Sections whose tables are free-form maps of named tables rather than fixed fields.
    NAMED_TABLES: ClassVar[frozenset[str]] = frozenset({"backends", "regions"})

    def secrets(self) -> list[str]:
        """Every secret value in the config (for the log formatters to mask)."""
        found: list[str] = []
        for name, cls in section_types().items():
            section = getattr(self, name)
            for f in dataclasses.fields(cls):
                value = getattr(section, f.name)
                if isinstance(value, Secret) and value:
                    found.extend(_secret_parts(value.reveal()))
        for backend in self.backends.values():
            for key, value in backend.options.items():
                if _SECRET_OPTION.search(key) and isinstance(value, str) and value:
                    found.append(value)
        return found


def section_types() -> dict[str, type]:
    """The fixed-field sections of :class:`Config`, by TOML table name."""
    hints = typing.get_type_hints(Config)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(Config)
        if f.name not in Config.NAMED_TABLES and dataclasses.is_dataclass(hints[f.name])
    }


# -- helpers used by the sections ----------------------------------------------------------


def parse_listen(value: str, key: str = "listen") -> tuple[str, int] | None:
    """Parse ``host:port`` (``[v6addr]:port`` for IPv6); an empty string means disabled."""
    if value == "":
        return None
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]+):(\d+)", value)
    if not match:
        raise ConfigError(f'{key}: expected "host:port" or "" to disable, got {value!r}')
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if port > 65535:
        raise ConfigError(f"{key}: port {port} is out of range")
    return host, port


def _at_least(key: str, value: float, minimum: float) -> None:
    if value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum:g}, got {value:g}")


def _secret_parts(value: str) -> list[str]:
    """What to mask of a secret: for a URL its password (and secret-looking query values),
    so a plain ``sqlite:///path`` stays readable in messages; anything else whole."""
    if not re.match(r"^[\w+.-]+://", value):
        return [value]
    parts = re.findall(r"^[\w+.-]+://[^:/@]*:([^@/]+)@", value)
    parts += [v for k, v in re.findall(r"[?&]([^=&]+)=([^&]+)", value) if _SECRET_OPTION.search(k)]
    return parts


# -- loading -------------------------------------------------------------------------------


@dataclass
class _Value:
    """One raw value and where it came from (for error messages)."""

    value: Any
    origin: str
    #: True for environment and command-line values: text to parse into the field's type.
    text: bool = False


_Layer = dict[str, dict[str, _Value]]


def find_config_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read: ``path``, else ``$COOLSTORAGE_CONFIG`` (both must exist),
    else ``./coolstorage.toml`` if it exists, else None (defaults only)."""
    if path:
        return Path(path)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Build the effective :class:`Config`; ``ConfigError`` (one line) if anything is wrong.

    ``env`` defaults to ``os.environ``; ``overrides`` are explicit values (from the command
    line) by section and key, and win over everything else.
    """
    env = os.environ if env is None else env
    file = find_config_file(path, env)
    toml_layer: _Layer = {}
    backend_tables: dict[str, dict[str, _Value]] = {}
    if file is not None:
        toml_layer, backend_tables = _read_toml(file)

    env_layer, env_backends = _read_env(env, set(backend_tables) or {"local"})
    cli_layer: _Layer = {
        section: {
            key: _Value(value, "from the command line", text=isinstance(value, str))
            for key, value in items.items()
        }
        for section, items in (overrides or {}).items()
    }
    for section in cli_layer:
        if section not in section_types():
            raise ConfigError(f"unknown config section [{section}] from the command line")

    merged: _Layer = {}
    for layer in (toml_layer, env_layer, cli_layer):
        for section, items in layer.items():
            merged.setdefault(section, {}).update(items)

    sections: dict[str, Any] = {}
    for name, cls in section_types().items():
        sections[name] = _build_section(name, cls, merged.get(name, {}))

    data_dir = sections["server"].data_dir.rstrip("/") or "/"
    if not sections["catalog"].url:
        sections["catalog"] = dataclasses.replace(
            sections["catalog"], url=Secret(f"sqlite:///{data_dir}/catalog.db")
        )
    if not sections["keys"].master_key_file:
        sections["keys"] = dataclasses.replace(
            sections["keys"], master_key_file=os.path.join(data_dir, "master.key")
        )

    if not backend_tables:
        backend_tables = {
            "local": {
                "type": _Value("localfs", "default"),
                "root": _Value(os.path.join(data_dir, "blobs"), "default"),
                "restore_delay": _Value(5, "default"),
            }
        }
    for name, items in env_backends.items():
        backend_tables.setdefault(name, {}).update(items)
    backends = {name: _build_backend(name, table) for name, table in backend_tables.items()}
    regions = {
        code: _build_region(code, item, backends)
        for code, item in toml_layer.get("regions", {}).items()
    }

    config = Config(
        **sections, backends=backends, regions=regions, source=str(file) if file else None
    )
    for name in section_types():
        validate = getattr(getattr(config, name), "validate", None)
        if validate is not None:
            validate()
    if "ldap" in config.identity.authenticators and not config.ldap.url:
        raise ConfigError(
            'ldap.url: required value missing (identity.authenticators lists "ldap")'
        )
    if config.storage.default_backend not in backends:
        raise ConfigError(
            f"storage.default_backend: no backend named {config.storage.default_backend!r} "
            f"is configured (add a [backends.{config.storage.default_backend}] table)"
        )
    return config


def _read_toml(file: Path) -> tuple[_Layer, dict[str, dict[str, _Value]]]:
    try:
        with file.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except OSError as error:
        raise ConfigError(f"config file {file}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {file}: {error}") from None
    origin = f"in {file}"
    known = section_types()
    layer: _Layer = {}
    backends: dict[str, dict[str, _Value]] = {}
    for section, table in data.items():
        if section == "backends":
            if not isinstance(table, dict):
                raise ConfigError(f"backends: expected tables [backends.NAME] {origin}")
            for name, options in table.items():
                if not isinstance(options, dict):
                    raise ConfigError(f"backends.{name}: expected a table {origin}")
                backends[name] = {key: _Value(value, origin) for key, value in options.items()}
            continue
        if section == "regions":
            if not isinstance(table, dict):
                raise ConfigError(f"regions: expected tables [regions.CODE] {origin}")
            layer["regions"] = {code: _Value(value, origin) for code, value in table.items()}
            continue
        if section not in known:
            hint = _did_you_mean(section, [*known, *Config.NAMED_TABLES])
            raise ConfigError(f"unknown config section [{section}] {origin}{hint}")
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table [{section}] {origin}")
        layer[section] = {key: _Value(value, origin) for key, value in table.items()}
    return layer, backends


def _read_env(
    env: Mapping[str, str], backend_names: set[str]
) -> tuple[_Layer, dict[str, dict[str, _Value]]]:
    """Environment overrides. Variables whose section part names no section are ignored
    (other tools share the prefix); a known section with an unknown key is an error."""
    known = section_types()
    layer: _Layer = {}
    backends: dict[str, dict[str, _Value]] = {}
    env_names = {name.lower().replace("-", "_"): name for name in backend_names}
    for var in env:
        # COOLSTORAGE_BACKENDS_<NAME>_TYPE defines a backend the file does not name.
        rest = var[len(ENV_PREFIX) :].lower() if var.startswith(ENV_PREFIX) else ""
        if rest.startswith("backends_") and rest.endswith("_type"):
            env_names.setdefault(rest[len("backends_") : -len("_type")], rest[len("backends_") : -len("_type")])
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        origin = f"from {var}"
        if rest.startswith("backends_"):
            tail = rest[len("backends_") :]
            for env_name in sorted(env_names, key=len, reverse=True):
                if tail.startswith(env_name + "_"):
                    key = tail[len(env_name) + 1 :]
                    backends.setdefault(env_names[env_name], {})[key] = _Value(
                        _env_scalar(env[var]), origin
                    )
                    break
            else:
                raise ConfigError(
                    f"{var}: no configured backend matches; define it with "
                    "[backends.NAME] or COOLSTORAGE_BACKENDS_<NAME>_TYPE"
                )
            continue
        for section in known:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                layer.setdefault(section, {})[key] = _Value(env[var], origin, text=True)
                break
    return layer, backends


def _env_scalar(text: str) -> Any:
    """A backend option from the environment: a TOML value if it parses as one (5, true,
    [..]), else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _build_section(name: str, cls: type, raw: dict[str, _Value]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    raw = dict(raw)
    # A secret X may come from the file named by X_file (unless X_file is a field itself).
    for field_name, hint in hints.items():
        companion = f"{field_name}_file"
        if hint is Secret and companion not in fields and companion in raw:
            item = raw.pop(companion)
            key = f"{name}.{companion}"
            path = _expect(key, item, str)
            raw[field_name] = _Value(_read_secret_file(key, path, item.origin), item.origin)
    values: dict[str, Any] = {}
    for key, item in raw.items():
        if key not in fields:
            hint = _did_you_mean(key, list(fields), prefix=f"{name}.")
            raise ConfigError(f"unknown config key {name}.{key} {item.origin}{hint}")
        values[key] = _coerce(f"{name}.{key}", item, hints[key])
    for key, f in fields.items():
        if f.metadata.get("required") and values.get(key) is None:
            raise ConfigError(f"{name}.{key}: required value missing")
    return cls(**values)


def _build_backend(name: str, table: dict[str, _Value]) -> BackendConfig:
    # Passed through untouched: the plugin validates its options and reads its own
    # ``<secret>_file`` options.
    options = {key: item.value for key, item in table.items()}
    if "type" not in options:
        raise ConfigError(f"backends.{name}.type: required value missing (the plugin name)")
    if not isinstance(options["type"], str) or not options["type"]:
        raise ConfigError(f"backends.{name}.type: expected a plugin name such as \"localfs\"")
    return BackendConfig(name=name, type=options["type"], options=types.MappingProxyType(options))


_REGION_KEYS = ("name", "latitude", "longitude", "countries", "backend", "bucket", "prices")


def _build_region(code: str, item: _Value, backends: Mapping[str, BackendConfig]) -> RegionConfig:
    """A ``[regions.CODE]`` table, checked: types, a configured backend, parsable
    coordinates, country codes and prices (by tiering/placement.py and tiering/cost.py)."""
    from gateway.errors import InvalidArgument
    from tiering.cost import Prices
    from tiering.placement import parse_country, parse_location

    where = f"regions.{code}"
    table = item.value
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", code):
        raise ConfigError(f"{where}: a region code has 1 to 64 letters, digits, '.', '_', '-'")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table {item.origin}")
    for key in table:
        if key not in _REGION_KEYS:
            hint = _did_you_mean(key, list(_REGION_KEYS), prefix=f"{where}.")
            raise ConfigError(f"unknown config key {where}.{key} {item.origin}{hint}")
    backend = table.get("backend")
    if not isinstance(backend, str) or not backend:
        raise ConfigError(f"{where}.backend: required value missing (a [backends.NAME] name)")
    if backend not in backends:
        raise ConfigError(
            f"{where}.backend: no backend named {backend!r} is configured "
            f"(add a [backends.{backend}] table)"
        )
    for key in ("name", "bucket"):
        if not isinstance(table.get(key, ""), str):
            raise ConfigError(f"{where}.{key}: expected a string {item.origin}")
    countries = table.get("countries", [])
    if not isinstance(countries, list):
        raise ConfigError(f"{where}.countries: expected a list of two-letter codes")
    prices = table.get("prices", {})
    if not isinstance(prices, dict):
        raise ConfigError(f"{where}.prices: expected a table [{where}.prices]")
    try:
        location = parse_location(table.get("latitude"), table.get("longitude"), where)
        codes = tuple(parse_country(c, f"{where}.countries") for c in countries)
        Prices.from_mapping(prices)
    except InvalidArgument as error:
        message = str(error)
        prefix = "" if message.startswith(where) else f"{where}."
        raise ConfigError(f"{prefix}{message} {item.origin}") from None
    bucket = table.get("bucket") or str(backends[backend].options.get("bucket", ""))
    return RegionConfig(
        code=code,
        backend=backend,
        name=table.get("name", ""),
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
        countries=codes,
        bucket=bucket,
        prices=types.MappingProxyType(dict(prices)),
    )


def _read_secret_file(key: str, path: str, origin: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise ConfigError(f"{key}: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{key}: {path} is not UTF-8 text") from None


_TYPE_NAMES: dict[Any, str] = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    Secret: "a string",
    list[str]: "a list of strings",
}


def _coerce(key: str, item: _Value, hint: Any) -> Any:
    if hint is Any:
        # Free-form values (lists of tables, "a string or a list"): the section's
        # validate() and its consumer check them. From text, a TOML value if it parses.
        return _env_scalar(item.value) if item.text and isinstance(item.value, str) else item.value
    if hint is Secret:
        return Secret(_expect(key, item, str, secret=True))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if item.value is None:
            return None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(key, item, args[0])
    return _expect(key, item, hint)


def _expect(key: str, item: _Value, kind: Any, *, secret: bool = False) -> Any:
    value = item.value
    if item.text and isinstance(value, str):
        try:
            return _from_text(value, kind)
        except ValueError:
            pass
    else:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind in (str, bool) and isinstance(value, kind):
            return value
        if kind == list[str] and isinstance(value, list) and all(
            isinstance(v, str) for v in value
        ):
            return list(value)
    shown = "(hidden)" if secret else json.dumps(value, default=str)
    raise ConfigError(f"{key}: expected {_TYPE_NAMES.get(kind, kind)}, got {shown} {item.origin}")


def _from_text(text: str, kind: Any) -> Any:
    if kind is str:
        return text
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(text)
    if kind == list[str]:
        if text.strip().startswith("["):
            try:
                value = tomllib.loads(f"v = {text}")["v"]
            except tomllib.TOMLDecodeError as error:
                raise ValueError(text) from error
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
            raise ValueError(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    raise ValueError(text)


def _did_you_mean(word: str, choices: list[str], *, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


# -- dumping -------------------------------------------------------------------------------


def dump_config(config: Config) -> str:
    """The effective config as TOML, secrets shown as ``***``: what ``config check`` prints."""
    lines: list[str] = []
    if config.source:
        lines.append(f"# effective configuration (file: {config.source})")
    else:
        lines.append("# effective configuration (no config file: defaults and environment)")
    for name in (f.name for f in dataclasses.fields(Config)):
        if name == "source":
            continue
        if name == "backends":
            for backend in config.backends.values():
                lines.append("")
                lines.append(f"[backends.{_toml_key(backend.name)}]")
                for key, value in backend.public_options().items():
                    lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
            continue
        if name == "regions":
            for region in config.regions.values():
                lines.append("")
                lines.append(f"[regions.{_toml_key(region.code)}]")
                for f in dataclasses.fields(region):
                    value = getattr(region, f.name)
                    if f.name != "code" and value is not None:
                        lines.append(f"{f.name} = {_toml_value(value)}")
            continue
        section = getattr(config, name)
        lines.append("")
        lines.append(f"[{name}]")
        for f in dataclasses.fields(section):
            lines.append(f"{f.name} = {_toml_value(getattr(section, f.name))}")
    return "\n".join(lines) + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, Secret):
        return '"***"' if value else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))
