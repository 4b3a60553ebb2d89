"""Group commit: concurrent SQLite write transactions of this process share one commit.

SQLite has one writer at a time, and with ``synchronous=FULL`` each commit waits for an
fsync of the WAL. Under concurrent small PUTs the writer lock, not the CPU, bounded the
rate: every transaction held it for its ``BEGIN``, its statements, its ``COMMIT`` and
fsync, all stretched by the GIL the other request threads wanted too (the lock was busy
90% of the time, each hold three times as long as the same transaction alone).

Writers that arrive while a transaction runs now queue up. The next leader (the first of
them to wake) runs the whole queue in one transaction, each function inside its own
savepoint, and commits once; every member then returns or raises as if it had run alone:

- A member whose function raises (a failed precondition, a missing bucket) is rolled back
  to its savepoint alone and gets its exception; the others commit.
- A database error inside a member, or a failed ``BEGIN`` or ``COMMIT``, rolls the whole
  batch back; each member then runs again in a transaction of its own, exactly as without
  group commit (with :func:`catalog.db.run_transaction`'s retries and error translation),
  so one bad write cannot fail its neighbours. Transaction functions must already be safe
  to run again: run_transaction retries them.

A write made from inside a transaction function would wait for itself: it raises instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from catalog.db import WRITE_OPTION, RetryTransaction, run_transaction

T = TypeVar("T")

#: The most transactions one commit carries (bounds the wait of the last of them).
MAX_BATCH = 64


@dataclass(eq=False)
class _Member:
    fn: Callable[[Connection], Any]
    what: str
    retry_unique: bool
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    #: Held until the member is done or has become the leader: its thread waits on it.
    wake: threading.Lock = field(default_factory=threading.Lock)


class GroupCommitter:
    """Runs write transactions on ``engine``, batching those that arrive together."""

    def __init__(self, engine: Engine, *, url: str, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._url = url
        self._max_batch = max_batch
        self._mutex = threading.Lock()
        self._queue: list[_Member] = []
        self._leading = False
        self._idle = threading.Condition(self._mutex)
        self._inside = threading.local()
        self._conn: Connection | None = None

    def run(
        self, fn: Callable[[Connection], T], *, what: str = "", retry_unique: bool = False
    ) -> T:
        """Run ``fn(conn)`` in a write transaction (maybe shared) and return its result."""
        if getattr(self._inside, "active", False):
            raise RuntimeError("a catalog write was started inside another write transaction")
        member = _Member(fn, what, retry_unique)
        member.wake.acquire()
        with self._mutex:
            self._queue.append(member)
            follower = self._leading
            self._leading = True
        if follower:
            # Woken once a leader has run this member, or has handed leadership over.
            member.wake.acquire()
        while not member.done:
            self._lead(member)
        if member.error is not None:
            raise member.error
        result: T = member.result
        return result

    def _lead(self, mine: _Member) -> None:
        """Run one batch from the queue and wake its members; then pass the lead on to the
        first still queued (once ``mine`` is done) or give it up. Each thread is woken only
        when it has something to do: a shared condition woke every waiter per batch."""
        with self._mutex:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            self._run_batch(batch)
        finally:
            for member in batch:
                if member is not mine:
                    member.wake.release()
            with self._mutex:
                successor = None
                if not self._queue:
                    self._leading = False
                    self._idle.notify_all()
                elif mine.done:
                    successor = self._queue[0]
            if successor is not None:
                successor.wake.release()

    # -- the leader's side ---------------------------------------------------------------

    def _run_batch(self, batch: list[_Member]) -> None:
        """Run ``batch``; afterwards every member is done, with a result or an error."""
        try:
            try:
                self._run_together(batch)
            except (sa.exc.DBAPIError, RetryTransaction, self._engine.dialect.loaded_dbapi.Error):
                self._drop_connection()
                for member in batch:
                    member.result = member.error = None
                    self._run_alone(member)
                return
            for member in batch:
                member.done = True
        except BaseException as exc:  # every waiter must be released
            self._drop_connection()
            for member in batch:
                if not member.done:
                    member.error = exc
                    member.done = True

    def _run_alone(self, member: _Member) -> None:
        self._inside.active = True
        try:
            member.result = run_transaction(
                self._engine,
                member.fn,
                write=True,
                url=self._url,
                what=member.what,
                retry_unique=member.retry_unique,
            )
        except Exception as exc:
            member.error = exc
        finally:
            self._inside.active = False
            member.done = True

    def _run_together(self, batch: list[_Member]) -> None:
        conn = self._connection()
        with conn.begin() as transaction:
            if len(batch) == 1:
                if not self._run_member(batch[0], conn):
                    transaction.rollback()
                return
            driver = conn.connection.driver_connection
            assert driver is not None
            for member in batch:
                driver.execute("SAVEPOINT member")
                if not self._run_member(member, conn):
                    driver.execute("ROLLBACK TO member")
                driver.execute("RELEASE member")

    def _run_member(self, member: _Member, conn: Connection) -> bool:
        """Run one function; False if it raised an error of its own (kept for its caller).
        Database errors propagate: they end the batch."""
        self._inside.active = True
        try:
            member.result = member.fn(conn)
        except (sa.exc.DBAPIError, RetryTransaction):
            raise
        except Exception as exc:
            member.error = exc
            return False
        finally:
            self._inside.active = False
        return True

    # Only the leader uses the connection, so one is kept rather than taken from the pool
    # for every batch (checkout, reset and events cost as much as a statement or two).
    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
            self._conn.execution_options(**{WRITE_OPTION: True})
        return self._conn

    def _drop_connection(self, *, broken: bool = True) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                if broken:
                    conn.invalidate()
                conn.close()

    def close(self) -> None:
        """Release the kept connection (the engine is disposed of by its owner)."""
        with self._mutex:
            while self._leading:
                self._idle.wait()
            self._drop_connection(broken=False)
