"""``grantly dev mint``: codes and tokens for benchmarks, minted in bulk through the protocol
core.

Each value is produced by the code the real flow runs: the authorization request is validated
by ``oauth.authorize.validate`` and the code issued by ``oauth.authorize.issue_code`` (as when
the person presses Allow); tokens come from ``oauth.grants.authorization_code.exchange``
redeeming such a code. Only the storage behind the ports is batched, so that tens of thousands
of values take seconds: the rows the repositories would insert one statement at a time are
inserted with one ``executemany`` per table (building a SQLAlchemy ``insert().values()`` per
row costs more than the rest of minting together), and the codes of a batch are consumed by
one conditional UPDATE (the repository's ``consume`` statement, for many digests at once).
``tests/test_dev_mint.py`` checks that the rows are the repositories' rows, column for column.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .oauth import authorize as authz
from .oauth.clock import Clock
from .oauth.errors import OAuthError
from .oauth.grants import authorization_code
from .oauth.grants.common import TokenContext, TokenPolicy
from .oauth.models import AuthorizationCode, NewAuthorizationCode, NewTokens, User
from .oauth.params import ParamReader
from .oauth.secrets import digest
from .store import tables as t
from .store.repositories import Applications, AuthorizationCodes, Owners, Tokens

KINDS = ("code", "refresh_token", "access_token")


def code_row(code: NewAuthorizationCode) -> dict[str, Any]:
    """The row ``AuthorizationCodes.save`` inserts."""
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
    }


def token_rows(tokens: NewTokens) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The access-token row and the refresh-token row ``Tokens.issue`` inserts."""
    owner = {
        "application_id": tokens.application_id,
        "owner_type": tokens.owner.type,
        "company_id": tokens.owner.company_id,
        "user_id": tokens.owner.user_id,
        "scopes": " ".join(tokens.scopes),
        "family_id": tokens.family_id,
        "created_at": tokens.created_at,
    }
    access = {**owner, "digest": tokens.access_digest, "expires_at": tokens.access_expires_at}
    if tokens.refresh_digest is None:
        return access, None
    refresh = {
        **owner,
        "digest": tokens.refresh_digest,
        "expires_at": tokens.refresh_expires_at,
        "scopes": " ".join(tokens.refresh_scopes),
    }
    return access, refresh


class _Rows:
    """Rows waiting to be inserted, one executemany per table."""

    def __init__(self) -> None:
        self.rows: dict[Table, list[dict[str, Any]]] = defaultdict(list)

    async def flush(self, connection: AsyncConnection) -> None:
        for table, rows in self.rows.items():
            if rows:
                await connection.execute(insert(table), rows)
        self.rows.clear()


class _BatchedCodes(AuthorizationCodes):
    """``AuthorizationCodeStore``: saves the repository's row (batched); consumes the codes of
    a batch with one conditional UPDATE, then hands each grant its row."""

    def __init__(self, connection: AsyncConnection, pending: _Rows) -> None:
        super().__init__(connection)
        self.pending = pending
        self.consumed: dict[str, AuthorizationCode] = {}

    async def save(self, code: NewAuthorizationCode) -> None:
        self.pending.rows[t.authorization_codes].append(code_row(code))

    async def consume_all(self, digests: list[str], application_id: int, now: int) -> None:
        rows = await self.connection.execute(
            update(t.authorization_codes)
            .where(
                t.authorization_codes.c.digest.in_(digests),
                t.authorization_codes.c.application_id == application_id,
                t.authorization_codes.c.consumed_at.is_(None),
            )
            .values(consumed_at=now)
            .returning(t.authorization_codes)
        )
        self.consumed = {row.digest: AuthorizationCodes._code(row) for row in rows}

    async def consume(self, digest: str, application_id: int, now: int) -> AuthorizationCode | None:
        record = self.consumed.pop(digest, None)
        return record if record is not None and record.application_id == application_id else None


class _BatchedTokens(Tokens):
    """``TokenStore``: issues the repository's rows (batched)."""

    def __init__(self, connection: AsyncConnection, pending: _Rows) -> None:
        super().__init__(connection)
        self.pending = pending

    async def issue(self, tokens: NewTokens) -> None:
        access, refresh = token_rows(tokens)
        self.pending.rows[t.access_tokens].append(access)
        if refresh is not None:
            self.pending.rows[t.refresh_tokens].append(refresh)


class _OnceOwners(Owners):
    """``OwnerStore``: the user is checked once per batch (it is the same user)."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        self.known: dict[int, bool] = {}

    async def user_is_active(self, user_id: int) -> bool:
        if user_id not in self.known:
            self.known[user_id] = await super().user_is_active(user_id)
        return self.known[user_id]


@dataclass(frozen=True)
class MintRequest:
    kind: str
    params: dict[str, list[str]]
    user: User
    code_lifetime: int
    authorization_policy: authz.AuthorizationPolicy
    token_policy: TokenPolicy
    clock: Clock


async def mint_batch(connection: AsyncConnection, request: MintRequest, n: int) -> list[str]:
    """Mint ``n`` values in the caller's transaction. Raises ``OAuthError`` when the
    authorization request would be refused."""
    auth = await authz.validate(
        request.params, Applications(connection), request.authorization_policy
    )
    if request.kind != "code" and auth.code_challenge is None and auth.application.public:
        raise OAuthError("a public application needs PKCE: mint codes for it, not tokens.")
    pending = _Rows()
    codes = _BatchedCodes(connection, pending)
    minted = [
        await authz.issue_code(auth, request.user, codes, request.clock, request.code_lifetime)
        for _ in range(n)
    ]
    await pending.flush(connection)
    if request.kind == "code":
        return minted

    await codes.consume_all([digest(c) for c in minted], auth.application.id, request.clock.now())
    context = TokenContext(
        applications=Applications(connection),
        codes=codes,
        tokens=_BatchedTokens(connection, pending),
        owners=_OnceOwners(connection),
        clock=request.clock,
        policy=request.token_policy,
    )
    values = []
    pick: Callable[[Any], str | None] = (
        (lambda r: r.access_token)
        if request.kind == "access_token"
        else (lambda r: r.refresh_token)
    )
    for code in minted:
        exchange = {"code": [code], "grant_type": ["authorization_code"]}
        if auth.redirect_uri_in_request:
            exchange["redirect_uri"] = [auth.redirect_uri]
        tokens = await authorization_code.exchange(
            ParamReader(exchange, request.token_policy.max_parameter_length),
            auth.application,
            context,
        )
        value = pick(tokens)
        if value is None:
            raise OAuthError("this grant has no refresh token (company tokens have none).")
        values.append(value)
    await pending.flush(connection)
    return values
