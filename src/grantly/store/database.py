"""The engine and units of work."""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..oauth.errors import OAuthError
from . import inline_sqlite

# How long a writer waits for another process's SQLite write lock before giving up (503).
WRITE_LOCK_TIMEOUT = 30.0


def create_engine(async_url: str) -> AsyncEngine:
    """An engine for Grantly's database, tuned per backend.

    SQLite: WAL (readers never wait for the writer), foreign keys on (cascades), and
    ``synchronous=NORMAL`` (in WAL mode a committed transaction survives a process crash; a power
    loss may lose the last ones). The driver is ``inline_sqlite`` (aiosqlite's interface without
    its thread per connection); a writer waiting for another process's lock yields to the event
    loop (``begin_immediate``) instead of sleeping in SQLite's busy handler.
    """
    kwargs: dict[str, Any] = {}
    sqlite = async_url.startswith("sqlite")
    if sqlite:
        kwargs["module"] = AsyncAdapt_aiosqlite_dbapi(inline_sqlite, sqlite3)
    # Pools hold a connection per concurrent request of a worker: a request over the pool's size
    # opened and closed a connection of its own (issue 6's profile). PostgreSQL counts them
    # against max_connections (two pools per worker, see below).
    if sqlite:
        kwargs.update(pool_size=32, max_overflow=32)
    else:
        kwargs.update(pool_size=10, max_overflow=20)
    # PostgreSQL: no pre-ping (a round trip per request). After the database restarts, the
    # first request of a process meets a dead connection, gets 503, and SQLAlchemy discards
    # the whole pool, so the next request reconnects (tests/test_database_faults.py).
    engine = create_async_engine(async_url, **kwargs)
    # Reads run on a pool of their own, in autocommit mode from the moment each connection is
    # opened: no BEGIN and ROLLBACK, and no isolation level set and reset per checkout (which,
    # through SQLAlchemy's asyncio layer, cost more than the reads themselves). It is disposed
    # with the engine.
    reader = create_async_engine(async_url, isolation_level="AUTOCOMMIT", **kwargs)
    _readers[engine.sync_engine] = reader

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _dispose_reader(_engine: Any) -> None:
        reader.sync_engine.dispose()

    # Writers' connections carry the ``write`` option from the start (an engine of options over
    # the same pool), rather than setting it on each connection.
    _writers[engine.sync_engine] = engine.execution_options(write=True)
    if sqlite:

        @event.listens_for(engine.sync_engine, "connect")
        @event.listens_for(reader.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # SQLAlchemy's documented recipe: let it, not the driver, emit BEGIN.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A transaction that will write takes the write lock at BEGIN (IMMEDIATE): one that
            # read first and wrote later could otherwise fail with SQLITE_BUSY when another
            # writer committed in between. Readers stay deferred and never wait.
            options = conn.get_execution_options()
            if options.get("write", False):
                driver = conn.connection.driver_connection
                try:
                    inline_sqlite.begin_immediate(driver._conn, WRITE_LOCK_TIMEOUT)
                except sqlite3.Error as error:
                    # Raised past SQLAlchemy's own wrapping: wrap it as SQLAlchemy would, so a
                    # lock never obtained is the 503 of an unavailable database, not a 500.
                    raise OperationalError("BEGIN IMMEDIATE", None, error) from error
            elif options.get("isolation_level") != "AUTOCOMMIT":
                conn.exec_driver_sql("BEGIN")

    return engine


# Each engine's read pool and writing view (``create_engine``).
_readers: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()
_writers: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()

# One SQLite writer at a time per process, queued in the event loop. SQLite allows one writer
# per database anyway; without this queue, concurrent writers of one process wait inside
# SQLite's busy handler, which sleeps and polls (1, 2, 5, ... 100 ms), so that under load most
# of a write's latency was sleeping. Writers of other processes still meet the busy handler.
_sqlite_writers: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


def _writer_queue(engine: AsyncEngine) -> asyncio.Lock | None:
    if engine.dialect.name != "sqlite":
        return None
    lock = _sqlite_writers.get(engine.sync_engine)
    if lock is None:
        lock = _sqlite_writers[engine.sync_engine] = asyncio.Lock()
    return lock


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine whose pool serves ``engine``'s reads (itself, for one not made here)."""
    return _readers.get(engine.sync_engine, engine)


@asynccontextmanager
async def unit_of_work(
    engine: AsyncEngine, *, write: bool = True
) -> AsyncIterator[AsyncConnection]:
    """One transaction. An ``OAuthError`` is a decision, not a failure: what the request did
    before deciding (burning a replayed code, revoking a token family) is committed.

    ``write=False`` reads in autocommit mode, on the engine's read pool: no BEGIN and no
    ROLLBACK, two round trips fewer on PostgreSQL; each statement then sees the latest committed
    state (read committed, which is also what a transaction gives on PostgreSQL)."""
    if not write:
        async with read_engine(engine).connect() as connection:
            yield connection
        return
    async with AsyncExitStack() as stack:
        if (queue := _writer_queue(engine)) is not None:
            await stack.enter_async_context(queue)
        writer = _writers.get(engine.sync_engine)
        connection = await stack.enter_async_context(
            writer.connect() if writer is not None else engine.connect()
        )
        if writer is None:
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
