"""Engines, transactions and error translation for the catalog.

Two engines are supported:

- SQLite (stdlib driver): one file, WAL journal, a busy timeout, foreign keys on. The driver's
  own transaction handling is switched off and every transaction starts with an explicit
  ``BEGIN``; write transactions use ``BEGIN IMMEDIATE`` so they take the write lock up front
  instead of failing with ``SQLITE_BUSY`` when a read upgrades to a write (a busy timeout
  cannot help in that case). ``synchronous=FULL``: a commit returns only once the WAL is
  on disk. Small objects' sealed bytes are staged in the catalog, so with ``NORMAL`` a
  power cut could lose a PUT the client was told had succeeded; the fsync costs no
  measurable small-PUT throughput, since it releases the GIL while other requests work.
- MySQL/MariaDB through PyMySQL: ``READ COMMITTED`` (fewer gap locks; every write locks the
  rows it depends on with ``SELECT ... FOR UPDATE``), ``utf8mb4``, and ``binary_prefix`` so
  bytes parameters (keys, seek bounds such as ``b"...\\xff"``) reach the server as binary
  strings rather than text in the connection's character set.

Deadlocks and lock wait timeouts are retried by :func:`run_transaction` with a short
jittered back-off; other database errors become :mod:`gateway.errors` here, once. Messages
never contain a password: URLs are rendered with :func:`display_url`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from gateway.errors import AlreadyExists, CatalogError, ConfigError, CoolStorageError, NotFound

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Execution option marking a connection whose next transaction writes.
WRITE_OPTION = "coolstorage_write"

#: MySQL error numbers: deadlock, lock wait timeout.
_MYSQL_RETRY = {1213, 1205}
#: MySQL error numbers that mean "cannot reach / cannot log in / no such database".
_MYSQL_CONNECT = {1044, 1045, 1049, 2002, 2003, 2005, 2006, 2013, 2055}
_MYSQL_DUPLICATE = {1062, 1586}
_MYSQL_NO_TABLE = {1146}


class RetryTransaction(Exception):
    """Raised inside a transaction to roll it back and run it again from the start."""


def display_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parsed = sa.engine.make_url(url) if isinstance(url, str) else url
    except Exception:
        return "<unparsable catalog URL>"
    return parsed.render_as_string(hide_password=True)


def is_sqlite(engine_or_url: Engine | URL) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else engine_or_url
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create (without connecting) the engine for ``url``; SQLite's directory is created."""
    try:
        parsed = sa.engine.make_url(url)
    except Exception as exc:
        raise ConfigError(f"invalid catalog URL {display_url(url)}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed, pool_size=pool_size, echo=echo)
    if backend in ("mysql", "mariadb"):
        return _mysql_engine(parsed, pool_size=pool_size, echo=echo)
    raise ConfigError(
        f"unsupported catalog URL {display_url(parsed)}: use sqlite:///PATH or "
        "mysql+pymysql://USER:PASSWORD@HOST/DATABASE"
    )


def _sqlite_engine(url: URL, *, pool_size: int, echo: bool) -> Engine:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConfigError(
            "the catalog needs a SQLite file (sqlite:///PATH): an in-memory database is not "
            "shared between the gateway's threads"
        )
    try:
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CatalogError(
            f"cannot reach the catalog database at {display_url(url)}: {exc.strerror or exc}"
        ) from None
    engine = sa.create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_timeout=60,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: transactions are begun explicitly below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _mysql_engine(url: URL, *, pool_size: int, echo: bool) -> Engine:
    connect_args: dict[str, Any] = {"binary_prefix": True, "connect_timeout": 10}
    if "charset" not in url.query:
        connect_args["charset"] = "utf8mb4"
    return sa.create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_timeout=60,
        pool_pre_ping=True,
        pool_recycle=3600,
        isolation_level="READ COMMITTED",
        connect_args=connect_args,
    )


def _mysql_code(exc: sa.exc.DBAPIError) -> int | None:
    args: tuple[Any, ...] = tuple(getattr(exc.orig, "args", ()))
    if args and isinstance(args[0], int):
        return args[0]
    return None


def _reason(exc: sa.exc.DBAPIError) -> str:
    orig = exc.orig
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):
        return str(args[1])
    return str(orig) if orig is not None else str(exc)


def is_retryable(exc: sa.exc.DBAPIError) -> bool:
    """Deadlocks, lock wait timeouts and a locked SQLite file are worth another try."""
    if _mysql_code(exc) in _MYSQL_RETRY:
        return True
    return isinstance(exc, sa.exc.OperationalError) and "database is locked" in _reason(exc)


def is_unique_violation(exc: sa.exc.DBAPIError) -> bool:
    if not isinstance(exc, sa.exc.IntegrityError):
        return False
    return _mysql_code(exc) in _MYSQL_DUPLICATE or "UNIQUE constraint failed" in _reason(exc)


def translate(exc: sa.exc.DBAPIError, url: str, what: str = "") -> CoolStorageError:
    """The domain error for a database exception (``url`` already redacted)."""
    reason = _reason(exc)
    code = _mysql_code(exc)
    if isinstance(exc, sa.exc.IntegrityError):
        if is_unique_violation(exc):
            return AlreadyExists(what or "a row with that unique value")
        return NotFound(f"{what or 'a referenced row'} (the row it refers to does not exist)")
    if code in _MYSQL_NO_TABLE or "no such table" in reason:
        return CatalogError(
            f"the catalog database at {url} has no schema or an old one: "
            "run `coolstorage db upgrade`"
        )
    connect_failure = (
        exc.connection_invalidated
        or code in _MYSQL_CONNECT
        or "unable to open database file" in reason
        or isinstance(exc, sa.exc.InterfaceError)
    )
    if connect_failure:
        return CatalogError(f"cannot reach the catalog database at {url}: {reason}")
    return CatalogError(f"catalog database error at {url}: {reason}")


def run_transaction(
    engine: Engine,
    fn: Callable[[Connection], T],
    *,
    write: bool,
    url: str,
    what: str = "",
    attempts: int = 10,
    retry_unique: bool = False,
) -> T:
    """Run ``fn(conn)`` in one transaction, committing if it returns.

    Retries the whole function on deadlocks, lock timeouts, :class:`RetryTransaction`, and
    (with ``retry_unique``) unique violations, which a concurrent insert of the same key
    causes under ``READ COMMITTED``; the retry then sees the other writer's row.
    """
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                with conn.begin():
                    return fn(conn)
        except RetryTransaction:
            if attempt == attempts:
                raise CatalogError(
                    f"catalog transaction kept conflicting at {url}; try again"
                ) from None
        except sa.exc.DBAPIError as exc:
            again = is_retryable(exc) or (retry_unique and isinstance(exc, sa.exc.IntegrityError))
            if not again or attempt == attempts:
                raise translate(exc, url, what) from None
            log.debug("catalog transaction conflict (attempt %d): %s", attempt, _reason(exc))
        time.sleep(random.uniform(0.005, 0.02) * attempt)
    raise AssertionError("unreachable")
