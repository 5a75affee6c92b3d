"""The token endpoint (RFC 6749 §3.2): authenticate the client, then run its grant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from . import clients
from .clients import ClientCredentials
from .dpop import InvalidDpopProof
from .errors import UnsupportedGrantType, shown
from .grants import authorization_code, client_credentials, refresh_token
from .grants.common import TokenContext
from .models import TokenResponse
from .params import ParamReader, Params

# A grant authenticates the client itself, with the credentials of the request: it reads the
# client with the code or refresh token presented, in one round trip (``ports``).
Grant = Callable[[ParamReader, ClientCredentials, TokenContext], Awaitable[TokenResponse]]

GRANTS: dict[str, Grant] = {
    "authorization_code": authorization_code.exchange,
    "refresh_token": refresh_token.refresh,
    "client_credentials": client_credentials.issue,
}
TOKEN_PATH = "/oauth/token"


async def token_request(
    params: Params,
    authorization_header: str | None,
    context: TokenContext,
    proofs: Sequence[str] = (),
) -> TokenResponse:
    """Answer a token request (RFC 6749 §4.1.3, §4.4, §6) or raise an ``OAuthError`` (§5.2).
    ``proofs`` are the request's ``DPoP`` headers: RFC 9449 §5, a valid proof binds the tokens
    issued to its key; an invalid one is ``invalid_dpop_proof``, before anything else."""
    reader = ParamReader(params, context.policy.max_parameter_length)
    if proofs:
        if context.dpop is None:
            raise InvalidDpopProof("DPoP is not accepted here.")
        url = context.policy.resources.issuer + TOKEN_PATH
        context = replace(context, proof=await context.dpop.verify(list(proofs), "POST", url))
    grant_type = reader.require("grant_type")
    credentials = clients.from_params(authorization_header, reader)
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(
            f"grant_type '{shown(grant_type)}' is not supported; use one of: {', '.join(GRANTS)}."
        )
    return await grant(reader, credentials, context)
