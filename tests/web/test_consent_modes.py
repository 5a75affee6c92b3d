"""Consent that users are not tired of: always / remember / trusted (company tokens always ask)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import update

from grantly.store import tables as t
from tests.conftest import (
    World,
    authorize_params,
    callback_params,
    consent,
    exchange,
    sign_in,
)


def _set_consent(world: World, mode: str) -> None:
    async def work(connection):
        await connection.tx.execute(
            update(t.applications).where(t.applications.c.id == world.app.id).values(consent=mode)
        )

    world.run(work)


def _visit(client: TestClient, world: World, **extra: str):
    return client.get("/oauth/authorize", params=authorize_params(world.app, **extra))


def test_always_asks_even_after_a_grant(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    consent(client, authorize_params(world.app))
    assert _visit(client, world).status_code == 200


def test_remember_skips_the_question_for_the_same_or_narrower_scopes(
    client: TestClient, world: World
) -> None:
    _set_consent(world, "remember")
    sign_in(client, world.employee)
    assert _visit(client, world, scope="read").status_code == 200  # first time: asked
    code = callback_params(consent(client, authorize_params(world.app, scope="read write")))
    assert exchange(client, world.app, code["code"]).status_code == 200
    for scope in ("read write", "read"):
        response = _visit(client, world, scope=scope, state="again")
        params = callback_params(response)
        assert params["state"] == "again" and params["code"]


def test_remember_asks_again_once_the_client_revoked_its_tokens(
    client: TestClient, world: World
) -> None:
    """A remembered consent is the grant listed on /oauth/authorized_applications: when the
    client revokes its tokens (RFC 7009), the grant is no longer listed, and it asks again."""
    _set_consent(world, "remember")
    sign_in(client, world.employee)
    code = callback_params(consent(client, authorize_params(world.app)))["code"]
    tokens = exchange(client, world.app, code).json()
    assert "code" in callback_params(_visit(client, world, state="remembered"))
    secret = world.app.client_secret or ""
    for token in (tokens["refresh_token"], tokens["access_token"]):
        revoked = client.post(
            "/oauth/revoke", data={"token": token}, auth=(world.app.client_id, secret)
        )
        assert revoked.status_code == 200
    assert _visit(client, world).status_code == 200  # the consent page again


def test_remember_asks_again_for_wider_scopes(client: TestClient, world: World) -> None:
    _set_consent(world, "remember")
    sign_in(client, world.employee)
    consent(client, authorize_params(world.app, scope="read"))
    assert _visit(client, world, scope="read write").status_code == 200


def test_remember_is_per_user(client: TestClient, world: World) -> None:
    _set_consent(world, "remember")
    sign_in(client, world.employee)
    consent(client, authorize_params(world.app))
    client.cookies.clear()
    sign_in(client, world.admin)
    assert _visit(client, world).status_code == 200


def test_trusted_skips_the_question_for_the_companys_own_people(
    client: TestClient, world: World
) -> None:
    _set_consent(world, "trusted")
    sign_in(client, world.employee)
    code = callback_params(_visit(client, world))["code"]
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": authorize_params(world.app)["redirect_uri"],
        },
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert token.status_code == 200


def test_trusted_still_asks_people_of_other_companies(client: TestClient, world: World) -> None:
    _set_consent(world, "trusted")
    sign_in(client, world.other_admin)
    assert _visit(client, world).status_code == 200


def test_company_tokens_always_ask_an_admin(client: TestClient, world: World) -> None:
    for mode in ("trusted", "remember"):
        _set_consent(world, mode)
        client.cookies.clear()
        sign_in(client, world.admin)
        consent(client, authorize_params(world.app, resource_owner_type="company"))
        page = _visit(client, world, resource_owner_type="company")
        assert page.status_code == 200, mode
        assert "Company token" in page.text
