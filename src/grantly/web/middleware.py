"""The ASGI middleware of every request: security headers, CORS for the endpoints browser
clients call, the body's size and time limits, and the pages' session cookie."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import client_endpoints, health

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

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                headers = list(message.get("headers", []))
                for name, value in self.headers:
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Endpoints a browser application (a single-page app, a public client with PKCE) calls from its
# own origin. They authenticate with the client's credentials or a Bearer token, never with a
# cookie, so any origin may call them and no credentials are allowed (RFC 6749 §3.2's token
# endpoint, RFC 7009's revocation, RFC 8414's and RFC 9728's metadata, RFC 7591's registration
# and RFC 7592's management of it, the resource API and the MCP endpoint). The
# dashboard, the authorization endpoint and introspection (a resource server's back channel)
# get no CORS.
CORS_PATHS = frozenset(
    (
        *client_endpoints.CORS,
        "/.well-known/oauth-authorization-server",
        "/oauth/register",
        "/mcp",
        "/oauth/jwks",
    )
)
CORS_PREFIXES = ("/api/", "/.well-known/oauth-protected-resource/", "/oauth/register/")
CORS_EXCLUDED = ("/api/docs",)


class CorsForClients:
    """Starlette's ``CORSMiddleware``, applied only to the endpoints browser clients call."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "x-api-key",
                "Mcp-Session-Id",
                "Mcp-Protocol-Version",
                "Last-Event-ID",
                "DPoP",
            ],
            expose_headers=["WWW-Authenticate", "Retry-After", "Mcp-Session-Id", "DPoP-Nonce"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if (path in CORS_PATHS or path.startswith(CORS_PREFIXES)) and not path.startswith(
            CORS_EXCLUDED
        ):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


# Endpoints that never use the signed-in person's session: clients and resource servers call
# them with their own credentials. Reading the session cookie (and re-signing it into every
# response) is for the pages.
SESSIONLESS_PATHS = frozenset(
    route.path for route in (*client_endpoints.routes, *health.routes)
) | {"/metrics", "/oauth/register", "/mcp", "/oauth/jwks"}
SESSIONLESS_PREFIXES = ("/api/", "/.well-known/", "/oauth/register/")


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
    length, before any handler reads them; and bodies that have not arrived ``timeout``
    seconds after the request's headers with 408 (RFC 9110 §15.5.9), so that a client
    trickling its body holds no handler (and no database connection it may have taken).

    A declared length is refused before the application runs. A body found too large, or too
    late, as it arrives is refused from ``receive`` with an ``HTTPException``, which FastAPI's
    body parsing passes on and ``errors.http_exception`` answers in the path's form, through
    the middleware inside this one; the 408 closes the connection. A body that no handler
    reads is bounded by the server's protocol (``grantly.serving``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await self._reject(scope, receive, send)
                    return
                has_body = has_body or declared > 0
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:  # RFC 9112 §6.3: no Content-Length, no Transfer-Encoding: no body
            await self.app(scope, receive, send)
            return
        received = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout

        async def bounded_receive() -> Message:
            nonlocal received, complete
            if complete:  # after the body, receive only waits for the client to disconnect
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimedOut(self.timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, bounded_receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {
                "error": "invalid_request",
                "error_description": f"the request body is larger than {self.max_bytes} bytes.",
            },
            status_code=413,
        )
        await response(scope, receive, send)


class BodyTooLarge(HTTPException):
    """413 Content Too Large (RFC 9110 §15.5.14)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than {max_bytes} bytes.")


class BodyTimedOut(HTTPException):
    """408 Request Timeout, with ``Connection: close`` (RFC 9110 §15.5.9)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(
            408,
            f"the request body did not arrive within {timeout:g} seconds.",
            headers={"Connection": "close"},
        )


class HeadAsGet:
    """RFC 9110 §9.3.2: HEAD is answered exactly as GET is, without the content. FastAPI's
    routes answer HEAD with 405 (Starlette's own answer it), so the handlers are given a GET
    and the content they write is dropped here; ``Content-Length`` stays what GET's would be.
    The innermost middleware: logging, metrics and the error answers still see the HEAD."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(dict(scope, method="GET"), receive, headers_only)
