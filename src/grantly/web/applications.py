"""The company's repository of OAuth applications (``/oauth/applications``), for its admins."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import admin
from ..http import NO_STORE
from ..oauth.models import Application, User
from ..oauth.redirect_uris import OUT_OF_BAND
from ..oauth.registration import ApplicationDraft, RegistrationError, validate
from ..services import services
from ..store.consents import Consent
from ..store.unit import Store
from . import sessions
from .authorization import dashboard_authorization
from .guards import admin_or_refusal, checked_form, form_id
from .pages import audit, render
from .responses import error_page

router = APIRouter(prefix="/oauth/applications")


async def _admin(request: Request, uow: Store) -> User | Response:
    return await admin_or_refusal(
        request,
        uow,
        title="Only admins manage OAuth applications",
        why="The repository of OAuth applications is open to your company's admins only, "
        "because an application's credentials give access to company data. To build an "
        "integration, ask an admin to register it and share its credentials. Authorizing "
        "an existing integration needs no access here: any employee can do it from the "
        "integration's own sign-in link.",
    )


def _draft_from_form(form: FormData, server_scopes: tuple[str, ...]) -> ApplicationDraft:
    raw_lifetime = str(form.get("access_token_lifetime") or "").strip()
    lifetime: int | None = None
    if raw_lifetime:
        if not raw_lifetime.isdigit() or len(raw_lifetime) > 9:
            raise RegistrationError(["the access-token lifetime must be a number of seconds."])
        lifetime = int(raw_lifetime)
    return validate(
        name=str(form.get("name") or ""),
        redirect_uris=str(form.get("redirect_uris") or "").splitlines(),
        confidential=form.get("confidential") == "on",
        scopes=[str(s) for s in form.getlist("scopes")],
        server_scopes=server_scopes,
        consent=str(form.get("consent") or "always"),
        access_token_lifetime=lifetime,
    )


def _authorize_urls(request: Request, application: Application) -> dict[str, str]:
    """The ready-made authorize URLs the show page offers to copy (Factorial's guide: "all the
    information required to build this URL is available in your OAuth application page")."""
    issuer = services(request).settings.issuer
    redirect_uri = application.redirect_uris[0]
    base = {
        "client_id": application.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(application.scopes),
    }
    company = base | {"resource_owner_type": "company"}
    return {
        "user": f"{issuer}/oauth/authorize?{urlencode(base)}",
        "company": f"{issuer}/oauth/authorize?{urlencode(company)}",
    }


def _show(
    request: Request,
    application: Application,
    secret: str | None = None,
    status: int = 200,
    company_grants: list[Consent] | None = None,
) -> Response:
    response = render(
        request,
        "applications/show.html",
        status,
        application=application,
        secret=secret,
        company_grants=company_grants or [],
        authorize_urls=_authorize_urls(request, application),
        out_of_band=OUT_OF_BAND,
    )
    if secret:
        response.headers.update(NO_STORE)
    return response


def _form(
    request: Request,
    *,
    application: Application | None,
    values: dict[str, object],
    problems: list[str],
    status: int = 200,
) -> Response:
    svc = services(request)
    return render(
        request,
        "applications/form.html",
        status,
        application=application,
        values=values,
        problems=problems,
        server_scopes=svc.server_scopes,
        default_lifetime=svc.settings.access_token_lifetime,
    )


def _values(application: Application | None, form: FormData | None = None) -> dict[str, object]:
    if form is not None:
        return {
            "name": str(form.get("name") or ""),
            "redirect_uris": str(form.get("redirect_uris") or ""),
            "confidential": form.get("confidential") == "on",
            "scopes": [str(s) for s in form.getlist("scopes")],
            "consent": str(form.get("consent") or "always"),
            "access_token_lifetime": str(form.get("access_token_lifetime") or ""),
        }
    if application is None:
        return {
            "name": "",
            "redirect_uris": "",
            "confidential": True,
            "scopes": [],
            "consent": "always",
            "access_token_lifetime": "",
        }
    return {
        "name": application.name,
        "redirect_uris": "\n".join(application.redirect_uris),
        "confidential": application.confidential,
        "scopes": list(application.scopes),
        "consent": application.consent,
        "access_token_lifetime": application.access_token_lifetime or "",
    }


@router.get("", include_in_schema=False)
async def index(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        applications = await uow.applications.for_company(user.company_id)
    return render(request, "applications/index.html", applications=applications)


@router.get("/new", include_in_schema=False)
async def new(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
    return _form(request, application=None, values=_values(None), problems=[])


@router.post("", include_in_schema=False)
async def create(request: Request) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        user = await _admin(request, uow)
        if isinstance(user, Response):
            return user
        try:
            draft = _draft_from_form(form, svc.server_scopes)
        except RegistrationError as exc:
            return _form(
                request,
                application=None,
                values=_values(None, form),
                problems=exc.problems,
                status=422,
            )
        created = await admin.create_application(uow, user.company_id, draft, svc.clock.now())
        await audit(
            request,
            uow,
            "application.created",
            company_id=user.company_id,
            actor_user_id=user.id,
            application_id=created.application.id,
            name=draft.name,
            scope=" ".join(draft.scopes),
            confidential=draft.confidential,
        )
    sessions.mark_done(request, form_id(form), f"/oauth/applications/{created.application.id}")
    return _show(request, created.application, created.client_secret, status=201)


MAX_ID = 2**31 - 1  # ids beyond what the database can hold exist nowhere


async def _load(
    request: Request, uow: Store, application_id: int
) -> tuple[User, Application] | Response:
    user = await _admin(request, uow)
    if isinstance(user, Response):
        return user
    application = (
        await uow.applications.get(application_id, user.company_id)
        if 0 < application_id <= MAX_ID
        else None
    )
    if application is None:
        # Another company's application is "not found" too: nothing tells it exists.
        return error_page(
            request, "Application not found", "There is no such application in your company.", 404
        )
    return user, application


@router.get("/{application_id:int}", include_in_schema=False)
async def show(request: Request, application_id: int) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        loaded = await _load(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        grants = await uow.consents.company_grants_of_application(application_id, svc.clock.now())
    return _show(request, loaded[1], company_grants=grants)


@router.get("/{application_id:int}/edit", include_in_schema=False)
async def edit(request: Request, application_id: int) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        loaded = await _load(request, uow, application_id)
    if isinstance(loaded, Response):
        return loaded
    application = loaded[1]
    return _form(request, application=application, values=_values(application), problems=[])


@router.post("/{application_id:int}", include_in_schema=False)
async def update(request: Request, application_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        application = loaded[1]
        try:
            draft = _draft_from_form(form, svc.server_scopes)
        except RegistrationError as exc:
            return _form(
                request,
                application=application,
                values=_values(application, form),
                problems=exc.problems,
                status=422,
            )
        updated = await admin.update_application(uow, application, draft, svc.clock.now())
        await audit(
            request,
            uow,
            "application.updated",
            company_id=loaded[0].company_id,
            actor_user_id=loaded[0].id,
            application_id=application.id,
            name=draft.name,
            scope=" ".join(draft.scopes),
            confidential=draft.confidential,
            consent=draft.consent,
            tokens_revoked=(
                set(draft.scopes) != set(application.scopes)
                or draft.confidential != application.confidential
            ),
        )
    sessions.mark_done(request, form_id(form), f"/oauth/applications/{application_id}")
    if updated.client_secret:
        return _show(request, updated.application, updated.client_secret)
    return RedirectResponse(f"/oauth/applications/{application_id}", status_code=303)


@router.post("/{application_id:int}/delete", include_in_schema=False)
async def destroy(request: Request, application_id: int) -> Response:
    svc = services(request)
    _form_data, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        await uow.applications.delete(loaded[1].id)
        await audit(
            request,
            uow,
            "application.deleted",
            company_id=loaded[0].company_id,
            actor_user_id=loaded[0].id,
            application_id=loaded[1].id,
            name=loaded[1].name,
        )
    return RedirectResponse("/oauth/applications", status_code=303)


@router.post("/{application_id:int}/secret", include_in_schema=False)
async def regenerate_secret(request: Request, application_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        application = loaded[1]
        if not application.confidential:
            return error_page(
                request,
                "Public applications have no secret",
                "This application is public (it cannot keep a secret), so it has none to "
                "regenerate. Edit it and tick Confidential to give it one.",
                400,
            )
        secret = await admin.regenerate_secret(uow, application, svc.clock.now())
        await audit(
            request,
            uow,
            "application.secret_regenerated",
            company_id=loaded[0].company_id,
            actor_user_id=loaded[0].id,
            application_id=application.id,
            name=application.name,
        )
    sessions.mark_done(request, form_id(form), f"/oauth/applications/{application_id}")
    return _show(request, application, secret)


@router.get("/{application_id:int}/authorize", include_in_schema=False)
async def authorize_button(request: Request, application_id: int) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        loaded = await _load(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        return await dashboard_authorization(request, uow, application_id, loaded[0])
