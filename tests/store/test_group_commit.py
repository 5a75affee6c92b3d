"""SQLite's group commit (``store/database.py``, ``_WriterGroup``): the writers of one process that
queue while one runs share its transaction, each in a savepoint of its own; one COMMIT covers
them, and none of them returns before that commit is done."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from grantly.store import database
from grantly.store.database import Database, open_database
from grantly.store.errors import Conflict


def _database(tmp_path: Path) -> str:
    path = tmp_path / "g.db"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    setup.execute("CREATE TABLE t (x INTEGER, parent_id INTEGER REFERENCES parent (id))")
    setup.execute("INSERT INTO parent VALUES (1)")
    setup.commit()
    setup.close()
    return str(path)


def _stored(path: str) -> list[int]:
    """What another connection (another process, in effect) sees committed."""
    reader = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in reader.execute("SELECT x FROM t"))
    finally:
        reader.close()


def _run(path: str, units: list[Any]) -> tuple[list[Any], int]:
    """Runs the units at once on one database; returns each one's outcome and the COMMITs
    sent."""

    async def main() -> tuple[list[Any], int]:
        db = open_database(f"sqlite:///{path}")
        commits = 0

        def count(sql: str) -> None:
            nonlocal commits
            commits += sql == "COMMIT"

        db.observers.append(count)
        try:
            outcomes = await asyncio.gather(
                *(unit(db, index) for index, unit in enumerate(units)),
                return_exceptions=True,
            )
        finally:
            await db.close()
        return outcomes, commits

    return asyncio.run(main())


async def _insert(db: Database, index: int) -> str:
    async with db.unit() as uow:
        await asyncio.sleep(0)  # a real request yields here and there: the others queue
        await uow.tx.execute(text("INSERT INTO t VALUES (:x, 1)"), {"x": index})
    # Returned: the write must already be visible to another connection.
    assert index in _stored(db.path)  # type: ignore[attr-defined]
    return "ok"


def test_concurrent_writers_share_one_commit_and_return_only_once_it_is_done(
    tmp_path: Path,
) -> None:
    path = _database(tmp_path)
    outcomes, commits = _run(path, [_insert] * 10)
    assert outcomes == ["ok"] * 10
    assert _stored(path) == list(range(10))
    assert 1 <= commits < 10  # grouped (each unit alone would have sent 10)


def test_a_failing_writer_is_rolled_back_alone(tmp_path: Path) -> None:
    path = _database(tmp_path)

    async def fails(db: Database, index: int) -> str:
        async with db.unit() as uow:
            await uow.tx.execute(text("INSERT INTO t VALUES (:x, 1)"), {"x": index})
            await asyncio.sleep(0)
            raise RuntimeError("the handler failed")

    outcomes, _ = _run(path, [_insert, fails, _insert, fails, _insert])
    assert outcomes[0] == outcomes[2] == outcomes[4] == "ok"
    assert all(isinstance(outcomes[i], RuntimeError) for i in (1, 3))
    assert _stored(path) == [0, 2, 4]


def test_any_exception_rolls_the_unit_back_and_the_group_goes_on(tmp_path: Path) -> None:
    """No exception is a decision to commit: a unit that raises keeps nothing (callers that
    must keep a write, such as burning a replayed code, catch their error inside the unit)."""
    path = _database(tmp_path)

    class Decision(Exception):
        pass

    async def decides(db: Database, index: int) -> str:
        async with db.unit() as uow:
            await uow.tx.execute(text("INSERT INTO t VALUES (:x, 1)"), {"x": index})
            raise Decision()
        return "not reached"

    outcomes, _ = _run(path, [_insert, decides, _insert])
    assert outcomes[0] == outcomes[2] == "ok"
    assert isinstance(outcomes[1], Decision)
    assert _stored(path) == [0, 2]


def test_a_failed_commit_fails_every_writer_it_covered(tmp_path: Path) -> None:
    """A deferred foreign key is checked only at COMMIT: one bad row makes the group's commit
    fail, and every unit in it reports the failure (none claims a write that was lost)."""
    path = _database(tmp_path)

    async def dangling(db: Database, index: int) -> str:
        async with db.unit() as uow:
            await uow.tx.execute(text("PRAGMA defer_foreign_keys=ON"))
            await uow.tx.execute(text("INSERT INTO t VALUES (:x, 999)"), {"x": index})
            await asyncio.sleep(0)
        return "returned"

    async def plain(db: Database, index: int) -> str:
        async with db.unit() as uow:
            await asyncio.sleep(0)
            await uow.tx.execute(text("INSERT INTO t VALUES (:x, 1)"), {"x": index})
        return "returned"

    outcomes, _ = _run(path, [dangling, plain, plain])
    assert all(isinstance(outcome, Conflict) for outcome in outcomes), outcomes
    assert _stored(path) == []

    # The database's next writers start a new group and commit.
    outcomes, _ = _run(path, [_insert, _insert])
    assert outcomes == ["ok", "ok"]


def test_a_group_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database, "MAX_GROUP", 3)
    path = _database(tmp_path)
    assert open_database(f"sqlite:///{path}").max_group == 3  # type: ignore[attr-defined]
    outcomes, commits = _run(path, [_insert] * 9)
    assert outcomes == ["ok"] * 9
    assert commits >= 3


def test_a_writer_cancelled_while_the_group_gathers_still_closes_it(tmp_path: Path) -> None:
    """Cancelled while waiting for others to join, the last writer still commits: a group left
    open would keep every other member of it waiting."""
    path = _database(tmp_path)

    async def main() -> None:
        db = open_database(f"sqlite:///{path}")
        try:

            async def cancelled_on_the_way_out() -> None:
                async with db.unit() as uow:
                    await uow.tx.execute(text("INSERT INTO t VALUES (7, 1)"))
                    task = asyncio.current_task()
                    assert task is not None
                    asyncio.get_running_loop().call_soon(task.cancel)

            with pytest.raises(asyncio.CancelledError):
                await asyncio.create_task(cancelled_on_the_way_out())
            assert _stored(path) == [7]
            await asyncio.wait_for(_insert(db, 8), 5)  # the next writer is not stuck
        finally:
            await db.close()

    asyncio.run(main())
    assert _stored(path) == [7, 8]


def test_a_writer_cancelled_while_it_waits_for_the_group_does_not_leave_it_open(
    tmp_path: Path,
) -> None:
    """The last member let go of the lock for a writer queued behind it, which was cancelled
    before it could take it: nobody is left to commit the group, yet its members wait for
    that commit. It is committed in their stead."""
    path = _database(tmp_path)

    async def main() -> str:
        db = open_database(f"sqlite:///{path}")
        go = asyncio.Event()

        async def first() -> str:
            async with db.unit() as uow:
                await uow.tx.execute(text("INSERT INTO t VALUES (1, 1)"))
                await go.wait()
            return "committed"

        async def queued() -> None:
            async with db.unit() as uow:
                await uow.tx.execute(text("INSERT INTO t VALUES (2, 1)"))

        try:
            running = asyncio.create_task(first())
            await asyncio.sleep(0.01)
            waiting = asyncio.create_task(queued())
            await asyncio.sleep(0.01)
            go.set()
            await asyncio.sleep(0)  # the first lets go of the lock; the second is woken...
            waiting.cancel()  # ...and cancelled before it runs
            return await asyncio.wait_for(running, 5)
        finally:
            await db.close()

    assert asyncio.run(main()) == "committed"
    assert _stored(path) == [1]
