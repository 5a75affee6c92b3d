"""Threat: credential leakage through logs, Referer, caches, URLs and the database
(RFC 9700 §4.2, §4.3 and §4.14; RFC 6749 §5.1, §10.3; RFC 6750 §5.3; RFC 6819).

A code, token or secret that is written where an attacker can read it later — a log file, a
shared proxy's cache, a ``Referer`` sent to a third-party resource, browser history, a backup
of the database — is as good as stolen. The attacks below provoke the error paths (wrong
secrets, replays, bad tokens) as well as the happy ones, then look where leaks would land.

Covered elsewhere: the logs of a successful flow (``tests/test_observability.py::
test_the_logs_of_a_full_flow_hold_no_secret_code_or_token``), the database after a confidential
flow with a regenerated secret (``tests/web/test_secrets_at_rest.py``), API-key pages not
cached (``tests/api/test_api_keys.py::test_the_page_showing_a_key_is_not_cached``).
"""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from grantly.oauth.secrets import digest
from tests.conftest import (
    REDIRECT_URI,
    Client,
    LiveServer,
    World,
    authorize_params,
    callback_params,
    consent,
    csrf_of,
    dump_database,
    exchange,
    hidden_fields,
    obtain_code,
    sign_in,
)
from tests.security.conftest import basic, public_tokens, refresh


@pytest.mark.live
def test_hostile_requests_leave_no_credential_in_the_logs(live_server: LiveServer) -> None:
    """RFC 9700 §4.2 / §4.3 and RFC 6750 §5.3: wrong and replayed credentials are written
    nowhere — not in the access log, not in error logs — however they were sent (query
    string, body, Basic, Bearer)."""
    world, url = live_server.world, live_server.url
    app = world.app
    guessed_secret = "gcs_guessed_secret_value_0123456789abcdef"
    with httpx.Client(base_url=url) as browser:
        sign_in(browser, world.employee)
        code = callback_params(consent(browser, authorize_params(app, state="st")))["code"]
        hostile_login = browser.post(
            "/login", data={"email": world.admin.email, "password": "not-the-password-1"}
        )
        assert hostile_login.status_code == 403
    with httpx.Client(base_url=url) as http:
        # A guess in the query string, the worst place for a secret.
        http.post(
            "/oauth/token",
            params={
                "grant_type": "authorization_code",
                "code": code,
                "client_id": app.client_id,
                "client_secret": guessed_secret,
            },
        )
        tokens = exchange(http, app, code).json()  # type: ignore[arg-type]
        exchange(http, app, code)  # a replay: fails, revokes, logged as an error
        refresh(http, app, tokens["refresh_token"])  # the grant is revoked: invalid_grant
        http.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        http.get("/oauth/token/info", headers={"Authorization": f"Bearer {guessed_secret}"})
        http.post("/oauth/introspect", data={"token": tokens["access_token"]}, auth=basic(app))
        http.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, auth=basic(app))
        http.post("/oauth/revoke", data={"token": guessed_secret}, auth=(app.client_id, "x"))
    time.sleep(0.5)
    log = live_server.log_path.read_text()
    for value in (
        app.client_secret,
        guessed_secret,
        code,
        tokens["access_token"],
        tokens["refresh_token"],
        world.employee.password,
        "not-the-password-1",
    ):
        assert value and value not in log, value[:8]
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert requests and all("?" not in line["path"] for line in requests)


def test_every_response_carrying_a_credential_is_not_cached(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §5.1 ("Cache-Control: no-store") and RFC 9700 §4.3: token responses,
    refreshes, introspection, token info, and the pages and redirects that carry a code or a
    secret are never stored by a browser or a shared cache."""
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app))
    redirect = client.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}
    )
    code = callback_params(redirect)["code"]
    token = exchange(client, world.app, code)
    refreshed = refresh(client, world.app, token.json()["refresh_token"])
    access = refreshed.json()["access_token"]
    new_app = client.get("/oauth/applications/new")
    created = client.post(
        "/oauth/applications",
        data={
            "csrf_token": csrf_of(new_app.text),
            "form_id": hidden_fields(new_app.text)["form_id"],
            "name": "Leaky",
            "redirect_uris": "https://leaky.example/cb",
            "confidential": "on",
            "scopes": "read",
        },
    )
    authorize_button = client.get(f"/oauth/applications/{world.app.id}/authorize")
    code_page = client.post(
        "/oauth/authorize", data={**hidden_fields(authorize_button.text), "decision": "allow"}
    )
    responses = {
        "consent page": page,
        "redirect with the code": redirect,
        "token response": token,
        "refresh response": refreshed,
        "token error": exchange(client, world.app, code),
        "introspection": client.post(
            "/oauth/introspect", data={"token": access}, auth=basic(world.app)
        ),
        "token info": client.get(
            "/oauth/token/info", headers={"Authorization": f"Bearer {access}"}
        ),
        "new application with its secret": created,
        "code page": code_page,
    }
    for what, response in responses.items():
        assert response.status_code < 500, what
        assert response.headers.get("cache-control") == "no-store", what
    for what in ("token response", "refresh response", "token error"):
        assert responses[what].headers.get("pragma") == "no-cache", what


def test_only_the_code_ever_travels_in_a_redirect(client: TestClient, world: World) -> None:
    """RFC 9700 §2.1.2 (no implicit grant) and §4.3.2 (browser history): the redirect holds
    the code, ``state`` and ``iss`` and nothing else — no token, no fragment — and an error
    redirect holds no code."""
    sign_in(client, world.employee)
    allowed = consent(client, authorize_params(world.app, state="s1"))
    location = urlsplit(allowed.headers["location"])
    assert set(parse_qs(location.query)) == {"code", "state", "iss"}
    assert location.fragment == ""
    assert not re.search(r"ga[tk]_|grt_|gcs_", allowed.headers["location"])
    denied = consent(client, authorize_params(world.app, state="s2"), decision="deny")
    assert set(parse_qs(urlsplit(denied.headers["location"]).query)) == {
        "error",
        "error_description",
        "state",
        "iss",
    }
    implicit = client.get(
        "/oauth/authorize", params=authorize_params(world.app, response_type="token")
    )
    assert "access_token" not in implicit.headers.get("location", "")
    assert parse_qs(urlsplit(implicit.headers["location"]).query)["error"] == [
        "unsupported_response_type"
    ]


def test_pages_and_redirects_that_carry_codes_send_no_referer(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.2.4 ("Referrer-Policy: no-referrer" on the authorization response and the
    pages around it): the consent page (its URL holds the authorization request), the
    redirect with the code and the page that displays a code."""
    sign_in(client, world.admin)
    consent_page = client.get("/oauth/authorize", params=authorize_params(world.app))
    redirect = client.post(
        "/oauth/authorize", data={**hidden_fields(consent_page.text), "decision": "allow"}
    )
    button = client.get(f"/oauth/applications/{world.app.id}/authorize")
    code_page = client.post(
        "/oauth/authorize", data={**hidden_fields(button.text), "decision": "allow"}
    )
    sign_in_page = client.get("/login", params={"next": "/oauth/authorize?client_id=x"})
    for what, response in {
        "consent page": consent_page,
        "redirect with the code": redirect,
        "code page": code_page,
        "sign-in page": sign_in_page,
    }.items():
        assert response.headers.get("referrer-policy") == "no-referrer", what


def test_error_answers_never_echo_the_credential_presented(
    client: TestClient, world: World
) -> None:
    """RFC 6750 §5.3 / RFC 9700 §4.3: an error about a token does not repeat it (error pages
    and bodies end up in client logs and bug reports)."""
    stolen = "grt_" + "A" * 43
    body = refresh(client, world.app, stolen).text
    challenge = client.get("/api/v1/me", headers={"Authorization": "Bearer gat_" + "B" * 43})
    page = client.get(
        "/oauth/authorize", params={"client_id": "gcs_" + "C" * 43, "response_type": "code"}
    )
    assert stolen not in body
    assert "B" * 43 not in challenge.text + challenge.headers["www-authenticate"]
    assert "C" * 43 not in page.text


def test_a_copy_of_the_database_yields_no_usable_credential(
    client: TestClient, world: World, public_app: Client
) -> None:
    """RFC 9700 §4.14 (refresh token protection) and RFC 6819 (no credentials in clear in
    storage): after a public client's PKCE
    flow, a company token, an API key and a new application, a dump of every table holds
    none of the raw values — only their SHA-256 digests."""
    native, native_code, verifier = public_tokens(client, world, public_app)
    client.cookies.clear()
    company_code = obtain_code(client, world, resource_owner_type="company")
    company = exchange(client, world.app, company_code).json()
    keys = client.get("/api_keys")
    key_page = client.post(
        "/api_keys",
        data={
            "csrf_token": csrf_of(keys.text),
            "form_id": hidden_fields(keys.text)["form_id"],
            "name": "Backup test",
        },
    )
    api_key = re.search(r'<code id="api-key">([^<]+)</code>', key_page.text).group(1)
    session_cookie = client.cookies.get("grantly_session")
    dump = dump_database(world.settings)
    for value in (
        native_code,
        verifier,
        native["access_token"],
        native["refresh_token"],
        company_code,
        company["access_token"],
        api_key,
        world.other_app.client_secret,
    ):
        assert value and value not in dump, value[:8]
    assert digest(company["access_token"]) in dump and digest(api_key) in dump
    assert session_cookie and session_cookie not in dump
    assert REDIRECT_URI in dump  # the dump is real: registered data is there in clear


def test_a_token_in_the_url_opens_nothing(client: TestClient, world: World) -> None:
    """RFC 9700 §4.3.2 (access token in browser history) and RFC 6750 §5.3 ("Don't pass bearer
    tokens in page URLs"): the resource API reads the token from the Authorization header
    only, so a client cannot be tempted into URLs that end up in logs and history."""
    token = exchange(client, world.app, obtain_code(client, world)).json()["access_token"]
    client.cookies.clear()
    in_query = client.get("/api/v1/me", params={"access_token": token})
    in_info = client.get("/oauth/token/info", params={"access_token": token})
    assert in_query.status_code == in_info.status_code == 401
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
