"""Access tokens at the resources: Bearer (RFC 6750) and DPoP-bound (RFC 9449 §7)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .clock import Clock
from .dpop import DpopVerifier, InvalidDpopProof
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


@dataclass(frozen=True, slots=True)
class Presented:
    """An access token as a request presented it: its scheme (``bearer`` or ``dpop``)."""

    scheme: str
    token: str


def presented_from_header(authorization: str | None) -> Presented | None:
    """``Authorization: Bearer <token>`` (RFC 6750 §2.1) or ``DPoP <token>`` (RFC 9449 §7.1),
    schemes case-insensitive; None for no header or another scheme."""
    if authorization is None:
        return None
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    if scheme not in ("bearer", "dpop"):
        return None
    value = value.strip()
    if not value or " " in value:
        raise InvalidRequest(f"the Authorization header must be '{scheme.capitalize()} <token>'.")
    return Presented(scheme, value)


class BoundTokenAsBearer(InvalidToken):
    """RFC 9449 §7.2: a DPoP-bound token sent as a Bearer token is refused."""


async def authenticate_request(
    presented: Presented | None,
    proofs: Sequence[str],
    method: str,
    url: str,
    tokens: TokenStore,
    clock: Clock,
    dpop: DpopVerifier,
) -> AccessToken:
    """An access token presented to a resource, with its proof of possession when bound.

    RFC 9449 §7.1: a DPoP-bound token comes with ``Authorization: DPoP`` and a proof for this
    request (``htm``, ``htu``, ``ath`` of the token), signed by the key the token is bound to
    (``cnf.jkt``); §7.2: sent as Bearer it is refused, so a stolen bound token is worthless
    without its key. A bearer token sent with the DPoP scheme is refused as well: the client
    believes it bound, and something is amiss.
    """
    if presented is None:
        raise MissingToken("an access token is required: send 'Authorization: Bearer <token>'.")
    record = await authenticate(presented.token, tokens, clock)
    if record.jkt is None:
        if presented.scheme == "dpop":
            raise InvalidToken("this access token is not DPoP-bound: send it as a Bearer token.")
        return record
    if presented.scheme != "dpop":
        raise BoundTokenAsBearer(
            "this access token is bound to a DPoP key: send it as 'Authorization: DPoP "
            "<token>' with a DPoP proof (RFC 9449 section 7.2)."
        )
    proof = await dpop.verify(list(proofs), method, url, access_token=presented.token)
    if proof is None:
        raise InvalidDpopProof("a DPoP proof is required with a DPoP-bound access token.")
    if proof.jkt != record.jkt:
        raise InvalidDpopProof(
            "the DPoP proof is signed by another key than the token is bound to."
        )
    return record


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
