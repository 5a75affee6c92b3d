"""The refresh token grant (RFC 6749 §6), with rotation (RFC 9700 §4.14.2)."""

from __future__ import annotations

from .. import scopes as scope_rules
from ..errors import InvalidGrant, InvalidScope, SecurityEvent, shown
from ..models import Application, TokenResponse
from ..params import ParamReader
from ..secrets import digest
from .common import TokenContext, mint, owner_still_entitled


async def refresh(
    params: ParamReader, application: Application, context: TokenContext
) -> TokenResponse:
    """Trade a refresh token for a new access token and a new refresh token.

    RFC 6749 §6: the refresh token must have been issued to this client; a requested scope
    must not exceed the original grant. RFC 9700 §4.14.2: refresh tokens rotate; presenting
    one that was already used is a sign it was stolen, so the whole family is revoked.
    """
    presented = params.require("refresh_token")
    requested = scope_rules.parse(params.get("scope"))
    now = context.clock.now()

    record = await context.tokens.refresh_token(digest(presented))
    if record is None or record.application_id != application.id:
        raise InvalidGrant("the refresh token is invalid.")
    if record.revoked_at is not None:
        raise InvalidGrant("the refresh token was revoked.")
    if record.rotated_at is not None:
        await context.tokens.revoke_family(record.family_id, now)
        raise InvalidGrant(
            "the refresh token was already used; for safety every token of this grant is "
            "now revoked. Authorize again.",
            debug=f"refresh token {record.id} reused",
            event=SecurityEvent(
                "refresh_token.reused",
                application.id,
                record.owner.company_id,
                record.owner.user_id,
            ),
        )
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
    if not await owner_still_entitled(context, record.owner):
        raise InvalidGrant("the user who authorized this grant is no longer active.")
    # RFC 9700 §4.14.2 under concurrency: rotations and revocations of one grant queue on one
    # lock, so a reuse racing a rotation is detected rather than deadlocked.
    await context.tokens.lock_family(record.family_id)
    if not await context.tokens.rotate(record.id, now):
        # Another request rotated it in between: a reuse like any other (RFC 9700 §4.14.2).
        await context.tokens.revoke_family(record.family_id, now)
        raise InvalidGrant(
            "the refresh token was already used; every token of this grant is now revoked.",
            debug=f"refresh token {record.id} reused concurrently",
            event=SecurityEvent(
                "refresh_token.reused",
                application.id,
                record.owner.company_id,
                record.owner.user_id,
            ),
        )
    return await mint(context, application, record.owner, granted, record.family_id, record.scopes)
