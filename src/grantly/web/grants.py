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
from ..store.unit import Store
from . import sessions
from .pages import audit, render, signed_in_user
from .responses import error_page

router = APIRouter(prefix="/oauth/authorized_applications")


async def may_revoke(uow: Store, consent: Consent, user: User) -> bool:
    """A person revokes their own grants; an admin also revokes the company tokens their
    company gave, and any company token of an application their company registered."""
    if consent.owner.type == "user":
        return consent.owner.user_id == user.id
    if not user.admin:
        return False
    if consent.owner.company_id == user.company_id:
        return True
    return await uow.applications.get(consent.application_id, user.company_id) is not None


@router.get("", include_in_schema=False)
async def index(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await signed_in_user(request, uow)
        if user is None:
            return RedirectResponse(
                "/login?" + urlencode({"next": request.url.path}), status_code=303
            )
        consents = uow.consents
        now = svc.clock.now()
        mine = await consents.of_user(user.id, now)
        company = await consents.company_grants(user.company_id, now) if user.admin else []
    return render(request, "authorized_applications.html", mine=mine, company=company)


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
        await consents.revoke(consent, svc.clock.now())
        await audit(
            request,
            uow,
            "grant.revoked",
            company_id=consent.owner.company_id,
            actor_user_id=user.id,
            application_id=consent.application_id,
            resource_owner_type=consent.owner.type,
            scope=" ".join(consent.scopes),
        )
    return RedirectResponse(back, status_code=303)
