"""The answers to what no handler answered: unknown paths and methods (404, 405), a database
that cannot be reached (503 with Retry-After), and anything unexpected (500, logged, never a
stack trace outside). JSON for clients and the API, a page for people."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..observability import exception_fields
from ..services import services
from ..store.errors import InvalidValue, Unavailable
from . import client_endpoints
from .pages import signed_in_user
from .responses import error_page

log = structlog.get_logger("grantly")

# The endpoints that answer JSON whatever the path's error (besides everything under /api/).
JSON_PATHS = frozenset(route.path for route in client_endpoints.routes)


def _wants_json(request: Request) -> bool:
    """JSON or a page. Clients of the OAuth endpoints and the API always get JSON (RFC 6749
    §5.2, RFC 6750 §3). Elsewhere the caller's ``Accept`` decides when it prefers one of the
    two; when it does not (``*/*``, or none), the path does: health checks, metrics and
    metadata, which have no session, are called by machines, and the rest are pages."""
    path = request.url.path
    if path.startswith("/api/") or path.rstrip("/") in JSON_PATHS:
        return True
    preferred = preferred_form(request.headers.get("accept", ""))
    if preferred is not None:
        return preferred == "json"
    return "session" not in request.scope


def preferred_form(accept: str) -> str | None:
    """``"json"`` or ``"html"`` when ``accept`` prefers ``application/json`` to ``text/html``
    or the other way round; ``None`` when it weighs them alike. Each is weighed by its most
    specific media range (RFC 9110 §12.5.1: ``text/html`` over ``text/*`` over ``*/*``). A
    browser's ``text/html,...,*/*;q=0.8`` prefers the page; axios' ``application/json,
    text/plain, */*`` the JSON."""
    ranges: list[tuple[str, str, float]] = []
    for item in accept.split(",")[:50]:
        media_range, *parameters = item.split(";")
        kind, _, subtype = media_range.strip().lower().partition("/")
        weight = 1.0
        for parameter in parameters:
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        if kind and subtype:
            ranges.append((kind, subtype, weight))

    def weight_of(kind: str, subtype: str) -> tuple[float, int]:
        best = (0.0, -1)  # (q, specificity) of the most specific range that matches
        for range_kind, range_subtype, q in ranges:
            if (range_kind, range_subtype) == (kind, subtype):
                specificity = 2
            elif (range_kind, range_subtype) == (kind, "*"):
                specificity = 1
            elif (range_kind, range_subtype) == ("*", "*"):
                specificity = 0
            else:
                continue
            if specificity > best[1]:
                best = (q, specificity)
        return best

    # Equal weights: the one the caller named outright wins over one a wildcard let in.
    json_weight, html_weight = weight_of("application", "json"), weight_of("text", "html")
    if json_weight[0] == html_weight[0] == 0.0 or json_weight == html_weight:
        return None
    return "json" if json_weight > html_weight else "html"


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})  # e.g. 405's Allow (RFC 9110 §15.5.6)
    if exc.status_code == 405:
        # Starlette's own names only the first route that matched; a mount's (StaticFiles)
        # is its own, since no route serves the paths under it.
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    if _wants_json(request):
        return JSONResponse(
            {
                "error": "not_found" if exc.status_code == 404 else "invalid_request",
                "error_description": str(exc.detail),
            },
            status_code=exc.status_code,
            headers=headers,
        )
    await _load_signed_in_user(request)
    pages = {
        404: ("Page not found", "There is no page at this address. Check the link you followed."),
        405: (
            "Method not allowed",
            f"This page does not answer {request.method} requests"
            + (f" (it answers {headers['Allow']})." if headers.get("Allow") else "."),
        ),
        408: ("Request timed out", "The request took too long to arrive. Try again."),
    }
    title, message = pages.get(exc.status_code, ("Request not accepted", str(exc.detail)))
    return error_page(request, title, message, exc.status_code, headers=headers)


async def _load_signed_in_user(request: Request) -> None:
    """An error page keeps the signed-in navigation: who is signed in is read here, since no
    handler ran. Paths without sessions (``/.well-known/``, ``/api/``) have no one signed in,
    and a database that cannot answer leaves the page without navigation, not without page."""
    if "session" not in request.scope or getattr(request.state, "user", None) is not None:
        return
    try:
        async with services(request).db.unit(write=False) as uow:
            await signed_in_user(request, uow)
    except Unavailable:
        request.state.user = None


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette's own 405 names only the first
    route that matched the path, and one path may be served by several (GET and PUT)."""
    from starlette.routing import Match

    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        scope = dict(request.scope, method=method)
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")  # middleware.HeadAsGet answers it
    return ", ".join(allowed)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The database cannot be reached: 503 with Retry-After, in the right form. Nothing was
    changed (the transaction did not commit); the pool reconnects by itself once it is back."""
    log.warning(
        "database unavailable",
        method=request.method,
        path=request.url.path,
        exception=type(exc).__name__,
        # The store's own words (an SQLSTATE and the driver's error class, or SQLite's
        # message): never a statement's parameters. Tells a dropped database from a
        # refused password.
        reason=str(exc)[:200],
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


async def unexpected(request: Request, exc: Exception) -> Response:
    """Never a stack trace to the outside: a generic answer in the right form."""
    if isinstance(exc, Unavailable):
        return await _unavailable(request, exc)
    if isinstance(exc, InvalidValue):
        return _invalid_value(request)
    log.error(
        "unexpected error", method=request.method, path=request.url.path, **exception_fields(exc)
    )
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


def _invalid_value(request: Request) -> Response:
    """A value of the request the database cannot hold (a number beyond its range, a NUL
    character): 400 in the right form; nothing was changed."""
    if _wants_json(request):
        return JSONResponse(
            {
                "error": "invalid_request",
                "error_description": "a value in the request is out of range or malformed.",
            },
            status_code=400,
        )
    return error_page(
        request,
        "Request not accepted",
        "A value in the request is out of range or malformed. Nothing was changed.",
        400,
    )


class ErrorResponses:
    """What a handler raised becomes its answer here, in the innermost middleware, so that the
    answer goes out through every other middleware like any response: security headers, CORS,
    the session, ``X-Request-ID``, the access line and the metrics. (Starlette's handler for
    ``Exception`` runs outside them all.) Nothing is re-raised: the error is logged once.

    A client that disconnected mid-body (``ClientDisconnect``) is answered nothing: there is
    no one to answer, and nothing is wrong with the server (the access line says 499)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responded = False

        async def watching_send(message: Message) -> None:
            nonlocal responded
            if message["type"] == "http.response.start":
                responded = True
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except ClientDisconnect:
            return
        except Exception as exc:
            if responded:
                # Too late for another answer: the server closes the connection mid-response.
                log.error(
                    "unexpected error after the response started",
                    method=scope["method"],
                    path=scope["path"],
                    **exception_fields(exc),
                )
                return
            response = await unexpected(Request(scope, receive), exc)
            await response(scope, receive, send)
