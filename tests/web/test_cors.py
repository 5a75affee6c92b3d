"""CORS for browser applications: the token, revocation, metadata and resource endpoints answer
any origin without credentials (they never rely on a cookie); the dashboard, the authorization
endpoint and introspection answer none."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World, exchange, obtain_code

ORIGIN = "https://spa.example"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/oauth/token", "POST"),
        ("/oauth/revoke", "POST"),
        ("/.well-known/oauth-authorization-server", "GET"),
        ("/api/v1/me", "GET"),
    ],
)
def test_a_preflight_to_a_client_endpoint_is_allowed_without_credentials(
    client: TestClient, path: str, method: str
) -> None:
    response = client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert method in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


def test_a_token_response_is_readable_by_a_browser_app(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    client.headers["Origin"] = ORIGIN
    response = exchange(client, world.app, code)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"


def test_a_bearer_error_challenge_is_exposed_to_a_browser_app(client: TestClient) -> None:
    response = client.get("/api/v1/me", headers={"Origin": ORIGIN, "Authorization": "Bearer x"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"
    assert "WWW-Authenticate" in response.headers["access-control-expose-headers"]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/oauth/introspect", "POST"),
        ("/oauth/token/info", "GET"),  # a holder's own check, not a browser app's call
        ("/oauth/authorize", "GET"),
        ("/oauth/applications", "GET"),
        ("/login", "POST"),
        ("/api/docs", "GET"),
    ],
)
def test_pages_and_back_channel_endpoints_answer_no_other_origin(
    client: TestClient, path: str, method: str
) -> None:
    preflight = client.options(
        path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": method}
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = client.request(method, path, headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in plain.headers
