"""The whole authorization-code flow through the ASGI app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import (
    World,
    authorize_params,
    callback_params,
    consent,
    exchange,
    obtain_code,
    sign_in,
)


def test_allowing_redirects_with_a_code_the_state_and_the_issuer(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    params = callback_params(consent(client, authorize_params(world.app, state="xyz 123")))
    assert params["state"] == "xyz 123"
    assert params["iss"] == "http://127.0.0.1:8000"
    assert params["code"].startswith("gac_")


def test_the_code_exchanges_for_factorials_token_response(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    response = exchange(client, world.app, code)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "created_at",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read write"
    assert response.headers["cache-control"] == "no-store"


def test_the_token_opens_api_v1_me(client: TestClient, world: World) -> None:
    token = exchange(client, world.app, obtain_code(client, world)).json()["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["user"]["email"] == world.admin.email
    assert me.json()["resource_owner_type"] == "user"
