"""``grantly dev mint``: codes and tokens for benchmarks, minted in bulk through the protocol
core.

Each value is produced by the code the real flow runs: the authorization request is validated
by ``oauth.authorize.validate`` and the code issued by ``oauth.authorize.issue_code`` (as when
the person presses Allow); tokens come from ``oauth.grants.authorization_code.exchange``
redeeming such a code. Only the storage behind the ports is batched, so that tens of thousands
of values take seconds: the repositories' own rows go in one batch per table
(``save_many``, ``issue_many``), and the codes of a batch are consumed by one conditional
UPDATE (``consume_many``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .oauth import authorize as authz
from .oauth.clock import Clock
from .oauth.errors import OAuthError
from .oauth.grants import authorization_code
from .oauth.grants.common import TokenContext, TokenPolicy
from .oauth.models import Application, AuthorizationCode, NewAuthorizationCode, NewTokens, User
from .oauth.params import ParamReader
from .oauth.secrets import digest
from .store.tokens import AuthorizationCodes, Tokens
from .store.unit import Store

KINDS = ("code", "refresh_token", "access_token")


class _BatchedCodes:
    """``AuthorizationCodeStore``: codes are saved in one batch; the codes of a batch are
    consumed by one conditional UPDATE beforehand, then each grant is handed its record as it
    was before that UPDATE, and its ``redeem`` (already done) queues the tokens."""

    def __init__(self, codes: AuthorizationCodes, tokens: Tokens, application: Application):
        self.codes = codes
        self.tokens = tokens
        self.application = application
        self.saved: list[NewAuthorizationCode] = []
        self.consumed: dict[str, AuthorizationCode] = {}
        self.issued: list[NewTokens] = []

    async def save(self, code: NewAuthorizationCode) -> None:
        self.saved.append(code)

    async def flush(self) -> None:
        await self.codes.save_many(self.saved)
        self.saved = []

    async def consume_all(self, digests: list[str], application_id: int, now: int) -> None:
        self.consumed = await self.codes.consume_many(digests, application_id, now)

    async def client_with_code(
        self, client_id: str, digest: str
    ) -> tuple[Application | None, AuthorizationCode | None]:
        record = self.consumed.pop(digest, None)
        return self.application, (replace(record, consumed_at=None) if record else None)

    async def redeem(self, code_id: int, now: int, tokens: NewTokens | None) -> bool:
        if tokens is not None:
            self.issued.append(tokens)
        return True

    async def flush_tokens(self) -> None:
        await self.tokens.issue_many(self.issued)
        self.issued = []


@dataclass(frozen=True)
class MintRequest:
    kind: str
    params: dict[str, list[str]]
    user: User
    code_lifetime: int
    authorization_policy: authz.AuthorizationPolicy
    token_policy: TokenPolicy
    clock: Clock


async def mint_batch(uow: Store, request: MintRequest, n: int) -> list[str]:
    """Mint ``n`` values in the caller's unit of work. Raises ``OAuthError`` when the
    authorization request would be refused."""
    auth = await authz.validate(
        request.params, uow.applications, request.authorization_policy, uow.resources
    )
    if request.kind != "code" and auth.code_challenge is None and auth.application.public:
        raise OAuthError("a public application needs PKCE: mint codes for it, not tokens.")
    codes = _BatchedCodes(uow.codes, uow.tokens, auth.application)
    minted = [
        await authz.issue_code(auth, request.user, codes, request.clock, request.code_lifetime)
        for _ in range(n)
    ]
    await codes.flush()
    if request.kind == "code":
        return minted

    await codes.consume_all([digest(c) for c in minted], auth.application.id, request.clock.now())
    context = TokenContext(
        applications=uow.applications,
        codes=codes,
        tokens=uow.tokens,
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
        _, record = await codes.client_with_code(auth.application.client_id, digest(code))
        # The client is the application the request was validated for (no secret here).
        response = await authorization_code.redeem(
            ParamReader(exchange, request.token_policy.max_parameter_length),
            auth.application,
            record,
            context,
        )
        value = pick(response)
        if value is None:
            raise OAuthError("this grant has no refresh token (company tokens have none).")
        values.append(value)
    await codes.flush_tokens()
    return values
