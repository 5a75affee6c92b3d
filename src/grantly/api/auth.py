"""Authenticating resource requests with a Bearer access token (RFC 6750 §2.1), for Grantly's
own API: the resource ``{issuer}/api`` (RFC 8707), whose RFC 9728 metadata every challenge
names."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..http import authorization, bearer_error, dpop_proofs
from ..oauth import bearer, dpop
from ..oauth.errors import OAuthError
from ..oauth.models import API, AccessToken
from ..services import services
from ..store.unit import Store

# RFC 9728 §3: the metadata of the resource {issuer}/api, at the well-known path with the
# resource's path after it (web/metadata.py serves it).
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource" + API


async def access_token(request: Request, uow: Store) -> AccessToken:
    """The request's valid access token for this API, or an ``OAuthError`` for the handler to
    answer. The token's audience comes with it, in the same statement: no round trip more.
    A DPoP-bound token needs its proof for this request (RFC 9449 §7.1): ``htu`` is the URL
    under the issuer, as the client addressed it."""
    svc = services(request)
    presented = bearer.presented_from_header(authorization(request))
    url = svc.settings.issuer + request.url.path
    # The proof's jti is written in this request's unit (a writing API call holds SQLite's
    # writer: a unit of the guard's own would wait for it forever).
    token = await bearer.authenticate_request(
        presented,
        dpop_proofs(request),
        request.method,
        url,
        uow.tokens,
        svc.clock,
        svc.dpop_for(uow),
    )
    bearer.require_audience(token, API)
    return token


def challenge(request: Request, error: OAuthError, scope: str | None = None) -> JSONResponse:
    """The RFC 6750 §3 answer to a credential the API refused, naming where the API's RFC 9728
    metadata is (§5.1), and for ``insufficient_scope`` the scope it needs (RFC 6750 §3.1)."""
    svc = services(request)
    try:
        presented = bearer.presented_from_header(authorization(request))
    except OAuthError:
        presented = None
    return bearer_error(
        error,
        scope=scope,
        resource_metadata=svc.settings.issuer + RESOURCE_METADATA_PATH,
        dpop_algs=dpop.ALGORITHMS,
        scheme=presented.scheme if presented is not None else "bearer",
        nonce=svc.dpop.nonce(),
    )
