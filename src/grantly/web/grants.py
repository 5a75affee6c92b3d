"""``/oauth/authorized_applications``: what a person (and, for admins, their company) allowed,
and the button that takes it back (RFC 7009's revocation, for people)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..oauth.models import User
from ..services import services
from ..store.consents import Consent
from ..store.live import NOTHING, GrantKey, LiveTokens, grant_key
from ..store.unit import Store
from . import consequences as say
from . import pages, sessions
from .pages import audit, render, signed_in_user
from .responses import error_page

router = APIRouter(prefix="/oauth/authorized_applications")


async def may_revoke(uow: Store, consent: Consent, user: User) -> bool:
    """A person revokes their own grants; an admin also revokes the company tokens their
    company gave, and any grant, user or company, of an application their company
    registered (its page lists them: they could end them all by deleting it)."""
    if consent.owner.type == "user" and consent.owner.user_id == user.id:
        return True
    if not user.admin:
        return False
    if consent.owner.type == "company" and consent.owner.company_id == user.company_id:
        return True
    return await uow.applications.get(consent.application_id, user.company_id) is not None


def _warnings(
    grants: list[Consent], by_grant: dict[GrantKey, LiveTokens], user: User
) -> dict[int, str]:
    """The question each Revoke button asks (``data-confirm``), by consent id."""
    return {
        g.id: say.dialog(
            say.revoke_grant(
                g,
                by_grant.get(grant_key(g.application_id, g.owner), NOTHING),
                own=g.owner.type == "user" and g.owner.user_id == user.id,
            )
        )
        for g in grants
    }


@router.get("", include_in_schema=False)
async def index(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await signed_in_user(request, uow)
        if user is None:
            return RedirectResponse(
                "/login?" + urlencode({"next": request.url.path}), status_code=303
            )
        consents, tokens = uow.consents, uow.tokens
        now = svc.clock.now()
        mine = await consents.of_user(user.id, now)
        by_grant = await tokens.live_by_grant(now, owner_type="user", user_id=user.id)
        company: list[Consent] = []
        if user.admin:
            company = await consents.company_grants(user.company_id, now)
            by_grant |= await tokens.live_by_grant(
                now, owner_type="company", company_id=user.company_id
            )
    return render(
        request,
        "authorized_applications.html",
        mine=mine,
        company=company,
        warnings=_warnings([*mine, *company], by_grant, user),
    )


@router.post("/{consent_id:int}/revoke", include_in_schema=False)
async def revoke(request: Request, consent_id: int) -> Response:
    svc = services(request)
    form = await request.form()
    try:
        sessions.check_csrf(request, str(form.get(sessions.CSRF_FIELD) or ""))
    except sessions.CsrfError:
        return error_page(request, "This form has expired", "Reload the page and try again.", 403)
    back = sessions.safe_next(str(form.get("next") or ""), "/oauth/authorized_applications")
    async with svc.db.unit() as uow:
        user = await signed_in_user(request, uow)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        consents = uow.consents
        consent = await consents.get(consent_id) if 0 < consent_id < 2**31 else None
        if consent is None or not await may_revoke(uow, consent, user):
            return error_page(
                request, "Not found", "There is no such authorization you can revoke.", 404
            )
        now = svc.clock.now()
        own = consent.owner.type == "user" and consent.owner.user_id == user.id
        kind = "company token" if consent.owner.type == "company" else "user token"
        if not pages.confirmed(form):
            live = await uow.tokens.live_tokens(now, consent.application_id, consent.owner)
            return pages.confirm(
                request,
                title=f"Revoke this {kind} of {consent.application_name}?",
                consequences=say.revoke_grant(consent, live, own=own),
                action=f"/oauth/authorized_applications/{consent.id}/revoke",
                button="Revoke",
                cancel=back,
                fields={"next": back},
            )
        stopped = await consents.revoke(consent, now)
        await audit(
            request,
            uow,
            "grant.revoked",
            company_id=consent.owner.company_id,
            actor_user_id=user.id,
            application_id=consent.application_id,
            resource_owner_type=consent.owner.type,
            scope=" ".join(consent.scopes),
            tokens_revoked=stopped.tokens,
        )
    whose = f"your {kind}" if own else f"the {kind} of {say.holder(consent)}"
    sessions.notify(
        request,
        f"Revoked {whose} for {consent.application_name}: {say.tokens(stopped)} stopped working.",
    )
    return RedirectResponse(back, status_code=303)
