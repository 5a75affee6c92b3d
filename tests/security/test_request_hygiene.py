"""Two credentials in one request, and who may read ``/metrics``.

- Two ``Authorization`` headers are refused with 400 ``invalid_request`` wherever one is read
  (RFC 6749 §2.3: one authentication method; RFC 6750 §2: one way to send a token), as two
  ``x-api-key`` headers are: which one a proxy or a framework reads would otherwise decide
  who the request is.
- ``/metrics`` answers a Bearer ``GRANTLY_METRICS_TOKEN`` when one is set, otherwise loopback
  peers only.
"""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from tests.api.conftest import EMPLOYEES, company_token
from tests.conftest import World, make_settings


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/oauth/token"),
        ("POST", "/oauth/revoke"),
        ("POST", "/oauth/introspect"),
        ("GET", "/oauth/token/info"),
        ("GET", EMPLOYEES),
        ("GET", "/api/v1/me"),
    ],
)
def test_two_authorization_headers_are_refused(
    client: TestClient, world: World, method: str, path: str
) -> None:
    token = company_token(client, world.admin, world.app)
    right = _basic(world.app.client_id, world.app.client_secret or "")
    for pair in [(right, f"Bearer {token}"), (f"Bearer {token}", f"Bearer {token}")]:
        response = client.request(
            method,
            path,
            headers=[("Authorization", pair[0]), ("Authorization", pair[1])],
            data={"grant_type": "client_credentials", "token": token} if method == "POST" else None,
        )
        assert response.status_code == 400, (path, response.status_code, response.text)
        assert response.json()["error"] == "invalid_request"
        assert "one Authorization header" in response.json()["error_description"]
    # One header is served as before.
    single = right if method == "POST" else f"Bearer {token}"
    one = client.request(
        method,
        path,
        headers={"Authorization": single},
        data={"grant_type": "client_credentials", "token": token} if method == "POST" else None,
    )
    assert "one Authorization header" not in one.text, path
    assert one.status_code == (400 if path == "/oauth/token" else 200), (path, one.text)


def _metrics_client(world: World, tmp_path, peer: str, **overrides: str) -> TestClient:
    settings = make_settings(tmp_path, database_url=world.settings.database_url, **overrides)
    return TestClient(create_app(settings), base_url="http://127.0.0.1:8000", client=(peer, 4000))


def test_metrics_are_for_loopback_peers_without_a_token(world: World, tmp_path) -> None:
    with _metrics_client(world, tmp_path, "203.0.113.9") as remote:
        refused = remote.get("/metrics")
        assert refused.status_code == 403
        assert "grantly_" not in refused.text and "GRANTLY_METRICS_TOKEN" in refused.text
    for peer in ("127.0.0.1", "::1"):
        with _metrics_client(world, tmp_path, peer) as local:
            served = local.get("/metrics")
            assert served.status_code == 200
            assert "grantly_http_request_duration_seconds" in served.text


def test_with_a_token_metrics_need_it_from_everywhere(world: World, tmp_path) -> None:
    token = "m" * 40
    for peer in ("127.0.0.1", "203.0.113.9"):
        with _metrics_client(world, tmp_path, peer, metrics_token=token) as http:
            for wrong in (
                {},
                {"Authorization": "Bearer nope"},
                {"Authorization": f"Basic {token}"},
            ):
                refused = http.get("/metrics", headers=wrong)
                assert refused.status_code == 401, (peer, wrong)
                assert refused.headers["www-authenticate"].startswith("Bearer")
                assert "grantly_" not in refused.text
            two = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer bad")]
            assert http.get("/metrics", headers=two).status_code == 400
            served = http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert served.status_code == 200 and "grantly_" in served.text
