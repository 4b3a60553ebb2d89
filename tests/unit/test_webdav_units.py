"""WebDAV front end pieces without a server: paths, error mapping, streams, lock conflicts."""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from wsgidav.dav_error import DAVError

from gateway.errors import (
    AccessDenied,
    AlreadyExists,
    BackendError,
    BucketNotEmpty,
    CatalogError,
    IntegrityError,
    InvalidArgument,
    InvalidRange,
    ObjectArchived,
    ObjectNotFound,
    PreconditionFailed,
    QuotaExceeded,
    RestoreInProgress,
    VaultSealed,
)
from protocols.webdav.errors import ErrorGuard, TextDAVError, dav_error, error_response, translated
from protocols.webdav.locks import ancestors, conflicts, lock_path, ref_url
from protocols.webdav.paths import DavPath, dav_path, marker_key, name_variants, usable_name
from protocols.webdav.streams import RangeReader, RequestBody


def test_paths_parse_into_org_bucket_and_key() -> None:
    assert DavPath.parse("/") == DavPath(None, None, "", True)
    assert DavPath.parse("/acme") == DavPath("acme", None, "", True)
    assert DavPath.parse("/acme/photos/") == DavPath("acme", "photos", "", True)
    assert DavPath.parse("/acme/photos/a/b c.txt") == DavPath("acme", "photos", "a/b c.txt", False)
    assert DavPath.parse("/acme/photos/a/b/").key == "a/b"
    assert [DavPath.parse(p).depth for p in ("/", "/o", "/o/b", "/o/b/k")] == [0, 1, 2, 3]
    assert dav_path() == "/" and dav_path("o") == "/o/" and dav_path("o", "b", "k/") == "/o/b/k/"
    assert marker_key("a/b/", "") == "a/b/" and marker_key("a/b/", ".keep") == "a/b/.keep"


def test_names_try_both_unicode_forms_only_when_they_differ() -> None:
    assert name_variants("plain ascii.txt") == ["plain ascii.txt"]
    nfd = unicodedata.normalize("NFD", "Café")
    nfc = unicodedata.normalize("NFC", "Café")
    assert name_variants(nfd) == [nfd, nfc]
    assert name_variants(nfc) == [nfc, nfd]
    assert name_variants("日本") == ["日本"]  # no decomposition: one form
    assert usable_name("a b") and not usable_name("") and not usable_name("..")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (QuotaExceeded("acme"), 507),
        (AccessDenied("bucket"), 403),
        (VaultSealed("k"), 403),
        (ObjectArchived("k", "DEEP_ARCHIVE"), 403),
        (ObjectNotFound("k"), 404),
        (AlreadyExists("b"), 409),
        (BucketNotEmpty("b"), 409),
        (PreconditionFailed("x"), 412),
        (InvalidRange("bytes=9-", 3), 416),
        (InvalidArgument("x"), 400),
        (RestoreInProgress("k"), 503),
        (BackendError("down", retryable=True), 503),
        (CatalogError("down"), 503),
        (IntegrityError("mac"), 500),
    ],
)
def test_domain_errors_map_to_dav_statuses(error: Any, status: int) -> None:
    dav = dav_error(error)
    assert dav.value == status
    content_type, body = dav.get_response_page()
    assert content_type.startswith("text/plain")
    if status == 500:
        assert b"mac" not in body  # internals stay in the log
    if isinstance(error, RestoreInProgress | CatalogError):
        assert ("Retry-After", "5") in (dav.add_headers or [])
    with pytest.raises(DAVError) as raised, translated():
        raise error
    assert raised.value.value == status


def test_error_responses_are_short_text() -> None:
    status, headers, body = error_response(TextDAVError(507, "full"), {"REQUEST_METHOD": "PUT"})
    assert status == "507 Insufficient Storage" and body == b"full\n"
    assert ("Content-Length", "5") in headers
    status, headers, body = error_response(DAVError(404, "gone"), {"REQUEST_METHOD": "HEAD"})
    assert status == "404 Not Found" and body == b""
    status, headers, _ = error_response(DAVError(401), {"wsgidav.auth.realm": "R"})
    assert ("WWW-Authenticate", 'Basic realm="R"') in headers


def _run(app: Any) -> tuple[list[Any], bytes]:
    started: list[Any] = []

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append(status)

    body = b"".join(ErrorGuard(None, app, {})({"REQUEST_METHOD": "GET"}, start))
    return started, body


def test_the_guard_answers_errors_raised_before_the_body() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        raise RuntimeError("secret detail")
        yield b""  # pragma: no cover

    started, body = _run(broken)
    assert started == ["500 Internal Server Error"] and b"secret" not in body

    def fine(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("201 Created", [])
        return [b"ok"]

    assert _run(fine) == (["201 Created"], b"ok")

    def late(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"part"
        raise RuntimeError("cut")

    with pytest.raises(RuntimeError):
        _run(late)  # after the first bytes, the connection is dropped instead


def test_range_reader_opens_exactly_the_range_after_the_seek() -> None:
    opened: list[tuple[int, int]] = []

    def open_range(start: int, length: int) -> Iterator[bytes]:
        opened.append((start, length))
        yield b"a" * 3
        yield b"b" * 5

    reader = RangeReader(open_range, lambda: 8)
    reader.seek(100)
    assert opened == []
    assert reader.read(2) == b"aa"
    assert reader.read(10) == b"a"
    assert reader.read(10) == b"bbbbb"  # a whole chunk passes without a copy
    assert reader.read(10) == b""
    assert opened == [(100, 8)]
    reader.close()
    with pytest.raises(OSError):
        reader.seek(0)
    empty = RangeReader(open_range, lambda: 0)
    assert empty.read(5) == b"" and len(opened) == 1


def test_request_body_notes_the_end() -> None:
    environ: dict[str, Any] = {"wsgi.input": io.BytesIO(b"hello")}
    body = RequestBody(environ)
    assert body.read(3) == b"hel" and body.read(3) == b"lo"
    assert "wsgidav.all_input_read" not in environ
    assert body.read(3) == b"" and body.ended and body.count == 5
    assert environ["wsgidav.all_input_read"] == 1
    with pytest.raises(ValueError):
        body.read(-1)


def test_lock_paths_and_conflicts() -> None:
    assert ref_url("/o/b/a b#%.txt") == "/o/b/a%20b%23%25.txt"
    assert lock_path("/o/b/a%20b%23%25.txt/") == "/o/b/a b#%.txt"
    assert ancestors("/o/b/k") == ["/o/b/k", "/o/b", "/o", "/"]

    def lock(root: str, scope: str = "exclusive", depth: str = "0") -> dict[str, str]:
        return {"root": root, "scope": scope, "depth": depth}

    assert conflicts(lock("/o/b/k"), lock("/o/b/k", "shared"))
    assert not conflicts(lock("/o/b/k", "shared"), lock("/o/b/k", "shared"))
    assert conflicts(lock("/o/b", depth="infinity"), lock("/o/b/k"))
    assert not conflicts(lock("/o/b"), lock("/o/b/k"))
    assert conflicts(lock("/o/b/k"), lock("/o/b", depth="infinity"))
    assert not conflicts(lock("/o/b/k"), lock("/o/b/kk", depth="infinity"))


def test_the_outer_wrapper_refuses_bad_paths_and_answers_early_failures() -> None:
    from protocols.webdav.app import _Outer

    started: list[str] = []

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append(status)

    def exploding(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        raise ValueError("before any middleware")
        yield b""  # pragma: no cover

    outer = _Outer(exploding)  # type: ignore[arg-type]
    body = b"".join(outer({"PATH_INFO": "/ok", "REQUEST_METHOD": "GET"}, start))
    assert started == ["500 Internal Server Error"] and b"before" not in body
    started.clear()
    bad = b"/\xff\xfe".decode("iso-8859-1")
    body = b"".join(outer({"PATH_INFO": bad, "REQUEST_METHOD": "GET"}, start))
    assert started == ["400 Bad Request"] and b"UTF-8" in body


def test_the_domain_controller_maps_login_outcomes() -> None:
    from gateway.authn import AuthenticatorUnavailable
    from gateway.identity import LoginThrottled
    from gateway.principals import Principal
    from protocols.webdav.auth import CONTEXT_KEY, DavContext, GatewayDomainController
    from protocols.webdav.provider import PRINCIPAL_KEY

    class Identity:
        outcome: Any = None

        def authenticate_password(self, user: str, password: str, *, client: Any = None) -> Any:
            if isinstance(self.outcome, Exception):
                raise self.outcome
            return self.outcome

    identity = Identity()
    context = DavContext(identity=identity, realm="R")  # type: ignore[arg-type]
    dc = GatewayDomainController(None, {CONTEXT_KEY: context})
    assert dc.get_domain_realm("/", None) == "R" and dc.require_authentication("R", None)
    environ: dict[str, Any] = {"REMOTE_ADDR": "127.0.0.1"}
    identity.outcome = Principal(name="alice", user_id=1)
    assert dc.basic_auth_user("R", "Alice", "pw", environ) is True
    assert environ[PRINCIPAL_KEY].name == "alice"
    identity.outcome = AccessDenied("wrong user name or password")
    assert dc.basic_auth_user("R", "alice", "bad", {}) is False
    identity.outcome = LoginThrottled(120)
    with pytest.raises(DAVError) as throttled:
        dc.basic_auth_user("R", "alice", "pw", {})
    assert throttled.value.value == 429 and ("Retry-After", "120") in (throttled.value.add_headers or [])
    identity.outcome = AuthenticatorUnavailable("ldap", "timed out")
    with pytest.raises(DAVError) as down:
        dc.basic_auth_user("R", "alice", "pw", {})
    assert down.value.value == 503 and ("Retry-After", "5") in (down.value.add_headers or [])


def test_the_webdav_config_section(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.config import load_config
    from gateway.errors import ConfigError

    monkeypatch.chdir(tmp_path)  # no ./coolstorage.toml
    config = load_config(None, env={})
    assert config.webdav.block_size == 1024 * 1024 and not config.webdav.allow_depth_infinity
    assert config.webdav.realm == "Cool Storage" and config.webdav.folder_marker == ""
    env = {"COOLSTORAGE_WEBDAV_ALLOW_DEPTH_INFINITY": "true", "COOLSTORAGE_WEBDAV_REALM": "Files"}
    changed = load_config(None, env=env).webdav
    assert changed.allow_depth_infinity and changed.realm == "Files"
    for key, value, message in [
        ("block_size", "1000", "webdav.block_size"),
        ("folder_marker", "a/b", "webdav.folder_marker"),
        ("realm", 'say "hi"', "webdav.realm"),
        ("lock_timeout_max", "5", "webdav.lock_timeout_max"),
        ("restore_days", "0", "webdav.restore_days"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, env={f"COOLSTORAGE_WEBDAV_{key.upper()}": value})
