"""What every request handler needs, built once by ``create_app`` and kept on ``app.state``:
the settings, the database, the clock, the throttle and the pages' templates."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.templating import Jinja2Templates
from itsdangerous import URLSafeTimedSerializer
from starlette.requests import Request

from .key_ring import KeyRing
from .oauth.authorize import AuthorizationPolicy
from .oauth.clock import Clock
from .oauth.grants.common import IssuanceHook, TokenContext, TokenPolicy
from .oauth.models import API, MCP
from .oauth.resources import OwnResources
from .outbound import JsonFetcher
from .settings import Settings
from .store.database import Database
from .store.unit import Store
from .throttle import Throttle


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    templates: Jinja2Templates
    throttle: Throttle
    # Signs the sign-in page's device cookies (web/accounts.py), made once with the app.
    device_cookies: URLSafeTimedSerializer
    # Fetches client metadata documents (grantly/outbound.py: SSRF-hardened).
    fetcher: JsonFetcher
    # Grantly's signing keys (grantly/key_ring.py), published at /oauth/jwks.
    keys: KeyRing

    @property
    def server_scopes(self) -> tuple[str, ...]:
        return self.settings.scope_names

    @property
    def own_resources(self) -> OwnResources:
        """Grantly's own protected resources (RFC 8707, RFC 9728): its API and, unless it is
        off, its MCP endpoint, under the issuer."""
        paths = (API, MCP) if self.settings.mcp else (API,)
        return OwnResources(self.settings.issuer, paths)

    def authorization_policy(self) -> AuthorizationPolicy:
        return AuthorizationPolicy(
            server_scopes=self.server_scopes,
            allow_plain_pkce=self.settings.allow_plain_pkce,
            max_parameter_length=self.settings.max_parameter_length,
            resources=self.own_resources,
        )

    def token_context(self, uow: Store, on_issue: IssuanceHook | None = None) -> TokenContext:
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
                resources=self.own_resources,
            ),
            on_issue=on_issue,
        )


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
