"""Alembic's history builds exactly the schema the code declares, and upgrading is idempotent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from grantly.store import migrate
from grantly.store.database import create_engine
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


def test_the_migrations_create_exactly_the_declared_tables(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    assert _differences(url) == []


def test_upgrading_twice_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert _differences(url) == []


def test_a_sqlite_file_in_a_missing_folder_is_created(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'deep' / 'er' / 'm.db'}"
    migrate.upgrade(url)
    assert (tmp_path / "deep" / "er" / "m.db").exists()
