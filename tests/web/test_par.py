"""Pushed authorization requests (RFC 9126): pushed by an authenticated client, named at the
authorization endpoint by a single-use request_uri that lives 60 seconds."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from grantly.oauth.clock import FrozenClock
from grantly.oauth.pkce import new_verifier, s256
from tests.conftest import (
    REDIRECT_URI,
    World,
    authorize_params,
    callback_params,
    count_rows,
    hidden_fields,
    sign_in,
)
from tests.security_tools import configure, public_client


def _push(http: TestClient, world: World, **params: str) -> Any:
    data = {
        **authorize_params(world.app, scope="read", state="s1"),
        "client_secret": world.app.client_secret or "",
        **params,
    }
    return http.post("/oauth/par", data={k: v for k, v in data.items() if v != ""})


def _authorize(http: TestClient, world: World, request_uri: str, **extra: str) -> Any:
    return http.get(
        "/oauth/authorize",
        params={"client_id": world.app.client_id, "request_uri": request_uri, **extra},
    )


def test_a_pushed_request_is_authorized_by_its_request_uri_once(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    pushed = _push(client, world)
    assert pushed.status_code == 201, pushed.text
    body = pushed.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert pushed.headers["cache-control"] == "no-store"
    sign_in(client, world.admin)
    # Parameters beside the request_uri are ignored (RFC 9126 §4): only the pushed ones count.
    page = _authorize(client, world, body["request_uri"], scope="read write", state="evil")
    assert page.status_code == 200, page.text
    fields = hidden_fields(page.text)
    assert fields["scope"] == "read" and fields["state"] == "s1"
    decision = client.post("/oauth/authorize", data={**fields, "decision": "allow"})
    params = callback_params(decision)
    assert params["state"] == "s1"
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret or "",
        },
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "read"
    reused = _authorize(client, world, body["request_uri"])
    assert reused.status_code == 400
    assert "already used" in reused.text


def test_a_request_uri_expires_after_60_seconds(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    request_uri = _push(client, world).json()["request_uri"]
    sign_in(client, world.admin)
    clock.advance(60)
    expired = _authorize(client, world, request_uri)
    assert expired.status_code == 400
    assert "expired" in expired.text


def test_a_request_uri_works_only_with_its_own_client_id(client: TestClient, world: World) -> None:
    request_uri = _push(client, world).json()["request_uri"]
    sign_in(client, world.admin)
    other = client.get(
        "/oauth/authorize",
        params={"client_id": world.other_app.client_id, "request_uri": request_uri},
    )
    assert other.status_code == 400
    unknown = _authorize(client, world, "urn:ietf:params:oauth:request_uri:nope")
    assert unknown.status_code == 400
    assert "Location" not in unknown.headers


def test_the_push_is_refused_without_client_authentication_or_with_a_bad_request(
    client: TestClient, world: World
) -> None:
    wrong = _push(client, world, client_secret="wrong")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    bad_scope = _push(client, world, scope="admin")
    assert bad_scope.status_code == 400 and bad_scope.json()["error"] == "invalid_scope"
    bad_uri = _push(client, world, redirect_uri="https://evil.example/cb")
    assert bad_uri.status_code == 400 and "Location" not in bad_uri.headers
    nested = _push(client, world, request_uri="urn:ietf:params:oauth:request_uri:x")
    assert nested.status_code == 400 and nested.json()["error"] == "invalid_request"
    in_url = client.post("/oauth/par?client_id=x", data={})
    assert in_url.status_code == 400
    assert count_rows(world.settings, "pushed_requests") == 0


def test_an_application_that_requires_par_refuses_a_front_channel_request(
    client: TestClient, world: World
) -> None:
    configure(world, world.app, require_par=True)
    sign_in(client, world.admin)
    plain = client.get("/oauth/authorize", params=authorize_params(world.app, state="s"))
    assert plain.status_code == 302
    query = parse_qs(urlsplit(plain.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert "RFC 9126" in query["error_description"][0]
    request_uri = _push(client, world).json()["request_uri"]
    page = _authorize(client, world, request_uri)
    assert page.status_code == 200, page.text
    decision = client.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}
    )
    assert "code" in callback_params(decision)


def test_a_public_client_pushes_with_pkce(client: TestClient, world: World) -> None:
    app = public_client(world)
    verifier = new_verifier()
    pushed = client.post(
        "/oauth/par",
        data={
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uris[0],
            "response_type": "code",
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert pushed.status_code == 201, pushed.text
    without_pkce = client.post(
        "/oauth/par",
        data={
            "client_id": app.client_id,
            "redirect_uri": app.redirect_uris[0],
            "response_type": "code",
        },
    )
    assert without_pkce.status_code == 400
    assert "PKCE" in without_pkce.json()["error_description"]


def test_the_consent_form_of_a_pushed_request_cannot_be_changed_in_the_browser(
    client: TestClient, world: World
) -> None:
    configure(world, world.app, require_par=True)
    request_uri = _push(client, world).json()["request_uri"]
    sign_in(client, world.admin)
    fields = hidden_fields(_authorize(client, world, request_uri).text)
    # Widened in the browser: the signed copy is what counts.
    widened = client.post(
        "/oauth/authorize", data={**fields, "scope": "read write", "decision": "allow"}
    )
    code = callback_params(widened)["code"]
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": world.app.client_id,
            "client_secret": world.app.client_secret or "",
        },
    ).json()
    assert token["scope"] == "read"
    # Made up without pushing, or with the signature tampered: refused for a PAR application.
    for pushed in (None, fields["pushed"][:-2] + "xx"):
        forged = {k: v for k, v in fields.items() if k != "pushed"}
        if pushed is not None:
            forged["pushed"] = pushed
        refused = client.post("/oauth/authorize", data={**forged, "decision": "allow"})
        assert refused.status_code == 302
        assert "error=invalid_request" in refused.headers["location"]
