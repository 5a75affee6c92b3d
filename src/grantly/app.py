"""``create_app(settings)``: wiring only. Every piece is named here, in order."""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from itsdangerous import URLSafeTimedSerializer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

from . import __version__
from .api import credentials, employees, me
from .client_keys import MAX_JWKS_BYTES, ClientKeys
from .key_ring import KeyRing
from .mcp import server as mcp_server
from .oauth import client_documents
from .oauth.clock import Clock, SystemClock
from .oauth.dpop import DpopVerifier, Nonces
from .oauth.models import MCP
from .observability import RequestLogging, Route, configure_logging
from .outbound import JsonFetcher
from .replay import ReplayGuard
from .services import Services
from .settings import Settings
from .store.database import open_database
from .store.errors import StoreError
from .throttle import Limits, Throttle
from .web import (
    accounts,
    agent_applications,
    api_docs,
    applications,
    audit_page,
    authorization,
    client_endpoints,
    errors,
    grants,
    health,
    metadata,
    metrics,
    middleware,
    people,
    registration,
    set_password,
)
from .web import api_keys as api_keys_page
from .web.pages import templates as page_templates


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    db = open_database(settings.database_url, settings.database_pool_size)
    # Read once: without GRANTLY_SECRET_KEY it is a file under the data directory.
    secret_key = settings.resolved_secret_key()
    throttle = Throttle(
        redis_url=settings.redis_url,
        db=db,
        secret_key=secret_key,
        limits=Limits(
            sign_in_per_account_address=settings.sign_in_limit_per_account_address,
            sign_in_per_address=settings.sign_in_limit_per_address,
            sign_in_per_account=settings.sign_in_limit_per_account,
            sign_in_per_device=settings.sign_in_limit_per_device,
            client_auth_per_client_address=settings.client_auth_limit_per_client_address,
            client_auth_per_address=settings.client_auth_limit_per_address,
            registration_per_address=settings.registration_limit_per_address,
            document_fetch_per_address=settings.cimd_fetch_limit_per_address,
        ),
        key_prefix=settings.redis_key_prefix,
    )
    clock = clock or SystemClock()
    replay = ReplayGuard(db, clock, settings.redis_url, settings.redis_key_prefix)
    nonce_secret = hashlib.sha256(b"grantly-dpop-nonce\0" + secret_key.encode()).digest()
    services = Services(
        settings=settings,
        db=db,
        clock=clock,
        templates=page_templates(),
        throttle=throttle,
        device_cookies=URLSafeTimedSerializer(secret_key, salt="grantly-device"),
        pushed_forms=URLSafeTimedSerializer(secret_key, salt="grantly-pushed-request"),
        fetcher=JsonFetcher(
            max_bytes=client_documents.MAX_DOCUMENT_BYTES,
            allow_loopback=settings.cimd_allow_loopback,
        ),
        keys=KeyRing(db, secret_key, clock),
        replay=replay,
        dpop=DpopVerifier(replay, clock, Nonces(nonce_secret) if settings.dpop_nonces else None),
        client_keys=ClientKeys(
            JsonFetcher(max_bytes=MAX_JWKS_BYTES, allow_loopback=settings.cimd_allow_loopback),
            clock,
        ),
    )

    mcp_app, mcp_lifespan = mcp_server.build(services) if settings.mcp else (None, None)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # The first start makes the first signing key (a request could not: it signs
            # inside its own write unit); with the database down, the first request will.
            with suppress(StoreError):
                await services.keys.keys()
            if mcp_lifespan is not None:
                await stack.enter_async_context(mcp_lifespan())
            yield
        await db.close()

    app = FastAPI(
        title="Grantly",
        version=__version__,
        openapi_url=api_docs.OPENAPI_URL,
        # Swagger UI is web/api_docs.py's, with its assets served here rather than from a CDN.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        # Starlette answers a path with (or without) a trailing slash by a 307 to the other one,
        # built from the Host header: a client would re-POST its secret to whatever host the
        # request named (RFC 9700 §4.11, open redirection). Paths are exact; the other is 404.
        redirect_slashes=False,
        # FastAPI's OpenTelemetry bridge asked OpenTelemetry's global providers (reading the
        # environment) on every request; Grantly's metrics are Prometheus' (observability.py).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Outermost first. Every response, whichever produced it, goes out through all of them:
        # what handlers raise is answered innermost (ErrorResponses), and Starlette is given no
        # handler for Exception, which it would run outside them all.
        middleware=[
            Middleware(middleware.SecurityHeaders, hsts=settings.secure_cookies),
            Middleware(RequestLogging),
            Middleware(middleware.CorsForClients),
            Middleware(
                middleware.BodyLimit,
                max_bytes=settings.max_body_bytes,
                timeout=settings.body_timeout,
            ),
            Middleware(
                middleware.SessionsForPages,
                secret_key=secret_key,
                session_cookie="grantly_session",
                max_age=settings.session_lifetime,
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
            Middleware(errors.ErrorResponses),
            Middleware(middleware.HeadAsGet),
        ],
        exception_handlers={StarletteHTTPException: errors.http_exception},
    )
    app.state.services = services

    app.mount("/static", StaticFiles(packages=[("grantly.web", "static")]), name="static")
    app.mount(api_docs.ASSETS, api_docs.assets(), name="api_docs_assets")
    # Routers are matched in order, one by one: the hot paths (health checks, the token
    # endpoints, Bearer-authenticated API calls) come first, the dashboard's pages last.
    app.router.routes[:0] = [
        *health.routes,
        *client_endpoints.routes,
        *me.routes,
        *registration.routes,
        *authorization.routes,
        *metrics.routes,
        *api_docs.routes,
    ]
    if mcp_app is not None:
        # The SDK's app, routed at exactly /mcp: it answers nothing else, so every other path
        # keeps Grantly's own answers (and 404 pages). POST only: the server is stateless and
        # offers no event stream, so GET is 405 (the transport allows it), and nobody can hold
        # a connection open on a stream that would never send anything.
        app.router.routes.insert(0, Route(MCP, mcp_app, methods=["POST"]))
    app.include_router(me.router)
    app.include_router(employees.router)
    app.include_router(credentials.router)
    app.include_router(metadata.router)
    app.include_router(accounts.router)
    app.include_router(applications.router)
    app.include_router(agent_applications.router)
    app.include_router(grants.router)
    app.include_router(audit_page.router)
    app.include_router(api_keys_page.router)
    app.include_router(people.router)
    app.include_router(set_password.router)

    return app


def create_app_from_environment() -> FastAPI:
    """The factory ``grantly serve`` hands to uvicorn (once per worker process)."""
    settings = Settings()
    configure_logging(settings.log_format, logging.getLevelName(settings.log_level.upper()))
    app = create_app(settings)
    _tune_garbage_collection()
    return app


def _tune_garbage_collection() -> None:
    """Python's cyclic collector paused a worker for tens of milliseconds now and then, walking
    the hundreds of thousands of objects that imports and the app's construction leave behind
    (FastAPI, SQLAlchemy, Pydantic): `make bench` measured p99 latency of 86 ms against a p50 of
    9 ms. Those objects live as long as the process, so they are moved out of the collector's
    sight (``gc.freeze``), and young collections run less often, each on more objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
