"""Checks every dashboard page makes: an admin is signed in; a posted form is genuine and new."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..oauth.models import User
from ..store.unit import Store
from . import sessions
from .pages import signed_in_user
from .responses import error_page


async def admin_or_refusal(
    request: Request, uow: Store, *, title: str, why: str
) -> User | Response:
    """The signed-in admin; else sign-in (back to this page) or a 403 page saying ``why``."""
    user = await signed_in_user(request, uow)
    if user is None:
        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
    if not user.admin:
        return error_page(request, title, why, 403)
    return user


async def checked_form(request: Request) -> tuple[FormData, Response | None]:
    """The form, or the answer to give instead: 403 without a valid CSRF token, or a redirect
    to the result when the same form was already submitted (a reload must not repeat an
    action whose answer is shown once: a new application or key, a regenerated secret)."""
    form = await request.form()
    try:
        sessions.check_csrf(request, str(form.get(sessions.CSRF_FIELD) or ""))
    except sessions.CsrfError:
        return form, error_page(
            request, "This form has expired", "Reload the page and try again.", 403
        )
    done = sessions.already_done(request, form_id(form))
    if done is not None:
        sessions.notify(
            request,
            "That form was already sent, so nothing was done again. What it showed once (a "
            "secret, a link, a code) is not shown again.",
            "warn",
        )
        return form, RedirectResponse(done, status_code=303)
    return form, None


def form_id(form: FormData) -> str | None:
    value = form.get(sessions.FORM_ID_FIELD)
    return value if isinstance(value, str) else None
