"""``Database``: the one object that owns Grantly's connections, and its units of work.

``async with db.unit() as uow:`` is one transaction; ``uow.tokens``, ``uow.codes`` ... are the
repositories over it (``store.unit.Store``). It commits when the block ends and rolls back when
the block raises, whatever it raises. ``db.unit(write=False)`` reads in autocommit mode: no BEGIN
and no COMMIT, each statement sees the latest committed state (read committed, which is also
what a transaction gives on PostgreSQL). ``db.long_read()`` is for scans (counts, prune's
selections) that must not hold up the event loop.

Two backends, each on its driver directly (SQLAlchemy builds the SQL, ``store.sql``):
- ``SQLiteDatabase``: ``sqlite3``, called in the event loop's thread (an indexed statement
  takes microseconds; a thread hand-off would cost more), one connection for reads and one
  for writes per process, and group commit for the writers (``_WriterGroup``).
- ``PostgresDatabase``: an asyncpg pool; statements are prepared once per connection.

Errors of the drivers become the store's own (``store.errors``): a statement's in
``Transaction``, BEGIN's and COMMIT's included; opening or awaiting a connection's here.
``Unavailable`` (a 503), ``Conflict`` or ``InvalidValue`` (a 400); anything else is a bug. A
connection that was lost is discarded; the next unit opens a new one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql.asyncpg import dialect as postgresql_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import Dialect

from .errors import Unavailable, connecting, is_dead_connection, translated
from .sql import Query
from .transaction import (
    Observer,
    PostgresTransaction,
    SQLiteTransaction,
    ThreadedSQLiteTransaction,
    Transaction,
    is_open,
)
from .unit import Store

# How long a writer waits for another process's SQLite write lock before giving up (503).
WRITE_LOCK_TIMEOUT = 30.0
# SQLite's own wait for the rare locks left once writers queue in the event loop: switching a
# new database to WAL, recovery after a crash.
BUSY_TIMEOUT_MS = 5000


class Database(ABC):
    """Grantly's database: its connections and its units of work."""

    dialect: Dialect

    def __init__(self) -> None:
        # Called with the SQL of every round trip, BEGIN and COMMIT included (the query-count
        # test; tracing).
        self.observers: list[Observer] = []

    @property
    def backend(self) -> str:
        return str(self.dialect.name)

    @abstractmethod
    def unit(self, *, write: bool = True) -> Any:
        """``async with db.unit() as uow``: see the module's docstring."""

    @abstractmethod
    def long_read(self) -> Any:
        """``async with db.long_read() as uow``: reads that may scan, off the event loop."""

    @abstractmethod
    async def ping(self) -> None:
        """One round trip to the database; raises ``Unavailable`` when it does not answer."""

    @abstractmethod
    async def close(self) -> None:
        """Close every connection (the app's shutdown, the CLI's end)."""

    def _observe(self, sql: str) -> None:
        for observe in self.observers:
            observe(sql)


def open_database(
    url: str,
    pool_size: int | None = None,
    *,
    connect_timeout: float | None = None,
    acquire_timeout: float | None = None,
) -> Database:
    """The database a SQLAlchemy-style URL names (``sqlite:///path``, ``postgresql://...``;
    a driver suffix such as ``+aiosqlite`` or ``+asyncpg`` is ignored). The timeouts are
    PostgreSQL's (``PostgresDatabase``); unset, ``CONNECT_TIMEOUT`` and ``ACQUIRE_TIMEOUT``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return SQLiteDatabase(parsed.database or ":memory:")
    if backend == "postgresql":
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresDatabase(
            dsn,
            pool_size,
            connect_timeout=connect_timeout or CONNECT_TIMEOUT,
            acquire_timeout=acquire_timeout or ACQUIRE_TIMEOUT,
        )
    raise ValueError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


# --- SQLite ---------------------------------------------------------------------------------


class SQLiteDatabase(Database):
    """SQLite, in WAL mode (readers never wait for the writer), with foreign keys on (cascades)
    and ``synchronous=NORMAL`` (a committed transaction survives a process crash; a power loss
    may lose the last ones)."""

    dialect = sqlite_dialect()

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.max_group = MAX_GROUP  # no pool: one connection for reads, one for writes
        self._reader: sqlite3.Connection | None = None
        self._group = _WriterGroup(self)

    def connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: the driver sends no BEGIN of its own; units of work do.
        connection = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as error:
            connection.close()
            raise Unavailable(f"sqlite: {error}") from error
        return connection

    @asynccontextmanager
    async def unit(self, *, write: bool = True) -> AsyncIterator[Store]:
        if write:
            async with self._group.unit() as store:
                yield store
            return
        # One connection serves every read unit of the process: each statement runs to its
        # end (rows fetched) before the event loop runs anything else, and in autocommit mode
        # a unit leaves nothing behind on it.
        if self._reader is None:
            self._reader = self._open()
        tx = SQLiteTransaction(self._reader, self.dialect, self.observers, write=False)
        try:
            yield Store(tx)
        except Unavailable:
            self._drop_reader()
            raise

    @asynccontextmanager
    async def long_read(self) -> AsyncIterator[Store]:
        connection = await asyncio.to_thread(self._open)
        try:
            yield Store(ThreadedSQLiteTransaction(connection, self.dialect, self.observers, False))
        finally:
            connection.close()

    def _open(self) -> sqlite3.Connection:
        try:
            return self.connect()
        except sqlite3.Error as error:
            raise Unavailable(f"sqlite: {error}") from error

    def _drop_reader(self) -> None:
        if self._reader is not None:
            with suppress(sqlite3.Error):
                self._reader.close()
            self._reader = None

    async def ping(self) -> None:
        async with self.unit(write=False) as uow:
            await uow.tx.scalar(_SELECT_ONE)

    async def close(self) -> None:
        self._drop_reader()
        self._group.close()


# The most units of work one SQLite commit covers (bounds the wait of the first of them), and
# how many turns of the event loop the last one waits for another to join.
MAX_GROUP = 32
GATHER_TURNS = 3
# After a commit, the next group of a busy process waits this long before taking the write lock
# again: another process waiting for it retries every millisecond at most (``begin_immediate``),
# and without a pause a busy process took the lock back at once, so that the other waited for
# as long as the first stayed busy (`make bench`: p99 160 ms against a p50 of 15 ms).
HAND_OFF = 0.001


class _WriterGroup:
    """SQLite's writers of one process, queued in the event loop, and committed together.

    SQLite allows one writer per database, and a unit of work's commit costs more than all of
    its statements. So the writers that queue while one runs join its transaction, each inside
    a SAVEPOINT of its own (a unit that fails is rolled back alone), and the last of them (no
    one queued behind it, or ``max_group`` reached) commits for all. Every unit returns only
    once the commit that covers it is done, so a response never reports a write that is not
    committed; if that commit fails, every unit it covered fails. Writers of other processes
    wait for the write lock (``begin_immediate``) without blocking the event loop."""

    def __init__(self, database: SQLiteDatabase) -> None:
        self.database = database
        self.lock = asyncio.Lock()
        self.queued = 0  # units waiting for the lock or running
        self.writer: sqlite3.Connection | None = None  # kept between groups
        self.open = False  # a group's transaction is open on ``writer``
        self.committed: asyncio.Future[None] | None = None
        self.members = 0
        self.broken: BaseException | None = None  # a savepoint that could not be closed
        self._closer: asyncio.Task[None] | None = None  # kept: a task nobody references may go

    def close(self) -> None:
        """The database's close: the writer goes, and the queue starts anew (an event loop
        that comes next, a test's, gets a lock of its own)."""
        self._drop_writer()
        if not self.lock.locked():
            self.lock = asyncio.Lock()

    def _drop_writer(self) -> None:
        if self.writer is not None:
            with suppress(sqlite3.Error):
                self.writer.close()
        self.writer = None
        self.open = False

    async def _begin(self) -> None:
        if self.writer is None:
            self.writer = self.database._open()
        self.database._observe("BEGIN IMMEDIATE")
        try:
            await begin_immediate(self.writer, WRITE_LOCK_TIMEOUT)
        except sqlite3.Error as error:
            self._drop_writer()
            raise Unavailable(f"sqlite: {error}") from error
        self.open = True
        self.committed = asyncio.get_running_loop().create_future()
        self.members = 0
        self.broken = None

    def _end(self) -> None:
        """Commit (or, after a broken savepoint, roll back) the group's transaction and tell
        every member how it went."""
        writer, committed, broken = self.writer, self.committed, self.broken
        assert writer is not None and committed is not None
        self.open = False
        self.committed = None
        try:
            if broken is not None:
                writer.execute("ROLLBACK")
                raise broken
            self.database._observe("COMMIT")
            writer.execute("COMMIT")
        except BaseException as error:
            mapped = translated(error) or error
            committed.set_exception(mapped)
            committed.exception()  # retrieved here; each member re-raises it
            self._drop_writer()  # a connection whose COMMIT failed is not reused
            if mapped is error:
                raise
            raise mapped from error
        committed.set_result(None)

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Store]:
        self.queued += 1
        try:
            await self.lock.acquire()
        except BaseException:
            self.queued -= 1
            # Cancelled while the last member let go of the lock for it: the group is open
            # with nobody left to commit it, and its members wait. Commit it in their stead.
            if self.open and self.queued == 0 and not self.lock.locked():
                self._closer = asyncio.get_running_loop().create_task(self._close_abandoned())
            raise
        try:
            if not self.open:
                await self._begin()
            writer, committed = self.writer, self.committed
            assert writer is not None and committed is not None
            self.members += 1
            self._savepoint(writer, "SAVEPOINT grantly_unit")
            tx = SQLiteTransaction(writer, self.database.dialect, self.database.observers, True)
            try:
                yield Store(tx)
                await tx.finish()
            except BaseException:
                await tx.abort()
                self._savepoint(writer, "ROLLBACK TO grantly_unit")
                self._savepoint(writer, "RELEASE grantly_unit")
                raise
            else:
                self._savepoint(writer, "RELEASE grantly_unit")
        finally:
            self.queued -= 1
            cancelled = False
            try:
                if self.open and self.queued == 0 and self.broken is None:
                    # Writers whose requests arrived while this one ran are a few turns of the
                    # event loop from the queue (the server reads them, then starts them).
                    for _ in range(GATHER_TURNS):
                        cancelled = await _pause(0)
                        if cancelled or self.queued or self.members >= self.database.max_group:
                            break
                if self.open and (
                    self.queued == 0
                    or self.members >= self.database.max_group
                    or self.broken is not None
                ):
                    # Never left open by a cancelled task: its members wait for this commit.
                    self._end()
                    if self.queued and not cancelled:
                        cancelled = await _pause(HAND_OFF)
            finally:
                self.lock.release()
            if cancelled:
                raise asyncio.CancelledError
        await asyncio.shield(committed)

    async def _close_abandoned(self) -> None:
        async with self.lock:
            if self.open and self.queued == 0:
                with suppress(Exception):  # the members receive the outcome themselves
                    self._end()

    def _savepoint(self, writer: sqlite3.Connection, sql: str) -> None:
        try:
            writer.execute(sql)
        except sqlite3.Error as error:
            self.broken = Unavailable(f"sqlite: {sql}: {error}")
            raise self.broken from error


async def _pause(seconds: float) -> bool:
    """Sleep; True if the task was cancelled meanwhile (the caller finishes, then re-raises)."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        return True
    return False


async def begin_immediate(connection: sqlite3.Connection, timeout: float) -> None:
    """``BEGIN IMMEDIATE``: a transaction that will write takes the write lock at BEGIN (one
    that read first and wrote later could fail with SQLITE_BUSY when another writer committed
    in between). Another process's lock is waited for without blocking the event loop: each
    refused attempt yields with ``asyncio.sleep``. Gives up after ``timeout`` seconds with
    SQLite's own "database is locked"."""
    deadline = time.monotonic() + timeout
    pause = 0.0002
    connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(pause)
            # At most a millisecond between attempts: a busy process leaves the lock free only
            # for a moment between its transactions (``HAND_OFF``).
            pause = min(pause * 2, 0.001)
    finally:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


# --- PostgreSQL -----------------------------------------------------------------------------


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that sends no reset query when it goes back to the pool (asyncpg
    documents overriding ``get_reset_query`` for this). Grantly never LISTENs, SETs, opens a
    cursor or takes a session-level advisory lock, so the default reset (``RESET ALL`` and
    three more) would be a round trip per request for nothing; an open transaction is still
    rolled back by the pool."""

    def get_reset_query(self) -> str:
        return ""


# How long opening a new connection may take, and how long a unit may wait for one (in the
# pool's queue, then connecting), before it is ``Unavailable``: a 503 rather than a request
# that hangs while the database does not answer or every connection is taken.
CONNECT_TIMEOUT = 5.0
ACQUIRE_TIMEOUT = 10.0


class PostgresDatabase(Database):
    """PostgreSQL through asyncpg's pool. A worker keeps up to ``pool_size`` connections
    (default 16); PostgreSQL counts them against ``max_connections``.

    A connection a unit leaves clean (no transaction, not closed) waits for the next unit in
    ``_idle`` rather than going back to asyncpg's pool: the pool's release and acquire cost
    tasks and a timer, about as much as the indexed read of a Bearer call (a Bearer call's CPU
    in-process: 347 us through the pool, 270 us kept). It goes back to the pool whenever a
    unit is waiting there for one, so none waits while a connection sits idle here.

    Faults of the database: a kept connection the server closed meanwhile (its backend
    terminated, the server restarted, the database dropped) is never handed out: it goes back
    to the pool, which opens a new one. One whose end is still on its way (asyncpg has read the
    server's farewell, not yet the socket's end) refuses the unit's statement before sending
    it, and the unit goes on on a new connection (``_reconnect``). So the first request after a
    restart is served. A connection lost under a unit takes the idle ones with it (they most
    likely went with it). Any error while a connection opens or is awaited, for at most
    ``acquire_timeout``, is ``Unavailable`` (``errors.connecting``).
    """

    dialect = postgresql_dialect()

    def __init__(
        self,
        dsn: str,
        pool_size: int | None = None,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
        acquire_timeout: float = ACQUIRE_TIMEOUT,
    ) -> None:
        super().__init__()
        self.dsn = dsn
        self.pool_size = pool_size or 16
        self.connect_timeout = connect_timeout
        self.acquire_timeout = acquire_timeout
        self._pool: asyncpg.Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._idle: list[asyncpg.Connection] = []
        self._waiting = 0  # units waiting in the pool's acquire

    async def _ready_pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool_loop is loop:
            return self._pool
        if self._opening is None or self._pool_loop is not loop:
            # A pool belongs to one event loop (a test's client may start a new one).
            self._opening = asyncio.Lock()
            self._pool, self._pool_loop, self._idle = None, loop, []
        async with self._opening:
            if self._pool is None:
                with _connecting():
                    # min_size=0: no connection is opened here; the first unit opens one.
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=0,
                        max_size=self.pool_size,
                        connection_class=_Connection,
                        timeout=self.connect_timeout,
                    )
        return self._pool

    async def _take(self, pool: asyncpg.Pool) -> asyncpg.Connection:
        while self._idle:
            connection = self._idle.pop()
            if is_open(connection):
                return connection
            await _discard(pool, connection)  # closed while it waited: the pool replaces it
        self._waiting += 1
        try:
            with _connecting():
                return await pool.acquire(timeout=self.acquire_timeout)
        finally:
            self._waiting -= 1

    async def _reconnect(self, pool: asyncpg.Pool, dead: asyncpg.Connection) -> asyncpg.Connection:
        """A new connection for a unit whose connection was found dead before a statement was
        sent (``PostgresTransaction``): the server ended its sessions a moment ago, so the kept
        ones and those asyncpg's pool holds are replaced too (``expire_connections``: each is
        closed when next released, and opened anew when next acquired)."""
        await _discard(pool, dead)
        await self._discard_idle(pool)
        with _connecting():
            await pool.expire_connections()
        return await self._take(pool)

    async def _discard_idle(self, pool: asyncpg.Pool) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await _discard(pool, connection)

    @asynccontextmanager
    async def unit(self, *, write: bool = True) -> AsyncIterator[Store]:
        """A writing unit opens its transaction before its first statement that changes or
        locks rows (``PostgresTransaction``), and commits it at the end."""
        pool = await self._ready_pool()
        tx = PostgresTransaction(
            await self._take(pool),
            self.dialect,
            self.observers,
            write,
            reconnect=partial(self._reconnect, pool),
        )
        clean = False
        try:
            yield Store(tx)
            await tx.finish()
            clean = is_open(tx.connection) and not tx.connection.is_in_transaction()
        except BaseException as error:
            with suppress(Exception):
                await tx.abort()
            if is_dead_connection(error) or not is_open(tx.connection):
                # Never handed out again (asyncpg may have let go of it already), nor the
                # idle ones: the database most likely went away under all of them.
                with suppress(Exception):
                    tx.connection.terminate()
                await self._discard_idle(pool)
            raise
        finally:
            # The unit's connection: a new one if the first was replaced.
            if clean and not self._waiting:
                self._idle.append(tx.connection)
            else:
                with suppress(Exception):
                    await pool.release(tx.connection)

    def long_read(self) -> Any:
        return self.unit(write=False)

    async def ping(self) -> None:
        """Through the pool, as a request would; ``Unavailable`` too when the server takes no
        writes (a standby after a failover, ``default_transaction_read_only``), where every
        request that writes would get a 503."""
        async with self.unit(write=False) as uow:
            read_only = await uow.tx.scalar(_READ_ONLY)
        if read_only != "off":
            raise Unavailable("postgresql: the server takes no writes (transaction_read_only)")

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        idle, self._idle = self._idle, []
        if pool is not None and self._pool_loop is asyncio.get_running_loop():
            for connection in idle:
                with suppress(Exception):
                    await pool.release(connection)
            await pool.close()
        elif pool is not None:
            pool.terminate()


async def _discard(pool: asyncpg.Pool, connection: asyncpg.Connection) -> None:
    """A connection that must not serve again: closed at once, its place back in the pool."""
    with suppress(Exception):
        connection.terminate()
    with suppress(Exception):
        await pool.release(connection)


@contextmanager
def _connecting() -> Iterator[None]:
    """Any error of the driver or the network while a connection is opened or awaited is
    ``Unavailable`` (``errors.connecting``); a bug stays what it is."""
    try:
        yield
    except Exception as error:
        mapped = connecting(error)
        if mapped is None:
            raise
        raise mapped from error


_SELECT_ONE = Query(select(literal(1)))
_READ_ONLY = Query(select(func.current_setting("transaction_read_only")))


__all__ = ["Database", "Transaction", "open_database"]
