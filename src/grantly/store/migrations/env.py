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
        # SQLite's DDL is transactional, though Alembic assumes not and would commit after
        # each revision: one transaction for the whole upgrade, so a failed check (below) or
        # revision leaves the database as it was.
        transactional_ddl=True,
        on_version_apply=_note_applied,
    )
    with context.begin_transaction():
        context.run_migrations()
        if connection.dialect.name == "sqlite":
            _check_references(connection)


def _note_applied(*, step: Any, **_: Any) -> None:
    """What ran, for ``migrate.upgrade`` to say (Config.attributes is the caller's dict)."""
    if step.is_upgrade:
        config.attributes.setdefault("applied", []).append(step.up_revision_id)


def _check_references(connection: Connection) -> None:
    """Foreign keys are off while SQLite migrates (``_sqlite``): check every reference now,
    before COMMIT, so a migration that broke one changes nothing."""
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration leaves rows pointing at nothing: {broken[:10]}")


def _sqlite(url: Any) -> None:
    engine = create_engine(url.set(drivername="sqlite"), connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Off, and only settable outside a transaction: rebuilding a table on SQLite drops the
        # old one, and with foreign keys on that runs every ON DELETE CASCADE and SET NULL that
        # points at it. The references are checked before COMMIT instead (_check_references).
        cursor.execute("PRAGMA foreign_keys=OFF")
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
