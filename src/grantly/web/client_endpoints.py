"""The endpoints clients and resource servers call with their own credentials:
``/oauth/token`` (RFC 6749 §3.2, §4.1.3, §4.4, §6), ``/oauth/par`` (RFC 9126),
``/oauth/revoke`` (RFC 7009),
``/oauth/introspect`` (RFC 7662) and Doorkeeper's ``/oauth/token/info``.

The first three are one pipeline of steps, in this order (``_client_endpoint``; oidc-provider's
``actions/token.js`` reads the same way):
1. parse the parameters (form body; the token endpoint also takes the query string);
2. run the protocol core in one unit of work; an ``OAuthError`` is a decision, caught inside
   the unit, so that what the core did before deciding (revoking the grant of a replayed code)
   and the security event it reports are committed with it;
3. after the unit, count a failed client authentication for the throttle (by source address,
   RFC 6749 §10.10; a correct credential is always served, so nobody can lock a client out)
   and audit it; past the address's limit the failure is answered 429;
4. answer: the core's result, or RFC 6749 §5.2 JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..http import (
    NO_STORE,
    authorization,
    bearer_error,
    dpop_proofs,
    json_error,
    multi_params,
)
from ..oauth import bearer, clients, introspection, par, revocation
from ..oauth.errors import InvalidRequest, OAuthError
from ..oauth.models import TokenResponse
from ..oauth.params import Params
from ..oauth.token import token_request
from ..observability import OAUTH_ERRORS, TOKENS_ISSUED, TOKENS_REFRESHED, TOKENS_REVOKED, Route
from ..services import services
from ..store.unit import Store
from ..throttle import ClientFailure
from .pages import audit

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

Parse = Callable[[Request], Awaitable[Params]]
Handle = Callable[[Request, Params, Store], Awaitable[Response]]


async def _client_endpoint(
    request: Request, endpoint: str, parse: Parse, handle: Handle, *, write: bool
) -> Response:
    """The steps of a client endpoint (the module's docstring)."""
    try:
        params = await parse(request)
    except OAuthError as error:
        return json_error(error)
    decision: OAuthError | None = None
    async with services(request).db.unit(write=write) as uow:
        try:
            response = await handle(request, params, uow)
        except OAuthError as error:
            decision = error
            if error.event is not None:
                event = error.event
                await audit(
                    request,
                    uow,
                    event.name,
                    company_id=event.company_id,
                    actor_user_id=event.user_id,
                    application_id=event.application_id,
                )
    if decision is not None:
        return await _client_error(request, endpoint, _client_key(request, params), decision)
    return response


async def token(request: Request) -> Response:
    """RFC 6749 §3.2: POST, form-encoded. Parameters in the query string are accepted too, as
    Factorial's guides show, though they end up in logs and proxies: discouraged."""
    return await _client_endpoint(request, "/oauth/token", _token_params, _token, write=True)


async def _token(request: Request, params: Params, uow: Store) -> Response:
    async def issued(result: TokenResponse) -> None:
        # Before the tokens are stored, in their unit: written with them, or not at all.
        assert result.owner is not None
        refreshed = result.grant_type == "refresh_token"
        await audit(
            request,
            uow,
            "token.refreshed" if refreshed else "token.issued",
            company_id=result.owner.company_id,
            actor_user_id=result.owner.user_id,
            application_id=result.application_id,
            resource_owner_type=result.owner.type,
            scope=" ".join(result.scopes),
            **({"grace_retry": True} if result.grace_retry else {}),
            **(
                {"grant_type": result.grant_type}
                if result.grant_type == "client_credentials"
                else {}
            ),
            **({"dpop": True} if result.token_type == "DPoP" else {}),
        )

    svc = services(request)
    context = svc.token_context(uow, on_issue=issued)
    result = await token_request(params, authorization(request), context, dpop_proofs(request))
    if result.owner is not None:
        if result.grant_type == "refresh_token":
            TOKENS_REFRESHED.inc()
        else:
            TOKENS_ISSUED.labels(result.owner.type).inc()
    headers = dict(NO_STORE)
    if (nonce := svc.dpop.nonce()) is not None:
        headers["DPoP-Nonce"] = nonce  # RFC 9449 §8.2: the nonce for the client's next proof
    return JSONResponse(result.body(), headers=headers)


async def pushed_authorization_request(request: Request) -> Response:
    """RFC 9126 §2: POST, form-encoded, the client authenticated as at the token endpoint;
    201 with the ``request_uri`` (§2.2), or an error as JSON (§2.3)."""
    return await _client_endpoint(request, "/oauth/par", _body_params, _push, write=True)


async def _push(request: Request, params: Params, uow: Store) -> Response:
    svc = services(request)
    pushed = await par.push(
        params,
        authorization(request),
        applications=uow.applications,
        servers=uow.resources,
        pushed=uow.pushed_requests,
        policy=svc.authorization_policy(),
        clock=svc.clock,
        authenticator=svc.authenticator(uow, "/oauth/par"),
    )
    return JSONResponse(pushed.body(), status_code=201, headers=NO_STORE)


async def revoke(request: Request) -> Response:
    """RFC 7009 §2.1: 200 whether or not the token existed; errors as §2.2.1 JSON."""
    return await _client_endpoint(request, "/oauth/revoke", _body_params, _revoke, write=True)


async def _revoke(request: Request, params: Params, uow: Store) -> Response:
    svc = services(request)
    context = svc.token_context(uow, endpoint="/oauth/revoke")
    revoked = await revocation.revoke(params, authorization(request), context)
    if revoked.kind is not None:
        TOKENS_REVOKED.labels(revoked.kind).inc()
        await audit(
            request,
            uow,
            "token.revoked",
            company_id=revoked.company_id,
            actor_user_id=revoked.user_id,
            application_id=revoked.application.id,
            token_type=revoked.kind,
            by="client",
        )
    return Response(status_code=200, headers=NO_STORE)


async def introspect(request: Request) -> Response:
    """RFC 7662 §2: the facts about a token, or ``{"active": false}``."""
    return await _client_endpoint(
        request, "/oauth/introspect", _body_params, _introspect, write=False
    )


async def _introspect(request: Request, params: Params, uow: Store) -> Response:
    context = services(request).token_context(uow, endpoint="/oauth/introspect")
    facts = await introspection.introspect(params, authorization(request), context)
    return JSONResponse(facts, headers=NO_STORE)


async def token_info(request: Request) -> Response:
    """Doorkeeper's token info: what the Bearer token in the request is, for its holder."""
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        try:
            # RFC 9449 §7.2: a bound token only with its proof, as at the API.
            token = await bearer.authenticate_request(
                bearer.presented_from_header(authorization(request)),
                dpop_proofs(request),
                "GET",
                svc.settings.issuer + "/oauth/token/info",
                uow.tokens,
                svc.clock,
                svc.dpop,
            )
        except OAuthError as error:
            return bearer_error(error)
    now = svc.clock.now()
    body = {
        "resource_owner_id": token.owner.user_id
        if token.owner.type == "user"
        else token.owner.company_id,
        "resource_owner_type": token.owner.type,
        "company_id": token.owner.company_id,
        "scope": list(token.scopes),
        "expires_in": None if token.expires_at is None else token.expires_at - now,
        "application": {"uid": token.client_id},
        "created_at": token.created_at,
    }
    return JSONResponse(body, headers=NO_STORE)


async def _token_params(request: Request) -> dict[str, list[str]]:
    params = multi_params(request.query_params.multi_items())
    return await _form_params(request, params)


async def _body_params(request: Request) -> dict[str, list[str]]:
    """RFC 7009 §2.1, RFC 7662 §2.1: POST with a form body; nothing in the URL."""
    if request.url.query:
        raise InvalidRequest(
            "send the parameters in the POST body (application/x-www-form-urlencoded), "
            "not in the URL."
        )
    return await _form_params(request, {})


async def _form_params(request: Request, params: dict[str, list[str]]) -> dict[str, list[str]]:
    if params and not services(request).settings.token_query_parameters:
        # RFC 6749 §2.3.1: the client secret "MUST NOT be included in the request URI".
        raise InvalidRequest(
            "send the token request's parameters in the POST body "
            "(application/x-www-form-urlencoded), not in the URL."
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body:
        if content_type != FORM_CONTENT_TYPE:
            raise InvalidRequest(
                f"the token request body must be {FORM_CONTENT_TYPE} (RFC 6749 §3.2)."
            )
        # The standard library's parser: python-multipart (Starlette's ``request.form()``) cost
        # more than the rest of the request's parsing . Percent-escapes that
        # do not decode to UTF-8 are malformed, not guessed at.
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("the request body is not valid form encoding.") from exc
        for key, value in pairs:
            params.setdefault(key, []).append(value)
    return params


def _client_key(request: Request, params: dict[str, list[str]]) -> str | None:
    """The client id a request claims (HTTP Basic or body), for throttling its failures."""

    def first(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    try:
        claimed = clients.from_request(
            authorization(request),
            first("client_id"),
            first("client_secret"),
            first("client_assertion_type"),
            first("client_assertion"),
        ).client_id
    except OAuthError:
        return None
    return claimed[:200] if claimed else None


async def _client_error(
    request: Request, endpoint: str, client_key: str | None, error: OAuthError
) -> Response:
    """The one answer to an OAuth error at a client endpoint: count it by RFC code, count a
    failed client authentication for the throttle and the audit trail, then RFC 6749 §5.2
    JSON, or 429 once the address failed too often (RFC 6749 §10.10). Runs after the
    request's unit of work."""
    OAUTH_ERRORS.labels(endpoint, error.error).inc()
    if client_key is None or error.error != "invalid_client":
        return json_error(error)
    address = request.client.host if request.client else "unknown"
    failure = await services(request).throttle.client_auth_failed(client_key, address)
    if (refusal := failure.refusal) is not None:
        # Throttled failures are not audited one by one: reaching the limit was, once.
        return JSONResponse(
            {
                "error": "too_many_requests",
                "error_description": "too many failed client authentications from this "
                f"address; retry after {refusal.retry_after} seconds.",
            },
            status_code=429,
            headers={"Retry-After": str(refusal.retry_after), **NO_STORE},
        )
    response = json_error(error)
    if failure.audited or failure.reached:
        # Written once the response is sent, in a unit of its own.
        response.background = BackgroundTask(
            _audit_client_failure, request, endpoint, client_key, failure
        )
    return response


async def _audit_client_failure(
    request: Request, endpoint: str, client_id: str, failure: ClientFailure
) -> None:
    """A failed authentication of a known client (RFC 9700 §2.5; RFC 6749 §10.10, guessing) is
    a security event for the admins of the company that owns it (never the secret presented).
    An unknown client id belongs to no company: it is only counted (metrics, throttle)."""
    async with services(request).db.unit() as uow:
        application = await uow.applications.by_client_id(client_id)
        if application is None:
            return
        for event, happened in (
            ("client.authentication_failed", failure.audited),
            ("client.authentication_throttled", failure.reached),
        ):
            if happened:
                await audit(
                    request,
                    uow,
                    event,
                    company_id=application.company_id,
                    application_id=application.id,
                    endpoint=endpoint,
                )


# Browser applications (single-page apps, public clients with PKCE) call these from their own
# origin, with the client's credentials, never a cookie: any origin may, without credentials
# (RFC 6749 §3.2's token endpoint, RFC 7009's revocation). Introspection is a resource server's
# back channel, and token info a holder's check: no CORS (web/middleware.py).
CORS = ("/oauth/token", "/oauth/revoke", "/oauth/par")

# Plain Starlette routes, in the order of their traffic: each handler takes only the request,
# and FastAPI's per-route machinery (dependency solving, its own wrapping) cost about 100 µs a
# request on the token endpoint. None of them is in the OpenAPI description.
routes = [
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/introspect", introspect, methods=["POST"]),
    Route("/oauth/token/info", token_info, methods=["GET"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/oauth/par", pushed_authorization_request, methods=["POST"]),
]
