"""Authorization server metadata (RFC 8414), so clients discover the endpoints, that PKCE with
S256 is supported (RFC 9700 §2.1.1: clients "MUST be able to detect" it) and that
authorization responses carry ``iss`` (RFC 9207 §3)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..oauth import pkce
from ..oauth.clients import AUTH_METHODS
from ..oauth.token import GRANTS
from ..services import services

router = APIRouter()


@router.get("/.well-known/oauth-authorization-server", include_in_schema=False)
async def authorization_server_metadata(request: Request) -> JSONResponse:
    settings = services(request).settings
    issuer = settings.issuer
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "introspection_endpoint_auth_methods_supported": [
                m for m in AUTH_METHODS if m != "none"
            ],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANTS),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "scopes_supported": list(settings.scope_names),
            "code_challenge_methods_supported": list(pkce.methods(settings.allow_plain_pkce)),
            "authorization_response_iss_parameter_supported": True,
        },
        headers={"Cache-Control": "public, max-age=3600"},
    )
