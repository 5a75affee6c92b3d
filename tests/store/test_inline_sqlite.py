"""The SQLite driver's writer wait (``store/inline_sqlite.py``): a writer that finds another
process holding SQLite's write lock waits without blocking the event loop, gets the lock once
it is released, and gives up with SQLite's own error after ``WRITE_LOCK_TIMEOUT``."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from grantly.store import database
from grantly.store.database import create_engine, unit_of_work


def _database(tmp_path: Path) -> str:
    path = tmp_path / "w.db"
    other = sqlite3.connect(path)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("CREATE TABLE t (x INTEGER)")
    other.commit()
    other.close()
    return str(path)


def test_a_writer_waits_for_another_process_lock_while_the_loop_runs(tmp_path: Path) -> None:
    path = _database(tmp_path)
    holder = sqlite3.connect(path, isolation_level=None)  # another process, in effect
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> tuple[int, int]:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        async def write() -> None:
            async with unit_of_work(engine) as connection:
                await connection.execute(text("INSERT INTO t VALUES (1)"))

        ticking = asyncio.create_task(ticker())
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.2)
        assert not writing.done()  # still waiting for the lock
        during = ticks
        holder.execute("COMMIT")
        await asyncio.wait_for(writing, 5)
        ticking.cancel()
        rows = (await _count(engine))
        await engine.dispose()
        return during, rows

    during, rows = asyncio.run(main())
    holder.close()
    assert during >= 10, "the event loop was blocked while the writer waited"
    assert rows == 1


def test_a_writer_gives_up_after_the_timeout(tmp_path: Path, monkeypatch) -> None:
    path = _database(tmp_path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(database, "WRITE_LOCK_TIMEOUT", 0.1)

    async def main() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            with pytest.raises(OperationalError, match="locked"):
                async with unit_of_work(engine) as connection:
                    await connection.execute(text("INSERT INTO t VALUES (1)"))
            holder.execute("ROLLBACK")
            # The connection that gave up is usable again: nothing was left half-open.
            async with unit_of_work(engine) as connection:
                await connection.execute(text("INSERT INTO t VALUES (2)"))
            assert await _count(engine) == 1
        finally:
            await engine.dispose()

    asyncio.run(main())
    holder.close()


async def _count(engine) -> int:
    async with unit_of_work(engine, write=False) as connection:
        return int(await connection.scalar(text("SELECT count(*) FROM t")))
