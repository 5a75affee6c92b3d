"""Lists that tell the truth: /oauth/authorized_applications and an application's page list a
grant only while it has a token that works or can mint one, and a remembered consent stops
skipping the question once its grant was ended by anything but time.

Every way a grant ends is here, for user grants (listed to the person, remembered by
"remember" consent) and company grants (listed to the company's admins and on the
application's page): a change of the application's scopes or client type, a replayed code, a
reused refresh token, a revocation by a person, by the client (RFC 7009) or by expiry, and the
person's deactivation.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from grantly.oauth.clock import FrozenClock
from grantly.store import tables as t
from tests.conftest import (
    REDIRECT_URI,
    Person,
    World,
    authorize_params,
    callback_params,
    consent,
    csrf_of,
    exchange,
    hidden_fields,
    sign_in,
)
from tests.security.conftest import basic, me, refresh

APP = "Acme integration"


def _remember(world: World) -> None:
    async def work(uow: Any) -> None:
        await uow.tx.execute(
            update(t.applications)
            .where(t.applications.c.id == world.app.id)
            .values(consent="remember")
        )

    world.run(work)


def _as(client: TestClient, person: Person) -> None:
    client.cookies.clear()
    sign_in(client, person)


def _code(client: TestClient, world: World, owner: str) -> str:
    person = world.employee if owner == "user" else world.admin
    _as(client, person)
    extra = {"resource_owner_type": "company"} if owner == "company" else {}
    return callback_params(
        consent(client, authorize_params(world.app, scope="read write", **extra))
    )["code"]


def _grant(client: TestClient, world: World, owner: str) -> dict[str, Any]:
    response = exchange(client, world.app, _code(client, world, owner))
    assert response.status_code == 200, response.text
    return dict(response.json())


def _revoke_forms(page: str) -> list[str]:
    return re.findall(r'action="(/oauth/authorized_applications/\d+/revoke)"', page)


def _listed(client: TestClient, world: World, owner: str) -> list[str]:
    """The grants of ``world.app`` the grantor sees: the person's own, or the company tokens
    (on /oauth/authorized_applications and on the application's page, which must agree)."""
    if owner == "user":
        _as(client, world.employee)
        page = client.get("/oauth/authorized_applications").text
        return _revoke_forms(page) if APP in page else []
    _as(client, world.admin)
    page = client.get("/oauth/authorized_applications").text
    company_part = page.split("<h2>Company tokens</h2>", 1)[1]
    on_list = _revoke_forms(company_part)
    application_page = client.get(f"/oauth/applications/{world.app.id}").text
    on_application = _revoke_forms(application_page.split("<h2>Company tokens</h2>", 1)[1])
    assert on_list == on_application
    return on_list


def _asks_again(client: TestClient, world: World) -> bool:
    """Whether "remember" consent asks the employee again (200: the consent page)."""
    _as(client, world.employee)
    params = authorize_params(world.app, scope="read", state="s")
    response = client.get("/oauth/authorize", params=params)
    assert response.status_code in (200, 302), response.text
    return response.status_code == 200


def _edit(client: TestClient, world: World, *, scopes: list[str], confidential: bool) -> None:
    _as(client, world.admin)
    page = client.get(f"/oauth/applications/{world.app.id}/edit")
    fields: dict[str, Any] = {
        **hidden_fields(page.text),
        "name": APP,
        "redirect_uris": f"{REDIRECT_URI}\nhttp://127.0.0.1:8765/callback",
        "scopes": scopes,
        # Public applications ask every time.
        "consent": "remember" if confidential else "always",
    }
    if confidential:
        fields["confidential"] = "on"
    response = client.post(f"/oauth/applications/{world.app.id}", data=fields)
    if 'name="confirmed"' in response.text:  # the warning of what saving revokes
        response = client.post(
            f"/oauth/applications/{world.app.id}", data={**fields, **hidden_fields(response.text)}
        )
    assert response.status_code in (200, 303), response.text


OWNERS = pytest.mark.parametrize("owner", ["user", "company"])


@OWNERS
def test_a_grant_is_listed_while_it_works(client: TestClient, world: World, owner: str) -> None:
    _remember(world)
    _grant(client, world, owner)
    assert len(_listed(client, world, owner)) == 1


@OWNERS
@pytest.mark.parametrize(
    "change",
    [
        {"scopes": ["read"], "confidential": True},
        {"scopes": ["read", "write"], "confidential": False},
    ],
    ids=["scopes", "confidentiality"],
)
def test_changing_the_application_ends_its_grants(
    client: TestClient, world: World, owner: str, change: dict[str, Any]
) -> None:
    _remember(world)
    tokens = _grant(client, world, owner)
    _edit(client, world, **change)
    assert me(client, tokens["access_token"]) == 401
    assert _listed(client, world, owner) == []
    if change["confidential"]:  # a public client asks every time (and needs PKCE)
        assert _asks_again(client, world)


@OWNERS
def test_a_replayed_code_ends_its_grant(client: TestClient, world: World, owner: str) -> None:
    _remember(world)
    code = _code(client, world, owner)
    tokens = exchange(client, world.app, code).json()
    assert exchange(client, world.app, code).json()["error"] == "invalid_grant"
    assert me(client, tokens["access_token"]) == 401
    assert _listed(client, world, owner) == []
    assert _asks_again(client, world)


def test_a_replay_leaves_another_authorization_of_the_grant_listed(
    client: TestClient, world: World
) -> None:
    """A replay ends the family of its code, not the person's other authorization of the
    application: that still works, so it is still listed and its consent still stands."""
    _remember(world)
    other = _grant(client, world, "user")
    remembered = client.get("/oauth/authorize", params=authorize_params(world.app))
    code = callback_params(remembered)["code"]
    exchange(client, world.app, code)
    assert exchange(client, world.app, code).json()["error"] == "invalid_grant"
    assert me(client, other["access_token"]) == 200
    assert len(_listed(client, world, "user")) == 1
    assert not _asks_again(client, world)


def test_a_reused_refresh_token_ends_its_grant(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    _remember(world)
    stolen = _grant(client, world, "user")
    current = refresh(client, world.app, stolen["refresh_token"]).json()
    clock.advance(600)
    assert refresh(client, world.app, stolen["refresh_token"]).json()["error"] == "invalid_grant"
    assert me(client, current["access_token"]) == 401
    assert _listed(client, world, "user") == []
    assert _asks_again(client, world)


@OWNERS
def test_a_grant_revoked_from_the_list_is_gone_everywhere(
    client: TestClient, world: World, owner: str
) -> None:
    _remember(world)
    tokens = _grant(client, world, owner)
    _as(client, world.employee if owner == "user" else world.admin)
    page = client.get("/oauth/authorized_applications").text
    client.post(_revoke_forms(page)[-1], data={"csrf_token": csrf_of(page), "confirmed": "yes"})
    assert me(client, tokens["access_token"]) == 401
    assert _listed(client, world, owner) == []
    assert _asks_again(client, world)


def test_a_company_grant_revoked_from_the_application_page_is_gone_everywhere(
    client: TestClient, world: World
) -> None:
    tokens = _grant(client, world, "company")
    page = client.get(f"/oauth/applications/{world.app.id}").text
    client.post(_revoke_forms(page)[0], data={"csrf_token": csrf_of(page), "confirmed": "yes"})
    assert me(client, tokens["access_token"]) == 401
    assert _listed(client, world, "company") == []


@OWNERS
def test_a_grant_the_client_revoked_is_not_listed(
    client: TestClient, world: World, owner: str
) -> None:
    """RFC 7009: revoking the refresh token ends the user grant, revoking the access token
    the company grant (it has no other)."""
    tokens = _grant(client, world, owner)
    token = tokens.get("refresh_token") or tokens["access_token"]
    response = client.post("/oauth/revoke", data={"token": token}, auth=basic(world.app))
    assert response.status_code == 200
    assert me(client, tokens["access_token"]) == 401
    assert _listed(client, world, owner) == []


def test_a_user_grant_is_listed_until_its_refresh_token_expires(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    _grant(client, world, "user")
    clock.advance(3 * 24 * 3600)  # the access token expired; the refresh token still mints
    assert len(_listed(client, world, "user")) == 1
    clock.advance(5 * 24 * 3600)
    assert _listed(client, world, "user") == []


def test_a_company_grant_never_expires(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    _grant(client, world, "company")
    clock.advance(400 * 24 * 3600)
    assert len(_listed(client, world, "company")) == 1


def _deactivate_and_activate(world: World, person: Person) -> None:
    async def work(uow: Any) -> None:
        await uow.accounts.deactivate(person.id, int(time.time()))
        await uow.accounts.activate(person.id, int(time.time()))

    world.run(work)


def test_a_deactivated_persons_grants_are_over_when_they_come_back(
    client: TestClient, world: World
) -> None:
    _remember(world)
    tokens = _grant(client, world, "user")
    _deactivate_and_activate(world, world.employee)
    assert me(client, tokens["access_token"]) == 401
    assert _listed(client, world, "user") == []
    assert _asks_again(client, world)


def test_a_company_grant_outlives_the_deactivation_of_the_admin_who_gave_it(
    client: TestClient, world: World
) -> None:
    """Company tokens act for the company (Factorial's rule): still working, still listed."""
    tokens = _grant(client, world, "company")
    _deactivate_and_activate(world, world.admin)
    assert me(client, tokens["access_token"]) == 200
    assert len(_listed(client, world, "company")) == 1
