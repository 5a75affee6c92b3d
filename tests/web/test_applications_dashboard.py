"""The repository of OAuth applications, /oauth/applications (admins only)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import (
    World,
    callback_params,
    csrf_of,
    exchange,
    hidden_fields,
    obtain_code,
    sign_in,
)


def _create(client: TestClient, **fields: object) -> object:
    page = client.get("/oauth/applications/new")
    data: dict[str, object] = {
        "csrf_token": csrf_of(page.text),
        "name": "Payroll sync",
        "redirect_uris": "https://payroll.example/cb\nhttp://localhost:3000/cb",
        "confidential": "on",
        "scopes": ["read", "write"],
    }
    data.update(fields)
    return client.post("/oauth/applications", data={k: v for k, v in data.items() if v is not None})


def _secret(page: str) -> str:
    match = re.search(r'id="client-secret">([^<]+)<', page)
    assert match, "no secret on the page"
    return match.group(1)


def _client_id(page: str) -> str:
    match = re.search(r'id="client-id">([^<]+)<', page)
    assert match
    return match.group(1)


def _save_and_revoke(client: TestClient, app_id: int, fields: dict[str, object]) -> None:
    """Post the edit form, then confirm the warning of what saving revokes."""
    warned = client.post(f"/oauth/applications/{app_id}", data=fields)
    assert warned.status_code == 200 and 'id="revoke-warning"' in warned.text
    saved = client.post(
        f"/oauth/applications/{app_id}", data={**fields, **hidden_fields(warned.text)}
    )
    assert saved.status_code == 303, saved.text


def test_a_visitor_is_sent_to_sign_in(client: TestClient, world: World) -> None:
    response = client.get("/oauth/applications")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Foauth%2Fapplications"


def test_a_non_admin_gets_a_403_page_that_explains_why(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    for path in (
        "/oauth/applications",
        "/oauth/applications/new",
        f"/oauth/applications/{world.app.id}",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Only admins manage OAuth applications" in response.text
        assert world.app.client_id not in response.text


def test_the_list_shows_only_the_companys_applications(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get("/oauth/applications")
    assert page.status_code == 200
    assert world.app.client_id in page.text
    assert world.other_app.client_id not in page.text


def test_another_companys_application_is_not_found(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    for path in (
        f"/oauth/applications/{world.other_app.id}",
        f"/oauth/applications/{world.other_app.id}/edit",
        f"/oauth/applications/{world.other_app.id}/authorize",
    ):
        assert client.get(path).status_code == 404, path
    page = client.get("/oauth/applications")
    deleted = client.post(
        f"/oauth/applications/{world.other_app.id}/delete", data={"csrf_token": csrf_of(page.text)}
    )
    assert deleted.status_code == 404


def test_creating_shows_the_secret_once_and_it_works(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    created = _create(client)
    assert created.status_code == 201
    secret = _secret(created.text)
    client_id = _client_id(created.text)
    assert secret.startswith("gcs_")
    assert created.headers["cache-control"] == "no-store"
    app_id = re.search(r"/oauth/applications/(\d+)/edit", created.text).group(1)
    again = client.get(f"/oauth/applications/{app_id}")
    assert secret not in again.text
    assert client_id in again.text
    # The secret authenticates the client at the token endpoint.
    params = {
        "client_id": client_id,
        "redirect_uri": "https://payroll.example/cb",
        "response_type": "code",
    }
    page = client.get("/oauth/authorize", params=params)
    code = callback_params(
        client.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    )["code"]
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uri": "https://payroll.example/cb",
        },
    )
    assert token.status_code == 200


def test_the_show_page_offers_ready_authorize_urls(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get(f"/oauth/applications/{world.app.id}")
    assert (
        f"/oauth/authorize?client_id={world.app.client_id}&amp;redirect_uri="
        "https%3A%2F%2Fclient.example%2Fcallback&amp;response_type=code"
    ) in page.text
    assert "resource_owner_type=company" in page.text


def test_invalid_settings_are_listed_and_nothing_is_created(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    response = _create(
        client,
        name=" ",
        redirect_uris="http://evil.example/cb\nhttps://ok.example/#frag",
        scopes=["read", "admin"],
    )
    assert response.status_code == 422
    assert "the name cannot be empty" in response.text
    assert "only https is allowed" in response.text
    assert "fragment" in response.text
    assert "unknown scope" in response.text
    listing = client.get("/oauth/applications")
    assert listing.text.count("<tr>") == 2  # header row + the seeded application


def test_the_out_of_band_redirect_uri_is_accepted_and_shows_the_code(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    created = _create(client, redirect_uris="urn:ietf:wg:oauth:2.0:oob")
    assert created.status_code == 201
    client_id, secret = _client_id(created.text), _secret(created.text)
    page = client.get("/oauth/authorize", params={"client_id": client_id, "response_type": "code"})
    shown = client.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    assert shown.status_code == 200
    code = re.search(r'id="authorization-code">([^<]+)<', shown.text).group(1)
    assert "curl -X POST" in shown.text
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
            "client_secret": secret,
        },
    )
    assert token.status_code == 200, token.text


def test_the_authorize_button_ends_on_the_code_page_with_a_curl(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    consent = client.get(f"/oauth/applications/{world.app.id}/authorize")
    assert consent.status_code == 200
    assert "User token" in consent.text
    assert "resource_owner_type" in consent.text  # carried as user
    assert hidden_fields(consent.text)["resource_owner_type"] == "user"
    shown = client.post(
        "/oauth/authorize", data={**hidden_fields(consent.text), "decision": "allow"}
    )
    assert shown.status_code == 200
    code = re.search(r'id="authorization-code">([^<]+)<', shown.text).group(1)
    assert "--data-urlencode grant_type=authorization_code" in shown.text
    assert "client_secret=&lt;YOUR_CLIENT_SECRET&gt;" in shown.text
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert exchange(client, world.app, code).status_code == 200


def test_editing_changes_the_application(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    form = client.get(f"/oauth/applications/{world.app.id}/edit")
    response = client.post(
        f"/oauth/applications/{world.app.id}",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "Renamed",
            "confidential": "on",
            "redirect_uris": "https://new.example/cb",
            "scopes": ["read"],
        },
    )
    assert response.status_code == 303
    page = client.get(f"/oauth/applications/{world.app.id}")
    assert "Renamed" in page.text and "https://new.example/cb" in page.text
    assert "https://client.example/callback" not in page.text


def test_regenerating_the_secret_retires_the_old_one(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    page = client.get(f"/oauth/applications/{world.app.id}")
    regenerated = client.post(
        f"/oauth/applications/{world.app.id}/secret",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    assert regenerated.status_code == 200
    new_secret = _secret(regenerated.text)
    assert exchange(client, world.app, code).json()["error"] == "invalid_client"
    assert exchange(client, world.app, code, client_secret=new_secret).status_code == 200


def test_deleting_an_application_revokes_its_tokens(client: TestClient, world: World) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    page = client.get(f"/oauth/applications/{world.app.id}")
    deleted = client.post(
        f"/oauth/applications/{world.app.id}/delete",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    assert deleted.status_code == 303
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 401
    assert client.get(f"/oauth/applications/{world.app.id}").status_code == 404


def test_dashboard_forms_need_the_csrf_token(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    for path in (
        "/oauth/applications",
        f"/oauth/applications/{world.app.id}",
        f"/oauth/applications/{world.app.id}/delete",
        f"/oauth/applications/{world.app.id}/secret",
    ):
        response = client.post(
            path,
            data={"csrf_token": "forged", "name": "x", "redirect_uris": "https://x.example/cb"},
        )
        assert response.status_code == 403, path
    assert client.get(f"/oauth/applications/{world.app.id}").status_code == 200


def test_changing_an_applications_scopes_revokes_its_tokens(
    client: TestClient, world: World
) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    form = client.get(f"/oauth/applications/{world.app.id}/edit")
    _save_and_revoke(
        client,
        world.app.id,
        {
            "csrf_token": csrf_of(form.text),
            "name": "Acme integration",
            "confidential": "on",
            "redirect_uris": "https://client.example/callback",
            "scopes": ["read"],
        },
    )
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 401
    refresh = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(world.app.client_id, world.app.client_secret or ""),
    )
    assert refresh.json()["error"] == "invalid_grant"


def test_renaming_an_application_keeps_its_tokens(client: TestClient, world: World) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    form = client.get(f"/oauth/applications/{world.app.id}/edit")
    client.post(
        f"/oauth/applications/{world.app.id}",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "New name",
            "confidential": "on",
            "redirect_uris": "https://client.example/callback",
            "scopes": ["read", "write"],
        },
    )
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200


def test_turning_an_application_public_revokes_its_tokens(client: TestClient, world: World) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    form = client.get(f"/oauth/applications/{world.app.id}/edit")
    _save_and_revoke(
        client,
        world.app.id,
        {
            "csrf_token": csrf_of(form.text),
            "name": "Acme integration",
            "redirect_uris": "https://client.example/callback",
            "scopes": ["read", "write"],
        },
    )
    refresh = client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": world.app.client_id,
        },
    )
    assert refresh.status_code == 400
    assert refresh.json()["error"] == "invalid_grant"


def test_an_application_id_beyond_any_database_is_not_found(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    for app_id in (2**31, 2**63, 10**30):
        assert client.get(f"/oauth/applications/{app_id}").status_code == 404


def test_the_token_security_settings_are_chosen_on_the_dashboard(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    form = client.get("/oauth/applications/new").text
    for field in ("access_token_format", "dpop", "require_par", "client_credentials", "jwks_uri"):
        assert f'name="{field}"' in form
    created = _create(
        client,
        access_token_format="jwt",
        dpop="optional",
        client_credentials="on",
        require_par="on",
    )
    assert created.status_code == 201, created.text
    assert "JWT (RFC 9068)" in created.text
    assert "client_credentials" in created.text
    assert "pushed authorization requests required" in created.text
    client_id, secret = _client_id(created.text), _secret(created.text)
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert token.status_code == 200, token.text
    assert token.json()["access_token"].count(".") == 2  # a JWT
    refused = _create(client, name="Keys", auth_method="private_key_jwt")
    assert refused.status_code == 422
    assert "needs the client&#39;s public keys" in refused.text
