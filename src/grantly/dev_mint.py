"""``grantly dev mint``: codes and tokens for benchmarks, minted in bulk through the protocol
core.

Each value is produced by the code the real flow runs: the authorization request is validated
by ``oauth.authorize.validate`` and the code issued by ``oauth.authorize.issue_code`` (as when
the person presses Allow); tokens come from ``oauth.grants.authorization_code.exchange``
redeeming such a code. Only the database round trips are batched, so that tens of thousands of
values take seconds: the repositories' own INSERT statements are collected and executed as one
``executemany`` per table, and the codes of a batch are consumed by one conditional UPDATE
(the repository's ``consume`` statement, for many digests at once).
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


class _CapturedInserts:
    """Stands in for a connection: records the INSERTs a repository would execute, so that
    they run later as one executemany per table."""

    def __init__(self) -> None:
        self.rows: dict[Table, list[dict[str, Any]]] = defaultdict(list)

    async def execute(self, statement: Any, *_args: Any) -> None:
        table = statement.table
        assert statement.is_insert, "only INSERTs are batched"
        values = getattr(statement, "_values", None)  # the statement's own parameters
        if values is None:
            self.rows[table].append(dict(statement.compile().params))
        else:
            self.rows[table].append(
                {
                    (k if isinstance(k, str) else k.key): getattr(v, "value", v)
                    for k, v in values.items()
                }
            )

    async def flush(self, connection: AsyncConnection) -> None:
        for table, rows in self.rows.items():
            if rows:
                await connection.execute(insert(table), rows)
        self.rows.clear()


class _BatchedCodes:
    """``AuthorizationCodeStore``: saves through the repository's INSERT (batched); consumes
    the codes of a batch with one conditional UPDATE, then hands each grant its row."""

    def __init__(self, connection: AsyncConnection, captured: _CapturedInserts) -> None:
        self.connection = connection
        self.writer = AuthorizationCodes(captured)  # type: ignore[arg-type]
        self.consumed: dict[str, AuthorizationCode] = {}

    async def save(self, code: NewAuthorizationCode) -> None:
        await self.writer.save(code)

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

    async def find(self, digest: str) -> AuthorizationCode | None:
        return await AuthorizationCodes(self.connection).find(digest)


class _BatchedTokens(Tokens):
    """``TokenStore``: issues through the repository's INSERTs (batched)."""

    def __init__(self, connection: AsyncConnection, captured: _CapturedInserts) -> None:
        super().__init__(connection)
        self.writer = Tokens(captured)  # type: ignore[arg-type]

    async def issue(self, tokens: NewTokens) -> None:
        await self.writer.issue(tokens)


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
    captured = _CapturedInserts()
    codes = _BatchedCodes(connection, captured)
    minted = [
        await authz.issue_code(auth, request.user, codes, request.clock, request.code_lifetime)
        for _ in range(n)
    ]
    await captured.flush(connection)
    if request.kind == "code":
        return minted

    await codes.consume_all([digest(c) for c in minted], auth.application.id, request.clock.now())
    context = TokenContext(
        applications=Applications(connection),
        codes=codes,
        tokens=_BatchedTokens(connection, captured),
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
    await captured.flush(connection)
    return values
