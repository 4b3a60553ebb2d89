"""S3 endpoint throughput against a bare cheroot baseline, and the server's memory.

Run: ``.venv/bin/python bench/s3_throughput.py`` (a few minutes on 2 cores; ``--quick`` for
a smoke run with 64 MiB objects). Everything runs on this machine, each server in its own
process, each client a ``curl`` process (pre-signed URLs made by botocore here, so the client
costs little per request and sends no checksums):

- the gateway: ``coolstorage serve`` on the ``localfs`` backend (S3 listener only, engine
  off), its SQLite catalog and blobs under a temporary directory;
- the baseline: a bare cheroot app (same thread count and backlog) that runs the same
  pipeline with nothing around it: :class:`gateway.sealing.SealingReader` from the request
  body into a file, fsync, and for GET ``unseal_range`` of that file into the response;
- the discard baseline: a bare cheroot app that reads the body and throws it away.

It prints, next to the targets of issue 5:

1. PUT and GET of one object of mixed data (a tar of Python's standard library, repeated;
   1 GiB) as a fraction of the baseline doing the same (target >= 0.80 each);
2. 4 KiB PUTs per second with 8 concurrent clients as a fraction of the baseline sealing
   and fsyncing each object (target >= 0.50), and as a fraction of the discard app (for the
   record);
3. the gateway's peak RSS while 4 clients upload 1 GiB each at once (target <= 400 MiB).

Timed runs are interleaved (baseline, gateway, baseline, ...) and the best of each is kept,
so a busy moment on a shared machine hits both alike. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MiB = 1 << 20
GiB = 1 << 30
BLOCK = 4 * MiB
LEVEL = 3
THREADS = 16
QUEUE = 128
CONCURRENCY = 8
TARGET_STREAM = 0.80
TARGET_SMALL = 0.50
RSS_BUDGET = 400 * MiB


# -- the baselines (run as `s3_throughput.py --serve seal|discard`) -------------------------


def serve_baseline(mode: str, port: int, root: Path) -> None:
    """A bare cheroot app: PUT seals the body into a file (fsync) or discards it; GET
    unseals the file. Runs until SIGTERM."""
    from cheroot import wsgi

    from gateway.sealing import SealingReader, SegmentMetadata, generate_identity, unseal_range

    identity, recipient = generate_identity()
    results: dict[str, Any] = {}
    lock = threading.Lock()
    root.mkdir(parents=True, exist_ok=True)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ["PATH_INFO"]
        name = root / hashlib.sha256(path.encode()).hexdigest()
        stream = environ["wsgi.input"]
        if environ["REQUEST_METHOD"] == "PUT":
            if mode == "discard":
                while stream.read(MiB):
                    pass
            else:
                reader = SealingReader(
                    stream,
                    SegmentMetadata(org="bench", bucket="bench", key=path),
                    [recipient],
                    block_size=BLOCK,
                    level=LEVEL,
                )
                temp = name.with_suffix(".tmp")
                with temp.open("wb") as out:
                    while chunk := reader.read(MiB):
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, name)
                with lock:
                    results[path] = reader.result
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        with lock:
            result = results.get(path)
        if result is None:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]

        def fetch(offset: int, length: int) -> Iterator[bytes]:
            with name.open("rb") as handle:
                handle.seek(offset)
                left = length
                while left > 0:
                    piece = handle.read(min(left, MiB))
                    if not piece:
                        return
                    left -= len(piece)
                    yield piece

        body = unseal_range(
            0,
            result.plain_size,
            age_header=result.age_header,
            payload_offset=result.payload_offset,
            seek_table=result.seek_table,
            fetch=fetch,
            identities=[identity],
        )
        start_response("200 OK", [("Content-Length", str(result.plain_size))])
        return body

    server = wsgi.Server(("127.0.0.1", port), app, numthreads=THREADS, request_queue_size=QUEUE)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server.start()


# -- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def mixed_file(path: Path, size: int) -> None:
    """``size`` bytes of a tar of Python's standard library, repeated."""
    buf = io.BytesIO()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for item in sorted(stdlib.rglob("*")):
            if buf.tell() >= 96 * MiB:
                break
            if item.is_file() and not item.is_symlink() and "site-packages" not in item.parts:
                tar.add(item, arcname=str(item.relative_to(stdlib)), recursive=False)
    one = buf.getvalue()
    with path.open("wb") as out:
        left = size
        while left > 0:
            piece = one[: min(left, len(one))]
            out.write(piece)
            left -= len(piece)


def curl(*args: str) -> str:
    result = subprocess.run(
        ["curl", "-sS", "--fail", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"curl {' '.join(args[:3])}... failed: {result.stderr.strip()}")
    return result.stdout


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def parallel_puts(urls: list[str], body: Path, work: Path) -> float:
    """Seconds for curl to PUT ``body`` to every URL, ``CONCURRENCY`` at a time."""
    config = work / f"curl-{len(urls)}-{time.monotonic_ns()}.cfg"
    with config.open("w") as out:
        for url in urls:
            out.write(f'upload-file = "{body}"\nurl = "{url}"\noutput = "/dev/null"\n')
    start = time.perf_counter()
    codes = subprocess.run(
        ["curl", "-sS", "--parallel", "--parallel-max", str(CONCURRENCY), "-K", str(config),
         "-w", "%{http_code}\n", "-H", "Expect:"],
        capture_output=True, text=True, check=False,
    )
    elapsed = time.perf_counter() - start
    ok = codes.stdout.split().count("200")
    if ok != len(urls):
        raise RuntimeError(f"{len(urls) - ok} of {len(urls)} PUTs failed: {codes.stderr[-500:]}")
    return elapsed


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    url: str
    access_key: str
    secret: str


def start_gateway(work: Path) -> Gateway:
    port = free_port()
    config = work / "coolstorage.toml"
    config.write_text(
        "\n".join(
            [
                "[server]",
                f's3_listen = "127.0.0.1:{port}"',
                'webdav_listen = ""',
                'admin_listen = ""',
                f"threads = {THREADS}",
                f"request_queue_size = {QUEUE}",
                f'data_dir = "{work / "var"}"',
                "[engine]",
                "enabled = false",
                "[backends.local]",
                'type = "localfs"',
                f'root = "{work / "var" / "blobs"}"',
                "[log]",
                'level = "warning"',
                "",
            ]
        )
    )
    exe = Path(sys.executable).parent / "coolstorage"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "gateway.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COOLSTORAGE_")}
    out = (work / "gateway.out").open("wb")
    process = subprocess.Popen(
        [*command, "--config", str(config), "serve"],
        stdout=out, stderr=(work / "gateway.err").open("wb"), env=env, cwd=work,
    )
    wait_port(port, process)
    banner = ""
    for _ in range(100):
        banner = (work / "gateway.out").read_text()
        if "secret access key" in banner:
            break
        time.sleep(0.1)
    found = dict(re.findall(r"^\s+(access key id|secret access key):\s+(\S+)\s*$", banner, re.M))
    return Gateway(process, f"http://127.0.0.1:{port}", found["access key id"], found["secret access key"])


def start_baseline(mode: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--port", str(port), "--root", str(work / mode)],
        stdout=subprocess.DEVNULL, stderr=(work / f"{mode}.err").open("wb"),
    )
    wait_port(port, process)
    return process, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# -- the run -------------------------------------------------------------------------------


def run(quick: bool, work: Path) -> int:
    import boto3
    from botocore.config import Config

    if shutil.which("curl") is None:
        print("curl not found: install it: apt-get install curl")
        return 2
    size = 64 * MiB if quick else GiB
    small_count = 300 if quick else 2000
    rounds = 2
    data = work / "mixed.bin"
    mixed_file(data, size)
    small = work / "small.bin"
    with data.open("rb") as handle:
        small.write_bytes(handle.read(4096))

    gateway = start_gateway(work)
    seal, seal_url = start_baseline("seal", work)
    discard, discard_url = start_baseline("discard", work)
    try:
        client = boto3.client(
            "s3", endpoint_url=gateway.url, aws_access_key_id=gateway.access_key,
            aws_secret_access_key=gateway.secret, region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket="bench")

        def presign(method: str, key: str) -> str:
            url: str = client.generate_presigned_url(
                method, Params={"Bucket": "bench", "Key": key}, ExpiresIn=3 * 3600
            )
            return url

        # 1. one large object, PUT then GET, interleaved with the baseline.
        put_gw = put_base = get_gw = get_base = float("inf")
        for r in range(rounds):
            put_base = min(put_base, timed(curl, "-H", "Expect:", "-T", str(data), f"{seal_url}/big{r}", "-o", "/dev/null"))
            put_gw = min(put_gw, timed(curl, "-H", "Expect:", "-T", str(data), presign("put_object", f"big{r}"), "-o", "/dev/null"))
            get_base = min(get_base, timed(curl, "-o", "/dev/null", f"{seal_url}/big{r}"))
            get_gw = min(get_gw, timed(curl, "-o", "/dev/null", presign("get_object", f"big{r}")))
        check = client.head_object(Bucket="bench", Key="big0")
        assert check["ContentLength"] == size

        # 2. many 4 KiB PUTs, 8 at a time.
        small_gw = small_seal = small_discard = float("inf")
        for r in range(rounds):
            keys = [f"small/{r}/{i:06d}" for i in range(small_count)]
            small_seal = min(small_seal, parallel_puts([f"{seal_url}/{k}" for k in keys], small, work))
            small_discard = min(small_discard, parallel_puts([f"{discard_url}/{k}" for k in keys], small, work))
            urls = [presign("put_object", k) for k in keys]
            small_gw = min(small_gw, parallel_puts(urls, small, work))

        # 3. peak RSS of the gateway while 4 clients upload a large object each.
        peak = rss(gateway.process.pid)
        urls = [presign("put_object", f"parallel/{i}") for i in range(4)]
        uploads = [
            subprocess.Popen(["curl", "-sS", "--fail", "-H", "Expect:", "-T", str(data), url, "-o", "/dev/null"])
            for url in urls
        ]
        while any(u.poll() is None for u in uploads):
            peak = max(peak, rss(gateway.process.pid))
            time.sleep(0.02)
        if any(u.returncode != 0 for u in uploads):
            raise RuntimeError("a concurrent upload failed")
    finally:
        for process in (gateway.process, seal, discard):
            stop(process)

    mb = size / 1e6
    put_ratio = put_base / put_gw
    get_ratio = get_base / get_gw
    small_ratio = small_seal / small_gw
    discard_ratio = small_discard / small_gw
    label = f"{size // MiB} MiB" if size < GiB else f"{size // GiB} GiB"
    lines = [
        f"S3 endpoint vs bare cheroot baseline ({label} of mixed data, localfs, curl clients)",
        f"  PUT {label}:   gateway {mb / put_gw:7.1f} MB/s  baseline {mb / put_base:7.1f} MB/s"
        f"  ratio {put_ratio:.2f}  (target >= {TARGET_STREAM:.2f})",
        f"  GET {label}:   gateway {mb / get_gw:7.1f} MB/s  baseline {mb / get_base:7.1f} MB/s"
        f"  ratio {get_ratio:.2f}  (target >= {TARGET_STREAM:.2f})",
        f"  4 KiB PUTs, {CONCURRENCY} clients: gateway {small_count / small_gw:7.0f}/s"
        f"  seal+fsync baseline {small_count / small_seal:7.0f}/s  ratio {small_ratio:.2f}"
        f"  (target >= {TARGET_SMALL:.2f})",
        f"  4 KiB PUTs vs discard-only app {small_count / small_discard:7.0f}/s:"
        f" ratio {discard_ratio:.2f}  (for the record)",
        f"  peak gateway RSS, 4 concurrent {label} uploads: {peak / MiB:.0f} MiB"
        f"  (target <= {RSS_BUDGET // MiB} MiB)",
    ]
    print("\n".join(lines))
    missed = [
        name
        for name, ok in (
            ("PUT", put_ratio >= TARGET_STREAM),
            ("GET", get_ratio >= TARGET_STREAM),
            ("4 KiB PUTs", small_ratio >= TARGET_SMALL),
            ("RSS", peak <= RSS_BUDGET),
        )
        if not ok
    ]
    if missed:
        print(f"  missed: {', '.join(missed)}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB objects, fewer small PUTs")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument("--serve", choices=["seal", "discard"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_baseline(args.serve, args.port, args.root)
        return 0
    work = Path(tempfile.mkdtemp(prefix="coolstorage-s3-bench-"))
    try:
        return run(args.quick, work)
    finally:
        if args.keep:
            print(f"  (working directory kept: {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
