"""``coolstorage user|org|key``: run through ``main([...])`` with a temporary config, then
checked against the gateway they changed (logins, keys, grants, quotas)."""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway import cli, cli_identity, principals
from gateway.app import Gateway
from gateway.cli_identity import format_size, parse_size
from gateway.config import load_config
from gateway.errors import AccessDenied, InvalidArgument
from gateway.identity import UnknownAccessKey
from gateway.principals import Action

PASSWORD = "piped-in-password"


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("COOLSTORAGE_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(
        principals, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    monkeypatch.setattr(principals, "_dummy_hash", None)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    file = tmp_path / "coolstorage.toml"
    file.write_text(f'[server]\ndata_dir = "{tmp_path / "var"}"\n[log]\nlevel = "warning"\n')
    return file


class Runner:
    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch):
        self.config = config
        self.capsys = capsys
        self.mp = mp

    def __call__(self, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        self.mp.setattr(sys, "stdin", io.StringIO(stdin or ""))
        status = cli.main([*argv, "--config", str(self.config)])
        captured = self.capsys.readouterr()
        return status, captured.out, captured.err

    def ok(self, *argv: str, stdin: str | None = None) -> str:
        status, out, err = self(*argv, stdin=stdin)
        assert status == 0, err
        return out

    def json(self, *argv: str, stdin: str | None = None) -> Any:
        return json.loads(self.ok(*argv, "--json", stdin=stdin))

    def gateway(self) -> Gateway:
        return Gateway.open(load_config(self.config, env={}))


@pytest.fixture
def run(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Runner:
    return Runner(config, capsys, monkeypatch)


@pytest.fixture
def gateway(run: Runner) -> Iterator[Gateway]:
    run.ok("org", "list")  # create the catalog first
    with run.gateway() as gw:
        yield gw


# -- users ---------------------------------------------------------------------------------
def test_user_add_reads_the_password_from_stdin(run: Runner) -> None:
    data = run.json("user", "add", "alice", stdin=PASSWORD + "\n")
    assert data == {"user": "alice", "org": "~alice", "role": "admin", "operator": False}
    with run.gateway() as gw:
        principal = gw.identity.authenticate_password("alice", PASSWORD)
    assert principal.roles == {"~alice": "admin"}
    users = run.json("user", "list")
    assert users == [
        {
            "user": "alice",
            "source": "local",
            "operator": False,
            "disabled": False,
            "orgs": {"~alice": "admin"},
        }
    ]
    assert "alice  local" in run.ok("user", "list")


def test_user_add_into_an_org(run: Runner) -> None:
    assert run.ok("org", "add", "acme") == "added org acme\n"
    out = run.ok("user", "add", "bob", "--org", "acme", "--admin", "--operator", stdin=PASSWORD)
    assert out == "added user bob (admin of org acme)\n"
    with run.gateway() as gw:
        bob = gw.identity.authenticate_password("bob", PASSWORD)
    assert bob.roles == {"acme": "admin"} and bob.is_operator


def test_user_add_errors(run: Runner) -> None:
    status, _, err = run("user", "add", "carol", "--org", "nope", stdin=PASSWORD)
    assert status == 1 and "org nope" in err and "coolstorage org add nope" in err
    status, _, err = run("user", "add", "carol")
    assert status == 1 and "no password on standard input" in err
    status, _, err = run("user", "add", "carol", stdin="short")
    assert status == 1 and "at least 8 characters" in err
    status, _, err = run("user", "add", "carol", "--admin", stdin=PASSWORD)
    assert status == 1 and "--admin needs --org" in err
    run.ok("user", "add", "carol", stdin=PASSWORD)
    status, _, err = run("user", "add", "carol", stdin=PASSWORD)
    assert status == 1 and "carol" in err and "exists" in err.lower()


def test_generated_password_is_printed_once(run: Runner) -> None:
    data = run.json("user", "add", "dave", "--generate-password")
    password = data["password"]
    assert len(password) >= 20
    with run.gateway() as gw:
        assert gw.identity.authenticate_password("dave", password).name == "dave"
    out = run.ok("user", "passwd", "dave", "--generate-password")
    new = out.splitlines()[1].removeprefix("password: ")
    assert out.startswith("changed the password of dave\n") and new != password
    with run.gateway() as gw:
        with pytest.raises(AccessDenied):
            gw.identity.authenticate_password("dave", password)
        assert gw.identity.authenticate_password("dave", new).name == "dave"


def test_passwords_at_a_terminal_are_asked_twice(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[str] = []
    monkeypatch.setattr(cli_identity.getpass, "getpass", lambda prompt="": answers.pop(0))

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def at_terminal(*argv: str, replies: list[str]) -> tuple[int, str, str]:
        answers[:] = replies
        monkeypatch.setattr(sys, "stdin", Tty())
        status = cli.main([*argv, "--config", str(run.config)])
        captured = run.capsys.readouterr()
        return status, captured.out, captured.err

    status, out, _ = at_terminal("user", "add", "erin", replies=[PASSWORD, PASSWORD])
    assert status == 0 and "password:" not in out
    status, _, err = at_terminal("user", "passwd", "erin", replies=[PASSWORD + "1", PASSWORD + "2"])
    assert status == 1 and "the two passwords differ" in err
    status, out, _ = at_terminal("user", "passwd", "erin", replies=[""])
    generated = out.splitlines()[1].removeprefix("password: ")
    assert status == 0 and answers == []
    with run.gateway() as gw:
        assert gw.identity.authenticate_password("erin", generated).name == "erin"


def test_disable_and_enable(run: Runner) -> None:
    run.ok("user", "add", "fred", stdin=PASSWORD)
    assert run.json("user", "disable", "fred") == {"user": "fred", "disabled": True}
    with run.gateway() as gw, pytest.raises(AccessDenied, match="disabled"):
        gw.identity.authenticate_password("fred", PASSWORD)
    run.ok("user", "enable", "fred")
    with run.gateway() as gw:
        assert gw.identity.authenticate_password("fred", PASSWORD).name == "fred"


# -- orgs ----------------------------------------------------------------------------------
def test_org_members_and_grants(run: Runner) -> None:
    run.ok("org", "add", "acme")
    run.ok("user", "add", "gail", stdin=PASSWORD)
    assert run.json("org", "member", "add", "acme", "gail") == {
        "org": "acme", "user": "gail", "role": "member"
    }
    assert run.json("org", "member", "list", "acme") == [{"user": "gail", "role": "member"}]
    grant = run.json("org", "grant", "acme", "gail", "restore", "archive", "--bucket", "photos")
    assert grant == {
        "org": "acme", "user": "gail", "bucket": "photos", "rights": ["archive", "restore"]
    }
    run.ok("org", "grant", "acme", "gail", "manage")
    with run.gateway() as gw:
        gail = gw.identity.authenticate_password("gail", PASSWORD)
    assert gail.may(Action.RESTORE, "acme", "photos") and not gail.may(Action.RESTORE, "acme")
    assert gail.may(Action.MANAGE, "acme")
    grants = run.json("org", "grants", "acme")
    assert [(g["bucket"], g["rights"]) for g in grants] == [
        (None, ["manage"]), ("photos", ["archive", "restore"])
    ]
    assert "(whole org)" in run.ok("org", "grants", "acme", "--user", "gail")
    left = run.json("org", "revoke", "acme", "gail", "restore", "--bucket", "photos")
    assert left["rights"] == ["archive"]
    assert run.ok("org", "revoke", "acme", "gail", "all") == (
        "gail holds no granted rights in org acme now\n"
    )
    status, _, err = run("org", "grant", "acme", "gail", "teleport")
    assert status == 1 and "'teleport' is not a right" in err
    assert run.json("org", "member", "remove", "acme", "gail")["removed"] is True
    assert run.json("org", "member", "remove", "acme", "gail")["removed"] is False
    orgs = {o["org"]: o for o in run.json("org", "list")}
    assert orgs["acme"]["members"] == 0 and orgs["~gail"]["members"] == 1


def test_org_names_are_checked(run: Runner) -> None:
    status, _, err = run("org", "add", "Bad Name")
    assert status == 1 and "an org name has" in err
    status, _, err = run("org", "add", "~mine")
    assert status == 1 and "personal org names only" in err
    run.ok("org", "add", "acme")
    status, _, err = run("org", "add", "acme")
    assert status == 1 and "acme" in err


def test_org_quota(run: Runner, tmp_path: Path) -> None:
    run.ok("org", "add", "acme")
    assert run.json("org", "quota", "acme") == {
        "org": "acme", "stored_bytes": 0, "quota_bytes": None, "free_bytes": None
    }
    assert run.ok("org", "quota", "acme") == "org acme: 0 B stored, no quota\n"
    data = run.json("org", "quota", "acme", "10GiB")
    assert data["quota_bytes"] == 10 * 1024**3 and data["free_bytes"] == 10 * 1024**3
    run.ok("user", "add", "hank", "--org", "acme", stdin=PASSWORD)
    with run.gateway() as gw:
        hank = gw.identity.authenticate_password("hank", PASSWORD)
        gw.objects.create_bucket(hank, "acme", "data")
        gw.objects.put_object(hank, "acme", "data", "k", io.BytesIO(b"x" * 3000), size=3000)
    run.ok("org", "quota", "acme", "1.5KiB")
    assert run.ok("org", "quota", "acme") == (
        "org acme: 2.9 KiB stored of 1.5 KiB (195.3%), 0 B free\n"
    )
    assert run.json("org", "quota", "acme", "none")["quota_bytes"] is None
    status, _, err = run("org", "quota", "acme", "lots")
    assert status == 1 and "is not a size" in err
    status, _, err = run("org", "quota", "nope")
    assert status == 1 and "org nope" in err


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("123", 123),
        ("10GiB", 10 * 1024**3),
        ("10 gib", 10 * 1024**3),
        ("500MB", 500 * 1000**2),
        ("1.5TiB", int(1.5 * 1024**4)),
        ("2k", 2000),
        ("7B", 7),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "-1", "1.2.3", "10 GiBs", "ten", "1e3", "99999999PiB"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_size(text)


def test_format_size() -> None:
    assert [format_size(v) for v in (None, 0, 1023, 1024, 1536 * 1024**2)] == [
        "-", "0 B", "1023 B", "1.0 KiB", "1.5 GiB"
    ]


# -- keys ----------------------------------------------------------------------------------
def test_keys(run: Runner) -> None:
    run.ok("org", "add", "acme")
    run.ok("user", "add", "ivy", "--org", "acme", stdin=PASSWORD)
    out = run.ok("key", "create", "--user", "ivy", "--json")
    created = json.loads(out)
    assert list(created) == ["access_key_id", "secret_access_key"]
    assert out == json.dumps(created) + "\n"
    text = run.ok("key", "create", "--user", "ivy", "--org", "acme")
    assert "shown only now" in text and "secret_access_key = " in text
    with run.gateway() as gw:
        principal, secret = gw.identity.authenticate_access_key(created["access_key_id"])
    assert secret == created["secret_access_key"] and principal.scope_org == "acme"

    listed = run.json("key", "list", "--user", "ivy")
    assert len(listed) == 2 and all(k["revoked_at"] is None for k in listed)
    assert all("secret" not in json.dumps(k) for k in listed)
    assert run.json("key", "revoke", created["access_key_id"]) == {
        "access_key_id": created["access_key_id"], "revoked": True
    }
    assert "already revoked" in run.ok("key", "revoke", created["access_key_id"])
    with run.gateway() as gw, pytest.raises(UnknownAccessKey):
        gw.identity.authenticate_access_key(created["access_key_id"])
    table = run.ok("key", "list")
    assert "revoked" in table and "active" in table and created["secret_access_key"] not in table

    run.ok("user", "add", "jack", stdin=PASSWORD)
    run.ok("org", "member", "add", "acme", "jack")
    status, _, err = run("key", "create", "--user", "jack")
    assert status == 1 and "belongs to 2 orgs" in err
    status, _, err = run("key", "revoke", "CSNOSUCHKEY")
    assert status == 1 and "CSNOSUCHKEY" in err


def test_every_identity_command_takes_json_and_is_listed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = cli.build_parser()
    for argv in (
        ["user", "add", "x"], ["user", "passwd", "x"], ["user", "list"],
        ["user", "disable", "x"], ["user", "enable", "x"],
        ["org", "add", "x"], ["org", "list"], ["org", "member", "add", "o", "u"],
        ["org", "member", "remove", "o", "u"], ["org", "member", "list", "o"],
        ["org", "grant", "o", "u", "read"], ["org", "revoke", "o", "u", "read"],
        ["org", "grants", "o"], ["org", "quota", "o"], ["org", "quota", "o", "1GB"],
        ["key", "create", "--user", "x"], ["key", "list"], ["key", "revoke", "ID"],
    ):
        args = parser.parse_args([*argv, "--json"])
        assert args.json and args.func.__module__ == "gateway.cli_identity", argv
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("user", "org", "key"):
        assert f"    {command} " in out
