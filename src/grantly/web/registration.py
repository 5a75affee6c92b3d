"""Dynamic client registration (RFC 7591 §3) at ``/oauth/register`` and its management
(RFC 7592 §2) at ``/oauth/register/{client_id}``, for clients that register themselves (MCP
clients do, when they cannot publish a client metadata document).

``GRANTLY_REGISTRATION`` says who may register: anyone (``open``), holders of an initial access
token an operator minted (``token``, RFC 7591 §3: "MAY be protected"), or nobody (``off``).
Registrations are counted per source address (the throttle): a registration costs its author
nothing, so one address cannot fill the table. Each registered client gets a registration
access token (RFC 7592 §1.1), stored only as a digest, with which it reads, replaces or deletes
its own registration and nothing else; each read or update answers with a new one.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..http import NO_STORE, authorization
from ..oauth import bearer
from ..oauth import dynamic_registration as dcr
from ..oauth.errors import OAuthError
from ..oauth.models import Application
from ..oauth.secrets import (
    CLIENT_SECRET_PREFIX,
    REGISTRATION_ACCESS_TOKEN_PREFIX,
    digest,
    new_client_id,
    new_secret,
)
from ..observability import OAUTH_ERRORS, Route
from ..services import services
from ..store.unit import Store
from .pages import audit

JSON_CONTENT_TYPE = "application/json"
ENDPOINT = "/oauth/register"


def _error(error: OAuthError) -> JSONResponse:
    OAUTH_ERRORS.labels(ENDPOINT, error.error).inc()
    return JSONResponse(error.body(), status_code=error.status, headers=NO_STORE)


def _invalid_token(description: str, *, presented: bool = True) -> JSONResponse:
    """RFC 6750 §3.1 (RFC 7592 §2: an invalid registration access token is a 401, and says
    nothing of whether the client exists). A request without a token gets a challenge without
    an error code."""
    OAUTH_ERRORS.labels(ENDPOINT, "invalid_token").inc()
    challenge = 'Bearer realm="grantly"'
    body = {"error_description": description}
    if presented:
        challenge += f', error="invalid_token", error_description="{description}"'
        body = {"error": "invalid_token", **body}
    return JSONResponse(body, status_code=401, headers={**NO_STORE, "WWW-Authenticate": challenge})


def _client_uri(request: Request, client_id: str) -> str:
    return f"{services(request).settings.issuer}{ENDPOINT}/{client_id}"


async def _json_body(request: Request) -> object:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != JSON_CONTENT_TYPE:
        raise dcr.InvalidClientMetadata(
            f"send the client metadata as {JSON_CONTENT_TYPE} (RFC 7591 §3.1)."
        )
    try:
        document = json.loads(await request.body())
        # A lone surrogate (\ud800) is valid JSON but no text: nothing could store it.
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError):
        raise dcr.InvalidClientMetadata("the request body is not valid JSON.") from None
    return document


def _presented_token(request: Request) -> str | None:
    try:
        return bearer.token_from_header(authorization(request))
    except OAuthError:
        return None


async def register(request: Request) -> Response:
    """RFC 7591 §3.1-3.2: 201 with the client information, or §3.2.2 JSON."""
    svc = services(request)
    mode = svc.settings.registration
    if mode == "off":
        return JSONResponse(
            {"error": "invalid_request", "error_description": "client registration is off."},
            status_code=404,
            headers=NO_STORE,
        )
    now = svc.clock.now()
    if mode == "token":
        token = _presented_token(request)
        if token is None:
            return _invalid_token(
                "registration needs an initial access token (Bearer).", presented=False
            )
        async with svc.db.unit(write=False) as uow:
            valid = await uow.registration_tokens.valid(digest(token), now)
        if valid is None:
            return _invalid_token("the initial access token is not valid.")
    try:
        registration = dcr.validate(await _json_body(request), svc.server_scopes)
    except OAuthError as error:
        return _error(error)
    address = request.client.host if request.client else "unknown"
    if (refusal := await svc.throttle.registration(address)) is not None:
        OAUTH_ERRORS.labels(ENDPOINT, "too_many_requests").inc()
        return JSONResponse(
            {
                "error": "too_many_requests",
                "error_description": "too many client registrations from this address; "
                f"retry after {refusal.retry_after} seconds.",
            },
            status_code=429,
            headers={"Retry-After": str(refusal.retry_after), **NO_STORE},
        )
    secret = new_secret(CLIENT_SECRET_PREFIX) if registration.confidential else None
    access_token = new_secret(REGISTRATION_ACCESS_TOKEN_PREFIX)
    async with svc.db.unit() as uow:
        application = await uow.agents.register(
            client_id=new_client_id(),
            name=registration.client_name,
            secret_digest=digest(secret) if secret else None,
            confidential=registration.confidential,
            redirect_uris=registration.redirect_uris,
            scopes=registration.scopes,
            client_metadata=json.dumps(registration.metadata()),
            registration_digest=digest(access_token),
            now=now,
        )
        await audit(
            request,
            uow,
            "application.registered",
            company_id=None,
            application_id=application.id,
            name=application.name,
            confidential=application.confidential,
        )
    body = dcr.information(
        application,
        registration_client_uri=_client_uri(request, application.client_id),
        client_secret=secret,
        registration_access_token=access_token,
        issued_at=now,
    )
    return JSONResponse(body, status_code=201, headers=NO_STORE)


async def _registration(request: Request) -> tuple[Application | None, Response | None]:
    token = _presented_token(request)
    if token is None:
        return None, _invalid_token("send the registration access token (Bearer).", presented=False)
    client_id = request.path_params["client_id"]
    async with services(request).db.unit(write=False) as uow:
        application = await uow.agents.by_registration(client_id, digest(token))
    if application is None:
        return None, _invalid_token("the registration access token is not valid for this client.")
    return application, None


async def read(request: Request) -> Response:
    """RFC 7592 §2.1: the client's current registration (without its secret: only its
    digest is kept)."""
    application, refused = await _registration(request)
    if refused is not None:
        return refused
    assert application is not None
    async with services(request).db.unit() as uow:
        token = await _rotate(uow, application)
    body = dcr.information(
        application,
        registration_client_uri=_client_uri(request, application.client_id),
        registration_access_token=token,
    )
    return JSONResponse(body, headers=NO_STORE)


async def _rotate(uow: Store, application: Application) -> str:
    """RFC 7592 §3: every client information response carries the registration access token,
    which Grantly holds only as a digest; so each one carries a new token, and the one just
    used stops working (the client "MUST immediately discard the previous value")."""
    token = new_secret(REGISTRATION_ACCESS_TOKEN_PREFIX)
    await uow.agents.rotate_registration(application.id, digest(token))
    return token


async def replace(request: Request) -> Response:
    """RFC 7592 §2.2: replace the client's metadata with the request's."""
    svc = services(request)
    application, refused = await _registration(request)
    if refused is not None:
        return refused
    assert application is not None
    try:
        registration = dcr.validate_update(
            await _json_body(request), application, svc.server_scopes
        )
    except OAuthError as error:
        return _error(error)
    async with svc.db.unit() as uow:
        updated = await uow.agents.update_registration(
            application,
            name=registration.client_name,
            redirect_uris=registration.redirect_uris,
            scopes=registration.scopes,
            client_metadata=json.dumps(registration.metadata()),
            now=svc.clock.now(),
        )
        token = await _rotate(uow, updated)
        await audit(
            request,
            uow,
            "application.registration_updated",
            company_id=None,
            application_id=application.id,
        )
    body = dcr.information(
        updated,
        registration_client_uri=_client_uri(request, updated.client_id),
        registration_access_token=token,
    )
    return JSONResponse(body, headers=NO_STORE)


async def remove(request: Request) -> Response:
    """RFC 7592 §2.3: delete the registration; its tokens stop working at once."""
    svc = services(request)
    application, refused = await _registration(request)
    if refused is not None:
        return refused
    assert application is not None
    async with svc.db.unit() as uow:
        await uow.applications.delete(application.id, svc.clock.now())
        await audit(
            request,
            uow,
            "application.registration_deleted",
            company_id=None,
            name=application.name,
        )
    return Response(status_code=204, headers=NO_STORE)


routes = [
    Route(ENDPOINT, register, methods=["POST"]),
    Route(ENDPOINT + "/{client_id}", read, methods=["GET"]),
    Route(ENDPOINT + "/{client_id}", replace, methods=["PUT"]),
    Route(ENDPOINT + "/{client_id}", remove, methods=["DELETE"]),
]
