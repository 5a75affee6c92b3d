"""What every request handler needs, built once by ``create_app`` and kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from ..oauth import scopes as scope_rules
from ..oauth.authorize import AuthorizationPolicy
from ..oauth.clock import Clock
from ..oauth.grants.common import TokenContext, TokenPolicy
from ..oauth.models import User
from ..settings import Settings
from ..store.database import Database
from ..store.unit import Store
from ..throttle import Throttle
from . import sessions

TEMPLATES_DIR = Path(__file__).parent / "templates"


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    templates: Jinja2Templates
    throttle: Throttle

    @property
    def server_scopes(self) -> tuple[str, ...]:
        return self.settings.scope_names

    def authorization_policy(self) -> AuthorizationPolicy:
        return AuthorizationPolicy(
            server_scopes=self.server_scopes,
            allow_plain_pkce=self.settings.allow_plain_pkce,
            max_parameter_length=self.settings.max_parameter_length,
        )

    def token_context(self, uow: Store) -> TokenContext:
        return TokenContext(
            applications=uow.applications,
            codes=uow.codes,
            tokens=uow.tokens,
            clock=self.clock,
            policy=TokenPolicy(
                access_token_lifetime=self.settings.access_token_lifetime,
                refresh_token_lifetime=self.settings.refresh_token_lifetime,
                refresh_token_grace_period=self.settings.refresh_token_grace_period,
                server_scopes=self.server_scopes,
                max_parameter_length=self.settings.max_parameter_length,
            ),
        )

    def __post_init__(self) -> None:
        self.templates.env.filters["datetime"] = _datetime

    def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        context.setdefault("user", getattr(request.state, "user", None))
        context["csrf_token"] = sessions.csrf_token(request)
        context["new_form_id"] = sessions.new_form_id
        context["issuer"] = self.settings.issuer
        context["describe_scope"] = scope_rules.describe
        context["access_lifetime"] = duration(self.settings.access_token_lifetime)
        context["refresh_lifetime"] = duration(self.settings.refresh_token_lifetime)
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)


def _datetime(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: int) -> str:
    """3600 -> "1 hour", 604800 -> "7 days": lifetimes in the words a person reads."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


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
