"""Read units keep their connection checked out for the next read unit (``store/database.py``,
``_read_unit``): only a connection left clean is kept, a kept one still sees every commit made
since, and none is left behind when the engine is disposed (both backends)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from grantly.store import database
from grantly.store import tables as t
from grantly.store.database import create_engine, dispose, read_engine, unit_of_work
from grantly.store.prepared import Prepared
from grantly.store.repositories import Accounts
from tests.conftest import World

# As the hot reads run: at the driver level, so SQLAlchemy begins no transaction of its own.
_COMPANY_NAMES = Prepared(select(t.companies.c.name))


def _with_engine(world: World, work: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        engine = create_engine(world.settings.async_database_url)
        try:
            return await work(engine)
        finally:
            await dispose(engine)

    return asyncio.run(main())


def _checked_out(engine: AsyncEngine) -> int:
    return read_engine(engine).sync_engine.pool.checkedout()  # type: ignore[attr-defined]


def test_a_read_unit_reuses_the_connection_the_previous_one_left(world: World) -> None:
    async def work(engine: AsyncEngine) -> None:
        async with unit_of_work(engine, write=False) as first:
            pass
        async with unit_of_work(engine, write=False) as second:
            assert second is first
        assert _checked_out(engine) == 1  # kept for the next read unit, not a second one
        await dispose(engine)
        assert _checked_out(engine) == 0

    _with_engine(world, work)


def test_a_kept_read_connection_sees_what_was_committed_since(world: World) -> None:
    """A revoked token must read as revoked on the very next request: the kept connection is
    in autocommit, with no snapshot of its own."""

    used = []

    async def work(engine: AsyncEngine) -> None:
        async def names() -> set[str]:
            async with unit_of_work(engine, write=False) as connection:
                used.append(connection)
                return {row.name for row in await _COMPANY_NAMES.all(connection, {})}

        before = await names()
        async with unit_of_work(engine) as connection:
            await Accounts(connection).create_company("Committed in between", 0)
        after = await names()
        assert used[0] is used[1]  # the kept connection
        assert after - before == {"Committed in between"}

    _with_engine(world, work)


def test_a_unit_that_raised_gives_its_connection_back_to_the_pool(world: World) -> None:
    async def work(engine: AsyncEngine) -> None:
        with pytest.raises(RuntimeError):
            async with unit_of_work(engine, write=False) as connection:
                raise RuntimeError("cut short")
        assert database._idle[engine.sync_engine] == []
        assert _checked_out(engine) == 0
        async with unit_of_work(engine, write=False) as again:
            assert again is not connection

    _with_engine(world, work)


def test_a_unit_that_began_a_sqlalchemy_transaction_is_not_kept(world: World) -> None:
    async def work(engine: AsyncEngine) -> None:
        async with unit_of_work(engine, write=False) as connection:
            await connection.execute(select(1))  # SQLAlchemy begins its own transaction
            assert connection.in_transaction()
        assert database._idle[engine.sync_engine] == []
        assert _checked_out(engine) == 0

    _with_engine(world, work)


def test_an_invalidated_connection_takes_the_waiting_ones_back_to_the_pool(world: World) -> None:
    async def work(engine: AsyncEngine) -> None:
        async def hold(ready: asyncio.Event, release: asyncio.Event) -> None:
            async with unit_of_work(engine, write=False):
                ready.set()
                await release.wait()

        # Two connections waiting for the next read unit.
        events = [(asyncio.Event(), asyncio.Event()) for _ in range(2)]
        tasks = [asyncio.create_task(hold(*pair)) for pair in events]
        for ready, _ in events:
            await ready.wait()
        for _, release in events:
            release.set()
        await asyncio.gather(*tasks)
        assert len(database._idle[engine.sync_engine]) == 2
        async with unit_of_work(engine, write=False) as connection:
            await connection.invalidate()  # as SQLAlchemy does when the database went away
        assert database._idle[engine.sync_engine] == []
        assert _checked_out(engine) == 0

    _with_engine(world, work)


def test_disposing_the_engine_directly_drops_the_kept_connections(world: World) -> None:
    async def main() -> None:
        engine = create_engine(world.settings.async_database_url)
        async with unit_of_work(engine, write=False):
            pass
        assert _checked_out(engine) == 1
        await engine.dispose()
        assert database._idle[engine.sync_engine] == []
        assert _checked_out(engine) == 0

    asyncio.run(main())
