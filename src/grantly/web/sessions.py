"""Who is signed in, and CSRF protection for every form.

The session lives in a signed, HttpOnly, SameSite=Lax cookie (Starlette's SessionMiddleware,
itsdangerous). It holds the user id and a per-session CSRF token; both are replaced at sign-in
so that a session fixed before sign-in is worthless after it (RFC 9700 §4.7, OWASP session
fixation). Every POST form carries the CSRF token (synchronizer token pattern).
"""

from __future__ import annotations

import hmac
import secrets
import time

from starlette.requests import Request

from ..oauth.models import User

CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    pass


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if (
        not isinstance(expected, str)
        or not submitted
        or not hmac.compare_digest(expected.encode(), submitted.encode())
    ):
        raise CsrfError()


FORM_ID_FIELD = "form_id"
_DONE_KEY = "done_forms"
_DONE_KEEP = 20


def new_form_id() -> str:
    """A per-render id for forms whose answer is shown once (a secret, a code), so that a
    reload that sends the POST again does not repeat the action."""
    return secrets.token_urlsafe(16)


def already_done(request: Request, form_id: str | None) -> str | None:
    """Where to send a form that was already submitted, or None the first time."""
    done = request.session.get(_DONE_KEY)
    if not form_id or not isinstance(done, dict):
        return None
    location = done.get(form_id)
    return location if isinstance(location, str) else None


def mark_done(request: Request, form_id: str | None, location: str) -> None:
    if not form_id:
        return
    done = request.session.get(_DONE_KEY)
    done = dict(done) if isinstance(done, dict) else {}
    done[form_id] = location
    request.session[_DONE_KEY] = dict(list(done.items())[-_DONE_KEEP:])


def sign_in(request: Request, user: User) -> None:
    request.session.clear()
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    request.session["at"] = int(time.time())


def sign_out(request: Request) -> None:
    request.session.clear()


def user_id(request: Request, lifetime: int) -> int | None:
    uid = request.session.get("uid")
    at = request.session.get("at")
    if not isinstance(uid, int) or not isinstance(at, int):
        return None
    if time.time() - at > lifetime:
        request.session.clear()
        return None
    return uid


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a local path may follow sign-in: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 for c in target):
        return default
    return target
