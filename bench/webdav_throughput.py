"""WebDAV throughput next to a bare baseline, with curl as the client in another process.

Run: ``.venv/bin/python bench/webdav_throughput.py`` (a few minutes on 2 cores; ``--quick``
for a smoke run with a 64 MiB file and 1,000 files). Prints three ratios:

- **PUT** and **GET** of a file of mixed data (a tar of Python's standard library,
  repeated; 1 GiB) through the WebDAV endpoint, as a fraction of a baseline in the same
  run: a bare cheroot WSGI app that runs the same pipeline with nothing around it (the
  request body through ``SealingReader`` into a file, 1 MiB writes and an fsync; the
  sealed file back through ``unseal_range``). Target: at least 0.80 each.
- **PROPFIND** ``Depth: 1`` of a folder of 10,000 files (allprop) as a ratio of the time
  of wsgidav's own ``FilesystemProvider`` listing a directory of 10,000 plain files.
  Target: at most 2.0.

The endpoint is the real assembly (``Gateway.open`` on a SQLite catalog and the ``localfs``
backend, ``make_webdav_app``, a cheroot server configured as ``coolstorage serve`` does),
in this process; the clients are curl processes. Both sides use HTTP Basic credentials.
Each figure is the best of ``--repeat`` interleaved rounds. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cheroot import wsgi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog.records import ROLE_ADMIN, NewObject
from gateway.app import Gateway
from gateway.config import load_config
from gateway.principals import hash_password
from gateway.sealing import (
    SealingReader,
    SealResult,
    SegmentMetadata,
    generate_identity,
    unseal_range,
)
from protocols.webdav import make_webdav_app

MiB = 1 << 20
BLOCK = 4 * MiB
LEVEL = 3
IO_CHUNK = MiB
USER, PASSWORD = "bench", "bench-password-1"
TARGET_TRANSFER = 0.80
TARGET_PROPFIND = 2.0


def mixed_file(path: Path, size: int) -> None:
    """Write a tar of Python's standard library, repeated, to ``size`` bytes."""
    buf = io.BytesIO()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for item in sorted(stdlib.rglob("*")):
            if buf.tell() >= 64 * MiB:
                break
            if item.is_file() and not item.is_symlink() and "site-packages" not in item.parts:
                tar.add(item, arcname=str(item.relative_to(stdlib)), recursive=False)
    one = buf.getvalue()
    with path.open("wb") as out:
        written = 0
        while written < size:
            piece = one[: size - written]
            out.write(piece)
            written += len(piece)


def serve(app: Callable[..., Iterable[bytes]], threads: int = 8) -> tuple[wsgi.Server, str]:
    """Serve ``app`` with cheroot on a free loopback port (as ``coolstorage serve`` does)."""
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads, request_queue_size=128)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    host, port = server.bind_addr[:2]
    return server, f"http://{host}:{port}"


# -- the baseline: the same seal/unseal pipeline, nothing around it ----------------------


class Baseline:
    """PUT /x seals the body into one file (fsync); GET /x unseals it."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "baseline.sealed"
        self.identity, self.recipient = generate_identity()
        self.result: SealResult | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] == "PUT":
            reader = SealingReader(
                environ["wsgi.input"],
                SegmentMetadata(org="bench", bucket="bench", key="x"),
                [self.recipient],
                block_size=BLOCK,
                level=LEVEL,
            )
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                while chunk := reader.read(IO_CHUNK):
                    os.write(fd, chunk)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.result = reader.result
            start_response("201 Created", [("Content-Length", "0")])
            return [b""]
        assert self.result is not None
        result = self.result

        def fetch(offset: int, length: int) -> Iterator[bytes]:
            with self.path.open("rb") as handle:
                handle.seek(offset)
                while length > 0:
                    piece = handle.read(min(IO_CHUNK, length))
                    if not piece:
                        return
                    length -= len(piece)
                    yield piece

        body = unseal_range(
            0,
            result.plain_size,
            age_header=result.age_header,
            payload_offset=result.payload_offset,
            seek_table=result.seek_table,
            fetch=fetch,
            identities=[self.identity],
        )
        start_response(
            "200 OK",
            [
                ("Content-Length", str(result.plain_size)),
                ("Content-Type", "application/octet-stream"),
            ],
        )
        return body


# -- the endpoint ---------------------------------------------------------------------------


def open_gateway(directory: Path) -> Gateway:
    config_path = directory / "coolstorage.toml"
    config_path.write_text(
        f'[server]\ndata_dir = "{directory / "var"}"\n[engine]\nenabled = false\n'
        '[log]\nlevel = "warning"\n'
    )
    gateway = Gateway.open(load_config(config_path, env={}))
    catalog = gateway.catalog
    org = gateway.objects.ensure_org("bench")
    user = catalog.get_user(USER) or catalog.create_user(
        USER, password_hash=hash_password(PASSWORD)
    )
    catalog.add_membership(org.id, user.id, ROLE_ADMIN)
    return gateway


def fill_folder(gateway: Gateway, count: int) -> None:
    """``count`` files in /bench/bench/many/ (catalog rows only: a listing reads no bytes)."""
    objects = gateway.objects
    org = gateway.catalog.get_org("bench")
    assert org is not None
    bucket = gateway.catalog.get_bucket(org.id, "bench")
    assert bucket is not None
    when = datetime(2026, 1, 1, tzinfo=UTC)
    gateway.catalog.import_objects(
        NewObject(
            bucket_id=bucket.id,
            key=f"many/file-{i:05d}.txt",
            size=100,
            etag='"0123456789abcdef0123456789abcdef"',
            sha256="0" * 64,
            content_type="text/plain",
            user_metadata={},
            storage_class="STANDARD",
            segments=(),
            modified_at=when,
        )
        for i in range(count)
    )
    # A folder marker, as MKCOL leaves one.
    objects.put_object(
        _principal(gateway),
        "bench",
        "bench",
        "many/",
        io.BytesIO(b""),
        size=0,
        content_type="application/x-directory",
    )


def _principal(gateway: Gateway) -> Any:
    return gateway.identity.authenticate_password(USER, PASSWORD)


def plain_tree(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (directory / f"file-{i:05d}.txt").write_bytes(b"x" * 100)


def filesystem_app(root: Path) -> Callable[..., Iterable[bytes]]:
    from wsgidav.wsgidav_app import WsgiDAVApp

    return WsgiDAVApp(
        {
            "provider_mapping": {"/": str(root)},
            "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORD}}}},
            "http_authenticator": {"accept_digest": False, "default_to_digest": False},
            "verbose": 1,
            "logging": {"enable": False},
            "block_size": IO_CHUNK,
        }
    )


# -- curl -----------------------------------------------------------------------------------


def curl(*args: str) -> float:
    """Run curl; return its total time in seconds."""
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-f",
            "-u",
            f"{USER}:{PASSWORD}",
            "-o",
            "/dev/null",
            "-w",
            "%{time_total}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"curl {' '.join(args)} failed: {done.stderr.strip()}")
    return float(done.stdout.strip())


def best(rounds: list[float]) -> float:
    return min(rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB file, 1,000 files, 2 rounds")
    parser.add_argument("--repeat", type=int, default=0, help="rounds (default 3, quick 2)")
    parser.add_argument("--size-mib", type=int, default=0, help="file size (default 1024)")
    parser.add_argument("--files", type=int, default=0, help="folder size (default 10000)")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        raise SystemExit("curl is needed: apt-get install curl")
    size = (args.size_mib or (64 if args.quick else 1024)) * MiB
    files = args.files or (1000 if args.quick else 10_000)
    repeat = args.repeat or (2 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="webdav-bench-") as tmp:
        root = Path(tmp)
        data = root / "mixed.bin"
        mixed_file(data, size)
        gateway = open_gateway(root)
        try:
            return run(gateway, root, data, size, files, repeat)
        finally:
            gateway.close()


def run(gateway: Gateway, root: Path, data: Path, size: int, files: int, repeat: int) -> int:
    dav_server, dav = serve(make_webdav_app(gateway))
    base_server, base = serve(Baseline(root))
    plain_tree(root / "plain" / "many", files)
    fs_server, fs = serve(filesystem_app(root / "plain"))
    try:
        curl("-X", "MKCOL", f"{dav}/bench/bench/")
        fill_folder(gateway, files)
        put = {"webdav": [], "baseline": []}  # type: dict[str, list[float]]
        get = {"webdav": [], "baseline": []}  # type: dict[str, list[float]]
        for _ in range(repeat):
            put["webdav"].append(curl("-T", str(data), f"{dav}/bench/bench/big.bin"))
            put["baseline"].append(curl("-T", str(data), f"{base}/x"))
            get["webdav"].append(curl(f"{dav}/bench/bench/big.bin"))
            get["baseline"].append(curl(f"{base}/x"))
        listing = {"webdav": [], "filesystem": []}  # type: dict[str, list[float]]
        propfind = ("-X", "PROPFIND", "-H", "Depth: 1")
        curl(*propfind, f"{dav}/bench/bench/many/")  # warm caches on both sides
        curl(*propfind, f"{fs}/many/")
        for _ in range(repeat):
            listing["webdav"].append(curl(*propfind, f"{dav}/bench/bench/many/"))
            listing["filesystem"].append(curl(*propfind, f"{fs}/many/"))
    finally:
        for server in (dav_server, base_server, fs_server):
            server.stop()

    mb = size / 1e6
    put_ratio = best(put["baseline"]) / best(put["webdav"])
    get_ratio = best(get["baseline"]) / best(get["webdav"])
    list_ratio = best(listing["webdav"]) / best(listing["filesystem"])
    print(f"file {size // MiB} MiB of mixed data, folder of {files:,} files, best of {repeat}")
    print(
        f"PUT       webdav {mb / best(put['webdav']):8.1f} MB/s   baseline "
        f"{mb / best(put['baseline']):8.1f} MB/s   fraction {put_ratio:.2f} (target >= {TARGET_TRANSFER})"
    )
    print(
        f"GET       webdav {mb / best(get['webdav']):8.1f} MB/s   baseline "
        f"{mb / best(get['baseline']):8.1f} MB/s   fraction {get_ratio:.2f} (target >= {TARGET_TRANSFER})"
    )
    print(
        f"PROPFIND  webdav {best(listing['webdav']) * 1000:8.1f} ms     filesystem "
        f"{best(listing['filesystem']) * 1000:8.1f} ms     ratio {list_ratio:.2f} (target <= {TARGET_PROPFIND})"
    )
    ok = (
        put_ratio >= TARGET_TRANSFER
        and get_ratio >= TARGET_TRANSFER
        and list_ratio <= TARGET_PROPFIND
    )
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
