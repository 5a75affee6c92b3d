"""The client credentials grant (RFC 6749 §4.4): a token for a machine, with no person present.

Opt-in per confidential application by its company's admins (``grant_types``): the token acts
for the application's company, as a company token does, with the application's scopes or some
of them (§4.4.2, §3.3), but lives an hour and has no refresh token (§4.4.3: "SHOULD NOT be
included"): the client authenticates again for the next one. It can be bound to a DPoP key
(RFC 9449 §5) and be a JWT (RFC 9068), as any expiring token. Company tokens and API keys stay
as they are.
"""

from __future__ import annotations

from .. import clients
from .. import scopes as scope_rules
from ..clients import ClientCredentials
from ..errors import InvalidScope, InvalidTarget, UnauthorizedClient, shown
from ..models import API, ResourceOwner, TokenResponse
from ..params import ParamReader
from ..resources import normalize
from .common import TokenContext, prepare

GRANT_TYPE = "client_credentials"


async def issue(
    params: ParamReader, credentials: ClientCredentials, context: TokenContext
) -> TokenResponse:
    """RFC 6749 §4.4.2: authenticate the client (§4.4.2: "MUST authenticate"); it must be
    confidential, of a company, and allowed this grant (§5.2 ``unauthorized_client``); the
    requested scope must be within the application's (§5.2 ``invalid_scope``); RFC 8707 §2.2:
    ``resource`` may name Grantly's own resources."""
    application = await clients.authenticate(
        credentials, context.applications, context.authenticator
    )
    if (
        application.public
        or application.company_id is None
        or GRANT_TYPE not in application.grant_types
    ):
        raise UnauthorizedClient(
            "this application may not use the client credentials grant: its company's admins "
            "must allow it (confidential applications only)."
        )
    requested = scope_rules.parse(params.get("scope"))
    excess = [s for s in requested if s not in application.scopes]
    if excess:
        raise InvalidScope(
            f"{', '.join(shown(s) for s in excess[:5])} is not a scope of this application."
        )
    scopes = (
        scope_rules.ordered(requested, context.policy.server_scopes)
        if requested
        else application.scopes
    )
    own = context.policy.resources
    audience: list[str] = []
    for value in params.get_all("resource"):
        entry = own.entry_for(normalize(value))
        if entry is None:
            raise InvalidTarget(
                f"'{shown(value, 80)}' is not a resource a client credentials token can be "
                f"for; Grantly's own API is {own.uri(API)}."
            )
        if entry not in audience:
            audience.append(entry)
    owner = ResourceOwner("company", application.company_id, None)
    # The family of the application's client credentials tokens, which no code or refresh
    # token shares (codes' ids are positive).
    tokens, response = await prepare(
        context,
        application,
        owner,
        scopes,
        -application.id,
        audience=tuple(audience) or (API,),
        grant_type=GRANT_TYPE,
    )
    await context.tokens.issue(tokens)
    return response
