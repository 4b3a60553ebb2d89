"""Real WebDAV clients against ``coolstorage serve``: rclone's WebDAV backend, curl, cadaver,
and a cold file seen through WebDAV, over plain HTTP and TLS."""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.servers import GatewayProcess, launch_gateway

HINTS = {
    "rclone": "apt-get install rclone",
    "curl": "apt-get install curl",
    "cadaver": "apt-get install cadaver",
}


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is needed for this test: {HINTS[program]}")
    return path


@dataclass
class Served:
    gateway: GatewayProcess
    user: str
    password: str
    org: str

    @property
    def base(self) -> str:
        return f"{self.gateway.webdav_url}/{self.org}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # cache_ttl 0: org settings changed from this process show in the gateway at once.
    gateway = launch_gateway(
        tmp_path_factory.mktemp("davclients"),
        {"engine": {"enabled": False}, "catalog": {"cache_ttl": 0}},
    )
    user, password = gateway.admin_auth
    yield Served(gateway, user, password, gateway.first_admin["org"])
    gateway.stop()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def curl(served: Served, method: str, path: str, *args: str, cacert: str | None = None) -> Reply:
    """One request with curl; ``path`` is appended to the org's URL."""
    need("curl")
    command = [
        "curl",
        "-sS",
        "-X",
        method,
        "-u",
        f"{served.user}:{served.password}",
        "-D",
        "-",
        "--path-as-is",
        *args,
        served.base + path,
    ]
    if cacert:
        command[1:1] = ["--cacert", cacert]
    done = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Reply(int(lines[0].split()[1]), headers, body)


def test_rclone_syncs_a_tree_and_finds_no_difference(served: Served, tmp_path: Path) -> None:
    rclone = need("rclone")
    source = tmp_path / "tree"
    rng = random.Random(6)
    for i in range(500):
        folder = source / f"dir{i % 7}" / f"sub{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file-{i:03d}.txt").write_bytes(rng.randbytes(rng.randrange(0, 6000)))
    (source / "ünïcödé #1 %+.txt").write_bytes(b"odd name")
    (source / "large").mkdir()
    for i in range(3):
        (source / "large" / f"big{i}.bin").write_bytes(os.urandom((9 + i * 5) * 1024 * 1024))
    assert curl(served, "MKCOL", "/rclone/").status == 201
    obscured = subprocess.run(
        [rclone, "obscure", served.password], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        **os.environ,
        "RCLONE_CONFIG_COOL_TYPE": "webdav",
        "RCLONE_CONFIG_COOL_URL": served.base,
        "RCLONE_CONFIG_COOL_VENDOR": "other",
        "RCLONE_CONFIG_COOL_USER": served.user,
        "RCLONE_CONFIG_COOL_PASS": obscured,
    }
    config = tmp_path / "rclone.conf"
    config.write_text("")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [rclone, "--config", str(config), "--transfers", "4", "--checkers", "4", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    synced = run("sync", str(source), "cool:rclone/tree")
    assert synced.returncode == 0, synced.stderr[-3000:]
    checked = run("check", "--download", str(source), "cool:rclone/tree")
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "0 differences found" in checked.stderr
    assert re.search(r"\b504 matching files", checked.stderr), checked.stderr[-1000:]
    # Change, add and remove some files; a second sync converges again.
    (source / "dir0" / "sub0" / "file-000.txt").write_bytes(b"changed")
    shutil.rmtree(source / "dir6")
    (source / "new.txt").write_bytes(b"new")
    assert run("sync", str(source), "cool:rclone/tree").returncode == 0
    again = run("check", "--download", str(source), "cool:rclone/tree")
    assert again.returncode == 0 and "0 differences found" in again.stderr, again.stderr[-2000:]
    listed = curl(served, "PROPFIND", "/rclone/tree/", "-H", "Depth: 1")
    assert b"dir6" not in listed.body and b"new.txt" in listed.body


LOCKINFO = (
    '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
    "<D:locktype><D:write/></D:locktype><D:owner>curl</D:owner></D:lockinfo>"
)


def test_curl_drives_every_method(served: Served, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    upload = tmp_path / "data.bin"
    upload.write_bytes(data)
    assert curl(served, "MKCOL", "/curl/").status == 201
    assert curl(served, "MKCOL", "/curl/docs/").status == 201
    put = curl(served, "PUT", "/curl/docs/data.bin", "-T", str(upload))
    assert put.status == 201 and put.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    part = curl(served, "GET", "/curl/docs/data.bin", "-H", "Range: bytes=100000-100099")
    assert part.status == 206 and part.body == data[100_000:100_100]
    listing = curl(served, "PROPFIND", "/curl/docs/", "-H", "Depth: 1")
    assert listing.status == 207 and b"data.bin" in listing.body and b"200000" in listing.body
    assert (
        curl(
            served, "COPY", "/curl/docs/data.bin", "-H", f"Destination: {served.base}/curl/copy.bin"
        ).status
        == 201
    )
    assert (
        curl(served, "MOVE", "/curl/docs/", "-H", f"Destination: {served.base}/curl/moved/").status
        == 201
    )
    assert curl(served, "GET", "/curl/moved/data.bin").body == data
    locked = curl(
        served, "LOCK", "/curl/copy.bin", "-H", "Content-Type: application/xml", "--data", LOCKINFO
    )
    assert locked.status == 200
    token = locked.headers["lock-token"]
    assert curl(served, "DELETE", "/curl/copy.bin").status == 423
    assert curl(served, "UNLOCK", "/curl/copy.bin", "-H", f"Lock-Token: {token}").status == 204
    assert curl(served, "DELETE", "/curl/copy.bin").status == 204
    assert curl(served, "DELETE", "/curl/moved/").status == 204
    assert curl(served, "GET", "/curl/moved/data.bin").status == 404
    assert curl(served, "PROPFIND", "/curl/", "-H", "Depth: infinity").status == 403


def test_cadaver_session(served: Served, tmp_path: Path) -> None:
    cadaver = need("cadaver")
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {served.user}\npassword {served.password}\n")
    netrc.chmod(0o600)
    (home / "hello.txt").write_text("hello from cadaver\n")
    assert curl(served, "MKCOL", "/cadaver/").status == 201
    script = "\n".join(
        [
            "mkcol docs",
            "cd docs",
            "put hello.txt",
            "propset hello.txt colour blue",
            "propget hello.txt colour",
            "copy hello.txt copy.txt",
            "move copy.txt moved.txt",
            "lock hello.txt",
            "unlock hello.txt",
            "get moved.txt back.txt",
            "rm moved.txt",
            "ls",
            "quit",
        ]
    )
    done = subprocess.run(
        [cadaver, f"{served.base}/cadaver/"],
        input=script + "\n",
        capture_output=True,
        text=True,
        cwd=home,
        env={**os.environ, "HOME": str(home)},
        timeout=60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert "failed" not in output.lower(), output
    assert output.count("succeeded") >= 9, output
    assert "Value of colour is: blue" in output
    assert (home / "back.txt").read_text() == "hello from cadaver\n"


def test_a_cold_file_refuses_then_restores_on_read_then_serves(served: Served) -> None:
    from gateway.app import Gateway
    from gateway.config import load_config

    gateway = Gateway.open(load_config(served.gateway.config_path, env={}))
    try:
        principal = gateway.identity.authenticate_password(served.user, served.password)
        objects = gateway.objects
        objects.create_bucket(principal, served.org, "coldbucket")
        objects.put_object(
            principal,
            served.org,
            "coldbucket",
            "frozen.txt",
            io.BytesIO(b"deep and cold"),
            size=13,
            storage_class="DEEP_ARCHIVE",
        )
        refused = curl(served, "GET", "/coldbucket/frozen.txt")
        assert refused.status == 403
        assert f"coolstorage restore --org {served.org} coldbucket/frozen.txt".encode() in refused.body
        org = gateway.catalog.get_org(served.org)
        assert org is not None
        gateway.catalog.update_org_settings(org.id, {"restore_on_read": True})
        filed = curl(served, "GET", "/coldbucket/frozen.txt")
        assert filed.status == 503 and filed.headers["retry-after"] == "43200"
        served_now = curl(served, "GET", "/coldbucket/frozen.txt")
        assert served_now.status == 200 and served_now.body == b"deep and cold"
    finally:
        gateway.close()


def test_webdav_over_tls(tmp_path: Path, tls_ca: Any) -> None:
    gateway = launch_gateway(tmp_path / "tls", {"engine": {"enabled": False}}, tls=tls_ca)
    try:
        user, password = gateway.admin_auth
        tls_served = Served(gateway, user, password, gateway.first_admin["org"])
        assert tls_served.base.startswith("https://")
        listing = curl(tls_served, "PROPFIND", "/", "-H", "Depth: 1", cacert=str(tls_ca.ca_cert))
        assert listing.status == 207
        assert curl(tls_served, "MKCOL", "/secure/", cacert=str(tls_ca.ca_cert)).status == 201
    finally:
        gateway.stop()
