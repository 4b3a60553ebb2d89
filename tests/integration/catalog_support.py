"""What the catalog suites share: the two engines they run on, a fresh database for each,
and names that do not collide within a module's shared catalog."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

#: SQLite, and MariaDB (marked, so ``-m "not mariadb"`` can leave it out).
ENGINES = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def fresh_catalog_url(engine: str, request: pytest.FixtureRequest, directory: Path) -> str:
    """The URL of a new, empty database: a new SQLite file in ``directory``, or a new
    database on the session's MariaDB server (started on first use)."""
    if engine == "sqlite":
        return f"sqlite:///{directory}/catalog-{uuid.uuid4().hex[:8]}.db"
    url: str = request.getfixturevalue("mariadb_server").create_database()
    return url


def unique_name(stem: str) -> str:
    """``stem`` with a random suffix: tests sharing one catalog never meet each other's rows."""
    return f"{stem}-{uuid.uuid4().hex[:10]}"
