"""Authenticating resource requests with a Bearer access token (RFC 6750 §2.1)."""

from __future__ import annotations

from starlette.requests import Request

from ..http import authorization
from ..oauth import bearer
from ..oauth.models import AccessToken
from ..services import services
from ..store.unit import Store


async def access_token(request: Request, uow: Store) -> AccessToken:
    """The request's valid access token, or an ``OAuthError`` for the handler to answer."""
    svc = services(request)
    presented = bearer.token_from_header(authorization(request))
    return await bearer.authenticate(presented, uow.tokens, svc.clock)
