"""Signing people in and out (``/login``, ``/logout``) and the home page."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..passwords import hash_password, needs_rehash, verify_password_async
from ..services import services
from . import sessions
from .pages import render, signed_in_user
from .responses import error_page

router = APIRouter()


@router.get("/", include_in_schema=False)
async def home(request: Request) -> Response:
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        user = await signed_in_user(request, uow)
        if user is None:
            return RedirectResponse("/login", status_code=303)
        company = await uow.accounts.company(user.company_id)
    return render(request, "home.html", company=company)


@router.get("/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    svc = services(request)
    next_path = sessions.safe_next(request.query_params.get("next"))
    async with svc.db.unit(write=False) as uow:
        if await signed_in_user(request, uow) is not None:
            return RedirectResponse(next_path, status_code=303)
    return render(request, "login.html", next_path=next_path, email="", failed=False)


@router.post("/login", include_in_schema=False)
async def login(request: Request) -> Response:
    svc = services(request)
    form = await request.form()
    email = str(form.get("email") or "").strip()[:320]
    password = str(form.get("password") or "")[:1024]
    next_path = sessions.safe_next(str(form.get("next") or ""))
    try:
        sessions.check_csrf(request, str(form.get(sessions.CSRF_FIELD) or ""))
    except sessions.CsrfError:
        return error_page(
            request,
            "This form has expired",
            "Reload the sign-in page and try again.",
            403,
            headers={"Refresh": "3; url=/login?" + urlencode({"next": next_path})},
        )
    address = request.client.host if request.client else "unknown"
    refusal = await svc.throttle.sign_in_refusal(email, address)
    if refusal is not None:
        return error_page(
            request,
            "Too many sign-in attempts",
            f"Too many failed attempts for this account or from this address. Wait "
            f"{refusal.retry_after} seconds, then try again.",
            429,
            headers={"Retry-After": str(refusal.retry_after)},
        )
    plausible = email and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in email)
    async with svc.db.unit(write=False) as uow:
        found = await uow.accounts.user_with_password_hash(email) if plausible else None
    user, password_hash = found if found else (None, None)
    # argon2 takes tens of milliseconds of CPU: off the event loop, and outside any transaction.
    valid = await verify_password_async(password_hash, password)
    if user is None or not valid or not user.active:
        await svc.throttle.sign_in_failed(email, address)
        return render(request, "login.html", 401, next_path=next_path, email=email, failed=True)
    new_hash = None
    if password_hash and needs_rehash(password_hash):
        new_hash = await run_in_threadpool(hash_password, password)
    async with svc.db.unit() as uow:
        if new_hash:
            await uow.accounts.set_password_hash(user.id, new_hash)
        await sessions.sign_in(request, uow, user, svc.settings.session_lifetime)
    return RedirectResponse(next_path, status_code=303)


@router.post("/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    form = await request.form()
    try:
        sessions.check_csrf(request, str(form.get(sessions.CSRF_FIELD) or ""))
    except sessions.CsrfError:
        return error_page(request, "This form has expired", "Reload the page and try again.", 403)
    async with services(request).db.unit() as uow:
        await sessions.sign_out(request, uow)
    return RedirectResponse("/login", status_code=303)
