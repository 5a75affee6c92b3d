"""Alembic's history builds exactly the schema the code declares, and upgrading is idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from grantly.store import migrate
from grantly.store.database import create_engine
from grantly.store.tables import metadata
from tests.conftest import ON_POSTGRESQL, _pg_admin, drop_world, make_settings


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


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend under test (SQLite file or PostgreSQL database)."""
    settings = make_settings(tmp_path)
    if ON_POSTGRESQL:
        _pg_admin(f'CREATE DATABASE "{make_url(settings.database_url).database}"')
    try:
        yield settings.async_database_url
    finally:
        drop_world(settings)


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
