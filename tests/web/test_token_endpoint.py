"""POST /oauth/token through the ASGI app (RFC 6749 §2.3, §3.2, §4.1.3, §5, §6)."""

from __future__ import annotations

import base64
import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.app import create_app
from grantly.oauth.clock import FrozenClock
from grantly.store import tables as t
from tests.conftest import (
    REDIRECT_URI,
    World,
    authorize_params,
    callback_params,
    consent,
    exchange,
    make_settings,
    obtain_code,
    run_sql,
)


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def _assert_oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    return body


def test_client_secret_basic_authenticates(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_parameters_in_the_query_string_are_accepted_as_factorials_guides_show(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world)
    response = client.post(
        "/oauth/token",
        params={
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret,
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": REDIRECT_URI,
        },
    )
    assert response.status_code == 200
    assert response.json()["refresh_token"]


def test_a_wrong_secret_is_invalid_client_with_401_and_www_authenticate(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world)
    response = exchange(client, world.app, code, client_secret="gcs_wrong")
    _assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    # The code was not spent by a request that failed client authentication.
    assert exchange(client, world.app, code).status_code == 200


def test_an_unknown_client_is_invalid_client(client: TestClient, world: World) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "x"},
        headers=_basic("unknown", "secret"),
    )
    _assert_oauth_error(response, 401, "invalid_client")


def test_malformed_basic_credentials_are_invalid_client(client: TestClient, world: World) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "x"},
        headers={"Authorization": "Basic %%%not-base64"},
    )
    _assert_oauth_error(response, 401, "invalid_client")


def test_two_authentication_methods_at_once_are_refused(client: TestClient, world: World) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "x", "client_secret": "y"},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    _assert_oauth_error(response, 400, "invalid_request")


def test_a_missing_grant_type_is_invalid_request(client: TestClient, world: World) -> None:
    response = client.post("/oauth/token", data={"code": "x"})
    body = _assert_oauth_error(response, 400, "invalid_request")
    assert "grant_type" in body["error_description"]


def test_an_unknown_grant_type_is_unsupported_grant_type(client: TestClient, world: World) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    _assert_oauth_error(response, 400, "unsupported_grant_type")


def test_a_repeated_parameter_is_invalid_request(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    response = client.post(
        "/oauth/token",
        content=f"grant_type=authorization_code&code={code}&code={code}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **_basic(world.app.client_id, world.app.client_secret or ""),
        },
    )
    body = _assert_oauth_error(response, 400, "invalid_request")
    assert "repeated" in body["error_description"]


def test_a_parameter_in_both_query_and_body_counts_as_repeated(
    client: TestClient, world: World
) -> None:
    response = client.post(
        "/oauth/token?grant_type=authorization_code",
        data={"grant_type": "refresh_token"},
    )
    _assert_oauth_error(response, 400, "invalid_request")


def test_a_json_body_is_refused_with_a_clear_message(client: TestClient, world: World) -> None:
    response = client.post("/oauth/token", json={"grant_type": "authorization_code"})
    body = _assert_oauth_error(response, 400, "invalid_request")
    assert "x-www-form-urlencoded" in body["error_description"]


def test_an_oversized_body_is_refused_with_413(client: TestClient, world: World) -> None:
    response = client.post("/oauth/token", data={"grant_type": "x" * 100_000})
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


def test_an_oversized_parameter_is_invalid_request(client: TestClient, world: World) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": "c" * 3000},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    body = _assert_oauth_error(response, 400, "invalid_request")
    assert "too long" in body["error_description"]


def test_a_reused_code_fails_and_revokes_the_tokens_issued_from_it(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world)
    first = exchange(client, world.app, code).json()
    second = exchange(client, world.app, code)
    _assert_oauth_error(second, 400, "invalid_grant")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {first['access_token']}"})
    assert me.status_code == 401
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    _assert_oauth_error(refresh, 400, "invalid_grant")


def test_an_expired_code_is_invalid_grant(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    code = obtain_code(client, world)
    clock.advance(601)
    body = _assert_oauth_error(exchange(client, world.app, code), 400, "invalid_grant")
    assert "expired" in body["error_description"]


def test_a_code_issued_to_another_client_is_invalid_grant(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    response = exchange(client, world.other_app, code)
    _assert_oauth_error(response, 400, "invalid_grant")


def test_a_different_redirect_uri_than_authorized_is_invalid_grant(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world)
    response = exchange(client, world.app, code, redirect_uri="http://127.0.0.1:8765/callback")
    _assert_oauth_error(response, 400, "invalid_grant")


def test_a_missing_redirect_uri_is_invalid_grant_when_the_request_had_one(
    client: TestClient, world: World
) -> None:
    code = obtain_code(client, world)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    _assert_oauth_error(response, 400, "invalid_grant")


def test_an_unknown_code_is_invalid_grant(client: TestClient, world: World) -> None:
    _assert_oauth_error(exchange(client, world.app, "gac_nope"), 400, "invalid_grant")


def test_refresh_rotates_the_refresh_token(client: TestClient, world: World) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    auth = _basic(world.app.client_id, world.app.client_secret or "")
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=auth,
    )
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]
    assert new["expires_in"] == 3600
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert me.status_code == 200


def test_refresh_may_narrow_the_scope_but_not_widen_it(client: TestClient, world: World) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world, scope="read")).json()
    auth = _basic(world.app.client_id, world.app.client_secret or "")
    wider = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "read write",
        },
        headers=auth,
    )
    _assert_oauth_error(wider, 400, "invalid_scope")


def test_an_expired_refresh_token_is_invalid_grant(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    clock.advance(7 * 24 * 3600 + 1)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    _assert_oauth_error(response, 400, "invalid_grant")


def test_a_user_token_expires_after_an_hour(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = exchange(client, world.app, obtain_code(client, world)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    clock.advance(3599)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    clock.advance(1)
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_refresh_retried_within_the_configured_grace_period_succeeds_and_is_audited(
    world: World, tmp_path
) -> None:
    """``GRANTLY_REFRESH_TOKEN_GRACE_PERIOD`` (RFC 9700 §4.14.2): a client that lost the
    response to a refresh may present the same refresh token again, and the audit trail says
    so; after the period the same retry revokes the grant."""
    settings = make_settings(
        tmp_path, database_url=world.settings.database_url, refresh_token_grace_period=60
    )
    with TestClient(
        create_app(settings), base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as http:
        tokens = exchange(http, world.app, obtain_code(http, world)).json()
        auth = (world.app.client_id, world.app.client_secret or "")
        body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        first = http.post("/oauth/token", data=body, auth=auth)
        retried = http.post("/oauth/token", data=body, auth=auth)
        assert (first.status_code, retried.status_code) == (200, 200), retried.text
        assert retried.json()["refresh_token"] != first.json()["refresh_token"]

    async def details(connection):
        rows = await connection.tx.rows(
            select(t.audit_events.c.detail).where(t.audit_events.c.event == "token.refreshed")
        )
        return [json.loads(row.detail) for row in rows]

    assert [d.get("grace_retry") for d in world.run(details)] == [None, True]


def test_a_deactivated_persons_code_and_refresh_token_are_invalid_grant(
    client: TestClient, world: World
) -> None:
    """The SQL store reads the person's ``active`` with the code and with the refresh token
    (one statement each): a person deactivated since can use neither. (Deactivating also
    revokes them; the flag alone is set here, so that it is the flag that refuses them.)"""

    tokens = exchange(client, world.app, obtain_code(client, world, world.employee)).json()
    code = callback_params(consent(client, authorize_params(world.app)))["code"]
    run_sql(
        world.settings.async_database_url,
        [f"UPDATE users SET active = false WHERE id = {world.employee.id}"],
    )

    refused = exchange(client, world.app, code)
    assert (
        "no longer active"
        in _assert_oauth_error(refused, 400, "invalid_grant")["error_description"]
    )
    refreshed = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=_basic(world.app.client_id, world.app.client_secret or ""),
    )
    assert (
        "no longer active"
        in _assert_oauth_error(refreshed, 400, "invalid_grant")["error_description"]
    )
