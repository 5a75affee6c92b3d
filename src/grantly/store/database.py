"""The engine and units of work."""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ..oauth.errors import OAuthError
from . import inline_sqlite
from .prepared import defer_on, flush_deferred

# How long a writer waits for another process's SQLite write lock before giving up (503).
WRITE_LOCK_TIMEOUT = 30.0


def create_engine(async_url: str, pool_size: int | None = None) -> AsyncEngine:
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
    # Pools keep a connection per concurrent request of a worker: a request beyond the pool's
    # size opened a connection of its own and closed it after (issue 6's profile; on PostgreSQL
    # a new server process each time). PostgreSQL counts connections against max_connections:
    # a worker holds at most 2 x (16 + 4) of them (two pools, see below), 80 for two workers.
    if sqlite:
        kwargs.update(pool_size=pool_size or 32, max_overflow=pool_size or 32)
    else:
        size = pool_size or 16
        kwargs.update(pool_size=size, max_overflow=max(size // 4, 1))
    # PostgreSQL: no pre-ping (a round trip per request). After the database restarts, the
    # first request of a process meets a dead connection, gets 503, and SQLAlchemy discards
    # the whole pool, so the next request reconnects (tests/test_database_faults.py).
    engine = create_async_engine(async_url, **kwargs)
    # Reads run on a pool of their own, in autocommit mode from the moment each connection is
    # opened: no BEGIN and ROLLBACK, and no isolation level set and reset per checkout (which,
    # through SQLAlchemy's asyncio layer, cost more than the reads themselves). A connection in
    # autocommit has no transaction to roll back when it returns to the pool. It is disposed
    # with the engine.
    reader = create_async_engine(
        async_url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **kwargs
    )
    _readers[engine.sync_engine] = reader
    idle = _idle[engine.sync_engine] = _Idle(kwargs["pool_size"] + kwargs["max_overflow"])

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _dispose_reader(_engine: Any) -> None:
        # ``dispose`` closes the waiting read connections first; after a bare
        # ``engine.dispose()`` they are dropped at once (the driver's terminate).
        while idle:
            idle.pop().sync_connection.invalidate()  # type: ignore[union-attr]
        reader.sync_engine.dispose()

    # Writers' connections carry the ``write`` option from the start (an engine of options over
    # the same pool), rather than setting it on each connection.
    _writers[engine.sync_engine] = engine.execution_options(write=True)
    if not sqlite:
        defer_on(engine)  # a request's last inserts in one round trip (``Prepared.defer``)
    else:
        _groups[engine.sync_engine] = _Group()

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
            else:
                conn.exec_driver_sql("BEGIN")

    return engine


class _Idle(list[AsyncConnection]):
    """Read connections waiting for the next read unit; ``capacity``: the read pool's."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity


# Each engine's read pool, its connections waiting for the next read unit, and writing view
# (``create_engine``).
_readers: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()
_idle: weakref.WeakKeyDictionary[Any, _Idle] = weakref.WeakKeyDictionary()
_writers: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()

# The most units of work one SQLite commit covers (bounds the wait of the first of them), and
# how many turns of the event loop the last one waits for another to join.
MAX_GROUP = 32
GATHER_TURNS = 3
# After a commit, the next group of a busy process waits this long before taking the write lock
# again: another process waiting for it retries every millisecond at most (``begin_immediate``),
# and without a pause a busy process took the lock back at once, so that the other waited for
# as long as the first stayed busy (`make bench`: p99 160 ms against a p50 of 15 ms).
HAND_OFF = 0.001


class _Group:
    """SQLite's writers of one process, queued in the event loop, and committed together.

    SQLite allows one writer per database. Without a queue, concurrent writers of one process
    waited inside SQLite's busy handler, which sleeps and polls (1, 2, 5, ... 100 ms). With it,
    each unit of work still paid a transaction of its own, and its commit cost more than all of
    its statements (issue 6's profile). So the writers that queue while one runs join its
    transaction, each inside a SAVEPOINT of its own (a unit that fails is rolled back alone),
    and the last of them (no one queued behind it, or ``MAX_GROUP`` reached) commits for all.
    Every unit returns only once the commit that covers it is done, so a response never
    reports a write that is not committed; if that commit fails, every unit it covered fails.
    Writers of other processes still wait for the write lock (``begin_immediate``)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.queued = 0  # units waiting for the lock or running
        self.connection: AsyncConnection | None = None  # the open transaction
        self.committed: asyncio.Future[None] | None = None
        self.members = 0
        self.broken: BaseException | None = None  # a savepoint that could not be closed

    async def _open(self, engine: AsyncEngine) -> None:
        connection = await _writers[engine.sync_engine].connect()
        try:
            await connection.begin()  # BEGIN IMMEDIATE (the ``begin`` hook)
        except BaseException:
            await connection.close()
            raise
        self.connection = connection
        self.committed = asyncio.get_running_loop().create_future()
        self.members = 0
        self.broken = None

    async def _close(self) -> None:
        """Commit (or, after a broken savepoint, roll back) the group's transaction and tell
        every member how it went."""
        connection, committed, broken = self.connection, self.committed, self.broken
        assert connection is not None and committed is not None
        self.connection = self.committed = None
        try:
            if broken is not None:
                await connection.rollback()
                raise broken
            await connection.commit()
        except BaseException as error:
            committed.set_exception(error)
            committed.exception()  # retrieved here; each member re-raises its own copy
            raise
        else:
            committed.set_result(None)
        finally:
            await connection.close()

    @asynccontextmanager
    async def unit(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        self.queued += 1
        try:
            await self.lock.acquire()
        except BaseException:
            self.queued -= 1
            raise
        decision: OAuthError | None = None
        try:
            if self.connection is None:
                await self._open(engine)
            connection, committed = self.connection, self.committed
            assert connection is not None and committed is not None
            self.members += 1
            # The driver's own SAVEPOINT: SQLAlchemy's nested transactions cost more than the
            # commit they save. SQLAlchemy knows only the group's transaction.
            driver = connection.sync_connection.connection.driver_connection._conn  # type: ignore[union-attr]
            self._savepoint(driver, "SAVEPOINT grantly_unit")
            try:
                yield connection
            except OAuthError as error:
                decision = error
                self._savepoint(driver, "RELEASE grantly_unit")
            except BaseException:
                self._savepoint(driver, "ROLLBACK TO grantly_unit")
                self._savepoint(driver, "RELEASE grantly_unit")
                raise
            else:
                self._savepoint(driver, "RELEASE grantly_unit")
        finally:
            self.queued -= 1
            cancelled = False
            try:
                if self.connection is not None and self.queued == 0 and self.broken is None:
                    # Writers whose requests arrived while this one ran are a few turns of the
                    # event loop from the queue (the server reads them, then starts them).
                    for _ in range(GATHER_TURNS):
                        cancelled = await _pause(0)
                        if cancelled or self.queued or self.members >= MAX_GROUP:
                            break
                if self.connection is not None and (
                    self.queued == 0 or self.members >= MAX_GROUP or self.broken is not None
                ):
                    # Never left open by a cancelled task: its members wait for this commit.
                    await self._close()
                    if self.queued and not cancelled:
                        cancelled = await _pause(HAND_OFF)
            finally:
                self.lock.release()
            if cancelled:
                raise asyncio.CancelledError
        await asyncio.shield(committed)
        if decision is not None:
            raise decision

    def _savepoint(self, driver: sqlite3.Connection, sql: str) -> None:
        try:
            driver.execute(sql)
        except sqlite3.Error as error:
            self.broken = OperationalError(sql, None, error)
            raise self.broken from error


async def _pause(seconds: float) -> bool:
    """Sleep; True if the task was cancelled meanwhile (the caller finishes, then re-raises)."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        return True
    return False


# SQLite engines' writer groups (``create_engine``).
_groups: weakref.WeakKeyDictionary[Any, _Group] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def _read_unit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of the read pool, kept checked out between read units.

    A read connection is in autocommit mode, so a unit leaves nothing behind on it, and taking
    one from the pool and giving it back again cost two of SQLAlchemy's greenlet switches, more
    than the indexed read the unit then ran (issue 6's profile). So a connection a unit left
    clean waits for the next read unit here; one that is not clean goes back to the pool
    (``close``): a unit that raised (its statement may have been cut short), a connection
    SQLAlchemy invalidated, one with a SQLAlchemy transaction begun; and any, while the pool has
    none left to give (units may be waiting for one there). A connection invalidated
    because the database went away takes the waiting ones with it (the pool discards them;
    otherwise each would fail one request after the database restarted)."""
    idle = _idle[engine.sync_engine]
    reader = _readers[engine.sync_engine]
    connection = idle.pop() if idle else await reader.connect()
    clean = False
    try:
        yield connection
        # Not kept while every connection of the pool is out: units may be queued in the pool
        # for one, and would wait there while others took the kept ones.
        clean = not (
            connection.invalidated
            or connection.closed
            or connection.in_transaction()
            or reader.sync_engine.pool.checkedout() >= idle.capacity  # type: ignore[attr-defined]
        )
    finally:
        if clean:
            idle.append(connection)
        else:
            if connection.invalidated:
                # Back to the pool, which no longer hands out connections older than the
                # invalidation.
                stale = list(idle)
                idle.clear()
                for waiting in stale:
                    await waiting.close()
            await connection.close()


async def dispose(engine: AsyncEngine) -> None:
    """Close every connection of ``engine`` and its read pool (the app's shutdown, the CLI)."""
    idle = _idle.get(engine.sync_engine)
    while idle:
        await idle.pop().close()
    await engine.dispose()


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine whose pool serves ``engine``'s reads."""
    return _readers[engine.sync_engine]


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
        async with _read_unit(engine) as connection:
            yield connection
        return
    if (group := _groups.get(engine.sync_engine)) is not None:
        async with group.unit(engine) as connection:
            yield connection
        return
    async with _writers[engine.sync_engine].connect() as connection:
        await connection.begin()
        decision: OAuthError | None = None
        try:
            try:
                yield connection
            except OAuthError as error:
                decision = error
            # The deferred inserts, sent before COMMIT here (not by the commit hook), so that
            # one that fails rolls the unit back like any failed statement.
            await flush_deferred(connection)
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()
        if decision is not None:
            raise decision
