"""Rendering the pages, and what their handlers share: who is signed in, the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from ..oauth import scopes as scope_rules
from ..oauth.models import User
from ..services import services
from ..store.unit import Store
from . import sessions

TEMPLATES_DIR = Path(__file__).parent / "templates"


def templates() -> Jinja2Templates:
    """The pages' templates (Jinja2, no front-end build step)."""
    loaded = Jinja2Templates(directory=str(TEMPLATES_DIR))
    loaded.env.filters["datetime"] = _datetime
    loaded.env.filters["possessive"] = possessive
    return loaded


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    svc = services(request)
    context.setdefault("user", getattr(request.state, "user", None))
    context["csrf_token"] = sessions.csrf_token(request)
    context["notices"] = [*sessions.take_notices(request), *context.get("notices", [])]
    context["new_form_id"] = sessions.new_form_id
    context["issuer"] = svc.settings.issuer
    context["describe_scope"] = scope_rules.describe
    context["access_lifetime"] = duration(svc.settings.access_token_lifetime)
    context["refresh_lifetime"] = duration(svc.settings.refresh_token_lifetime)
    return svc.templates.TemplateResponse(request, template, context, status_code=status_code)


def confirm(
    request: Request,
    *,
    title: str,
    consequences: list[str],
    action: str,
    button: str,
    cancel: str,
    fields: dict[str, str] | None = None,
    danger: bool = True,
) -> Response:
    """The confirm step of a destructive action, for browsers without JavaScript: a page that
    says what will stop working and posts the same form again with ``confirmed=yes``. With
    JavaScript the form's ``data-confirm`` text is asked in a dialog instead (static/copy.js)."""
    return render(
        request,
        "confirm.html",
        title=title,
        consequences=consequences,
        action=action,
        button=button,
        cancel=cancel,
        fields=fields or {},
        danger=danger,
    )


def confirmed(form: Any) -> bool:
    """Whether a destructive form carries its confirmation (the confirm step, or the dialog)."""
    return form.get("confirmed") == "yes"


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``plural(3, "live token")`` -> "3 live tokens"; ``plural(1, "person", "people")``."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def _datetime(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def possessive(name: str) -> str:
    """ "Acme" -> "Acme's", "Acme Labs" -> "Acme Labs'" (a name ending in s takes the
    apostrophe alone)."""
    name = str(name)
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"


def duration(seconds: int) -> str:
    """3600 -> "1 hour", 604800 -> "7 days": lifetimes in the words a person reads."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


async def signed_in_user(request: Request, uow: Store) -> User | None:
    """The signed-in, still active user, or None. Stored on ``request.state.user``."""
    user = await sessions.current_user(request, uow)
    request.state.user = user
    return user


async def audit(
    request: Request,
    uow: Store,
    event: str,
    *,
    company_id: int | None,
    actor_user_id: int | None = None,
    application_id: int | None = None,
    **detail: Any,
) -> None:
    """Record a security event for the company's audit trail, with the caller's address."""
    await uow.audit.record(
        event,
        company_id=company_id,
        now=services(request).clock.now(),
        actor_user_id=actor_user_id,
        application_id=application_id,
        ip=request.client.host if request.client else None,
        **detail,
    )
