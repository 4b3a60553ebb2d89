"""``coolstorage client`` as a user runs it, against a gateway process: a folder of 300
files uploaded, killed half-way with SIGKILL, resumed without sending a stored file again;
listed; a file archived, restored with Bulk and downloaded byte for byte; the clear
messages for cold objects, missing rights and revoked logins; and a vault object
downloaded and decrypted with ``--identity``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.servers import (
    GatewayProcess,
    clean_env,
    coolstorage_command,
    run_coolstorage,
)

FILES = 300
GATEWAY = {
    "engine": {"enabled": True},
    "tiering": {"transition_after": 86400, "lease_ttl": 5, "restore_poll_interval": 0.2},
    "identity": {"login_max_failures": 1000},
}


def localfs(gw_dir_hint: str) -> dict[str, Any]:
    return {"backends": {"cold": {"type": "localfs", "root": gw_dir_hint, "restore_delay": 1}},
            "storage": {"default_backend": "cold"}}


class Client:
    """Runs ``coolstorage client`` with its own config file."""

    def __init__(self, tmp: Path, name: str = "client") -> None:
        self.config = tmp / f"{name}.json"
        self.env = {"COOLSTORAGE_CLIENT_CONFIG": str(self.config)}

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_coolstorage("client", *args, env=self.env, input=input, timeout=timeout)

    def login(self, gateway: GatewayProcess, user: str, password: str) -> None:
        done = self("login", "--url", gateway.admin_url, "--user", user, "--password-stdin",
                    input=password + "\n")
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(self.config.stat().st_mode) == 0o600

    @property
    def token(self) -> str:
        return str(json.loads(self.config.read_text())["token"])

    def journals(self) -> list[Path]:
        return sorted((self.config.parent / "journal").glob("put-*.jsonl"))


def api(gateway: GatewayProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.admin_url + "/api/v1",
                        headers={"Authorization": f"Bearer {token}"}, timeout=60)


def done_lines(journal: Path) -> int:
    if not journal.exists():
        return 0
    return sum(1 for line in journal.read_text(errors="replace").splitlines() if '"t": "done"' in line)


def test_put_killed_half_way_resumes_then_restore_and_get(gateway_process: Any, tmp_path: Path) -> None:
    gateway: GatewayProcess = gateway_process({**GATEWAY, **localfs(str(tmp_path / "blobs"))})
    client = Client(tmp_path)
    client.login(gateway, *gateway.admin_auth)
    with api(gateway, client.token) as http:
        assert http.post("/orgs/default/buckets", json={"name": "backup"}).status_code == 201

    rng = random.Random(8)
    source = tmp_path / "photos"
    expected: dict[str, bytes] = {}
    for i in range(FILES):
        folder = source / f"album-{i % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(1, 8192))
        (folder / f"img-{i:03d}.raw").write_bytes(data)
        expected[f"album-{i % 7}/img-{i:03d}.raw"] = data
    total = sum(map(len, expected.values()))

    # Throttled so it is still running half-way; killed without warning there.
    process = subprocess.Popen(
        [*coolstorage_command(), "client", "put", str(source), "default/backup/photos/",
         "--bwlimit", "200K", "--jobs", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(client.env),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            journals = client.journals()
            if journals and done_lines(journals[0]) >= FILES // 2:
                break
            time.sleep(0.02)
        assert process.poll() is None, "the upload ended before it could be interrupted"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    journal = client.journals()[0]
    stored_before = done_lines(journal)
    assert FILES // 2 <= stored_before < FILES

    resumed = client("put", str(source), "default/backup/photos/", "--jobs", "4")
    assert resumed.returncode == 0, resumed.stderr
    match = re.search(r"uploaded (\d+) files .*, skipped (\d+) already stored", resumed.stdout)
    assert match, resumed.stdout
    uploaded, skipped = int(match.group(1)), int(match.group(2))
    assert uploaded + skipped == FILES and skipped >= stored_before
    # The progress line: bytes, rate, files.
    assert re.search(r"upload +\[#+\] 100\.0% .* / .*/s .*files \d+/\d+", resumed.stderr), resumed.stderr
    assert not journal.exists()  # everything stored: the journal is gone

    # The server saw every file PUT exactly once: nothing stored was sent again.
    with api(gateway, client.token) as http:
        totals = http.get("/usage", params={"org": "default"}).json()["totals"]
    assert totals["PUT"] == {"count": FILES, "bytes": total}

    # A third run sends nothing at all.
    again = client("put", str(source), "default/backup/photos/")
    assert again.returncode == 0 and f"skipped {FILES} already stored" in again.stdout
    with api(gateway, client.token) as http:
        assert http.get("/usage", params={"org": "default"}).json()["totals"]["PUT"]["count"] == FILES

    listed = client("ls", "-r", "default/backup/photos/")
    assert listed.returncode == 0
    assert len(listed.stdout.splitlines()) == FILES
    assert "photos/album-3/img-003.raw" in listed.stdout
    folders = client("ls", "default/backup/photos/")
    assert folders.stdout.count("/album-") == 7

    # A cold file: the client says how to get it back, restores it with Bulk, downloads it.
    key = "photos/album-3/img-010.raw"
    archived = client("mode", "archive", f"default/backup/{key}")
    assert archived.returncode == 0 and "1 objects archived" in archived.stdout
    cold = client("get", f"default/backup/{key}", str(tmp_path / "out.raw"))
    assert cold.returncode == 1
    assert "is in cold storage" in cold.stderr and "coolstorage client restore" in cold.stderr
    unconfirmed = client("restore", f"default/backup/{key}", "--priority", "Bulk")
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    assert re.search(r"costs \d+\.\d+ USD", unconfirmed.stdout)
    restored = client("restore", f"default/backup/{key}", "--priority", "Bulk", "--yes",
                      "--wait", "--timeout", "60")
    assert restored.returncode == 0, restored.stderr
    assert "(Bulk) ready" in restored.stdout and "coolstorage client get" in restored.stdout
    got = client("get", f"default/backup/{key}", str(tmp_path / "out.raw"))
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out.raw").read_bytes() == expected["album-3/img-010.raw"]
    status = client("status")
    assert status.returncode == 0 and "restore 1:" in status.stdout and "ready" in status.stdout

    # Missing rights and a revoked login read clearly.
    with api(gateway, client.token) as http:
        reply = http.post("/users", json={"name": "bob", "password": "bobs-password",
                                          "org": "default", "role": "member"})
        assert reply.status_code == 201
    bob = Client(tmp_path, "bob")
    bob.login(gateway, "bob", "bobs-password")
    denied = bob("mode", "archive", "default/backup/photos/")
    assert denied.returncode == 1
    assert "access denied" in denied.stderr and "archive right" in denied.stderr
    saved = bob.config.read_text()
    assert bob("logout").returncode == 0
    bob.config.write_text(saved)
    os.chmod(bob.config, 0o600)
    expired = bob("ls", "default/backup/")
    assert expired.returncode == 1
    assert "login has expired or was revoked" in expired.stderr
    assert "coolstorage client login" in expired.stderr


def test_get_decrypts_a_vault_object_with_identity(gateway_process: Any, tmp_path: Path) -> None:
    from gateway.sealing import generate_identity

    gateway: GatewayProcess = gateway_process({**GATEWAY, **localfs(str(tmp_path / "blobs"))})
    client = Client(tmp_path)
    client.login(gateway, *gateway.admin_auth)
    identity, recipient = generate_identity()
    identity_file = tmp_path / "me.age"
    identity_file.write_text(f"# my vault key\n{identity}\n")
    with api(gateway, client.token) as http:
        reply = http.post("/orgs/default/buckets", json={"name": "vault", "vault_recipient": recipient})
        assert reply.status_code == 201
    small = tmp_path / "notes.txt"
    small.write_bytes(b"for my eyes only\n" * 2000)
    large = tmp_path / "disk.img"
    large.write_bytes(os.urandom(11 << 20))
    for path in (small, large):
        put = client("put", str(path), "default/vault/", "--part-size", "5M",
                     "--multipart-threshold", "6M", "--no-progress")
        assert put.returncode == 0, put.stderr

    sealed = client("get", "default/vault/notes.txt", str(tmp_path / "plain.txt"))
    assert sealed.returncode == 1
    assert "vault" in sealed.stderr and "--identity" in sealed.stderr
    for name, original in (("notes.txt", small), ("disk.img", large)):
        out = tmp_path / f"decrypted-{name}"
        got = client("get", "--identity", str(identity_file), f"default/vault/{name}", str(out))
        assert got.returncode == 0, got.stderr
        assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(original.read_bytes()).digest()
    with api(gateway, client.token) as http:
        manifest = http.get("/sealed/default/vault/disk.img").json()
    assert len(manifest["segments"]) == 3  # 5 + 5 + 1 MiB parts, each its own sealed segment
    # Another identity cannot decrypt, and nothing is left behind.
    other, _ = generate_identity()
    wrong = tmp_path / "other.age"
    wrong.write_text(other + "\n")
    failed = client("get", "--identity", str(wrong), "default/vault/notes.txt", str(tmp_path / "x.txt"))
    assert failed.returncode == 1 and "cannot decrypt" in failed.stderr
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "x.txt.part").exists()
