"""Invitations: one-time links with which a person sets their password.

A link carries a 256-bit random token; only its digest is stored, and a link is found by it in
one indexed read. Only the newest link of a person works: ``issue`` revokes their earlier
unused ones. ``redeem`` is the exactly-once step, as redeeming an authorization code is
(``store/tokens.py``): one conditional UPDATE whose WHERE is the rule (unused, not revoked,
unexpired, its person active), so that of two requests racing with one link the database lets
exactly one through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import and_, bindparam, exists, insert, select, update

from . import tables as t
from .sql import Query
from .transaction import Transaction

State = Literal["valid", "used", "revoked", "expired", "deactivated"]

_i, _u = t.invitations, t.users
_WITH_PERSON = select(
    _i,
    _u.c.company_id,
    _u.c.email.label("user_email"),
    _u.c.name.label("user_name"),
    _u.c.active.label("user_active"),
).join(_u, _u.c.id == _i.c.user_id)
_BY_DIGEST = Query(_WITH_PERSON.where(_i.c.digest == bindparam("digest")))
# In a writing unit the UPDATE opens the transaction (PostgreSQL: BEGIN before it), so what the
# caller writes next (the password) commits with it or not at all; the row it changes stays
# locked until then, and a racing redemption, once let through, finds it used.
_REDEEM = Query(
    update(_i)
    .where(
        _i.c.id == bindparam("invitation_id"),
        _i.c.used_at.is_(None),
        _i.c.revoked_at.is_(None),
        _i.c.expires_at > bindparam("now"),
        exists().where(_u.c.id == _i.c.user_id, _u.c.active.is_(True)),
    )
    .values(used_at=bindparam("now"))
    .returning(_i.c.id)
)


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invitation with the person it is for."""

    id: int
    user_id: int
    company_id: int
    user_email: str
    user_name: str
    user_active: bool
    created_by: int | None
    created_at: int
    expires_at: int
    used_at: int | None
    revoked_at: int | None

    def state(self, now: int) -> State:
        """Whether the link still works, or the reason it does not that tells its person most:
        used, their account deactivated, replaced (or withdrawn), expired."""
        if self.used_at is not None:
            return "used"
        if not self.user_active:
            return "deactivated"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "valid"


def pending(now: int) -> Any:
    """The condition of an invitation that can still be used (its person aside)."""
    return and_(_i.c.used_at.is_(None), _i.c.revoked_at.is_(None), _i.c.expires_at > now)


class Invitations:
    """One-time links to set a password."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def issue(
        self, *, user_id: int, digest: str, created_by: int | None, now: int, expires_at: int
    ) -> tuple[int, int]:
        """A new invitation for the person, and how many of their earlier ones, still usable,
        it replaced: those stop working."""
        replaced = await self.revoke_pending(user_id, now)
        row = await self.tx.first(
            insert(_i)
            .values(
                user_id=user_id,
                digest=digest,
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
            )
            .returning(_i.c.id)
        )
        return int(row.id), replaced

    async def revoke_pending(self, user_id: int, now: int) -> int:
        """End the person's invitations that could still be used; how many there were."""
        return await self.tx.execute(
            update(_i).where(_i.c.user_id == user_id, pending(now)).values(revoked_at=now)
        )

    async def by_digest(self, digest: str) -> Invitation | None:
        row = await self.tx.first(_BY_DIGEST, {"digest": digest})
        return _invitation(row) if row is not None else None

    async def pending_for(self, user_id: int, now: int) -> Invitation | None:
        """The person's invitation that can still be used, if any (at most one: ``issue``)."""
        row = await self.tx.first(
            _WITH_PERSON.where(_i.c.user_id == user_id, pending(now))
            .order_by(_i.c.id.desc())
            .limit(1)
        )
        return _invitation(row) if row is not None else None

    async def redeem(self, invitation_id: int, now: int) -> bool:
        """Use the invitation, exactly once: False when it is used, revoked or expired, or its
        person deactivated, by now (see ``_REDEEM``)."""
        row = await self.tx.first(_REDEEM, {"invitation_id": invitation_id, "now": now})
        return row is not None


def _invitation(row: Any) -> Invitation:
    return Invitation(
        id=row.id,
        user_id=row.user_id,
        company_id=row.company_id,
        user_email=row.user_email,
        user_name=row.user_name,
        user_active=bool(row.user_active),
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked_at=row.revoked_at,
    )
