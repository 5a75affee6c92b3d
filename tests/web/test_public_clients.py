"""Public applications: no secret, PKCE required (RFC 7636; RFC 9700 §2.1.1)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from grantly.oauth.pkce import new_verifier, s256
from tests.conftest import Client, World, callback_params, consent, sign_in
from tests.security_tools import public_client

CALLBACK = "com.example.app:/oauth/callback"


@pytest.fixture
def public_app(world: World) -> Client:
    return public_client(world, CALLBACK, "http://127.0.0.1/cb", scopes=("read",))


def _params(app: Client, **extra: str) -> dict[str, str]:
    return {"client_id": app.client_id, "redirect_uri": CALLBACK, "response_type": "code", **extra}


def test_a_public_client_without_pkce_is_redirected_with_invalid_request(
    client: TestClient, world: World, public_app: Client
) -> None:
    sign_in(client, world.admin)
    params = callback_params(client.get("/oauth/authorize", params=_params(public_app, state="p")))
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    assert params["state"] == "p"


def test_plain_pkce_is_refused_by_default(
    client: TestClient, world: World, public_app: Client
) -> None:
    sign_in(client, world.admin)
    verifier = new_verifier()
    params = callback_params(
        client.get(
            "/oauth/authorize",
            params=_params(public_app, code_challenge=verifier, code_challenge_method="plain"),
        )
    )
    assert params["error"] == "invalid_request"
    assert "S256" in params["error_description"]


def test_a_wrong_verifier_is_invalid_grant(
    client: TestClient, world: World, public_app: Client
) -> None:
    verifier = new_verifier()
    sign_in(client, world.employee)
    code = callback_params(
        consent(
            client, _params(public_app, code_challenge=s256(verifier), code_challenge_method="S256")
        )
    )["code"]
    base = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": public_app.client_id,
    }
    wrong = client.post("/oauth/token", data={**base, "code_verifier": new_verifier()})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"


def test_the_right_verifier_gets_tokens_without_a_secret(
    client: TestClient, world: World, public_app: Client
) -> None:
    verifier = new_verifier()
    sign_in(client, world.employee)
    code = callback_params(
        consent(
            client, _params(public_app, code_challenge=s256(verifier), code_challenge_method="S256")
        )
    )["code"]
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": public_app.client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read"


def test_a_public_client_sending_a_secret_is_refused(
    client: TestClient, world: World, public_app: Client
) -> None:
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": public_app.client_id,
            "client_secret": "guess",
        },
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_the_authorize_button_of_a_public_app_shows_the_verifier_in_the_curl(
    client: TestClient, world: World, public_app: Client
) -> None:
    sign_in(client, world.admin)
    page = client.get(f"/oauth/applications/{public_app.id}/authorize")
    assert page.status_code == 200
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    shown = client.post("/oauth/authorize", data={**fields, "decision": "allow"})
    assert shown.status_code == 200
    code = re.search(r'id="authorization-code">([^<]+)<', shown.text).group(1)
    verifier = re.search(r"code_verifier=([A-Za-z0-9_-]+)", shown.text).group(1)
    assert "client_secret" not in shown.text
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": public_app.client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text


def test_a_native_app_may_use_any_loopback_port(
    client: TestClient, world: World, public_app: Client
) -> None:
    verifier = new_verifier()
    redirect_uri = "http://127.0.0.1:53117/cb"  # registered as http://127.0.0.1/cb
    sign_in(client, world.employee)
    response = consent(
        client,
        _params(
            public_app,
            redirect_uri=redirect_uri,
            code_challenge=s256(verifier),
            code_challenge_method="S256",
        ),
    )
    assert response.headers["location"].startswith(redirect_uri + "?code=")
    code = callback_params(response)["code"]
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": public_app.client_id,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200, token.text
