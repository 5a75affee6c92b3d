"""Resource indicators (RFC 8707) through the endpoints, on the suite's database.

The authorization endpoint sends ``invalid_target`` back to the trusted redirect URI (§2.1),
the token endpoint answers it as JSON (§2.2). A grant's audience is what its tokens open:
``/api`` refuses a token issued for another resource (RFC 6750 §3.1 ``invalid_token``), a
registered resource server introspects only the tokens issued for it (RFC 7662), and an
application's introspection tells ``aud``. Without ``resource`` nothing changes.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from grantly.oauth.models import ResourceServer
from grantly.oauth.secrets import (
    RESOURCE_SERVER_SECRET_PREFIX,
    digest,
    new_resource_server_client_id,
    new_secret,
)
from tests.conftest import (
    REDIRECT_URI,
    World,
    authorize_params,
    callback_params,
    csrf_of,
    exchange,
    obtain_code,
    sign_in,
)

ISSUER = "http://127.0.0.1:8000"
OWN_API = f"{ISSUER}/api"
REPORTS = "https://reports.example/api"
FILES = "https://files.example"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def register(world: World, uri: str, scopes: tuple[str, ...] = ()) -> tuple[ResourceServer, str]:
    """A resource server registered as ``grantly resources create`` does; (it, its secret)."""
    secret = new_secret(RESOURCE_SERVER_SECRET_PREFIX)
    server = world.run(
        lambda uow: uow.resources.create(
            uri=uri,
            name=uri,
            scopes=scopes,
            client_id=new_resource_server_client_id(),
            secret_digest=digest(secret),
            now=0,
        )
    )
    return server, secret


@pytest.fixture
def reports(world: World) -> tuple[ResourceServer, str]:
    return register(world, REPORTS)


def allow(client: TestClient, params: dict[str, Any]) -> Any:
    """The consent page, then Allow, posting every hidden field (a repeated one once per
    value, as a browser does)."""
    page = client.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text
    fields: dict[str, list[str]] = {}
    for name, value in _HIDDEN.findall(page.text):
        fields.setdefault(name, []).append(value.replace("&amp;", "&"))
    fields["decision"] = ["allow"]
    return client.post("/oauth/authorize", data=fields)


def tokens_for(client: TestClient, world: World, resources: list[str], **extra: str) -> dict:
    """Authorized for ``resources`` by the admin; ``extra`` goes with the code exchange."""
    if client.get("/login").status_code != 303:  # not signed in yet
        sign_in(client, world.admin)
    code = callback_params(allow(client, authorize_params(world.app, resource=resources)))["code"]
    response = exchange(client, world.app, code, **extra)
    assert response.status_code == 200, response.text
    return response.json()


def app_auth(world: World) -> tuple[str, str]:
    return (world.app.client_id, world.app.client_secret or "")


def introspect(client: TestClient, token: str, auth: tuple[str, str]) -> dict:
    response = client.post("/oauth/introspect", data={"token": token}, auth=auth)
    assert response.status_code == 200, response.text
    return response.json()


def me(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def refresh(client: TestClient, world: World, refresh_token: str, **extra: Any) -> Any:
    return client.post(
        "/oauth/token",
        auth=app_auth(world),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
    )


# invalid_target at the authorization endpoint: a redirect to the trusted redirect URI.


@pytest.mark.parametrize(
    "resource",
    ["reports.example/api", "/api", "https://reports.example/api#top", "https://nowhere.example"],
    ids=["relative", "path", "fragment", "unregistered"],
)
def test_a_bad_resource_is_redirected_as_invalid_target(
    client: TestClient, world: World, resource: str
) -> None:
    sign_in(client, world.admin)
    response = client.get(
        "/oauth/authorize", params=authorize_params(world.app, resource=resource, state="s1")
    )
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    params = callback_params(response)
    assert params["error"] == "invalid_target"
    assert params["state"] == "s1" and params["iss"] == ISSUER
    assert "code" not in params


def test_a_bad_resource_with_an_unknown_client_is_a_page_not_a_redirect(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    response = client.get(
        "/oauth/authorize", params={"client_id": "nobody", "resource": "relative"}
    )
    assert response.status_code == 400 and "location" not in response.headers


# invalid_target at the token endpoint: JSON 400.


@pytest.mark.parametrize(
    "resource",
    ["relative", "https://nowhere.example", REPORTS],
    ids=["relative", "unknown", "wider"],
)
def test_a_code_exchange_naming_another_resource_is_invalid_target(
    client: TestClient, world: World, reports: Any, resource: str
) -> None:
    code = obtain_code(client, world)
    response = exchange(client, world.app, code, resource=resource)
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_target"
    # The code was not used: the client may ask again, for what it was granted.
    assert exchange(client, world.app, code).status_code == 200


def test_a_refresh_naming_a_resource_outside_the_grant_is_invalid_target(
    client: TestClient, world: World, reports: Any
) -> None:
    tokens = tokens_for(client, world, [REPORTS])
    response = refresh(client, world, tokens["refresh_token"], resource=[REPORTS, OWN_API])
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"


# No resource: the audience is Grantly's API, and the flow is as before.


def test_without_resource_the_flow_is_unchanged_and_the_audience_is_the_api(
    client: TestClient, world: World
) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    assert set(tokens) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
        "created_at",
    }
    assert me(client, tokens["access_token"]).status_code == 200
    assert introspect(client, tokens["access_token"], app_auth(world))["aud"] == OWN_API
    assert introspect(client, tokens["refresh_token"], app_auth(world))["aud"] == OWN_API


def test_naming_the_api_is_the_same_as_naming_nothing(client: TestClient, world: World) -> None:
    tokens = tokens_for(client, world, [OWN_API])
    assert me(client, tokens["access_token"]).status_code == 200
    assert introspect(client, tokens["access_token"], app_auth(world))["aud"] == OWN_API


# A registered resource server.


def test_a_token_for_a_registered_resource_is_refused_by_the_api(
    client: TestClient, world: World, reports: Any
) -> None:
    tokens = tokens_for(client, world, [REPORTS])
    response = me(client, tokens["access_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in challenge
    assert f'resource_metadata="{ISSUER}/.well-known/oauth-protected-resource/api"' in challenge
    assert introspect(client, tokens["access_token"], app_auth(world))["aud"] == REPORTS


def test_a_token_for_a_resource_and_the_api_opens_both(
    client: TestClient, world: World, reports: Any
) -> None:
    server, secret = reports
    tokens = tokens_for(client, world, [REPORTS, OWN_API])
    assert me(client, tokens["access_token"]).status_code == 200
    seen = introspect(client, tokens["access_token"], (server.client_id, secret))
    assert seen["active"] is True and seen["aud"] == [REPORTS, OWN_API]
    assert seen["company_id"] == world.company_a and seen["sub"] == f"user:{world.admin.id}"


def test_a_resource_server_sees_only_the_tokens_issued_for_it(
    client: TestClient, world: World, reports: Any
) -> None:
    server, secret = reports
    files, files_secret = register(world, FILES)
    for_the_api = exchange(client, world.app, obtain_code(client, world)).json()
    for_reports = tokens_for(client, world, [REPORTS])
    for_files = tokens_for(client, world, [FILES])
    assert introspect(client, for_reports["access_token"], (server.client_id, secret))["active"]
    for token in (for_files["access_token"], for_the_api["access_token"]):
        assert introspect(client, token, (server.client_id, secret)) == {"active": False}
    assert introspect(client, for_reports["refresh_token"], (server.client_id, secret)) == {
        "active": False
    }
    assert introspect(client, for_files["access_token"], (files.client_id, files_secret))["active"]


def test_a_resource_server_with_a_wrong_secret_is_an_invalid_client(
    client: TestClient, world: World, reports: Any
) -> None:
    server, _ = reports
    tokens = tokens_for(client, world, [REPORTS])
    response = client.post(
        "/oauth/introspect",
        data={"token": tokens["access_token"]},
        auth=(server.client_id, "grs_wrong"),
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


def test_a_resource_server_s_introspection_is_one_statement(world: World, reports: Any) -> None:
    server, secret = reports
    app = create_app(world.settings)
    statements: list[str] = []
    db = app.state.services.db
    local = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
    db.observers.append(
        lambda sql: (
            None
            if db.backend == "sqlite" and sql.split(None, 1)[0].upper() in local
            else statements.append(sql)
        )
    )
    with TestClient(app, base_url=ISSUER, follow_redirects=False) as client:
        tokens = tokens_for(client, world, [REPORTS])
        statements.clear()
        assert introspect(client, tokens["access_token"], (server.client_id, secret))["active"]
    assert len(statements) == 1, statements


# Narrowing (RFC 8707 §2.2).


def test_a_code_exchange_narrows_and_the_refresh_token_keeps_the_whole_grant(
    client: TestClient, world: World, reports: Any
) -> None:
    server, secret = reports
    tokens = tokens_for(client, world, [REPORTS, OWN_API], resource=REPORTS)
    assert me(client, tokens["access_token"]).status_code == 401
    assert introspect(client, tokens["access_token"], (server.client_id, secret))["aud"] == REPORTS
    refreshed = refresh(client, world, tokens["refresh_token"]).json()
    assert me(client, refreshed["access_token"]).status_code == 200


def test_a_refresh_narrows_to_a_subset_of_the_grant(
    client: TestClient, world: World, reports: Any
) -> None:
    server, secret = reports
    tokens = tokens_for(client, world, [REPORTS, OWN_API])
    narrowed = refresh(client, world, tokens["refresh_token"], resource=OWN_API).json()
    assert me(client, narrowed["access_token"]).status_code == 200
    assert introspect(client, narrowed["access_token"], (server.client_id, secret)) == {
        "active": False
    }
    back = refresh(client, world, narrowed["refresh_token"], resource=REPORTS).json()
    assert introspect(client, back["access_token"], (server.client_id, secret))["active"]


# A resource server that declares its scopes.


def test_a_resource_server_s_scopes_narrow_the_grant(client: TestClient, world: World) -> None:
    register(world, REPORTS, scopes=("read",))
    tokens = tokens_for(client, world, [REPORTS])
    assert tokens["scope"] == "read"
    response = client.get(
        "/oauth/authorize",
        params=authorize_params(world.app, resource=REPORTS, scope="read write"),
    )
    assert callback_params(response)["error"] == "invalid_scope"


# The consent form carries the resources through.


def test_the_consent_form_carries_every_resource(
    client: TestClient, world: World, reports: Any
) -> None:
    sign_in(client, world.admin)
    page = client.get(
        "/oauth/authorize", params=authorize_params(world.app, resource=[REPORTS, OWN_API])
    )
    carried = [value for name, value in _HIDDEN.findall(page.text) if name == "resource"]
    assert carried == [REPORTS, OWN_API]
    assert csrf_of(page.text)


# Deleting a resource server.


def test_a_deleted_resource_server_no_longer_introspects_nor_is_named(
    client: TestClient, world: World, reports: Any
) -> None:
    server, secret = reports
    tokens = tokens_for(client, world, [REPORTS])
    world.run(lambda uow: uow.resources.delete(server.id))
    response = client.post(
        "/oauth/introspect", data={"token": tokens["access_token"]}, auth=(server.client_id, secret)
    )
    assert response.status_code == 401
    again = client.get("/oauth/authorize", params=authorize_params(world.app, resource=REPORTS))
    assert callback_params(again)["error"] == "invalid_target"
