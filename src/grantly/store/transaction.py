"""A unit of work's statements on one driver connection.

``rows``, ``first``, ``scalar`` and ``execute`` send their statement when they are called.
``insert_later`` is the one exception, and says so: the INSERT is queued and sent just before
the transaction's next statement or its COMMIT, whichever comes first, together with the
others queued meanwhile; on PostgreSQL they go as one statement of data-modifying ``WITH``s,
so that the rows a request writes last (its tokens, its audit event) cost one round trip. A
later statement sees them (they are sent first); a failing one fails the unit, which is rolled
back; a rollback drops them.

``guarded`` is the atomic step of the exactly-once rules (a code redeemed, a refresh token
rotated): an UPDATE whose condition is the rule, and the inserts that may happen only if it
holds (the new tokens, and the unit's queued inserts: its audit event), as one statement on
PostgreSQL.

On PostgreSQL a writing unit opens its transaction (BEGIN) only before its first statement
that changes or locks rows; reads before it run without one. A unit whose only writes are
its queued inserts or one guarded step needs no transaction at all: a single statement is
atomic by itself, so a code exchange is two round trips (its reads, its write).
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine.interfaces import Dialect

from .errors import translated
from .sql import Compiled, Query, Statement, compiled_for

Observer = Callable[[str], None]
_NO_PARAMS: Mapping[str, Any] = {}


class Transaction(ABC):
    """The statements of one unit of work (or, for a read unit, a run of autocommit reads)."""

    def __init__(self, dialect: Dialect, observers: Sequence[Observer], write: bool) -> None:
        self.dialect = dialect
        self.write = write
        self._observers = observers
        self._later: list[tuple[Compiled, list[Any]]] = []

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``: for the few statements that differ (row locks)."""
        return str(self.dialect.name)

    async def rows(self, statement: Statement, params: Mapping[str, Any] = _NO_PARAMS) -> list[Any]:
        compiled = compiled_for(statement, self.dialect, params)
        raw, _ = await self._send(
            compiled.sql, compiled.values(params), fetch=True, writes=compiled.writes
        )
        return compiled.rows(raw)

    async def first(self, statement: Statement, params: Mapping[str, Any] = _NO_PARAMS) -> Any:
        found = await self.rows(statement, params)
        return found[0] if found else None

    async def scalar(self, statement: Statement, params: Mapping[str, Any] = _NO_PARAMS) -> Any:
        row = await self.first(statement, params)
        return None if row is None else row[0]

    async def execute(self, statement: Statement, params: Mapping[str, Any] = _NO_PARAMS) -> int:
        """Run an INSERT, UPDATE or DELETE; the number of rows it changed."""
        compiled = compiled_for(statement, self.dialect, params)
        _, count = await self._send(
            compiled.sql, compiled.values(params), fetch=False, writes=compiled.writes
        )
        return count

    async def execute_many(self, statement: Query, params: Sequence[Mapping[str, Any]]) -> None:
        """One INSERT (or UPDATE) for many rows of the same keys, sent as the driver's batch."""
        if not params:
            return
        compiled = statement.compiled(self.dialect, params[0])
        await self._before_write()
        if self._later:
            await self.flush()
        for observe in self._observers:
            observe(compiled.sql)
        with self._store_errors():
            await self._run_many(compiled.sql, [compiled.values(p) for p in params])

    def insert_later(self, statement: Query, params: Mapping[str, Any]) -> None:
        """Queue this INSERT: it is sent before the next statement or the COMMIT (see the
        module's docstring). Only in a writing unit: a read unit has no COMMIT to send it."""
        assert self.write, "insert_later needs a writing unit of work"
        compiled = statement.compiled(self.dialect, params)
        self._later.append((compiled, compiled.values(params)))

    async def flush(self) -> None:
        """Send the queued inserts now (the unit of work does, before COMMIT)."""
        if self._later:
            pending, self._later = self._later, []
            await self._send_later(pending)

    async def guarded(
        self,
        guard: Query,
        guard_params: Mapping[str, Any],
        inserts: Sequence[tuple[Query, Mapping[str, Any]]],
    ) -> bool:
        """Run the UPDATE ``guard``; only if it changes a row are ``inserts`` and the unit's
        queued inserts written too, all as one atomic step. False (and nothing written, the
        queued inserts dropped) when it changes no row."""
        assert self.write, "a guarded write needs a writing unit of work"
        compiled = guard.compiled(self.dialect, guard_params)
        parts = [(compiled, compiled.values(guard_params))]
        parts += self._later
        self._later = []
        for statement, params in inserts:
            inserted = statement.compiled(self.dialect, params)
            parts.append((inserted, inserted.values(params)))
        with self._store_errors():
            return await self._send_guarded(parts)

    async def _send_guarded(self, parts: list[tuple[Compiled, list[Any]]]) -> bool:
        (guard, values), *inserts = parts
        for observe in self._observers:
            observe(guard.sql)
        changed, _ = await self._run(guard.sql, values, fetch=True)  # its RETURNING rows
        if len(changed) != 1:
            return False
        for compiled, insert_values in inserts:
            await self._send(compiled.sql, insert_values, fetch=False)
        return True

    async def finish(self) -> None:
        """The unit's end: what is queued is sent (and, on PostgreSQL, the transaction
        committed)."""
        await self.flush()

    async def abort(self) -> None:
        """The unit failed: what is queued is dropped (and the transaction rolled back)."""
        self.discard()

    def discard(self) -> None:
        self._later.clear()

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        """A driver's error raised inside becomes the store's (``errors.translated``)."""
        try:
            yield
        except Exception as error:
            mapped = translated(error, closed=self._closed())
            if mapped is None:
                raise
            raise mapped from error

    async def _translating(self, awaitable: Any) -> Any:
        with self._store_errors():
            return await awaitable

    def _closed(self) -> bool:
        """Whether the connection is closed (after an error: the server closed it)."""
        return False

    async def _send(
        self, sql: str, values: list[Any], fetch: bool, writes: bool = True
    ) -> tuple[list[Any], int]:
        if writes or self._later:
            # Queued inserts are the unit's writes too: they are sent inside its transaction.
            await self._before_write()
        if self._later:
            await self.flush()
        for observe in self._observers:
            observe(sql)
        with self._store_errors():
            return await self._run(sql, values, fetch)

    async def _send_later(self, pending: list[tuple[Compiled, list[Any]]]) -> None:
        for compiled, values in pending:
            await self._send(compiled.sql, values, fetch=False)

    @abstractmethod
    async def _before_write(self) -> None:
        """Called before a statement that changes or locks rows (PostgreSQL: BEGIN)."""

    @abstractmethod
    async def _run(self, sql: str, values: list[Any], fetch: bool) -> tuple[list[Any], int]: ...

    @abstractmethod
    async def _run_many(self, sql: str, values: list[list[Any]]) -> None: ...


class SQLiteTransaction(Transaction):
    """Statements on a ``sqlite3`` connection, run at once in the event loop's thread: an
    indexed statement takes microseconds, less than a hand-off to a thread would."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        dialect: Dialect,
        observers: Sequence[Observer],
        write: bool,
    ) -> None:
        super().__init__(dialect, observers, write)
        self.connection = connection

    async def _run(self, sql: str, values: list[Any], fetch: bool) -> tuple[list[Any], int]:
        return self._execute(sql, values, fetch)

    def _execute(self, sql: str, values: list[Any], fetch: bool) -> tuple[list[Any], int]:
        cursor = self.connection.execute(sql, values)
        try:
            return (cursor.fetchall() if fetch else []), cursor.rowcount
        finally:
            cursor.close()

    async def _before_write(self) -> None:
        """SQLite's writing units hold the write lock from BEGIN IMMEDIATE (the group's)."""

    async def _run_many(self, sql: str, values: list[list[Any]]) -> None:
        self.connection.executemany(sql, values).close()


class ThreadedSQLiteTransaction(SQLiteTransaction):
    """A long read (counts, prune's scans) on a connection of its own, in a worker thread, so
    that the event loop keeps serving while SQLite scans."""

    async def _run(self, sql: str, values: list[Any], fetch: bool) -> tuple[list[Any], int]:
        return await asyncio.to_thread(self._execute, sql, values, fetch)


class PostgresTransaction(Transaction):
    """Statements on an asyncpg connection: each is prepared once per connection (asyncpg's
    statement cache) and sent with its values.

    A connection found dead before anything was sent on it (the server ended its session a
    moment ago, and asyncpg has read the server's farewell but not yet the socket's end) is
    replaced by ``reconnect``, once per unit, and the statement sent on the new one: only while
    no transaction is open, so that nothing the unit did is lost with the old connection."""

    def __init__(
        self,
        connection: asyncpg.Connection,
        dialect: Dialect,
        observers: Sequence[Observer],
        write: bool,
        reconnect: Reconnect | None = None,
    ) -> None:
        super().__init__(dialect, observers, write)
        self.connection = connection
        self._transaction: Any = None  # asyncpg's, once a statement needed one
        self._reconnect = reconnect

    def _closed(self) -> bool:
        return not is_open(self.connection)

    async def _before_write(self) -> None:
        if self.write and self._transaction is None:
            for observe in self._observers:
                observe("BEGIN")
            with self._store_errors():
                try:
                    await self._begin()
                except (asyncpg.InterfaceError, asyncpg.InternalClientError) as error:
                    await self._replace_unsent(error)
                    await self._begin()

    async def _begin(self) -> None:
        transaction = self.connection.transaction()
        await transaction.start()
        self._transaction = transaction

    async def _replace_unsent(self, error: Exception) -> None:
        """Re-raise ``error`` unless it says that nothing was sent on a connection that is
        dead, and no transaction is open on it; then take a new connection in its place."""
        if (
            self._reconnect is None
            or self._transaction is not None
            or not _unsent(error, self.connection)
        ):
            raise error
        reconnect, self._reconnect = self._reconnect, None
        self.connection = await reconnect(self.connection)

    async def finish(self) -> None:
        # Without a transaction, only queued inserts, if any: one statement, atomic by itself.
        await self.flush()
        if self._transaction is not None:
            for observe in self._observers:
                observe("COMMIT")
            await self._translating(self._transaction.commit())

    async def abort(self) -> None:
        self.discard()
        if self._transaction is not None:
            for observe in self._observers:
                observe("ROLLBACK")
            await self._transaction.rollback()

    async def _send_later(self, pending: list[tuple[Compiled, list[Any]]]) -> None:
        sql = _combined(tuple(compiled for compiled, _ in pending))
        values = [value for _, values in pending for value in values]
        await self._send(sql, values, fetch=False, writes=False)

    async def _send_guarded(self, parts: list[tuple[Compiled, list[Any]]]) -> bool:
        sql = _guarded(tuple(compiled for compiled, _ in parts))
        values = [value for _, values in parts for value in values]
        rows, _ = await self._send(sql, values, fetch=True, writes=False)
        return bool(rows and rows[0][0] == 1)

    async def _run(self, sql: str, values: list[Any], fetch: bool) -> tuple[list[Any], int]:
        try:
            return await self._on_connection(sql, values, fetch)
        except (asyncpg.InterfaceError, asyncpg.InternalClientError) as error:
            await self._replace_unsent(error)
            return await self._on_connection(sql, values, fetch)

    async def _on_connection(
        self, sql: str, values: list[Any], fetch: bool
    ) -> tuple[list[Any], int]:
        if fetch:
            return await self.connection.fetch(sql, *values), -1
        status = await self.connection.execute(sql, *values)
        return [], _rowcount(status)

    async def _run_many(self, sql: str, values: list[list[Any]]) -> None:
        await self._before_write()
        await self.connection.executemany(sql, values)


Reconnect = Callable[[asyncpg.Connection], Awaitable[asyncpg.Connection]]

# asyncpg's errors raised as an operation starts, before it writes anything: the protocol is
# not idle (it has read the server's FATAL message that ends the session), or not connected.
_UNSENT = ("cannot switch to state", "not connected")


def _unsent(error: Exception, connection: asyncpg.Connection) -> bool:
    if isinstance(error, asyncpg.InterfaceError):
        # asyncpg checks that the connection is open before it sends anything ("connection is
        # closed", "released back to the pool"); another InterfaceError is a misuse, a bug.
        return not is_open(connection)
    return type(error) is asyncpg.InternalClientError and str(error).startswith(_UNSENT)


def is_open(connection: asyncpg.Connection) -> bool:
    """Whether an asyncpg connection can still serve. A pool's connection that closed is
    handed back to its pool by asyncpg itself, and its proxy then refuses every call, even
    ``is_closed()`` (an ``InterfaceError``): it is closed for us all the same."""
    try:
        return not connection.is_closed()
    except asyncpg.InterfaceError:
        return False


def _rowcount(status: str) -> int:
    """asyncpg's command status (``UPDATE 3``, ``INSERT 0 1``): the rows it changed."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else -1


_PLACEHOLDER = re.compile(r"\$(\d+)")
_COMBINED: dict[tuple[Compiled, ...], str] = {}
_GUARDED: dict[tuple[Compiled, ...], str] = {}
_VALUES = re.compile(r"^(INSERT INTO .+? \(.+?\)) VALUES \((.+)\)(?: RETURNING .+)?$", re.S)


def _combined(statements: tuple[Compiled, ...]) -> str:
    """``WITH d0 AS (INSERT ...), d1 AS (INSERT ...) INSERT ...``: PostgreSQL runs every
    data-modifying ``WITH`` exactly once, whether or not the main statement reads it, and checks
    foreign keys at the statement's end. The placeholders ($1, $2, ...) of each insert are
    numbered on from the previous one's. Each sequence of statements is combined once."""
    sql = _COMBINED.get(statements)
    if sql is not None:
        return sql
    *first, last = _numbered(statements)
    sql = last
    if first:
        sql = "WITH " + ", ".join(f"d{i} AS ({part})" for i, part in enumerate(first)) + " " + last
    _COMBINED[statements] = sql
    return sql


def _numbered(statements: tuple[Compiled, ...]) -> list[str]:
    """Each statement's SQL with its placeholders ($1, $2, ...) numbered on from the previous
    one's, so that they can be sent as one statement with all their values in order."""
    parts, offset = [], 0
    for compiled in statements:
        parts.append(_PLACEHOLDER.sub(lambda m, o=offset: f"${int(m.group(1)) + o}", compiled.sql))
        offset += len(compiled.names)
    return parts


def _guarded(statements: tuple[Compiled, ...]) -> str:
    """``WITH g AS (UPDATE ... RETURNING ...), d0 AS (INSERT ... SELECT ... WHERE EXISTS g)
    ... SELECT count(*) FROM g``: every insert happens only if the UPDATE changed a row; one
    statement, so all of it or nothing. Each sequence of statements is combined once."""
    sql = _GUARDED.get(statements)
    if sql is not None:
        return sql
    guard, *inserts = _numbered(statements)
    parts = [f"g AS ({guard})"]
    for i, insert in enumerate(inserts):
        match = _VALUES.match(insert)
        assert match, "an INSERT ... VALUES statement"
        columns, values = match.groups()
        # Compiled Core statements, their values bound parameters: nothing here comes from a
        # request.
        parts.append(f"d{i} AS ({columns} SELECT {values} WHERE EXISTS (SELECT 1 FROM g))")  # noqa: S608
    sql = "WITH " + ", ".join(parts) + " SELECT count(*) FROM g"  # noqa: S608
    _GUARDED[statements] = sql
    return sql
