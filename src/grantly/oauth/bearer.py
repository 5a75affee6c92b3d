"""Bearer token usage at the resource API (RFC 6750)."""

from __future__ import annotations

from .clock import Clock
from .errors import InsufficientScope, InvalidRequest, InvalidToken
from .models import AccessToken
from .ports import TokenStore
from .secrets import digest


class MissingToken(InvalidToken):
    """RFC 6750 §3.1: no credentials at all; the challenge then carries no error code."""


def token_from_header(authorization: str | None) -> str | None:
    """RFC 6750 §2.1: ``Authorization: Bearer <token>`` (the scheme is case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    if not value or " " in value:
        raise InvalidRequest("the Authorization header must be 'Bearer <token>'.")
    return value


async def authenticate(token: str | None, tokens: TokenStore, clock: Clock) -> AccessToken:
    """Validate a bearer token: known, not revoked, not expired, owner still entitled.

    RFC 6750 §3.1: a missing token gets a challenge without an error code; a bad one gets
    ``invalid_token``. The reason is the same for every bad token so that nothing is learnt
    by probing.
    """
    if token is None:
        raise MissingToken("an access token is required: send 'Authorization: Bearer <token>'.")
    record = await tokens.access_token(digest(token))
    if record is None or not record.is_active(clock.now()):
        raise InvalidToken("the access token is invalid, expired or revoked.")
    return record


def require_audience(token: AccessToken, entry: str) -> None:
    """RFC 8707 §2: a token is audience-restricted to the resources it was issued for, and any
    other resource refuses it; RFC 6750 §3.1 calls that ``invalid_token`` ("invalid for other
    reasons"). Told only to the holder of a live token, after it was found active."""
    if entry not in token.audience:
        raise InvalidToken(
            "the access token was not issued for this resource: its audience names other "
            "resources (RFC 8707); ask for a token with this resource, or without any."
        )


def require_scope(token: AccessToken, scope: str) -> None:
    """RFC 6750 §3.1: a valid token without the needed scope gets ``insufficient_scope``."""
    if scope not in token.scopes:
        raise InsufficientScope(f"this request needs the '{scope}' scope.")
