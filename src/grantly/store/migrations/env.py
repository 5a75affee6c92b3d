"""Alembic environment: runs migrations on Grantly's async engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from grantly.store.database import create_engine
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


async def _main() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        async with engine.connect() as connection:
            # On SQLite, take the write lock at BEGIN: concurrent migrators queue.
            await connection.execution_options(write=True)
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Grantly runs migrations online only: use `grantly db upgrade`.")
asyncio.run(_main())
