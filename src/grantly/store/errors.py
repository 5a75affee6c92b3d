"""The store's own errors, and the one place where the drivers' errors become them.

Nothing outside ``store/`` sees a driver's exception for a fault of the database: a database
that cannot be reached, refuses us, or went away mid-request is ``Unavailable`` (answered 503
with ``Retry-After``), a write refused by a unique or foreign-key constraint is ``Conflict``, a
value the database cannot hold is ``InvalidValue`` (400). Anything else is a bug of Grantly's
(its SQL, its use of the driver, or a schema that is not the one it migrated) and stays what it
is: a 500 that is logged with its traceback.

The classification, by when the error happened:

- Opening a connection (the pool's acquire, its first connect): every error of the driver or
  the network is ``Unavailable``. Nothing of the request has run, and whatever the server's
  reason (the database dropped: 3D000; too many clients: 53300; the role may not log in or its
  password changed: 28000, 28P01; the server starting or shutting down: 57P03; a database that
  allows no connections: 55000; connect privilege revoked: 42501; refused, unreachable, timed
  out: ``OSError``, ``TimeoutError``), it is a fault of the database or of its operation.
- A statement: by SQLSTATE (``_UNAVAILABLE_CLASSES``, ``_UNAVAILABLE_STATES``); and whatever
  it raised, ``Unavailable`` when the connection is found closed afterwards (the server closed
  it under the statement).

The messages name the SQLSTATE and the driver's class (SQLite's: its result code and text),
never a value: a statement's parameters (token digests, emails) must not reach a log.
"""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg


class StoreError(Exception):
    """Something the store could not do, said in the store's terms."""


class Unavailable(StoreError):
    """The database cannot be reached, refused the connection, lost it mid-request, or cannot
    do the work now (a deadlock, a full disk). Nothing the unit of work did was committed
    (except when the connection went away during its COMMIT: then nobody can know).

    ``lost``: the connection it happened on is gone (closed, or never opened), so it must not
    serve another unit; a deadlock or a cancelled statement leaves it usable."""

    def __init__(self, message: str, *, lost: bool = False) -> None:
        super().__init__(message)
        self.lost = lost


class Conflict(StoreError):
    """A write broke a unique or foreign-key constraint (a row created concurrently, say);
    the unit of work was rolled back."""


class InvalidValue(StoreError):
    """A value the database cannot hold (an integer beyond its range, a NUL in a string):
    the request's input, not the database, is at fault."""


# SQLSTATE classes of a statement that mean "the database cannot do this for us now":
# 08 connection exception; 53 insufficient resources (disk full, out of memory, too many
# connections); 57 operator intervention (shutdown, restart, a cancelled or timed-out
# statement, the database dropped, an idle session ended); 40 transaction rollback (a deadlock
# or serialization failure: retrying later succeeds); 58 system error (an I/O error of the
# server); XX internal error (corrupted data or index: the database's fault, not the
# request's); F0 the server's configuration file; 28 and 3D (only ever at connect).
_UNAVAILABLE_CLASSES = frozenset(("08", "53", "57", "40", "58", "XX", "F0", "28", "3D"))
_UNAVAILABLE_STATES = frozenset(
    (
        "25006",  # a write sent to a server that became a read-only standby (a failover)
        "25P03",  # the server ended a transaction left idle too long (and its session)
        "25P04",  # transaction_timeout (PostgreSQL 17)
        "55P03",  # lock_not_available: lock_timeout expired
        "72000",  # snapshot too old
    )
)
# SQLSTATEs after which the connection is gone (the server closed the session).
_LOST_CLASSES = frozenset(("08",))
_LOST_STATES = frozenset(("57P01", "57P02", "57P03", "57P04", "57P05", "25P03"))

# SQLite's primary result codes (``sqlite_errorcode & 0xFF``) that are faults of the database
# file or its environment, not of the statement: BUSY, LOCKED, NOMEM, READONLY (a file the
# process may not write), INTERRUPT, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, SCHEMA (changed
# under the statement), NOTADB. SQLITE_ERROR (1: no such table, a syntax error), MISMATCH,
# MISUSE and RANGE are bugs; TOOBIG (18) is a value too large for it.
_SQLITE_UNAVAILABLE = frozenset((5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 17, 26))
_SQLITE_TOOBIG = 18

# The network and the driver: what can go wrong while a connection opens.
_CONNECTING_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    asyncio.TimeoutError,
)


def translated(error: BaseException, *, closed: bool = False) -> StoreError | None:
    """The store's error for a driver's raised by a statement, or None when it is not one of
    the store's cases (a bug). ``closed``: the statement's connection is closed now."""
    if isinstance(error, StoreError):
        return error
    if isinstance(error, sqlite3.Error):
        return _sqlite(error)
    if isinstance(error, OverflowError):  # sqlite3 binding an integer beyond 64 bits
        return InvalidValue("sqlite: an integer beyond 64 bits")
    if isinstance(error, asyncpg.PostgresError):
        state = getattr(error, "sqlstate", None) or ""
        name = f"postgresql {state}: {type(error).__name__}"
        lost = closed or state[:2] in _LOST_CLASSES or state in _LOST_STATES
        if state[:2] in _UNAVAILABLE_CLASSES or state in _UNAVAILABLE_STATES or lost:
            return Unavailable(name, lost=lost)
        if isinstance(error, asyncpg.IntegrityConstraintViolationError):  # class 23
            return Conflict(f"{name} ({getattr(error, 'constraint_name', None)})")
        if isinstance(error, asyncpg.InvalidCachedStatementError):
            # The schema changed under a prepared statement inside a transaction; asyncpg has
            # dropped its cache, so the next unit succeeds.
            return Unavailable(name)
        if state[:2] == "22" and not isinstance(error.__cause__, TypeError):
            # A data exception; asyncpg's own DataError (22000) when it cannot encode a value
            # (an integer beyond its type) -- unless the value is of the wrong Python type,
            # which is Grantly's bug, not the request's.
            return InvalidValue(name)
        return None
    if isinstance(error, TimeoutError):  # asyncpg's statement timeout cancels the statement
        return Unavailable(type(error).__name__, lost=closed)
    if isinstance(error, OSError | asyncpg.InternalClientError):
        # The socket failed under a statement, or asyncpg's protocol was left mid-operation by
        # the server's closing it (InternalClientError).
        return Unavailable(type(error).__name__, lost=True)
    if closed and isinstance(error, _CONNECTING_ERRORS):
        # asyncpg's "connection is closed" (InterfaceError), or a timeout that aborted it.
        return Unavailable(type(error).__name__, lost=True)
    # An InterfaceError on an open connection is a misuse of the driver: a bug.
    return None


def connecting(error: BaseException) -> StoreError | None:
    """The store's error for one raised while a connection was being opened or taken from
    the pool (see the module's docstring), or None for a bug of Grantly's (a TypeError, say)."""
    if isinstance(error, StoreError):
        return error
    if isinstance(error, _CONNECTING_ERRORS):
        state = getattr(error, "sqlstate", None)
        detail = f"postgresql {state}: " if state else ""
        return Unavailable(f"connecting: {detail}{type(error).__name__}", lost=True)
    return None


def _sqlite(error: sqlite3.Error) -> StoreError | None:
    if isinstance(error, sqlite3.IntegrityError):
        return Conflict(f"sqlite: {error}")  # "UNIQUE constraint failed: users.email"
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        # Not raised by SQLite itself: the module's own checks (a closed connection is a
        # ProgrammingError, a bug); an OperationalError without a code is the database's.
        return Unavailable(f"sqlite: {error}") if type(error) is sqlite3.OperationalError else None
    primary = code & 0xFF
    name = getattr(error, "sqlite_errorname", str(code))
    if primary in _SQLITE_UNAVAILABLE:
        return Unavailable(f"sqlite {name}: {error}")
    if primary == _SQLITE_TOOBIG:
        return InvalidValue(f"sqlite: {name}")
    return None


def is_dead_connection(error: BaseException) -> bool:
    """Whether the connection that raised ``error`` must not be used again."""
    if isinstance(error, Unavailable):
        return error.lost
    return isinstance(error, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError)
