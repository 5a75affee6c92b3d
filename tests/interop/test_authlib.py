"""Authlib's OAuth 2 clients (requests and httpx integrations) against a real `grantly serve`.

Authlib builds every authorization URL and token request; the tests only play the person at
the consent page (``approve``) and check what comes back.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import parse_qs

import pytest
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client as HttpxOAuth2Client
from authlib.integrations.requests_client import OAuth2Session

from tests.conftest import REDIRECT_URI, LiveServer
from tests.interop.person import approve, query_of, sign_in_through

pytestmark = pytest.mark.live

AUTH_METHODS = ("client_secret_basic", "client_secret_post")
PUBLIC_REDIRECT_URI = "http://127.0.0.1:9/cb"
USER_TOKEN_FIELDS = {
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "created_at",
}


def confidential_session(
    live_server: LiveServer, method: str = "client_secret_basic"
) -> tuple[OAuth2Session, list[Any]]:
    """A session for the seeded confidential app, and the list of requests it sends."""
    app = live_server.world.app
    session = OAuth2Session(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method=method,
        redirect_uri=REDIRECT_URI,
        scope="read write",
    )
    sent: list[Any] = []
    session.hooks["response"].append(
        lambda response, *args, **kwargs: sent.append(response.request)
    )
    return session, sent


def authorize(live_server: LiveServer, session: Any, **extra: Any) -> tuple[str, str]:
    """Authlib builds the URL; the admin signs in and allows. Returns (Location, state)."""
    url, state = session.create_authorization_url(f"{live_server.url}/oauth/authorize", **extra)
    return approve(live_server.url, url, live_server.world.admin), state


def token_endpoint(live_server: LiveServer) -> str:
    return f"{live_server.url}/oauth/token"


def create_public_app(live_server: LiveServer) -> dict[str, Any]:
    return live_server.grantly(
        "apps",
        "create",
        "--company",
        str(live_server.world.company_a),
        "--name",
        "Authlib native app",
        "--redirect-uri",
        PUBLIC_REDIRECT_URI,
        "--public",
    )


def public_session(live_server: LiveServer, client_id: str) -> OAuth2Session:
    return OAuth2Session(
        client_id=client_id,
        token_endpoint_auth_method="none",
        code_challenge_method="S256",
        redirect_uri=PUBLIC_REDIRECT_URI,
        scope="read write",
    )


# --- the authorization request ------------------------------------------------------------


def test_authlib_authorization_url_leads_to_a_redirect_with_code_state_and_issuer(
    live_server: LiveServer,
) -> None:
    session, _ = confidential_session(live_server)
    location, state = authorize(live_server, session, state="authlib-state-1")

    assert state == "authlib-state-1"
    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(location)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "authlib-state-1"
    assert params["iss"] == live_server.url
    assert params["code"].startswith("gac_")


# --- the token request --------------------------------------------------------------------


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_authlib_exchanges_the_code_for_factorials_token_response(
    live_server: LiveServer, method: str
) -> None:
    session, _ = confidential_session(live_server, method)
    location, state = authorize(live_server, session)

    token = session.fetch_token(
        token_endpoint(live_server), authorization_response=location, state=state
    )

    assert set(token) >= USER_TOKEN_FIELDS
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == "read write"
    assert token["access_token"].startswith("gat_")
    assert token["refresh_token"].startswith("grt_")
    assert isinstance(token["created_at"], int)


def test_authlib_client_secret_basic_sends_the_secret_only_in_the_authorization_header(
    live_server: LiveServer,
) -> None:
    session, sent = confidential_session(live_server, "client_secret_basic")
    location, state = authorize(live_server, session)
    session.fetch_token(token_endpoint(live_server), authorization_response=location, state=state)

    request = sent[-1]
    app = live_server.world.app
    expected = base64.b64encode(f"{app.client_id}:{app.client_secret}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert "client_secret" not in parse_qs(request.body)


def test_authlib_client_secret_post_sends_the_secret_only_in_the_body(
    live_server: LiveServer,
) -> None:
    session, sent = confidential_session(live_server, "client_secret_post")
    location, state = authorize(live_server, session)
    session.fetch_token(token_endpoint(live_server), authorization_response=location, state=state)

    request = sent[-1]
    body = parse_qs(request.body)
    assert "Authorization" not in request.headers
    assert body["client_id"] == [live_server.world.app.client_id]
    assert body["client_secret"] == [live_server.world.app.client_secret]


def test_authlib_second_redemption_of_a_code_fails_with_invalid_grant(
    live_server: LiveServer,
) -> None:
    session, _ = confidential_session(live_server)
    location, state = authorize(live_server, session)
    session.fetch_token(token_endpoint(live_server), authorization_response=location, state=state)

    with pytest.raises(OAuthError) as error:
        session.fetch_token(
            token_endpoint(live_server), authorization_response=location, state=state
        )
    assert error.value.error == "invalid_grant"


def test_authlib_wrong_client_secret_is_refused_with_invalid_client(
    live_server: LiveServer,
) -> None:
    session, _ = confidential_session(live_server)
    location, state = authorize(live_server, session)
    session.client_secret = "gcs_" + secrets.token_urlsafe(32)

    with pytest.raises(OAuthError) as error:
        session.fetch_token(
            token_endpoint(live_server), authorization_response=location, state=state
        )
    assert error.value.error == "invalid_client"


# --- using the token ----------------------------------------------------------------------


def test_authlib_session_calls_api_v1_me_as_the_admin_who_allowed(
    live_server: LiveServer,
) -> None:
    session, sent = confidential_session(live_server)
    location, state = authorize(live_server, session)
    token = session.fetch_token(
        token_endpoint(live_server), authorization_response=location, state=state
    )

    me = session.get(f"{live_server.url}/api/v1/me")

    assert sent[-1].headers["Authorization"] == f"Bearer {token['access_token']}"
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["resource_owner_type"] == "user"
    assert body["user"]["email"] == live_server.world.admin.email
    assert body["client_id"] == live_server.world.app.client_id
    assert body["company"]["id"] == live_server.world.company_a
    assert body["scope"] == "read write"


# --- refreshing ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_authlib_refresh_returns_a_new_access_token_that_opens_the_api(
    live_server: LiveServer, method: str
) -> None:
    session, _ = confidential_session(live_server, method)
    location, state = authorize(live_server, session)
    first = dict(
        session.fetch_token(
            token_endpoint(live_server), authorization_response=location, state=state
        )
    )

    second = session.refresh_token(token_endpoint(live_server))

    assert set(second) >= USER_TOKEN_FIELDS
    assert second["token_type"] == "Bearer"
    assert second["scope"] == "read write"
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    me = session.get(f"{live_server.url}/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == live_server.world.admin.email


@pytest.mark.parametrize("method", AUTH_METHODS)
def test_authlib_refresh_rotates_so_the_old_refresh_token_is_rejected_with_invalid_grant(
    live_server: LiveServer, method: str
) -> None:
    session, _ = confidential_session(live_server, method)
    location, state = authorize(live_server, session)
    old_refresh = session.fetch_token(
        token_endpoint(live_server), authorization_response=location, state=state
    )["refresh_token"]
    session.refresh_token(token_endpoint(live_server))

    with pytest.raises(OAuthError) as error:
        session.refresh_token(token_endpoint(live_server), refresh_token=old_refresh)
    assert error.value.error == "invalid_grant"


# --- a public application with PKCE -------------------------------------------------------


def test_authlib_public_app_with_pkce_s256_gets_tokens_that_open_the_api(
    live_server: LiveServer,
) -> None:
    app = create_public_app(live_server)
    assert app["confidential"] is False
    assert app["client_secret"] is None
    session = public_session(live_server, app["client_id"])
    verifier = secrets.token_urlsafe(48)
    url, state = session.create_authorization_url(
        f"{live_server.url}/oauth/authorize", code_verifier=verifier
    )
    query = query_of(url)
    assert query["code_challenge_method"] == "S256"
    assert "code_challenge" in query
    location = approve(live_server.url, url, live_server.world.admin)
    assert location.startswith(PUBLIC_REDIRECT_URI + "?")

    token = session.fetch_token(
        token_endpoint(live_server),
        authorization_response=location,
        state=state,
        code_verifier=verifier,
    )

    assert set(token) >= USER_TOKEN_FIELDS
    assert token["scope"] == "read write"
    me = session.get(f"{live_server.url}/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == app["client_id"]


def test_authlib_public_app_token_request_with_a_wrong_code_verifier_fails_with_invalid_grant(
    live_server: LiveServer,
) -> None:
    app = create_public_app(live_server)
    session = public_session(live_server, app["client_id"])
    url, state = session.create_authorization_url(
        f"{live_server.url}/oauth/authorize", code_verifier=secrets.token_urlsafe(48)
    )
    location = approve(live_server.url, url, live_server.world.admin)

    with pytest.raises(OAuthError) as error:
        session.fetch_token(
            token_endpoint(live_server),
            authorization_response=location,
            state=state,
            code_verifier=secrets.token_urlsafe(48),
        )
    assert error.value.error == "invalid_grant"


def test_authlib_public_app_refreshes_with_its_client_id_alone_and_rotates(
    live_server: LiveServer,
) -> None:
    app = create_public_app(live_server)
    session = public_session(live_server, app["client_id"])
    verifier = secrets.token_urlsafe(48)
    url, state = session.create_authorization_url(
        f"{live_server.url}/oauth/authorize", code_verifier=verifier
    )
    location = approve(live_server.url, url, live_server.world.admin)
    first = dict(
        session.fetch_token(
            token_endpoint(live_server),
            authorization_response=location,
            state=state,
            code_verifier=verifier,
        )
    )

    second = session.refresh_token(token_endpoint(live_server))

    assert second["refresh_token"] != first["refresh_token"]
    assert session.get(f"{live_server.url}/api/v1/me").status_code == 200
    with pytest.raises(OAuthError) as error:
        session.refresh_token(token_endpoint(live_server), refresh_token=first["refresh_token"])
    assert error.value.error == "invalid_grant"


def test_authlib_public_app_without_pkce_is_sent_back_with_invalid_request(
    live_server: LiveServer,
) -> None:
    app = create_public_app(live_server)
    session = OAuth2Session(
        client_id=app["client_id"],
        token_endpoint_auth_method="none",
        redirect_uri=PUBLIC_REDIRECT_URI,
    )
    url, state = session.create_authorization_url(f"{live_server.url}/oauth/authorize")
    assert "code_challenge" not in query_of(url)

    # RFC 9700 §4.11.2: the person signs in before the error is sent to the redirect URI.
    response = sign_in_through(live_server.url, url, live_server.world.admin)

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(PUBLIC_REDIRECT_URI + "?")
    params = query_of(location)
    assert params["error"] == "invalid_request"
    assert params["state"] == state
    assert params["iss"] == live_server.url
    assert "code" not in params


# --- Authlib's httpx integration ----------------------------------------------------------


def test_authlib_httpx_client_runs_code_exchange_api_call_and_refresh(
    live_server: LiveServer,
) -> None:
    app = live_server.world.app
    with HttpxOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=REDIRECT_URI,
        scope="read write",
    ) as client:
        location, state = authorize(live_server, client, state="httpx-state")
        assert query_of(location)["state"] == "httpx-state"
        first = dict(
            client.fetch_token(
                token_endpoint(live_server), authorization_response=location, state=state
            )
        )
        assert set(first) >= USER_TOKEN_FIELDS
        assert client.get(f"{live_server.url}/api/v1/me").status_code == 200

        second = client.refresh_token(token_endpoint(live_server))
        assert second["access_token"] != first["access_token"]
        assert second["refresh_token"] != first["refresh_token"]
        me = client.get(f"{live_server.url}/api/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["user"]["email"] == live_server.world.admin.email
