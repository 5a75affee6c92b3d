"""The ``Database`` object: the drivers' errors become the store's, a dead connection is
replaced, reads see what was committed, and a long read leaves the event loop free."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from grantly.store import tables as t
from grantly.store.database import open_database
from grantly.store.errors import Conflict, Unavailable
from tests.conftest import ON_POSTGRESQL, World


def test_a_broken_unique_constraint_is_a_conflict_and_nothing_is_kept(world: World) -> None:
    async def main() -> int:
        db = open_database(world.settings.database_url)
        try:
            with pytest.raises(Conflict):
                async with db.unit() as uow:
                    await uow.tx.execute(insert(t.companies).values(name="Kept?", created_at=0))
                    await uow.tx.execute(
                        insert(t.users).values(
                            company_id=world.company_a,
                            email=world.admin.email,  # taken
                            name="x",
                            password_hash="x",
                            admin=False,
                            active=True,
                            created_at=0,
                        )
                    )
            async with db.unit(write=False) as uow:
                return int(
                    await uow.tx.scalar(
                        select(t.companies.c.id).where(t.companies.c.name == "Kept?").limit(1)
                    )
                    is not None
                )
        finally:
            await db.close()

    assert asyncio.run(main()) == 0


def test_a_read_unit_sees_what_a_write_unit_committed_at_once(world: World) -> None:
    async def main() -> list[str]:
        db = open_database(world.settings.database_url)
        try:
            seen = []
            for name in ("First", "Second"):
                async with db.unit() as uow:
                    await uow.accounts.create_company(name, 0)
                async with db.unit(write=False) as uow:
                    found = await uow.accounts.company_by_name(name)
                    seen.append(found.name if found else "")
            return seen
        finally:
            await db.close()

    assert asyncio.run(main()) == ["First", "Second"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket goes


@pytest.mark.parametrize("write", [True, False])
def test_a_database_that_cannot_be_reached_is_unavailable(tmp_path: Path, write: bool) -> None:
    url = (
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere"
        if ON_POSTGRESQL
        else f"sqlite:///{tmp_path}"  # a directory, not a database file
    )

    async def main() -> None:
        db = open_database(url)
        try:
            with pytest.raises(Unavailable):
                async with db.unit(write=write) as uow:
                    await uow.accounts.company(1)
            with pytest.raises(Unavailable):
                await db.ping()
        finally:
            await db.close()

    asyncio.run(main())


@pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL server process to terminate")
def test_a_connection_the_server_closed_is_unavailable_then_replaced(world: World) -> None:
    """Closed under an open transaction: ``Unavailable``, nothing of the unit committed, and
    the next unit is served on a new connection."""

    async def main() -> tuple[str | None, object]:
        db = open_database(world.settings.database_url, pool_size=1)
        try:
            with pytest.raises(Unavailable) as raised:
                async with db.unit() as uow:
                    pid = await uow.tx.scalar(text("SELECT pg_backend_pid()"))
                    await uow.accounts.create_company("Lost", 0)  # the transaction is open
                    async with db_admin(world) as admin:
                        await admin.execute("SELECT pg_terminate_backend($1)", pid)
                    await uow.accounts.company(world.company_a)
            assert raised.value.lost
            # The pool's one connection was discarded; the next unit gets a new one.
            async with db.unit(write=False) as uow:
                company = await uow.accounts.company(world.company_a)
                lost = await uow.accounts.company_by_name("Lost")
                return (company.name if company else None), lost
        finally:
            await db.close()

    assert asyncio.run(main()) == ("Acme", None)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL server process to terminate")
def test_a_read_unit_whose_connection_the_server_closed_goes_on_on_a_new_one(
    world: World,
) -> None:
    """Closed between two statements of a unit with no transaction open (a read unit, or a
    writing one before its first write): nothing was sent on the dead connection and nothing
    is lost with it, so the statement goes on a new connection; the unit is served."""

    async def main() -> tuple[int, int, str | None]:
        db = open_database(world.settings.database_url, pool_size=1)
        try:
            async with db.unit() as uow:
                pid = int(await uow.tx.scalar(_PID))
                async with db_admin(world) as admin:
                    await admin.execute("SELECT pg_terminate_backend($1)", pid)
                    while await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
                    ):
                        await asyncio.sleep(0.01)
                after = int(await uow.tx.scalar(_PID))
                await uow.accounts.create_company("Written", 0)
            async with db.unit(write=False) as uow:
                written = await uow.accounts.company_by_name("Written")
            return pid, after, written.name if written else None
        finally:
            await db.close()

    pid, after, written = asyncio.run(main())
    assert after != pid
    assert written == "Written"


@pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL server process to terminate")
def test_a_kept_connection_terminated_a_moment_ago_does_not_fail_the_next_unit(
    world: World,
) -> None:
    """The next unit starts the moment PostgreSQL has let go of the session, before the
    socket's end has reached the client: asyncpg has read the server's farewell (57P01), so it
    refuses the statement before sending it, and the unit goes on on a new connection. Twenty
    times, for the timing varies."""

    async def main() -> list[str]:
        db = open_database(world.settings.database_url, pool_size=1)
        failures = []
        try:
            async with db_admin(world) as admin:
                for _ in range(20):
                    async with db.unit(write=False) as uow:
                        pid = int(await uow.tx.scalar(_PID))
                    await admin.execute("SELECT pg_terminate_backend($1)", pid)
                    while await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
                    ):
                        pass
                    try:
                        async with db.unit() as uow:
                            await uow.accounts.company(world.company_a)
                    except Unavailable as error:
                        failures.append(str(error))
        finally:
            await db.close()
        return failures

    assert asyncio.run(main()) == []


def db_admin(world: World):  # type: ignore[no-untyped-def]
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(world.settings.database_url).set(drivername="postgresql")

    class _Admin:
        async def __aenter__(self) -> asyncpg.Connection:
            self.connection = await asyncpg.connect(url.render_as_string(hide_password=False))
            return self.connection

        async def __aexit__(self, *_exc: object) -> None:
            await self.connection.close()

    return _Admin()


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite runs statements in the event loop's thread")
def test_a_long_read_leaves_the_event_loop_serving(world: World) -> None:
    """A scan in ``long_read`` runs in a worker thread: other tasks of the loop run meanwhile
    (in the loop's thread they could not run before it returned)."""
    scan = text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
        "SELECT count(*) FROM n"
    )

    async def main() -> tuple[int, int]:
        db = open_database(world.settings.database_url)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            await asyncio.sleep(0)
            before = ticks
            async with db.long_read() as uow:
                total = int(await uow.tx.scalar(scan))
            return total, ticks - before
        finally:
            task.cancel()
            await db.close()

    total, ticks_during = asyncio.run(main())
    assert total == 3_000_000
    assert ticks_during > 10


@pytest.mark.parametrize("value", [2**63, "a\x00b"])
def test_a_value_the_database_cannot_hold_is_an_invalid_value(world: World, value: object) -> None:
    """An integer beyond the column's range, a NUL character (PostgreSQL): the request's
    fault, answered 400, not a 500 nor the 503 of an unavailable database."""
    from sqlalchemy import Integer, String, bindparam, literal_column

    from grantly.store.errors import InvalidValue

    kind = Integer() if isinstance(value, int) else String()
    query = select(literal_column("1")).where(
        bindparam("v", type_=kind) == bindparam("v", type_=kind)
    )

    async def main() -> None:
        db = open_database(world.settings.database_url)
        try:
            async with db.unit(write=False) as uow:
                await uow.tx.first(query, {"v": value})
        finally:
            await db.close()

    if not ON_POSTGRESQL and isinstance(value, str):
        asyncio.run(main())  # SQLite stores a NUL inside a string as it is
        return
    with pytest.raises(InvalidValue):
        asyncio.run(main())


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite keeps no pool")
def test_a_unit_waiting_for_the_pool_gets_the_connection_another_unit_leaves(
    world: World,
) -> None:
    """Connections are kept for the next unit, but never while a unit waits in the pool for
    one: with a pool of one, the second of two concurrent units gets the first's."""

    async def main() -> list[str]:
        db = open_database(world.settings.database_url, pool_size=1)
        seen: list[str] = []

        async def read(name: str) -> None:
            async with db.unit(write=False) as uow:
                company = await uow.accounts.company(world.company_a)
                await asyncio.sleep(0.05)  # the other unit queues in the pool meanwhile
                seen.append(f"{name}:{company.name if company else None}")

        try:
            await asyncio.wait_for(asyncio.gather(read("first"), read("second")), 10)
            await asyncio.wait_for(read("third"), 10)  # and the kept one serves the next
        finally:
            await db.close()
        return seen

    assert asyncio.run(main()) == ["first:Acme", "second:Acme", "third:Acme"]


# --- faults of the database: what each is, and what is left after it ---------------------

_OTHERS = "datname = current_database() AND pid <> pg_backend_pid()"


async def _terminate_backends(world: World) -> None:
    """End every session of the world's database but the admin's own, and wait until
    PostgreSQL has closed them (``pg_terminate_backend`` only signals)."""
    async with db_admin(world) as admin:
        await admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {_OTHERS}"
        )
        for _ in range(250):
            if not await admin.fetchval(f"SELECT count(*) FROM pg_stat_activity WHERE {_OTHERS}"):
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the backends did not end")


_PID = text("SELECT pg_backend_pid()")


@pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL server's sessions to terminate")
def test_kept_connections_the_server_closed_are_replaced_without_failing_a_unit(
    world: World,
) -> None:
    """The pool's connections (the kept idle ones, those asyncpg holds) all terminated while
    idle: the very next units are served, on new connections, and the pool keeps its size."""

    async def main() -> tuple[set[int], set[int]]:
        db = open_database(world.settings.database_url, pool_size=3, acquire_timeout=5)

        async def pid(hold: float) -> int:
            async with db.unit(write=False) as uow:
                found = int(await uow.tx.scalar(_PID))
                await asyncio.sleep(hold)  # the others open connections of their own meanwhile
                return found

        try:
            before = set(await asyncio.gather(*(pid(0.1) for _ in range(3))))
            await _terminate_backends(world)
            await pid(0)  # the first unit after it
            after = set(await asyncio.gather(*(pid(0.1) for _ in range(3))))
            return before, after
        finally:
            await db.close()

    before, after = asyncio.run(main())
    assert len(before) == 3
    assert len(after) == 3  # three at once: no place of the pool was lost
    assert not before & after


@pytest.mark.skipif(not ON_POSTGRESQL, reason="a PostgreSQL server's sessions to terminate")
def test_a_connection_lost_under_a_unit_takes_the_idle_ones_with_it(world: World) -> None:
    """The server closed the connection under an open transaction: ``Unavailable``, and the
    idle connections kept beside it are not handed out again (they went with it)."""

    async def main() -> tuple[int, int, int]:
        db = open_database(world.settings.database_url, pool_size=2)
        try:

            async def hold() -> int:
                async with db.unit(write=False) as uow:
                    found = int(await uow.tx.scalar(_PID))
                    await asyncio.sleep(0.1)
                    return found

            first, second = await asyncio.gather(hold(), hold())  # two kept connections
            with pytest.raises(Unavailable) as raised:
                async with db.unit() as uow:
                    mine = int(await uow.tx.scalar(_PID))
                    await uow.accounts.create_company("Lost", 0)  # the transaction is open
                    async with db_admin(world) as admin:
                        await admin.execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    await uow.accounts.company(world.company_a)
            assert raised.value.lost
            async with db.unit(write=False) as uow:
                return mine, int(await uow.tx.scalar(_PID)), len({first, second})
        finally:
            await db.close()

    mine, next_pid, kept = asyncio.run(main())
    assert kept == 2
    assert next_pid != mine


@pytest.mark.skipif(not ON_POSTGRESQL, reason="SQLite keeps no pool")
def test_a_unit_that_waits_longer_than_the_acquire_timeout_is_unavailable(world: World) -> None:
    """Every connection of the pool taken for longer than the acquire timeout: the waiting
    unit is ``Unavailable`` (a 503) instead of waiting for ever."""

    async def main() -> float:
        db = open_database(world.settings.database_url, pool_size=1, acquire_timeout=0.3)
        taken = asyncio.Event()

        async def hold() -> None:
            async with db.unit(write=False) as uow:
                await uow.tx.scalar(_PID)
                taken.set()
                await asyncio.sleep(1.5)

        try:
            holder = asyncio.create_task(hold())
            await taken.wait()
            started = time.monotonic()
            with pytest.raises(Unavailable):
                async with db.unit(write=False) as uow:
                    await uow.tx.scalar(_PID)
            waited = time.monotonic() - started
            await holder
            async with db.unit(write=False) as uow:  # the pool serves again once it is free
                await uow.tx.scalar(_PID)
            return waited
        finally:
            await db.close()

    assert 0.2 < asyncio.run(main()) < 1.2


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's connect")
@pytest.mark.parametrize("write", [True, False])
def test_a_server_that_accepts_but_never_answers_is_unavailable_after_the_connect_timeout(
    write: bool,
) -> None:
    """A listener on the loopback that accepts the connection and never answers (a hung
    server, a black-holed network): ``Unavailable`` once the connect timeout is over."""

    async def main() -> float:
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)  # the kernel completes the handshake; nobody ever reads
            port = silent.getsockname()[1]
            db = open_database(
                f"postgresql://postgres@127.0.0.1:{port}/silent", connect_timeout=0.3
            )
            started = time.monotonic()
            try:
                with pytest.raises(Unavailable):
                    async with db.unit(write=write) as uow:
                        await uow.accounts.company(1)
                return time.monotonic() - started
            finally:
                await db.close()

    assert asyncio.run(main()) < 3


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's roles and databases")
@pytest.mark.parametrize("fault", ["no database", "no login", "no connect privilege"])
def test_a_connection_the_server_refuses_is_unavailable(world: World, fault: str) -> None:
    """What PostgreSQL refuses at connect (3D000 the database does not exist, 28000 the role
    may not log in, 42501 it may not connect to this database) is ``Unavailable``, whatever
    the SQLSTATE's class, and its message names the SQLSTATE (for the log), no more."""
    import uuid

    from sqlalchemy.engine import make_url

    role = f"grantly_refused_{uuid.uuid4().hex[:8]}"
    database = str(make_url(world.settings.database_url).database)
    setup = {
        "no database": [],
        "no login": [f"CREATE ROLE {role} NOLOGIN"],
        "no connect privilege": [
            f"CREATE ROLE {role} LOGIN",
            f'REVOKE CONNECT ON DATABASE "{database}" FROM PUBLIC',
        ],
    }[fault]
    url = make_url(world.settings.database_url)
    url = (
        url.set(database=f"{database}_dropped")
        if fault == "no database"
        else url.set(username=role)
    )

    async def main() -> str:
        async with db_admin(world) as admin:
            for statement in setup:
                await admin.execute(statement)
        db = open_database(url.render_as_string(hide_password=False))
        try:
            with pytest.raises(Unavailable) as raised:
                async with db.unit(write=False) as uow:
                    await uow.accounts.company(1)
            with pytest.raises(Unavailable):
                await db.ping()
            return str(raised.value)
        finally:
            await db.close()
            async with db_admin(world) as admin:
                await admin.execute(f"DROP ROLE IF EXISTS {role}")

    message = asyncio.run(main())
    expected = {"no database": "3D000", "no login": "28000", "no connect privilege": "42501"}
    assert expected[fault] in message
    assert role not in message and "database" not in message.lower()


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's statement_timeout")
def test_a_statement_the_server_cancelled_is_unavailable_and_its_connection_kept(
    world: World,
) -> None:
    """A statement cancelled by the server (statement_timeout, 57014) or refused for a lock
    (lock_timeout, 55P03): ``Unavailable``, but the connection is not lost: the next unit is
    served on the same one."""

    async def main() -> tuple[int, list[bool], int]:
        db = open_database(world.settings.database_url, pool_size=1)
        try:
            lost = []
            for timeout, statement in (
                ("statement_timeout", text("SELECT pg_sleep(2)")),
                ("lock_timeout", text("LOCK TABLE companies IN ACCESS EXCLUSIVE MODE")),
            ):
                async with db_admin(world) as admin, admin.transaction():
                    await admin.execute("LOCK TABLE companies IN ACCESS SHARE MODE")
                    with pytest.raises(Unavailable) as raised:
                        async with db.unit() as uow:
                            first = int(await uow.tx.scalar(_PID))
                            await uow.tx.execute(text(f"SET LOCAL {timeout} = '50ms'"))
                            await uow.tx.execute(statement)
                    lost.append(raised.value.lost)
            async with db.unit(write=False) as uow:
                return first, lost, int(await uow.tx.scalar(_PID))
        finally:
            await db.close()

    first, lost, after = asyncio.run(main())
    assert lost == [False, False]
    assert after == first


@pytest.mark.skipif(not ON_POSTGRESQL, reason="asyncpg's errors")
def test_a_bug_in_a_statement_stays_a_bug_and_the_connection_serves_on(world: World) -> None:
    """SQL the schema does not have (42P01) is Grantly's bug (or a database it did not
    migrate): the driver's error, a 500 that is logged, not a 503; the connection is kept."""
    import asyncpg

    async def main() -> tuple[int, int]:
        db = open_database(world.settings.database_url, pool_size=1)
        try:
            with pytest.raises(asyncpg.UndefinedTableError):
                async with db.unit(write=False) as uow:
                    first = int(await uow.tx.scalar(_PID))
                    await uow.tx.scalar(text("SELECT 1 FROM no_such_table"))
            async with db.unit(write=False) as uow:
                return first, int(await uow.tx.scalar(_PID))
        finally:
            await db.close()

    first, after = asyncio.run(main())
    assert after == first


@pytest.mark.skipif(ON_POSTGRESQL, reason="SQLite's files")
def test_sqlite_a_file_that_is_not_a_database_is_unavailable_a_missing_table_a_bug(
    tmp_path: Path,
) -> None:
    import sqlite3

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database file, only some bytes" * 100)
    empty = tmp_path / "empty.db"

    async def main() -> None:
        db = open_database(f"sqlite:///{garbage}")
        try:
            with pytest.raises(Unavailable, match="not a database"):
                async with db.unit(write=False) as uow:
                    await uow.accounts.company(1)
            with pytest.raises(Unavailable):
                async with db.unit() as uow:
                    await uow.accounts.create_company("x", 0)
        finally:
            await db.close()
        db = open_database(f"sqlite:///{empty}")
        try:
            with pytest.raises(sqlite3.OperationalError, match="no such table"):
                async with db.unit(write=False) as uow:
                    await uow.accounts.company(1)
        finally:
            await db.close()

    asyncio.run(main())


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL's read-only transactions")
def test_a_server_that_takes_no_writes_fails_the_ping_and_the_writes_not_the_reads(
    world: World,
) -> None:
    """As on a standby after a failover (here ``default_transaction_read_only``): a write is
    ``Unavailable`` (25006), and so is the ping behind /readyz, which must not call ready a
    process whose every token request would get a 503; reads are served."""
    from sqlalchemy.engine import make_url

    database = make_url(world.settings.database_url).database

    async def main() -> str | None:
        async with db_admin(world) as admin:
            await admin.execute(
                f'ALTER DATABASE "{database}" SET default_transaction_read_only = on'
            )
        db = open_database(world.settings.database_url)
        try:
            with pytest.raises(Unavailable, match="25006"):
                async with db.unit() as uow:
                    await uow.accounts.create_company("Written?", 0)
            with pytest.raises(Unavailable):
                await db.ping()
            async with db.unit(write=False) as uow:
                company = await uow.accounts.company(world.company_a)
        finally:
            await db.close()
        async with db_admin(world) as admin:
            await admin.execute("SET default_transaction_read_only = off")  # this session's
            await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        db = open_database(world.settings.database_url)
        try:
            await db.ping()
        finally:
            await db.close()
        return company.name if company else None

    assert asyncio.run(main()) == "Acme"
