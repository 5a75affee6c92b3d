"""The answers to failures (a database outage, a value it cannot hold, a bug, a client that
went away) go out like any other response: with the security headers, CORS where the path has
it, the request id, and as what the access line and the metrics record. The log of a bug
names where it happened, never the data it carried (the SQL a driver's error quotes).

Faults are injected into the in-process app by replacing its database's ``unit``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.observability import RequestLogging
from grantly.settings import Settings
from grantly.store.errors import InvalidValue, Unavailable
from grantly.web.middleware import SecurityHeaders
from tests.conftest import World

ORIGIN = {"Origin": "https://spa.example"}
BEARER = {"Authorization": "Bearer gat_" + "x" * 43}
SQL = "INSERT INTO users (email, password_hash) VALUES ($1, $2)"
PARAMETERS = "('victim@acme.example', 's3cr3t-digest')"


@pytest.fixture
def faulty(
    settings: Settings, world: World, clock: FrozenClock
) -> Iterator[tuple[TestClient, Any]]:
    """A client of an app whose database raises what ``fail(exc)`` is given."""
    app = create_app(settings, clock=clock)
    db = app.state.services.db

    def fail(exc: BaseException) -> None:
        def unit(*args: Any, **kwargs: Any) -> Any:
            raise exc

        db.unit = unit

    with TestClient(
        app,
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
        raise_server_exceptions=False,
        client=("127.0.0.1", 50000),  # /metrics answers loopback peers
    ) as client:
        yield client, fail


def _count(client: TestClient, method: str, route: str, status: int) -> float:
    series = (
        "grantly_http_request_duration_seconds_count"
        f'{{method="{method}",route="{route}",status="{status}"}}'
    )
    metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    for line in metrics.text.splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _access(logs: list[dict[str, Any]]) -> list[int]:
    return [entry["status"] for entry in logs if entry["event"] == "request"]


def _assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


def _unavailable() -> Unavailable:
    return Unavailable("postgresql 08006: ConnectionFailureError")


def test_a_database_outage_is_answered_503_through_every_middleware(faulty) -> None:
    client, fail = faulty
    fail(_unavailable())
    before = _count(client, "GET", "/api/v1/me", 503)
    with capture_logs() as logs:
        api = client.get("/api/v1/me", headers={**BEARER, **ORIGIN, "X-Request-ID": "outage-1"})
    assert api.status_code == 503
    assert api.json()["error"] == "temporarily_unavailable"
    assert api.headers["retry-after"] == "5"
    assert api.headers["x-request-id"] == "outage-1"
    assert api.headers["access-control-allow-origin"] == "*"
    _assert_security_headers(api)
    assert _access(logs) == [503]
    assert _count(client, "GET", "/api/v1/me", 503) == before + 1

    page = client.get("/oauth/authorize", params={"client_id": "x", "response_type": "code"})
    assert page.status_code == 503
    assert "briefly unavailable" in page.text
    assert page.headers["x-request-id"]
    _assert_security_headers(page)
    assert "access-control-allow-origin" not in page.headers  # the authorize page has no CORS


def test_a_value_the_database_cannot_hold_is_answered_400_through_every_middleware(
    faulty,
) -> None:
    client, fail = faulty
    fail(InvalidValue("postgresql 22003: NumericValueOutOfRangeError"))
    before = _count(client, "POST", "/oauth/token", 400)
    with capture_logs() as logs:
        response = client.post(
            "/oauth/token",
            data={"grant_type": "authorization_code", "code": "c", "client_id": "x"},
            headers=ORIGIN,
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["x-request-id"]
    _assert_security_headers(response)
    assert _access(logs) == [400]
    assert _count(client, "POST", "/oauth/token", 400) == before + 1


def _bug() -> RuntimeError:
    """A failure whose messages quote SQL and its parameters, as a driver's error does."""
    try:
        try:
            raise ValueError(f"parameters: {PARAMETERS}")
        except ValueError as cause:
            raise RuntimeError(f"statement failed: {SQL}") from cause
    except RuntimeError as error:
        error.add_note(f"while running {SQL} with {PARAMETERS}")
        return error


@pytest.mark.parametrize("path", ["/api/v1/me", "/oauth/authorize?client_id=x"])
def test_a_bug_is_answered_500_through_every_middleware_and_logged_once_without_data(
    faulty, path: str
) -> None:
    client, fail = faulty
    fail(_bug())
    route = path.split("?")[0]
    before = _count(client, "GET", route, 500)
    with capture_logs() as logs:
        response = client.get(path, headers={**BEARER, **ORIGIN})
    assert response.status_code == 500
    assert "Traceback" not in response.text and "INSERT" not in response.text
    assert response.headers["x-request-id"]
    _assert_security_headers(response)
    if route.startswith("/api/"):
        assert response.json()["error"] == "server_error"
        assert response.headers["access-control-allow-origin"] == "*"
    assert _access(logs) == [500]
    assert _count(client, "GET", route, 500) == before + 1
    (error,) = [entry for entry in logs if entry["log_level"] == "error"]
    assert error["event"] == "unexpected error" and error["path"] == route
    assert error["exception"] == "RuntimeError"
    # Where it happened: both exceptions by type, and the frames that raised them.
    assert "ValueError" in error["traceback"] and "RuntimeError" in error["traceback"]
    assert "in _bug" in error["traceback"] and "in unit" in error["traceback"]
    assert "direct cause" in error["traceback"]
    # The source lines of the frames are shown (code); the values they carried are not.
    for secret in ("INSERT", "victim@acme.example", "s3cr3t-digest"):
        assert secret not in repr(logs), secret


def test_a_client_that_disconnects_mid_body_is_logged_499_and_nothing_else(
    settings: Settings, world: World
) -> None:
    app = create_app(settings)
    messages: list[dict[str, Any]] = []
    incoming = [
        {"type": "http.request", "body": b"grant_type=authorization_code&co", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/oauth/token",
        "raw_path": b"/oauth/token",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"500"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    # Runs the app's lifespan around the call below.
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        before = {status: _count(client, "POST", "/oauth/token", status) for status in (499, 500)}
        with capture_logs() as logs:
            client.portal.call(app, scope, receive, send)  # type: ignore[union-attr]
        assert _count(client, "POST", "/oauth/token", 499) == before[499] + 1
        assert _count(client, "POST", "/oauth/token", 500) == before[500]
    assert messages == []  # nobody to answer
    assert [(entry["event"], entry["log_level"]) for entry in logs] == [("request", "info")]
    assert _access(logs) == [499]


def test_an_exception_from_a_middleware_is_answered_500_with_the_headers_and_the_request_id() -> (
    None
):
    """The last resort, for a bug outside the handlers (ErrorResponses answers theirs)."""

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError(f"statement failed: {SQL} {PARAMETERS}")

    app = SecurityHeaders(RequestLogging(broken))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await http.get("/anything", headers={"X-Request-ID": "bug-1"})

    with capture_logs() as logs:
        response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert response.headers["x-request-id"] == "bug-1"
    _assert_security_headers(response)
    assert [(entry["event"], entry.get("status")) for entry in logs] == [
        ("unexpected error", None),
        ("request", 500),
    ]
    assert "INSERT" not in repr(logs) and "victim" not in repr(logs)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/oauth/token"),
        ("POST", "/login"),
        ("PUT", "/api/2026-10-01/resources/employees/employees/1"),
    ],
)
def test_a_body_over_the_limit_without_a_declared_length_is_refused_413(
    client: TestClient, method: str, path: str
) -> None:
    def chunks() -> Iterator[bytes]:  # sent chunked: the size shows only as it arrives
        for _ in range(20):
            yield b"a" * 8192

    response = client.request(
        method,
        path,
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **ORIGIN},
    )
    assert response.status_code == 413
    assert response.headers["x-request-id"]
    _assert_security_headers(response)
