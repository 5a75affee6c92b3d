"""How the resource API judges credentials: RFC 6750 challenges, scopes, and API keys.

RFC 6750 §3.1: no credential gets a bare challenge; a bad one ``invalid_token`` (401); a token
without the scope ``insufficient_scope`` (403) naming the scope. Factorial: an API key in
``x-api-key`` has full company access and, when a Bearer token is sent too, decides.
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import (
    CREDENTIALS,
    EMPLOYEES,
    Target,
    api_key,
    bearer,
    company_token,
    dashboard_api_key,
    user_token,
)
from tests.conftest import World, csrf_of, sign_in


def test_a_request_without_credentials_gets_a_bare_bearer_challenge(
    client: TestClient, world: World
) -> None:
    response = client.get(EMPLOYEES)
    assert response.status_code == 401
    # RFC 6750 §3 and RFC 9449 §7.1: one challenge per scheme, neither with an error code.
    assert response.headers.get_list("www-authenticate") == [
        'Bearer realm="grantly", resource_metadata='
        '"http://127.0.0.1:8000/.well-known/oauth-protected-resource/api"',
        'DPoP algs="ES256 ES384 ES512 PS256 RS256 EdDSA"',
    ]
    assert "error" not in response.json()


def test_an_unknown_api_key_is_invalid_token(client: TestClient, world: World) -> None:
    response = client.get(EMPLOYEES, headers=api_key("gak_not-a-key"))
    assert response.status_code == 401
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "the API key is invalid or revoked.",
    }
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_two_api_key_headers_are_an_invalid_request(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin)
    response = client.get(EMPLOYEES, headers=[("x-api-key", key), ("x-api-key", key)])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_malformed_authorization_header_is_an_invalid_request(
    client: TestClient, world: World
) -> None:
    response = client.get(EMPLOYEES, headers={"Authorization": "Bearer two words"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


def test_an_api_key_decides_over_an_invalid_bearer_token(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin)
    response = client.get(CREDENTIALS, headers={**api_key(key), **bearer("gat_garbage")})
    assert response.status_code == 200
    assert response.json()["data"][0]["id"].startswith("api_key_")


def test_a_revoked_api_key_is_refused_even_beside_a_valid_bearer_token(
    client: TestClient, world: World
) -> None:
    key = dashboard_api_key(client, world.admin)
    token = user_token(client, world.admin, world.app)
    sign_in(client, world.admin)
    page = client.get("/api_keys")
    key_id = page.text.split('action="/api_keys/')[1].split("/revoke")[0]
    client.post(
        f"/api_keys/{key_id}/revoke", data={"csrf_token": csrf_of(page.text), "confirmed": "yes"}
    )
    response = client.get(CREDENTIALS, headers={**api_key(key), **bearer(token)})
    assert response.status_code == 401
    assert response.json()["error_description"] == "the API key is invalid or revoked."


def test_an_api_key_of_another_company_beside_a_user_token_acts_for_the_key_s_company(
    client: TestClient, world: World
) -> None:
    other_key = dashboard_api_key(client, world.other_admin)
    token = user_token(client, world.admin, world.app)
    response = client.get(CREDENTIALS, headers={**api_key(other_key), **bearer(token)})
    credential = response.json()["data"][0]
    assert credential["company_id"] == world.company_b
    assert credential["employee_id"] is None


def test_an_api_key_beside_an_employee_s_token_may_write(
    client: TestClient, world: World, target: Target
) -> None:
    key = dashboard_api_key(client, world.admin)
    token = user_token(client, world.employee, world.app)
    response = client.put(
        f"{EMPLOYEES}/{target.id}",
        headers={**bearer(token), **api_key(key)},
        json={"preferred_name": "T"},
    )
    assert response.status_code == 200


def test_a_token_without_write_scope_cannot_change_an_employee(
    client: TestClient, world: World, target: Target
) -> None:
    token = user_token(client, world.admin, world.app, scope="read")
    response = client.put(
        f"{EMPLOYEES}/{target.id}", headers=bearer(token), json={"preferred_name": "T"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="write"' in challenge


def test_a_token_without_read_scope_cannot_list_employees(client: TestClient, world: World) -> None:
    token = user_token(client, world.admin, world.app, scope="write")
    response = client.get(EMPLOYEES, headers=bearer(token))
    assert response.status_code == 403
    assert 'scope="read"' in response.headers["www-authenticate"]


def test_a_write_only_token_may_write(client: TestClient, world: World, target: Target) -> None:
    token = user_token(client, world.admin, world.app, scope="write")
    response = client.put(
        f"{EMPLOYEES}/{target.id}", headers=bearer(token), json={"preferred_name": "T"}
    )
    assert response.status_code == 200


def test_a_read_only_company_token_cannot_write(
    client: TestClient, world: World, target: Target
) -> None:
    """The admin consented to ``read`` only: acting for the company does not widen that."""
    token = company_token(client, world.admin, world.app, scope="read")
    response = client.post(
        f"{EMPLOYEES}/terminate",
        headers=bearer(token),
        json={"id": target.id, "terminated_on": "2030-01-01"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_the_credential_is_judged_before_the_body(client: TestClient, world: World) -> None:
    response = client.post(f"{EMPLOYEES}/terminate", content=b"{not json", headers={})
    assert response.status_code == 401


def test_the_scope_is_judged_before_the_body(client: TestClient, world: World) -> None:
    token = user_token(client, world.admin, world.app, scope="read")
    response = client.post(
        f"{EMPLOYEES}/terminate",
        content=b"{not json",
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_an_employee_is_refused_a_write_before_the_body_is_judged(
    client: TestClient, world: World
) -> None:
    token = user_token(client, world.employee, world.app)
    response = client.post(f"{EMPLOYEES}/terminate", headers=bearer(token), json={"id": "x"})
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"


def test_an_invalid_body_with_a_valid_credential_is_422_invalid_request(
    client: TestClient, world: World
) -> None:
    key = dashboard_api_key(client, world.admin)
    response = client.post(
        f"{EMPLOYEES}/terminate",
        content=b"{not json",
        headers={**api_key(key), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert response.headers["cache-control"] == "no-store"


def test_the_bearer_scheme_is_case_insensitive_on_resources(
    client: TestClient, world: World
) -> None:
    token = user_token(client, world.employee, world.app)
    response = client.get(EMPLOYEES, headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


def test_an_api_key_works_at_api_v1_me(client: TestClient, world: World) -> None:
    key = dashboard_api_key(client, world.admin, name="Probe")
    body = client.get("/api/v1/me", headers=api_key(key)).json()
    assert body["resource_owner_type"] == "company"
    assert body["api_key"]["name"] == "Probe"
    assert body["company"] == {"id": world.company_a, "name": "Acme"}
