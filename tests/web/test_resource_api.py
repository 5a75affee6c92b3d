"""Bearer tokens at the resource API (RFC 6750), and who a token acts for."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from tests.conftest import (
    REDIRECT_URI,
    World,
    authorize_params,
    callback_params,
    consent,
    exchange,
    obtain_code,
    sign_in,
)


def test_no_token_gets_a_bearer_challenge_without_an_error_code(
    client: TestClient, world: World
) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    # RFC 6750 §3 and RFC 9449 §7.1: one challenge per scheme, neither with an error code.
    assert response.headers.get_list("www-authenticate") == [
        'Bearer realm="grantly", resource_metadata='
        '"http://127.0.0.1:8000/.well-known/oauth-protected-resource/api"',
        'DPoP algs="ES256 ES384 ES512 PS256 RS256 EdDSA"',
    ]
    assert "error" not in response.json()
    assert response.headers["cache-control"] == "no-store"


def test_an_unknown_token_is_invalid_token(client: TestClient, world: World) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer gat_nope"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_token"


def test_a_malformed_authorization_header_is_invalid_request(
    client: TestClient, world: World
) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer a b"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_the_bearer_scheme_is_case_insensitive(client: TestClient, world: World) -> None:
    token = exchange(client, world.app, obtain_code(client, world)).json()["access_token"]
    assert client.get("/api/v1/me", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_deactivating_the_user_stops_their_user_tokens_at_once(
    client: TestClient, world: World
) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world, person=world.employee)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    world.run(lambda uow: uow.accounts.deactivate(world.employee.id, int(time.time())))
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"


def test_a_company_token_keeps_working_after_its_authorizer_is_deactivated(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    code = callback_params(
        consent(client, authorize_params(world.app, resource_owner_type="company"))
    )["code"]
    token = exchange(client, world.app, code).json()["access_token"]
    world.run(lambda uow: uow.accounts.deactivate(world.admin.id, int(time.time())))
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["resource_owner_type"] == "company"
    assert "user" not in me.json()


def test_a_code_from_a_user_deactivated_before_the_exchange_is_refused(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world, person=world.employee)
    world.run(lambda uow: uow.accounts.deactivate(world.employee.id, int(time.time())))
    response = exchange(client, world.app, code)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert REDIRECT_URI  # the request was otherwise valid


def test_a_token_without_the_read_scope_gets_insufficient_scope(
    client: TestClient, world: World
) -> None:
    token = exchange(client, world.app, obtain_code(client, world, scope="write")).json()[
        "access_token"
    ]
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read"' in challenge
