"""Companies, the people who sign in, and their server-side sessions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select, update

from ..oauth.models import User
from . import rows
from . import tables as t
from .credentials import revoke_user_credentials
from .sql import Query
from .transaction import Transaction


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    name: str


_COMPANY_BY_ID = Query(select(t.companies).where(t.companies.c.id == bindparam("company_id")))
_USER_BY_ID = Query(select(t.users).where(t.users.c.id == bindparam("user_id")))
_USER_OF_SESSION = Query(
    select(t.users)
    .join(t.user_sessions, t.user_sessions.c.user_id == t.users.c.id)
    .where(
        t.user_sessions.c.digest == bindparam("digest"),
        t.user_sessions.c.expires_at > bindparam("now"),
        t.users.c.active.is_(True),
    )
)


class Accounts:
    """Companies and the people who sign in."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def create_company(self, name: str, now: int) -> Company:
        row = await self.tx.first(
            insert(t.companies).values(name=name, created_at=now).returning(t.companies)
        )
        return Company(row.id, row.name)

    async def company(self, company_id: int) -> Company | None:
        row = await self.tx.first(_COMPANY_BY_ID, {"company_id": company_id})
        return Company(row.id, row.name) if row else None

    async def company_by_name(self, name: str) -> Company | None:
        row = await self.tx.first(
            select(t.companies).where(t.companies.c.name == name).order_by(t.companies.c.id)
        )
        return Company(row.id, row.name) if row else None

    async def create_user(
        self,
        *,
        company_id: int,
        email: str,
        name: str,
        password_hash: str,
        admin: bool,
        now: int,
    ) -> User:
        row = await self.tx.first(
            insert(t.users)
            .values(
                company_id=company_id,
                email=email.strip().lower(),
                name=name,
                password_hash=password_hash,
                admin=admin,
                active=True,
                created_at=now,
            )
            .returning(t.users)
        )
        return rows.user(row)

    async def companies(self) -> list[Company]:
        found = await self.tx.rows(select(t.companies).order_by(t.companies.c.id))
        return [Company(row.id, row.name) for row in found]

    async def users(self, company_id: int | None = None) -> list[User]:
        """Everyone, or one company's people, in the order they were created."""
        query = select(t.users).order_by(t.users.c.id)
        if company_id is not None:
            query = query.where(t.users.c.company_id == company_id)
        return [rows.user(row) for row in await self.tx.rows(query)]

    async def user_by_email(self, email: str) -> User | None:
        found = await self.user_with_password_hash(email)
        return found[0] if found else None

    async def user(self, user_id: int) -> User | None:
        row = await self.tx.first(_USER_BY_ID, {"user_id": user_id})
        return rows.user(row) if row else None

    async def user_with_password_hash(self, email: str) -> tuple[User, str] | None:
        row = await self.tx.first(select(t.users).where(t.users.c.email == email.strip().lower()))
        return (rows.user(row), row.password_hash) if row else None

    async def set_password_hash(self, user_id: int, password_hash: str) -> None:
        await self.tx.execute(
            update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash)
        )

    async def deactivate(self, user_id: int) -> tuple[User, int] | None:
        """A terminated employee: no more sign-in, open sessions end now (how many is
        returned with the user)."""
        ended = await UserSessions(self.tx).end_all(user_id)
        row = await self.tx.first(
            update(t.users).where(t.users.c.id == user_id).values(active=False).returning(t.users)
        )
        return (rows.user(row), ended) if row else None

    async def activate(self, user_id: int, now: int) -> User | None:
        """Let a deactivated person sign in again. Their tokens and codes from before stay
        revoked (as ``People.unterminate`` does): they authorize applications again."""
        await revoke_user_credentials(self.tx, user_id, now)
        row = await self.tx.first(
            update(t.users).where(t.users.c.id == user_id).values(active=True).returning(t.users)
        )
        return rows.user(row) if row else None


class UserSessions:
    """Server-side sign-in sessions, keyed by the digest of the cookie's random id."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def start(self, digest: str, user_id: int, now: int, expires_at: int) -> None:
        await self.tx.execute(
            insert(t.user_sessions).values(
                digest=digest, user_id=user_id, created_at=now, expires_at=expires_at
            )
        )

    async def user(self, digest: str, now: int) -> User | None:
        """The active user of an unexpired session, in one indexed read."""
        row = await self.tx.first(_USER_OF_SESSION, {"digest": digest, "now": now})
        return rows.user(row) if row else None

    async def end(self, digest: str) -> None:
        await self.tx.execute(delete(t.user_sessions).where(t.user_sessions.c.digest == digest))

    async def end_all(self, user_id: int) -> int:
        return await self.tx.execute(
            delete(t.user_sessions).where(t.user_sessions.c.user_id == user_id)
        )
