"""Grants people made: remembered for consent, listed so they can be revoked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..oauth.models import ResourceOwner
from . import live, rows
from . import tables as t
from .transaction import Transaction


def _of_owner(table: Any, application_id: int, owner: ResourceOwner) -> Any:
    """The rows of ``table`` (codes, tokens, consents) of one grant: an application and a
    person (user grants) or an application and a company (company grants, whoever gave them)."""
    condition = and_(
        table.c.application_id == application_id,
        table.c.owner_type == owner.type,
        table.c.company_id == owner.company_id,
    )
    if owner.type == "user":
        condition = and_(condition, table.c.user_id == owner.user_id)
    return condition


async def withdraw(
    tx: Transaction, application_id: int, owner: ResourceOwner, now: int
) -> live.LiveTokens:
    """End a grant: its consent (so a remembered consent asks again) and every code and token
    of it stop now; returns what stopped working. The codes go first: they are the grants'
    anchors, which every change to a grant's tokens locks before the tokens
    (``Tokens.lock_family``), so a rotation racing this waits, then finds its refresh token
    revoked."""
    codes = t.authorization_codes
    await tx.execute(delete(codes).where(_of_owner(codes, application_id, owner)))
    c = t.consents
    await tx.execute(
        update(c)
        .where(_of_owner(c, application_id, owner), c.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    ended = []
    for table in (t.access_tokens, t.refresh_tokens):
        ended.append(
            await tx.rows(
                update(table)
                .where(_of_owner(table, application_id, owner), table.c.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(*live.ended_columns(table))
            )
        )
    return live.stopped(ended[0], ended[1], now)


async def retire(tx: Transaction, application_id: int, owner: ResourceOwner, now: int) -> None:
    """Revoke the grant's live consent if nothing of the grant works or is still to be
    redeemed (``_works``, or an unused unexpired code): what a family revocation leaves."""
    c, codes = t.consents, t.authorization_codes
    pending_code = exists().where(
        _of_owner(codes, application_id, owner),
        codes.c.consumed_at.is_(None),
        codes.c.expires_at > now,
    )
    await tx.execute(
        update(c)
        .where(
            _of_owner(c, application_id, owner),
            c.c.revoked_at.is_(None),
            ~_works(now),
            ~pending_code,
        )
        .values(revoked_at=now)
    )


def _works(now: int) -> Any:
    """A consent whose grant still has a token that works or can mint one (``live``: a live
    access token, or a live refresh token neither rotated nor expired; company tokens never
    expire). A grant with none is over, whatever its consent row says."""
    c, a, r = t.consents, t.access_tokens, t.refresh_tokens

    def same_grant(table: Any) -> Any:
        return and_(
            table.c.application_id == c.c.application_id,
            table.c.owner_type == c.c.owner_type,
            table.c.company_id == c.c.company_id,
            or_(c.c.owner_type != "user", table.c.user_id == c.c.user_id),
        )

    return or_(
        exists().where(same_grant(a), live.live_access(now)),
        exists().where(same_grant(r), live.live_refresh(now)),
    )


def _still_offered(consented: str, offered: str) -> tuple[str, ...]:
    """The consented scopes the application still has (tokens never carry others)."""
    kept = set(offered.split())
    return tuple(scope for scope in rows.scopes(consented) if scope in kept)


@dataclass(frozen=True, slots=True)
class Consent:
    """What someone allowed an application, as /oauth/authorized_applications lists it."""

    id: int
    application_id: int
    application_name: str
    owner: ResourceOwner
    company_name: str
    user_email: str | None  # the person of a user grant; the admin who gave a company grant
    user_name: str | None
    scopes: tuple[str, ...]
    created_at: int
    updated_at: int


class Consents:
    """Grants people made, remembered for consent and listed so they can be revoked."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    def _active(self, application_id: int, owner: ResourceOwner) -> Any:
        c = t.consents
        return and_(_of_owner(c, application_id, owner), c.c.revoked_at.is_(None))

    async def record(
        self, application_id: int, owner: ResourceOwner, scopes: Sequence[str], now: int
    ) -> None:
        """Remember a grant; a later grant of the same application widens the remembered
        scopes to the union of both. Concurrent grants meet at the unique index of live
        consents: the insert of the second does nothing (PostgreSQL has it wait for the first
        to commit), and it merges into the first's row, locked for the merge."""
        c = t.consents
        insert = sqlite_insert if self.tx.backend == "sqlite" else postgresql_insert
        user_grant = owner.type == "user"
        for _ in range(2):
            created = await self.tx.first(
                insert(c)
                .values(
                    application_id=application_id,
                    owner_type=owner.type,
                    company_id=owner.company_id,
                    user_id=owner.user_id,
                    scopes=" ".join(scopes),
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(
                    index_elements=(
                        [c.c.application_id, c.c.company_id, c.c.user_id]
                        if user_grant
                        else [c.c.application_id, c.c.company_id]
                    ),
                    # The index's own predicate, as written: PostgreSQL infers the index only
                    # from a predicate that implies it, which a bound parameter does not.
                    index_where=t.LIVE_USER_GRANT if user_grant else t.LIVE_COMPANY_GRANT,
                )
                .returning(c.c.id)
            )
            if created is not None:
                return
            live = select(c.c.id, c.c.scopes).where(self._active(application_id, owner))
            if self.tx.backend != "sqlite":  # SQLite's writer holds the whole database
                live = live.with_for_update()
            row = await self.tx.first(live)
            if row is not None:
                merged = list(dict.fromkeys([*row.scopes.split(), *scopes]))
                await self.tx.execute(
                    update(c)
                    .where(c.c.id == row.id)
                    .values(scopes=" ".join(merged), updated_at=now, user_id=owner.user_id)
                )
                return
            # Revoked between the two statements: insert anew.

    async def covers(
        self,
        application_id: int,
        user_id: int,
        company_id: int,
        scopes: Sequence[str],
        now: int,
    ) -> bool:
        """Did this user already allow this application at least these scopes, in a grant
        that still works? A remembered consent is the grant the person sees listed (and can
        revoke) on /oauth/authorized_applications: once its tokens are all revoked (by the
        client, RFC 7009) or expired, it is no longer listed, so it asks again."""
        owner = ResourceOwner("user", company_id, user_id)
        c, a = t.consents, t.applications
        remembered = await self.tx.first(
            select(c.c.scopes, a.c.scopes.label("application_scopes"))
            .join(a, a.c.id == c.c.application_id)
            .where(self._active(application_id, owner), _works(now))
        )
        return remembered is not None and set(scopes) <= set(
            _still_offered(remembered.scopes, remembered.application_scopes)
        )

    def _listing(self) -> Any:
        c, a, co, u = t.consents, t.applications, t.companies, t.users
        return (
            select(
                c,
                a.c.name.label("application_name"),
                a.c.scopes.label("application_scopes"),
                co.c.name.label("company_name"),
                u.c.email.label("user_email"),
                u.c.name.label("user_name"),
            )
            .join(a, a.c.id == c.c.application_id)
            .join(co, co.c.id == c.c.company_id)
            .outerjoin(u, u.c.id == c.c.user_id)
            .where(c.c.revoked_at.is_(None))
            .order_by(c.c.updated_at.desc(), c.c.id.desc())
        )

    @staticmethod
    def _consent(row: Any) -> Consent:
        return Consent(
            id=row.id,
            application_id=row.application_id,
            application_name=row.application_name,
            owner=rows.owner(row),
            company_name=row.company_name,
            user_email=row.user_email,
            user_name=row.user_name,
            scopes=_still_offered(row.scopes, row.application_scopes),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    async def of_user(self, user_id: int, now: int) -> list[Consent]:
        """The person's grants that still work (``_works``)."""
        c = t.consents
        found = await self.tx.rows(
            self._listing().where(c.c.owner_type == "user", c.c.user_id == user_id, _works(now))
        )
        return [self._consent(row) for row in found]

    async def company_grants(self, company_id: int, now: int) -> list[Consent]:
        """Company tokens the company's admins gave, to any application, that still work."""
        c = t.consents
        found = await self.tx.rows(
            self._listing().where(
                c.c.owner_type == "company", c.c.company_id == company_id, _works(now)
            )
        )
        return [self._consent(row) for row in found]

    async def authorized_by(self, user_id: int, now: int) -> list[Consent]:
        """Company tokens this person (an admin) was the last to authorize, that still work:
        they act for the company, and outlive the person's access."""
        c = t.consents
        found = await self.tx.rows(
            self._listing().where(c.c.owner_type == "company", c.c.user_id == user_id, _works(now))
        )
        return [self._consent(row) for row in found]

    async def of_application(self, application_id: int, now: int) -> list[Consent]:
        """Every grant of an application that still works, user and company grants, of any
        company: what its page lists for its admins to revoke."""
        c = t.consents
        found = await self.tx.rows(
            self._listing().where(c.c.application_id == application_id, _works(now))
        )
        return [self._consent(row) for row in found]

    async def get(self, consent_id: int) -> Consent | None:
        row = await self.tx.first(self._listing().where(t.consents.c.id == consent_id))
        return self._consent(row) if row else None

    async def revoke(self, consent: Consent, now: int) -> live.LiveTokens:
        """Withdraw a grant: the consent and every token it produced stop now (returned)."""
        return await withdraw(self.tx, consent.application_id, consent.owner, now)
