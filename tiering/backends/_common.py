"""Helpers the backend plugins share: option parsing, key checks, chunk iterators.

Nothing here imports a storage library, so the registry and ``localfs`` stay importable when
``boto3`` is missing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from gateway.errors import BackendError, ConfigError, InvalidArgument, InvalidName, InvalidRange

from .base import RESTORE_TIERS, STORAGE_CLASSES

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

#: Size of the pieces ``get`` yields and ``put`` reads (DESIGN: 256 KiB-1 MiB pieces).
CHUNK_SIZE = 1 * MiB

#: Longest restore accepted (100 years), so expiry dates stay representable.
MAX_RESTORE_DAYS = 36_500

#: S3's limit on a key, which every backend keeps so blobs can move between them.
MAX_KEY_BYTES = 1024

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "K": KiB, "M": MiB, "G": GiB, "T": 1024 * GiB}

T = TypeVar("T")


class Options:
    """Typed access to one backend's config table, with errors that name the option.

    Each getter consumes its option; :meth:`finish` rejects whatever is left, so a typo in
    the config file is a ``ConfigError`` rather than a silently ignored setting. The
    registry's ``type`` key is accepted (and must name this plugin).
    """

    def __init__(self, plugin: str, name: str, options: Mapping[str, Any]) -> None:
        self.plugin = plugin
        self.name = name
        self._left = dict(options)
        kind = self._left.pop("type", plugin)
        if kind != plugin:
            raise self.error(f"has type {kind!r} but was given to the {plugin!r} plugin")

    def error(self, message: str) -> ConfigError:
        """A ``ConfigError`` prefixed with the backend's name."""
        return ConfigError(f"backend {self.name!r} ({self.plugin}): {message}")

    def _take(self, key: str, kinds: tuple[type, ...], what: str, default: Any) -> Any:
        if key not in self._left:
            return default
        value = self._left.pop(key)
        # bool is an int in Python; an int option given ``true`` is a mistake.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(f"option {key!r} must be {what}, not {type(value).__name__}")
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self._take(key, (str,), "a string", None)
        return default if value is None else str(value)

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise self.error(f"option {key!r} is required")
        return value

    def flag(self, key: str, default: bool) -> bool:
        return bool(self._take(key, (bool,), "true or false", default))

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = float(self._take(key, (int, float), "a number", default))
        if value < minimum:
            raise self.error(f"option {key!r} must be at least {minimum}, not {value}")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = int(self._take(key, (int,), "an integer", default))
        return self._bounded(key, value, minimum, maximum)

    def size(self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
        """A byte count: an integer or a string such as ``"8 MiB"`` (binary units)."""
        raw = self._take(key, (int, str), "a byte count such as 8388608 or '8 MiB'", default)
        if isinstance(raw, str):
            match = _SIZE_RE.match(raw)
            if not match:
                raise self.error(f"option {key!r}: cannot read {raw!r} as a byte count")
            unit = (match.group(2) or "").upper()[:1]
            raw = int(match.group(1)) * _SIZE_UNITS[unit]
        return self._bounded(key, int(raw), minimum, maximum)

    def table(self, key: str) -> dict[str, str]:
        value = self._take(key, (dict,), "a table of strings", {})
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise self.error(f"option {key!r} must map strings to strings")
        return dict(value)

    def secret(self, key: str) -> str | None:
        """A secret given inline as ``key`` or in a file named by ``key_file``; never both."""
        inline = self.text(key)
        path = self.text(f"{key}_file")
        if inline is not None and path is not None:
            raise self.error(f"give either {key!r} or {key + '_file'!r}, not both")
        if path is None:
            return inline
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise self.error(f"cannot read {key}_file {path}: {exc.strerror or exc}") from None
        if not value:
            raise self.error(f"{key}_file {path} is empty")
        return value

    def _bounded(self, key: str, value: T, minimum: Any, maximum: Any) -> T:
        if value < minimum:  # type: ignore[operator]
            raise self.error(f"option {key!r} must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:  # type: ignore[operator]
            raise self.error(f"option {key!r} must be at most {maximum}, not {value}")
        return value

    def finish(self) -> None:
        """Reject options nobody asked for."""
        if self._left:
            names = ", ".join(sorted(repr(k) for k in self._left))
            raise self.error(f"unknown option(s) {names}")


def check_key(key: str) -> str:
    """Refuse keys no backend should store; return the key unchanged.

    Keys are chosen by the gateway, but a backend still refuses anything that could escape
    its root or mean two things: an empty key or segment (a leading, trailing or doubled
    ``/``), ``.`` and ``..`` segments, NUL, text that is not valid UTF-8, or more than
    1024 bytes (S3's limit, kept everywhere so blobs can move between backends).
    """
    if not isinstance(key, str) or not key:
        raise InvalidName(f"blob key {key!r} must be a non-empty string")
    if "\x00" in key:
        raise InvalidName(f"blob key {key!r} contains NUL")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidName(f"blob key {key!r} is not valid UTF-8") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidName(f"blob key of {len(encoded)} bytes is longer than {MAX_KEY_BYTES}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidName(f"blob key {key!r} has an empty, '.' or '..' segment")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: any string a key could start with."""
    if not isinstance(prefix, str) or "\x00" in prefix:
        raise InvalidArgument(f"listing prefix {prefix!r} must be a string without NUL")
    return prefix


def check_storage_class(storage_class: str) -> str:
    if storage_class not in STORAGE_CLASSES:
        known = ", ".join(sorted(STORAGE_CLASSES))
        raise InvalidArgument(f"unknown storage class {storage_class!r} (known: {known})")
    return storage_class


def check_range(start: int, end: int | None) -> None:
    """Reject ranges that are wrong whatever the blob's size."""
    if start < 0 or (end is not None and end < start):
        raise InvalidRange(f"[{start}, {end})", "any")


def check_restore_args(days: int, tier: str) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RESTORE_DAYS:
        raise InvalidArgument(
            f"restore days must be a whole number from 1 to {MAX_RESTORE_DAYS}, not {days!r}"
        )
    if tier not in RESTORE_TIERS:
        raise InvalidArgument(f"restore tier {tier!r} is not one of {', '.join(RESTORE_TIERS)}")


class ChunkIterator(Iterator[bytes]):
    """An iterator over an open source that also has ``close()``.

    ``get`` opens its source (file or HTTP response) before returning, so a missing or
    archived blob raises at the call, before a front end has sent a status line. Unlike a
    generator that never started, ``close()`` here always releases the source.
    """

    def __init__(
        self,
        read: Callable[[int], bytes],
        release: Callable[[], None],
        remaining: int | None,
        translate: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        self._read = read
        self._release: Callable[[], None] | None = release
        self._remaining = remaining
        self._translate = translate

    def __iter__(self) -> ChunkIterator:
        return self

    def __next__(self) -> bytes:
        if self._release is None or self._remaining == 0:
            self.close()
            raise StopIteration
        want = CHUNK_SIZE if self._remaining is None else min(CHUNK_SIZE, self._remaining)
        try:
            chunk = self._read(want)
        except Exception as exc:
            self.close()
            if self._translate is None:
                raise
            raise self._translate(exc) from exc
        if not chunk:
            self.close()
            if self._remaining:
                raise BackendError(f"blob ended {self._remaining} bytes early", retryable=True)
            raise StopIteration
        if self._remaining is not None:
            self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __enter__(self) -> ChunkIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A caller that drops the iterator early must not leak a file or a connection.
        with contextlib.suppress(Exception):
            self.close()


def empty_iterator() -> ChunkIterator:
    """An already finished :class:`ChunkIterator` (for empty ranges)."""
    return ChunkIterator(lambda n: b"", lambda: None, 0)
