"""The engine and units of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..oauth.errors import OAuthError


def create_engine(async_url: str) -> AsyncEngine:
    """An engine for Grantly's database, tuned per backend.

    SQLite: WAL (readers never wait for the writer), foreign keys on (cascades), a busy timeout
    so concurrent writers queue instead of failing, and ``synchronous=NORMAL`` (in WAL mode a
    committed transaction survives a process crash; a power loss may lose the last ones).
    """
    kwargs: dict[str, Any] = {}
    if async_url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(async_url, **kwargs)
    if async_url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # SQLAlchemy's documented recipe: let it, not the driver, emit BEGIN.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A transaction that will write takes the write lock at BEGIN (IMMEDIATE): one that
            # read first and wrote later could otherwise fail with SQLITE_BUSY when another
            # writer committed in between. Readers stay deferred and never wait.
            immediate = conn.get_execution_options().get("write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine, *, write: bool = True
) -> AsyncIterator[AsyncConnection]:
    """One transaction. An ``OAuthError`` is a decision, not a failure: what the request did
    before deciding (burning a replayed code, revoking a token family) is committed."""
    async with engine.connect() as connection:
        if write:
            await connection.execution_options(write=True)
        await connection.begin()
        try:
            yield connection
        except OAuthError:
            await connection.commit()
            raise
        except BaseException:
            await connection.rollback()
            raise
        else:
            await connection.commit()
