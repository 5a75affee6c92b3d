"""Schema migrations with Alembic, driven from code (``grantly db upgrade``, ``grantly serve``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(async_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", async_url.replace("%", "%%"))
    return config


def upgrade(async_url: str) -> list[str]:
    """Bring the database to the newest schema; the revisions applied, oldest first. Running
    it again changes nothing (and returns none)."""
    _ensure_sqlite_directory(async_url)
    config = alembic_config(async_url)
    command.upgrade(config, "head")
    return list(config.attributes.get("applied", []))


def head() -> str:
    """The newest revision: the schema this code declares."""
    from alembic.script import ScriptDirectory

    newest = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert newest is not None
    return newest


def _ensure_sqlite_directory(async_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(async_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
