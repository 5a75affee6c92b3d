"""The ``Database`` object: the drivers' errors become the store's, a dead connection is
replaced, reads see what was committed, and a long read leaves the event loop free."""

from __future__ import annotations

import asyncio
import socket
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
    async def main() -> str | None:
        db = open_database(world.settings.database_url, pool_size=1)
        try:
            with pytest.raises(Unavailable):
                async with db.unit() as uow:
                    pid = await uow.tx.scalar(text("SELECT pg_backend_pid()"))
                    async with db_admin(world) as admin:
                        await admin.execute("SELECT pg_terminate_backend($1)", pid)
                    await uow.accounts.company(world.company_a)
            # The pool's one connection was discarded; the next unit gets a new one.
            async with db.unit(write=False) as uow:
                company = await uow.accounts.company(world.company_a)
                return company.name if company else None
        finally:
            await db.close()

    assert asyncio.run(main()) == "Acme"


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
