"""Statements of the hot write path, compiled once and run straight on the DBAPI cursor.

A small PUT is one catalog transaction of about eight statements. Through
``Connection.execute`` each costs 40-80 us of Python (execution context, event dispatch,
result proxy) around a 5 us SQLite step, and on SQLite that Python runs while the
process's single writer lock is held: it bounded the small-PUT rate more than the database
did. A :class:`Prepared` statement is still an ordinary SQLAlchemy Core statement, compiled
by SQLAlchemy for the connection's dialect (paramstyle, quoting, ``FOR UPDATE``, upsert
syntax) the first time it meets that dialect and set of parameter names; after that a run
is the bind processors, one ``cursor.execute`` and the result processors.

It runs on the transaction's own DBAPI connection, so it sees and is part of whatever the
surrounding ``Connection`` did. Driver errors are wrapped into SQLAlchemy's exceptions, so
:func:`catalog.db.run_transaction` retries and translates them as it does any other.

Only what the write path needs is supported: scalar bound parameters (no ``IN`` lists
expanded at execution time), server-side column defaults (no Python-side ones), and rows
read by attribute or position.
"""

from __future__ import annotations

import threading
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    #: Bind names in placeholder order for a positional paramstyle, else None.
    positional: tuple[str, ...] | None
    #: name -> (bind processor or None, value used when the caller gives none)
    binds: Mapping[str, tuple[Processor, Any]]
    row_type: Any
    result_processors: tuple[Processor, ...]


class PreparedResult:
    """What a run returned: its rows (if any), ``rowcount`` and ``lastrowid``."""

    __slots__ = ("lastrowid", "rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int, lastrowid: int | None) -> None:
        self.rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def first(self) -> Any:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self.rows[0][0] if self.rows else None


class Prepared:
    """A Core statement run on the DBAPI cursor of the caller's transaction."""

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, frozenset[str]], _Plan] = {}
        self._lock = threading.Lock()

    def run(self, conn: Connection, params: Mapping[str, Any]) -> PreparedResult:
        """Execute with one set of parameters; rows are fetched whole (the hot path's
        statements return at most a few)."""
        plan = self._plan(conn.dialect, params)
        args = _arguments(plan, params)
        cursor = _cursor(conn)
        try:
            cursor.execute(plan.sql, args)
            rows = cursor.fetchall() if cursor.description else []
            result = PreparedResult(_rows(plan, rows), cursor.rowcount, cursor.lastrowid)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn.dialect, plan.sql, args, exc) from exc
        finally:
            cursor.close()
        return result

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Execute once per parameter set (an ``executemany``); the rows affected."""
        if not rows:
            return 0
        plan = self._plan(conn.dialect, rows[0])
        args = [_arguments(plan, row) for row in rows]
        cursor = _cursor(conn)
        try:
            cursor.executemany(plan.sql, args)
            count = int(cursor.rowcount)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn.dialect, plan.sql, args, exc) from exc
        finally:
            cursor.close()
        return count

    def _plan(self, dialect: Dialect, params: Mapping[str, Any]) -> _Plan:
        names = frozenset(params)
        key = (dialect.name, names)
        plan = self._plans.get(key)
        if plan is None:
            with self._lock:
                plan = self._plans.get(key) or self._compile(dialect, names)
                self._plans[key] = plan
        return plan

    def _compile(self, dialect: Dialect, names: frozenset[str]) -> _Plan:
        clause = cast(sa.ClauseElement, self.statement)
        compiled: Any = clause.compile(dialect=dialect, column_keys=sorted(names))
        binds: dict[str, tuple[Processor, Any]] = {}
        for name, bind in compiled.binds.items():
            if bind.expanding:
                raise ValueError(f"prepared statements take no expanding IN lists ({name})")
            if bind.callable is not None:
                raise ValueError(f"prepared statements take no Python-side defaults ({name})")
            if name not in names and bind.required:
                raise ValueError(f"prepared statement needs a value for {name}")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds[name] = (processor, bind.value)
        if compiled.escaped_bind_names:
            raise ValueError("prepared statements need plain bind names")
        columns = list(_result_columns(self.statement))
        row_type = namedtuple("PreparedRow", [c.key for c in columns], rename=True)  # type: ignore[misc]
        processors = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )
        positional = tuple(compiled.positiontup) if compiled.positional else None
        return _Plan(compiled.string, positional, binds, row_type, processors)


def _result_columns(statement: sa.Executable) -> Any:
    selected = getattr(statement, "selected_columns", None)
    if selected is not None:
        return selected
    return getattr(statement, "exported_columns", ())


def _arguments(plan: _Plan, params: Mapping[str, Any]) -> Any:
    values = {}
    for name, (processor, default) in plan.binds.items():
        value = params.get(name, default)
        values[name] = processor(value) if processor is not None else value
    if plan.positional is None:
        return values
    return tuple(values[name] for name in plan.positional)


def _rows(plan: _Plan, rows: list[Any]) -> list[Any]:
    if not rows:
        return rows
    processors = plan.result_processors
    make = plan.row_type._make
    if not any(processors):
        return [make(row) for row in rows]
    return [
        make(p(v) if p is not None else v for p, v in zip(processors, row, strict=True))
        for row in rows
    ]


def _cursor(conn: Connection) -> Any:
    driver = conn.connection.driver_connection
    assert driver is not None, "the connection has been closed"
    return driver.cursor()


def _wrapped(dialect: Dialect, sql: str, args: Any, exc: Exception) -> BaseException:
    return sa.exc.DBAPIError.instance(
        sql, args, exc, dialect.loaded_dbapi.Error, dialect=dialect, hide_parameters=True
    )
