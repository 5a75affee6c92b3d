"""Revocation (RFC 7009), introspection (RFC 7662), token info, and Factorial's token rules."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from grantly.oauth.clock import FrozenClock
from tests.conftest import (
    World,
    authorize_params,
    callback_params,
    consent,
    exchange,
    obtain_code,
    sign_in,
)


@pytest.fixture
def tokens(client: TestClient, world: World) -> dict:
    return exchange(client, world.app, obtain_code(client, world, person=world.employee)).json()


def _auth(world: World, app=None) -> tuple[str, str]:
    app = app or world.app
    return (app.client_id, app.client_secret or "")


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def _company_token(client: TestClient, world: World) -> str:
    client.cookies.clear()
    sign_in(client, world.admin)
    code = callback_params(
        consent(client, authorize_params(world.app, resource_owner_type="company"))
    )["code"]
    return exchange(client, world.app, code).json()["access_token"]


# RFC 7009


def test_revoking_an_access_token_stops_it(client: TestClient, world: World, tokens: dict) -> None:
    response = client.post(
        "/oauth/revoke",
        data={"token": tokens["access_token"], "token_type_hint": "access_token"},
        auth=_auth(world),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert _me(client, tokens["access_token"]) == 401


def test_revoking_a_refresh_token_revokes_its_access_tokens(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=_auth(world)
    )
    assert response.status_code == 200
    assert _me(client, tokens["access_token"]) == 401
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=_auth(world),
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_a_wrong_hint_still_finds_the_token(client: TestClient, world: World, tokens: dict) -> None:
    client.post(
        "/oauth/revoke",
        data={"token": tokens["access_token"], "token_type_hint": "refresh_token"},
        auth=_auth(world),
    )
    assert _me(client, tokens["access_token"]) == 401


def test_an_unknown_token_is_answered_200(client: TestClient, world: World) -> None:
    response = client.post("/oauth/revoke", data={"token": "gat_unknown"}, auth=_auth(world))
    assert response.status_code == 200


def test_another_clients_token_is_not_revoked(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.post(
        "/oauth/revoke", data={"token": tokens["access_token"]}, auth=_auth(world, world.other_app)
    )
    assert response.status_code == 200
    assert _me(client, tokens["access_token"]) == 200


def test_revocation_needs_client_authentication(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.post(
        "/oauth/revoke", data={"token": tokens["access_token"]}, auth=(world.app.client_id, "wrong")
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert _me(client, tokens["access_token"]) == 200


def test_revocation_without_a_token_is_invalid_request(client: TestClient, world: World) -> None:
    response = client.post("/oauth/revoke", data={}, auth=_auth(world))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_revocation_parameters_in_the_url_are_refused(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.post(f"/oauth/revoke?token={tokens['access_token']}", auth=_auth(world))
    assert response.status_code == 400
    assert _me(client, tokens["access_token"]) == 200


# RFC 7662


def test_introspection_describes_an_active_user_token(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=_auth(world)
    )
    assert response.status_code == 200
    facts = response.json()
    assert facts["active"] is True
    assert facts["scope"] == "read write"
    assert facts["client_id"] == world.app.client_id
    assert facts["token_type"] == "Bearer"
    assert facts["exp"] - facts["iat"] == 3600
    assert facts["sub"] == f"user:{world.employee.id}"
    assert facts["company_id"] == world.company_a
    assert facts["resource_owner_type"] == "user"


def test_introspection_of_a_company_token_has_no_exp(client: TestClient, world: World) -> None:
    token = _company_token(client, world)
    facts = client.post("/oauth/introspect", data={"token": token}, auth=_auth(world)).json()
    assert facts["active"] is True
    assert "exp" not in facts
    assert facts["resource_owner_type"] == "company"
    assert facts["sub"] == f"company:{world.company_a}"


@pytest.mark.parametrize("how", ["revoked", "expired", "unknown", "deactivated"])
def test_an_inactive_token_is_only_active_false(
    client: TestClient, world: World, tokens: dict, clock: FrozenClock, how: str
) -> None:
    token = tokens["access_token"]
    if how == "revoked":
        client.post("/oauth/revoke", data={"token": token}, auth=_auth(world))
    elif how == "expired":
        clock.advance(3600)
    elif how == "unknown":
        token = "gat_unknown"
    else:
        world.run(lambda uow: uow.accounts.deactivate(world.employee.id, int(time.time())))
    response = client.post("/oauth/introspect", data={"token": token}, auth=_auth(world))
    assert response.json() == {"active": False}


def test_another_companys_client_sees_the_token_as_inactive(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.post(
        "/oauth/introspect",
        data={"token": tokens["access_token"]},
        auth=_auth(world, world.other_app),
    )
    assert response.json() == {"active": False}


def test_introspection_needs_client_authentication(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.post("/oauth/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_refresh_token_can_be_introspected(
    client: TestClient, world: World, tokens: dict
) -> None:
    facts = client.post(
        "/oauth/introspect",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=_auth(world),
    ).json()
    assert facts["active"] is True
    assert facts["token_use"] == "refresh_token"


# Token info (Doorkeeper)


def test_token_info_describes_the_bearer_token(
    client: TestClient, world: World, tokens: dict
) -> None:
    response = client.get(
        "/oauth/token/info", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200
    info = response.json()
    assert info["resource_owner_id"] == world.employee.id
    assert info["scope"] == ["read", "write"]
    assert info["expires_in"] == 3600
    assert info["application"] == {"uid": world.app.client_id}


def test_token_info_without_a_token_is_401(client: TestClient, world: World) -> None:
    response = client.get("/oauth/token/info")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


# Factorial's rules


def test_a_new_company_token_revokes_the_previous_one(client: TestClient, world: World) -> None:
    first = _company_token(client, world)
    second = _company_token(client, world)
    assert _me(client, first) == 401
    assert _me(client, second) == 200


def test_company_tokens_of_different_companies_coexist(client: TestClient, world: World) -> None:
    ours = _company_token(client, world)
    client.cookies.clear()
    sign_in(client, world.other_admin)
    code = callback_params(
        consent(client, authorize_params(world.app, resource_owner_type="company"))
    )["code"]
    theirs = exchange(client, world.app, code).json()["access_token"]
    assert _me(client, ours) == 200 and _me(client, theirs) == 200


def test_a_per_application_lifetime_is_used(client: TestClient, world: World) -> None:
    from grantly.store import tables as t

    async def shorten(connection):
        from sqlalchemy import update

        await connection.tx.execute(
            update(t.applications)
            .where(t.applications.c.id == world.app.id)
            .values(access_token_lifetime=600)
        )

    world.run(shorten)
    body = exchange(client, world.app, obtain_code(client, world)).json()
    assert body["expires_in"] == 600
