"""Threat: client impersonation (RFC 9700 §2.5, §4.15; RFC 6749 §2.3, §3.2.1, §5.2).

Someone who knows a confidential client's ``client_id`` (it is public: it sits in every
authorization URL) tries to act as that client at the token, revocation and introspection
endpoints: with a guessed secret, with the secret of another client they own, as a "public"
client with no secret, or by mixing credentials. Client authentication failures answer
``invalid_client`` with 401 and ``WWW-Authenticate`` and leave a trace in the audit trail of
the company that owns the client.

Covered elsewhere: a wrong secret with HTTP Basic (``tests/web/test_token_endpoint.py::
test_a_wrong_secret_is_invalid_client_with_401_and_www_authenticate``), a public client
sending a secret (``tests/web/test_public_clients.py::test_a_public_client_sending_a_secret_is_refused``),
the old secret after Regenerate (``tests/web/test_applications_dashboard.py::
test_regenerating_the_secret_retires_the_old_one``), and throttling (``test_brute_force.py``).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.oauth.pkce import new_verifier, s256
from grantly.store import tables as t
from tests.conftest import (
    REDIRECT_URI,
    Client,
    World,
    callback_params,
    consent,
    count_rows,
    csrf_of,
    exchange,
    hidden_fields,
    obtain_code,
    sign_in,
)
from tests.security.conftest import audit_trail, basic, oauth_error

ENDPOINTS = {
    "/oauth/token": {"grant_type": "authorization_code", "code": "gac_x"},
    "/oauth/revoke": {"token": "gat_x"},
    "/oauth/introspect": {"token": "gat_x"},
}


def _invalid_client(response) -> dict:
    body = oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].lower().startswith("basic")
    return body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_secret_of_another_client_opens_nothing(
    client: TestClient, world: World, endpoint: str
) -> None:
    """RFC 6749 §2.3.1 / RFC 9700 §2.5: company B's admin holds a genuine secret — of
    B's application. Presented with A's ``client_id`` it authenticates nothing, at any
    endpoint, by either method."""
    data = ENDPOINTS[endpoint]
    stolen_id = world.app.client_id
    own_secret = world.other_app.client_secret or ""
    _invalid_client(client.post(endpoint, data=data, auth=(stolen_id, own_secret)))
    _invalid_client(
        client.post(endpoint, data={**data, "client_id": stolen_id, "client_secret": own_secret})
    )


def test_a_confidential_client_cannot_pass_as_public_with_pkce(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §3.2.1 / RFC 9700 §2.5: "public" is what the server registered, not what the
    request claims. A thief with the code and its verifier, sending only the confidential
    client's id (no secret), gets 401 — PKCE does not replace the secret."""
    verifier = new_verifier()
    code = obtain_code(client, world, code_challenge=s256(verifier), code_challenge_method="S256")
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": world.app.client_id,
            "code_verifier": verifier,
        },
    )
    oauth_error(response, 401, "invalid_client")
    assert count_rows(world.settings, "access_tokens") == 0
    # The attempt did not burn the code: the real client still redeems it.
    assert exchange(client, world.app, code, code_verifier=verifier).status_code == 200


def test_a_public_client_cannot_use_confidential_only_endpoints(
    client: TestClient, world: World, public_app: Client
) -> None:
    """RFC 7662 §2.1 / RFC 9700 §2.5: a public client proves nothing about itself, so it may
    not introspect tokens, nor (authorization side) ask for a never-expiring company token."""
    oauth_error(
        client.post(
            "/oauth/introspect", data={"token": "gat_x", "client_id": public_app.client_id}
        ),
        401,
        "invalid_client",
    )
    sign_in(client, world.admin)
    response = client.get(
        "/oauth/authorize",
        params={
            "client_id": public_app.client_id,
            "redirect_uri": public_app.redirect_uris[0],
            "response_type": "code",
            "resource_owner_type": "company",
            "code_challenge": s256(new_verifier()),
            "code_challenge_method": "S256",
        },
    )
    assert callback_params(response)["error"] == "unauthorized_client"


def test_a_client_id_in_the_body_cannot_contradict_http_basic(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §2.3 ("MUST NOT use more than one authentication method"): the attacker
    authenticates as their own client with HTTP Basic and names the victim client in the body,
    hoping the code is checked against one and the credentials against the other."""
    code = obtain_code(client, world)
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": world.app.client_id,
        },
        auth=basic(world.other_app),
    )
    oauth_error(response, 400, "invalid_request")
    assert count_rows(world.settings, "access_tokens") == 0


def test_a_code_issued_to_another_client_is_invalid_grant_not_invalid_client(
    client: TestClient, world: World
) -> None:
    """RFC 6749 §5.2: the attacker's client authenticated fine; the grant is what is wrong:
    ``invalid_grant`` with 400 and no authentication challenge."""
    code = obtain_code(client, world)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=basic(world.other_app),
    )
    oauth_error(response, 400, "invalid_grant")
    assert "www-authenticate" not in response.headers


def test_unknown_clients_and_wrong_secrets_look_the_same(client: TestClient, world: World) -> None:
    """RFC 9700 §2.5 / RFC 6749 §5.2: the answer does not tell an attacker which client ids
    exist."""
    data = ENDPOINTS["/oauth/token"]
    wrong = client.post("/oauth/token", data=data, auth=(world.app.client_id, "gcs_guess"))
    unknown = client.post("/oauth/token", data=data, auth=("no-such-client", "gcs_guess"))
    assert _invalid_client(wrong) == _invalid_client(unknown)


def test_a_client_cannot_choose_its_client_id(client: TestClient, world: World) -> None:
    """RFC 9700 §4.15 (client impersonating a resource owner): client ids are random values
    the server assigns, so a new application cannot take an id that names someone else —
    here, an existing application's."""
    sign_in(client, world.admin)
    page = client.get("/oauth/applications/new")
    created = client.post(
        "/oauth/applications",
        data={
            "csrf_token": csrf_of(page.text),
            "form_id": hidden_fields(page.text)["form_id"],
            "name": "Impostor",
            "redirect_uris": "https://attacker.example/cb",
            "confidential": "on",
            "scopes": "read",
            "client_id": world.other_app.client_id,
            "uid": world.other_app.client_id,
        },
    )
    assert created.status_code == 201
    ids = world.run(lambda c: c.tx.rows(select(t.applications.c.client_id)))
    ids = [row[0] for row in ids]
    assert len(ids) == len(set(ids)) == 3
    assert re.search(r"[A-Za-z0-9_-]{32}", ids[-1])


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_failed_client_authentication_is_audited_for_the_clients_company(
    client: TestClient, world: World, endpoint: str
) -> None:
    """RFC 9700 §2.5 / RFC 6749 §10.10 (and issue 5, "leaves a trace in the audit log"): someone presenting a wrong secret
    for company A's client is a security event A's admins must be able to see — without
    the guessed secret."""
    guess = "gcs_attackers_guess_0123456789"
    client.post(endpoint, data=ENDPOINTS[endpoint], auth=(world.app.client_id, guess))
    traces = [
        trace for trace in audit_trail(world) if trace.event == "client.authentication_failed"
    ]
    assert len(traces) == 1
    assert (traces[0].company_id, traces[0].application_id) == (world.company_a, world.app.id)
    assert guess not in repr(traces)
    # An id no application has belongs to no company: counted, not written.
    client.post(endpoint, data=ENDPOINTS[endpoint], auth=("no-such-client", guess))
    assert len(audit_trail(world)) == 1
    sign_in(client, world.admin)
    assert "Client authentication failed" in client.get("/audit").text


def test_a_public_client_with_a_stolen_code_but_no_verifier_is_refused(
    client: TestClient, world: World, public_app: Client
) -> None:
    """RFC 9700 §2.1.1 / RFC 7636: for a public client, PKCE is the client authentication of
    the code exchange; knowing the public client_id and the code is not enough."""
    verifier = new_verifier()
    sign_in(client, world.employee)
    code = callback_params(
        consent(
            client,
            {
                "client_id": public_app.client_id,
                "redirect_uri": public_app.redirect_uris[0],
                "response_type": "code",
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
            },
        )
    )["code"]
    response = exchange(client, public_app, code, redirect_uri=public_app.redirect_uris[0])
    oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit"])
def test_no_grant_lets_a_client_act_without_a_person(
    client: TestClient, world: World, grant_type: str
) -> None:
    """RFC 9700 §2.4 (the resource owner password credentials grant MUST NOT be used) and
    §4.15 (a client impersonating a resource owner): Grantly issues tokens only through a
    person's consent (authorization code) and its refresh; a client holding a stolen password
    gets ``unsupported_grant_type``. The client credentials grant (RFC 6749 §4.4), which acts
    for the application's company and never for a person, is refused unless the application's
    admins allowed it: ``unauthorized_client`` (RFC 6749 §5.2)."""
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": grant_type,
            "username": world.employee.email,
            "password": world.employee.password,
        },
        auth=basic(world.app),
    )
    allowed_only = grant_type == "client_credentials"
    oauth_error(response, 400, "unauthorized_client" if allowed_only else "unsupported_grant_type")
    assert count_rows(world.settings, "access_tokens") == 0
