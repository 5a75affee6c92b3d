"""Signing people in and out (``/login``, ``/logout``) and the home page."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import APIRouter
from itsdangerous import BadSignature
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..oauth.models import User
from ..passwords import MAX_LENGTH, hash_password, needs_rehash, verify_password_async
from ..services import services
from ..throttle import Attempt
from . import sessions
from .pages import audit, render, signed_in_user
from .responses import error_page

router = APIRouter()

# OWASP's device cookies: a browser that signed in to an account is known to it, and a lockout
# of the account (strangers guessing from everywhere) does not apply to it (grantly/throttle.py).
DEVICE_COOKIE = "grantly_device"
DEVICE_LIFETIME = 180 * 24 * 3600
_DEVICE_ACCOUNTS = 10  # accounts one browser remembers (a shared desk, test accounts)


def _device_cookie(request: Request) -> tuple[str, list[str]] | None:
    """The browser's device id and the accounts it signed in to, if its cookie is ours."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        value = services(request).device_cookies.loads(raw, max_age=DEVICE_LIFETIME)
    except BadSignature:
        return None
    if not isinstance(value, dict):
        return None
    device, accounts = value.get("d"), value.get("a")
    if not isinstance(device, str) or not isinstance(accounts, list):
        return None
    return device, [a for a in accounts if isinstance(a, str)]


def known_device(request: Request, account: str) -> str | None:
    """The device id when this browser signed in to ``account`` before, else None."""
    cookie = _device_cookie(request)
    return cookie[0] if cookie and account in cookie[1] else None


def remember_device(request: Request, response: Response, account: str) -> None:
    cookie = _device_cookie(request)
    device, accounts = cookie if cookie else (secrets.token_urlsafe(16), [])
    accounts = [account, *(a for a in accounts if a != account)][:_DEVICE_ACCOUNTS]
    response.set_cookie(
        DEVICE_COOKIE,
        services(request).device_cookies.dumps({"d": device, "a": accounts}),
        max_age=DEVICE_LIFETIME,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=services(request).settings.secure_cookies,
    )


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
    password = str(form.get("password") or "")[:MAX_LENGTH]
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
    account = svc.throttle.account_key(email)
    device = known_device(request, account)
    # Counted before the password is checked: a burst of guesses sent at once gets no further
    # than the limit (the attempts past it are refused without a check).
    attempt = await svc.throttle.sign_in_attempt(email, address, device)
    if (refusal := attempt.refusal) is not None:
        wait = f"Wait {_minutes(refusal.retry_after)}, then try again."
        if refusal.limit == "account":
            reason = (
                "This account had too many failed sign-ins from browsers it was never used "
                "on. A browser you signed in with before still works; otherwise " + wait
            )
        else:
            reason = "Too many failed sign-ins from here. " + wait
        return error_page(
            request,
            "Too many sign-in attempts",
            reason,
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
        if user is not None:
            await _audit_failure(request, user, attempt, valid, device is not None)
        return render(request, "login.html", 401, next_path=next_path, email=email, failed=True)
    await svc.throttle.sign_in_succeeded(attempt)
    new_hash = None
    if password_hash and needs_rehash(password_hash):
        new_hash = await run_in_threadpool(hash_password, password)
    async with svc.db.unit() as uow:
        if new_hash:
            await uow.accounts.set_password_hash(user.id, new_hash)
        await sessions.sign_in(request, uow, user, svc.settings.session_lifetime)
        await audit(
            request,
            uow,
            "sign_in.succeeded",
            company_id=user.company_id,
            actor_user_id=user.id,
            known_browser=device is not None,
        )
    response = RedirectResponse(next_path, status_code=303)
    remember_device(request, response, account)
    return response


async def _audit_failure(
    request: Request, user: User, attempt: Attempt, valid: bool, known_browser: bool
) -> None:
    """A failed sign-in of an account is a security event for its company, never with the
    password: the failure, within the company's budget (grantly/throttle.py), and each limit
    it filled (a lockout). An email no account has belongs to no company's trail: the throttle
    counts it, nothing is written."""
    svc = services(request)
    budget = await svc.throttle.sign_in_failure_audited(user.company_id)
    if not (budget.audited or attempt.reached):
        return
    async with svc.db.unit() as uow:
        if budget.audited:
            await audit(
                request,
                uow,
                "sign_in.failed",
                company_id=user.company_id,
                actor_user_id=user.id,
                reason="wrong password" if not valid else "account deactivated",
                known_browser=known_browser,
                **({"later_failures_unrecorded": True} if budget.spent else {}),
            )
        for limit in attempt.reached:
            await audit(
                request,
                uow,
                "sign_in.throttled",
                company_id=user.company_id,
                actor_user_id=user.id,
                limit=limit,
                known_browser=known_browser,
            )


def _minutes(seconds: int) -> str:
    """A wait in whole minutes, rounded up: people read "2 minutes", not "97 seconds"."""
    minutes = max(1, (seconds + 59) // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


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
