"""The backend registry, option parsing, key checks and s3 error translation (no servers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from gateway.errors import (
    BackendError,
    BlobNotFound,
    ConfigError,
    InvalidName,
    InvalidRange,
    ObjectArchived,
)
from tiering import backends
from tiering.backends import known_plugins, load_backend_class, open_backend
from tiering.backends._common import Options, check_key
from tiering.backends.base import Backend
from tiering.backends.localfs import LocalFSBackend
from tiering.backends.s3 import S3Backend, _parse_restore


def test_entry_points_name_both_plugins() -> None:
    assert {"localfs", "s3"} <= set(known_plugins())
    assert load_backend_class("localfs") is LocalFSBackend
    assert load_backend_class("s3") is S3Backend
    assert LocalFSBackend.plugin == "localfs" and S3Backend.plugin == "s3"


def test_unknown_plugin() -> None:
    with pytest.raises(ConfigError) as caught:
        load_backend_class("x")
    assert str(caught.value) == "unknown backend plugin 'x' (known: localfs, s3)"
    with pytest.raises(ConfigError, match="unknown backend plugin 'ftp'"):
        open_backend("b", {"type": "ftp"})


def test_missing_type() -> None:
    with pytest.raises(ConfigError, match="backend 'b' needs a 'type'"):
        open_backend("b", {"root": "/tmp"})


def test_missing_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if boto3 were not installed: importing it fails, and the s3 module is re-imported.
    monkeypatch.setitem(sys.modules, "boto3", None)
    monkeypatch.delitem(sys.modules, "tiering.backends.s3")
    with pytest.raises(ConfigError) as caught:
        open_backend("cloud", {"type": "s3", "bucket": "b"})
    message = str(caught.value)
    assert "backend plugin 's3' cannot load" in message
    assert "'boto3' is not installed" in message
    assert "pip install boto3" in message
    # localfs does not need boto3.
    assert load_backend_class("localfs") is LocalFSBackend


def test_entry_point_that_is_not_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(backends._BUILTIN, "bogus", "gateway.errors:ConfigError")
    with pytest.raises(ConfigError, match="does not name a Backend class"):
        load_backend_class("bogus")


def test_open_backend_passes_options(tmp_path: Path) -> None:
    backend = open_backend("here", {"type": "localfs", "root": str(tmp_path)})
    assert isinstance(backend, Backend)
    assert backend.name == "here"
    assert "here" in repr(backend)
    backend.close()
    backend.close()  # idempotent


def test_type_must_match_plugin(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has type 's3'"):
        LocalFSBackend.from_options("x", {"type": "s3", "root": str(tmp_path)})


def test_options_reader(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("  hunter2\n")
    opts = Options(
        "p",
        "n",
        {"a": "8 MiB", "b": 1024, "c": "2GiB", "d": True, "s_file": str(secret), "t": 1.5},
    )
    assert opts.size("a", 0) == 8 * 1024 * 1024
    assert opts.size("b", 0) == 1024
    assert opts.size("c", 0) == 2 * 1024**3
    assert opts.size("missing", 7) == 7
    assert opts.flag("d", False) is True
    assert opts.secret("s") == "hunter2"
    assert opts.number("t", 0) == 1.5
    opts.finish()
    with pytest.raises(ConfigError, match="'n' must be an integer, not bool"):
        Options("p", "x", {"n": True}).integer("n", 1)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        Options("p", "x", {"s_file": str(empty)}).secret("s")


@pytest.mark.parametrize("key", ["a", "a/b/c", "...", ".x", "a b", "ü", "x" * 1024])
def test_good_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "/a", "a/", "a//b", "..", "a/../b", "./a", "\x00", "é" * 513])
def test_bad_keys(key: str) -> None:
    with pytest.raises(InvalidName):
        check_key(key)


def _client_error(code: str, status: int, **error: Any) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "msg", **error},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "GetObject")


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (_client_error("NoSuchKey", 404), BlobNotFound, None),
        (_client_error("404", 404), BlobNotFound, None),
        (
            _client_error("InvalidObjectState", 403, StorageClass="DEEP_ARCHIVE"),
            ObjectArchived,
            None,
        ),
        (_client_error("InvalidRange", 416), InvalidRange, None),
        (_client_error("SlowDown", 503), BackendError, True),
        (_client_error("ThrottlingException", 400), BackendError, True),
        (_client_error("InternalError", 500), BackendError, True),
        (_client_error("Whatever", 502), BackendError, True),
        (_client_error("AccessDenied", 403), BackendError, False),
        (_client_error("NoSuchBucket", 404), BackendError, False),
        (_client_error("MalformedXML", 400), BackendError, False),
        (EndpointConnectionError(endpoint_url="http://x"), BackendError, True),
        (ReadTimeoutError(endpoint_url="http://x"), BackendError, True),
        (ConnectionResetError(104, "reset"), BackendError, True),
    ],
)
def test_s3_error_translation(exc: BaseException, kind: type, retryable: bool | None) -> None:
    backend = S3Backend("t", client=None, bucket="bkt")
    translated = backend._translate(exc, "get", "the/key")
    assert type(translated) is kind
    if retryable is not None:
        assert isinstance(translated, BackendError)
        assert translated.retryable is retryable
    if isinstance(translated, ObjectArchived):
        assert str(translated) == "the/key is archived in DEEP_ARCHIVE; restore it before reading"


def test_parse_restore_header() -> None:
    assert _parse_restore(None, cold=False) is None
    assert _parse_restore(None, cold=True).requested is False  # type: ignore[union-attr]
    ongoing = _parse_restore('ongoing-request="true"', cold=True)
    assert ongoing is not None and ongoing.ongoing and not ongoing.readable
    done = _parse_restore(
        'ongoing-request="false", expiry-date="Fri, 21 Dec 2035 00:00:00 GMT"', cold=True
    )
    assert done is not None and done.readable
    assert done.expires_at is not None and done.expires_at.year == 2035
    expired = _parse_restore(
        'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"', cold=True
    )
    assert expired is not None and not expired.requested
