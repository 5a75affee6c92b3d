"""Threat: mix-up attacks (RFC 9700 §4.4, RFC 9207).

A client that talks to several authorization servers can be tricked into sending a code from
an honest server to an attacker's token endpoint. RFC 9207's defence: every authorization
response — success or error, redirected from any code path — carries ``iss``, and the
metadata says so, so the client can check where the response came from.

Covered elsewhere: a real client library checking ``iss`` (``tests/interop/test_authlib.py``).
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from grantly import admin
from grantly.app import create_app
from grantly.oauth.registration import validate
from tests.conftest import (
    REDIRECT_URI,
    World,
    authorize_params,
    consent,
    csrf_of,
    hidden_fields,
    make_settings,
    sign_in,
)

ISSUER = "http://127.0.0.1:8000"  # the issuer of the ``client`` fixture's settings


def _iss_values(response: Any) -> list[str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return parse_qs(urlsplit(location).query).get("iss", [])


# Each case: who signs in, the extra authorization parameters, and what the person presses
# (None: the response comes from GET /oauth/authorize itself).
RESPONSES = {
    "allow": ("admin", {}, "allow"),
    "deny": ("admin", {}, "deny"),
    "company token refused to an employee": (
        "employee",
        {"resource_owner_type": "company"},
        "allow",
    ),
    "invalid_scope": ("admin", {"scope": "payroll"}, None),
    "unsupported_response_type": ("admin", {"response_type": "token"}, None),
    "invalid_request (owner type)": ("admin", {"resource_owner_type": "root"}, None),
    "invalid_request (plain PKCE)": (
        "admin",
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        None,
    ),
}


@pytest.mark.parametrize("case", RESPONSES)
def test_every_authorization_response_names_its_issuer_once(
    client: TestClient, world: World, case: str
) -> None:
    """RFC 9207 §2 ("MUST" include ``iss`` in authorization responses, error responses
    included) and RFC 9700 §4.4.2: exactly one ``iss``, equal to the metadata's issuer."""
    who, extra, decision = RESPONSES[case]
    sign_in(client, getattr(world, who))
    params = authorize_params(world.app, state="st", **extra)
    if decision is None:
        response = client.get("/oauth/authorize", params=params)
    else:
        response = consent(client, params, decision=decision)
    assert _iss_values(response) == [ISSUER]
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == ISSUER


def test_an_error_offered_as_a_link_names_its_issuer(client: TestClient, world: World) -> None:
    """RFC 9207 §2 with RFC 9700 §4.11.2: an error for another company's application is not
    followed automatically but offered as a link; following it is still an authorization
    response, so the link carries ``iss`` too."""
    sign_in(client, world.other_admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app, scope="payroll"))
    assert page.status_code == 400 and "location" not in page.headers
    links = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page.text)]
    [link] = [h for h in links if h.startswith(REDIRECT_URI + "?")]
    assert parse_qs(urlsplit(link).query)["iss"] == [ISSUER]


def test_an_automatically_approved_authorization_names_its_issuer(
    client: TestClient, world: World
) -> None:
    """RFC 9207 §2: the code path that skips the consent page ("trusted" applications) adds
    ``iss`` too."""

    async def trusted(connection: Any) -> Any:
        draft = validate(
            name="In-house",
            redirect_uris=[REDIRECT_URI],
            confidential=True,
            scopes=["read"],
            server_scopes=("read", "write"),
            consent="trusted",
        )
        return await admin.create_application(connection, world.company_a, draft, 0)

    created = world.run(trusted)
    sign_in(client, world.employee)
    response = client.get(
        "/oauth/authorize",
        params={
            "client_id": created.application.client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
        },
    )
    assert _iss_values(response) == [ISSUER]


def test_the_metadata_advertises_iss_and_names_the_configured_issuer(
    world: World, tmp_path
) -> None:
    """RFC 9207 §3 (``authorization_response_iss_parameter_supported``) and RFC 8414 §3.3:
    the issuer in the metadata, in ``iss``, and the configured public URL are one and the
    same, so a client pinning it detects a response from another server."""
    issuer = "https://as.example"
    settings = make_settings(tmp_path, database_url=world.settings.database_url, issuer=issuer)
    with TestClient(
        create_app(settings), base_url="https://as.example", follow_redirects=False
    ) as http:
        metadata = http.get("/.well-known/oauth-authorization-server").json()
        assert metadata["authorization_response_iss_parameter_supported"] is True
        assert metadata["issuer"] == issuer
        assert metadata["authorization_endpoint"] == f"{issuer}/oauth/authorize"
        assert metadata["token_endpoint"] == f"{issuer}/oauth/token"
        sign_in(http, world.admin)
        response = consent(http, authorize_params(world.app))
        assert _iss_values(response) == [issuer]


def test_a_redirect_uri_cannot_smuggle_a_forged_iss(client: TestClient, world: World) -> None:
    """RFC 9700 §4.4.2.1 / RFC 9207 §2: an admin cannot register a redirect URI that already
    carries ``iss`` (or ``code``/``state``), which would put a second, forged ``iss`` in the
    response next to Grantly's."""
    sign_in(client, world.admin)
    page = client.get("/oauth/applications/new")
    response = client.post(
        "/oauth/applications",
        data={
            "csrf_token": csrf_of(page.text),
            "form_id": hidden_fields(page.text).get("form_id", ""),
            "name": "Mix-up",
            "redirect_uris": "https://attacker.example/cb?iss=https%3A%2F%2F127.0.0.1%3A8000",
            "confidential": "on",
            "scopes": "read",
        },
    )
    assert response.status_code == 422
    assert "iss" in response.text


def test_a_forged_host_header_does_not_change_the_issuer(client: TestClient, world: World) -> None:
    """RFC 9700 §4.4.2.1 and §4.13 (TLS-terminating reverse proxies): the issuer is
    configuration, never derived from request headers, so a request with a forged ``Host``
    or ``X-Forwarded-Host`` cannot make Grantly name another issuer in ``iss`` or in the
    metadata a client pins."""
    forged = {"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"}
    metadata = client.get("/.well-known/oauth-authorization-server", headers=forged).json()
    assert "attacker" not in str(metadata)
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app), headers=forged)
    response = client.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"}, headers=forged
    )
    assert _iss_values(response) == [ISSUER]
