"""Signing keys as rows (grantly/keys.py decides which signs and which may go)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert, select, update

from ..keys import SigningKey
from . import tables as t
from .transaction import Transaction


def _key(row: Any) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        alg=row.alg,
        public_jwk=json.loads(row.public_jwk),
        sealed_private=row.sealed_private,
        created_at=row.created_at,
        activates_at=row.activates_at,
        retired_at=row.retired_at,
    )


class SigningKeys:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def everyone(self) -> list[SigningKey]:
        k = t.signing_keys
        rows = await self.tx.rows(select(k).order_by(k.c.created_at, k.c.kid))
        return [_key(row) for row in rows]

    async def add(self, key: SigningKey) -> None:
        await self.tx.execute(
            insert(t.signing_keys).values(
                kid=key.kid,
                alg=key.alg,
                public_jwk=json.dumps(key.public_jwk, sort_keys=True),
                sealed_private=key.sealed_private,
                created_at=key.created_at,
                activates_at=key.activates_at,
            )
        )

    async def retire(self, kid: str, now: int) -> bool:
        k = t.signing_keys
        changed = await self.tx.execute(
            update(k).where(k.c.kid == kid, k.c.retired_at.is_(None)).values(retired_at=now)
        )
        return changed > 0
