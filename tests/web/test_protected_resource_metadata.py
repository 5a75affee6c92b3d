"""Protected resource metadata (RFC 9728) of Grantly's API, and the challenges that point at it.

§3: the document is at the well-known URI made from the resource identifier ``{issuer}/api``,
and its ``resource`` is exactly that identifier (§3.3). §5.1: a 401 names the document in
``resource_metadata``, so a client that only knows the API finds the authorization server.
RFC 6750 §3: ``error`` and ``error_description`` when a token was presented, and for
``insufficient_scope`` (403) the ``scope`` needed.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import EMPLOYEES, api_key, bearer, user_token
from tests.conftest import World, exchange, obtain_code

ISSUER = "http://127.0.0.1:8000"
PATH = "/.well-known/oauth-protected-resource/api"
METADATA_URL = ISSUER + PATH
POINTER = f'resource_metadata="{METADATA_URL}"'


def test_the_api_s_metadata_names_the_resource_and_this_authorization_server(
    client: TestClient, world: World
) -> None:
    response = client.get(PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.json() == {
        "resource": f"{ISSUER}/api",
        "authorization_servers": [ISSUER],
        "scopes_supported": ["read", "write"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "ES512", "PS256", "RS256", "EdDSA"],
        "resource_name": "Grantly API",
        "resource_documentation": f"{ISSUER}/api/docs",
    }


def test_the_metadata_follows_the_issuer(tmp_path, world: World) -> None:
    from grantly.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path, issuer="https://grantly.example", database_url=world.settings.database_url
    )
    with TestClient(create_app(settings)) as other:
        meta = other.get(PATH).json()
        server = other.get("/.well-known/oauth-authorization-server").json()
    assert meta["resource"] == "https://grantly.example/api"
    assert meta["authorization_servers"] == [server["issuer"]] == ["https://grantly.example"]
    assert server["protected_resources"] == [
        "https://grantly.example/api",
        "https://grantly.example/mcp",
    ]


def test_the_authorization_server_lists_its_own_protected_resources(
    client: TestClient, world: World
) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["protected_resources"] == [f"{ISSUER}/api", f"{ISSUER}/mcp"]


def test_a_browser_client_may_read_the_metadata(client: TestClient, world: World) -> None:
    response = client.get(PATH, headers={"Origin": "https://spa.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "set-cookie" not in response.headers


def test_the_metadata_answers_head_and_refuses_post(client: TestClient, world: World) -> None:
    assert client.head(PATH).status_code == 200
    refused = client.post(PATH)
    assert refused.status_code == 405 and "GET" in refused.headers["allow"]


def test_only_the_api_has_metadata(client: TestClient, world: World) -> None:
    for path in ("/.well-known/oauth-protected-resource", PATH + "/extra", PATH + "x"):
        assert client.get(path).status_code == 404, path


# Every 401 of /api names the metadata.


@pytest.mark.parametrize("path", ["/api/v1/me", EMPLOYEES])
def test_a_request_without_a_credential_gets_the_bare_challenge_with_the_pointer(
    client: TestClient, world: World, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers.get_list("www-authenticate") == [
        f'Bearer realm="grantly", {POINTER}',
        'DPoP algs="ES256 ES384 ES512 PS256 RS256 EdDSA"',
    ]


@pytest.mark.parametrize("path", ["/api/v1/me", EMPLOYEES])
def test_a_bad_token_gets_invalid_token_and_the_pointer(
    client: TestClient, world: World, path: str
) -> None:
    challenge = client.get(path, headers=bearer("gat_nope")).headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert POINTER in challenge
    assert 'error="invalid_token"' in challenge and 'error_description="' in challenge


def test_a_bad_api_key_gets_the_pointer_too(client: TestClient, world: World) -> None:
    response = client.get(EMPLOYEES, headers=api_key("gak_nope"))
    assert response.status_code == 401
    assert POINTER in response.headers["www-authenticate"]


def test_insufficient_scope_names_the_scope_needed(client: TestClient, world: World) -> None:
    token = user_token(client, world.admin, world.app, scope="write")
    response = client.get(EMPLOYEES, headers=bearer(token))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="read"' in challenge
    assert POINTER in challenge


def test_a_valid_token_gets_no_challenge(client: TestClient, world: World) -> None:
    token = exchange(client, world.app, obtain_code(client, world)).json()["access_token"]
    response = client.get("/api/v1/me", headers=bearer(token))
    assert response.status_code == 200 and "www-authenticate" not in response.headers


def test_token_info_is_no_resource_and_names_no_metadata(client: TestClient, world: World) -> None:
    response = client.get("/oauth/token/info", headers=bearer("gat_nope"))
    assert response.status_code == 401
    assert "resource_metadata" not in response.headers["www-authenticate"]
