"""The company's repository of OAuth applications (``/oauth/applications``), for its admins."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .. import admin
from ..http import NO_STORE
from ..oauth.models import Application, User
from ..oauth.redirect_uris import OUT_OF_BAND
from ..oauth.registration import (
    MAX_ACCESS_TOKEN_LIFETIME,
    MIN_ACCESS_TOKEN_LIFETIME,
    ApplicationDraft,
    RegistrationError,
    security_of,
    validate,
)
from ..services import services
from ..store.consents import Consent
from ..store.live import NOTHING, LiveTokens, grant_key, total
from ..store.unit import Store
from . import consequences as say
from . import pages, sessions
from .authorization import dashboard_authorization
from .guards import admin_or_refusal, checked_form, form_id
from .pages import audit, duration, render
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
    return validate(
        name=str(form.get("name") or ""),
        redirect_uris=str(form.get("redirect_uris") or "").splitlines(),
        confidential=form.get("confidential") == "on",
        scopes=[str(s) for s in form.getlist("scopes")],
        server_scopes=server_scopes,
        consent=str(form.get("consent") or "always"),
        access_token_lifetime=str(form.get("access_token_lifetime") or ""),
        security=_security_from_form(form),
    )


def _security_from_form(form: FormData) -> dict[str, object]:
    """The token security fieldset, as ``validate`` takes it (the CLI's ``apps`` options)."""
    grant_types = ["client_credentials"] if form.get("client_credentials") == "on" else []
    return {
        "access_token_format": str(form.get("access_token_format") or "opaque"),
        "dpop": str(form.get("dpop") or "optional"),
        "auth_method": str(form.get("auth_method") or "") or None,
        "jwks": str(form.get("jwks") or "") or None,
        "jwks_uri": str(form.get("jwks_uri") or "") or None,
        "require_par": form.get("require_par") == "on",
        "grant_types": grant_types,
    }


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


@dataclass(frozen=True)
class _Grants:
    """What the show page lists of an application's grants, and what revoking each stops."""

    users: list[Consent]
    companies: list[Consent]
    live: dict[int, LiveTokens]  # by consent id
    warnings: dict[int, str]  # by consent id: the question of its Revoke button
    everything: LiveTokens


async def _grants(uow: Store, application: Application, user: User, now: int) -> _Grants:
    listed = await uow.consents.of_application(application.id, now)
    by_grant = await uow.tokens.live_by_grant(now, application_id=application.id)
    live = {g.id: by_grant.get(grant_key(g.application_id, g.owner), NOTHING) for g in listed}
    own = {g.id: g.owner.type == "user" and g.owner.user_id == user.id for g in listed}
    return _Grants(
        users=[g for g in listed if g.owner.type == "user"],
        companies=[g for g in listed if g.owner.type == "company"],
        live=live,
        warnings={g.id: say.dialog(say.revoke_grant(g, live[g.id], own=own[g.id])) for g in listed},
        everything=total(by_grant.values()),
    )


def _show(
    request: Request,
    application: Application,
    grants: _Grants,
    secret: str | None = None,
    status: int = 200,
) -> Response:
    path = f"/oauth/applications/{application.id}"
    response = render(
        request,
        "applications/show.html",
        status,
        application=application,
        secret=secret,
        grants=grants,
        here=path,
        # A page that shows a secret answers a POST; copy.js then gives the browser the
        # application's own URL, so a reload or a bookmark is a GET that shows no secret.
        location=path if secret else None,
        confirm_delete=say.dialog(say.delete_application(application, grants.everything)),
        confirm_secret=say.dialog(say.regenerate_secret(grants.everything)),
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
    warning: list[str] | None = None,
    change: str | None = None,
) -> Response:
    """The new and edit form. ``warning``: what saving the posted change would revoke, with
    the ``change`` it is about (``_fingerprint``), posted back to confirm it."""
    svc = services(request)
    return render(
        request,
        "applications/form.html",
        status,
        application=application,
        values=values,
        problems=problems,
        warning=warning or [],
        change=change,
        server_scopes=svc.server_scopes,
        default_lifetime=duration(svc.settings.access_token_lifetime),
        min_lifetime=MIN_ACCESS_TOKEN_LIFETIME,
        max_lifetime=MAX_ACCESS_TOKEN_LIFETIME,
        max_lifetime_words=duration(MAX_ACCESS_TOKEN_LIFETIME),
    )


def _values(
    application: Application | None,
    form: FormData | None = None,
    server_scopes: tuple[str, ...] = (),
) -> dict[str, object]:
    if form is not None:
        return {
            "name": str(form.get("name") or ""),
            "redirect_uris": str(form.get("redirect_uris") or ""),
            "confidential": form.get("confidential") == "on",
            "scopes": [str(s) for s in form.getlist("scopes")],
            "consent": str(form.get("consent") or "always"),
            "access_token_lifetime": str(form.get("access_token_lifetime") or ""),
            **_security_values(_security_from_form(form)),
        }
    if application is None:
        return {
            "name": "",
            "redirect_uris": "",
            "confidential": True,
            # Reading is what nearly every integration needs; the rest is asked for on purpose.
            "scopes": [s for s in ("read",) if s in server_scopes],
            "consent": "always",
            "access_token_lifetime": "",
            **_security_values({}),
        }
    return {
        "name": application.name,
        "redirect_uris": "\n".join(application.redirect_uris),
        "confidential": application.confidential,
        "scopes": list(application.scopes),
        "consent": application.consent,
        "access_token_lifetime": application.access_token_lifetime or "",
        **_security_values(security_of(application)),
    }


def _security_values(security: dict[str, object]) -> dict[str, object]:
    """The token security fieldset's values, from settings as ``validate`` takes them."""
    return {
        "access_token_format": security.get("access_token_format", "opaque"),
        "dpop": security.get("dpop", "optional"),
        "auth_method": security.get("auth_method") or "client_secret",
        "jwks": security.get("jwks") or "",
        "jwks_uri": security.get("jwks_uri") or "",
        "require_par": bool(security.get("require_par")),
        "client_credentials": "client_credentials" in list(security.get("grant_types") or []),  # type: ignore[call-overload]
    }


def _fingerprint(draft: ApplicationDraft) -> str:
    """The part of an edit that revokes (scopes, client type, DPoP required), as the
    warning's form carries it back: a confirmation holds for the change it was asked about,
    not for another one typed into the form afterwards."""
    kind = "confidential" if draft.confidential else "public"
    return f"{' '.join(sorted(draft.scopes))}|{kind}|{draft.security.dpop}"


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
    values = _values(None, server_scopes=svc.server_scopes)
    return _form(request, application=None, values=values, problems=[])


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
        now = svc.clock.now()
        created = await admin.create_application(uow, user.company_id, draft, now)
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
        grants = await _grants(uow, created.application, user, now)
    sessions.mark_done(request, form_id(form), f"/oauth/applications/{created.application.id}")
    if created.client_secret:
        sessions.notify(
            request,
            f"Application “{draft.name}” created. Copy its client secret now: this is the "
            "only time it is shown.",
        )
    else:
        sessions.notify(request, f"Application “{draft.name}” created.")
    return _show(request, created.application, grants, created.client_secret, status=201)


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
        grants = await _grants(uow, loaded[1], loaded[0], svc.clock.now())
    return _show(request, loaded[1], grants)


@router.get("/{application_id:int}/edit", include_in_schema=False)
async def edit(request: Request, application_id: int) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        loaded = await _load(request, uow, application_id)
    if isinstance(loaded, Response):
        return loaded
    application = loaded[1]
    return _form(request, application=application, values=_values(application), problems=[])


def _saved(name: str, updated: admin.UpdatedApplication) -> str:
    changed = " and ".join(updated.changed) if updated.changed else "nothing"
    said = f"Saved “{name}”: {changed} changed."
    if updated.revoked is not None:
        if updated.revoked.tokens:
            said += (
                f" {say.cap(say.grants(updated.revoked))} revoked: "
                f"{say.tokens(updated.revoked)} stopped working; people and companies must "
                "authorize it again."
            )
        else:
            said += " No token was working, so none was revoked."
    return said


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
        user, application = loaded
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
        now = svc.clock.now()
        revoking = admin.revoking_changes(application, draft)
        if revoking and not (pages.confirmed(form) and form.get("change") == _fingerprint(draft)):
            live = await uow.tokens.live_tokens(now, application.id)
            if live.tokens:
                return _form(
                    request,
                    application=application,
                    values=_values(application, form),
                    problems=[],
                    warning=say.change_application(revoking, live),
                    change=_fingerprint(draft),
                )
        updated = await admin.update_application(uow, application, draft, now)
        revoked = updated.revoked
        await audit(
            request,
            uow,
            "application.updated",
            company_id=user.company_id,
            actor_user_id=user.id,
            application_id=application.id,
            name=draft.name,
            scope=" ".join(draft.scopes),
            confidential=draft.confidential,
            consent=draft.consent,
            changed=", ".join(updated.changed),
            tokens_revoked=revoked.tokens if revoked else 0,
            grants_revoked=revoked.grants if revoked else 0,
        )
        grants = None
        if updated.client_secret:
            grants = await _grants(uow, updated.application, user, now)
    sessions.mark_done(request, form_id(form), f"/oauth/applications/{application_id}")
    sessions.notify(request, _saved(draft.name, updated))
    if updated.client_secret and grants is not None:
        sessions.notify(
            request,
            "It is confidential now: copy its new client secret, shown only this once.",
        )
        return _show(request, updated.application, grants, updated.client_secret)
    return RedirectResponse(f"/oauth/applications/{application_id}", status_code=303)


@router.post("/{application_id:int}/delete", include_in_schema=False)
async def destroy(request: Request, application_id: int) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit() as uow:
        loaded = await _load(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        user, application = loaded
        now = svc.clock.now()
        if not pages.confirmed(form):
            live = await uow.tokens.live_tokens(now, application.id)
            return pages.confirm(
                request,
                title=f"Delete “{application.name}”?",
                consequences=say.delete_application(application, live),
                action=f"/oauth/applications/{application.id}/delete",
                button="Delete application",
                cancel=f"/oauth/applications/{application.id}",
            )
        stopped = await uow.applications.delete(application.id, now)
        await audit(
            request,
            uow,
            "application.deleted",
            company_id=user.company_id,
            actor_user_id=user.id,
            application_id=application.id,
            name=application.name,
            tokens_revoked=stopped.tokens,
            grants_revoked=stopped.grants,
        )
    sessions.notify(
        request,
        f"Application “{application.name}” deleted: its client id no longer works; "
        f"{say.tokens(stopped)} stopped working.",
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
        user, application = loaded
        if not application.confidential:
            return error_page(
                request,
                "Public applications have no secret",
                "This application is public (it cannot keep a secret), so it has none to "
                "regenerate. Edit it and tick Confidential to give it one.",
                400,
            )
        now = svc.clock.now()
        if not pages.confirmed(form):
            live = await uow.tokens.live_tokens(now, application.id)
            # The form id goes along: the reload of the page showing the new secret must not
            # make another one.
            kept = form_id(form)
            return pages.confirm(
                request,
                title=f"Regenerate the client secret of “{application.name}”?",
                consequences=say.regenerate_secret(live),
                action=f"/oauth/applications/{application.id}/secret",
                button="Regenerate secret",
                cancel=f"/oauth/applications/{application.id}",
                fields={sessions.FORM_ID_FIELD: kept} if kept else {},
            )
        secret = await admin.regenerate_secret(uow, application, now)
        await audit(
            request,
            uow,
            "application.secret_regenerated",
            company_id=user.company_id,
            actor_user_id=user.id,
            application_id=application.id,
            name=application.name,
        )
        grants = await _grants(uow, application, user, now)
    sessions.mark_done(request, form_id(form), f"/oauth/applications/{application_id}")
    sessions.notify(
        request,
        "New client secret made; the old one stopped working. Copy it now: this is the only "
        "time it is shown.",
    )
    return _show(request, application, grants, secret)


@router.get("/{application_id:int}/authorize", include_in_schema=False)
async def authorize_button(request: Request, application_id: int) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        loaded = await _load(request, uow, application_id)
        if isinstance(loaded, Response):
            return loaded
        return await dashboard_authorization(request, uow, application_id, loaded[0])
