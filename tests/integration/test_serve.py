"""``coolstorage serve`` as a real process: probes, the core API's upload and download
endpoints, TLS, a graceful SIGTERM during an upload, and the one-line failures of bad
configurations."""

from __future__ import annotations

import base64
import http.client
import os
import re
import secrets
import signal
import socket
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import (
    GatewayProcess,
    clean_env,
    free_port,
    launch_gateway,
    run_coolstorage,
    to_toml,
)
from tests.fixtures.tls import TLSFiles

BUCKET = "smoke-bucket"


def object_url(gateway: GatewayProcess, key: str) -> str:
    return f"{gateway.admin_url}/api/v1/objects/default/{BUCKET}/{key}"


def buckets_url(gateway: GatewayProcess) -> str:
    return f"{gateway.admin_url}/api/v1/orgs/default/buckets"


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_probes_listeners_and_objects(gateway_process: Any) -> None:
    gateway: GatewayProcess = gateway_process(
        {"engine": {"sweep_interval": 1}, "log": {"level": "debug"}}
    )
    # The first start printed the admin and S3 key, with the endpoints to use.
    assert set(gateway.first_admin) == {
        "user", "password", "org", "access key id", "secret access key"
    }
    assert f"aws --endpoint-url {gateway.s3_url}" in gateway.stdout
    assert gateway.webdav_url in gateway.stdout
    key_file = Path(gateway.config["server"]["data_dir"]) / "master.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Secrets printed once on stdout never reach the log.
    assert gateway.first_admin["password"] not in gateway.stderr

    with httpx.Client(timeout=30) as client:
        reply = client.get(gateway.admin_url + "/healthz")
        assert (reply.status_code, reply.text) == (200, "ok\n")
        assert re.fullmatch(r"[0-9a-f]{16}", reply.headers["x-request-id"])
        reply = client.get(gateway.admin_url + "/readyz", headers={"X-Request-Id": "probe-1"})
        assert reply.status_code == 200 and reply.json() == {"status": "ready"}
        assert reply.headers["x-request-id"] == "probe-1"
        # The S3 and WebDAV listeners serve too, and refuse anonymous requests.
        assert client.get(gateway.s3_url + "/").status_code == 403
        assert client.get(gateway.webdav_url + "/").status_code == 401

        reply = client.get(object_url(gateway, "a"))
        assert reply.status_code == 401 and "Basic" in reply.headers["www-authenticate"]
        reply = client.get(object_url(gateway, "a"), auth=("admin", "wrong"))
        assert reply.status_code == 401

        auth = gateway.admin_auth
        bucket = {"name": BUCKET}
        assert client.post(buckets_url(gateway), json=bucket, auth=auth).status_code == 201
        reply = client.post(buckets_url(gateway), json=bucket, auth=auth)
        assert reply.status_code == 409 and reply.json()["error"] == "AlreadyExists"

        body = secrets.token_bytes(3 * 1024 * 1024 + 12345)
        reply = client.put(
            object_url(gateway, "dir/ünïcode name.bin"),
            content=body,
            auth=auth,
            headers={"Content-Type": "application/x-test"},
        )
        assert reply.status_code == 201, reply.text
        assert reply.json()["size"] == len(body)

        reply = client.get(object_url(gateway, "dir/ünïcode name.bin"), auth=auth)
        assert reply.status_code == 200
        assert reply.content == body
        assert reply.headers["content-type"] == "application/x-test"
        assert reply.headers["etag"].startswith('"')

        reply = client.get(
            object_url(gateway, "dir/ünïcode name.bin"),
            auth=auth,
            headers={"Range": "bytes=1048570-1048580"},
        )
        assert reply.status_code == 206
        assert reply.content == body[1048570:1048581]
        assert reply.headers["content-range"] == f"bytes 1048570-1048580/{len(body)}"

        reply = client.head(object_url(gateway, "dir/ünïcode name.bin"), auth=auth)
        assert reply.status_code == 200 and int(reply.headers["content-length"]) == len(body)

        assert client.delete(object_url(gateway, "dir/ünïcode name.bin"), auth=auth).status_code == 204
        reply = client.get(object_url(gateway, "dir/ünïcode name.bin"), auth=auth)
        assert reply.status_code == 404
        assert reply.json() == {
            "error": "NoSuchKey",
            "message": "No such object: dir/ünïcode name.bin",
        }

        reply = client.get(gateway.admin_url + "/nowhere")
        assert reply.status_code == 404 and reply.json()["error"] == "NotFound"
        reply = client.post(gateway.admin_url + "/healthz")
        assert reply.status_code == 405

    # The engine runs its sweep in the background, under its request ids.
    wait_for(lambda: "orphan sweep done" in gateway.stderr, 10, "the engine's orphan sweep")
    assert re.search(r"\[sweep-[0-9a-f]{8}\] orphan sweep done", gateway.stderr)
    assert gateway.stop() == 0


def test_sigterm_lets_an_upload_in_flight_finish(gateway_process: Any, tmp_path: Path) -> None:
    gateway: GatewayProcess = gateway_process({"engine": {"enabled": False}})
    auth = gateway.admin_auth
    with httpx.Client(timeout=30) as client:
        reply = client.post(buckets_url(gateway), json={"name": BUCKET}, auth=auth)
        assert reply.status_code == 201
    host, port = gateway.config["server"]["admin_listen"].split(":")
    body = secrets.token_bytes(3 * 1024 * 1024)
    piece = len(body) // 4

    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("PUT", f"/api/v1/objects/default/{BUCKET}/slow.bin")
    connection.putheader("Content-Length", str(len(body)))
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    connection.putheader("Authorization", f"Basic {token}")
    connection.endheaders()
    connection.send(body[:piece])
    time.sleep(0.5)  # the request is now being served

    signalled = time.monotonic()
    gateway.signal(signal.SIGTERM)

    # New connections are refused soon, while the upload is still going.
    def refused() -> bool:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return True
        return False

    wait_for(refused, 5, "the admin listener to stop accepting")
    assert gateway.process.poll() is None
    for start in range(piece, len(body), piece):
        time.sleep(0.4)
        connection.send(body[start : start + piece])
    answer = connection.getresponse()
    assert answer.status == 201, answer.read()
    answer.read()
    connection.close()

    assert gateway.wait(10) == 0
    assert time.monotonic() - signalled < 10
    assert "SIGTERM received: draining requests" in gateway.stderr

    # The upload really was committed: a restart on the same data serves it.
    again = launch_gateway(gateway.directory, {"engine": {"enabled": False}})
    try:
        assert again.first_admin == {}  # credentials are printed only at the very first start
        with httpx.Client(timeout=30) as client:
            stored = client.get(object_url(again, "slow.bin"), auth=auth)
            assert stored.status_code == 200 and stored.content == body
    finally:
        assert again.stop() == 0


def test_https_listeners_with_an_own_certificate(gateway_process: Any, tls_ca: TLSFiles) -> None:
    gateway: GatewayProcess = gateway_process({"engine": {"enabled": False}}, tls=tls_ca)
    assert gateway.admin_url.startswith("https://127.0.0.1:")
    assert "https://127.0.0.1:" in gateway.stdout
    with httpx.Client(verify=tls_ca.client_context(), timeout=30) as client:
        reply = client.get(gateway.admin_url + "/healthz")
        assert reply.status_code == 200 and reply.text == "ok\n"
        assert reply.http_version == "HTTP/1.1"
        auth = gateway.admin_auth
        reply = client.post(buckets_url(gateway), json={"name": BUCKET}, auth=auth)
        assert reply.status_code == 201
        reply = client.put(object_url(gateway, "k"), content=b"over tls", auth=auth)
        assert reply.status_code == 201
        assert client.get(object_url(gateway, "k"), auth=auth).content == b"over tls"
    # A client that does not trust the test CA is refused.
    with httpx.Client(timeout=10) as client, pytest.raises(httpx.ConnectError):
        client.get(gateway.admin_url + "/healthz")


# -- bad input: one clear line and a non-zero exit ------------------------------------------


def serve_with(tmp_path: Path, config: dict[str, Any], env: dict[str, str] | None = None) -> tuple[int, str]:
    base: dict[str, Any] = {
        "server": {
            "s3_listen": f"127.0.0.1:{free_port()}",
            "webdav_listen": "",
            "admin_listen": f"127.0.0.1:{free_port()}",
            "data_dir": str(tmp_path / "var"),
        }
    }
    for section, values in config.items():
        base.setdefault(section, {}).update(values)
    path = tmp_path / "coolstorage.toml"
    path.write_text(to_toml(base))
    result = run_coolstorage("--config", str(path), "serve", env=env, timeout=60)
    assert result.stdout == ""
    return result.returncode, result.stderr


def assert_one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("coolstorage: error: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_front_ends_are_closed_when_the_listeners_stop(tmp_path: Path) -> None:
    """A front end with threads of its own (the admin API's restore copies) is closed at
    shutdown, after its listener has drained."""
    from gateway.app import Gateway
    from gateway.config import load_config
    from gateway.server import Listeners

    events: list[str] = []

    class FrontEnd:
        def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [("Content-Length", "2")])
            return [b"ok"]

        def close(self) -> None:
            events.append("closed")

    config = load_config(
        env={},
        overrides={
            "server": {"data_dir": str(tmp_path), "s3_listen": "127.0.0.1:0",
                       "webdav_listen": "", "admin_listen": ""},
        },
    )
    gateway = Gateway.open(config)
    listeners = Listeners(gateway, config, {"s3": lambda _gateway: FrontEnd()})
    try:
        listeners.bind()
        listeners.start()
        host, port = listeners.listeners[0].address
        assert httpx.get(f"http://{host}:{port}/").text == "ok"
        assert events == []
    finally:
        listeners.stop(1)
        gateway.close()
    assert events == ["closed"]


def test_unknown_key_stops_serve(tmp_path: Path) -> None:
    status, stderr = serve_with(tmp_path, {"server": {"treads": 4}})
    assert status == 2
    assert "unknown config key server.treads" in assert_one_line(stderr)


def test_unreachable_database(tmp_path: Path) -> None:
    password = "n0t-in-any-log"
    url = f"mysql+pymysql://cool:{password}@127.0.0.1:{free_port()}/coolstorage"
    status, stderr = serve_with(tmp_path, {}, env={"COOLSTORAGE_CATALOG_URL": url})
    assert status != 0
    line = assert_one_line(stderr)
    assert password not in stderr
    assert "127.0.0.1" in line


def test_unknown_backend_plugin(tmp_path: Path) -> None:
    status, stderr = serve_with(tmp_path, {"backends": {"local": {"type": "tape-robot"}}})
    assert status == 2
    assert "unknown backend plugin 'tape-robot'" in assert_one_line(stderr)


def test_localfs_root_that_is_not_writable(tmp_path: Path) -> None:
    # Tests run as root, which may write anywhere: a path below a regular file fails for all.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    root = blocker / "blobs"
    status, stderr = serve_with(tmp_path, {"backends": {"local": {"type": "localfs", "root": str(root)}}})
    assert status == 2
    assert str(root) in assert_one_line(stderr)


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, stderr = serve_with(tmp_path, {"server": {"admin_listen": f"127.0.0.1:{port}"}})
    assert status == 2
    line = assert_one_line(stderr.replace(_key_warning(stderr), ""))
    assert f"server.admin_listen: cannot listen on 127.0.0.1:{port}" in line


def _key_warning(stderr: str) -> str:
    """The first start's log line about the new master key (expected before binding)."""
    match = re.search(r"^.*created a new master key file.*\n", stderr, re.M)
    return match.group(0) if match else ""


def test_clean_env_drops_coolstorage_variables() -> None:
    os.environ["COOLSTORAGE_SERVER_THREADS"] = "x"
    try:
        assert "COOLSTORAGE_SERVER_THREADS" not in clean_env()
    finally:
        del os.environ["COOLSTORAGE_SERVER_THREADS"]
