"""Token introspection (RFC 7662), for resource servers.

Only confidential clients may ask (§2.1: the endpoint MUST require authorization, else it
becomes a token-scanning oracle). A client sees the tokens issued to itself and those that open
its own company's data; any other token, like an expired, revoked or unknown one, is simply
``{"active": false}`` (§2.2), which tells nothing.
"""

from __future__ import annotations

from typing import Any

from . import clients
from .errors import InvalidClient
from .grants.common import TokenContext, owner_still_entitled
from .models import AccessToken, Application
from .params import ParamReader, Params
from .secrets import digest

INACTIVE: dict[str, Any] = {"active": False}


def describe(token: AccessToken) -> dict[str, Any]:
    """The facts about an active access token (RFC 7662 §2.2 names, plus Grantly's own)."""
    facts: dict[str, Any] = {
        "active": True,
        "scope": " ".join(token.scopes),
        "client_id": token.client_id,
        "token_type": "Bearer",
        "iat": token.created_at,
        "sub": token.owner.subject,
        "company_id": token.owner.company_id,
        "resource_owner_type": token.owner.type,
    }
    if token.expires_at is not None:  # company tokens never expire: no "exp"
        facts["exp"] = token.expires_at
    if token.owner.type == "user":
        facts["user_id"] = token.owner.user_id
    return facts


def _visible_to(application: Application, application_id: int, company_id: int) -> bool:
    return application_id == application.id or company_id == application.company_id


async def introspect(
    params: Params, authorization_header: str | None, context: TokenContext
) -> dict[str, Any]:
    reader = ParamReader(params, context.policy.max_parameter_length)
    tokens = context.tokens
    credentials = clients.from_request(
        authorization_header, reader.get("client_id"), reader.get("client_secret")
    )
    token = reader.require("token")
    hint = reader.get("token_type_hint")
    token_digest = digest(token)
    access: AccessToken | None = None
    if hint == "refresh_token":
        application = await clients.authenticate(credentials, context.applications)
        order = ("refresh_token", "access_token")
    else:
        # The usual question (an access token): the client and the token in one read.
        found, access = await tokens.client_with_access_token(
            clients.claimed_id(credentials), token_digest
        )
        application = clients.verify(credentials, found)
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
                return describe(access)
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
            "sub": refresh.owner.subject,
            "company_id": refresh.owner.company_id,
            "resource_owner_type": refresh.owner.type,
        }
    return INACTIVE
