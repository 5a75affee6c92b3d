"""What every request handler needs, built once by ``create_app`` and kept on ``app.state``:
the settings, the database, the clock, the throttle and the pages' templates."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi.templating import Jinja2Templates
from itsdangerous import URLSafeTimedSerializer
from starlette.requests import Request

from .client_keys import ClientKeys
from .key_ring import KeyRing
from .oauth.authorize import AuthorizationPolicy
from .oauth.client_assertions import Authenticator
from .oauth.clock import Clock
from .oauth.dpop import DpopVerifier
from .oauth.grants.common import IssuanceHook, TokenContext, TokenPolicy
from .oauth.models import API, MCP
from .oauth.resources import OwnResources
from .oauth.token import TOKEN_PATH
from .outbound import JsonFetcher
from .replay import ReplayGuard
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
    # Signs a pushed request's parameters into its consent form (web/authorization.py).
    pushed_forms: URLSafeTimedSerializer
    # Fetches client metadata documents (grantly/outbound.py: SSRF-hardened).
    fetcher: JsonFetcher
    # Grantly's signing keys (grantly/key_ring.py), published at /oauth/jwks.
    keys: KeyRing
    # Single-use ids (DPoP proofs, client assertions) across processes (grantly/replay.py).
    replay: ReplayGuard
    # RFC 9449 proofs, with the server's nonces when they are on.
    dpop: DpopVerifier
    # The public keys of private_key_jwt clients (grantly/client_keys.py).
    client_keys: ClientKeys

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

    def dpop_for(self, uow: Store) -> DpopVerifier:
        """The DPoP verifier for a request that holds ``uow``: a proof's jti is written in it
        (``ReplayGuard.within``)."""
        return replace(self.dpop, replay=self.replay.within(uow))

    def authenticator(self, uow: Store, endpoint: str = TOKEN_PATH) -> Authenticator:
        """Client assertions sent to ``endpoint`` (RFC 7523 §3) in the write unit ``uow``:
        their ``aud`` may be the issuer, the token endpoint or the endpoint itself."""
        issuer = self.settings.issuer
        audiences = tuple(dict.fromkeys((issuer, issuer + TOKEN_PATH, issuer + endpoint)))
        return Authenticator(self.client_keys, self.replay.within(uow), self.clock, audiences)

    def token_context(
        self, uow: Store, on_issue: IssuanceHook | None = None, endpoint: str = TOKEN_PATH
    ) -> TokenContext:
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
            signer=self.keys,
            dpop=self.dpop_for(uow),
            authenticator=self.authenticator(uow, endpoint),
        )


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc
