"""Token introspection (RFC 7662), for resource servers.

Two kinds of caller may ask, each with its own credentials (§2.1: the endpoint MUST require
authorization, else it becomes a token-scanning oracle):
- a confidential application, which sees the tokens issued to itself and those that open its
  own company's data;
- a registered resource server (RFC 8707), which sees the access tokens whose audience names
  it, of any company, and nothing else: RFC 8707 §2 "audience-restricts" a token, and a token
  issued for another resource is, to this one, not a token at all.
Any other token, like an expired, revoked or unknown one, is simply ``{"active": false}``
(§2.2), which tells nothing. An active token's ``aud`` (§2.2) lists the resources it is for:
one URI as a string, several as an array.
"""

from __future__ import annotations

from typing import Any

from . import clients, resources
from .clients import ClientCredentials
from .errors import InvalidClient
from .grants.common import TokenContext, owner_still_entitled
from .models import AccessToken, Application
from .params import ParamReader, Params
from .resources import OwnResources
from .secrets import digest, is_resource_server_client_id

INACTIVE: dict[str, Any] = {"active": False}


def describe(token: AccessToken, own: OwnResources) -> dict[str, Any]:
    """The facts about an active access token (RFC 7662 §2.2 names, plus Grantly's own)."""
    facts: dict[str, Any] = {
        "active": True,
        "scope": " ".join(token.scopes),
        "client_id": token.client_id,
        # RFC 9449 §6.2: a DPoP-bound token says so, and names its key.
        "token_type": "DPoP" if token.jkt is not None else "Bearer",
        "iat": token.created_at,
        "aud": resources.audience_claim(token.audience, own),
        "sub": token.owner.subject,
        "company_id": token.owner.company_id,
        "resource_owner_type": token.owner.type,
    }
    if token.expires_at is not None:  # company tokens never expire: no "exp"
        facts["exp"] = token.expires_at
    if token.owner.type == "user":
        facts["user_id"] = token.owner.user_id
    if token.jkt is not None:
        facts["cnf"] = {"jkt": token.jkt}
    return facts


def _visible_to(application: Application, application_id: int, company_id: int) -> bool:
    return application_id == application.id or company_id == application.company_id


async def introspect(
    params: Params, authorization_header: str | None, context: TokenContext
) -> dict[str, Any]:
    reader = ParamReader(params, context.policy.max_parameter_length)
    tokens = context.tokens
    credentials = clients.from_params(authorization_header, reader)
    token = reader.require("token")
    hint = reader.get("token_type_hint")
    token_digest = digest(token)
    own = context.policy.resources
    if is_resource_server_client_id(clients.claimed_id(credentials)):
        return await _for_resource_server(credentials, token_digest, context)
    access: AccessToken | None = None
    if hint == "refresh_token":
        application = await clients.authenticate(
            credentials, context.applications, context.authenticator
        )
        order = ("refresh_token", "access_token")
    else:
        # The usual question (an access token): the client and the token in one read.
        found, access = await tokens.client_with_access_token(
            clients.claimed_id(credentials), token_digest
        )
        application = await clients.check(credentials, found, context.authenticator)
        order = ("access_token", "refresh_token")
    if not application.confidential:
        raise InvalidClient("only confidential applications may introspect tokens.")
    now = context.clock.now()
    for kind in order:
        if kind == "access_token":
            if access is None and hint == "refresh_token":
                access = await tokens.access_token(token_digest)
            if access is None:
                continue
            if access.is_active(now) and _visible_to(
                application, access.application_id, access.owner.company_id
            ):
                return describe(access, own)
            return INACTIVE
        refresh = await tokens.refresh_token(token_digest)
        if refresh is None:
            continue
        active = (
            refresh.revoked_at is None
            and refresh.rotated_at is None
            and now < refresh.expires_at
            and owner_still_entitled(refresh.owner, refresh.owner_active)
            and _visible_to(application, refresh.application_id, refresh.owner.company_id)
        )
        if not active:
            return INACTIVE
        return {
            "active": True,
            "scope": " ".join(refresh.scopes),
            "token_use": "refresh_token",
            "exp": refresh.expires_at,
            "aud": resources.audience_claim(refresh.audience, own),
            "sub": refresh.owner.subject,
            "company_id": refresh.owner.company_id,
            "resource_owner_type": refresh.owner.type,
        }
    return INACTIVE


async def _for_resource_server(
    credentials: ClientCredentials, token_digest: str, context: TokenContext
) -> dict[str, Any]:
    """A resource server asks: only access tokens are sent to it (refresh tokens go to the
    authorization server alone, RFC 6749 §1.5), and only those issued for it are active to it
    (RFC 8707 §2), whichever ``token_type_hint`` it gives (RFC 7662 §2.1: a hint only)."""
    server, access = await context.tokens.resource_server_with_access_token(
        clients.claimed_id(credentials), token_digest
    )
    server = resources.authenticate_server(credentials, server)
    if access is None or server.uri not in access.audience:
        return INACTIVE
    if not access.is_active(context.clock.now()):
        return INACTIVE
    return describe(access, context.policy.resources)
