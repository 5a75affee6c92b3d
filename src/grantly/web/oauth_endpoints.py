"""OAuth endpoints over HTTP: ``/oauth/authorize`` (RFC 6749 §4.1.1-4.1.2) and
``/oauth/token`` (RFC 6749 §3.2, §4.1.3, §6). Each handler only translates HTTP to the
protocol core and back."""

from __future__ import annotations

import shlex
from urllib.parse import parse_qsl, urlencode

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ..oauth import authorize as authz
from ..oauth import bearer, clients, introspection, pkce, revocation
from ..oauth.errors import AccessDenied, InvalidRequest, OAuthError
from ..oauth.models import User
from ..oauth.redirect_uris import OUT_OF_BAND
from ..oauth.token import token_request
from ..observability import (
    AUTHORIZATIONS,
    OAUTH_ERRORS,
    TOKENS_ISSUED,
    TOKENS_REFRESHED,
    TOKENS_REVOKED,
    Route,
)
from ..store.unit import Store
from . import sessions
from .responses import (
    NO_STORE,
    authorization_error,
    bearer_error,
    error_page,
    json_error,
    leaving_page,
    multi_params,
)
from .services import audit, services, signed_in_user

# Form fields of the consent form that are Grantly's own, not authorization parameters.
_CONSENT_FIELDS = {sessions.CSRF_FIELD, sessions.FORM_ID_FIELD, "decision", "show_code"}

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# The longest authorization query carried through sign-in (as ``next``) and back.
MAX_RETURN_QUERY = 4096


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


async def authorize(request: Request) -> Response:
    """Validate the request first (so a bad client learns at once), then make sure someone is
    signed in, then ask for consent."""
    svc = services(request)
    params = multi_params(request.query_params.multi_items())
    async with svc.db.unit(write=False) as uow:
        try:
            auth = await authz.validate(params, uow.applications, svc.authorization_policy())
        except OAuthError as error:
            return await _authorization_error(request, uow, error, params)
        user = await signed_in_user(request, uow)
        if user is None:
            return _login_redirect(request)
        remembered = auth.application.consent == "remember" and await uow.consents.covers(
            auth.application.id, user.id, user.company_id, auth.scopes
        )
        if authz.consent_required(auth, user, remembered):
            return await consent_page(request, uow, auth, user, show_code=False)
    # Approved without asking (a trusted application, or a grant the user already made).
    async with svc.db.unit() as uow:
        try:
            code = await _grant(request, uow, auth, user)
        except OAuthError as error:
            return authorization_error(request, error)
    return _redirect_with_code(request, auth, code)


async def _authorization_error(
    request: Request,
    uow: Store,
    error: OAuthError,
    params: dict[str, list[str]],
    user: User | None = None,
) -> Response:
    """RFC 9700 §4.11.2 (the authorization server as open redirector): anyone may register an
    application, so its registered redirect URI proves little. Before an error is redirected to
    it, the person signs in ("MUST always authenticate the user first"), and the redirect is
    automatic only to an application of the person's own company ("SHOULD only automatically
    redirect the user agent if it trusts the redirect URI"); for another company's application
    the person is told where they would go and decides. Errors that cannot be redirected at all
    (RFC 6749 §4.1.2.1) are shown at once, as is any error for a visitor who cannot be sent to
    sign in and back (a form post, or a URL too long to carry along)."""
    if not (error.redirectable and error.redirect_uri and error.redirect_uri != OUT_OF_BAND):
        return authorization_error(request, error)
    user = user or await signed_in_user(request, uow)
    if user is None:
        if request.method == "GET" and len(request.url.query) <= MAX_RETURN_QUERY:
            return _login_redirect(request)
        error.redirectable = False  # shown to the visitor, not redirected
        return authorization_error(request, error)
    client_id = params.get("client_id", [""])[0]
    application = await uow.applications.by_client_id(client_id)
    if application is None or application.company_id == user.company_id:
        return authorization_error(request, error)
    company = await uow.accounts.company(application.company_id)
    return leaving_page(request, error, application.name, company.name if company else "")


async def _audit_denied(
    request: Request,
    uow: Store,
    auth: authz.AuthorizationRequest,
    user: User,
    **detail: str,
) -> None:
    await audit(
        request,
        uow,
        "authorization.denied",
        company_id=user.company_id,
        actor_user_id=user.id,
        application_id=auth.application.id,
        resource_owner_type=auth.owner_type,
        **detail,
    )


async def _grant(request: Request, uow: Store, auth: authz.AuthorizationRequest, user: User) -> str:
    """Issue the code and remember the grant (for consent and /oauth/authorized_applications).
    A request the server refuses for this person (an employee asking for a company token) is
    audited like a denial: the company's admins see who tried."""
    svc = services(request)
    try:
        code = await authz.issue_code(
            auth,
            user,
            uow.codes,
            svc.clock,
            svc.settings.authorization_code_lifetime,
        )
    except AccessDenied as refused:
        await _audit_denied(request, uow, auth, user, reason=refused.description)
        raise
    owner = authz.resource_owner(auth, user)
    AUTHORIZATIONS.labels("granted").inc()
    await uow.consents.record(auth.application.id, owner, auth.scopes, svc.clock.now())
    await audit(
        request,
        uow,
        "authorization.granted",
        company_id=owner.company_id,
        actor_user_id=user.id,
        application_id=auth.application.id,
        resource_owner_type=owner.type,
        scope=" ".join(auth.scopes),
    )
    return code


def _redirect_with_code(request: Request, auth: authz.AuthorizationRequest, code: str) -> Response:
    return RedirectResponse(
        authz.success_redirect(auth, code, services(request).settings.issuer),
        status_code=302,
        headers={"Referrer-Policy": "no-referrer", **NO_STORE},
    )


async def consent_page(
    request: Request,
    uow: Store,
    auth: authz.AuthorizationRequest,
    user: User,
    *,
    show_code: bool,
) -> Response:
    svc = services(request)
    accounts = uow.accounts
    owner_company = await accounts.company(auth.application.company_id)
    user_company = await accounts.company(user.company_id)
    response = svc.render(
        request,
        "consent.html",
        auth=auth,
        hidden=auth.query(),
        application_company=owner_company,
        company=user_company,
        show_code=show_code,
        needs_admin=auth.owner_type == "company" and not user.admin,
    )
    response.headers.update(NO_STORE)
    return response


async def decide(request: Request) -> Response:
    """The person's answer to the consent page (RFC 6749 §4.1.2 and §4.1.2.1)."""
    svc = services(request)
    form = await request.form()
    try:
        sessions.check_csrf(request, _str(form.get(sessions.CSRF_FIELD)))
    except sessions.CsrfError:
        return error_page(
            request,
            "This form has expired",
            "The page was open too long or came from another site. Go back to the "
            "application and start the authorization again.",
            403,
        )
    form_id = _str(form.get(sessions.FORM_ID_FIELD))
    if (done := sessions.already_done(request, form_id)) is not None:
        # A reload of the page that displayed a code: the code was shown once; start again.
        return RedirectResponse(done, status_code=303)
    params = multi_params(
        (key, value)
        for key, value in form.multi_items()
        if key not in _CONSENT_FIELDS and isinstance(value, str)
    )
    decision = _str(form.get("decision"))
    async with svc.db.unit() as uow:
        try:
            auth = await authz.validate(params, uow.applications, svc.authorization_policy())
        except OAuthError as error:
            return await _authorization_error(request, uow, error, params)
        user = await signed_in_user(request, uow)
        if user is None:
            return RedirectResponse(
                "/login?" + urlencode({"next": "/oauth/authorize?" + urlencode(auth.query())}),
                status_code=303,
            )
        show_code = _str(form.get("show_code")) == "1"
        if show_code and not (user.admin and user.company_id == auth.application.company_id):
            show_code = False
        try:
            if decision != "allow":
                AUTHORIZATIONS.labels("denied").inc()
                await _audit_denied(request, uow, auth, user)
                raise AccessDenied("the user denied the authorization request.").as_redirectable(
                    auth.redirect_uri, auth.state
                )
            code = await _grant(request, uow, auth, user)
        except OAuthError as error:
            if show_code or auth.out_of_band:
                return error_page(request, "Authorization not granted", error.description, 403)
            return await _authorization_error(request, uow, error, params, user)
        if show_code or auth.out_of_band:
            again = f"/oauth/applications/{auth.application.id}" if show_code else "/"
            sessions.mark_done(request, form_id, again)
            return code_page(request, auth, code)
    return _redirect_with_code(request, auth, code)


def code_page(request: Request, auth: authz.AuthorizationRequest, code: str) -> Response:
    """Show the code to the person (the dashboard's Authorize button, or the out-of-band
    redirect URI), with the exact token request to run next."""
    svc = services(request)
    verifier = request.session.pop(f"pkce:{auth.application.client_id}", None)
    fields = [("client_id", auth.application.client_id)]
    if auth.application.confidential:
        fields.append(("client_secret", "<YOUR_CLIENT_SECRET>"))
    fields += [("code", code), ("grant_type", "authorization_code")]
    fields.append(("redirect_uri", auth.redirect_uri))
    if auth.code_challenge is not None and isinstance(verifier, str):
        fields.append(("code_verifier", verifier))
    curl = f"curl -X POST {shlex.quote(svc.settings.issuer + '/oauth/token')}" + "".join(
        f" \\\n  --data-urlencode {shlex.quote(f'{name}={value}')}" for name, value in fields
    )
    response = svc.render(
        request,
        "code.html",
        auth=auth,
        code=code,
        curl=curl,
        minutes=svc.settings.authorization_code_lifetime // 60,
    )
    response.headers.update(NO_STORE)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def dashboard_authorization(
    request: Request, uow: Store, application_id: int, user: User
) -> Response:
    """The application page's Authorize button: a user-token authorization for the signed-in
    admin that ends on the code page instead of a redirect."""
    svc = services(request)
    application = await uow.applications.get(application_id, user.company_id)
    if application is None:
        return error_page(request, "Application not found", "No such application.", 404)
    redirect_uri = (
        OUT_OF_BAND if OUT_OF_BAND in application.redirect_uris else application.redirect_uris[0]
    )
    params = {
        "client_id": [application.client_id],
        "redirect_uri": [redirect_uri],
        "response_type": ["code"],
    }
    if application.public:
        verifier = pkce.new_verifier()
        request.session[f"pkce:{application.client_id}"] = verifier
        params["code_challenge"] = [pkce.s256(verifier)]
        params["code_challenge_method"] = ["S256"]
    try:
        auth = await authz.validate(params, uow.applications, svc.authorization_policy())
    except OAuthError as error:
        return error_page(request, "This application cannot be authorized", error.description, 400)
    return await consent_page(request, uow, auth, user, show_code=True)


async def token(request: Request) -> Response:
    """RFC 6749 §3.2: POST, form-encoded. Parameters in the query string are accepted too, as
    Factorial's guides show, though they end up in logs and proxies: discouraged."""
    svc = services(request)
    try:
        params = await _token_params(request)
    except OAuthError as error:
        return json_error(error)
    client_key = _client_key(request, params)
    if (refused := await _throttled(request, client_key)) is not None:
        return refused
    async with svc.db.unit() as uow:
        try:
            result = await token_request(
                params, request.headers.get("authorization"), svc.token_context(uow)
            )
        except OAuthError as error:
            if error.event is not None:
                await _audit_security_event(request, uow, error)
            return await _client_error(request, "/oauth/token", client_key, error)
        if result.owner is not None:
            refreshed = params.get("grant_type") == ["refresh_token"]
            if refreshed:
                TOKENS_REFRESHED.inc()
            else:
                TOKENS_ISSUED.labels(result.owner.type).inc()
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
            )
    return JSONResponse(result.body(), headers=NO_STORE)


async def _audit_security_event(request: Request, uow: Store, error: OAuthError) -> None:
    event = error.event
    assert event is not None
    await audit(
        request,
        uow,
        event.name,
        company_id=event.company_id,
        actor_user_id=event.user_id,
        application_id=event.application_id,
    )


async def _token_params(request: Request) -> dict[str, list[str]]:
    params = multi_params(request.query_params.multi_items())
    return await _form_params(request, params)


def _client_key(request: Request, params: dict[str, list[str]]) -> str | None:
    """The client id a request claims (HTTP Basic or body), for throttling its failures."""

    def first(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    try:
        claimed = clients.from_request(
            request.headers.get("authorization"), first("client_id"), first("client_secret")
        ).client_id
    except OAuthError:
        return None
    return claimed[:200] if claimed else None


async def _throttled(request: Request, client_key: str | None) -> Response | None:
    """429 while a client id has failed authentication too often (RFC 6749 §10.10)."""
    if client_key is None:
        return None
    refusal = await services(request).throttle.client_auth_refusal(client_key)
    if refusal is None:
        return None
    return JSONResponse(
        {
            "error": "too_many_requests",
            "error_description": "too many failed client authentications; retry after "
            f"{refusal.retry_after} seconds.",
        },
        status_code=429,
        headers={"Retry-After": str(refusal.retry_after), **NO_STORE},
    )


async def _client_error(
    request: Request, endpoint: str, client_key: str | None, error: OAuthError
) -> Response:
    """The one answer to an OAuth error at a client endpoint (token, revoke, introspect): count
    it by RFC code, count a failed client authentication for the throttle and the audit trail,
    then RFC 6749 §5.2 JSON."""
    OAUTH_ERRORS.labels(endpoint, error.error).inc()
    response = json_error(error)
    if client_key is not None and error.error == "invalid_client":
        await services(request).throttle.client_auth_failed(client_key)
        # Written once the request's own transaction is over (it may be read-only, or hold
        # SQLite's write lock).
        response.background = BackgroundTask(_audit_client_failure, request, endpoint, client_key)
    return response


async def _audit_client_failure(request: Request, endpoint: str, client_id: str) -> None:
    """A failed authentication of a known client (RFC 9700 §2.5; RFC 6749 §10.10, guessing) is
    a security event for the admins of the company that owns it (never the secret presented).
    An unknown client id belongs to no company: it is only counted (metrics, throttle)."""
    async with services(request).db.unit() as uow:
        application = await uow.applications.by_client_id(client_id)
        if application is None:
            return
        await audit(
            request,
            uow,
            "client.authentication_failed",
            company_id=application.company_id,
            application_id=application.id,
            endpoint=endpoint,
        )


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
        # more than the rest of the request's parsing (issue 6's profile). Percent-escapes that
        # do not decode to UTF-8 are malformed, not guessed at.
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("the request body is not valid form encoding.") from exc
        for key, value in pairs:
            params.setdefault(key, []).append(value)
    return params


async def revoke(request: Request) -> Response:
    """RFC 7009 §2.1: 200 whether or not the token existed; errors as §2.2.1 JSON."""
    svc = services(request)
    try:
        params = await _body_params(request)
    except OAuthError as error:
        return json_error(error)
    client_key = _client_key(request, params)
    if (refused := await _throttled(request, client_key)) is not None:
        return refused
    async with svc.db.unit() as uow:
        try:
            revoked = await revocation.revoke(
                params, request.headers.get("authorization"), svc.token_context(uow)
            )
        except OAuthError as error:
            return await _client_error(request, "/oauth/revoke", client_key, error)
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
    svc = services(request)
    try:
        params = await _body_params(request)
    except OAuthError as error:
        return json_error(error)
    client_key = _client_key(request, params)
    if (refused := await _throttled(request, client_key)) is not None:
        return refused
    async with svc.db.unit(write=False) as uow:
        try:
            facts = await introspection.introspect(
                params, request.headers.get("authorization"), svc.token_context(uow)
            )
        except OAuthError as error:
            return await _client_error(request, "/oauth/introspect", client_key, error)
    return JSONResponse(facts, headers=NO_STORE)


async def token_info(request: Request) -> Response:
    """Doorkeeper's token info: what the Bearer token in the request is, for its holder."""
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        try:
            token = await bearer.authenticate(
                bearer.token_from_header(request.headers.get("authorization")),
                uow.tokens,
                svc.clock,
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


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# Plain Starlette routes, in the order of their traffic: each handler takes only the request,
# and FastAPI's per-route machinery (dependency solving, its own wrapping) cost about 100 µs a
# request on the token endpoint (issue 6's profile). None of them is in the OpenAPI description.
routes = [
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/introspect", introspect, methods=["POST"]),
    Route("/oauth/token/info", token_info, methods=["GET"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/oauth/authorize", authorize, methods=["GET"]),
    Route("/oauth/authorize", decide, methods=["POST"]),
]
