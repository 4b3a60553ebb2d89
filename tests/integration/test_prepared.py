"""``catalog.prepared.Prepared`` runs Core statements on the driver's cursor: on SQLite and
on MariaDB it must bind and read values exactly as ``Connection.execute`` does (keys as
bytes, JSON, timestamps, a parameter used twice), take part in the caller's transaction,
and raise SQLAlchemy's own exceptions, so the catalog's retries and translations still
apply."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from catalog.db import make_engine
from catalog.prepared import Prepared
from catalog.schema import KeyBytes
from tests.integration.catalog_support import ENGINES, fresh_catalog_url

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", KeyBytes(), nullable=False, unique=True),
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("meta", sa.JSON, nullable=True),
    sa.Column("at", sa.DateTime, nullable=True),
    mysql_engine="InnoDB",
)

INSERT = Prepared(things.insert())
BY_KEY = Prepared(
    sa.select(things.c.id, things.c.key, things.c.size, things.c.meta, things.c.at).where(
        things.c.key == sa.bindparam("key", type_=KeyBytes())
    )
)
GROW = Prepared(
    things.update()
    .where(things.c.id == sa.bindparam("thing_id"))
    .where(things.c.size + sa.bindparam("delta", type_=sa.BigInteger) <= 100)
    .values(size=things.c.size + sa.bindparam("delta", type_=sa.BigInteger))
)
IN_LIST = Prepared(
    sa.select(things.c.id).where(things.c.id.in_(sa.bindparam("ids", expanding=True)))
)


@pytest.fixture(scope="module", params=ENGINES)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    url = fresh_catalog_url(request.param, request, tmp_path_factory.mktemp("prepared"))
    engine = make_engine(url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_values_round_trip_as_through_sqlalchemy(engine: Engine) -> None:
    key = "dir/ÿ 😀 %+\x01 "
    at = datetime(2026, 11, 26, 12, 34, 56)
    with engine.begin() as conn:
        done = INSERT.run(conn, {"key": key, "size": 7, "meta": {"a": "b"}, "at": at})
        assert done.rowcount == 1
        assert done.lastrowid is not None
        row = BY_KEY.run(conn, {"key": key}).first()
        reference = conn.execute(BY_KEY.statement, {"key": key}).one()
    assert row.id == done.lastrowid
    assert tuple(row) == tuple(reference)
    assert (row.key, row.size, row.meta, row.at) == (key, 7, {"a": "b"}, at)
    assert BY_KEY.run(engine.connect(), {"key": "missing"}).first() is None


def test_a_parameter_used_twice_and_server_defaults(engine: Engine) -> None:
    with engine.begin() as conn:
        thing_id = INSERT.run(conn, {"key": "grow"}).lastrowid
        assert GROW.run(conn, {"thing_id": thing_id, "delta": 60}).rowcount == 1
        assert GROW.run(conn, {"thing_id": thing_id, "delta": 60}).rowcount == 0
        assert BY_KEY.run(conn, {"key": "grow"}).first().size == 60


def test_runs_inside_the_callers_transaction(engine: Engine) -> None:
    with engine.connect() as conn:
        with conn.begin() as tx:
            INSERT.run_many(conn, [{"key": "rolled-1"}, {"key": "rolled-2"}])
            assert (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(things)
                    .where(things.c.key.in_(["rolled-1", "rolled-2"]))
                ).scalar()
                == 2
            )
            tx.rollback()
        assert BY_KEY.run(conn, {"key": "rolled-1"}).first() is None


def test_driver_errors_become_sqlalchemy_errors_without_parameters(engine: Engine) -> None:
    with engine.begin() as conn:
        INSERT.run(conn, {"key": "unique", "meta": {"secret": "s3cr3t"}})
    with pytest.raises(sa.exc.IntegrityError) as caught, engine.begin() as conn:
        INSERT.run(conn, {"key": "unique", "meta": {"secret": "s3cr3t"}})
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        INSERT.run_many(conn, [{"key": "unique-2"}, {"key": "unique-2"}])


def test_refuses_what_it_cannot_run_faithfully(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(ValueError, match="expanding"):
        IN_LIST.run(conn, {"ids": [1, 2]})
    with engine.connect() as conn, pytest.raises(ValueError, match="needs a value for key"):
        BY_KEY.run(conn, {})
