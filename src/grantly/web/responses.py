"""The one place that turns an ``OAuthError`` into a response (RFC 6749 §4.1.2.1, §5.2;
RFC 6750 §3): a redirect only to a validated redirect URI, JSON for clients, a page for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..oauth.authorize import error_redirect
from ..oauth.bearer import MissingToken
from ..oauth.errors import OAuthError
from ..oauth.redirect_uris import OUT_OF_BAND
from ..observability import OAUTH_ERRORS
from .services import services

# RFC 6749 §5.1: token responses, and everything else that carries a credential, are not cached.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def multi_params(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in items:
        params.setdefault(key, []).append(value)
    return params


def json_error(error: OAuthError) -> JSONResponse:
    """RFC 6749 §5.2 body. A 401 carries WWW-Authenticate (§5.2: "MUST include")."""
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="grantly"'
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


def bearer_error(error: OAuthError, scope: str | None = None) -> JSONResponse:
    """RFC 6750 §3: the challenge names the error (and, for ``insufficient_scope``, the scope
    needed); a request with no credentials gets a bare challenge and no error code (§3.1)."""
    OAUTH_ERRORS.labels("resource", error.error).inc()
    challenge = 'Bearer realm="grantly"'
    headers = dict(NO_STORE)
    if isinstance(error, MissingToken):
        body: dict[str, str] = {"error_description": error.public_description}
    else:
        body = error.body()
        challenge += f', error="{error.error}", error_description="{body["error_description"]}"'
        if scope is not None and error.error == "insufficient_scope":
            challenge += f', scope="{scope}"'
    headers["WWW-Authenticate"] = challenge
    return JSONResponse(body, status_code=error.status, headers=headers)


def error_page(
    request: Request,
    title: str,
    message: str,
    status_code: int,
    *,
    error: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = services(request).render(
        request, "error.html", status_code, title=title, message=message, error=error
    )
    if headers:
        response.headers.update(headers)
    return response


def leaving_page(
    request: Request, error: OAuthError, application_name: str, application_company: str
) -> Response:
    """An authorization error for another company's application (RFC 9700 §4.11.2): the error
    redirect, offered as a link to follow rather than followed automatically."""
    OAUTH_ERRORS.labels("/oauth/authorize", error.error).inc()
    assert error.redirect_uri is not None
    location = error_redirect(
        error.redirect_uri, error, error.state, services(request).settings.issuer
    )
    parts = urlsplit(error.redirect_uri)
    destination = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
    response = services(request).render(
        request,
        "leaving.html",
        status_code=403 if error.status == 403 else 400,
        title="This authorization request cannot continue",
        message=error.description,
        error=error.error,
        application_name=application_name,
        application_company=application_company,
        destination=destination,
        location=location,
    )
    response.headers.update(NO_STORE)
    return response


def authorization_error(request: Request, error: OAuthError) -> Response:
    """RFC 6749 §4.1.2.1: redirect the error to the client only when its redirect URI has been
    validated; otherwise tell the person, and never redirect."""
    OAUTH_ERRORS.labels("/oauth/authorize", error.error).inc()
    issuer = services(request).settings.issuer
    if error.redirectable and error.redirect_uri and error.redirect_uri != OUT_OF_BAND:
        return RedirectResponse(
            error_redirect(error.redirect_uri, error, error.state, issuer),
            status_code=302,
            headers={"Referrer-Policy": "no-referrer", **NO_STORE},
        )
    return error_page(
        request,
        "This authorization request cannot continue",
        error.description,
        403 if error.status == 403 else 400,
        error=error.error,
    )
