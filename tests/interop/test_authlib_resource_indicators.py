"""Resource indicators (RFC 8707) with Authlib's OAuth2Session against a real `grantly serve`.

Authlib knows nothing of RFC 8707: ``resource`` goes as an extra parameter of the authorization
URL and of the token requests, as any client library sends it. The resource server is
registered with `grantly resources create` and introspects with the credentials it printed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from authlib.integrations.base_client import OAuthError

from tests.conftest import LiveServer
from tests.interop.person import query_of, sign_in_through
from tests.interop.test_authlib import authorize, confidential_session, token_endpoint

pytestmark = pytest.mark.live

REPORTS = "https://reports.example/api"


@pytest.fixture
def reports(live_server: LiveServer) -> dict[str, Any]:
    return live_server.grantly("resources", "create", "--uri", REPORTS, "--name", "Reports API")


def introspect(live_server: LiveServer, token: str, server: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        f"{live_server.url}/oauth/introspect",
        data={"token": token},
        auth=(server["client_id"], server["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_authlib_gets_a_token_for_a_registered_resource_and_only_it_accepts_it(
    live_server: LiveServer, reports: dict[str, Any]
) -> None:
    session, _ = confidential_session(live_server)
    location, state = authorize(live_server, session, resource=REPORTS)
    token = session.fetch_token(
        token_endpoint(live_server), authorization_response=location, state=state, resource=REPORTS
    )
    assert token["scope"] == "read write"

    seen = introspect(live_server, token["access_token"], reports)
    assert seen["active"] is True and seen["aud"] == REPORTS
    me = session.get(f"{live_server.url}/api/v1/me")
    assert me.status_code == 401 and me.json()["error"] == "invalid_token"
    assert "resource_metadata=" in me.headers["www-authenticate"]

    refreshed = session.refresh_token(token_endpoint(live_server), resource=REPORTS)
    assert introspect(live_server, refreshed["access_token"], reports)["active"] is True


def test_authlib_is_told_invalid_target_for_a_resource_nobody_registered(
    live_server: LiveServer,
) -> None:
    session, _ = confidential_session(live_server)
    url, _ = session.create_authorization_url(
        f"{live_server.url}/oauth/authorize", resource="https://nowhere.example/api"
    )
    answer = sign_in_through(live_server.url, url, live_server.world.admin)
    assert answer.status_code == 302  # no consent asked: the error goes back at once
    params = query_of(answer.headers["location"])
    assert params["error"] == "invalid_target" and params["iss"] == live_server.url


def test_authlib_cannot_widen_a_grant_at_the_token_endpoint(
    live_server: LiveServer, reports: dict[str, Any]
) -> None:
    session, _ = confidential_session(live_server)
    location, state = authorize(live_server, session)
    with pytest.raises(OAuthError) as error:
        session.fetch_token(
            token_endpoint(live_server),
            authorization_response=location,
            state=state,
            resource=REPORTS,
        )
    assert error.value.error == "invalid_target"
