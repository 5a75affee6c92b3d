"""Authorization server metadata (RFC 8414) matches what the server really does."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import World


def test_metadata_lists_the_real_endpoints_and_capabilities(
    client: TestClient, world: World
) -> None:
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == "http://127.0.0.1:8000"
    assert meta["authorization_endpoint"] == "http://127.0.0.1:8000/oauth/authorize"
    assert meta["token_endpoint"] == "http://127.0.0.1:8000/oauth/token"
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
    ]
    assert set(meta["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert "ES256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert "none" not in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert "HS256" not in meta["dpop_signing_alg_values_supported"]
    assert meta["pushed_authorization_request_endpoint"] == "http://127.0.0.1:8000/oauth/par"
    assert meta["scopes_supported"] == ["read", "write"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True


def test_every_advertised_endpoint_exists(client: TestClient, world: World) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert (
        client.get(meta["authorization_endpoint"].removeprefix(meta["issuer"])).status_code == 400
    )
    token = client.post(meta["token_endpoint"].removeprefix(meta["issuer"]), data={})
    assert token.json()["error"] == "invalid_request"


def test_query_string_token_parameters_can_be_turned_off(tmp_path, world: World) -> None:
    from grantly.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(
        tmp_path, token_query_parameters=False, database_url=world.settings.database_url
    )
    with TestClient(create_app(settings)) as strict:
        response = strict.post("/oauth/token?grant_type=authorization_code&client_secret=x")
    assert response.status_code == 400
    assert "POST body" in response.json()["error_description"]


def test_the_api_docs_page_loads_swagger_ui_from_grantly(client: TestClient, world: World) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy and "https:" not in policy and "http:" not in policy
    assert "'sha256-" in policy  # Swagger UI's bootstrap script, by its digest
    assert "http" not in response.text  # no URL of another origin
    assets = re.findall(r'(?:src|href)="(/api/docs/assets/[^"]+)"', response.text)
    assert len(assets) == 3, response.text  # script, stylesheet, icon
    for asset in assets:
        loaded = client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 1000
    assert "'sha256-" not in client.get("/login").headers["content-security-policy"]
