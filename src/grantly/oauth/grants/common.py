"""What every grant shares: the context it runs in and how tokens are minted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .. import clients
from ..clients import ClientCredentials
from ..clock import Clock
from ..errors import OAuthError
from ..models import Application, Audience, NewTokens, ResourceOwner, TokenResponse
from ..params import ParamReader
from ..ports import ApplicationStore, AuthorizationCodeStore, TokenStore
from ..resources import OwnResources
from ..secrets import ACCESS_TOKEN_PREFIX, REFRESH_TOKEN_PREFIX, digest, new_secret


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """Lifetimes and limits, from settings. Company tokens never expire (Factorial's rule)."""

    access_token_lifetime: int = 3600
    refresh_token_lifetime: int = 7 * 24 * 3600
    refresh_token_grace_period: int = 0
    server_scopes: tuple[str, ...] = ("read", "write")
    max_parameter_length: int = 2048
    # Grantly's own resources, under its issuer (RFC 8707 ``resource`` and RFC 7662 ``aud``).
    resources: OwnResources = field(default_factory=OwnResources)


# Called with each token response before its tokens are stored, in the same unit of work (the
# web layer records the audit event there, so that it is written with the tokens, or not at
# all when a racing request won).
IssuanceHook = Callable[[TokenResponse], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TokenContext:
    applications: ApplicationStore
    codes: AuthorizationCodeStore
    tokens: TokenStore
    clock: Clock
    policy: TokenPolicy
    on_issue: IssuanceHook | None = None


async def prepare(
    context: TokenContext,
    application: Application,
    owner: ResourceOwner,
    scopes: tuple[str, ...],
    family_id: int,
    refresh_scopes: tuple[str, ...] | None = None,
    grace_retry: bool = False,
    *,
    audience: Audience,
    refresh_audience: Audience | None = None,
) -> tuple[NewTokens, TokenResponse]:
    """A fresh access token, plus a refresh token for user tokens (RFC 6749 §5.1), as the
    digests to store and the response to send; the caller stores them (``redeem``,
    ``rotate`` or ``issue``). A company token has neither expiry nor refresh token, and
    replaces the application's previous company token for that company (Factorial's rule).
    The access token is for ``audience``; the refresh token for the whole grant's,
    ``refresh_audience`` (RFC 8707 §2.2), by default the same."""
    now = context.clock.now()
    application_id = application.id
    access_token = new_secret(ACCESS_TOKEN_PREFIX)
    if owner.type == "company":
        expires_in = None
        refresh_token = None
        # The grant's lock first, as every change to a grant's tokens takes it (``ports``):
        # revoking the older company tokens before it, while a replay of the same code holds
        # it and waits on those tokens, deadlocked.
        await context.tokens.lock_family(family_id)
        await context.tokens.revoke_company_tokens(application_id, owner.company_id, now)
    else:
        expires_in = application.access_token_lifetime or context.policy.access_token_lifetime
        refresh_token = new_secret(REFRESH_TOKEN_PREFIX)
    tokens = NewTokens(
        application_id=application_id,
        owner=owner,
        scopes=scopes,
        created_at=now,
        access_digest=digest(access_token),
        access_expires_at=None if expires_in is None else now + expires_in,
        refresh_digest=None if refresh_token is None else digest(refresh_token),
        refresh_expires_at=(
            None if refresh_token is None else now + context.policy.refresh_token_lifetime
        ),
        family_id=family_id,
        refresh_scopes=refresh_scopes if refresh_scopes is not None else scopes,
        audience=audience,
        refresh_audience=refresh_audience if refresh_audience is not None else audience,
    )
    response = TokenResponse(
        access_token=access_token,
        scopes=scopes,
        created_at=now,
        expires_in=expires_in,
        refresh_token=refresh_token,
        application_id=application_id,
        owner=owner,
        grace_retry=grace_retry,
    )
    if context.on_issue is not None:
        await context.on_issue(response)
    return tokens, response


async def presented(
    params: ParamReader, name: str, credentials: ClientCredentials, context: TokenContext
) -> str:
    """The credential a grant presents (``code``, ``refresh_token``). When it is missing or
    malformed, the client is authenticated first: a client that fails authentication learns
    nothing else about its request (RFC 6749 §5.2 ``invalid_client`` comes first)."""
    try:
        value = params.get(name)
    except OAuthError:
        await clients.authenticate(credentials, context.applications)
        raise
    if value is None:
        await clients.authenticate(credentials, context.applications)
        return params.require(name)
    return value


def owner_still_entitled(owner: ResourceOwner, owner_active: bool) -> bool:
    """A user grant needs the user to still be an active employee (a terminated employee's
    grants stop at once); a company grant acts for the company whoever authorized it."""
    if owner.type == "company":
        return True
    return owner.user_id is not None and owner_active
