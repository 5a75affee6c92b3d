"""Applications: the ``ApplicationStore`` port and the dashboard's operations on them."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, insert, select, update

from ..oauth.models import DEFAULT_GRANT_TYPES, Application, ClientSecurity
from . import live, rows
from . import tables as t
from .sql import Query
from .transaction import Transaction

# Every token, revocation and introspection request looks its client up by client_id.
_BY_CLIENT_ID = Query(
    select(t.applications).where(t.applications.c.client_id == bindparam("client_id"))
)


class Applications:
    """``ApplicationStore`` plus the dashboard's operations on applications."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def by_client_id(self, client_id: str) -> Application | None:
        row = await self.tx.first(_BY_CLIENT_ID, {"client_id": client_id})
        return rows.application(row) if row else None

    async def by_id(self, application_id: int) -> Application | None:
        """An application of any company (the operator's CLI; the dashboard uses ``get``)."""
        row = await self.tx.first(
            select(t.applications).where(t.applications.c.id == application_id)
        )
        return rows.application(row) if row else None

    async def everyone(self, company_id: int | None = None) -> list[Application]:
        """Every application, or one company's, in the order they were created."""
        query = select(t.applications).order_by(t.applications.c.id)
        if company_id is not None:
            query = query.where(t.applications.c.company_id == company_id)
        return [rows.application(row) for row in await self.tx.rows(query)]

    async def get(self, application_id: int, company_id: int) -> Application | None:
        """An application, only if it belongs to ``company_id`` (tenancy)."""
        row = await self.tx.first(
            select(t.applications).where(
                t.applications.c.id == application_id,
                t.applications.c.company_id == company_id,
            )
        )
        return rows.application(row) if row else None

    async def for_company(self, company_id: int) -> list[Application]:
        found = await self.tx.rows(
            select(t.applications)
            .where(t.applications.c.company_id == company_id)
            .order_by(t.applications.c.name, t.applications.c.id)
        )
        return [rows.application(row) for row in found]

    async def create(
        self,
        *,
        company_id: int | None,
        name: str,
        client_id: str,
        secret_digest: str | None,
        confidential: bool,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        now: int,
        consent: str = "always",
        access_token_lifetime: int | None = None,
        security: ClientSecurity | None = None,
        **agent: str | None,
    ) -> Application:
        """A company's application; an agent application of no company (``store.agents``)
        passes its ``origin``, ``client_metadata`` and ``registration_digest`` as ``agent``."""
        row = await self.tx.first(
            insert(t.applications)
            .values(
                **agent,
                company_id=company_id,
                name=name,
                client_id=client_id,
                secret_digest=secret_digest,
                confidential=confidential,
                redirect_uris="\n".join(redirect_uris),
                scopes=" ".join(scopes),
                created_at=now,
                updated_at=now,
                consent=consent,
                access_token_lifetime=access_token_lifetime,
                **_security_values(security or ClientSecurity()),
            )
            .returning(t.applications)
        )
        return rows.application(row)

    async def update(
        self,
        application: Application,
        *,
        name: str,
        confidential: bool,
        secret_digest: str | None,
        redirect_uris: Sequence[str],
        scopes: Sequence[str],
        now: int,
        consent: str = "always",
        access_token_lifetime: int | None = None,
        security: ClientSecurity | None = None,
    ) -> Application:
        row = await self.tx.first(
            update(t.applications)
            .where(t.applications.c.id == application.id)
            .values(
                name=name,
                confidential=confidential,
                secret_digest=secret_digest,
                redirect_uris="\n".join(redirect_uris),
                scopes=" ".join(scopes),
                updated_at=now,
                consent=consent,
                access_token_lifetime=access_token_lifetime,
                **_security_values(security or ClientSecurity()),
            )
            .returning(t.applications)
        )
        return rows.application(row)

    async def set_secret_digest(self, application_id: int, secret_digest: str, now: int) -> None:
        await self.tx.execute(
            update(t.applications)
            .where(t.applications.c.id == application_id)
            .values(secret_digest=secret_digest, updated_at=now)
        )

    async def revoke_all(self, application_id: int, now: int) -> live.LiveTokens:
        """Revoke every token and consent of an application and drop its codes: what people
        allowed it is not what it now is, so a remembered consent must not stand for it.
        Returns what stopped working, counted from the rows revoked."""
        ended = []
        for table in (t.access_tokens, t.refresh_tokens):
            ended.append(
                await self.tx.rows(
                    update(table)
                    .where(table.c.application_id == application_id, table.c.revoked_at.is_(None))
                    .values(revoked_at=now)
                    .returning(*live.ended_columns(table))
                )
            )
        await self.tx.execute(
            update(t.consents)
            .where(t.consents.c.application_id == application_id, t.consents.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await self.tx.execute(
            delete(t.authorization_codes).where(
                t.authorization_codes.c.application_id == application_id
            )
        )
        return live.stopped(ended[0], ended[1], now)

    async def delete(self, application_id: int, now: int) -> live.LiveTokens:
        """Delete an application with its codes and tokens: they stop working at once.
        Returns what stopped working, counted from the rows deleted."""
        ended = []
        for table in (t.access_tokens, t.refresh_tokens):
            ended.append(
                await self.tx.rows(
                    delete(table)
                    .where(table.c.application_id == application_id)
                    .returning(*live.ended_columns(table), table.c.revoked_at)
                )
            )
        await self.tx.execute(
            delete(t.authorization_codes).where(
                t.authorization_codes.c.application_id == application_id
            )
        )
        await self.tx.execute(delete(t.applications).where(t.applications.c.id == application_id))
        return live.stopped(ended[0], ended[1], now)


def _security_values(security: ClientSecurity) -> dict[str, object]:
    return {
        "access_token_format": security.access_token_format,
        "dpop": security.dpop,
        "token_endpoint_auth_method": security.auth_method,
        "jwks": security.jwks,
        "jwks_uri": security.jwks_uri,
        "require_par": security.require_par,
        "grant_types": None
        if security.grant_types == DEFAULT_GRANT_TYPES
        else " ".join(security.grant_types),
    }
