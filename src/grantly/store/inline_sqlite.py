"""SQLite for SQLAlchemy's asyncio engine, without a thread per connection.

SQLAlchemy's ``sqlite+aiosqlite`` dialect drives aiosqlite, which runs every call of every
connection (cursor, execute, fetch, close, commit) in a thread of its own and wakes the event loop
when it is done. A statement against an indexed SQLite table takes microseconds; the two thread
handoffs around it took about 150 us each, some forty times per request (profiled in issue 6),
so most of a request's time went to handoffs. This module has aiosqlite's interface, the part
SQLAlchemy's dialect uses, and runs each call at once in the event loop's thread: it is passed
to the same dialect as its ``module``.

The SQLite call that waits in practice is taking the write lock while another process holds
it: ``begin_immediate`` tries it with no busy timeout and retries after ``asyncio.sleep``, so the
loop serves other requests meanwhile. Other calls keep a busy timeout (``BUSY_TIMEOUT_MS``) for
the rare waits left: switching a new database to WAL, and recovery after a crash; readers of a
WAL database never wait otherwise.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable
from sqlite3 import (
    DatabaseError,
    Error,
    IntegrityError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    sqlite_version,
    sqlite_version_info,
)
from types import SimpleNamespace
from typing import Any

from sqlalchemy.util import await_only

__all__ = [
    "Connection",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "begin_immediate",
    "connect",
    "sqlite_version",
    "sqlite_version_info",
]


BUSY_TIMEOUT_MS = 5000


class Cursor:
    """aiosqlite's ``Cursor``, run inline."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Iterable[Any] = ()) -> Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: SQLAlchemy's isolation-level setter puts
    ``(future, function)`` on it; the function runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except Exception as error:
            if future is not None:
                future.set_exception(error)
        else:
            if future is not None:
                future.set_result(result)


class Connection:
    """aiosqlite's ``Connection``, run inline."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _RunNow()

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value

    def cursor(self) -> Cursor:
        return Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Iterable[Any] = ()) -> Cursor:
        return Cursor(self._conn.execute(sql, parameters))

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """aiosqlite's forced close (SQLAlchemy's ``terminate``)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


class _Connecting:
    """What ``connect`` returns: awaitable, with the ``_thread`` SQLAlchemy marks as daemon."""

    def __init__(self, database: str, kwargs: dict[str, Any]) -> None:
        self._thread = SimpleNamespace(daemon=True)
        self._database = database
        self._kwargs = kwargs

    def __await__(self) -> Generator[Any, None, Connection]:
        kwargs = {**self._kwargs, "timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        return Connection(sqlite3.connect(self._database, **kwargs))
        yield  # a generator that never suspends


def connect(database: str, **kwargs: Any) -> _Connecting:
    return _Connecting(database, kwargs)


def begin_immediate(connection: sqlite3.Connection, timeout: float) -> None:
    """``BEGIN IMMEDIATE``, waiting for another process's write lock without blocking the
    event loop: each refused attempt yields with ``asyncio.sleep`` (through SQLAlchemy's greenlet
    bridge, as this runs inside its synchronous event hooks). Gives up after ``timeout``
    seconds with SQLite's own "database is locked"."""
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
            await_only(asyncio.sleep(pause))
            # At most a millisecond between attempts: a busy process leaves the lock free only
            # for a moment between its transactions (``database._Group``'s hand-off pause).
            pause = min(pause * 2, 0.001)
    finally:
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
