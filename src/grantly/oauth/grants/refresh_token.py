"""The refresh token grant (RFC 6749 §6), with rotation (RFC 9700 §4.14.2)."""

from __future__ import annotations

from .. import clients, resources
from .. import scopes as scope_rules
from ..clients import ClientCredentials
from ..errors import InvalidGrant, InvalidScope, SecurityEvent, shown
from ..models import Application, RefreshToken, TokenResponse
from ..params import ParamReader
from ..secrets import digest
from .common import TokenContext, owner_still_entitled, prepare, presented


async def refresh(
    params: ParamReader, credentials: ClientCredentials, context: TokenContext
) -> TokenResponse:
    """Trade a refresh token for a new access token and a new refresh token.

    RFC 6749 §6: the refresh token must have been issued to this client; a requested scope
    must not exceed the original grant. RFC 9700 §4.14.2: refresh tokens rotate; presenting
    one that was already used is a sign it was stolen, so the whole family is revoked, unless
    it comes back within the configured grace period (``refresh_token_grace_period``, off by
    default) and its successor was never used: a client that lost the response to its refresh
    may retry it and gets a new pair, which replaces the lost one. RFC 8707 §2.2: ``resource``
    may narrow the new access token to some of the grant's resources, never name another; the
    new refresh token stays bound to all of them. RFC 9449 §5: a refresh token bound to a DPoP
    key needs a proof by that key.
    """
    token = await presented(params, "refresh_token", credentials, context)
    now = context.clock.now()
    application, record = await context.tokens.client_with_refresh_token(
        clients.claimed_id(credentials), digest(token)
    )
    application = await clients.check(credentials, application, context.authenticator)
    requested = scope_rules.parse(params.get("scope"))
    if record is None or record.application_id != application.id:
        raise InvalidGrant("the refresh token is invalid.")
    if record.jkt is not None and (context.proof is None or context.proof.jkt != record.jkt):
        # RFC 9449 §5: a public client's refresh token is bound to its DPoP key; without a
        # proof by that key, whoever holds the token is not the client.
        raise InvalidGrant(
            "this refresh token is bound to a DPoP key: send a DPoP proof signed with it."
        )
    if record.revoked_at is not None:
        raise InvalidGrant("the refresh token was revoked.")
    if record.rotated_at is not None and not _within_grace(record.rotated_at, now, context):
        await context.tokens.revoke_family(record.family_id, now)
        await context.tokens.retire_consent(application.id, record.owner, now)
        raise _reused(application, record, "reused")
    if now >= record.expires_at:
        raise InvalidGrant("the refresh token has expired; authorize again.")
    if requested:
        excess = [s for s in requested if s not in record.scopes]
        if excess:
            raise InvalidScope(
                "the refresh may not widen the grant: "
                f"{', '.join(shown(s) for s in excess[:5])} was not granted."
            )
        granted = scope_rules.ordered(requested, context.policy.server_scopes)
    else:
        granted = record.scopes
    audience = resources.narrowed(params, record.audience, context.policy.resources)
    if not owner_still_entitled(record.owner, record.owner_active):
        raise InvalidGrant("the user who authorized this grant is no longer active.")
    if record.rotated_at is None:
        # RFC 9700 §4.14.2 under concurrency: the rotation and its new tokens are one atomic
        # step under the grant's lock, which revocations take too, so a reuse racing a
        # rotation is detected, and a revocation misses none of the rotation's tokens.
        successor, response = await prepare(
            context,
            application,
            record.owner,
            granted,
            record.family_id,
            record.scopes,
            audience=audience,
            refresh_audience=record.audience,
            grant_type="refresh_token",
        )
        if await context.tokens.rotate(record.id, record.family_id, now, successor):
            return response
    await context.tokens.lock_family(record.family_id)
    # Rotated before: by an earlier request (a retry within the grace period, since later
    # reuses were refused above) or by a request racing this one (RFC 9700 §4.14.2).
    current = await context.tokens.refresh_token(digest(token))
    if current is None or current.revoked_at is not None:
        raise InvalidGrant("the refresh token was revoked.")
    if (
        current.rotated_at is not None
        and _within_grace(current.rotated_at, now, context)
        and not await context.tokens.successor_used(record.family_id, record.id)
    ):
        # The retry replaces what the lost response carried: the grant keeps one live refresh
        # token, so a thief retrying within the period cannot fork it into a branch of their
        # own (and the client's next refresh then reveals the theft as a reuse).
        # The presented token stays as it is, rotated: presented again after the period, it is
        # a reuse that revokes the retried pair too.
        await context.tokens.revoke_family(record.family_id, now, keep=record.id)
        successor, response = await prepare(
            context,
            application,
            record.owner,
            granted,
            record.family_id,
            record.scopes,
            grace_retry=True,
            audience=audience,
            refresh_audience=record.audience,
            grant_type="refresh_token",
        )
        await context.tokens.issue(successor)
        return response
    await context.tokens.revoke_family(record.family_id, now)
    await context.tokens.retire_consent(application.id, record.owner, now)
    raise _reused(application, record, "reused concurrently")


def _within_grace(rotated_at: int, now: int, context: TokenContext) -> bool:
    grace = context.policy.refresh_token_grace_period
    return grace > 0 and now - rotated_at <= grace


def _reused(application: Application, record: RefreshToken, how: str) -> InvalidGrant:
    return InvalidGrant(
        "the refresh token was already used; for safety every token of this grant is now "
        "revoked. Authorize again.",
        debug=f"refresh token {record.id} {how}",
        event=SecurityEvent(
            "refresh_token.reused",
            application.id,
            record.owner.company_id,
            record.owner.user_id,
        ),
    )
