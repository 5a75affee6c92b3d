"""The client credentials grant (RFC 6749 §4.4): opt-in per confidential application, a token
for its company, an hour, no refresh token, DPoP-bindable, audited."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.oauth.clock import FrozenClock
from grantly.oauth.registration import RegistrationError, validate
from grantly.store.audit import AuditQuery
from tests.conftest import World, count_rows
from tests.dpop_tools import new_key, proof
from tests.security_tools import configure

ISSUER = "http://127.0.0.1:8000"
CREDENTIALS = "/api/2026-10-01/resources/api_public/credentials"


def _request(http: TestClient, world: World, dpop: str | None = None, **extra: str) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_id": world.app.client_id,
        "client_secret": world.app.client_secret or "",
        **extra,
    }
    return http.post("/oauth/token", data=data, headers={"DPoP": dpop} if dpop else {})


def test_it_is_refused_unless_the_applications_admins_allowed_it(
    client: TestClient, world: World
) -> None:
    response = _request(client, world)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def test_a_wrong_secret_is_invalid_client_first(client: TestClient, world: World) -> None:
    configure(world, world.app, grant_types=["client_credentials"])
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": world.app.client_id,
            "client_secret": "wrong",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_an_allowed_application_gets_an_hour_long_company_token(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    configure(world, world.app, grant_types=["client_credentials"])
    response = _request(client, world)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    assert body["scope"] == "read write"
    api = client.get(CREDENTIALS, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert api.status_code == 200, api.text
    credential = api.json()["data"][0]
    assert credential["company_id"] == world.company_a
    assert credential["employee_id"] is None
    clock.advance(3600)
    expired = client.get(CREDENTIALS, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert expired.status_code == 401


def test_a_narrower_scope_is_granted_and_a_wider_one_refused(
    client: TestClient, world: World
) -> None:
    configure(world, world.app, grant_types=["client_credentials"])
    assert _request(client, world, scope="read").json()["scope"] == "read"
    refused = _request(client, world, scope="read admin")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_scope"
    target = _request(client, world, resource="https://elsewhere.example/api")
    assert target.json()["error"] == "invalid_target"
    assert _request(client, world, resource=ISSUER + "/mcp").status_code == 200


def test_it_replaces_no_company_token_and_is_audited(client: TestClient, world: World) -> None:
    configure(world, world.app, grant_types=["client_credentials"])
    first = _request(client, world).json()["access_token"]
    second = _request(client, world).json()["access_token"]
    for token in (first, second):
        ok = client.get(CREDENTIALS, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200
    events = world.run(lambda uow: uow.audit.batch(world.company_a, AuditQuery(), None, 50))
    issued = [e for e in events if e.event == "token.issued"]
    assert len(issued) == 2
    assert all(e.actor_user_id is None for e in issued)
    assert all(e.detail["resource_owner_type"] == "company" for e in issued)
    assert all(e.detail["grant_type"] == "client_credentials" for e in issued)


def test_it_can_be_bound_to_a_dpop_key(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    configure(world, world.app, grant_types=["client_credentials"])
    key = new_key()
    body = _request(
        client, world, proof(key, "POST", ISSUER + "/oauth/token", iat=clock.now())
    ).json()
    assert body["token_type"] == "DPoP"
    token = body["access_token"]
    assert client.get(CREDENTIALS, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    bound = client.get(
        CREDENTIALS,
        headers={
            "Authorization": f"DPoP {token}",
            "DPoP": proof(key, "GET", ISSUER + CREDENTIALS, token=token, iat=clock.now()),
        },
    )
    assert bound.status_code == 200, bound.text


def test_a_public_application_cannot_be_allowed_it() -> None:
    with pytest.raises(RegistrationError) as raised:
        validate(
            name="Mobile",
            redirect_uris=["http://127.0.0.1/cb"],
            confidential=False,
            scopes=["read"],
            server_scopes=("read", "write"),
            security={"grant_types": ["client_credentials"]},
        )
    assert "confidential applications only" in str(raised.value.problems)


def test_its_tokens_are_counted_as_access_tokens(client: TestClient, world: World) -> None:
    configure(world, world.app, grant_types=["client_credentials"])
    before = count_rows(world.settings, "access_tokens")
    _request(client, world)
    assert count_rows(world.settings, "access_tokens") == before + 1
    assert count_rows(world.settings, "refresh_tokens") == 0
