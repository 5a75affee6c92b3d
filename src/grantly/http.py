"""The protocol's answers over HTTP, shared by the pages (``web``) and the resource API
(``api``): RFC 6749 §5.2 error JSON, RFC 6750 §3 Bearer challenges, and the no-store headers
of everything that carries a credential."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse

from .oauth.bearer import BoundTokenAsBearer, MissingToken
from .oauth.dpop import InvalidDpopProof, UseDpopNonce
from .oauth.errors import InvalidRequest, OAuthError
from .observability import OAUTH_ERRORS

# RFC 6749 §5.1: token responses, and everything else that carries a credential, are not cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def authorization(request: Request) -> str | None:
    """The request's one ``Authorization`` header. Two are refused (RFC 6749 §2.3: one
    authentication method per request; RFC 6750 §2: a token in one place): which of them a
    proxy, a framework or Grantly reads would otherwise decide who the request is."""
    values = request.headers.getlist("authorization")
    if len(values) > 1:
        raise InvalidRequest("send one Authorization header, not several.")
    return values[0] if values else None


def multi_params(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in items:
        params.setdefault(key, []).append(value)
    return params


def dpop_proofs(request: Request) -> list[str]:
    """The request's ``DPoP`` headers (RFC 9449 §4.1); more than one is refused by the
    verifier."""
    return request.headers.getlist("dpop")


def json_error(error: OAuthError) -> JSONResponse:
    """RFC 6749 §5.2 body. A 401 carries WWW-Authenticate (§5.2: "MUST include"); RFC 9449
    §8: ``use_dpop_nonce`` carries the nonce to use in ``DPoP-Nonce``."""
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="grantly"'
    if isinstance(error, UseDpopNonce):
        headers["DPoP-Nonce"] = error.nonce
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def bearer_error(
    error: OAuthError,
    scope: str | None = None,
    resource_metadata: str | None = None,
    *,
    dpop_algs: tuple[str, ...] = (),
    scheme: str = "bearer",
    nonce: str | None = None,
) -> JSONResponse:
    """RFC 6750 §3: the challenge names the error (and, for ``insufficient_scope``, the scope
    needed); a request with no credentials gets a bare challenge and no error code (§3.1).
    A protected resource that publishes RFC 9728 metadata names it in every challenge
    (``resource_metadata``, RFC 9728 §5.1), so a client that knows nothing else can discover
    where to get a token. RFC 9449 §7.1: a resource that takes DPoP also challenges with
    ``DPoP algs=...``, which carries the error when the request used DPoP or its token is
    bound (a proof's fault is a 401 there, and ``use_dpop_nonce`` names the nonce, §9)."""
    OAUTH_ERRORS.labels("resource", error.error).inc()
    status = error.status
    dpop_fault = isinstance(error, (InvalidDpopProof, UseDpopNonce, BoundTokenAsBearer))
    if dpop_fault:
        status = 401
    bearer = 'Bearer realm="grantly"'
    if resource_metadata is not None:
        bearer += f', resource_metadata="{resource_metadata}"'
    dpop = f'DPoP algs="{" ".join(dpop_algs)}"' if dpop_algs else None
    headers = dict(NO_STORE)
    if isinstance(error, MissingToken):
        body: dict[str, str] = {"error_description": error.public_description}
    else:
        body = error.body()
        detail = f', error="{error.error}", error_description="{body["error_description"]}"'
        if scope is not None and error.error == "insufficient_scope":
            detail += f', scope="{scope}"'
        if dpop is not None and (dpop_fault or scheme == "dpop"):
            dpop += detail
        else:
            bearer += detail
    if isinstance(error, UseDpopNonce):
        nonce = error.nonce
    if nonce is not None:
        headers["DPoP-Nonce"] = nonce
    headers["WWW-Authenticate"] = bearer
    response = JSONResponse(body, status_code=status, headers=headers)
    if dpop is not None:
        response.headers.append("WWW-Authenticate", dpop)
    return response
