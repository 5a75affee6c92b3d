"""Threat: a redirect built from the request's ``Host`` header (RFC 9700 §4.11 open
redirection; SECURITY.md §4.12-4.13). Starlette's ``redirect_slashes`` answered a path with a
trailing slash by ``307 Location: http://<Host>/<path>``: a client POSTing its secret to
``/oauth/token/`` with a forged Host was told to POST it again to that host. Paths are exact;
the other spelling is a 404 in the form of its path, and no answer sends a client elsewhere."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World, authorize_params

EVIL = {"Host": "evil.example"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/oauth/token/"),
        ("POST", "/oauth/revoke/"),
        ("POST", "/oauth/introspect/"),
        ("GET", "/oauth/token/info/"),
        ("GET", "/oauth/authorize/"),
        ("POST", "/oauth/authorize/"),
        ("GET", "/api/2026-10-01/resources/employees/employees/"),
        ("PUT", "/api/2026-10-01/resources/employees/employees/1/"),
        ("GET", "/api/v1/me/"),
        ("POST", "/login/"),
        ("GET", "/oauth/applications/"),
        ("GET", "/.well-known/oauth-authorization-server/"),
    ],
)
def test_a_trailing_slash_is_not_redirected_to_the_host_header(
    client: TestClient, world: World, method: str, path: str
) -> None:
    response = client.request(
        method,
        path,
        params=authorize_params(world.app) if "authorize" in path else None,
        data={"grant_type": "client_credentials", "client_secret": "gcs_x"},
        headers=EVIL,
        auth=(world.app.client_id, world.app.client_secret),
    )
    assert response.status_code == 404, (path, response.status_code)
    assert "location" not in response.headers
    assert "evil.example" not in response.text


def test_the_client_endpoints_answer_json_with_a_trailing_slash(client: TestClient) -> None:
    """A client that added a slash gets RFC 6749-style JSON, not a page."""
    response = client.post("/oauth/token/", data={"grant_type": "x"}, headers=EVIL)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "not_found"


def test_no_route_answers_a_redirect_to_another_host(client: TestClient, world: World) -> None:
    """Every route, each method, both spellings, under a forged Host: a redirect, if any, is
    to a path of this server (relative), never to the Host's."""
    paths = {route.path for route in client.app.router.routes if hasattr(route, "methods")}  # type: ignore[attr-defined]
    concrete = {
        p.replace("{version:api_version}", "2026-10-01")
        .replace("{version}", "2026-10-01")
        .replace("{employee_id}", "1")
        .replace("{employee_id:int}", "1")
        for p in paths
    }
    concrete = {p.split("{")[0] for p in concrete}
    for path in sorted(concrete):
        for spelling in {path, path.rstrip("/") + "/", path.rstrip("/") or "/"}:
            for method in ("GET", "POST", "PUT", "DELETE"):
                response = client.request(method, spelling, headers=EVIL)
                location = response.headers.get("location", "")
                assert "evil.example" not in location, (method, spelling, location)
                assert response.status_code != 307, (method, spelling)
