"""Metadata documents, for clients that discover what they need instead of being told.

- Authorization server metadata (RFC 8414), so clients discover the endpoints, that PKCE with
  S256 is supported (RFC 9700 §2.1.1: clients "MUST be able to detect" it), that
  authorization responses carry ``iss`` (RFC 9207 §3), and which protected resources are
  Grantly's own (RFC 9728 §4 ``protected_resources``, the resources a ``resource`` parameter
  may name without registration, RFC 8707).
- Whether clients may register themselves: ``registration_endpoint`` (RFC 7591 §3, unless
  registration is off) and ``client_id_metadata_document_supported`` (a ``client_id`` that is
  an https URL names the client's metadata document).
- Protected resource metadata (RFC 9728 §2-3) of each of Grantly's own resources: where to get
  a token for it. A client that met the resource first (a 401 naming ``resource_metadata``,
  RFC 9728 §5.1) starts here. Resource servers registered by the operator are listed in
  neither: each publishes its own metadata naming this issuer, and their URIs may be internal.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..oauth import client_assertions, dpop, pkce
from ..oauth.clients import AUTH_METHODS
from ..oauth.models import API, MCP
from ..oauth.token import GRANTS
from ..services import services

router = APIRouter()

CACHEABLE = {"Cache-Control": "public, max-age=3600"}
# RFC 9728 §3: the well-known URI of a resource is this, followed by the resource's path.
PROTECTED_RESOURCE_PREFIX = "/.well-known/oauth-protected-resource"


@router.get("/.well-known/oauth-authorization-server", include_in_schema=False)
async def authorization_server_metadata(request: Request) -> JSONResponse:
    svc = services(request)
    settings = svc.settings
    issuer = settings.issuer
    own = svc.own_resources
    registration: dict[str, object] = {}
    if settings.registration != "off":
        registration["registration_endpoint"] = f"{issuer}/oauth/register"
    # RFC 8414 §2: the algorithms private_key_jwt assertions may be signed with (RFC 7523).
    signing_algs = list(client_assertions.ALGORITHMS)
    return JSONResponse(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "revocation_endpoint_auth_signing_alg_values_supported": signing_algs,
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "jwks_uri": f"{issuer}/oauth/jwks",
            "introspection_endpoint_auth_methods_supported": [
                m for m in AUTH_METHODS if m != "none"
            ],
            "introspection_endpoint_auth_signing_alg_values_supported": signing_algs,
            # RFC 9126 §5: pushed authorization requests; some applications require them.
            "pushed_authorization_request_endpoint": f"{issuer}/oauth/par",
            "require_pushed_authorization_requests": False,
            # RFC 9449 §5.1.
            "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(GRANTS),
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": signing_algs,
            "scopes_supported": list(settings.scope_names),
            "code_challenge_methods_supported": list(pkce.methods(settings.allow_plain_pkce)),
            "authorization_response_iss_parameter_supported": True,
            "protected_resources": [own.uri(path) for path in own.paths],
            # draft-ietf-oauth-client-id-metadata-document §5: an https client_id is fetched.
            "client_id_metadata_document_supported": True,
            **registration,
        },
        headers=CACHEABLE,
    )


def protected_resource_metadata(
    request: Request, path: str, name: str, documentation: str | None = None
) -> JSONResponse:
    """RFC 9728 §3.2: the metadata of Grantly's own resource ``{issuer}{path}``. ``resource``
    is exactly the identifier the well-known URI was made from (§3.3: clients compare them);
    tokens come from this issuer alone, in the Authorization header only (RFC 6750 §2.1)."""
    svc = services(request)
    issuer = svc.settings.issuer
    metadata: dict[str, object] = {
        "resource": svc.own_resources.uri(path),
        "authorization_servers": [issuer],
        "scopes_supported": list(svc.server_scopes),
        "bearer_methods_supported": ["header"],
        # RFC 9728 §2: DPoP-bound tokens are taken, and bound ones only with their proof.
        "dpop_signing_alg_values_supported": list(dpop.ALGORITHMS),
        "resource_name": name,
    }
    if documentation is not None:
        metadata["resource_documentation"] = issuer + documentation
    return JSONResponse(metadata, headers=CACHEABLE)


@router.get(PROTECTED_RESOURCE_PREFIX + API, include_in_schema=False)
async def api_metadata(request: Request) -> JSONResponse:
    return protected_resource_metadata(request, API, "Grantly API", documentation="/api/docs")


@router.get(PROTECTED_RESOURCE_PREFIX + MCP, include_in_schema=False)
async def mcp_metadata(request: Request) -> JSONResponse:
    if not services(request).settings.mcp:
        return JSONResponse(
            {"error": "not_found", "error_description": "the MCP endpoint is off."},
            status_code=404,
        )
    return protected_resource_metadata(request, MCP, "Grantly MCP server")


@router.get("/oauth/jwks", include_in_schema=False)
async def jwks(request: Request) -> JSONResponse:
    """RFC 7517 §5: the JWK Set of Grantly's signing keys (grantly/keys.py): every key not
    retired, including one rotated in that does not sign yet. Cached briefly: a rotation
    activates later than any cache of this lasts."""
    return JSONResponse(
        await services(request).keys.jwks(),
        headers={"Cache-Control": "public, max-age=300"},
        media_type="application/jwk-set+json",
    )
