"""/healthz and /readyz."""

from __future__ import annotations

from fastapi.testclient import TestClient

from grantly.app import create_app
from tests.conftest import World, make_settings


def test_healthz_says_the_process_is_up(client: TestClient, world: World) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database(client: TestClient, world: World) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings)) as unreachable:
        response = unreachable.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    assert response.headers["retry-after"] == "5"


def test_a_wrong_method_gets_405_with_allow(client: TestClient, world: World) -> None:
    response = client.get("/oauth/token")
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]
    assert response.json()["error"] == "invalid_request"


def test_an_error_on_a_path_without_pages_is_answered_in_json(client: TestClient) -> None:
    """Health checks and metrics have no session, which a page needs (its CSRF token)."""
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"
    assert "GET" in response.headers["allow"]


def test_an_unreachable_database_gets_503_in_the_right_form(tmp_path) -> None:
    settings = make_settings(tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings), raise_server_exceptions=False) as unreachable:
        token = unreachable.post(
            "/oauth/token", data={"grant_type": "authorization_code", "code": "x", "client_id": "y"}
        )
        page = unreachable.get("/oauth/authorize?client_id=x&response_type=code")
    assert token.status_code == 503
    assert token.json()["error"] == "temporarily_unavailable"
    assert token.headers["retry-after"] == "5"
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "briefly unavailable" in page.text
