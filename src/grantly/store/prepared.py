"""Hot statements run at the driver level, inside the unit of work's own transaction.

SQLAlchemy Core runs every statement through its execution context, events, result machinery
and (in asyncio) a greenlet switch per driver call: about 40 µs a statement here, five times
the statement itself (issue 6's profile). The few statements of every token, introspection and
resource request are built once as Core statements (one definition, one dialect-aware SQL),
compiled once per dialect, and run on the driver connection beneath the ``AsyncConnection``:
the inline SQLite connection directly, asyncpg with its own prepared-statement cache.

What SQLAlchemy would have done and this keeps:
- the transaction: SQLite's BEGIN is emitted by ``unit_of_work`` (``begin`` event) before any
  statement; on PostgreSQL the adapter's transaction is started here exactly as its cursor
  would start it, so ``commit`` and ``rollback`` through SQLAlchemy cover these statements;
- bind and result type processing (e.g. SQLite's 0/1 to ``bool``);
- ``before_cursor_execute`` listeners (tracing; the query-count test);
- errors: a driver error goes through SQLAlchemy's own handler, so it is raised as the same
  ``sqlalchemy.exc`` class (a lost database is a 503, not a 500) and a dead connection is
  invalidated.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import greenlet_spawn


class _Compiled:
    __slots__ = ("binds", "literals", "names", "results", "row", "sql")

    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.sql: str = compiled.string
        self.names: list[str] = list(compiled.positiontup or [])
        # Values written into the statement itself (``coalesce(active, true)``, ``== 'user'``).
        self.literals: dict[str, Any] = {
            name: compiled.binds[name].effective_value for name in self.names if name not in keys
        }
        bind_processors = compiled._bind_processors
        self.binds: list[Callable[[Any], Any] | None] = [
            bind_processors.get(name) for name in self.names
        ]
        columns = compiled._result_columns
        self.row: type | None = (
            namedtuple("Row", [column[0] for column in columns], rename=True) if columns else None  # type: ignore[misc]
        )
        self.results: list[Callable[[Any], Any] | None] = [
            column[3]._cached_result_processor(dialect, None) for column in columns
        ]


class Prepared:
    """One hot Core statement (with ``bindparam``s, or an INSERT given its values as
    parameters). ``await p.first(connection, params)``, ``p.all(...)``, ``p.rowcount(...)``."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}

    def _for(self, dialect: Dialect, params: Mapping[str, Any]) -> _Compiled:
        key = (dialect.name, frozenset(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.statement, dialect, sorted(params))
        return compiled

    def _values(self, sync: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, list[Any]]:
        compiled = self._for(sync.dialect, params)
        given = {**compiled.literals, **params} if compiled.literals else params
        values = [
            given[name] if process is None else process(given[name])
            for name, process in zip(compiled.names, compiled.binds, strict=True)
        ]
        return compiled, values

    async def _run(
        self, connection: AsyncConnection, params: Mapping[str, Any], fetch: bool
    ) -> tuple[_Compiled, list[Any], int]:
        sync = connection.sync_connection
        assert sync is not None, "a unit of work's connection"
        if sync in _deferred:
            await _flush(sync)
        compiled, values = self._values(sync, params)
        rows, count = await _execute(sync, compiled.sql, values, fetch)
        return compiled, rows, count

    async def defer(self, connection: AsyncConnection, params: Mapping[str, Any]) -> None:
        """This INSERT, sent with the connection's next statement or COMMIT, whichever comes
        first, and with the other inserts deferred meanwhile, as one statement (PostgreSQL:
        data-modifying ``WITH``s). For the rows a request writes last and never reads back
        (its tokens, its audit event): a code exchange's three inserts cost one round trip, not
        three. Nothing is lost or reordered: a later statement on the connection (through
        SQLAlchemy or this module) sends them first, so it sees them; a COMMIT sends them
        first, so a failing insert fails the commit; a ROLLBACK drops them. SQLite has no round
        trip to save: the insert runs at once."""
        sync = connection.sync_connection
        assert sync is not None, "a unit of work's connection"
        if sync.dialect not in _deferring or not sync.in_transaction():
            # SQLite, a read connection, or no transaction (no COMMIT would send it): now.
            await self._run(connection, params, fetch=False)
            return
        _deferred.setdefault(sync, []).append(self._values(sync, params))

    async def all(self, connection: AsyncConnection, params: Mapping[str, Any]) -> list[Any]:
        compiled, rows, _ = await self._run(connection, params, fetch=True)
        make, processors = compiled.row, compiled.results
        assert make is not None, "a statement that returns rows"
        if any(processors):
            return [
                make(*(v if p is None else p(v) for v, p in zip(row, processors, strict=True)))
                for row in rows
            ]
        return [make(*row) for row in rows]

    async def first(self, connection: AsyncConnection, params: Mapping[str, Any]) -> Any | None:
        rows = await self.all(connection, params)
        return rows[0] if rows else None

    async def rowcount(self, connection: AsyncConnection, params: Mapping[str, Any]) -> int:
        """Rows changed by an UPDATE or DELETE (or inserted)."""
        _, _, count = await self._run(connection, params, fetch=False)
        return count


async def _execute(
    sync: Connection, sql: str, values: list[Any], fetch: bool
) -> tuple[list[Any], int]:
    if sync._has_events or sync.engine._has_events:
        # Listeners (tracing, the query-count test) see these statements as SQLAlchemy's.
        for listener in sync.dispatch.before_cursor_execute:
            listener(sync, None, sql, values, None, False)
    adapted = sync.connection.dbapi_connection  # SQLAlchemy's adapter of the driver
    try:
        if sync.dialect.name == "sqlite":
            cursor = sync.connection.driver_connection._conn.execute(sql, values)  # type: ignore[union-attr]
            return (cursor.fetchall() if fetch else []), cursor.rowcount
        if adapted._transaction is None and adapted.isolation_level != "autocommit":  # type: ignore[union-attr]
            await adapted._start_transaction()  # type: ignore[union-attr]
        driver = adapted._connection  # type: ignore[union-attr]
        if fetch:
            return await driver.fetch(sql, *values), -1
        status = await driver.execute(sql, *values)
        return [], int(status.rsplit(" ", 1)[-1])
    except Exception as error:
        await greenlet_spawn(_raise_as_sqlalchemy, sync, adapted, error, sql, values)
        raise  # not reached: the handler always raises


# Inserts waiting to be sent, per connection (``Prepared.defer``), and the one statement that
# sends each sequence of them.
_deferred: weakref.WeakKeyDictionary[Connection, list[tuple[_Compiled, list[Any]]]] = (
    weakref.WeakKeyDictionary()
)
_combined: dict[tuple[_Compiled, ...], str] = {}
# The dialects of the engines that send deferred inserts (``defer_on``): an engine's own, shared
# by its views (the writers'), not by its read pool, and kept across ``dispose``.
_deferring: weakref.WeakSet[Any] = weakref.WeakSet()
_PLACEHOLDER = re.compile(r"\$(\d+)")


async def flush_deferred(connection: AsyncConnection) -> None:
    """Send the connection's deferred inserts now (``Prepared.defer``)."""
    sync = connection.sync_connection
    if sync is not None and sync in _deferred:
        await _flush(sync)


async def _flush(sync: Connection) -> None:
    pending = _deferred.pop(sync, None)
    if not pending:
        return
    key = tuple(compiled for compiled, _ in pending)
    sql = _combined.get(key)
    if sql is None:
        sql = _combined[key] = _one_statement(pending)
    await _execute(sync, sql, [value for _, values in pending for value in values], fetch=False)


def _one_statement(pending: list[tuple[_Compiled, list[Any]]]) -> str:
    """``WITH d0 AS (INSERT ...), d1 AS (INSERT ...) INSERT ...``: PostgreSQL runs every
    data-modifying ``WITH`` exactly once, whether or not the main statement reads it, and checks
    foreign keys at the statement's end. asyncpg's placeholders ($1, $2, ...) of each insert
    are numbered on from the previous one's."""
    parts, offset = [], 0
    for compiled, values in pending:
        parts.append(_PLACEHOLDER.sub(lambda m, o=offset: f"${int(m.group(1)) + o}", compiled.sql))
        offset += len(values)
    *first, last = parts
    if not first:
        return last
    return "WITH " + ", ".join(f"d{i} AS ({part})" for i, part in enumerate(first)) + " " + last


def defer_on(engine: AsyncEngine) -> None:
    """Sends an engine's deferred inserts before any other statement of SQLAlchemy's and before
    COMMIT, and drops them on ROLLBACK (``Prepared.defer``). These hooks run inside SQLAlchemy's
    greenlet, where awaiting the driver is allowed."""
    _deferring.add(engine.sync_engine.dialect)

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before_statement(sync: Connection, *_args: Any) -> None:
        if sync in _deferred:
            await_only(_flush(sync))

    @event.listens_for(engine.sync_engine, "commit")
    def _before_commit(sync: Connection) -> None:
        # ``unit_of_work`` has sent them already; this covers any other commit.
        if sync in _deferred:
            try:
                await_only(_flush(sync))
            except BaseException:
                # COMMIT is not sent, and SQLAlchemy does not roll back a transaction whose
                # commit failed: the driver's transaction is rolled back here, or the pooled
                # connection would carry it (aborted) into the next unit of work.
                with contextlib.suppress(Exception):
                    sync.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
                raise

    @event.listens_for(engine.sync_engine, "rollback")
    def _on_rollback(sync: Connection) -> None:
        _deferred.pop(sync, None)


def _raise_as_sqlalchemy(
    sync: Any, adapted: Any, error: Exception, sql: str, values: list[Any]
) -> None:
    """Translate and raise as SQLAlchemy would from its own cursor: the adapter maps the
    driver's exception to its DBAPI class, then the connection wraps it in ``sqlalchemy.exc``
    and invalidates the connection if the database went away."""
    try:
        if sync.dialect.name != "sqlite":
            adapted._handle_exception(error)  # raises the DBAPI-level error
        raise error
    except Exception as dbapi_error:
        sync._handle_dbapi_exception(dbapi_error, sql, tuple(values), None, None)
        raise
