"""The store's own errors, and the one place where the drivers' errors become them.

Nothing outside ``store/`` sees a driver's exception: a database that cannot be reached (or
went away mid-request) is ``Unavailable`` (answered 503 with ``Retry-After``), a write refused
by a unique or foreign-key constraint is ``Conflict``. Anything else is a bug and stays what
it is (a 500 that is logged).
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg


class StoreError(Exception):
    """Something the store could not do, said in the store's terms."""


class Unavailable(StoreError):
    """The database cannot be reached, refused the connection, or lost it mid-request.
    Nothing the unit of work did was committed."""


class Conflict(StoreError):
    """A write broke a unique or foreign-key constraint (a row created concurrently, say);
    the unit of work was rolled back."""


class InvalidValue(StoreError):
    """A value the database cannot hold (an integer beyond its range, a NUL in a string):
    the request's input, not the database, is at fault."""


# SQLSTATE classes that mean "the database is not there for us right now": 08 connection
# exception, 53 insufficient resources (too many connections), 57 operator intervention
# (shutdown, restart, cancelled), 3D invalid catalog name (the database was dropped), 40
# transaction rollback (a deadlock or serialization failure: retrying later succeeds).
_UNAVAILABLE_CLASSES = ("08", "53", "57", "3D", "40")
# 25006: a write sent to a server that became a read-only standby (a failover under way).
_UNAVAILABLE_STATES = ("25006",)


def translated(error: BaseException) -> StoreError | None:
    """The store's error for a driver's, or None when it is not one of the store's cases."""
    if isinstance(error, StoreError):
        return error
    if isinstance(error, sqlite3.IntegrityError):
        return Conflict(str(error))
    if isinstance(error, OverflowError):  # sqlite3 binding an integer beyond 64 bits
        return InvalidValue(str(error))
    if isinstance(error, sqlite3.OperationalError):
        # "database is locked" after the wait, "unable to open database file", "disk I/O
        # error", a file replaced under the process: the database is not usable now.
        return Unavailable(f"sqlite: {error}")
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return Conflict(str(error))
    if isinstance(error, asyncpg.PostgresError):
        state = getattr(error, "sqlstate", None) or ""
        if state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES:
            return Unavailable(f"postgresql {state}: {type(error).__name__}")
        if state[:2] == "22":  # data exception
            return InvalidValue(f"postgresql {state}: {type(error).__name__}")
        return None
    if isinstance(
        error,
        asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | ConnectionError
        | OSError
        | asyncio.TimeoutError,
    ):
        # The connection closed under a statement (the server's termination can leave the
        # protocol mid-operation: InternalClientError), or could not be opened at all.
        return Unavailable(type(error).__name__)
    return None


def is_dead_connection(error: BaseException) -> bool:
    """Whether the connection that raised ``error`` must not be used again."""
    return isinstance(
        error,
        Unavailable | asyncpg.InterfaceError | asyncpg.InternalClientError | OSError,
    )
