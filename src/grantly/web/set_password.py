"""Setting a password: with an invitation's one-time link (``/set-password?token=…``), or, for
someone signed in, by changing it (``/account/password``).

The link's token travels in the query string of the GET (access logs print paths, never query
strings) and in the body of the POST; the pages are not cached and send no Referer. Knowing
someone's email gets a stranger nothing here: a link is a 256-bit random value, looked up by
its digest, and no failure is counted against an account, so no one can be locked out.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..http import NO_STORE
from ..oauth.secrets import digest
from ..passwords import MAX_LENGTH, hash_password, password_problem, verify_password_async
from ..services import services
from ..store.invitations import Invitation, State
from . import sessions
from .guards import checked_form
from .pages import audit, plural, render, signed_in_user
from .responses import error_page

router = APIRouter()

PRIVATE = {**NO_STORE, "Referrer-Policy": "no-referrer"}
MAX_TOKEN = 200  # far longer than any link's token (``gin_`` and 43 characters)

_ASK = "ask your admin for a new invitation"
# Each way a link can fail: the status, the page's title, and what to do.
_LINK_REFUSALS: dict[State | None, tuple[int, str, str]] = {
    None: (
        400,
        "This link does not work",
        "It is not a link Grantly made, or part of it is missing: open the whole link from "
        f"your invitation again. If it still does not work, {_ASK}.",
    ),
    "used": (
        410,
        "This link was already used",
        "Each invitation link sets a password once, and this one has. Sign in with that "
        f"password; if you did not set it, {_ASK} at once.",
    ),
    "deactivated": (
        403,
        "This account is deactivated",
        "Its password cannot be set while it is deactivated. If you should have access, ask "
        "your admin to reactivate you and to send you a new invitation.",
    ),
    "revoked": (
        410,
        "This link was replaced",
        "A newer invitation was made for you (or your access was suspended since), and only "
        f"the newest link works. Open the newest link you received, or {_ASK}.",
    ),
    "expired": (
        410,
        "This link has expired",
        f"Invitation links work for 7 days. To set your password, {_ASK}.",
    ),
}


def _private(response: Response) -> Response:
    response.headers.update(PRIVATE)
    return response


def _refusal(request: Request, state: State | None) -> Response:
    status, title, message = _LINK_REFUSALS[state]
    return _private(error_page(request, title, message, status))


def _token(raw: object) -> str | None:
    return raw if isinstance(raw, str) and 0 < len(raw) <= MAX_TOKEN else None


async def _invitation(request: Request, token: str | None) -> Invitation | Response:
    """The invitation of a link that works, or the page that says why it does not."""
    if token is None:
        return _refusal(request, None)
    svc = services(request)
    async with svc.db.unit(write=False) as uow:
        invitation = await uow.invitations.by_digest(digest(token))
    if invitation is None:
        return _refusal(request, None)
    state = invitation.state(svc.clock.now())
    return invitation if state == "valid" else _refusal(request, state)


def _form(
    request: Request, invitation: Invitation, token: str, problems: list[str], status: int = 200
) -> Response:
    return _private(
        render(
            request,
            "set_password.html",
            status,
            invitation=invitation,
            token=token,
            problems=problems,
            max_length=MAX_LENGTH,
        )
    )


def _new_password_problems(password: str, again: str) -> list[str]:
    problem = password_problem(password)
    if problem is not None:
        return [problem[0].upper() + problem[1:]]
    if password != again:
        return ["The two passwords are not the same: type the new password twice."]
    return []


@router.get("/set-password", include_in_schema=False)
async def set_password_form(request: Request) -> Response:
    token = _token(request.query_params.get("token"))
    invitation = await _invitation(request, token)
    if isinstance(invitation, Response):
        return invitation
    assert token is not None
    return _form(request, invitation, token, [])


@router.post("/set-password", include_in_schema=False)
async def set_password(request: Request) -> Response:
    svc = services(request)
    form = await request.form()
    token = _token(form.get("token"))
    try:
        sessions.check_csrf(request, str(form.get(sessions.CSRF_FIELD) or ""))
    except sessions.CsrfError:
        # The link's token is not put in a URL of ours: the person opens their link again.
        return _private(
            error_page(
                request,
                "This form has expired",
                "Open the link from your invitation again, then set your password.",
                403,
            )
        )
    invitation = await _invitation(request, token)
    if isinstance(invitation, Response):
        return invitation
    assert token is not None
    password = str(form.get("password") or "")
    problems = _new_password_problems(password, str(form.get("confirm") or ""))
    if problems:
        return _form(request, invitation, token, problems, 422)
    # argon2 takes tens of milliseconds of CPU: off the event loop, outside any transaction.
    password_hash = await run_in_threadpool(hash_password, password)
    now = svc.clock.now()
    async with svc.db.unit() as uow:
        # The exactly-once step: of two submissions of one link, one sets the password.
        if not await uow.invitations.redeem(invitation.id, now):
            again = await uow.invitations.by_digest(digest(token))
            state = again.state(now) if again is not None else None
            return _refusal(request, state if state != "valid" else "used")
        await uow.accounts.set_password(invitation.user_id, password_hash, now)
        # A link also serves a person who forgot their password: whoever signed in with the
        # old one is signed out everywhere.
        ended = await uow.sessions.end_all(invitation.user_id)
        await audit(
            request,
            uow,
            "user.password_set",
            company_id=invitation.company_id,
            actor_user_id=invitation.user_id,
            invitation_id=invitation.id,
            sessions_ended=ended,
        )
    sessions.notify(request, f"Your password is set. Sign in as {invitation.user_email} with it.")
    return _private(RedirectResponse("/login", status_code=303))


# --- changing one's own password ----------------------------------------------------------------


def _change_form(request: Request, problems: list[str], status: int = 200) -> Response:
    return _private(
        render(request, "change_password.html", status, problems=problems, max_length=MAX_LENGTH)
    )


@router.get("/account/password", include_in_schema=False)
async def change_password_form(request: Request) -> Response:
    async with services(request).db.unit(write=False) as uow:
        user = await signed_in_user(request, uow)
    if user is None:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
    return _change_form(request, [])


@router.post("/account/password", include_in_schema=False)
async def change_password(request: Request) -> Response:
    svc = services(request)
    form, rejected = await checked_form(request)
    if rejected:
        return rejected
    async with svc.db.unit(write=False) as uow:
        user = await signed_in_user(request, uow)
        found = await uow.accounts.user_with_password_hash(user.email) if user else None
    if user is None or found is None:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
    current = str(form.get("current") or "")[:MAX_LENGTH]
    password = str(form.get("password") or "")
    problems = _new_password_problems(password, str(form.get("confirm") or ""))
    if problems:
        return _change_form(request, problems, 422)
    # The current password is a guess like a sign-in's (a session left open, a stolen cookie):
    # counted by the same limits, before it is checked.
    address = request.client.host if request.client else "unknown"
    attempt = await svc.throttle.sign_in_attempt(user.email, address)
    if attempt.refusal is not None:
        wait = attempt.refusal.retry_after
        return _private(
            error_page(
                request,
                "Too many wrong passwords",
                f"Your current password was mistyped too often. Wait {wait} seconds, then "
                "try again.",
                429,
                headers={"Retry-After": str(wait)},
            )
        )
    if not await verify_password_async(found[1], current):
        return _change_form(request, ["Your current password is not right."], 400)
    await svc.throttle.sign_in_succeeded(attempt)
    password_hash = await run_in_threadpool(hash_password, password)
    async with svc.db.unit() as uow:
        await uow.accounts.set_password(user.id, password_hash, svc.clock.now())
        ended = await uow.sessions.end_others(
            user.id, sessions.session_digest(request), svc.clock.now()
        )
        await audit(
            request,
            uow,
            "user.password_changed",
            company_id=user.company_id,
            actor_user_id=user.id,
            sessions_ended=ended,
        )
    others = (
        f" {plural(ended, 'other sign-in session')} ended: you stay signed in here only."
        if ended
        else " You were signed in nowhere else."
    )
    sessions.notify(request, "Your password is changed." + others)
    return RedirectResponse("/", status_code=303)
