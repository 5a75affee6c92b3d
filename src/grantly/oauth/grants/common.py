"""What every grant shares: the context it runs in and how tokens are minted."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .. import clients, resources
from ..client_assertions import Authenticator
from ..clients import ClientCredentials
from ..clock import Clock
from ..dpop import DpopVerifier, InvalidDpopProof, Proof
from ..errors import OAuthError
from ..models import Application, Audience, NewTokens, ResourceOwner, TokenResponse
from ..params import ParamReader
from ..ports import ApplicationStore, AuthorizationCodeStore, Signer, TokenStore
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
    # RFC 6749 §4.4: a client credentials token lives this long, and has no refresh token.
    client_credentials_lifetime: int = 3600


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
    # Signs RFC 9068 access tokens for applications that want JWTs.
    signer: Signer | None = None
    # Verifies DPoP proofs (RFC 9449 §4.3); the request's proof, once verified (§5).
    dpop: DpopVerifier | None = None
    proof: Proof | None = None
    # Client authentication beyond secrets: private_key_jwt (RFC 7523 §2.2).
    authenticator: Authenticator | None = None


JWT_HEADER: dict[str, object] = {"typ": "at+jwt"}


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
    grant_type: str = "authorization_code",
) -> tuple[NewTokens, TokenResponse]:
    """A fresh access token, plus a refresh token for user tokens (RFC 6749 §5.1), as the
    digests to store and the response to send; the caller stores them (``redeem``,
    ``rotate`` or ``issue``). A company token has neither expiry nor refresh token, and
    replaces the application's previous company token for that company (Factorial's rule).
    A client credentials token (RFC 6749 §4.4) acts for the company too, but lives an hour,
    has no refresh token (§4.4.3: "SHOULD NOT be included") and replaces nothing.
    The access token is for ``audience``; the refresh token for the whole grant's,
    ``refresh_audience`` (RFC 8707 §2.2), by default the same.

    RFC 9449 §5: with a DPoP proof the access token is bound to its key (``token_type``
    DPoP), and so is a public client's refresh token; an application that requires DPoP gets
    no token without one. RFC 9068: an application that asked for JWT access tokens gets an
    expiring token as a JWT signed with the server's active key; a company token stays opaque,
    since a JWT that never expires could not be revoked for whoever checks it offline.
    """
    now = context.clock.now()
    application_id = application.id
    jkt = context.proof.jkt if context.proof is not None else None
    if jkt is None and application.dpop == "required":
        raise InvalidDpopProof(
            "this application requires DPoP: send a DPoP proof with the token request "
            "(RFC 9449 section 5)."
        )
    machine = grant_type == "client_credentials"
    refresh_token: str | None
    if machine:
        expires_in: int | None = context.policy.client_credentials_lifetime
        refresh_token = None
    elif owner.type == "company":
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
    if application.access_token_format == "jwt" and expires_in is not None:
        access_token = await _jwt_access_token(
            context, application, owner, scopes, audience, now, expires_in, jkt, machine
        )
    else:
        access_token = new_secret(ACCESS_TOKEN_PREFIX)
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
        jkt=jkt,
        # RFC 9449 §5: a confidential client proves itself when it refreshes; a public one
        # has only its key.
        refresh_jkt=jkt if application.public and refresh_token is not None else None,
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
        token_type="DPoP" if jkt is not None else "Bearer",
        grant_type=grant_type,
    )
    if context.on_issue is not None:
        await context.on_issue(response)
    return tokens, response


async def _jwt_access_token(
    context: TokenContext,
    application: Application,
    owner: ResourceOwner,
    scopes: tuple[str, ...],
    audience: Audience,
    now: int,
    expires_in: int,
    jkt: str | None,
    machine: bool,
) -> str:
    """RFC 9068 §2: header ``typ`` at+jwt; ``iss``, ``exp``, ``aud``, ``sub``, ``client_id``,
    ``iat``, ``jti`` (§2.2), ``scope`` (§2.2.3), Grantly's ``company_id`` and
    ``resource_owner_type``; RFC 9449 §6.1 ``cnf.jkt`` when bound. §2.2: with no resource
    owner (client credentials) ``sub`` names the client. Only its digest is stored, like an
    opaque token's, so revocation and introspection work the same."""
    if context.signer is None:
        raise RuntimeError("JWT access tokens need a signer in the token context")
    own = context.policy.resources
    claims: dict[str, object] = {
        "iss": own.issuer,
        "sub": application.client_id if machine else owner.subject,
        "aud": resources.audience_claim(audience, own),
        "client_id": application.client_id,
        "iat": now,
        "exp": now + expires_in,
        "jti": secrets.token_urlsafe(16),
        "scope": " ".join(scopes),
        "company_id": owner.company_id,
        "resource_owner_type": owner.type,
    }
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt}
    return await context.signer.sign(dict(JWT_HEADER), claims)


async def presented(
    params: ParamReader, name: str, credentials: ClientCredentials, context: TokenContext
) -> str:
    """The credential a grant presents (``code``, ``refresh_token``). When it is missing or
    malformed, the client is authenticated first: a client that fails authentication learns
    nothing else about its request (RFC 6749 §5.2 ``invalid_client`` comes first)."""
    try:
        value = params.get(name)
    except OAuthError:
        await clients.authenticate(credentials, context.applications, context.authenticator)
        raise
    if value is None:
        await clients.authenticate(credentials, context.applications, context.authenticator)
        return params.require(name)
    return value


def owner_still_entitled(owner: ResourceOwner, owner_active: bool) -> bool:
    """A user grant needs the user to still be an active employee (a terminated employee's
    grants stop at once); a company grant acts for the company whoever authorized it."""
    if owner.type == "company":
        return True
    return owner.user_id is not None and owner_active
