"""The one place that turns an ``OAuthError`` into a response for a person (RFC 6749
§4.1.2.1): a redirect only to a validated redirect URI, otherwise a page. Clients' JSON forms
are ``grantly.http``'s."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..http import NO_STORE
from ..oauth.authorize import error_redirect
from ..oauth.errors import OAuthError
from ..oauth.redirect_uris import OUT_OF_BAND
from ..observability import OAUTH_ERRORS
from ..services import services
from .pages import render


def error_page(
    request: Request,
    title: str,
    message: str,
    status_code: int,
    *,
    error: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    response = render(request, "error.html", status_code, title=title, message=message, error=error)
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
    response = render(
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
