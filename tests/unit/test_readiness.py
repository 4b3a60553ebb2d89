"""Readiness: what /readyz reports when the catalog or a backend is down, and the raw
route's body reader. In-process WSGI calls with fakes; the real server is tested in
tests/integration/test_serve.py."""

from __future__ import annotations

import io
import json
from typing import Any

from admin.app import PIECE, AdminApp, BodyReader
from gateway.app import Gateway
from gateway.config import load_config
from gateway.errors import BackendError, BlobNotFound, CatalogError


class FakeCatalog:
    def __init__(self) -> None:
        self.down = False
        self.checks = 0

    def check(self) -> None:
        self.checks += 1
        if self.down:
            raise CatalogError("cannot reach the catalog database at mysql://db/x")

    def close(self) -> None:
        pass


class FakeBackend:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def head(self, key: str) -> Any:
        raise self.error or BlobNotFound(key)

    def close(self) -> None:
        pass


def make_gateway(catalog: FakeCatalog, backends: dict[str, FakeBackend]) -> Gateway:
    return Gateway(load_config(env={}), catalog, backends, keyring=None, objects=None)  # type: ignore[arg-type]


def call(app: AdminApp, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    reply: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> None:
        reply["status"] = int(status.split()[0])
        reply["headers"] = dict(headers)

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path}, start_response))
    return reply["status"], reply["headers"], body


def test_ready_when_catalog_and_backends_answer() -> None:
    app = AdminApp(make_gateway(FakeCatalog(), {"local": FakeBackend()}))
    status, headers, body = call(app, "GET", "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready"}
    assert headers["Content-Type"] == "application/json"


def test_not_ready_names_each_problem() -> None:
    catalog = FakeCatalog()
    catalog.down = True
    backends = {
        "local": FakeBackend(),
        "aws": FakeBackend(BackendError("bucket example: connection refused", retryable=True)),
        "odd": FakeBackend(RuntimeError("boom\nsecond line")),
    }
    app = AdminApp(make_gateway(catalog, backends), ready_cache_seconds=0)
    status, _, body = call(app, "GET", "/readyz")
    assert status == 503
    assert json.loads(body) == {
        "status": "not ready",
        "problems": {
            "catalog": "Catalog error: cannot reach the catalog database at mysql://db/x",
            "backend aws": "Storage backend error: bucket example: connection refused",
            "backend odd": "RuntimeError: boom",
        },
    }
    # /healthz only says the process serves.
    assert call(app, "GET", "/healthz")[:1] == (200,)


def test_readiness_is_cached_briefly() -> None:
    catalog = FakeCatalog()
    app = AdminApp(make_gateway(catalog, {}), ready_cache_seconds=60)
    for _ in range(5):
        assert call(app, "GET", "/readyz")[0] == 200
    assert catalog.checks == 1
    catalog.down = True
    assert call(app, "GET", "/readyz")[0] == 200  # still the cached answer
    app.ready_cache_seconds = 0
    assert call(app, "GET", "/readyz")[0] == 503


def test_head_probes_have_no_body() -> None:
    app = AdminApp(make_gateway(FakeCatalog(), {}))
    status, headers, body = call(app, "HEAD", "/healthz")
    assert (status, body) == (200, b"") and headers["Content-Length"] == "3"


class CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def test_body_reader_fills_blocks_from_bounded_pieces() -> None:
    data = bytes(range(256)) * (3 * PIECE // 256) + b"tail"
    stream = CountingStream(data + b"beyond the declared length")
    reader = BodyReader(stream, len(data))
    block = reader.read(4 * PIECE)
    assert block == data  # the whole body: shorter than the block, so it ended
    assert max(stream.reads) <= PIECE
    assert reader.read(10) == b""  # never past Content-Length


def test_body_reader_chunked_reads_until_the_stream_ends() -> None:
    stream = CountingStream(b"x" * (PIECE + 5))
    reader = BodyReader(stream, None)
    assert reader.read(PIECE // 2) == b"x" * (PIECE // 2)
    assert reader.read(PIECE) == b"x" * (PIECE // 2 + 5)
    assert reader.read(1) == b""
