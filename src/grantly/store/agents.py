"""Agent applications: clients of no company, named by a client metadata document or
registered by themselves (RFC 7591), and what each company allows of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..oauth.models import AgentPolicy, Application
from . import live, rows
from . import tables as t
from .applications import Applications
from .transaction import Transaction


@dataclass(frozen=True, slots=True)
class AgentUse:
    """An agent application as a company's admins see it: who of the company authorized it,
    and whether the company blocks it."""

    application: Application
    authorized_by: tuple[str, ...]  # the names of the people with a live grant
    last_authorized_at: int | None
    blocked: bool


class ClientIdTaken(Exception):
    """A metadata document's URL is already the client id of an application of another
    origin."""


class AgentApplications:
    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def save_document(
        self,
        *,
        client_id: str,
        name: str,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        client_metadata: str,
        now: int,
        expires_at: int,
    ) -> Application:
        """The application a client metadata document describes, created on its first use and
        refreshed from the document afterwards (concurrent first uses meet at the unique
        client id and the second updates)."""
        insert_ = sqlite_insert if self.tx.backend == "sqlite" else postgresql_insert
        values = {
            "name": name,
            "redirect_uris": "\n".join(redirect_uris),
            "scopes": " ".join(scopes),
            "client_metadata": client_metadata,
            "metadata_expires_at": expires_at,
            "updated_at": now,
        }
        statement = insert_(t.applications).values(
            company_id=None,
            client_id=client_id,
            secret_digest=None,
            confidential=False,
            created_at=now,
            consent="always",
            origin="metadata_document",
            **values,
        )
        row = await self.tx.first(
            statement.on_conflict_do_update(
                index_elements=[t.applications.c.client_id],
                set_=values,
                where=t.applications.c.origin == "metadata_document",
            ).returning(t.applications)
        )
        if row is None:  # the client id is taken by an application of another origin
            raise ClientIdTaken(client_id)
        return rows.application(row)

    async def register(
        self,
        *,
        client_id: str,
        name: str,
        secret_digest: str | None,
        confidential: bool,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        client_metadata: str,
        registration_digest: str,
        now: int,
    ) -> Application:
        return await Applications(self.tx).create(
            company_id=None,
            name=name,
            client_id=client_id,
            secret_digest=secret_digest,
            confidential=confidential,
            redirect_uris=redirect_uris,
            scopes=scopes,
            now=now,
            origin="registration",
            client_metadata=client_metadata,
            registration_digest=registration_digest,
        )

    async def by_registration(self, client_id: str, digest: str) -> Application | None:
        """RFC 7592 §2: the registration its access token manages, only with that token."""
        row = await self.tx.first(
            select(t.applications).where(
                t.applications.c.client_id == client_id,
                t.applications.c.registration_digest == digest,
                t.applications.c.origin == "registration",
            )
        )
        return rows.application(row) if row else None

    async def update_registration(
        self,
        application: Application,
        *,
        name: str,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        client_metadata: str,
        now: int,
    ) -> Application:
        row = await self.tx.first(
            update(t.applications)
            .where(t.applications.c.id == application.id)
            .values(
                name=name,
                redirect_uris="\n".join(redirect_uris),
                scopes=" ".join(scopes),
                client_metadata=client_metadata,
                updated_at=now,
            )
            .returning(t.applications)
        )
        return rows.application(row)

    async def rotate_registration(self, application_id: int, digest: str) -> None:
        await self.tx.execute(
            update(t.applications)
            .where(t.applications.c.id == application_id)
            .values(registration_digest=digest)
        )

    async def mark_authorized(self, application_id: int, now: int) -> None:
        await self.tx.execute(
            update(t.applications)
            .where(t.applications.c.id == application_id)
            .values(authorized_at=now)
        )

    async def count_registered_since(self, since: int) -> int:
        return int(
            await self.tx.scalar(
                select(func.count())
                .select_from(t.applications)
                .where(
                    t.applications.c.origin == "registration",
                    t.applications.c.created_at >= since,
                )
            )
        )

    async def prune_unauthorized(self, created_before: int) -> int:
        """Self-registered clients nobody ever authorized, registered before the cutoff: a
        registration costs its author nothing, so unused ones must not pile up."""
        return await self.tx.execute(
            delete(t.applications).where(
                t.applications.c.origin == "registration",
                t.applications.c.authorized_at.is_(None),
                t.applications.c.created_at < created_before,
            )
        )

    async def policy(self, company_id: int) -> AgentPolicy:
        value = await self.tx.scalar(
            select(t.companies.c.agent_applications).where(t.companies.c.id == company_id)
        )
        return "block" if value == "block" else "allow"

    async def set_policy(self, company_id: int, policy: AgentPolicy) -> bool:
        changed = await self.tx.execute(
            update(t.companies)
            .where(t.companies.c.id == company_id)
            .values(agent_applications=policy)
        )
        return changed > 0

    async def blocked(self, company_id: int, application_id: int) -> bool:
        """Whether the company blocked this one agent application (its policy for all of
        them is ``policy``)."""
        return (
            await self.tx.first(
                select(t.company_application_blocks.c.application_id).where(
                    t.company_application_blocks.c.company_id == company_id,
                    t.company_application_blocks.c.application_id == application_id,
                )
            )
            is not None
        )

    async def block(
        self, company_id: int, application_id: int, user_id: int | None, now: int
    ) -> live.LiveTokens:
        """Block one agent application for a company, and end its grants there."""
        insert_ = sqlite_insert if self.tx.backend == "sqlite" else postgresql_insert
        await self.tx.execute(
            insert_(t.company_application_blocks)
            .values(
                company_id=company_id,
                application_id=application_id,
                blocked_by=user_id,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        return await self.revoke_in_company(application_id, company_id, now)

    async def unblock(self, company_id: int, application_id: int) -> bool:
        return (
            await self.tx.execute(
                delete(t.company_application_blocks).where(
                    t.company_application_blocks.c.company_id == company_id,
                    t.company_application_blocks.c.application_id == application_id,
                )
            )
            > 0
        )

    async def revoke_in_company(
        self, application_id: int, company_id: int, now: int
    ) -> live.LiveTokens:
        """End every grant of an application in one company: its tokens, consents and codes
        there, and nothing of any other company."""
        ended = []
        for table in (t.access_tokens, t.refresh_tokens):
            ended.append(
                await self.tx.rows(
                    update(table)
                    .where(
                        table.c.application_id == application_id,
                        table.c.company_id == company_id,
                        table.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=now)
                    .returning(*live.ended_columns(table))
                )
            )
        await self.tx.execute(
            update(t.consents)
            .where(
                t.consents.c.application_id == application_id,
                t.consents.c.company_id == company_id,
                t.consents.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        await self.tx.execute(
            delete(t.authorization_codes).where(
                t.authorization_codes.c.application_id == application_id,
                t.authorization_codes.c.company_id == company_id,
            )
        )
        return live.stopped(ended[0], ended[1], now)

    async def known_in(self, company_id: int, application_id: int) -> bool:
        """Whether the company ever dealt with this agent application (a grant, live or
        ended, or a block): what its admins may act on, and see the name of."""
        c, b = t.consents, t.company_application_blocks
        for table in (c, b):
            found = await self.tx.first(
                select(table.c.application_id)
                .where(table.c.company_id == company_id, table.c.application_id == application_id)
                .limit(1)
            )
            if found is not None:
                return True
        return False

    async def used_in(self, company_id: int) -> list[AgentUse]:
        """The agent applications people of the company authorized (a live grant) or the
        company blocked, most recently authorized first."""
        a, c, b, u = t.applications, t.consents, t.company_application_blocks, t.users
        granted = select(c.c.application_id).where(
            c.c.company_id == company_id, c.c.revoked_at.is_(None)
        )
        blocked = select(b.c.application_id).where(b.c.company_id == company_id)
        found = await self.tx.rows(
            select(a)
            .where(
                a.c.origin != "dashboard",
                or_(a.c.id.in_(granted), a.c.id.in_(blocked)),
            )
            .order_by(a.c.id)
        )
        if not found:
            return []
        ids = [row.id for row in found]
        grants = await self.tx.rows(
            select(c.c.application_id, c.c.updated_at, u.c.name)
            .select_from(c.outerjoin(u, u.c.id == c.c.user_id))
            .where(
                c.c.company_id == company_id,
                c.c.revoked_at.is_(None),
                c.c.application_id.in_(ids),
            )
            .order_by(c.c.updated_at.desc())
        )
        blocks = {
            row.application_id
            for row in await self.tx.rows(
                select(b.c.application_id).where(
                    and_(b.c.company_id == company_id, b.c.application_id.in_(ids))
                )
            )
        }
        names: dict[int, list[str]] = {}
        latest: dict[int, int] = {}
        for grant in grants:
            names.setdefault(grant.application_id, []).append(grant.name or "a removed person")
            latest.setdefault(grant.application_id, grant.updated_at)
        uses = [
            AgentUse(
                rows.application(row),
                tuple(dict.fromkeys(names.get(row.id, []))),
                latest.get(row.id),
                row.id in blocks,
            )
            for row in found
        ]
        uses.sort(key=lambda use: -(use.last_authorized_at or 0))
        return uses


@dataclass(frozen=True, slots=True)
class RegistrationToken:
    id: int
    name: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None


class RegistrationTokens:
    """Initial access tokens (RFC 7591 §3): what an operator hands a developer to register a
    client when registration is not open. Stored as digests."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def create(
        self, digest: str, name: str, now: int, expires_at: int | None
    ) -> RegistrationToken:
        row = await self.tx.first(
            insert(t.registration_tokens)
            .values(digest=digest, name=name, created_at=now, expires_at=expires_at)
            .returning(t.registration_tokens)
        )
        return _registration_token(row)

    async def valid(self, digest: str, now: int) -> RegistrationToken | None:
        r = t.registration_tokens
        row = await self.tx.first(
            select(r).where(
                r.c.digest == digest,
                r.c.revoked_at.is_(None),
                or_(r.c.expires_at.is_(None), r.c.expires_at > now),
            )
        )
        return _registration_token(row) if row else None

    async def everyone(self) -> list[RegistrationToken]:
        r = t.registration_tokens
        return [_registration_token(row) for row in await self.tx.rows(select(r).order_by(r.c.id))]

    async def revoke(self, token_id: int, now: int) -> bool:
        r = t.registration_tokens
        changed = await self.tx.execute(
            update(r).where(r.c.id == token_id, r.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return changed > 0


def _registration_token(row: Any) -> RegistrationToken:
    return RegistrationToken(
        row.id,
        row.name,
        row.created_at,
        row.expires_at,
        row.revoked_at,
    )
