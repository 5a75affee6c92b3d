"""The authorization code grant's token request (RFC 6749 §4.1.3, §4.1.4)."""

from __future__ import annotations

from .. import clients, resources
from ..clients import ClientCredentials
from ..errors import InvalidGrant, SecurityEvent
from ..models import Application, AuthorizationCode, TokenResponse
from ..params import ParamReader
from ..pkce import verify
from ..secrets import digest
from .common import TokenContext, owner_still_entitled, prepare, presented


async def exchange(
    params: ParamReader, credentials: ClientCredentials, context: TokenContext
) -> TokenResponse:
    """Redeem an authorization code for tokens.

    The client and the code are read together, then the client is authenticated (RFC 6749
    §3.2.1) before anything about the code is told. RFC 6749 §4.1.3: the code must have been
    issued to this client, must not have been used, and the redirect_uri must be identical to
    the one of the authorization request when that request included one; RFC 7636 §4.6: the
    code_verifier must match. A failed proof of possession burns the code: the holder of a
    stolen code gets one guess. RFC 6749 §4.1.2 and RFC 9700 §4.2.4: a code presented a second
    time fails and revokes the tokens already issued from it, once the caller has proven
    possession of the code as its first redeemer had to (Doorkeeper's and oidc-provider's
    order), so that someone holding a leaked, used code of a public client cannot revoke its
    owner's tokens. The code is used and the tokens stored in one atomic step (``redeem``),
    so of many racing redemptions exactly one gets tokens; the others are replays. RFC 8707
    §2.2: ``resource`` may narrow the access token to some of the resources the code was
    authorized for (the refresh token keeps them all), and never name another.
    """
    code = await presented(params, "code", credentials, context)
    application, record = await context.codes.client_with_code(
        clients.claimed_id(credentials), digest(code)
    )
    application = await clients.check(credentials, application, context.authenticator)
    return await redeem(params, application, record, context)


async def redeem(
    params: ParamReader,
    application: Application,
    record: AuthorizationCode | None,
    context: TokenContext,
) -> TokenResponse:
    """The code grant once the client is authenticated: ``record`` is the code presented, as
    read with the client (``exchange``)."""
    now = context.clock.now()
    redirect_uri = params.get("redirect_uri")
    verifier = params.get("code_verifier")
    if record is None:
        raise InvalidGrant("the authorization code is invalid.")
    if record.application_id != application.id:
        # Not burnt: a client holding a stolen code cannot deny it to its owner.
        raise InvalidGrant("the authorization code was issued to another client.")
    if record.consumed_at is not None:
        _proves_possession(record, redirect_uri, verifier)
        raise await _replayed(context, application, record, now)
    if now >= record.expires_at:
        raise InvalidGrant("the authorization code has expired; authorize again.")
    try:
        _proves_possession(record, redirect_uri, verifier)
    except InvalidGrant:
        await context.codes.redeem(record.id, now, None)
        raise
    if not owner_still_entitled(record.owner, record.owner_active):
        raise InvalidGrant("the user who authorized this code is no longer active.")
    audience = resources.narrowed(params, record.audience, context.policy.resources)
    tokens, response = await prepare(
        context,
        application,
        record.owner,
        record.scopes,
        record.id,
        audience=audience,
        refresh_audience=record.audience,
    )
    if not await context.codes.redeem(record.id, now, tokens):
        raise await _replayed(context, application, record, now)  # a racing request won
    return response


async def _replayed(
    context: TokenContext, application: Application, record: AuthorizationCode, now: int
) -> InvalidGrant:
    await context.tokens.revoke_family(record.id, now)
    await context.tokens.retire_consent(application.id, record.owner, now)
    return InvalidGrant(
        "the authorization code was already used; tokens issued from it are revoked.",
        debug=f"code {record.id} replayed",
        event=SecurityEvent(
            "code.replayed", application.id, record.owner.company_id, record.owner.user_id
        ),
    )


def _proves_possession(
    record: AuthorizationCode, redirect_uri: str | None, verifier: str | None
) -> None:
    """RFC 6749 §4.1.3: redirect_uri identical to the authorization request's when that
    request included one; RFC 7636 §4.6: the verifier matches the code's challenge."""
    if record.redirect_uri_in_request or redirect_uri is not None:
        if redirect_uri is None:
            raise InvalidGrant(
                "redirect_uri is required: it was part of the authorization request."
            )
        if redirect_uri != record.redirect_uri:
            raise InvalidGrant("redirect_uri does not match the one the code was issued for.")
    verify(verifier, record.code_challenge, record.code_challenge_method)
