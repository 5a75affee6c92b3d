"""Logs and metrics: one JSON line per request with a request id, and Prometheus metrics.

Logs never carry a secret, code or token: the access line has the path without its query
(query strings may hold codes and, in Factorial's discouraged form, client secrets), and the
code logs only ids and kinds. Metrics follow Prometheus' naming; with several worker processes
they are aggregated through ``PROMETHEUS_MULTIPROC_DIR`` (set by ``grantly serve``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import traceback
from typing import Any

import starlette.routing
import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_DURATION = Histogram(
    "grantly_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
TOKENS_ISSUED = Counter(
    "grantly_tokens_issued_total", "Access tokens issued by a code exchange.", ["owner_type"]
)
TOKENS_REFRESHED = Counter("grantly_tokens_refreshed_total", "Access tokens refreshed.")
TOKENS_REVOKED = Counter(
    "grantly_tokens_revoked_total", "Tokens revoked through RFC 7009.", ["token_type"]
)
AUTHORIZATIONS = Counter(
    "grantly_authorizations_total", "Answers to authorization requests.", ["outcome"]
)
OAUTH_ERRORS = Counter(
    "grantly_oauth_errors_total", "OAuth errors answered, by RFC error code.", ["endpoint", "error"]
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

log = structlog.get_logger("grantly")


def configure_logging(log_format: str = "json", level: int = logging.INFO) -> None:
    """structlog for Grantly's own lines; the standard library's (uvicorn, alembic) go through
    the same renderer so that one process writes one format."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # A line below the level is dropped before any processor runs (the access line of every
        # request, at the default "warning" of `make bench`, cost a timestamp and more).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access line prints the query string, where codes and (in Factorial's
    # discouraged form) client secrets travel: RequestLogging writes the access line instead.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True


# The access line's status of a request whose client went away before it was answered (nginx's
# code): never counted as a server error.
CLIENT_CLOSED_REQUEST = 499


class RequestLogging:
    """Per request: a request id (the caller's ``X-Request-ID`` when it is sane, else a new
    one), echoed in the response, bound to every log line of the request; then one access line
    and the latency metric, labelled by route template so ids do not explode the series.

    The status recorded is the one the client was sent; 499 when the client disconnected
    before any answer (the handler's ``ClientDisconnect`` is then no error). Handlers' errors
    are answered further in (``web.errors.ErrorResponses``); an exception that still gets here
    (a middleware's) is logged once, without its message, and answered 500 here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    request_id = candidate
        request_id = request_id or os.urandom(16).hex()  # uuid4's randomness, without its object
        status = 500
        responded = False
        gone = False  # the client disconnected before it was answered

        async def receive_watching() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and not responded:
                gone = True
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status = message["status"]
                responded = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive_watching, send_with_id)
        except ClientDisconnect:
            gone = gone or not responded
        except Exception as exc:
            log.error(
                "unexpected error",
                method=scope["method"],
                path=scope["path"],
                **exception_fields(exc),
            )
            if not responded:
                await JSONResponse(
                    {"error": "server_error", "error_description": "an unexpected error occurred."},
                    status_code=500,
                )(scope, receive_watching, send_with_id)
        finally:
            if gone:
                status = CLIENT_CLOSED_REQUEST
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            _duration(scope["method"], template, status).observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                route=template,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def exception_fields(exc: BaseException) -> dict[str, str]:
    """An unexpected exception for the log: its type and a traceback of where it was raised,
    without any exception's message (nor notes, nor local variables). A driver's error says
    the statement it ran, with its parameters, and the row a constraint refused: values
    from the request and the database (emails, digests). The frames name files, lines,
    functions and their source lines: code, not data."""
    return {"exception": _type_name(exc), "traceback": _redacted_traceback(exc)}


def _type_name(exc: BaseException) -> str:
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    if isinstance(exc, BaseExceptionGroup):
        name += " [" + ", ".join(_type_name(each) for each in exc.exceptions) + "]"
    return name


def _redacted_traceback(exc: BaseException) -> str:
    """Python's own rendering of the exception and the ones it was raised from or while
    handling (oldest first), each named by its type only."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        cause = current.__cause__
        current = (
            cause if cause is not None or current.__suppress_context__ else current.__context__
        )
    parts: list[str] = []
    for index, each in enumerate(reversed(chain)):
        if index:
            newer_cause = each.__cause__
            parts.append(
                "\nThe above exception was the direct cause of the following exception:\n\n"
                if newer_cause is not None
                else "\nDuring handling of the above exception, another exception occurred:\n\n"
            )
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_list(traceback.extract_tb(each.__traceback__)))
        parts.append(_type_name(each) + "\n")
    return "".join(parts)


_DURATIONS: dict[tuple[str, str, int], Any] = {}


def _duration(method: str, template: str, status: int) -> Any:
    """The latency histogram's series for these labels, looked up once (``labels`` validated
    and hashed its arguments on every request)."""
    series = _DURATIONS.get((method, template, status))
    if series is None:
        series = _DURATIONS[(method, template, status)] = REQUEST_DURATION.labels(
            method, template, str(status)
        )
    return series


class Route(starlette.routing.Route):
    """A plain Starlette route that names itself in the scope, as FastAPI's routes do, so that
    ``RequestLogging`` labels its requests with the route's template."""

    def matches(self, scope: Scope) -> tuple[starlette.routing.Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not starlette.routing.Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def metrics_body() -> tuple[bytes, str]:
    """The exposition text, aggregated across worker processes when they share a directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
