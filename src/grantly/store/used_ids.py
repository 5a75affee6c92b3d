"""Identifiers that may be used once (RFC 9449 §11.1 DPoP proofs' jti, RFC 7523 §3 client
assertions' jti), remembered until they could no longer be accepted anyway, when no Redis is
configured (``grantly.replay``). Every worker and host writes the same table."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from . import tables as t
from .transaction import Transaction


class UsedIds:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def first_use(self, key: str, expires_at: int, now: int) -> bool:
        """Record ``key`` until ``expires_at``; True unless it is recorded and not expired.
        One statement: of two concurrent uses, the primary key lets exactly one through."""
        u = t.used_jtis
        insert = sqlite_insert if self.tx.backend == "sqlite" else postgresql_insert
        statement = insert(u).values(key=key, expires_at=expires_at)
        upsert = statement.on_conflict_do_update(
            index_elements=[u.c.key],
            set_={"expires_at": statement.excluded.expires_at},
            where=u.c.expires_at <= now,
        ).returning(u.c.key)
        return await self.tx.scalar(upsert) is not None
