"""Fixtures of the store's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ON_POSTGRESQL, _pg_admin, drop_world, make_settings


@pytest.fixture
def empty_database(tmp_path: Path) -> Iterator[str]:
    """An empty database of the backend under test (SQLite file or PostgreSQL database), by
    its async URL."""
    settings = make_settings(tmp_path)
    if ON_POSTGRESQL:
        _pg_admin(f'CREATE DATABASE "{make_url(settings.database_url).database}"')
    try:
        yield settings.async_database_url
    finally:
        drop_world(settings)
