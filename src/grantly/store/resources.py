"""Resource servers (RFC 8707): the ``ResourceStore`` port and the operator's operations.

A grant names a resource server by its normalized URI (unique); the authorization endpoint
looks it up once per ``resource`` named. The server's own introspection reads it together with
the token it asks about (``Tokens.resource_server_with_access_token``).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, insert, select

from ..oauth.models import ResourceServer
from . import rows
from . import tables as t
from .sql import Query
from .transaction import Transaction

_BY_URI = Query(select(t.resource_servers).where(t.resource_servers.c.uri == bindparam("uri")))


class ResourceServers:
    """``ResourceStore`` plus the CLI's operations on resource servers."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def by_uri(self, uri: str) -> ResourceServer | None:
        row = await self.tx.first(_BY_URI, {"uri": uri})
        return rows.resource_server(row) if row else None

    async def by_id(self, server_id: int) -> ResourceServer | None:
        row = await self.tx.first(
            select(t.resource_servers).where(t.resource_servers.c.id == server_id)
        )
        return rows.resource_server(row) if row else None

    async def everyone(self) -> list[ResourceServer]:
        """Every resource server, in the order they were registered."""
        found = await self.tx.rows(select(t.resource_servers).order_by(t.resource_servers.c.id))
        return [rows.resource_server(row) for row in found]

    async def create(
        self,
        *,
        uri: str,
        name: str,
        scopes: Sequence[str],
        client_id: str,
        secret_digest: str,
        now: int,
    ) -> ResourceServer:
        """Raises the store's ``Conflict`` when the URI (or the client_id) is taken."""
        row = await self.tx.first(
            insert(t.resource_servers)
            .values(
                uri=uri,
                name=name,
                scopes=" ".join(scopes),
                client_id=client_id,
                secret_digest=secret_digest,
                created_at=now,
            )
            .returning(t.resource_servers)
        )
        return rows.resource_server(row)

    async def delete(self, server_id: int) -> None:
        """Its credentials stop introspecting at once, and grants can no longer name it.
        Tokens already issued for it keep their audience: they name its URI, which a server
        registered there again would accept (the same resource, new credentials)."""
        await self.tx.execute(
            delete(t.resource_servers).where(t.resource_servers.c.id == server_id)
        )
