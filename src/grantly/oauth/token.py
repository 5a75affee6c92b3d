"""The token endpoint (RFC 6749 §3.2): authenticate the client, then run its grant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from . import clients
from .clients import ClientCredentials
from .errors import UnsupportedGrantType, shown
from .grants import authorization_code, refresh_token
from .grants.common import TokenContext
from .models import TokenResponse
from .params import ParamReader, Params

# A grant authenticates the client itself, with the credentials of the request: it reads the
# client with the code or refresh token presented, in one round trip (``ports``).
Grant = Callable[[ParamReader, ClientCredentials, TokenContext], Awaitable[TokenResponse]]

GRANTS: dict[str, Grant] = {
    "authorization_code": authorization_code.exchange,
    "refresh_token": refresh_token.refresh,
}


async def token_request(
    params: Params, authorization_header: str | None, context: TokenContext
) -> TokenResponse:
    """Answer a token request (RFC 6749 §4.1.3, §6) or raise an ``OAuthError`` (§5.2)."""
    reader = ParamReader(params, context.policy.max_parameter_length)
    grant_type = reader.require("grant_type")
    credentials = clients.from_request(
        authorization_header, reader.get("client_id"), reader.get("client_secret")
    )
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(
            f"grant_type '{shown(grant_type)}' is not supported; use one of: {', '.join(GRANTS)}."
        )
    return await grant(reader, credentials, context)
