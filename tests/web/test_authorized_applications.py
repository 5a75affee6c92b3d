"""/oauth/authorized_applications and the company tokens on an application's page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import (
    World,
    csrf_of,
    grant_as,
    sign_in,
)


def _revoke_forms(page: str) -> list[str]:
    return re.findall(r'action="(/oauth/authorized_applications/\d+/revoke)"', page)


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_user_sees_the_applications_they_authorized(client: TestClient, world: World) -> None:
    grant_as(client, world, world.employee, scope="read")
    page = client.get("/oauth/authorized_applications")
    assert page.status_code == 200
    assert "Acme integration" in page.text
    assert "User token" in page.text
    assert len(_revoke_forms(page.text)) == 1
    assert "Company tokens" not in page.text  # not an admin


def test_revoking_an_authorization_stops_its_tokens_at_once(
    client: TestClient, world: World
) -> None:
    tokens = grant_as(client, world, world.employee)
    page = client.get("/oauth/authorized_applications")
    response = client.post(
        _revoke_forms(page.text)[0], data={"csrf_token": csrf_of(page.text), "confirmed": "yes"}
    )
    assert response.status_code == 303
    assert _me(client, tokens["access_token"]) == 401
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert refresh.json()["error"] == "invalid_grant"
    assert _revoke_forms(client.get("/oauth/authorized_applications").text) == []


def test_nobody_revokes_someone_elses_authorization(client: TestClient, world: World) -> None:
    tokens = grant_as(client, world, world.employee)
    page = client.get("/oauth/authorized_applications")
    action = _revoke_forms(page.text)[0]
    client.cookies.clear()
    sign_in(client, world.other_admin)
    other_page = client.get("/oauth/authorized_applications")
    response = client.post(action, data={"csrf_token": csrf_of(other_page.text)})
    assert response.status_code == 404
    assert _me(client, tokens["access_token"]) == 200


def test_an_admin_sees_and_revokes_the_company_tokens(client: TestClient, world: World) -> None:
    token = grant_as(client, world, world.admin, resource_owner_type="company")["access_token"]
    page = client.get("/oauth/authorized_applications")
    assert "Company tokens" in page.text and world.admin.email in page.text
    client.post(
        _revoke_forms(page.text)[0], data={"csrf_token": csrf_of(page.text), "confirmed": "yes"}
    )
    assert _me(client, token) == 401


def test_the_application_page_lists_and_revokes_company_tokens_of_any_company(
    client: TestClient, world: World
) -> None:
    theirs = grant_as(client, world, world.other_admin, resource_owner_type="company")[
        "access_token"
    ]
    client.cookies.clear()
    sign_in(client, world.admin)
    page = client.get(f"/oauth/applications/{world.app.id}")
    assert "Globex" in page.text
    response = client.post(
        _revoke_forms(page.text)[0],
        data={
            "csrf_token": csrf_of(page.text),
            "next": f"/oauth/applications/{world.app.id}",
            "confirmed": "yes",
        },
    )
    assert response.headers["location"] == f"/oauth/applications/{world.app.id}"
    assert _me(client, theirs) == 401


def test_revoking_needs_the_csrf_token(client: TestClient, world: World) -> None:
    tokens = grant_as(client, world, world.employee)
    page = client.get("/oauth/authorized_applications")
    assert client.post(_revoke_forms(page.text)[0], data={"csrf_token": "x"}).status_code == 403
    assert _me(client, tokens["access_token"]) == 200
