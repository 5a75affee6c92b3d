"""Who is signed in, and CSRF protection for every form.

Browser state lives in a signed, HttpOnly, SameSite=Lax cookie (Starlette's SessionMiddleware,
itsdangerous): a per-browser CSRF token and, once signed in, a random session id. The session
itself is server-side (``user_sessions``, keyed by the id's digest), so signing out or
deactivating the user ends it at once even if someone kept a copy of the cookie. Both the id
and the CSRF token are replaced at sign-in, so a session fixed before sign-in is worthless
after it (RFC 9700 §4.7, session fixation). Every POST form carries the CSRF token
(synchronizer token pattern).
"""

from __future__ import annotations

import hmac
import secrets
import time

from starlette.requests import Request

from ..oauth.models import User
from ..oauth.secrets import digest
from ..store.unit import Store

CSRF_FIELD = "csrf_token"
FORM_ID_FIELD = "form_id"
_SESSION_ID = "sid"
_DONE_KEY = "done_forms"
_DONE_KEEP = 20
_NOTICES_KEY = "notices"
_NOTICES_KEEP = 5


class CsrfError(Exception):
    pass


def csrf_token(request: Request) -> str:
    """The session's CSRF token. A page answered on a path without sessions (an error page
    under ``/.well-known/`` or ``/api/``) has no form to protect: no token."""
    if "session" not in request.scope:
        return ""
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


def notify(request: Request, text: str, kind: str = "ok") -> None:
    """A notice for the next page this browser shows ("Application deleted."), kept in the
    signed session cookie so that it survives the redirect after a POST (post/redirect/get).
    ``kind`` is ``ok`` or ``warn``."""
    if "session" not in request.scope:
        return
    queued = request.session.get(_NOTICES_KEY)
    queued = list(queued) if isinstance(queued, list) else []
    queued.append({"text": text[:500], "kind": "warn" if kind == "warn" else "ok"})
    request.session[_NOTICES_KEY] = queued[-_NOTICES_KEEP:]


def take_notices(request: Request) -> list[dict[str, str]]:
    """The notices queued for this browser, once: showing them removes them."""
    if "session" not in request.scope:
        return []
    queued = request.session.pop(_NOTICES_KEY, None)
    if not isinstance(queued, list):
        return []
    return [
        {"text": str(n.get("text", "")), "kind": str(n.get("kind", "ok"))}
        for n in queued
        if isinstance(n, dict)
    ]


async def sign_in(request: Request, uow: Store, user: User, lifetime: int) -> None:
    request.session.clear()
    session_id = secrets.token_urlsafe(32)
    now = int(time.time())
    await uow.sessions.start(digest(session_id), user.id, now, now + lifetime)
    request.session[_SESSION_ID] = session_id
    request.session["csrf"] = secrets.token_urlsafe(32)


async def sign_out(request: Request, uow: Store) -> None:
    session_id = request.session.get(_SESSION_ID)
    if isinstance(session_id, str):
        await uow.sessions.end(digest(session_id))
    request.session.clear()


def session_digest(request: Request) -> str | None:
    """The digest of this browser's session id, as ``user_sessions`` keys it (None when it
    has none): the session to keep when a person ends their others."""
    session_id = request.session.get(_SESSION_ID)
    return digest(session_id) if isinstance(session_id, str) else None


async def current_user(request: Request, uow: Store) -> User | None:
    session_id = request.session.get(_SESSION_ID)
    if not isinstance(session_id, str):
        return None
    user = await uow.sessions.user(digest(session_id), int(time.time()))
    if user is None:
        # Ended, expired, or the user was deactivated: forget it, keep the CSRF token.
        request.session.pop(_SESSION_ID, None)
    return user


def safe_next(target: str | None, default: str = "/") -> str:
    """Only a local path may follow sign-in: never an open redirect to another site."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return default
    return target
