"""Alembic's history builds exactly the schema the code declares, and upgrading is idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine as create_engine

from grantly.store import migrate
from grantly.store.tables import metadata


def _differences(url: str) -> list[object]:
    async def main() -> list[object]:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
                )
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_the_migrations_create_exactly_the_declared_tables(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    assert _differences(empty_database) == []


def test_upgrading_twice_changes_nothing(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    migrate.upgrade(empty_database)
    assert _differences(empty_database) == []


def test_a_sqlite_file_in_a_missing_folder_is_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'er' / 'm.db'}"
    migrate.upgrade(url)
    assert (tmp_path / "deep" / "er" / "m.db").exists()


def test_several_hosts_upgrading_at_once_all_succeed(empty_database: str, tmp_path: Path) -> None:
    # Every `grantly serve` migrates at start: hosts started together must not trip each other.
    import os
    import subprocess
    import sys

    plain_url = empty_database.replace("+aiosqlite", "").replace("+asyncpg", "")
    env = dict(os.environ, GRANTLY_DATABASE_URL=plain_url, GRANTLY_DATA_DIR=str(tmp_path))
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "grantly.cli", "db", "upgrade", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    results = [process.communicate(timeout=120) for process in processes]
    # A failed process's last lines of stderr (its error), not the start of the migration log.
    failures = [err.decode()[-800:] for process, (_, err) in zip(processes, results, strict=True)]
    assert [process.returncode for process in processes] == [0, 0, 0, 0], failures
    assert _differences(empty_database) == []
