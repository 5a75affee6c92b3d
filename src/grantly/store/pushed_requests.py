"""Pushed authorization requests (RFC 9126): the parameters a client pushed, under the digest
of the ``request_uri`` it was given, until they are used once or expire."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select, update

from . import tables as t
from .transaction import Transaction


class PushedRequests:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def save(
        self,
        digest: str,
        application_id: int,
        params: dict[str, list[str]],
        now: int,
        expires_at: int,
    ) -> None:
        await self.tx.execute(
            insert(t.pushed_requests).values(
                digest=digest,
                application_id=application_id,
                params=json.dumps(params, separators=(",", ":")),
                created_at=now,
                expires_at=expires_at,
            )
        )

    async def find(self, digest: str, now: int) -> tuple[int, dict[str, Any]] | None:
        """(application id, parameters) of an unused, unexpired pushed request."""
        p = t.pushed_requests
        row = await self.tx.first(
            select(p.c.application_id, p.c.params).where(
                p.c.digest == digest, p.c.used_at.is_(None), p.c.expires_at > now
            )
        )
        return None if row is None else (row.application_id, json.loads(row.params))

    async def use(self, digest: str, now: int) -> bool:
        """Mark it used, if it is still unused and unexpired: of racing uses, one wins."""
        p = t.pushed_requests
        changed = await self.tx.execute(
            update(p)
            .where(p.c.digest == digest, p.c.used_at.is_(None), p.c.expires_at > now)
            .values(used_at=now)
        )
        return changed > 0
