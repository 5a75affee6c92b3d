"""``create_app(settings)``: wiring only. Every piece is named here, in order."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .api import credentials, employees, me
from .oauth.clock import Clock, SystemClock
from .observability import RequestLogging, configure_logging, metrics_body
from .services import Services
from .settings import Settings
from .store.database import open_database
from .store.errors import Unavailable
from .throttle import Throttle
from .web import (
    accounts,
    applications,
    audit_page,
    authorization,
    client_endpoints,
    grants,
    health,
    metadata,
)
from .web import api_keys as api_keys_page
from .web.pages import templates as page_templates

log = logging.getLogger("grantly")

SECURITY_HEADERS = [
    # Consent must not be clickjacked (RFC 9700 §4.16): no page of ours may be framed.
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    # Pages carry codes and client ids in their URLs: never leak them in a Referer.
    (b"referrer-policy", b"no-referrer"),
]


# /api/docs is Swagger UI, which FastAPI loads from a CDN with an inline bootstrap script.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' https://cdn.jsdelivr.net; "
    b"img-src 'self' data: https://fastapi.tiangolo.com; "
    b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds the headers above to every response, keeping any a handler set itself; HSTS when
    Grantly is served over https."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.headers = list(SECURITY_HEADERS)
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        docs = scope["path"] == "/api/docs"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                for name, value in self.headers:
                    if name not in present:
                        if docs and name == b"content-security-policy":
                            value = DOCS_CSP
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Endpoints a browser application (a single-page app, a public client with PKCE) calls from its
# own origin. They authenticate with the client's credentials or a Bearer token, never with a
# cookie, so any origin may call them and no credentials are allowed (RFC 6749 §3.2's token
# endpoint, RFC 7009's revocation, RFC 8414's metadata, the resource API). The dashboard, the
# authorization endpoint and introspection (a resource server's back channel) get no CORS.
CORS_PATHS = ("/oauth/token", "/oauth/revoke", "/.well-known/oauth-authorization-server", "/api/")
CORS_EXCLUDED = ("/api/docs",)


class CorsForClients:
    """Starlette's ``CORSMiddleware``, applied only to the endpoints browser clients call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "Content-Type", "x-api-key"],
            expose_headers=["WWW-Authenticate", "Retry-After"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith(CORS_PATHS) and not path.startswith(CORS_EXCLUDED):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# Endpoints that never use the signed-in person's session: clients and resource servers call
# them with their own credentials. Reading the session cookie (and re-signing it into every
# response) is for the pages.
SESSIONLESS_PATHS = frozenset(
    (
        "/oauth/token",
        "/oauth/token/info",
        "/oauth/introspect",
        "/oauth/revoke",
        "/healthz",
        "/readyz",
        "/metrics",
    )
)
SESSIONLESS_PREFIXES = ("/api/", "/.well-known/")


class SessionsForPages:
    """Starlette's ``SessionMiddleware``, skipped on the endpoints above."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.sessions = SessionMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if path in SESSIONLESS_PATHS or path.startswith(SESSIONLESS_PREFIXES):
            await self.app(scope, receive, send)
        else:
            await self.sessions(scope, receive, send)


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, whether or not they declare their
    length, before any handler reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._reject(scope, receive, send)
                    return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "error": "invalid_request",
                "error_description": f"the request body is larger than {self.max_bytes} bytes.",
            },
            status_code=413,
        )
        await response(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith("/api/") or path in (
        "/oauth/token",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/token/info",
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    from .web.responses import error_page

    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})  # e.g. 405's Allow (RFC 9110 §15.5.6)
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    if _wants_json(request):
        return JSONResponse(
            {
                "error": "not_found" if exc.status_code == 404 else "invalid_request",
                "error_description": str(exc.detail),
            },
            status_code=exc.status_code,
            headers=headers,
        )
    titles = {404: "Page not found", 405: "Method not allowed"}
    return error_page(
        request,
        titles.get(exc.status_code, "Request not accepted"),
        str(exc.detail),
        exc.status_code,
        headers=headers,
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette's own 405 names only the first
    route that matched the path, and one path may be served by several (GET and PUT)."""
    from starlette.routing import Match

    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = dict(request.scope, method=method)
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The database cannot be reached: 503 with Retry-After, in the right form. Nothing was
    changed (the transaction did not commit); the pool reconnects by itself once it is back."""
    from .web.responses import error_page

    log.warning(
        "database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__
    )
    headers = {"Retry-After": "5"}
    if _wants_json(request):
        return JSONResponse(
            {
                "error": "temporarily_unavailable",
                "error_description": "the service cannot reach its database; retry shortly.",
            },
            status_code=503,
            headers=headers,
        )
    return error_page(
        request,
        "Grantly is briefly unavailable",
        "It cannot reach its database right now. Nothing was changed; try again in a moment.",
        503,
        headers=headers,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Never a stack trace to the outside: a generic answer in the right form."""
    from .web.responses import error_page

    if isinstance(exc, Unavailable):
        return await _unavailable(request, exc)
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    if _wants_json(request):
        return JSONResponse(
            {"error": "server_error", "error_description": "an unexpected error occurred."},
            status_code=500,
        )
    return error_page(
        request,
        "Something went wrong",
        "An unexpected error occurred. Nothing was changed; please try again.",
        500,
    )


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    db = open_database(settings.database_url, settings.database_pool_size)
    throttle = Throttle(
        settings.redis_url,
        sign_in_per_account=settings.sign_in_limit_per_account,
        sign_in_per_address=settings.sign_in_limit_per_address,
        client_auth_per_client=settings.client_auth_limit_per_client,
        key_prefix=settings.redis_key_prefix,
    )
    services = Services(
        settings=settings,
        db=db,
        clock=clock or SystemClock(),
        templates=page_templates(),
        throttle=throttle,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await db.close()

    app = FastAPI(
        title="Grantly",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
        # FastAPI's OpenTelemetry bridge asked OpenTelemetry's global providers (reading the
        # environment) on every request; Grantly's metrics are Prometheus' (observability.py).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        middleware=[
            Middleware(RequestLogging),
            Middleware(SecurityHeaders, hsts=settings.secure_cookies),
            Middleware(CorsForClients),
            Middleware(BodyLimit, max_bytes=settings.max_body_bytes),
            Middleware(
                SessionsForPages,
                secret_key=settings.resolved_secret_key(),
                session_cookie="grantly_session",
                max_age=settings.session_lifetime,
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
        ],
        exception_handlers={
            StarletteHTTPException: _http_exception,
            Exception: _unexpected,
        },
    )
    app.state.services = services

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = metrics_body()
        return Response(body, media_type=content_type)

    app.mount("/static", StaticFiles(packages=[("grantly.web", "static")]), name="static")
    # Routers are matched in order, one by one: the hot paths (health checks, the token
    # endpoints, Bearer-authenticated API calls) come first, the dashboard's pages last.
    app.router.routes[:0] = [
        *health.routes,
        *client_endpoints.routes,
        *me.routes,
        *authorization.routes,
    ]
    app.include_router(me.router)
    app.include_router(employees.router)
    app.include_router(credentials.router)
    app.include_router(metadata.router)
    app.include_router(accounts.router)
    app.include_router(applications.router)
    app.include_router(grants.router)
    app.include_router(audit_page.router)
    app.include_router(api_keys_page.router)

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
