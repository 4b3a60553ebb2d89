"""Group commit on a real SQLite file: writers that arrive together share one transaction,
and each still returns or raises exactly as if it had run alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from catalog.db import make_engine
from catalog.group_commit import GroupCommitter
from gateway.errors import AlreadyExists

metadata = sa.MetaData()
rows = sa.Table(
    "rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path}/catalog.db")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def commits(engine: Engine) -> list[int]:
    """One entry per COMMIT the engine runs."""
    seen: list[int] = []
    event.listen(engine, "commit", lambda _conn: seen.append(1))
    return seen


def insert(row_id: int, name: str = "x") -> Callable[[Connection], int]:
    def tx(conn: Connection) -> int:
        conn.execute(rows.insert().values(id=row_id, name=name))
        return row_id

    return tx


def stored(engine: Engine) -> set[int]:
    with engine.connect() as conn:
        return {int(r) for r in conn.execute(sa.select(rows.c.id)).scalars()}


class Blocked:
    """Holds the committer's lead inside a transaction until released, so that the writers
    started meanwhile queue up and run as one batch."""

    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer
        self.entered = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.committer.run, args=(self.tx,))
        self.thread.start()
        assert self.entered.wait(10)

    def tx(self, conn: Connection) -> None:
        conn.execute(rows.insert().values(id=0, name="first"))
        self.entered.set()
        assert self.release.wait(10)

    def queue(self, fns: list[Callable[[Connection], Any]]) -> list[Any]:
        """Start one thread per function, wait until all are queued, release the lead and
        return each one's result or exception."""
        outcomes: list[Any] = [None] * len(fns)

        def call(i: int, fn: Callable[[Connection], Any]) -> None:
            try:
                outcomes[i] = self.committer.run(fn, what=f"row {i}")
            except Exception as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=call, args=(i, fn)) for i, fn in enumerate(fns)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(self.committer._queue) < len(fns):
            assert time.monotonic() < deadline, "the writers never queued"
            time.sleep(0.005)
        self.release.set()
        for thread in [self.thread, *threads]:
            thread.join(10)
            assert not thread.is_alive()
        return outcomes


def test_concurrent_writers_share_commits_and_all_land(engine: Engine, commits: list[int]) -> None:
    committer = GroupCommitter(engine, url="test")
    errors: list[BaseException] = []

    def writer(base: int) -> None:
        try:
            for i in range(40):
                assert committer.run(insert(base + i)) == base + i
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n * 1000,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    committer.close()
    assert not errors
    assert stored(engine) == {n * 1000 + i for n in range(12) for i in range(40)}
    assert len(commits) < 12 * 40, "no transaction was shared"


def test_a_failing_member_is_rolled_back_alone(engine: Engine, commits: list[int]) -> None:
    committer = GroupCommitter(engine, url="test")
    blocked = Blocked(committer)

    def fails(conn: Connection) -> None:
        conn.execute(rows.insert().values(id=2, name="half-done"))
        raise ValueError("precondition failed")

    before = len(commits)
    outcomes = blocked.queue([insert(1), fails, insert(3)])
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ValueError)
    assert stored(engine) == {0, 1, 3}
    assert len(commits) - before == 2  # the blocker's, then one for all three
    committer.close()


def test_a_failing_writer_alone_leaves_nothing(engine: Engine) -> None:
    committer = GroupCommitter(engine, url="test")

    def fails(conn: Connection) -> None:
        conn.execute(rows.insert().values(id=1, name="half-done"))
        raise ValueError("precondition failed")

    with pytest.raises(ValueError, match="precondition failed"):
        committer.run(fails)
    assert committer.run(insert(2)) == 2
    assert stored(engine) == {2}
    committer.close()


def test_a_database_error_reruns_every_member_alone(engine: Engine, commits: list[int]) -> None:
    committer = GroupCommitter(engine, url="test")
    committer.run(insert(7))
    blocked = Blocked(committer)
    before = len(commits)
    outcomes = blocked.queue([insert(5), insert(7, "duplicate"), insert(6)])
    assert outcomes[0] == 5 and outcomes[2] == 6
    assert isinstance(outcomes[1], AlreadyExists)
    assert "row 1" in str(outcomes[1])
    assert stored(engine) == {0, 5, 6, 7}
    # The blocker's commit, the batch rolled back, then 5 and 6 alone (7 failed alone).
    assert len(commits) - before == 3
    # The committer still works afterwards (its kept connection was replaced).
    assert committer.run(insert(8)) == 8
    committer.close()


def test_a_write_inside_a_write_fails_instead_of_waiting_for_itself(engine: Engine) -> None:
    committer = GroupCommitter(engine, url="test")

    def nested(conn: Connection) -> None:
        committer.run(insert(1))

    with pytest.raises(RuntimeError, match="inside another write transaction"):
        committer.run(nested)
    assert committer.run(insert(2)) == 2
    assert stored(engine) == {2}
    committer.close()


def test_a_large_queue_is_split_into_bounded_batches(engine: Engine, commits: list[int]) -> None:
    committer = GroupCommitter(engine, url="test", max_batch=4)
    blocked = Blocked(committer)
    before = len(commits)
    outcomes = blocked.queue([insert(i) for i in range(1, 11)])
    assert outcomes == list(range(1, 11))
    assert stored(engine) == set(range(11))
    assert len(commits) - before == 1 + 3  # the blocker, then 4 + 4 + 2
    committer.close()
