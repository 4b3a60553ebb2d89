"""The background engine: a trio program running periodic tasks.

``coolstorage serve`` runs it in its own thread next to the request threads (``Engine.start``
/ ``Engine.stop``); ``coolstorage tier run`` can run it alone in the main thread
(``trio.run(engine.run)``) or one round of every task (``engine.run_once_blocking()``).

Each task is a :class:`PeriodicTask`: an async function run every ``interval`` seconds, give
or take ``jitter`` so replicas started together drift apart (as JuiceFS's cleanups do). A
task with a ``lease`` name first takes or renews that catalog lease and skips its turn when
another engine holds it, so the work is done by one engine however many run; the holder
renews at every run, and a dead holder's lease expires after about two intervals.

Blocking calls (the catalog, boto3, file systems) go through :meth:`Engine.run_sync`, which
uses ``trio.to_thread`` under one :class:`trio.CapacityLimiter`, so the engine never takes
more than ``max_threads`` threads from the request path's machine. A task that raises is
logged and runs again at its next turn; it never stops the engine. Stopping cancels the
nursery: a task waiting in ``trio.sleep`` stops at once, one inside a thread call stops
when that call returns, and leases held are released.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from gateway.errors import CoolStorageError
from gateway.logs import bind_request_id, new_request_id

if TYPE_CHECKING:
    from catalog.records import RestoreRecord
    from gateway.app import Gateway
    from gateway.config import Config
    from tiering.transitions import Leases
    from tiering.webhook import WebhookSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

TaskFunction = Callable[["Engine"], Awaitable[object]]

#: Seconds between two looks for the backends' leftovers of interrupted writes.
LEFTOVERS_INTERVAL = 3600.0


@dataclass(frozen=True)
class PeriodicTask:
    """A job the engine runs every ``interval`` seconds (+/- ``jitter`` of it).

    ``lease`` names the catalog lease that makes the task single across engines (None: every
    engine runs it). ``first_delay`` is the wait before the first run (None: a random part
    of ``jitter * interval``, so replicas do not start in step).
    """

    name: str
    interval: float
    run: TaskFunction
    lease: str | None = None
    jitter: float = 0.1
    first_delay: float | None = None

    def next_delay(self, rng: random.Random) -> float:
        spread = self.interval * self.jitter
        return max(0.0, self.interval + rng.uniform(-spread, spread))

    @property
    def lease_ttl(self) -> float:
        # Long enough to survive one late turn plus a long run; short enough that a dead
        # holder's work moves to another engine within about two intervals.
        return self.interval * (2 + self.jitter) + 60


@dataclass
class TaskStats:
    """What the engine knows of one task's runs (for logs, tests and health pages)."""

    runs: int = 0
    skipped: int = 0
    failures: int = 0
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_result: object = None
    last_error: str | None = None


@dataclass
class _RunState:
    token: trio.lowlevel.TrioToken
    scope: trio.CancelScope
    leases: set[str] = field(default_factory=set)


class Engine:
    """Runs ``tasks`` for ``gateway`` until stopped."""

    def __init__(
        self,
        gateway: Gateway,
        tasks: Iterable[PeriodicTask],
        *,
        max_threads: int = 4,
        seed: int | None = None,
    ) -> None:
        self.gateway = gateway
        self.tasks: list[PeriodicTask] = list(tasks)
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique: {names}")
        self.owner = gateway.instance_id
        self.max_threads = max_threads
        self.stats: dict[str, TaskStats] = {t.name: TaskStats() for t in self.tasks}
        self._rng = random.Random(seed)
        self._limiter: trio.CapacityLimiter | None = None
        self._lock = threading.Lock()
        self._state: _RunState | None = None
        self._stop_requested = False
        self._thread: threading.Thread | None = None
        self._crashed: BaseException | None = None

    # -- what tasks call -----------------------------------------------------------------
    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call in a worker thread, within the engine's thread budget."""
        if self._limiter is None:
            self._limiter = trio.CapacityLimiter(self.max_threads)
        return await trio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self._limiter
        )

    # -- running inside trio ---------------------------------------------------------------
    async def run(self) -> None:
        """Run every task periodically until :meth:`stop` (or the surrounding scope) cancels."""
        self._limiter = trio.CapacityLimiter(self.max_threads)
        with trio.CancelScope() as scope:
            state = _RunState(trio.lowlevel.current_trio_token(), scope)
            with self._lock:
                self._state = state
                if self._stop_requested:
                    scope.cancel()
            try:
                log.info("engine started", extra={"tasks": ",".join(t.name for t in self.tasks)})
                async with trio.open_nursery() as nursery:
                    for task in self.tasks:
                        nursery.start_soon(self._loop, task, state, name=f"engine:{task.name}")
            finally:
                with self._lock:
                    self._state = None
                await self._release_leases(state)
        log.info("engine stopped")

    async def run_once(self, names: Sequence[str] | None = None) -> dict[str, object]:
        """Run each task (or those named) once, in order; return each one's result.

        Leases are honoured as in :meth:`run` (a task whose lease another engine holds is
        skipped, its result ``None``) and released afterwards.
        """
        self._limiter = trio.CapacityLimiter(self.max_threads)
        unknown = set(names or ()) - {t.name for t in self.tasks}
        if unknown:
            raise ValueError(f"unknown engine tasks: {', '.join(sorted(unknown))}")
        state = _RunState(trio.lowlevel.current_trio_token(), trio.CancelScope())
        results: dict[str, object] = {}
        try:
            for task in self.tasks:
                if names is None or task.name in names:
                    await self._turn(task, state)
                    results[task.name] = self.stats[task.name].last_result
        finally:
            await self._release_leases(state)
        return results

    def run_once_blocking(self, names: Sequence[str] | None = None) -> dict[str, object]:
        """:meth:`run_once` from synchronous code (``coolstorage tier run --once``)."""
        return trio.run(self.run_once, names)

    async def _loop(self, task: PeriodicTask, state: _RunState) -> None:
        first = task.first_delay
        if first is None:
            first = self._rng.uniform(0, task.interval * task.jitter)
        await trio.sleep(first)
        while True:
            await self._turn(task, state)
            await trio.sleep(task.next_delay(self._rng))

    async def _turn(self, task: PeriodicTask, state: _RunState) -> None:
        stats = self.stats[task.name]
        with bind_request_id(f"{task.name}-{new_request_id()[:8]}"):
            try:
                if task.lease is not None:
                    held = await self.run_sync(
                        self.gateway.catalog.acquire_lease, task.lease, self.owner, task.lease_ttl
                    )
                    if not held:
                        stats.skipped += 1
                        log.debug("task %s skipped: another engine holds its lease", task.name)
                        return
                    state.leases.add(task.lease)
                stats.last_started = datetime.now(UTC)
                result = await task.run(self)
                stats.runs += 1
                stats.last_result = result
                stats.last_error = None
            except CoolStorageError as error:
                stats.failures += 1
                stats.last_error = str(error)
                log.warning("task %s failed, will retry: %s", task.name, error)
            except Exception as error:
                stats.failures += 1
                stats.last_error = f"{type(error).__name__}: {error}"
                log.exception("task %s failed unexpectedly, will retry", task.name)
            finally:
                stats.last_finished = datetime.now(UTC)

    async def _release_leases(self, state: _RunState) -> None:
        if not state.leases:
            return
        with trio.move_on_after(5) as guard:
            guard.shield = True
            for lease in sorted(state.leases):
                try:
                    await trio.to_thread.run_sync(
                        self.gateway.catalog.release_lease, lease, self.owner
                    )
                except Exception as error:
                    log.warning("could not release lease %s: %s", lease, error)
        state.leases.clear()

    # -- running in a thread -------------------------------------------------------------
    def start(self) -> None:
        """Run the engine in a background thread (``coolstorage serve``)."""
        if self._thread is not None:
            raise RuntimeError("the engine was already started")

        def main() -> None:
            try:
                trio.run(self.run)
            except BaseException as error:  # the thread must not die silently
                self._crashed = error
                log.exception("the engine stopped with an error")

        self._thread = threading.Thread(target=main, name="coolstorage-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Cancel every task and wait up to ``timeout`` seconds; True if it stopped.

        Safe from any thread, before or after :meth:`start`, and more than once.
        """
        with self._lock:
            self._stop_requested = True
            state = self._state
        if state is not None:
            with contextlib.suppress(trio.RunFinishedError):
                state.token.run_sync_soon(state.scope.cancel)
        if self._thread is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the engine did not stop within %.0f s; leaving it", timeout)
            return False
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


# -- tasks ---------------------------------------------------------------------------------


def orphan_sweep_task(interval: float, orphan_age: float) -> PeriodicTask:
    """Delete blobs that no object references and whose intent is older than
    ``orphan_age`` seconds (:func:`tiering.sweep.sweep_orphans`), then the backends'
    leftovers of interrupted writes of that age (:func:`tiering.sweep.remove_leftovers`),
    under the lease "sweep"."""

    leftovers_due = [0.0]  # monotonic time of the next look for backend leftovers

    async def sweep(engine: Engine) -> int:
        from tiering.sweep import remove_leftovers, sweep_orphans

        older_than = datetime.now(UTC) - timedelta(seconds=orphan_age)
        backends = engine.gateway.objects.backends
        # The service's map includes the built-in staging backend: an unreferenced staged
        # row is swept like any other blob.
        deleted = await engine.run_sync(
            sweep_orphans, engine.gateway.catalog, backends, older_than
        )
        leftovers = 0
        # Leftovers come only from crashes, and looking walks a localfs tree or lists S3's
        # uploads: once an hour is plenty.
        if time.monotonic() >= leftovers_due[0]:
            leftovers_due[0] = time.monotonic() + LEFTOVERS_INTERVAL
            leftovers = await engine.run_sync(remove_leftovers, backends, older_than)
        log.debug("orphan sweep done", extra={"deleted": deleted, "leftovers": leftovers})
        return deleted + leftovers

    return PeriodicTask("sweep", interval, sweep, lease="sweep")


def multipart_expiry_task(interval: float, expiry_days: float) -> PeriodicTask:
    """Abort multipart uploads started more than ``expiry_days`` ago and delete their parts
    (:meth:`gateway.multipart.MultipartOperations.abort_stale_uploads`), under the lease
    "multipart-expiry"."""

    async def expire(engine: Engine) -> int:
        older_than = datetime.now(UTC) - timedelta(days=expiry_days)
        aborted = await engine.run_sync(engine.gateway.objects.abort_stale_uploads, older_than)
        if aborted:
            log.info("aborted %d multipart uploads older than %g days", aborted, expiry_days)
        return aborted

    return PeriodicTask("multipart-expiry", interval, expire, lease="multipart-expiry")


async def run_holding_leases(
    engine: Engine, leases: Leases, fn: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    """Run the blocking ``fn(*args, stop=event, **kwargs)`` in a worker thread while
    renewing the job leases it takes (every third of their lifetime).

    ``stop`` is a :class:`threading.Event` set when the engine is being stopped: ``fn``
    checks it between jobs, so a stop never waits for more than the job at hand.
    """
    stop = threading.Event()

    async def heartbeat() -> None:
        try:
            while True:
                await trio.sleep(max(leases.ttl / 3, 0.5))
                await engine.run_sync(leases.renew_all)
        finally:
            stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(heartbeat)
        try:
            return await engine.run_sync(fn, *args, stop=stop, **kwargs)
        finally:
            nursery.cancel_scope.cancel()


def retention_task(interval: float) -> PeriodicTask:
    """Purge deleted-but-retained objects whose time is up and delete the blobs they
    leave unreferenced (:func:`tiering.retention.purge_retained`), under the lease
    "retention"."""

    async def purge(engine: Engine) -> object:
        from tiering.retention import purge_retained

        return await engine.run_sync(
            purge_retained, engine.gateway.catalog, engine.gateway.objects.backends
        )

    return PeriodicTask("retention", interval, purge, lease="retention")


def tiering_task(config: Config) -> PeriodicTask:
    """Archive what is due and rewrite containers that qualify
    (:meth:`tiering.transitions.Tierer.run_pass`), every ``tiering.interval`` seconds.

    No task lease: every job takes its own, so several engines share the work.
    """
    from tiering.transitions import TieringSettings

    settings = TieringSettings.from_config(config)

    async def tier(engine: Engine) -> object:
        from tiering.transitions import Tierer

        gateway = engine.gateway
        tierer = Tierer(gateway.catalog, gateway.objects.backends, settings, owner=engine.owner)
        try:
            return await run_holding_leases(engine, tierer.leases, tierer.run_pass)
        finally:
            with trio.CancelScope(shield=True):
                await engine.run_sync(tierer.leases.release_all)

    return PeriodicTask("tiering", config.tiering.interval, tier)


def restores_task(config: Config) -> PeriodicTask:
    """Poll ongoing restores with backoff and announce completions through the webhook
    (:mod:`tiering.restores`, :mod:`tiering.webhook`), under the lease "restores"."""
    t = config.tiering
    webhook = None
    if t.restore_webhook_url:
        from tiering.webhook import WebhookSettings

        webhook = WebhookSettings(
            url=t.restore_webhook_url,
            secret=t.restore_webhook_secret.reveal().encode("utf-8"),
            attempts=t.restore_webhook_attempts,
        )
    purged_at: list[datetime] = []

    async def restores(engine: Engine) -> object:
        from tiering.restores import poll_restores

        gateway = engine.gateway
        now = datetime.now(UTC)
        report = await engine.run_sync(
            poll_restores,
            gateway.catalog,
            gateway.objects.backends,
            now=now,
            min_delay=t.restore_poll_interval,
            max_delay=t.restore_poll_max,
        )
        if webhook is not None:
            await announce_restores(engine, webhook, since=now - timedelta(days=1))
        if not purged_at or now - purged_at[0] > timedelta(hours=1):
            purged_at[:] = [now]
            await engine.run_sync(
                gateway.catalog.purge_expired_restores, now - timedelta(days=30)
            )
        return report

    return PeriodicTask("restores", t.restore_poll_interval, restores, lease="restores")


async def announce_restores(
    engine: Engine, webhook: WebhookSettings, *, since: datetime, limit: int = 100
) -> int:
    """Deliver the webhook message of every completion since ``since`` not announced yet
    (a few at a time); returns how many were delivered."""
    import httpx

    from tiering.restores import restore_message
    from tiering.webhook import deliver

    catalog = engine.gateway.catalog
    rows = await engine.run_sync(catalog.unnotified_restores, since, limit=limit)
    if not rows:
        return 0
    delivered = 0
    limiter = trio.CapacityLimiter(8)

    async def one(row: RestoreRecord, client: httpx.AsyncClient) -> None:
        nonlocal delivered
        async with limiter:
            message = await engine.run_sync(restore_message, catalog, row)
            if await deliver(webhook, message, client=client):
                assert row.completed_at is not None
                await engine.run_sync(
                    catalog.mark_restore_notified,
                    row.blob.id,
                    row.completed_at,
                    datetime.now(UTC),
                )
                delivered += 1

    async with (
        httpx.AsyncClient(timeout=webhook.timeout, follow_redirects=False) as client,
        trio.open_nursery() as nursery,
    ):
        for row in rows:
            nursery.start_soon(one, row, client)
    return delivered


#: Builders of the engine's tasks from the config; a later feature (usage export, jobs)
#: appends its own. A builder returns None when its feature is turned off.
TASK_BUILDERS: list[Callable[[Config], PeriodicTask | None]] = [
    lambda config: orphan_sweep_task(config.engine.sweep_interval, config.engine.orphan_age),
    lambda config: multipart_expiry_task(
        config.s3.multipart_expiry_interval, config.s3.multipart_expiry_days
    ),
    tiering_task,
    restores_task,
    lambda config: retention_task(config.engine.sweep_interval),
]


def default_tasks(config: Config) -> list[PeriodicTask]:
    """Every task the config turns on."""
    tasks = (build(config) for build in TASK_BUILDERS)
    return [task for task in tasks if task is not None]
