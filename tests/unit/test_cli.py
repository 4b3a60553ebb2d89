"""The command line: parsing, error lines and exit statuses, and the commands that need no
server (the serve command itself is tested end to end in tests/integration/test_serve.py).
Also the engine frame, which the CLI's serve runs in a thread."""

from __future__ import annotations

import os
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import trio

from gateway import cli, cli_config
from gateway.errors import BackendError, CatalogError, ConfigError
from gateway.logs import RequestIdMiddleware, current_request_id
from tiering.engine import Engine, PeriodicTask, default_tasks


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("COOLSTORAGE_"):
            monkeypatch.delenv(name)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in ("serve", "config", "db", "keys", "seal", "unseal"):
        assert f"    {command} " in out


def test_every_command_module_registers() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["keys", "export", "--org", "acme"])
    assert args.func.__module__ == "gateway.cli_keys" and args.org == "acme"
    args = parser.parse_args(["db", "upgrade"])
    assert args.func.__module__ == "gateway.cli_db"


def test_global_options_before_or_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "config", "check", "--log-level", "debug", "--log-format", "json")
    assert status == 0
    assert tomllib.loads(out)["log"] == {"level": "debug", "format": "json"}
    status, out, _ = run(capsys, "--log-level", "error", "config", "check")
    assert tomllib.loads(out)["log"]["level"] == "error"


def test_config_option_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "x.toml"
    file.write_text("[server]\nthreads = 7\n")
    status, out, _ = run(capsys, "config", "check", "--config", str(file))
    assert status == 0
    assert tomllib.loads(out)["server"]["threads"] == 7
    assert f"file: {file}" in out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "--log-level", "loud", "config", "check")
    assert status == 2 and "invalid choice" in err
    status, _, err = run(capsys, "frobnicate")
    assert status == 2
    status, _, err = run(capsys, "db")  # a group without its sub-command
    assert status == 2 and "upgrade" in err


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConfigError("backends.x.root: not writable"), 2),
        (CatalogError("cannot reach the database"), 1),
        (BackendError("bucket missing"), 1),
    ],
)
def test_domain_errors_become_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
) -> None:
    def boom(ctx: cli.CommandContext) -> int:
        raise error

    monkeypatch.setattr(cli_config, "run_check", boom)
    code, out, err = run(capsys, "config", "check")
    assert code == status and out == ""
    assert err == f"coolstorage: error: {error}\n"
    assert "Traceback" not in err


def test_error_lines_are_single_and_masked(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.logs import register_secret

    register_secret("hunter2-password")

    def boom(ctx: cli.CommandContext) -> int:
        raise CatalogError("login failed for hunter2-password\n(background on this error)")

    monkeypatch.setattr(cli_config, "run_check", boom)
    code, _, err = run(capsys, "config", "check")
    assert code == 1
    assert err == "coolstorage: error: Catalog error: login failed for ***\n"


def test_keyboard_interrupt_exits_130(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(ctx: cli.CommandContext) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_config, "run_check", interrupted)
    assert run(capsys, "config", "check")[0] == 130


def test_db_upgrade_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "sub" / "catalog.db"
    os.environ["COOLSTORAGE_CATALOG_URL"] = f"sqlite:///{db}"
    try:
        status, out, err = run(capsys, "db", "upgrade")
    finally:
        del os.environ["COOLSTORAGE_CATALOG_URL"]
    assert status == 0, err
    assert "latest schema" in out
    assert db.exists()


def test_keys_export_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "identity.txt"
    existing.write_text("keep me")
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "var"}"\n')
    status, _, err = run(
        capsys, "--config", str(config), "keys", "export", "--org", "default", "--out", str(existing)
    )
    assert status == 2
    assert "File exists" in err and err.count("\n") == 1
    assert existing.read_text() == "keep me"


# -- request ids ---------------------------------------------------------------------------


def test_request_id_middleware_sets_context_and_header() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["inside"] = current_request_id()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]

    wrapped = RequestIdMiddleware(app)
    headers: list[tuple[str, str]] = []

    def start_response(status: str, response_headers: list[tuple[str, str]], exc: Any = None) -> None:
        headers.extend(response_headers)

    body = wrapped({"REQUEST_METHOD": "GET", "HTTP_X_REQUEST_ID": "abc-123"}, start_response)
    assert b"".join(body) == b"hi"
    body.close()  # type: ignore[attr-defined]
    assert seen["inside"] == "abc-123"
    assert ("X-Request-Id", "abc-123") in headers
    assert current_request_id() is None

    headers.clear()
    body = wrapped({"REQUEST_METHOD": "GET", "HTTP_X_REQUEST_ID": "bad id\n"}, start_response)
    list(body)
    body.close()  # type: ignore[attr-defined]
    given = dict(headers)["X-Request-Id"]
    assert given != "bad id\n" and len(given) == 16 and seen["inside"] == given


# -- engine --------------------------------------------------------------------------------


class FakeCatalog:
    """Leases in memory, with the catalog's semantics (take or renew; others refused)."""

    def __init__(self) -> None:
        self.leases: dict[str, tuple[str, float]] = {}
        self.lock = threading.Lock()

    def acquire_lease(self, name: str, owner: str, ttl_seconds: float) -> bool:
        with self.lock:
            holder = self.leases.get(name)
            if holder and holder[0] != owner and holder[1] > time.monotonic():
                return False
            self.leases[name] = (owner, time.monotonic() + ttl_seconds)
            return True

    def release_lease(self, name: str, owner: str) -> None:
        with self.lock:
            if self.leases.get(name, ("",))[0] == owner:
                del self.leases[name]


class FakeGateway:
    def __init__(self, catalog: FakeCatalog, instance_id: str) -> None:
        self.catalog = catalog
        self.backends: dict[str, Any] = {}
        self.instance_id = instance_id


def test_engine_runs_periodic_tasks_in_a_thread_and_stops_promptly() -> None:
    calls: list[str | None] = []

    async def tick(engine: Engine) -> int:
        calls.append(current_request_id())
        return await engine.run_sync(lambda: len(calls))

    engine = Engine(
        FakeGateway(FakeCatalog(), "a"),  # type: ignore[arg-type]
        [PeriodicTask("tick", 0.05, tick, first_delay=0)],
    )
    engine.start()
    deadline = time.monotonic() + 5
    while engine.stats["tick"].runs < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    assert engine.stop(timeout=5)
    assert time.monotonic() - started < 1
    assert not engine.running
    assert engine.stats["tick"].runs >= 3
    assert engine.stats["tick"].last_result == engine.stats["tick"].runs
    assert all(rid and rid.startswith("tick-") for rid in calls)
    assert len(set(calls)) == len(calls)


def test_engine_survives_failing_tasks() -> None:
    async def fail(engine: Engine) -> None:
        raise BackendError("unreachable")

    async def crash(engine: Engine) -> None:
        raise RuntimeError("bug")

    engine = Engine(
        FakeGateway(FakeCatalog(), "a"),  # type: ignore[arg-type]
        [PeriodicTask("fail", 0.02, fail, first_delay=0), PeriodicTask("crash", 0.02, crash, first_delay=0)],
    )
    engine.start()
    time.sleep(0.3)
    assert engine.running
    assert engine.stop(timeout=5)
    assert engine.stats["fail"].failures >= 2
    assert engine.stats["crash"].failures >= 2
    assert engine.stats["crash"].last_error == "RuntimeError: bug"


def test_a_lease_makes_a_task_single_across_engines() -> None:
    catalog = FakeCatalog()
    ran: list[str] = []

    def make(owner: str) -> Engine:
        async def work(engine: Engine) -> None:
            ran.append(owner)

        return Engine(
            FakeGateway(catalog, owner),  # type: ignore[arg-type]
            [PeriodicTask("sweep", 0.02, work, lease="sweep", first_delay=0)],
        )

    first, second = make("one"), make("two")
    first.start()
    time.sleep(0.1)
    second.start()
    time.sleep(0.2)
    assert second.stop(5) and first.stop(5)  # the other order would hand the lease over
    assert "one" in ran and "two" not in ran
    assert second.stats["sweep"].skipped >= 2
    assert "sweep" not in catalog.leases  # released on stop

    # Once released, the other engine takes over.
    results = trio.run(second.run_once)
    assert results == {"sweep": None} and ran[-1] == "two"


def test_stop_before_start_and_twice() -> None:
    engine = Engine(FakeGateway(FakeCatalog(), "a"), [])  # type: ignore[arg-type]
    assert engine.stop(1)
    engine.start()
    assert engine.stop(5) and engine.stop(5)


def test_default_tasks_follow_the_config() -> None:
    from gateway.config import load_config

    config = load_config(env={"COOLSTORAGE_ENGINE_SWEEP_INTERVAL": "42"})
    listed = default_tasks(config)
    tasks = {t.name: t for t in listed}
    assert "sweep" in tasks and len(tasks) == len(listed)  # names are unique
    sweep = tasks["sweep"]
    assert sweep.interval == 42 and sweep.lease == "sweep"
    assert sweep.lease_ttl > 2 * 42
