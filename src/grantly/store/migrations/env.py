"""Alembic environment: runs migrations on a SQLAlchemy engine of their own (Grantly itself
runs on the drivers, ``store.database``): the standard library's sqlite3 on SQLite, asyncpg
through SQLAlchemy's asyncio extension on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from grantly.store.tables import metadata

config = context.config


# Any constant: every Grantly process that migrates takes the same PostgreSQL advisory lock, so
# hosts that start together (each `grantly serve` migrates) upgrade one after the other; the
# later ones then find nothing to do.
MIGRATION_LOCK_ID = 0x6772616E746C79  # "grantly"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _sqlite(url: Any) -> None:
    engine = create_engine(url.set(drivername="sqlite"), connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # SQLAlchemy's documented recipe: let it, not the driver, emit BEGIN.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        # The write lock at BEGIN: concurrent migrators queue (SQLite's busy timeout, 30 s).
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


async def _postgresql(url: Any) -> None:
    engine = create_async_engine(url.set(drivername="postgresql+asyncpg"))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Grantly runs migrations online only: use `grantly db upgrade`.")
_url = make_url(config.get_main_option("sqlalchemy.url") or "")
if _url.get_backend_name() == "sqlite":
    _sqlite(_url)
else:
    asyncio.run(_postgresql(_url))
