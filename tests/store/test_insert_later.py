"""``Transaction.insert_later``: the inserts a unit queues are sent before its next statement
or its COMMIT (on PostgreSQL as one statement); nothing is lost, reordered or left behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import insert, select

from grantly.store import tables as t
from grantly.store.database import Database, open_database
from grantly.store.errors import Conflict
from grantly.store.sql import Query
from tests.conftest import ON_POSTGRESQL, World

_INSERT_COMPANY = Query(insert(t.companies))
_NAMES = Query(select(t.companies.c.name).where(t.companies.c.name.like("Later%")))


def _company(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "created_at": 0, **extra}


def _run(world: World, work: Callable[[Database, list[str]], Awaitable[Any]], **kw: Any) -> Any:
    """``work(db, statements)``: the statements sent (BEGIN, COMMIT and savepoints not
    counted) are appended to ``statements`` as they go."""

    async def main() -> Any:
        db = open_database(world.settings.database_url, **kw)
        statements: list[str] = []

        def count(sql: str) -> None:
            if sql.split(None, 1)[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
                statements.append(sql)

        db.observers.append(count)
        try:
            return await work(db, statements)
        finally:
            await db.close()

    return asyncio.run(main())


async def _stored(db: Database) -> set[str]:
    async with db.unit(write=False) as uow:
        return {row.name for row in await uow.tx.rows(_NAMES)}


def test_queued_inserts_are_sent_before_commit_in_one_statement_on_postgresql(
    world: World,
) -> None:
    async def work(db: Database, statements: list[str]) -> set[str]:
        async with db.unit() as uow:
            for name in ("Later A", "Later B", "Later C"):
                uow.tx.insert_later(_INSERT_COMPANY, _company(name))
            assert statements == []  # nothing sent yet: the line says "later"
        assert len(statements) == (1 if ON_POSTGRESQL else 3)
        return await _stored(db)

    assert _run(world, work) == {"Later A", "Later B", "Later C"}


def test_a_later_statement_of_the_unit_sees_the_queued_inserts(world: World) -> None:
    async def work(db: Database, _statements: list[str]) -> None:
        async with db.unit() as uow:
            uow.tx.insert_later(_INSERT_COMPANY, _company("Later seen"))
            assert [row.name for row in await uow.tx.rows(_NAMES)] == ["Later seen"]

    _run(world, work)


def test_a_rolled_back_unit_drops_its_queued_inserts(world: World) -> None:
    async def work(db: Database, _statements: list[str]) -> set[str]:
        with pytest.raises(RuntimeError):
            async with db.unit() as uow:
                uow.tx.insert_later(_INSERT_COMPANY, _company("Later dropped"))
                raise RuntimeError("the request failed")
        async with db.unit() as uow:
            uow.tx.insert_later(_INSERT_COMPANY, _company("Later kept"))
        return await _stored(db)

    assert _run(world, work) == {"Later kept"}


@pytest.mark.parametrize("sent_by", ["commit", "next statement"])
def test_a_failing_queued_insert_fails_the_unit_and_nothing_is_written(
    world: World, sent_by: str
) -> None:
    """...and the connection is clean for the next unit (a pool of one on PostgreSQL)."""

    async def work(db: Database, _statements: list[str]) -> set[str]:
        with pytest.raises(Conflict):
            async with db.unit() as uow:
                await uow.tx.execute(_INSERT_COMPANY, _company("Later first, at once"))
                uow.tx.insert_later(_INSERT_COMPANY, _company("Later fine"))
                # The primary key of an existing company: refused by the database.
                uow.tx.insert_later(_INSERT_COMPANY, _company("Later clash", id=world.company_a))
                if sent_by == "next statement":
                    await uow.tx.rows(_NAMES)
        assert await _stored(db) == set()
        async with db.unit() as uow:
            await uow.tx.execute(_INSERT_COMPANY, _company("Later next unit"))
        return await _stored(db)

    assert _run(world, work, pool_size=1) == {"Later next unit"}


def test_a_read_unit_refuses_to_queue_an_insert(world: World) -> None:
    """A read unit has no COMMIT that would send it."""

    async def work(db: Database, _statements: list[str]) -> None:
        async with db.unit(write=False) as uow:
            with pytest.raises(AssertionError):
                uow.tx.insert_later(_INSERT_COMPANY, _company("Later never"))

    _run(world, work)


def test_queued_inserts_sent_ahead_of_a_read_are_still_rolled_back_with_the_unit(
    world: World,
) -> None:
    """On PostgreSQL a unit that has only read opens no transaction; its queued inserts are
    its writes, so sending them ahead of a read opens it, and a failure drops them."""

    async def work(db: Database, _statements: list[str]) -> set[str]:
        with pytest.raises(RuntimeError):
            async with db.unit() as uow:
                uow.tx.insert_later(_INSERT_COMPANY, _company("Later read past"))
                assert [row.name for row in await uow.tx.rows(_NAMES)] == ["Later read past"]
                raise RuntimeError("the request failed after reading")
        return await _stored(db)

    assert _run(world, work) == set()
