"""The authorization code grant's token request (RFC 6749 §4.1.3, §4.1.4)."""

from __future__ import annotations

from ..errors import InvalidGrant, SecurityEvent
from ..models import Application, AuthorizationCode, TokenResponse
from ..params import ParamReader
from ..pkce import verify
from ..secrets import digest
from .common import TokenContext, mint, owner_still_entitled


async def exchange(
    params: ParamReader, application: Application, context: TokenContext
) -> TokenResponse:
    """Redeem an authorization code for tokens.

    RFC 6749 §4.1.3: the code must have been issued to this client, must not have been used,
    and the redirect_uri must be identical to the one of the authorization request when that
    request included one. RFC 6749 §4.1.2 and RFC 9700 §4.2.4: a code presented a second time
    fails and revokes the tokens already issued from it, once the caller has proven possession
    of the code as its first redeemer had to (client authentication, redirect_uri, PKCE
    verifier: Doorkeeper's and oidc-provider's order), so that someone holding a leaked, used
    code of a public client cannot revoke its owner's tokens. RFC 7636 §4.6: the code_verifier
    must match. The code is consumed atomically, so of many racing redemptions only one
    succeeds.
    """
    code = params.require("code")
    redirect_uri = params.get("redirect_uri")
    verifier = params.get("code_verifier")
    now = context.clock.now()
    code_digest = digest(code)

    record = await context.codes.consume(code_digest, application.id, now)
    if record is None:
        previous = await context.codes.find(code_digest)
        if previous is None:
            raise InvalidGrant("the authorization code is invalid.")
        if previous.application_id != application.id:
            # Not burnt: a client holding a stolen code cannot deny it to its owner.
            raise InvalidGrant("the authorization code was issued to another client.")
        _proves_possession(previous, redirect_uri, verifier)
        await context.tokens.revoke_family(previous.id, now)
        raise InvalidGrant(
            "the authorization code was already used; tokens issued from it are revoked.",
            debug=f"code {previous.id} replayed",
            event=SecurityEvent(
                "code.replayed", application.id, previous.owner.company_id, previous.owner.user_id
            ),
        )
    if now >= record.expires_at:
        raise InvalidGrant("the authorization code has expired; authorize again.")
    _proves_possession(record, redirect_uri, verifier)
    if not owner_still_entitled(record.owner, record.owner_active):
        raise InvalidGrant("the user who authorized this code is no longer active.")
    return await mint(context, application, record.owner, record.scopes, record.id)


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
