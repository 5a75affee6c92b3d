"""Deferred inserts (``store/prepared.py``, ``Prepared.defer``): on PostgreSQL a unit's last
inserts go in one statement, sent before its next statement or its COMMIT; nothing is lost,
reordered or left behind. SQLite (and any connection outside a write transaction) inserts at
once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from grantly.store import tables as t
from grantly.store.database import create_engine, dispose, unit_of_work
from grantly.store.prepared import Prepared
from tests.conftest import ON_POSTGRESQL, World

_INSERT_COMPANY = Prepared(insert(t.companies))
_NAMES = Prepared(select(t.companies.c.name).where(t.companies.c.name.like("Deferred%")))


def _company(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "created_at": 0, **extra}


def _run(world: World, work: Callable[[AsyncEngine, list[str]], Awaitable[Any]]) -> Any:
    """``work(engine, statements)``: the statements the engine sends (BEGIN and COMMIT not
    counted) are appended to ``statements`` as they go."""

    async def main() -> Any:
        engine = create_engine(world.settings.async_database_url)
        statements: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if statement.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
                statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            return await work(engine, statements)
        finally:
            await dispose(engine)

    return asyncio.run(main())


async def _stored(engine: AsyncEngine) -> set[str]:
    async with unit_of_work(engine, write=False) as connection:
        return {row.name for row in await _NAMES.all(connection, {})}


def test_deferred_inserts_go_in_one_statement_at_commit(world: World) -> None:
    async def work(engine: AsyncEngine, statements: list[str]) -> set[str]:
        async with unit_of_work(engine) as connection:
            for name in ("Deferred A", "Deferred B", "Deferred C"):
                await _INSERT_COMPANY.defer(connection, _company(name))
            sent_before_commit = len(statements)
        assert sent_before_commit == (3 if not ON_POSTGRESQL else 0)
        assert len(statements) == (3 if not ON_POSTGRESQL else 1)
        return await _stored(engine)

    assert _run(world, work) == {"Deferred A", "Deferred B", "Deferred C"}


@pytest.mark.parametrize("through", ["sqlalchemy", "prepared"])
def test_a_later_statement_of_the_unit_sees_the_deferred_inserts(
    world: World, through: str
) -> None:
    async def work(engine: AsyncEngine, _statements: list[str]) -> None:
        async with unit_of_work(engine) as connection:
            await _INSERT_COMPANY.defer(connection, _company("Deferred seen"))
            if through == "sqlalchemy":
                query = select(t.companies.c.name).where(t.companies.c.name == "Deferred seen")
                seen = (await connection.execute(query)).scalars().all()
            else:
                seen = [row.name for row in await _NAMES.all(connection, {})]
            assert seen == ["Deferred seen"]

    _run(world, work)


def test_a_rolled_back_unit_drops_its_deferred_inserts(world: World) -> None:
    async def work(engine: AsyncEngine, _statements: list[str]) -> set[str]:
        with pytest.raises(RuntimeError):
            async with unit_of_work(engine) as connection:
                await _INSERT_COMPANY.defer(connection, _company("Deferred dropped"))
                raise RuntimeError("the request failed")
        # The same connection, a transaction after a rollback: only its own insert is sent.
        async with engine.connect() as connection:
            await connection.begin()
            await _INSERT_COMPANY.defer(connection, _company("Deferred dropped too"))
            await connection.rollback()
            await connection.begin()
            await _INSERT_COMPANY.defer(connection, _company("Deferred kept"))
            await connection.commit()
        return await _stored(engine)

    assert _run(world, work) == {"Deferred kept"}


@pytest.mark.parametrize("committed_by", ["unit_of_work", "sqlalchemy", "next statement"])
def test_a_failing_deferred_insert_fails_the_commit_and_nothing_is_written(
    world: World, committed_by: str
) -> None:
    """...and the connection goes back to the pool clean: the next unit of work, on the same
    connection (a pool of one), writes and commits."""

    async def failing(connection: AsyncConnection) -> None:
        await _INSERT_COMPANY.rowcount(connection, _company("Deferred first, at once"))
        await _INSERT_COMPANY.defer(connection, _company("Deferred fine"))
        # The primary key of an existing company: refused by the database.
        await _INSERT_COMPANY.defer(connection, _company("Deferred clash", id=world.company_a))

    async def main() -> set[str]:
        engine = create_engine(world.settings.async_database_url, pool_size=1)
        try:
            with pytest.raises(IntegrityError):
                if committed_by == "unit_of_work":
                    async with unit_of_work(engine) as connection:
                        await failing(connection)
                elif committed_by == "next statement":  # sent first, and refused there
                    async with unit_of_work(engine) as connection:
                        await failing(connection)
                        await connection.execute(select(t.companies.c.id))
                else:  # the commit hook sends them (any commit, not only a unit of work's)
                    async with engine.connect() as connection:
                        await connection.begin()
                        await failing(connection)
                        await connection.commit()
            assert await _stored(engine) == set()
            async with unit_of_work(engine) as connection:
                await _INSERT_COMPANY.rowcount(connection, _company("Deferred next unit"))
            return await _stored(engine)
        finally:
            await dispose(engine)

    assert asyncio.run(main()) == {"Deferred next unit"}


def test_on_a_read_connection_a_deferred_insert_runs_at_once(world: World) -> None:
    """A read unit is in autocommit: no COMMIT would ever send a deferred insert."""

    async def work(engine: AsyncEngine, statements: list[str]) -> set[str]:
        async with unit_of_work(engine, write=False) as connection:
            await _INSERT_COMPANY.defer(connection, _company("Deferred at once"))
        return await _stored(engine)

    assert _run(world, work) == {"Deferred at once"}
