"""Alembic environment for the catalog.

:meth:`catalog.api.Catalog.upgrade` runs the migrations programmatically and hands its own
connection over in ``config.attributes["connection"]``, so no ``alembic.ini`` is needed at
run time. For developers, ``alembic -c catalog/alembic.ini revision -m ...`` works too; the
URL then comes from ``COOLSTORAGE_CATALOG_URL`` or the ini file's ``sqlalchemy.url``.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from catalog.schema import metadata

config = context.config


def _url() -> str:
    return os.environ.get("COOLSTORAGE_CATALOG_URL") or config.get_main_option(
        "sqlalchemy.url", "sqlite:///var/catalog.db"
    ) or "sqlite:///var/catalog.db"


def run_offline() -> None:
    """Emit the SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(_url())
    try:
        with engine.connect() as conn:
            context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
