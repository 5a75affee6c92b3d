"""requests-oauthlib's ``OAuth2Session`` (on oauthlib) against a real `grantly serve`.

The server is plain http on loopback, so ``OAUTHLIB_INSECURE_TRANSPORT`` is set; oauthlib
otherwise refuses anything but https. ``OAUTHLIB_RELAX_TOKEN_SCOPE`` is left unset, so oauthlib
also checks that the granted scope is the one it asked for.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from oauthlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidClientError, InvalidGrantError
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from tests.conftest import REDIRECT_URI, LiveServer
from tests.interop.person import approve, query_of

pytestmark = pytest.mark.live

SCOPES = ["read", "write"]
PUBLIC_REDIRECT_URI = "http://127.0.0.1:9/cb"
USER_TOKEN_FIELDS = {
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "created_at",
}


@pytest.fixture(autouse=True)
def insecure_transport_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.delenv("OAUTHLIB_RELAX_TOKEN_SCOPE", raising=False)


def session_for(live_server: LiveServer, **kwargs: Any) -> tuple[OAuth2Session, list[Any]]:
    """A session for the seeded confidential app, and the list of requests it sends."""
    session = OAuth2Session(
        live_server.world.app.client_id, redirect_uri=REDIRECT_URI, scope=SCOPES, **kwargs
    )
    sent: list[Any] = []
    session.hooks["response"].append(lambda response, *args, **kw: sent.append(response.request))
    return session, sent


def authorize(live_server: LiveServer, session: OAuth2Session, **extra: Any) -> str:
    url, _ = session.authorization_url(f"{live_server.url}/oauth/authorize", **extra)
    return approve(live_server.url, url, live_server.world.admin)


def token_endpoint(live_server: LiveServer) -> str:
    return f"{live_server.url}/oauth/token"


def fetch_basic(live_server: LiveServer, session: OAuth2Session, location: str) -> dict[str, Any]:
    """client_secret_basic: requests-oauthlib's default when given a client_secret."""
    return dict(
        session.fetch_token(
            token_endpoint(live_server),
            authorization_response=location,
            client_secret=live_server.world.app.client_secret,
        )
    )


def fetch_post(live_server: LiveServer, session: OAuth2Session, location: str) -> dict[str, Any]:
    """client_secret_post: client_id and client_secret in the body."""
    return dict(
        session.fetch_token(
            token_endpoint(live_server),
            authorization_response=location,
            include_client_id=True,
            client_secret=live_server.world.app.client_secret,
        )
    )


FETCHERS = {"client_secret_basic": fetch_basic, "client_secret_post": fetch_post}


def refresh(live_server: LiveServer, session: OAuth2Session, method: str, **kwargs: Any) -> Any:
    app = live_server.world.app
    if method == "client_secret_basic":
        return session.refresh_token(
            token_endpoint(live_server),
            auth=HTTPBasicAuth(app.client_id, app.client_secret),
            **kwargs,
        )
    return session.refresh_token(
        token_endpoint(live_server),
        client_id=app.client_id,
        client_secret=app.client_secret,
        **kwargs,
    )


def test_requests_oauthlib_authorization_url_leads_to_a_redirect_with_its_state_and_the_issuer(
    live_server: LiveServer,
) -> None:
    session, _ = session_for(live_server)
    url, state = session.authorization_url(f"{live_server.url}/oauth/authorize")
    location = approve(live_server.url, url, live_server.world.admin)

    assert location.startswith(REDIRECT_URI + "?")
    params = query_of(location)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == state
    assert params["iss"] == live_server.url


@pytest.mark.parametrize("method", sorted(FETCHERS))
def test_requests_oauthlib_exchanges_the_code_for_factorials_token_response(
    live_server: LiveServer, method: str
) -> None:
    session, _ = session_for(live_server)
    location = authorize(live_server, session)

    token = FETCHERS[method](live_server, session, location)

    assert set(token) >= USER_TOKEN_FIELDS
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert token["scope"] == SCOPES  # oauthlib splits the granted scope into a list
    assert isinstance(token["created_at"], int)


def test_requests_oauthlib_default_token_request_authenticates_with_http_basic(
    live_server: LiveServer,
) -> None:
    session, sent = session_for(live_server)
    fetch_basic(live_server, session, authorize(live_server, session))

    app = live_server.world.app
    expected = base64.b64encode(f"{app.client_id}:{app.client_secret}".encode()).decode()
    assert sent[-1].headers["Authorization"] == f"Basic {expected}"
    assert "client_secret" not in parse_qs(sent[-1].body)


def test_requests_oauthlib_include_client_id_sends_the_secret_in_the_body(
    live_server: LiveServer,
) -> None:
    session, sent = session_for(live_server)
    fetch_post(live_server, session, authorize(live_server, session))

    body = parse_qs(sent[-1].body)
    assert "Authorization" not in sent[-1].headers
    assert body["client_secret"] == [live_server.world.app.client_secret]


def test_requests_oauthlib_force_querystring_token_request_is_accepted(
    live_server: LiveServer,
) -> None:
    session, sent = session_for(live_server)
    location = authorize(live_server, session)

    token = session.fetch_token(
        token_endpoint(live_server),
        authorization_response=location,
        include_client_id=True,
        client_secret=live_server.world.app.client_secret,
        force_querystring=True,
    )

    assert not sent[-1].body
    assert "code" in parse_qs(urlsplit(sent[-1].url).query)
    assert token["access_token"].startswith("gat_")


def test_requests_oauthlib_second_redemption_of_a_code_fails_with_invalid_grant(
    live_server: LiveServer,
) -> None:
    session, _ = session_for(live_server)
    location = authorize(live_server, session)
    fetch_basic(live_server, session, location)

    with pytest.raises(InvalidGrantError):
        fetch_basic(live_server, session, location)


def test_requests_oauthlib_wrong_client_secret_is_refused_with_invalid_client(
    live_server: LiveServer,
) -> None:
    session, _ = session_for(live_server)
    location = authorize(live_server, session)

    with pytest.raises(InvalidClientError):
        session.fetch_token(
            token_endpoint(live_server),
            authorization_response=location,
            client_secret="gcs_not-the-secret",
        )


def test_requests_oauthlib_session_calls_api_v1_me_with_the_bearer_token(
    live_server: LiveServer,
) -> None:
    session, sent = session_for(live_server)
    token = fetch_basic(live_server, session, authorize(live_server, session))

    me = session.get(f"{live_server.url}/api/v1/me")

    assert sent[-1].headers["Authorization"] == f"Bearer {token['access_token']}"
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == live_server.world.admin.email
    assert me.json()["client_id"] == live_server.world.app.client_id


@pytest.mark.parametrize("method", sorted(FETCHERS))
def test_requests_oauthlib_refresh_returns_a_new_access_token_that_opens_the_api(
    live_server: LiveServer, method: str
) -> None:
    session, _ = session_for(live_server)
    first = FETCHERS[method](live_server, session, authorize(live_server, session))

    second = refresh(live_server, session, method)

    assert set(second) >= USER_TOKEN_FIELDS
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    me = session.get(f"{live_server.url}/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["user"]["email"] == live_server.world.admin.email


@pytest.mark.parametrize("method", sorted(FETCHERS))
def test_requests_oauthlib_refresh_rotates_so_the_old_refresh_token_is_rejected(
    live_server: LiveServer, method: str
) -> None:
    session, _ = session_for(live_server)
    first = FETCHERS[method](live_server, session, authorize(live_server, session))
    refresh(live_server, session, method)

    with pytest.raises(InvalidGrantError):
        refresh(live_server, session, method, refresh_token=first["refresh_token"])


def test_requests_oauthlib_recognises_a_denied_consent_as_access_denied(
    live_server: LiveServer,
) -> None:
    session, _ = session_for(live_server)
    url, state = session.authorization_url(f"{live_server.url}/oauth/authorize")
    location = approve(live_server.url, url, live_server.world.admin, decision="deny")
    assert query_of(location)["state"] == state

    with pytest.raises(AccessDeniedError):
        fetch_basic(live_server, session, location)


def create_public_app(live_server: LiveServer) -> dict[str, Any]:
    return live_server.grantly(
        "apps",
        "create",
        "--company",
        str(live_server.world.company_a),
        "--name",
        "requests-oauthlib native app",
        "--redirect-uri",
        PUBLIC_REDIRECT_URI,
        "--public",
    )


def test_requests_oauthlib_pkce_s256_public_app_gets_tokens_that_open_the_api(
    live_server: LiveServer,
) -> None:
    app = create_public_app(live_server)
    session = OAuth2Session(
        app["client_id"], redirect_uri=PUBLIC_REDIRECT_URI, scope=SCOPES, pkce="S256"
    )
    url, _ = session.authorization_url(f"{live_server.url}/oauth/authorize")
    assert query_of(url)["code_challenge_method"] == "S256"
    location = approve(live_server.url, url, live_server.world.admin)

    token = session.fetch_token(
        token_endpoint(live_server), authorization_response=location, include_client_id=True
    )

    assert set(token) >= USER_TOKEN_FIELDS
    me = session.get(f"{live_server.url}/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["client_id"] == app["client_id"]


def test_requests_oauthlib_public_app_default_basic_header_with_an_empty_secret_is_accepted(
    live_server: LiveServer,
) -> None:
    app = create_public_app(live_server)
    session = OAuth2Session(
        app["client_id"], redirect_uri=PUBLIC_REDIRECT_URI, scope=SCOPES, pkce="S256"
    )
    sent: list[Any] = []
    session.hooks["response"].append(lambda response, *args, **kw: sent.append(response.request))
    url, _ = session.authorization_url(f"{live_server.url}/oauth/authorize")
    location = approve(live_server.url, url, live_server.world.admin)

    token = session.fetch_token(token_endpoint(live_server), authorization_response=location)

    empty_secret = base64.b64encode(f"{app['client_id']}:".encode()).decode()
    assert sent[-1].headers["Authorization"] == f"Basic {empty_secret}"
    assert token["access_token"].startswith("gat_")
