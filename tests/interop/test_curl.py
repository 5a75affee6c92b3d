"""curl, typed exactly as Factorial's guides document the token exchange, against a real
`grantly serve`.

Each command is written as a person would paste it into a shell and split with ``shlex``;
``--silent --show-error --write-out`` are appended only to read the HTTP status.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import REDIRECT_URI, LiveServer, Person, authorize_url
from tests.interop.person import approve, query_of

pytestmark = pytest.mark.live

CURL = "/usr/bin/curl"
ENCODED_REDIRECT_URI = quote(REDIRECT_URI, safe="")  # https%3A%2F%2Fclient.example%2Fcallback
USER_TOKEN_FIELDS = {
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "created_at",
}
COMPANY_TOKEN_FIELDS = {"access_token", "token_type", "scope", "created_at"}


def curl(command: str) -> tuple[int, Any]:
    """Run a curl command line as typed; return the HTTP status and the parsed JSON body."""
    argv = shlex.split(command)
    assert argv[0] == "curl"
    out = subprocess.run(
        [CURL, *argv[1:], "--silent", "--show-error", "--write-out", "\n%{http_code}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = out.stdout.rpartition("\n")
    return int(status), json.loads(body)


def get_code(live_server: LiveServer, person: Person | None = None, **extra: str) -> str:
    location = approve(
        live_server.url,
        authorize_url(live_server.url, live_server.world.app, state="curl-state", **extra),
        person or live_server.world.admin,
    )
    params = query_of(location)
    assert params["state"] == "curl-state"
    assert params["iss"] == live_server.url
    return params["code"]


def exchange_in_body(live_server: LiveServer, code: str) -> tuple[int, Any]:
    app = live_server.world.app
    return curl(
        f"curl -X POST '{live_server.url}/oauth/token' "
        f"-d 'client_id={app.client_id}&client_secret={app.client_secret}&code={code}"
        f"&grant_type=authorization_code&redirect_uri={ENCODED_REDIRECT_URI}'"
    )


def exchange_in_query(live_server: LiveServer, code: str) -> tuple[int, Any]:
    app = live_server.world.app
    return curl(
        f"curl -X POST '{live_server.url}/oauth/token?client_id={app.client_id}"
        f"&client_secret={app.client_secret}&code={code}&grant_type=authorization_code"
        f"&redirect_uri={ENCODED_REDIRECT_URI}'"
    )


def refresh(live_server: LiveServer, refresh_token: str) -> tuple[int, Any]:
    app = live_server.world.app
    return curl(
        f"curl -X POST '{live_server.url}/oauth/token' "
        f"-d 'client_id={app.client_id}&client_secret={app.client_secret}"
        f"&refresh_token={refresh_token}&grant_type=refresh_token'"
    )


def me(live_server: LiveServer, access_token: str) -> tuple[int, Any]:
    return curl(f"curl -H 'Authorization: Bearer {access_token}' {live_server.url}/api/v1/me")


def assert_factorial_user_token(body: dict[str, Any]) -> None:
    assert set(body) == USER_TOKEN_FIELDS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["scope"] == "read write"
    assert isinstance(body["created_at"], int)
    assert abs(body["created_at"] - time.time()) < 120
    assert body["access_token"].startswith("gat_")
    assert body["refresh_token"].startswith("grt_")


# --- the token exchange -------------------------------------------------------------------


def test_curl_code_exchange_with_a_form_body_returns_exactly_factorials_fields(
    live_server: LiveServer,
) -> None:
    status, body = exchange_in_body(live_server, get_code(live_server))

    assert status == 200, body
    assert_factorial_user_token(body)


def test_curl_code_exchange_with_parameters_in_the_query_string_returns_exactly_factorials_fields(
    live_server: LiveServer,
) -> None:
    status, body = exchange_in_query(live_server, get_code(live_server))

    assert status == 200, body
    assert_factorial_user_token(body)


def test_curl_code_exchange_with_a_loopback_redirect_uri_left_unencoded_is_accepted(
    live_server: LiveServer,
) -> None:
    app = live_server.world.app
    loopback = "http://127.0.0.1:8765/callback"
    code = get_code(live_server, redirect_uri=loopback)
    status, body = curl(
        f"curl -X POST '{live_server.url}/oauth/token' "
        f"-d 'client_id={app.client_id}&client_secret={app.client_secret}&code={code}"
        f"&grant_type=authorization_code&redirect_uri={loopback}'"
    )

    assert status == 200, body
    assert_factorial_user_token(body)


def test_curl_second_exchange_of_the_same_code_fails_with_invalid_grant(
    live_server: LiveServer,
) -> None:
    code = get_code(live_server)
    assert exchange_in_body(live_server, code)[0] == 200

    status, body = exchange_in_query(live_server, code)

    assert status == 400
    assert body["error"] == "invalid_grant"
    assert body["error_description"]


def test_curl_replaying_a_code_revokes_the_access_token_issued_from_it(
    live_server: LiveServer,
) -> None:
    code = get_code(live_server)
    token = exchange_in_body(live_server, code)[1]["access_token"]
    assert me(live_server, token)[0] == 200
    assert exchange_in_body(live_server, code)[0] == 400

    status, body = me(live_server, token)

    assert status == 401
    assert body["error"] == "invalid_token"


def test_curl_exchange_without_the_redirect_uri_of_the_authorization_request_fails(
    live_server: LiveServer,
) -> None:
    app = live_server.world.app
    status, body = curl(
        f"curl -X POST '{live_server.url}/oauth/token' "
        f"-d 'client_id={app.client_id}&client_secret={app.client_secret}"
        f"&code={get_code(live_server)}&grant_type=authorization_code'"
    )

    assert status == 400
    assert body["error"] == "invalid_grant"


# --- calling the API ----------------------------------------------------------------------


def test_curl_bearer_token_opens_api_v1_me_as_the_user_who_allowed(
    live_server: LiveServer,
) -> None:
    token = exchange_in_body(live_server, get_code(live_server))[1]

    status, body = me(live_server, token["access_token"])

    assert status == 200, body
    assert body["resource_owner_type"] == "user"
    assert body["user"]["email"] == live_server.world.admin.email
    assert body["client_id"] == live_server.world.app.client_id
    assert body["scope"] == "read write"
    assert body["expires_at"] == token["created_at"] + token["expires_in"]


def test_curl_api_v1_me_with_an_unknown_token_is_401_invalid_token(
    live_server: LiveServer,
) -> None:
    status, body = me(live_server, "gat_this-token-was-never-issued")

    assert status == 401
    assert body["error"] == "invalid_token"


# --- refreshing ---------------------------------------------------------------------------


def test_curl_refresh_returns_exactly_factorials_fields_with_a_new_pair(
    live_server: LiveServer,
) -> None:
    first = exchange_in_body(live_server, get_code(live_server))[1]

    status, second = refresh(live_server, first["refresh_token"])

    assert status == 200, second
    assert_factorial_user_token(second)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]


def test_curl_refreshed_access_token_opens_api_v1_me(live_server: LiveServer) -> None:
    first = exchange_in_body(live_server, get_code(live_server))[1]
    second = refresh(live_server, first["refresh_token"])[1]

    status, body = me(live_server, second["access_token"])

    assert status == 200, body
    assert body["user"]["email"] == live_server.world.admin.email


def test_curl_used_refresh_token_is_rejected_with_invalid_grant(live_server: LiveServer) -> None:
    first = exchange_in_body(live_server, get_code(live_server))[1]
    assert refresh(live_server, first["refresh_token"])[0] == 200

    status, body = refresh(live_server, first["refresh_token"])

    assert status == 400
    assert body["error"] == "invalid_grant"


# --- company tokens -----------------------------------------------------------------------


def test_curl_company_token_has_no_expires_in_and_no_refresh_token(
    live_server: LiveServer,
) -> None:
    code = get_code(live_server, resource_owner_type="company")

    status, body = exchange_in_body(live_server, code)

    assert status == 200, body
    assert set(body) == COMPANY_TOKEN_FIELDS
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "read write"
    assert isinstance(body["created_at"], int)


def test_curl_company_token_opens_api_v1_me_as_the_company_without_expiry(
    live_server: LiveServer,
) -> None:
    code = get_code(live_server, resource_owner_type="company")
    token = exchange_in_body(live_server, code)[1]["access_token"]

    status, body = me(live_server, token)

    assert status == 200, body
    assert body["resource_owner_type"] == "company"
    assert body["company"] == {"id": live_server.world.company_a, "name": "Acme"}
    assert body["expires_at"] is None
    assert "user" not in body
