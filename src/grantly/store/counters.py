"""Windowed counters for the throttle (``grantly.throttle``) when no Redis is configured: one
row per key, its count and the end of its window. Every worker and host reads the same rows,
so a limit is the same whichever process a request reaches, and a restart keeps it."""

from __future__ import annotations

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import tables as t
from .transaction import Transaction


class Counters:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def increment(self, key: str, amount: int, window: int, now: int) -> int:
        """Add ``amount`` to the key's count, starting a new window of ``window`` seconds when
        there is none or it has ended; the count after. One statement: concurrent increments
        of one key meet at its primary key and add up."""
        c = t.throttle_counters
        insert = sqlite_insert if self.tx.backend == "sqlite" else postgresql_insert
        statement = insert(c).values(key=key, count=amount, expires_at=now + window)
        ended = c.c.expires_at <= now
        upsert = statement.on_conflict_do_update(
            index_elements=[c.c.key],
            set_={
                "count": case((ended, statement.excluded.count), else_=c.c.count + amount),
                "expires_at": case((ended, statement.excluded.expires_at), else_=c.c.expires_at),
            },
        ).returning(c.c.count)
        count = await self.tx.scalar(upsert)
        return int(count)

    async def current(self, key: str, now: int) -> tuple[int, int | None]:
        """The key's count in its window and when the window ends; (0, None) without one."""
        c = t.throttle_counters
        row = await self.tx.first(
            select(c.c.count, c.c.expires_at).where(c.c.key == key, c.c.expires_at > now)
        )
        return (int(row[0]), int(row[1])) if row else (0, None)

    async def sweep(self, now: int, rows: int) -> int:
        """Delete up to ``rows`` counters whose window ended."""
        c = t.throttle_counters
        ended = select(c.c.key).where(c.c.expires_at <= now).limit(rows)
        return await self.tx.execute(delete(c).where(c.c.key.in_(ended.scalar_subquery())))

    async def clear(self, key: str | None = None) -> int:
        """Forget one key's count, or every count (None)."""
        c = t.throttle_counters
        statement = delete(c) if key is None else delete(c).where(c.c.key == key)
        return await self.tx.execute(statement)
