"""The browser's side of the authorization code flow: ``/oauth/authorize`` (RFC 6749
§4.1.1-4.1.2), the consent page and the person's decision, and the page that shows a code
(the dashboard's Authorize button, the out-of-band redirect URI). Each handler only translates
HTTP to the protocol core and back."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from itsdangerous import BadData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..http import NO_STORE, multi_params
from ..oauth import authorize as authz
from ..oauth import client_documents, par, pkce
from ..oauth.errors import AccessDenied, OAuthError
from ..oauth.models import User
from ..oauth.redirect_uris import OUT_OF_BAND
from ..observability import (
    AUTHORIZATIONS,
    OAUTH_ERRORS,
    Route,
)
from ..services import services
from ..store.unit import Store
from . import agents, sessions
from .pages import audit, render, signed_in_user
from .responses import authorization_error, error_page, leaving_page

# Form fields of the consent form that are Grantly's own, not authorization parameters.
_CONSENT_FIELDS = {
    sessions.CSRF_FIELD,
    sessions.FORM_ID_FIELD,
    "decision",
    "show_code",
    "pushed",
}
# A pushed request's parameters, signed into the consent form: valid for as long as a code.
PUSHED_FORM_MAX_AGE = 600

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
    if (unusable := await _document_client(request, params)) is not None:
        return unusable
    request_uri = params.get("request_uri", [""])[0] or None
    async with svc.db.unit(write=False) as uow:
        try:
            # RFC 9126 §4: a request_uri stands for the parameters pushed; only they count.
            pushed = await par.pushed_params(params, uow.pushed_requests, svc.clock)
            auth = await authz.validate(
                pushed or params,
                uow.applications,
                svc.authorization_policy(),
                uow.resources,
                pushed=pushed is not None,
            )
        except OAuthError as error:
            return await _authorization_error(request, uow, error, params)
        user = await signed_in_user(request, uow)
        if user is None:
            return _login_redirect(request)
        if (refused := await agents.refusal(uow, auth.application, user)) is not None:
            return await _refused_agent(request, uow, auth, user, refused, params)
        remembered = auth.application.consent == "remember" and await uow.consents.covers(
            auth.application.id, user.id, user.company_id, auth.scopes, svc.clock.now()
        )
        ask = authz.consent_required(auth, user, remembered)
        if ask and request_uri is None:
            return await consent_page(request, uow, auth, user, show_code=False)
    if ask and request_uri is not None:
        # The pushed request is spent on the person's answer: the consent form carries its
        # parameters from here, a page of Grantly's own (RFC 9126 §4, one-time use).
        async with svc.db.unit() as uow:
            try:
                await par.use(request_uri, uow.pushed_requests, svc.clock)
            except OAuthError as error:
                return authorization_error(request, error)
        async with svc.db.unit(write=False) as uow:
            return await consent_page(request, uow, auth, user, show_code=False, pushed=True)
    # Approved without asking (a trusted application, or a grant the user already made).
    async with svc.db.unit() as uow:
        try:
            if request_uri is not None:
                await par.use(request_uri, uow.pushed_requests, svc.clock)
            code = await _grant(request, uow, auth, user)
        except OAuthError as error:
            return authorization_error(request, error)
    return _redirect_with_code(request, auth, code)


async def _document_client(request: Request, params: dict[str, list[str]]) -> Response | None:
    """A client_id that is an https URL names a client metadata document: fetch it (or use the
    cached copy) before the request is validated, or tell the person why it cannot be used.
    Nothing is redirected: until the document is read, no redirect URI is trusted."""
    client_id = params.get("client_id", [""])[0]
    if not client_documents.is_document_url(client_id):
        return None
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        known = await uow.applications.by_client_id(client_id)
        signed_in = known is not None or await signed_in_user(request, uow) is not None
    if not signed_in:
        # A document nobody used yet is fetched (and kept) only for a person signed in:
        # anonymous visitors cannot make Grantly fetch URLs or store rows.
        if request.method == "GET" and len(request.url.query) <= MAX_RETURN_QUERY:
            return _login_redirect(request)
        return error_page(
            request, "Sign in first", "Sign in to Grantly, then start the authorization again.", 401
        )
    if known is None or agents.stale(known, svc.clock.now()):
        address = request.client.host if request.client else "unknown"
        if (refusal := await svc.throttle.document_fetch(address)) is not None:
            OAUTH_ERRORS.labels("/oauth/authorize", "too_many_requests").inc()
            response = error_page(
                request,
                "Too many applications at once",
                "Grantly fetched many client metadata documents for this address lately; try "
                f"again in {refusal.retry_after} seconds.",
                429,
            )
            response.headers["Retry-After"] = str(refusal.retry_after)
            return response
    try:
        await agents.ensure_document_client(svc, client_id, known)
    except agents.ClientDocumentUnusable as exc:
        OAUTH_ERRORS.labels("/oauth/authorize", "invalid_client").inc()
        return error_page(request, "This application cannot be authorized", str(exc), 400)
    return None


async def _refused_agent(
    request: Request,
    uow: Store,
    auth: authz.AuthorizationRequest,
    user: User,
    refused: AccessDenied,
    params: dict[str, list[str]],
) -> Response:
    """The person's company does not allow this agent application: audited like a denial,
    and answered access_denied (to a redirect URI the person is shown before following)."""
    if uow.tx.write:
        await _audit_denied(request, uow, auth, user, reason=refused.description)
    else:  # the authorization page reads in a unit of its own
        async with services(request).db.unit() as writer:
            await _audit_denied(request, writer, auth, user, reason=refused.description)
    error = refused.as_redirectable(auth.redirect_uri, auth.state)
    return await _authorization_error(request, uow, error, params, user)


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
    if auth.application.agent:
        # A registration someone authorized is kept (``grantly tokens prune`` removes others).
        await uow.agents.mark_authorized(auth.application.id, svc.clock.now())
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
    pushed: bool = False,
) -> Response:
    """The consent page. For a pushed request (RFC 9126) its parameters travel in the form
    signed (``pushed``), so that the answer can only be about what the client pushed: a form
    changed in the browser, or made up for an application that requires pushed requests,
    does not verify."""
    hidden = auth.query()
    if pushed:
        hidden = [*hidden, ("pushed", services(request).pushed_forms.dumps(hidden))]
    accounts = uow.accounts
    owner_company = await accounts.company(auth.application.company_id)
    user_company = await accounts.company(user.company_id)
    response = render(
        request,
        "consent.html",
        auth=auth,
        agent=_agent_facts(auth) if auth.application.agent else None,
        hidden=hidden,
        application_company=owner_company,
        company=user_company,
        show_code=show_code,
        needs_admin=auth.owner_type == "company" and not user.admin,
    )
    response.headers.update(NO_STORE)
    return response


@dataclass(frozen=True, slots=True)
class AgentFacts:
    redirect_host: str
    document_host: str | None


def _agent_facts(auth: authz.AuthorizationRequest) -> AgentFacts:
    """What the consent page puts first for an application no company registered (the MCP
    authorization specification's security considerations): where the access goes (the
    redirect URI's host) and who publishes the metadata document (its host)."""
    parts = urlsplit(auth.redirect_uri)
    redirect_host = parts.netloc or auth.redirect_uri
    document_host = None
    if auth.application.origin == "metadata_document":
        document_host = urlsplit(auth.application.client_id).netloc
    return AgentFacts(redirect_host, document_host)


def _pushed_params(request: Request, signed: str) -> dict[str, list[str]] | None:
    """The parameters a consent form for a pushed request carries signed, if it verifies."""
    if not signed:
        return None
    try:
        pairs = services(request).pushed_forms.loads(signed, max_age=PUSHED_FORM_MAX_AGE)
    except BadData:
        return None
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in pairs
    ):
        return None
    return multi_params((name, value) for name, value in pairs)


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
        sessions.notify(
            request,
            "That code was already shown once and is not shown again: authorize again for "
            "another one.",
            "warn",
        )
        return RedirectResponse(done, status_code=303)
    params = multi_params(
        (key, value)
        for key, value in form.multi_items()
        if key not in _CONSENT_FIELDS and isinstance(value, str)
    )
    decision = _str(form.get("decision"))
    pushed = _pushed_params(request, _str(form.get("pushed")))
    if pushed is not None:
        params = pushed  # RFC 9126: what the client pushed, and nothing the browser changed
    if (unusable := await _document_client(request, params)) is not None:
        return unusable
    async with svc.db.unit() as uow:
        try:
            auth = await authz.validate(
                params,
                uow.applications,
                svc.authorization_policy(),
                uow.resources,
                pushed=pushed is not None,
            )
        except OAuthError as error:
            return await _authorization_error(request, uow, error, params)
        user = await signed_in_user(request, uow)
        if user is None:
            return RedirectResponse(
                "/login?" + urlencode({"next": "/oauth/authorize?" + urlencode(auth.query())}),
                status_code=303,
            )
        if (refused := await agents.refusal(uow, auth.application, user)) is not None:
            return await _refused_agent(request, uow, auth, user, refused, params)
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
                message = (
                    "You denied the request: no code was issued, and the application was not "
                    "given access."
                    if decision != "allow"
                    else error.description
                )
                return error_page(request, "Authorization not granted", message, 403)
            return await _authorization_error(request, uow, error, params, user)
        if show_code or auth.out_of_band:
            again = f"/oauth/applications/{auth.application.id}" if show_code else "/"
            sessions.mark_done(request, form_id, again)
            return code_page(request, auth, code)
    return _redirect_with_code(request, auth, code)


VERIFIER_PLACEHOLDER = "<YOUR_CODE_VERIFIER>"


def code_page(request: Request, auth: authz.AuthorizationRequest, code: str) -> Response:
    """Show the code to the person (the dashboard's Authorize button, or the out-of-band
    redirect URI), with the request's ``state`` (RFC 6749 §4.1.2: returned as it was sent)
    and the exact token request to run next."""
    svc = services(request)
    verifier = request.session.pop(f"pkce:{auth.application.client_id}", None)
    fields = [("client_id", auth.application.client_id)]
    if auth.application.confidential:
        fields.append(("client_secret", "<YOUR_CLIENT_SECRET>"))
    fields += [("code", code), ("grant_type", "authorization_code")]
    fields.append(("redirect_uri", auth.redirect_uri))
    if auth.code_challenge is not None:
        # The token request must prove the challenge (RFC 7636 §4.5), or it gets invalid_grant.
        # Only the dashboard's own requests have a verifier Grantly made; any other client
        # keeps its verifier, so the command names where it goes.
        fields.append(
            ("code_verifier", verifier if isinstance(verifier, str) else VERIFIER_PLACEHOLDER)
        )
    curl = f"curl -X POST {shlex.quote(svc.settings.issuer + '/oauth/token')}" + "".join(
        f" \\\n  --data-urlencode {shlex.quote(f'{name}={value}')}" for name, value in fields
    )
    response = render(
        request,
        "code.html",
        auth=auth,
        code=code,
        curl=curl,
        state=auth.state,
        needs_verifier=VERIFIER_PLACEHOLDER in curl,
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
        auth = await authz.validate(
            params, uow.applications, svc.authorization_policy(), uow.resources
        )
    except OAuthError as error:
        return error_page(request, "This application cannot be authorized", error.description, 400)
    return await consent_page(request, uow, auth, user, show_code=True)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


routes = [
    Route("/oauth/authorize", authorize, methods=["GET"]),
    Route("/oauth/authorize", decide, methods=["POST"]),
]
