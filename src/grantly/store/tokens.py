"""Authorization codes and tokens: the ``AuthorizationCodeStore`` and ``TokenStore`` ports.

The exactly-once operations are single conditional UPDATEs (``consume``, ``rotate``), so that
the database, not the process, decides which of several racing requests wins (RFC 6749
§4.1.2, RFC 9700 §4.14.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam, func, insert, select, true, update

from ..oauth.models import (
    AccessToken,
    Application,
    AuthorizationCode,
    NewAuthorizationCode,
    NewTokens,
    RefreshToken,
    ResourceOwner,
    ResourceServer,
    User,
)
from . import live, rows
from . import tables as t
from .consents import retire
from .sql import Query
from .transaction import Transaction

T = TypeVar("T")

# The user's ``active`` comes with a code or a refresh token (the grants check it): one statement.
_OWNER_ACTIVE_OF_REFRESH_TOKEN = (
    select(t.users.c.active).where(t.users.c.id == t.refresh_tokens.c.user_id).scalar_subquery()
)
_OWNER_ACTIVE_OF_CODE = (
    select(t.users.c.active)
    .where(t.users.c.id == t.authorization_codes.c.user_id)
    .scalar_subquery()
)
_REFRESH_TOKEN_SELECT = select(
    t.refresh_tokens, _OWNER_ACTIVE_OF_REFRESH_TOKEN.label("owner_active")
).where(t.refresh_tokens.c.digest == bindparam("digest"))
_REFRESH_TOKEN_BY_DIGEST = Query(_REFRESH_TOKEN_SELECT)
_ACCESS_TOKEN_SELECT = (
    select(
        t.access_tokens,
        t.applications.c.client_id,
        func.coalesce(t.users.c.active, True).label("user_active"),
        # The person and the company, read with the token: a resource request needs them,
        # and one statement sees them in one state (no termination slips in between).
        t.users.c.email.label("user_email"),
        t.users.c.name.label("user_name"),
        t.users.c.admin.label("user_admin"),
        t.companies.c.name.label("company_name"),
    )
    .join(t.applications, t.applications.c.id == t.access_tokens.c.application_id)
    .join(t.companies, t.companies.c.id == t.access_tokens.c.company_id)
    .outerjoin(
        t.users,
        and_(t.users.c.id == t.access_tokens.c.user_id, t.access_tokens.c.owner_type == "user"),
    )
    .where(t.access_tokens.c.digest == bindparam("digest"))
)
_ACCESS_TOKEN_BY_DIGEST = Query(_ACCESS_TOKEN_SELECT)
_CODE_SELECT = select(t.authorization_codes, _OWNER_ACTIVE_OF_CODE.label("owner_active")).where(
    t.authorization_codes.c.digest == bindparam("digest")
)


def _with_client(credential: Any, name: str, clients: Any = t.applications) -> Query:
    """The application (or, with ``clients``, the resource server) of ``client_id`` (its
    columns prefixed ``app_``) with the credential that ``credential`` selects by ``digest``,
    or NULLs: one read for both (``ports``)."""
    found = credential.subquery(name)
    client = clients.alias("client")
    return Query(
        select(*[column.label(f"app_{column.name}") for column in client.c], found)
        .select_from(client.outerjoin(found, true()))
        .where(client.c.client_id == bindparam("client_id"))
    )


_CLIENT_WITH_CODE = _with_client(_CODE_SELECT, "code")
_CLIENT_WITH_REFRESH_TOKEN = _with_client(_REFRESH_TOKEN_SELECT, "refresh_token")
_CLIENT_WITH_ACCESS_TOKEN = _with_client(_ACCESS_TOKEN_SELECT, "access_token")
_RESOURCE_SERVER_WITH_ACCESS_TOKEN = _with_client(
    _ACCESS_TOKEN_SELECT, "access_token", t.resource_servers
)
# The exactly-once steps: each changes its row only if it is still unused (``guarded``).
_REDEEM = Query(
    update(t.authorization_codes)
    .where(
        t.authorization_codes.c.id == bindparam("code_id"),
        t.authorization_codes.c.consumed_at.is_(None),
    )
    .values(consumed_at=bindparam("now"))
    .returning(t.authorization_codes.c.id)
)
# The family's anchor (the code row) is locked first, in the same statement, as revocations
# lock it (``lock_family``): the uncorrelated subquery runs before the refresh token's row is
# taken. It counts, rather than tests, the anchor: a pruned code still lets the grant rotate.
_FAMILY_ANCHOR = (
    select(func.count())
    .select_from(
        select(t.authorization_codes.c.id)
        .where(t.authorization_codes.c.id == bindparam("anchor_id"))
        .with_for_update()
        .subquery()
    )
    .scalar_subquery()
)
_ROTATE = Query(
    update(t.refresh_tokens)
    .where(
        t.refresh_tokens.c.id == bindparam("refresh_token_id"),
        t.refresh_tokens.c.rotated_at.is_(None),
        t.refresh_tokens.c.revoked_at.is_(None),
        _FAMILY_ANCHOR >= 0,
    )
    .values(rotated_at=bindparam("now"))
    .returning(t.refresh_tokens.c.id)
)
_ROTATE_SQLITE = Query(
    update(t.refresh_tokens)
    .where(
        t.refresh_tokens.c.id == bindparam("refresh_token_id"),
        t.refresh_tokens.c.rotated_at.is_(None),
        t.refresh_tokens.c.revoked_at.is_(None),
    )
    .values(rotated_at=bindparam("now"))
    .returning(t.refresh_tokens.c.id)
)
_INSERT_CODE = Query(insert(t.authorization_codes))
_INSERT_ACCESS_TOKEN = Query(insert(t.access_tokens))
_INSERT_REFRESH_TOKEN = Query(insert(t.refresh_tokens))
_LOCK_FAMILY = Query(
    select(t.authorization_codes.c.id)
    .where(t.authorization_codes.c.id == bindparam("family_id"))
    .with_for_update()
)
_LOCK_APPLICATION = Query(
    select(t.applications.c.id)
    .where(t.applications.c.id == bindparam("application_id"))
    .with_for_update(key_share=True)
)


def code_row(code: NewAuthorizationCode) -> dict[str, Any]:
    """The ``authorization_codes`` row of a new code (also ``dev_mint``'s, in bulk)."""
    return {
        "digest": code.digest,
        "application_id": code.application_id,
        "owner_type": code.owner.type,
        "company_id": code.owner.company_id,
        "user_id": code.owner.user_id,
        "redirect_uri": code.redirect_uri,
        "redirect_uri_in_request": code.redirect_uri_in_request,
        "scopes": " ".join(code.scopes),
        "code_challenge": code.code_challenge,
        "code_challenge_method": code.code_challenge_method,
        "created_at": code.created_at,
        "expires_at": code.expires_at,
        "audience": rows.audience_value(code.audience),
    }


def token_rows(tokens: NewTokens) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The ``access_tokens`` row and, for user tokens, the ``refresh_tokens`` row of one
    issuance (also ``dev_mint``'s, in bulk)."""
    common = {
        "application_id": tokens.application_id,
        "owner_type": tokens.owner.type,
        "company_id": tokens.owner.company_id,
        "user_id": tokens.owner.user_id,
        "scopes": " ".join(tokens.scopes),
        "family_id": tokens.family_id,
        "created_at": tokens.created_at,
        "audience": rows.audience_value(tokens.audience),
    }
    access = {
        **common,
        "digest": tokens.access_digest,
        "expires_at": tokens.access_expires_at,
        "jkt": tokens.jkt,
    }
    if tokens.refresh_digest is None:
        return access, None
    assert tokens.refresh_expires_at is not None
    refresh = {
        **common,
        "digest": tokens.refresh_digest,
        "expires_at": tokens.refresh_expires_at,
        "scopes": " ".join(tokens.refresh_scopes),
        "audience": rows.audience_value(tokens.refresh_audience),
        "jkt": tokens.refresh_jkt,
    }
    return access, refresh


class AuthorizationCodes:
    """``AuthorizationCodeStore``."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def save(self, code: NewAuthorizationCode) -> None:
        await self.tx.execute(_INSERT_CODE, code_row(code))

    async def save_many(self, codes: list[NewAuthorizationCode]) -> None:
        """Many codes in one batch (``grantly dev mint``)."""
        await self.tx.execute_many(_INSERT_CODE, [code_row(code) for code in codes])

    async def consume_many(
        self, digests: list[str], application_id: int, now: int
    ) -> dict[str, AuthorizationCode]:
        """``consume`` for many codes in one statement (``grantly dev mint``), by digest."""
        c = t.authorization_codes
        found = await self.tx.rows(
            update(c)
            .where(
                c.c.digest.in_(digests),
                c.c.application_id == application_id,
                c.c.consumed_at.is_(None),
            )
            .values(consumed_at=now)
            .returning(c, _OWNER_ACTIVE_OF_CODE.label("owner_active"))
        )
        return {row.digest: self._code(row) for row in found}

    async def client_with_code(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, AuthorizationCode | None]:
        return await _with_client_read(self.tx, _CLIENT_WITH_CODE, client_id, digest, self._code)

    async def redeem(self, code_id: int, now: int, tokens: NewTokens | None) -> bool:
        inserts = _token_inserts(tokens) if tokens is not None else []
        return await self.tx.guarded(_REDEEM, {"code_id": code_id, "now": now}, inserts)

    @staticmethod
    def _code(row: Any) -> AuthorizationCode:
        return AuthorizationCode(
            id=row.id,
            application_id=row.application_id,
            owner=rows.owner(row),
            redirect_uri=row.redirect_uri,
            redirect_uri_in_request=bool(row.redirect_uri_in_request),
            scopes=rows.scopes(row.scopes),
            code_challenge=row.code_challenge,
            code_challenge_method=row.code_challenge_method,
            expires_at=row.expires_at,
            consumed_at=row.consumed_at,
            owner_active=bool(row.owner_active),
            audience=rows.audience(row.audience),
        )


class Tokens:
    """``TokenStore``."""

    def __init__(self, tx: Transaction) -> None:
        self.tx = tx

    async def issue(self, tokens: NewTokens) -> None:
        # Queued: sent with the unit's next statement or before its COMMIT (with the audit
        # event, usually), in one round trip on PostgreSQL.
        for statement, row in _token_inserts(tokens):
            self.tx.insert_later(statement, row)

    async def live_by_grant(
        self,
        now: int,
        *,
        application_id: int | None = None,
        owner_type: str | None = None,
        company_id: int | None = None,
        user_id: int | None = None,
    ) -> dict[live.GrantKey, live.LiveTokens]:
        """The tokens that work, per grant, of an application, an owner type, a company or a
        person (filters combine): what revoking each grant stops, and when its latest token
        was issued. Dashboard pages: two grouped reads."""
        found = []
        for table, works in (
            (t.access_tokens, live.live_access(now)),
            (t.refresh_tokens, live.live_refresh(now)),
        ):
            c = table.c
            owner = [c.application_id, c.owner_type, c.company_id, c.user_id]
            query = select(*owner, func.count(), func.max(c.created_at)).where(works)
            for column, value in (
                (table.c.application_id, application_id),
                (table.c.owner_type, owner_type),
                (table.c.company_id, company_id),
                (table.c.user_id, user_id),
            ):
                if value is not None:
                    query = query.where(column == value)
            grouped = await self.tx.rows(query.group_by(*owner))
            found.append([(live.key_of(*row[:4]), row[4], row[5]) for row in grouped])
        return live.by_grant(*found)

    async def live_tokens(
        self, now: int, application_id: int, owner: ResourceOwner | None = None
    ) -> live.LiveTokens:
        """What of an application (or of one grant of it) still works: what deleting it,
        changing its scopes or client type, or revoking the grant stops."""
        grants = await self.live_by_grant(
            now,
            application_id=application_id,
            owner_type=owner.type if owner else None,
            company_id=owner.company_id if owner else None,
            user_id=owner.user_id if owner and owner.type == "user" else None,
        )
        return live.total(grants.values())

    async def issue_many(self, issued: list[NewTokens]) -> None:
        """Many issuances in one batch per table (``grantly dev mint``)."""
        pairs = [token_rows(tokens) for tokens in issued]
        await self.tx.execute_many(_INSERT_ACCESS_TOKEN, [access for access, _ in pairs])
        await self.tx.execute_many(
            _INSERT_REFRESH_TOKEN, [refresh for _, refresh in pairs if refresh is not None]
        )

    async def refresh_token(self, digest: str) -> RefreshToken | None:
        row = await self.tx.first(_REFRESH_TOKEN_BY_DIGEST, {"digest": digest})
        return _refresh_token(row) if row is not None else None

    async def access_token(self, digest: str) -> AccessToken | None:
        row = await self.tx.first(_ACCESS_TOKEN_BY_DIGEST, {"digest": digest})
        return _access_token(row) if row is not None else None

    async def client_with_refresh_token(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, RefreshToken | None]:
        return await _with_client_read(
            self.tx, _CLIENT_WITH_REFRESH_TOKEN, client_id, digest, _refresh_token
        )

    async def client_with_access_token(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, AccessToken | None]:
        return await _with_client_read(
            self.tx, _CLIENT_WITH_ACCESS_TOKEN, client_id, digest, _access_token
        )

    async def resource_server_with_access_token(
        self, client_id: str, digest: str
    ) -> tuple[ResourceServer | None, AccessToken | None]:
        row = await self.tx.first(
            _RESOURCE_SERVER_WITH_ACCESS_TOKEN, {"client_id": client_id, "digest": digest}
        )
        if row is None:
            return None, None
        server = rows.resource_server(_Prefixed(row, "app_"))
        return server, (_access_token(row) if row.id is not None else None)

    async def rotate(
        self, refresh_token_id: int, family_id: int, now: int, successor: NewTokens
    ) -> bool:
        if self.tx.backend == "sqlite":
            # A writing transaction holds the whole database from BEGIN IMMEDIATE: no lock.
            guard, params = _ROTATE_SQLITE, {"refresh_token_id": refresh_token_id, "now": now}
        else:
            guard = _ROTATE
            params = {"refresh_token_id": refresh_token_id, "now": now, "anchor_id": family_id}
        return await self.tx.guarded(guard, params, _token_inserts(successor))

    async def lock_family(self, family_id: int) -> None:
        # Everything that changes a family's tokens first locks its anchor, the authorization
        # code row (PostgreSQL FOR UPDATE), so all of them take their row locks in one order,
        # and a revocation waits for a rotation to commit, then sees its new tokens. SQLite
        # needs no lock: a writing transaction holds the whole database from BEGIN IMMEDIATE.
        if self.tx.backend == "sqlite":
            return
        await self.tx.rows(_LOCK_FAMILY, {"family_id": family_id})

    async def successor_used(self, family_id: int, refresh_token_id: int) -> bool:
        r = t.refresh_tokens
        query = (
            select(r.c.id)
            .where(
                r.c.family_id == family_id,
                r.c.id > refresh_token_id,
                r.c.rotated_at.is_not(None),
            )
            .limit(1)
        )
        return await self.tx.first(query) is not None

    async def revoke_family(self, family_id: int, now: int, keep: int | None = None) -> None:
        await self.lock_family(family_id)
        for table in (t.access_tokens, t.refresh_tokens):
            condition = and_(table.c.family_id == family_id, table.c.revoked_at.is_(None))
            if keep is not None and table is t.refresh_tokens:
                condition = and_(condition, table.c.id != keep)
            await self.tx.execute(update(table).where(condition).values(revoked_at=now))

    async def retire_consent(self, application_id: int, owner: ResourceOwner, now: int) -> None:
        await retire(self.tx, application_id, owner, now)

    async def revoke_access_token(self, access_token_id: int, now: int) -> None:
        await self.tx.execute(
            update(t.access_tokens)
            .where(t.access_tokens.c.id == access_token_id, t.access_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_company_tokens(self, application_id: int, company_id: int, now: int) -> None:
        a = t.access_tokens
        if self.tx.backend != "sqlite":
            # Minters of company tokens for one application queue on its row (NO KEY UPDATE
            # does not block the KEY SHARE locks that inserting its tokens takes), so two
            # exchanges at once cannot each revoke only the older tokens and both stay active.
            await self.tx.rows(_LOCK_APPLICATION, {"application_id": application_id})
        await self.tx.execute(
            update(a)
            .where(
                a.c.application_id == application_id,
                a.c.company_id == company_id,
                a.c.owner_type == "company",
                # Company tokens never expire; a client credentials token (RFC 6749 §4.4),
                # which acts for the company too, does, and is not replaced by them.
                a.c.expires_at.is_(None),
                a.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )


def _token_inserts(tokens: NewTokens) -> list[tuple[Query, dict[str, Any]]]:
    access, refresh = token_rows(tokens)
    inserts = [(_INSERT_ACCESS_TOKEN, access)]
    if refresh is not None:
        inserts.append((_INSERT_REFRESH_TOKEN, refresh))
    return inserts


class _Prefixed:
    """A row's columns named ``<prefix><name>``, read as ``name``."""

    __slots__ = ("prefix", "row")

    def __init__(self, row: Any, prefix: str) -> None:
        self.row, self.prefix = row, prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, self.prefix + name)


async def _with_client_read(
    tx: Transaction, query: Query, client_id: str, digest: str, build: Callable[[Any], T]
) -> tuple[Application | None, T | None]:
    """One read of ``_with_client``'s: (the application, the credential), either None."""
    row = await tx.first(query, {"client_id": client_id, "digest": digest})
    if row is None:
        return None, None
    return rows.application(_Prefixed(row, "app_")), (build(row) if row.id is not None else None)


def _refresh_token(row: Any) -> RefreshToken:
    return RefreshToken(
        id=row.id,
        application_id=row.application_id,
        owner=rows.owner(row),
        scopes=rows.scopes(row.scopes),
        family_id=row.family_id,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        rotated_at=row.rotated_at,
        owner_active=bool(row.owner_active),
        audience=rows.audience(row.audience),
        jkt=row.jkt,
    )


def _access_token(row: Any) -> AccessToken:
    return AccessToken(
        id=row.id,
        application_id=row.application_id,
        client_id=row.client_id,
        owner=rows.owner(row),
        scopes=rows.scopes(row.scopes),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        user_active=bool(row.user_active),
        user=User(
            id=row.user_id,
            company_id=row.company_id,
            email=row.user_email,
            name=row.user_name,
            admin=bool(row.user_admin),
            active=bool(row.user_active),
        )
        if row.user_email is not None
        else None,
        company_name=row.company_name,
        audience=rows.audience(row.audience),
        jkt=row.jkt,
    )
