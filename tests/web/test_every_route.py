"""Every route the app registers, with every method, and paths it does not have: whoever asks
and whatever they accept, the answer is never a 5xx nor a stack trace, and a 404 or a 405 is
in the form the caller asked for: JSON for clients and the API (RFC 6749 §5.2, RFC 9457), a
page for people, and whichever ``Accept`` prefers elsewhere (RFC 9110 §12.5.1)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.settings import Settings
from grantly.web.errors import JSON_PATHS, preferred_form
from tests.conftest import World, exchange, obtain_code, sign_in

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ACCEPTS = {"json": "application/json", "html": "text/html"}
UNKNOWN_PATHS = (
    "/.well-known/openid-configuration",
    "/.well-known/oauth-protected-resource",
    "/.well-known/jwks.json",
    "/.well-known/",
    "/.well-known/oauth-authorization-server/extra",
    "/nope",
    "/favicon.ico",
    "/robots.txt",
    "/healthz/",
    "/metrics/x",
    "/oauth",
    "/oauth/nope",
    "/oauth/token/",
    "/oauth/applications/not-a-number",
    "/oauth/applications/1/nope",
    "/static/nope.css",
    "/static/",
    "/api",
    "/api/",
    "/api/nope",
    "/api/v1/nope",
    "/api/docs/",
    "/api/2026-99-99/resources/employees/employees",
    "/api/2026-10-01/resources/nope",
    "/%00",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/" + "a" * 5000,
)
# Paths of routes, naming what does not exist: the handler answers, in the route's own form.
MISSING = (
    "/oauth/applications/999999",
    "/oauth/applications/999999/edit",
    "/oauth/authorized_applications/999999/revoke",
    "/api_keys/999999/revoke",
    "/people/999999",
    "/people/999999/deactivate",
    "/people/999999/grants/999999/revoke",
    "/set-password?token=gin_nope",
    "/api/2026-10-01/resources/employees/employees/999999",
    "/api/2026-10-01/resources/employees/employees/2147483648",
    "/api/1999-12-31/resources/employees/employees",
)


def _walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[str]:
    """Each route's path template, through included routers (FastAPI
    keeps an ``include_router``'s routes on the included router)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _walk(included.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        else:
            yield prefix + route.path  # type: ignore[attr-defined]


def _plausible(name: str, world: World) -> str:
    return {
        "version": "2026-10-01",
        "employee_id": str(world.employee.id),
        "application_id": str(world.app.id),
        "consent_id": "1",
        "key_id": "1",
        "user_id": str(world.employee.id),
        "path": "grantly.css",
        "client_id": world.app.client_id,
    }[name]


def _filled(path: str, world: World) -> str:
    filled = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: _plausible(m.group(1), world), path)
    assert "{" not in filled, path
    return filled


def _registered_paths(app: Any, world: World) -> list[str]:
    paths = {_filled(path, world) for path in _walk(app.router.routes)}
    # A Mount's path is its prefix: ask for a file under it.
    return sorted(p if p != "/static" else "/static/grantly.css" for p in paths)


def _expected_form(path: str, accept: str) -> str:
    if path.startswith("/api/") or path.rstrip("/") in JSON_PATHS:
        return "json"
    return accept


def _form(response: httpx.Response) -> str:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        return "json"
    if content_type.startswith("text/html"):
        return "html"
    return content_type


def _app_client(settings: Settings, clock: FrozenClock) -> TestClient:
    return TestClient(
        create_app(settings, clock=clock),
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
        raise_server_exceptions=False,
        client=("127.0.0.1", 50000),
    )


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "signed-in"])
def test_no_route_method_or_unknown_path_answers_a_server_error(
    settings: Settings, world: World, clock: FrozenClock, signed_in: bool
) -> None:
    with _app_client(settings, clock) as http:
        api_headers: dict[str, str] = {}
        if signed_in:
            code = obtain_code(http, world, scope="read write")
            token = exchange(http, world.app, code).json()["access_token"]
            api_headers = {"Authorization": f"Bearer {token}"}
            http.cookies.clear()
            sign_in(http, world.admin)
        paths = _registered_paths(http.app, world)
        assert "/oauth/applications/new" in paths and "/api/v1/me" in paths, paths

        problems: list[str] = []
        asked = 0
        for path in [*paths, *UNKNOWN_PATHS, *MISSING]:
            for method in METHODS:
                for accept, media_type in ACCEPTS.items():
                    headers = {"Accept": media_type}
                    if path.startswith("/api/"):
                        headers |= api_headers
                    response = http.request(method, path, headers=headers)
                    asked += 1
                    where = f"{method} {path} (Accept: {media_type})"
                    if response.status_code >= 500:
                        problems.append(f"{where}: {response.status_code} {response.text[:200]}")
                    if "Traceback" in response.text or 'File "/' in response.text:
                        problems.append(f"{where}: a traceback in the body")
                    if response.status_code in (404, 405) and (
                        path in UNKNOWN_PATHS or response.status_code == 405
                    ):
                        expected = _expected_form(path, accept)
                        if _form(response) != expected:
                            problems.append(
                                f"{where}: {response.status_code} as "
                                f"{response.headers.get('content-type')}, expected {expected}"
                            )
                    if response.status_code == 405 and not response.headers.get("allow"):
                        problems.append(f"{where}: 405 without Allow (RFC 9110 §15.5.6)")
        assert asked > 500
        assert not problems, "\n".join(problems)
        if signed_in:  # the walk's POSTs, without a CSRF token, changed nothing
            assert world.admin.email in http.get("/").text


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/.well-known/openid-configuration", 404, None),
        ("GET", "/.well-known/oauth-protected-resource", 404, None),
        ("GET", "/.well-known/webfinger", 404, None),
        ("PUT", "/.well-known/oauth-authorization-server", 405, "GET, HEAD"),
        ("POST", "/healthz", 405, "GET, HEAD"),
        ("POST", "/readyz", 405, "GET, HEAD"),
        ("DELETE", "/metrics", 405, "GET, HEAD"),
        ("POST", "/static/grantly.css", 405, "GET, HEAD"),
        ("GET", "/nope", 404, None),
        ("DELETE", "/login", 405, "GET, HEAD, POST"),
    ],
)
def test_the_issues_examples_answer_in_the_form_asked_for(
    client: TestClient, method: str, path: str, status: int, allow: str | None
) -> None:
    machine_path = path.startswith(("/.well-known/", "/healthz", "/readyz", "/metrics"))
    for accept, form in (
        ("application/json", "json"),
        ("text/html", "html"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"),
        ("application/json, text/plain, */*", "json"),
        # No preference: the path decides (machines call the metadata and health paths).
        ("*/*", "json" if machine_path else "html"),
        ("", "json" if machine_path else "html"),
    ):
        response = client.request(method, path, headers={"Accept": accept} if accept else {})
        assert response.status_code == status, (accept, response.text)
        assert _form(response) == form, (accept, response.headers)
        if allow is not None:
            assert response.headers["allow"] == allow
        if form == "json":
            assert response.json()["error"] in ("not_found", "invalid_request")
        else:
            assert "<h1>" in response.text and "Back to Grantly" in response.text


@pytest.mark.parametrize(
    ("accept", "preferred"),
    [
        ("application/json", "json"),
        ("text/html", "html"),
        ("*/*", None),
        ("", None),
        ("image/png", None),
        ("text/html;q=0.5, application/json;q=0.6", "json"),
        ("application/json;q=0, */*", "html"),
        ("text/*, application/json;q=0.9", "html"),
        ("application/*;q=0.2, text/html;q=0.1", "json"),
        ("TEXT/HTML", "html"),
        ("text/html;q=abc, application/json", "json"),
        ("text/html;level=1;q=0.7, application/json;q=0.8", "json"),
        ("application/json, text/plain, */*", "json"),
        ("text/html, application/json", None),
        ("application/json;q=0, text/html;q=0", None),
    ],
)
def test_accept_is_weighed_by_its_most_specific_range(accept: str, preferred: str | None) -> None:
    assert preferred_form(accept) == preferred


@pytest.mark.parametrize("path", ["/", "/login", "/oauth/applications", "/api/v1/me", "/healthz"])
def test_head_is_answered_as_get_is(client: TestClient, path: str) -> None:
    """RFC 9110 §9.3.2: the same status and headers as GET, no content."""
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code != 405
    assert head.headers.get("content-type") == got.headers.get("content-type")
    assert head.content == b""


def test_the_openapi_document_lists_no_head_operations(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert paths and not any("head" in operations for operations in paths.values())
