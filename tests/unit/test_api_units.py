"""Unit tests of the API's parts: the schema checker, the router's matching, keep-hot
patterns, cursors, restore job statuses, and the client's journal, digests, progress line,
login file and messages."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from admin.api import Param, Reply, ReplySpec, Route, Router
from admin.schemas import COMPONENTS
from admin.validation import ValidationError, Validator, coerce_query, parse_datetime
from admin.wsgi import HTTPProblem

# -- the schema checker ------------------------------------------------------------------------


@pytest.fixture
def validator() -> Validator:
    return Validator(COMPONENTS)


def problem(validator: Validator, value: Any, schema: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        validator.validate(value, schema, "body")
    return caught.value.field


def test_the_checker_names_the_field_at_fault(validator: Validator) -> None:
    ref = {"$ref": "#/components/schemas/RestoreRequest"}
    validator.validate({"org": "a", "bucket": "b", "key": "k", "priority": "Bulk"}, ref)
    assert problem(validator, {"bucket": "b"}, ref) == "body.org"
    assert problem(validator, {"org": 1, "bucket": "b"}, ref) == "body.org"
    assert problem(validator, {"org": "a", "bucket": "b", "priority": "Fast"}, ref) == "body.priority"
    assert problem(validator, {"org": "a", "bucket": "b", "days": 0}, ref) == "body.days"
    assert problem(validator, {"org": "a", "bucket": "b", "days": True}, ref) == "body.days"
    assert problem(validator, {"org": "a", "bucket": "b", "extra": 1}, ref) == "body.extra"
    # anyOf: the deepest complaint wins (the object alternative, its missing bucket).
    bad_destination = {"org": "a", "bucket": "b", "destination": {"prefix": "p"}}
    assert problem(validator, bad_destination, ref) == "body.destination.bucket"
    assert problem(validator, {"org": "a", "bucket": "b", "destination": "upload"}, ref) == "body.destination"
    grants = {"$ref": "#/components/schemas/GrantRequest"}
    assert problem(validator, {"user": "u", "rights": ["read", "fly"]}, grants) == "body.rights[1]"
    assert problem(validator, {"user": "u", "rights": []}, grants) == "body.rights"
    assert problem(validator, [], grants) == "body"


def test_strings_numbers_and_times(validator: Validator) -> None:
    assert problem(validator, "", {"type": "string", "minLength": 1}) == "body"
    assert problem(validator, "xyz", {"type": "string", "pattern": "^a"}) == "body"
    assert problem(validator, 1.5, {"type": "integer"}) == "body"
    validator.validate(None, {"type": ["integer", "null"]})
    validator.validate(1.5, {"type": "number", "minimum": 1})
    validator.validate("2026-01-02T03:04:05Z", {"type": "string", "format": "date-time"})
    assert problem(validator, "2026-01-02", {"type": "string", "format": "date-time"}) == "body"
    assert parse_datetime("2026-01-02T03:04:05", "x") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_datetime("2026-01-02T05:04:05+02:00", "x").astimezone(UTC).hour == 3


def test_query_values_are_converted_before_checking() -> None:
    assert coerce_query("42", {"type": "integer"}, "q") == 42
    assert coerce_query("-3", {"type": "integer"}, "q") == -3
    assert coerce_query("yes", {"type": "boolean"}, "q") is True
    assert coerce_query("0", {"type": "boolean"}, "q") is False
    assert coerce_query("anything", {"type": "string"}, "q") == "anything"
    for bad in ("4.2", "", "12abc", "9" * 30):
        with pytest.raises(ValidationError):
            coerce_query(bad, {"type": "integer"}, "q")


# -- the router --------------------------------------------------------------------------------


def _route(method: str, path: str, name: str, **extra: Any) -> Route:
    return Route(method, path, name, lambda req: Reply(200, {"route": name, "params": req.params}),
                 name, "t", {200: ReplySpec("ok")}, **extra)


@pytest.fixture
def router() -> Router:
    routes = [
        _route("POST", "/objects/copy", "copy"),
        _route("GET", "/objects/{org}/{bucket}/{key}", "get"),
        _route("PUT", "/objects/{org}/{bucket}/{key}", "put"),
        _route("GET", "/restores/{restore_id}", "restore",
               params=(Param("restore_id", "path", {"type": "integer", "minimum": 1}, True),)),
    ]
    return Router(routes, Validator(COMPONENTS), services=None)  # type: ignore[arg-type]


def test_literal_paths_win_and_keys_keep_their_slashes(router: Router) -> None:
    route, params = router.match("POST", "/objects/copy")
    assert route.operation_id == "copy"
    route, params = router.match("GET", "/objects/acme/data/a/b/c.txt")
    assert route.operation_id == "get" and params == {"org": "acme", "bucket": "data",
                                                      "key": "a/b/c.txt"}
    route, _ = router.match("HEAD", "/objects/acme/data/k")
    assert route.operation_id == "get"  # HEAD is served by GET where no HEAD route exists
    with pytest.raises(HTTPProblem) as caught:
        router.match("DELETE", "/objects/acme/data/k")
    assert caught.value.status == 405 and dict(caught.value.headers)["Allow"] == "GET, PUT"
    with pytest.raises(HTTPProblem) as caught:
        router.match("GET", "/objects/acme")
    assert caught.value.status == 404


# -- keep-hot patterns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "prefix", "matches", "misses"),
    [
        ("dir/a.txt", False, ["dir/a.txt"], ["dir/a.txt.bak", "x/dir/a.txt", "dir/b.txt"]),
        ("a.txt", False, ["a.txt"], ["x/a.txt", "a.txt2", "b.txt"]),
        ("logs/", True, ["logs/1", "logs/a/b"], ["x/logs/1", "logs"]),
        ("photos", True, ["photos", "photos2020/x"], ["x/photos"]),
        ("star*?.txt", False, ["star*?.txt"], ["starXY.txt"]),
        ("odd[1].txt", False, ["odd[1].txt"], ["odd1.txt"]),
    ],
)
def test_keep_hot_patterns_match_the_target_only(
    target: str, prefix: bool, matches: list[str], misses: list[str]
) -> None:
    from admin.storage_mode import keep_hot_pattern
    from tiering.policy import Policy

    policy = Policy(keep_hot=(keep_hot_pattern(target, prefix=prefix),))
    for key in matches:
        assert policy.keeps_hot(key), (target, key)
    for key in misses:
        assert not policy.keeps_hot(key), (target, key)


# -- cursors and restore statuses --------------------------------------------------------------


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    from admin.service import decode_cursor, encode_cursor

    value = {"after": "a/ü/ключ", "n": 3}
    assert decode_cursor(encode_cursor(value)) == value
    assert decode_cursor(None) is None and decode_cursor("") is None
    for garbage in ("%%%", "bm90IGpzb24", encode_cursor({"a": 1})[:-3] + "***"):
        with pytest.raises(ValidationError) as caught:
            decode_cursor(garbage)
        assert caught.value.field == "query.cursor"


def _job(**changes: Any) -> Any:
    from catalog.admin import RestoreJob

    now = datetime.now(UTC)
    values: dict[str, Any] = dict(
        id=1, org_id=1, bucket_id=1, bucket="b", kind="prefix", target="p/", tier="Bulk", days=1,
        destination=None, status="running", user_id=1, requested_by="u", requested_at=now,
        updated_at=now, quote_usd=Decimal("0.1"), objects_total=4, bytes_total=40,
        objects_ready=0, bytes_ready=0, objects_copied=0, objects_failed=0, error=None,
    )
    values.update(changes)
    return RestoreJob(**values)


def test_restore_job_status_follows_its_objects() -> None:
    from admin.restores import RestoreJobs

    status = RestoreJobs._status
    assert status(_job(), done=1, copied=0, failed=0, archived=0) == "running"
    assert status(_job(), done=4, copied=0, failed=0, archived=0) == "ready"
    assert status(_job(), done=3, copied=0, failed=1, archived=0) == "ready"
    assert status(_job(), done=0, copied=0, failed=4, archived=0) == "failed"
    assert status(_job(status="ready"), done=2, copied=0, failed=0, archived=2) == "expired"
    old = _job(requested_at=datetime.now(UTC) - timedelta(days=5))
    assert status(old, done=0, copied=0, failed=0, archived=4) == "expired"
    copy = _job(destination={"bucket": "x", "prefix": ""})
    assert status(copy, done=1, copied=0, failed=0, archived=0) == "running"
    assert status(copy, done=4, copied=1, failed=0, archived=0) == "copying"
    assert status(copy, done=4, copied=4, failed=0, archived=0) == "done"


# -- the client --------------------------------------------------------------------------------


def test_the_journal_survives_a_line_cut_short(tmp_path: Path) -> None:
    from admin.transfer import Journal

    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.record_done("a.txt", 3, 111, "aa")
    journal.record_upload("big.bin", "u1", 5 << 20, 11 << 20, 222)
    journal.record_upload("other.bin", "u2", 5 << 20, 11 << 20, 333)
    journal.end_upload("other.bin")
    journal.close()
    with open(path, "a") as handle:
        handle.write('{"t": "done", "path": "b.t')  # killed mid-write
    again = Journal(path)
    assert set(again.done) == {"a.txt"} and again.done["a.txt"]["sha256"] == "aa"
    assert set(again.uploads) == {"big.bin"} and again.uploads["big.bin"]["upload_id"] == "u1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again.close(remove=True)
    assert not path.exists()


def test_client_digests_match_the_servers(tmp_path: Path) -> None:
    from admin.transfer import file_digest
    from gateway.multipart import multipart_sha256

    data = os.urandom(11 << 20)
    path = tmp_path / "f"
    path.write_bytes(data)
    part = 5 << 20
    parts = [hashlib.sha256(data[i:i + part]).hexdigest() for i in range(0, len(data), part)]
    assert file_digest(path, len(data), threshold=6 << 20, part_size=part) == multipart_sha256(parts)
    assert file_digest(path, len(data), threshold=64 << 20, part_size=part) == hashlib.sha256(data).hexdigest()


def test_the_progress_line_shows_bytes_rate_eta_and_files() -> None:
    from admin.progress import Progress, human_bytes, human_duration

    now = [100.0]
    out = io.StringIO()
    bar = Progress(10 << 20, files=4, stream=out, clock=lambda: now[0], label="upload")
    now[0] += 2.0
    bar.add(2 << 20)
    bar.file_done()
    line = bar.line()
    assert "20.0%" in line and "2.0 MiB / 10.0 MiB" in line
    assert "1.0 MiB/s" in line and "ETA 0:08" in line and "files 1/4" in line
    now[0] += 10
    bar.add(8 << 20)
    bar.finish()
    assert out.getvalue().strip().splitlines()[-1].startswith("upload  [########################] 100.0%")
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(12) == "12 B"
    assert human_duration(3725) == "1:02:05" and human_duration(75) == "1:15"


def test_the_login_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from admin.client import CONFIG_ENV, Login, NotLoggedIn, config_path, load_login, save_login

    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "sub" / "client.json"))
    with pytest.raises(NotLoggedIn, match="coolstorage client login"):
        load_login()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    path = save_login(Login(url="http://h", user="u", token="t" * 40, expires_at=future))
    assert path == config_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_login() == Login(url="http://h", user="u", token="t" * 40, expires_at=future)
    assert not load_login().expired()
    past = Login(url="h", user="u", token="t", expires_at="2000-01-01T00:00:00Z")
    assert past.expired()
    assert json.loads(path.read_text())["user"] == "u"
    monkeypatch.delenv(CONFIG_ENV)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_path() == tmp_path / "xdg" / "coolstorage" / "client.json"


def test_error_messages_say_what_to_do() -> None:
    from admin.client import _explain

    assert "coolstorage client login" in _explain(401, "InvalidToken", "x", "")
    cold = _explain(403, "InvalidObjectState", "k is archived", "o/b/k")
    assert "cold storage" in cold and "coolstorage client restore o/b/k" in cold
    assert "--identity" in _explain(403, "VaultSealed", "sealed", "o/b/k")
    assert "ask an admin" in _explain(403, "AccessDenied", "the archive right is needed", "")
    assert _explain(409, "BucketNotEmpty", "Bucket b is not empty", "") == "Bucket b is not empty"


def test_command_line_sizes_and_targets() -> None:
    import argparse

    from admin.client import ClientError
    from gateway.cli_client import _size, _split

    assert _size("512K") == 512 << 10 and _size("16M") == 16 << 20 and _size("2MiB") == 2 << 20
    assert _size("1.5G") == int(1.5 * (1 << 30)) and _size("100") == 100
    with pytest.raises(argparse.ArgumentTypeError):
        _size("lots")
    assert _split("o/b/dir/k.txt") == ("o", "b", "dir/k.txt")
    assert _split("o/b") == ("o", "b", "")
    with pytest.raises(ClientError):
        _split("o")
    with pytest.raises(ClientError):
        _split("o/b/", need_key=True)


def test_docs_api_md_names_every_path() -> None:
    from admin.routes import ROUTES

    text = (Path(__file__).resolve().parents[2] / "docs" / "API.md").read_text()
    missing = sorted({r.path for r in ROUTES if r.path not in text})
    assert not missing, f"docs/API.md does not mention {missing}"
