"""SQL built with SQLAlchemy Core and compiled through its public API, for the drivers.

Grantly runs its statements on the drivers themselves (``sqlite3``, asyncpg), so SQLAlchemy is
used as a query builder only: ``statement.compile(dialect=...)`` gives the SQL and the order of
its parameters (``positiontup``), and each column's type, adapted to the dialect
(``dialect_impl``), gives the bind and result conversions (SQLite's 0/1 to ``bool``, its ISO
strings to ``datetime.date``). A statement kept at module level (``Query``) is compiled once per
dialect and set of parameter names; one built on the fly is compiled where it runs.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.expression import ClauseElement

Processor = Callable[[Any], Any] | None
_LOCKING = re.compile(r"\bFOR (NO KEY )?UPDATE\b|\bFOR (KEY )?SHARE\b")


class Compiled:
    """One statement's SQL for one dialect, its parameters in order, and its row shape."""

    __slots__ = ("binds", "defaults", "names", "results", "row", "sql", "writes")

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: Sequence[str]) -> None:
        compiled = statement.compile(
            dialect=dialect,
            column_keys=list(keys),
            # Expanding IN lists become one placeholder per value, known now.
            compile_kwargs={"render_postcompile": True},
        )
        self.sql: str = compiled.string
        # Whether it changes rows or locks them: on PostgreSQL such a statement opens the
        # unit's transaction (``PostgresTransaction``); reads before it run without one.
        self.writes: bool = bool(
            compiled.isinsert
            or compiled.isupdate
            or compiled.isdelete
            or _LOCKING.search(self.sql)
            or not self.sql.lstrip().upper().startswith(("SELECT", "WITH"))
        )
        self.names: list[str] = list(compiled.positiontup or [])
        # The values written into the statement itself (``id == 3``, ``coalesce(x, true)``).
        given = dict.fromkeys(keys)
        self.defaults: dict[str, Any] = {
            name: value
            for name, value in compiled.construct_params(given).items()
            if name not in given
        }
        binds = compiled.binds
        self.binds: list[Processor] = [
            _bind_processor(binds[name].type, dialect) if name in binds else None
            for name in self.names
        ]
        columns = _returned_columns(statement)
        self.row: type | None = (
            namedtuple("Row", [name for name, _ in columns], rename=True)  # type: ignore[misc]
            if columns
            else None
        )
        self.results: list[Processor] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for _, column in columns
        ]
        if not any(self.results):
            self.results = []

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        given = {**self.defaults, **params} if self.defaults else params
        out = []
        for name, process in zip(self.names, self.binds, strict=True):
            value = given[name]
            out.append(value if process is None or value is None else process(value))
        return out

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[Any]:
        make = self.row
        if make is None:  # textual SQL: its columns are known only to the driver
            return [tuple(row) for row in raw]
        if self.results:
            processors = self.results
            return [
                make(*(v if p is None else p(v) for v, p in zip(row, processors, strict=True)))
                for row in raw
            ]
        return [make(*row) for row in raw]


def _bind_processor(type_: Any, dialect: Dialect) -> Processor:
    processor: Processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _returned_columns(statement: Any) -> list[tuple[str, Any]]:
    """The columns a SELECT selects or a DML statement RETURNs (none without RETURNING)."""
    columns = getattr(statement, "selected_columns", None)
    if columns is None:
        columns = getattr(statement, "exported_columns", ())
    return list(columns.items()) if columns else []


class Query:
    """A statement kept for the life of the process: compiled once per dialect and set of
    parameter names, the first time it runs. For the hot paths, and any statement whose
    values are all ``bindparam``s (or, for an INSERT, the parameters given)."""

    __slots__ = ("_compiled", "statement")

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], Compiled] = {}

    def compiled(self, dialect: Dialect, params: Mapping[str, Any]) -> Compiled:
        key = (dialect.name, frozenset(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = Compiled(self.statement, dialect, sorted(params))
        return compiled


Statement = Query | ClauseElement


def compiled_for(statement: Statement, dialect: Dialect, params: Mapping[str, Any]) -> Compiled:
    if isinstance(statement, Query):
        return statement.compiled(dialect, params)
    return Compiled(statement, dialect, sorted(params))
