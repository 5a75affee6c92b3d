"""Token revocation (RFC 7009).

The client authenticates as at the token endpoint (§2.1). ``token_type_hint`` says where to look
first; when the token is not found there, the other kind is searched too (§2.1). Revoking a
refresh token revokes every token of the same grant, its access tokens included (§2.1: "SHOULD
also invalidate all access tokens based on the same authorization grant"); revoking an access
token revokes that token. An unknown, already revoked or foreign token is answered like a
revoked one, with 200 (§2.2): nothing tells a client which tokens exist or whose they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import clients
from .grants.common import TokenContext
from .models import Application
from .params import ParamReader, Params
from .secrets import digest

TOKEN_TYPE_HINTS = ("access_token", "refresh_token")


@dataclass(frozen=True, slots=True)
class Revocation:
    """What was revoked, for the audit trail (never the token itself)."""

    application: Application
    kind: str | None  # "access_token", "refresh_token", or None when nothing was revoked
    family_id: int | None
    company_id: int | None
    user_id: int | None


async def revoke(
    params: Params, authorization_header: str | None, context: TokenContext
) -> Revocation:
    reader = ParamReader(params, context.policy.max_parameter_length)
    tokens = context.tokens
    credentials = clients.from_params(authorization_header, reader)
    token = reader.require("token")
    hint = reader.get("token_type_hint")
    application = await clients.authenticate(
        credentials, context.applications, context.authenticator
    )
    # RFC 7009 §2.1: an unknown hint is no reason to fail; search every kind.
    order = ("refresh_token", "access_token") if hint == "refresh_token" else TOKEN_TYPE_HINTS
    now = context.clock.now()
    token_digest = digest(token)
    for kind in order:
        if kind == "access_token":
            access = await tokens.access_token(token_digest)
            if access is not None and access.application_id == application.id:
                if access.revoked_at is None:
                    await tokens.revoke_access_token(access.id, now)
                return Revocation(
                    application, kind, None, access.owner.company_id, access.owner.user_id
                )
        else:
            refresh = await tokens.refresh_token(token_digest)
            if refresh is not None and refresh.application_id == application.id:
                await tokens.revoke_family(refresh.family_id, now)
                return Revocation(
                    application,
                    kind,
                    refresh.family_id,
                    refresh.owner.company_id,
                    refresh.owner.user_id,
                )
    return Revocation(application, None, None, None, None)
