"""The endpoints clients and resource servers call never read the dashboard's session cookie
nor send one (``app.SessionsForPages``); the pages still have the session."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.web.middleware import SessionsForPages
from tests.conftest import World, exchange, obtain_code


def test_client_endpoints_send_no_session_cookie_and_pages_keep_the_session(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world)  # signed in: the client holds a session cookie
    assert client.cookies.get("grantly_session")
    tokens = exchange(client, world.app, code)
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    for response in (
        tokens,
        client.get("/api/v1/me", headers=bearer),
        client.get("/oauth/token/info", headers=bearer),
        client.get("/healthz"),
        client.get("/.well-known/oauth-authorization-server"),
    ):
        assert response.status_code == 200, response.text
        assert "set-cookie" not in response.headers, response.request.url
    # A page still sees the person signed in (not sent to /login).
    assert client.get("/oauth/authorized_applications").status_code == 200


@pytest.mark.parametrize(
    ("path", "has_session"),
    [
        ("/oauth/token", False),
        ("/oauth/introspect", False),
        ("/api/v1/employees", False),
        ("/.well-known/oauth-authorization-server", False),
        ("/healthz", False),
        ("/oauth/authorize", True),
        ("/oauth/tokens", True),  # not one of the endpoints, whatever its prefix
        ("/api_keys", True),
        ("/login", True),
    ],
)
def test_only_pages_get_the_session(path: str, has_session: bool) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)

    middleware = SessionsForPages(app, secret_key="k" * 32, session_cookie="grantly_session")
    scope = {"type": "http", "path": path, "headers": [], "method": "GET"}
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    assert ("session" in seen[0]) is has_session
