"""Tiering policies: which objects go cold, and when.

A :class:`Policy` is built in three layers, each overriding the keys it sets:

1. the ``[tiering]`` section of the config file (the defaults for every bucket),
2. the org's rules, stored in the catalog (``tiering_policies`` with no bucket),
3. the bucket's rules, stored the same way for that bucket.

Stored rules are JSON objects with any of the keys of :data:`RULE_KEYS`; the admin API
stores them with :func:`store_rules`, which validates first. An object is *due* for cold
storage when the policy is enabled, no keep-hot rule protects its key, its key passes the
include/exclude globs, its size is within the thresholds, and ``transition_after`` seconds
have passed since it was written (``basis = "write"``) or last read (``"access"``; reads are
recorded at most once a day, DESIGN.md). An object a client PUT in a cold class is due at
once, whatever the policy says (the engine checks that, not the policy).

Globs (``include``, ``exclude``, ``keep_hot``): ``*`` and ``?`` stay within one path
segment, ``**`` crosses ``/``, ``[abc]`` is a character class. A pattern without ``/``
matches the key's last segment anywhere (``*.tmp``); one with ``/`` matches the whole key
(``logs/**``); a pattern ending in ``/`` matches everything under that prefix (``logs/``).

Presets protect the metadata of backup tools, wherever the repository sits in the bucket:

- ``restic``: only pack files (``data/xx/<64 hex>``) go cold; ``config``, ``keys/``,
  ``snapshots/``, ``index/`` and ``locks/`` stay hot. restic keeps tree blobs in ``data/``
  packs too, so the host whose local cache is warm keeps working; another host must
  restore ``data/`` first (README.md, "Tiering and restores").
- ``kopia``: only ``p`` blobs (content packs) go cold; ``q`` (metadata) packs, indexes,
  manifests, ``kopia.repository`` and the rest stay hot.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from gateway.errors import InvalidArgument

if TYPE_CHECKING:
    from catalog.api import Catalog
    from catalog.records import Bucket, ObjectRecord
    from gateway.config import TieringConfig

log = logging.getLogger(__name__)

BASES = ("write", "access")
PRESETS = ("", "restic", "kopia")

#: restic pack files: ``data/<2 hex>/<64 hex>`` (``data/<64 hex>`` in the old S3 layout).
_RESTIC_COLD = re.compile(r"(?:^|/)data/(?:[0-9a-f]{2}/)?[0-9a-f]{64}$")
#: kopia content packs: a last segment ``p<hex>...`` (session suffixes allowed).
_KOPIA_COLD = re.compile(r"(?:^|/)p[0-9a-f]{16,}(?:-[A-Za-z0-9-]*)?$")
_PRESET_COLD: dict[str, re.Pattern[str]] = {"restic": _RESTIC_COLD, "kopia": _KOPIA_COLD}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Policy:
    """The effective tiering policy of one bucket."""

    #: False keeps everything hot (a PUT in a cold class still goes cold).
    enabled: bool = True
    #: Seconds of staging before an object goes cold (at most a day is the sane range).
    transition_after: float = 12 * 3600.0
    #: ``write``: counted from the write; ``access``: from the last read (or the write).
    basis: str = "write"
    #: Objects smaller than this stay hot (bytes; 0: no lower bound).
    min_size: int = 0
    #: Objects larger than this stay hot (bytes; 0: no upper bound).
    max_size: int = 0
    #: Only keys matching one of these go cold (empty: every key).
    include: tuple[str, ...] = ()
    #: Keys matching one of these stay hot.
    exclude: tuple[str, ...] = ()
    #: Keys matching one of these stay hot (as ``exclude``; kept apart so a preset user
    #: can add their own protections without restating the excludes).
    keep_hot: tuple[str, ...] = ()
    #: ``restic`` or ``kopia``: built-in keep-hot rules of that tool ("" for none).
    preset: str = ""

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise InvalidArgument(f"policy basis {self.basis!r}: expected write or access")
        if self.preset not in PRESETS:
            raise InvalidArgument(
                f"policy preset {self.preset!r}: expected one of restic, kopia (or empty)"
            )
        if self.transition_after < 0:
            raise InvalidArgument("policy transition_after cannot be negative")
        if self.min_size < 0 or self.max_size < 0:
            raise InvalidArgument("policy size thresholds cannot be negative")
        for pattern in (*self.include, *self.exclude, *self.keep_hot):
            _glob(pattern)

    # -- decisions -------------------------------------------------------------------------
    def keeps_hot(self, key: str) -> bool:
        """True if a keep-hot rule (the preset's or a ``keep_hot`` glob) protects ``key``."""
        cold_only = _PRESET_COLD.get(self.preset)
        if cold_only is not None and not cold_only.search(key):
            return True
        return any(_glob(p)(key) for p in self.keep_hot)

    def selects(self, key: str, size: int) -> bool:
        """True if ``key`` of ``size`` bytes may go cold under this policy (age aside)."""
        if not self.enabled or self.keeps_hot(key):
            return False
        if size < self.min_size or (self.max_size and size > self.max_size):
            return False
        if self.include and not any(_glob(p)(key) for p in self.include):
            return False
        return not any(_glob(p)(key) for p in self.exclude)

    def due_at(self, record: ObjectRecord) -> datetime:
        """When ``record`` has been staged long enough."""
        start = record.created_at
        if self.basis == "access" and record.last_access is not None:
            start = max(start, record.last_access)
        return start + timedelta(seconds=self.transition_after)

    def is_due(self, record: ObjectRecord, now: datetime, *, ignore_age: bool = False) -> bool:
        """True if ``record`` should go cold now (``ignore_age``: whatever its age)."""
        if not self.selects(record.key, record.size):
            return False
        return ignore_age or self.due_at(record) <= now

    # -- layering --------------------------------------------------------------------------
    def with_rules(self, rules: Mapping[str, Any]) -> Policy:
        """This policy with the (validated) ``rules`` applied on top."""
        return dataclasses.replace(self, **validate_rules(rules))

    def to_rules(self) -> dict[str, Any]:
        """The policy as stored rules (JSON-friendly)."""
        out = dataclasses.asdict(self)
        for name in ("include", "exclude", "keep_hot"):
            out[name] = list(out[name])
        return out


#: The keys stored rules may set.
RULE_KEYS = tuple(f.name for f in dataclasses.fields(Policy))


def parse_duration(value: Any, name: str = "transition_after") -> float:
    """Seconds from a number or a text such as ``"90"``, ``"30m"``, ``"12h"``, ``"7d"``."""
    if isinstance(value, bool):
        raise InvalidArgument(f"policy {name}: expected seconds or a duration such as 12h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise InvalidArgument(f"policy {name}: expected seconds or a duration such as 12h")
    if seconds < 0:
        raise InvalidArgument(f"policy {name} cannot be negative")
    return seconds


def validate_rules(rules: Mapping[str, Any]) -> dict[str, Any]:
    """Check stored rules and return them in the policy's types; ``InvalidArgument`` names
    the first bad key."""
    if not isinstance(rules, Mapping):
        raise InvalidArgument("policy rules must be a JSON object")
    out: dict[str, Any] = {}
    for key, value in rules.items():
        if key not in RULE_KEYS:
            raise InvalidArgument(
                f"policy rule {key!r} is unknown (known: {', '.join(RULE_KEYS)})"
            )
        if key == "enabled":
            if not isinstance(value, bool):
                raise InvalidArgument("policy enabled: expected true or false")
            out[key] = value
        elif key == "transition_after":
            out[key] = parse_duration(value)
        elif key in ("min_size", "max_size"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgument(f"policy {key}: expected a number of bytes (0 or more)")
            out[key] = value
        elif key in ("include", "exclude", "keep_hot"):
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise InvalidArgument(f"policy {key}: expected a list of glob patterns")
            for pattern in value:
                _glob(pattern)
            out[key] = tuple(value)
        elif key == "basis":
            if value not in BASES:
                raise InvalidArgument("policy basis: expected write or access")
            out[key] = value
        elif key == "preset":
            if value not in PRESETS:
                raise InvalidArgument("policy preset: expected restic, kopia or empty")
            out[key] = value
    return out


def policy_from_config(config: TieringConfig) -> Policy:
    """The default policy the ``[tiering]`` section describes."""
    return Policy(
        enabled=config.enabled,
        transition_after=config.transition_after,
        basis=config.transition_basis,
        min_size=config.min_size,
        max_size=config.max_size,
        include=tuple(config.include),
        exclude=tuple(config.exclude),
        keep_hot=tuple(config.keep_hot),
        preset=config.preset,
    )


def stored_rules(rules: Mapping[str, Any]) -> dict[str, Any]:
    """``rules`` validated (alone and over the defaults) in the form the catalog keeps:
    only the keys given. Raises ``InvalidArgument`` naming the bad key."""
    checked = validate_rules(rules)
    Policy().with_rules(checked)  # the combination must make sense on its own too
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in checked.items()}


def store_rules(
    catalog: Catalog,
    org_id: int,
    bucket_id: int | None,
    rules: Mapping[str, Any] | None,
    *,
    updated_by: str,
) -> None:
    """Validate and store the rules of an org or bucket (None removes them): what the
    admin API calls. The stored form keeps only the keys given."""
    stored = stored_rules(rules) if rules is not None else None
    catalog.set_tiering_policy(org_id, bucket_id, stored, updated_by=updated_by)


class PolicyResolver:
    """Effective policies per bucket for one engine pass (read once per bucket)."""

    def __init__(self, catalog: Catalog, default: Policy) -> None:
        self.catalog = catalog
        self.default = default
        self._cache: dict[int, Policy] = {}

    def for_bucket(self, bucket: Bucket) -> Policy:
        """The bucket's effective policy; a stored rule that no longer validates (written
        by an older version) is ignored with the default in its place."""
        found = self._cache.get(bucket.id)
        if found is None:
            org_rules, bucket_rules = self.catalog.tiering_rules(bucket.org_id, bucket.id)
            found = self.default
            for rules in (org_rules, bucket_rules):
                try:
                    found = found.with_rules(rules)
                except InvalidArgument as error:
                    log.warning(
                        "ignoring invalid stored tiering rules of bucket %s (%s): %s",
                        bucket.id,
                        error,
                        rules,
                    )
            self._cache[bucket.id] = found
        return found


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> Callable[[str], bool]:
    """A matcher for one glob (see the module doc); ``InvalidArgument`` if malformed."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidArgument("a glob pattern cannot be empty")
    whole = "/" in pattern.rstrip("/") or pattern.endswith("/")
    text = pattern + "**" if pattern.endswith("/") else pattern
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if text.startswith("**", i):
            out.append(".*")
            i += 2
            if text.startswith("/", i):
                # "a/**/b" also matches "a/b".
                out[-1] = "(?:.*/)?"
                i += 1
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = text.find("]", i + 1)
            if end < 0:
                raise InvalidArgument(f"glob {pattern!r}: unclosed [")
            body = text[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body.replace(chr(92), chr(92) * 2)}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    try:
        regex = re.compile("".join(out) + r"\Z", re.DOTALL)
    except re.error as exc:
        raise InvalidArgument(f"glob {pattern!r}: {exc}") from None
    if whole:
        return lambda key: regex.match(key) is not None
    return lambda key: regex.match(key.rsplit("/", 1)[-1]) is not None


def restore_on_read(settings: Mapping[str, Any]) -> bool:
    """The org setting ``restore_on_read`` (default false): a WebDAV GET of an archived
    object files a restore (answering 503 + Retry-After) instead of refusing."""
    return settings.get("restore_on_read") is True


def restore_tier(settings: Mapping[str, Any]) -> str:
    """The org setting ``restore_tier``: the tier restore-on-read uses (default Standard)."""
    tier = settings.get("restore_tier", "Standard")
    return tier if tier in ("Standard", "Bulk") else "Standard"
