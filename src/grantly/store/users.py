"""Companies, the people who sign in, and their server-side sessions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update

from ..oauth.models import User
from ..passwords import unusable_password_hash
from . import rows
from . import tables as t
from .credentials import revoke_user_credentials
from .invitations import pending
from .sql import Query
from .transaction import Transaction


@dataclass(frozen=True, slots=True)
class Company:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Person:
    """Someone of a company as the People page (and ``grantly users list``) shows them: who
    they are, and whether and how they can sign in."""

    user: User
    created_at: int
    password_set_at: int | None  # None: no password yet
    invitation_expires_at: int | None  # when their pending invitation's link stops working

    @property
    def has_password(self) -> bool:
        return self.password_set_at is not None


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
        password_hash: str | None,
        admin: bool,
        now: int,
    ) -> User:
        """A person who signs in with ``password_hash``'s password, or, without one, who has
        no password until they set one from an invitation."""
        row = await self.tx.first(
            insert(t.users)
            .values(
                company_id=company_id,
                email=email.strip().lower(),
                name=name,
                password_hash=password_hash or unusable_password_hash(),
                password_set_at=now if password_hash else None,
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

    def _people(self, now: int) -> Any:
        u = t.users
        invitation = (
            select(func.max(t.invitations.c.expires_at))
            .where(t.invitations.c.user_id == u.c.id, pending(now))
            .scalar_subquery()
        )
        return select(u, invitation.label("invitation_expires_at"))

    async def people(
        self,
        company_id: int | None,
        now: int,
        *,
        search: str = "",
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[Person], int]:
        """One page of the people of a company (or of every company), in the order they were
        created, whose name or email contains ``search`` (any case); and how many match."""
        u = t.users
        conditions = []
        if company_id is not None:
            conditions.append(u.c.company_id == company_id)
        if search.strip():
            text = search.strip()
            conditions.append(
                or_(
                    u.c.name.icontains(text, autoescape=True),
                    u.c.email.icontains(text, autoescape=True),
                )
            )
        total = await self.tx.scalar(select(func.count()).select_from(u).where(*conditions))
        found = await self.tx.rows(
            self._people(now).where(*conditions).order_by(u.c.id).limit(limit).offset(offset)
        )
        return [_person(row) for row in found], int(total or 0)

    async def person(self, user_id: int, now: int) -> Person | None:
        row = await self.tx.first(self._people(now).where(t.users.c.id == user_id))
        return _person(row) if row else None

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
        """The same password, hashed anew (stronger parameters): nothing else changes."""
        await self.tx.execute(
            update(t.users).where(t.users.c.id == user_id).values(password_hash=password_hash)
        )

    async def set_password(self, user_id: int, password_hash: str, now: int) -> None:
        """A password the person chose: they sign in with it from now on."""
        await self.tx.execute(
            update(t.users)
            .where(t.users.c.id == user_id)
            .values(password_hash=password_hash, password_set_at=now)
        )

    async def deactivate(self, user_id: int, now: int) -> tuple[User, int] | None:
        """A terminated employee: no more sign-in, open sessions end now (how many is
        returned with the user), and, as ``People.terminate`` does, their user tokens,
        consents and unused codes are revoked at once: no list or count shows them as working
        any more, and nothing of theirs comes back with them (``activate``)."""
        ended = await UserSessions(self.tx).end_all(user_id)
        await revoke_user_credentials(self.tx, user_id, now)
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

    async def end_others(self, user_id: int, keep: str | None, now: int) -> int:
        """End the person's sessions but the one whose digest is ``keep`` (the browser that
        asked); how many of them had not expired."""
        s = t.user_sessions
        others = [s.c.user_id == user_id]
        if keep is not None:
            others.append(s.c.digest != keep)
        live = await self.tx.scalar(
            select(func.count()).select_from(s).where(*others, s.c.expires_at > now)
        )
        await self.tx.execute(delete(s).where(*others))
        return int(live or 0)

    async def count_live(self, user_id: int, now: int) -> int:
        """The person's sessions that have not expired: the browsers they are signed in on."""
        s = t.user_sessions
        found = await self.tx.scalar(
            select(func.count()).select_from(s).where(s.c.user_id == user_id, s.c.expires_at > now)
        )
        return int(found or 0)


def _person(row: Any) -> Person:
    return Person(
        user=rows.user(row),
        created_at=row.created_at,
        password_set_at=row.password_set_at,
        invitation_expires_at=row.invitation_expires_at,
    )
