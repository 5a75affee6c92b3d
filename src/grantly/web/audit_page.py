"""``/audit``: the company's security events, for its admins."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..services import services
from .pages import render, signed_in_user
from .responses import error_page

router = APIRouter()


@router.get("/audit", include_in_schema=False)
async def audit_trail(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await signed_in_user(request, uow)
        if user is None:
            return RedirectResponse("/login?" + urlencode({"next": "/audit"}), status_code=303)
        if not user.admin:
            return error_page(
                request,
                "Only admins see the audit trail",
                "The audit trail records your company's security events; ask an admin.",
                403,
            )
        events = await uow.audit.recent(user.company_id, limit=200)
    return render(request, "audit.html", events=events)
