"""API keys: company credentials sent in ``x-api-key`` (Factorial's, besides OAuth).

Only the SHA-256 digest of a key is stored, with a short hint to recognise it in a list; the
key itself is shown once, when it is created. Keys never expire; revoking one stops it at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from . import tables as t
from .transaction import Transaction


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    company_id: int
    name: str
    hint: str
    created_by: int | None
    created_by_email: str | None
    created_at: int
    revoked_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _api_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        hint=row.hint,
        created_by=row.created_by,
        created_by_email=row.created_by_email,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiKeys:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def _select(self) -> Any:
        k = t.api_keys
        return select(k, t.users.c.email.label("created_by_email")).outerjoin(
            t.users, t.users.c.id == k.c.created_by
        )

    async def create(
        self,
        *,
        company_id: int,
        name: str,
        digest: str,
        hint: str,
        created_by: int | None,
        now: int,
    ) -> ApiKey:
        key_id = await self.tx.scalar(
            insert(t.api_keys)
            .values(
                company_id=company_id,
                name=name,
                digest=digest,
                hint=hint,
                created_by=created_by,
                created_at=now,
            )
            .returning(t.api_keys.c.id)
        )
        created = await self.get(key_id)
        assert created is not None
        return created

    async def active_by_digest(self, digest: str) -> ApiKey | None:
        """The unrevoked key with this digest: one indexed read per API request."""
        k = t.api_keys
        row = await self.tx.first(
            self._select().where(k.c.digest == digest, k.c.revoked_at.is_(None))
        )
        return _api_key(row) if row else None

    async def get(self, key_id: int, company_id: int | None = None) -> ApiKey | None:
        """A key by id; with ``company_id``, only if it belongs to that company (tenancy)."""
        k = t.api_keys
        query = self._select().where(k.c.id == key_id)
        if company_id is not None:
            query = query.where(k.c.company_id == company_id)
        row = await self.tx.first(query)
        return _api_key(row) if row else None

    async def for_company(self, company_id: int) -> list[ApiKey]:
        k = t.api_keys
        rows = await self.tx.rows(
            self._select()
            .where(k.c.company_id == company_id)
            .order_by(k.c.revoked_at.is_not(None), k.c.created_at.desc(), k.c.id.desc())
        )
        return [_api_key(row) for row in rows]

    async def revoke(self, key: ApiKey, now: int) -> ApiKey:
        """Revoke a key (again is harmless: the first revocation time is kept)."""
        k = t.api_keys
        await self.tx.execute(
            update(k).where(k.c.id == key.id, k.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        revoked = await self.get(key.id)
        assert revoked is not None
        return revoked
