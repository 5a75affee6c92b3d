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

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable
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

    async def _run(
        self, connection: AsyncConnection, params: Mapping[str, Any], fetch: bool
    ) -> tuple[_Compiled, list[Any], int]:
        sync = connection.sync_connection
        assert sync is not None, "a unit of work's connection"
        dialect = sync.dialect
        compiled = self._for(dialect, params)
        given = {**compiled.literals, **params} if compiled.literals else params
        values = [
            given[name] if process is None else process(given[name])
            for name, process in zip(compiled.names, compiled.binds, strict=True)
        ]
        if sync._has_events or sync.engine._has_events:
            # Listeners (tracing, the query-count test) see these statements as SQLAlchemy's.
            for listener in sync.dispatch.before_cursor_execute:
                listener(sync, None, compiled.sql, values, None, False)
        adapted = sync.connection.dbapi_connection  # SQLAlchemy's adapter of the driver
        try:
            if dialect.name == "sqlite":
                cursor = sync.connection.driver_connection._conn.execute(compiled.sql, values)
                rows = cursor.fetchall() if fetch else []
                return compiled, rows, cursor.rowcount
            if adapted._transaction is None and adapted.isolation_level != "autocommit":
                await adapted._start_transaction()
            driver = adapted._connection
            if fetch:
                return compiled, await driver.fetch(compiled.sql, *values), -1
            status = await driver.execute(compiled.sql, *values)
            return compiled, [], int(status.rsplit(" ", 1)[-1])
        except Exception as error:
            await greenlet_spawn(_raise_as_sqlalchemy, sync, adapted, error, compiled.sql, values)
            raise  # not reached: the handler always raises

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
