"""GET/POST /oauth/authorize through the ASGI app (RFC 6749 §4.1.1, §4.1.2, §4.1.2.1; RFC 9207)."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.conftest import (
    REDIRECT_URI,
    World,
    authorize_params,
    callback_params,
    consent,
    hidden_fields,
    sign_in,
)


def test_a_visitor_who_is_not_signed_in_is_sent_to_login_and_back_to_the_same_request(
    client: TestClient, world: World
) -> None:
    params = authorize_params(world.app, state="s1", scope="read")
    response = client.get("/oauth/authorize", params=params)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/login?next=%2Foauth%2Fauthorize%3F")
    login_page = client.get(location)
    assert 'name="next" value="/oauth/authorize?' in login_page.text
    next_path = hidden_fields(login_page.text)["next"]
    signed_in = client.post(
        "/login",
        data={
            "email": world.admin.email,
            "password": world.admin.password,
            "csrf_token": hidden_fields(login_page.text)["csrf_token"],
            "next": next_path,
        },
    )
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == next_path
    page = client.get(signed_in.headers["location"])
    assert page.status_code == 200
    assert "Authorize" in page.text and world.app.client_id in page.text


def test_the_consent_page_names_the_application_company_scopes_token_kind_and_destination(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.employee)
    page = client.get("/oauth/authorize", params=authorize_params(world.app, scope="read"))
    assert page.status_code == 200
    assert "Acme integration" in page.text
    assert "Acme" in page.text
    assert "User token" in page.text
    assert "<code>read</code>" in page.text and "<code>write</code>" not in page.text
    assert REDIRECT_URI in page.text
    assert page.headers["cache-control"] == "no-store"


def test_deny_redirects_access_denied_with_the_state(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    params = callback_params(
        consent(client, authorize_params(world.app, state="keep-me"), decision="deny")
    )
    assert params["error"] == "access_denied"
    assert params["state"] == "keep-me"
    assert params["iss"] == "http://127.0.0.1:8000"
    assert "code" not in params


def test_scopes_written_with_commas_are_understood(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app, scope="read,write"))
    assert hidden_fields(page.text)["scope"] == "read write"


def test_no_scope_means_the_applications_scopes(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app))
    assert hidden_fields(page.text)["scope"] == "read write"


def test_a_scope_beyond_the_applications_is_redirected_as_invalid_scope(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)  # RFC 9700 §4.11.2: errors are redirected after sign-in
    response = client.get(
        "/oauth/authorize", params=authorize_params(world.app, scope="read admin", state="s")
    )
    params = callback_params(response)
    assert params["error"] == "invalid_scope"
    assert params["state"] == "s"


def test_an_unknown_client_gets_an_error_page_and_never_a_redirect(
    client: TestClient, world: World
) -> None:
    params = authorize_params(world.app)
    params["client_id"] = "nope"
    response = client.get("/oauth/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "no application has this client_id" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect(
    client: TestClient, world: World
) -> None:
    params = authorize_params(world.app, redirect_uri="https://attacker.example/cb")
    response = client.get("/oauth/authorize", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "attacker.example" not in response.headers.get("location", "")
    assert "does not match any redirect URI" in response.text


def test_a_redirect_uri_that_only_differs_in_case_or_a_trailing_slash_is_refused(
    client: TestClient, world: World
) -> None:
    for variant in (REDIRECT_URI + "/", REDIRECT_URI.upper(), REDIRECT_URI + "?x=1"):
        response = client.get(
            "/oauth/authorize", params=authorize_params(world.app, redirect_uri=variant)
        )
        assert response.status_code == 400, variant
        assert "location" not in response.headers


def test_a_missing_redirect_uri_is_refused_when_several_are_registered(
    client: TestClient, world: World
) -> None:
    params = authorize_params(world.app)
    del params["redirect_uri"]
    response = client.get("/oauth/authorize", params=params)
    assert response.status_code == 400
    assert "say which one" in response.text


def test_factorials_typo_url_gets_a_description_suggesting_the_scope_parameter(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)  # RFC 9700 §4.11.2: errors are redirected after sign-in
    params = authorize_params(world.app, response_type="code=read,write", state="t")
    params = callback_params(client.get("/oauth/authorize", params=params))
    assert params["error"] == "invalid_request"
    assert "scope=read,write" in params["error_description"]
    assert params["state"] == "t"


def test_an_unsupported_response_type_is_redirected_with_its_error(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)  # RFC 9700 §4.11.2: errors are redirected after sign-in
    params = callback_params(
        client.get("/oauth/authorize", params=authorize_params(world.app, response_type="token"))
    )
    assert params["error"] == "unsupported_response_type"


def test_a_repeated_parameter_is_refused(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)  # RFC 9700 §4.11.2: errors are redirected after sign-in
    query = (
        f"client_id={world.app.client_id}&redirect_uri={REDIRECT_URI}"
        "&response_type=code&state=a&state=b"
    )
    response = client.get(f"/oauth/authorize?{query}")
    params = callback_params(response)
    assert params["error"] == "invalid_request"
    assert "repeated" in params["error_description"]


def test_a_repeated_client_id_gets_a_page_not_a_redirect(client: TestClient, world: World) -> None:
    query = (
        f"client_id={world.app.client_id}&client_id={world.app.client_id}"
        f"&redirect_uri={REDIRECT_URI}&response_type=code"
    )
    response = client.get(f"/oauth/authorize?{query}")
    assert response.status_code == 400
    assert "location" not in response.headers


def test_an_oversized_parameter_is_refused(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    params = callback_params(
        client.get("/oauth/authorize", params=authorize_params(world.app, state="x" * 5000))
    )
    assert params["error"] == "invalid_request"
    assert "too long" in params["error_description"]
    assert "state" not in params


def test_a_bad_resource_owner_type_is_redirected_as_invalid_request(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)  # RFC 9700 §4.11.2: errors are redirected after sign-in
    params = callback_params(
        client.get(
            "/oauth/authorize",
            params=authorize_params(world.app, resource_owner_type="robot"),
        )
    )
    assert params["error"] == "invalid_request"
    assert "resource_owner_type" in params["error_description"]


def test_a_non_admin_asking_for_a_company_token_gets_an_explanation_and_the_client_access_denied(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.employee)
    page = client.get(
        "/oauth/authorize",
        params=authorize_params(world.app, resource_owner_type="company", state="c"),
    )
    assert page.status_code == 200
    assert "A company token needs an admin" in page.text
    assert 'value="allow"' not in page.text
    # Even a forged "allow" from this person is refused.
    forged = client.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    params = callback_params(forged)
    assert params["error"] == "access_denied"
    assert params["state"] == "c"
    assert "admin" in params["error_description"]


def test_an_admin_gets_a_company_token_that_never_expires(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get(
        "/oauth/authorize", params=authorize_params(world.app, resource_owner_type="company")
    )
    assert "Company token" in page.text and "never expires" in page.text
    code = callback_params(
        client.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    )["code"]
    token = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(world.app.client_id, world.app.client_secret or ""),
    ).json()
    assert "expires_in" not in token
    assert "refresh_token" not in token
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert me.json()["resource_owner_type"] == "company"
    assert me.json()["company"]["name"] == "Acme"


def test_a_consent_post_without_the_csrf_token_is_refused(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app))
    fields = hidden_fields(page.text)
    fields["csrf_token"] = "forged"
    response = client.post("/oauth/authorize", data={**fields, "decision": "allow"})
    assert response.status_code == 403
    assert "location" not in response.headers


def test_the_consent_form_is_revalidated_so_a_tampered_redirect_uri_is_refused(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app))
    fields = hidden_fields(page.text)
    fields["redirect_uri"] = "https://attacker.example/cb"
    response = client.post("/oauth/authorize", data={**fields, "decision": "allow"})
    assert response.status_code == 400
    assert "location" not in response.headers


def test_the_success_redirect_keeps_the_redirect_uris_own_query(
    client: TestClient, world: World, settings
) -> None:
    # The second registered URI has no query; register-time query strings are kept (§3.1.2).
    sign_in(client, world.admin)
    response = consent(
        client, authorize_params(world.app, redirect_uri="http://127.0.0.1:8765/callback")
    )
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "http",
        "127.0.0.1:8765",
        "/callback",
    )
    assert response.headers["referrer-policy"] == "no-referrer"


def test_a_user_of_another_company_authorizes_for_their_own_company(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.other_admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app))
    assert "registered by Acme" in page.text
    assert "Globex" in page.text
    code = callback_params(
        client.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    )["code"]
    token = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(world.app.client_id, world.app.client_secret or ""),
    ).json()["access_token"]
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["company"]["name"] == "Globex"
    assert me["user"]["email"] == world.other_admin.email


# RFC 9700 §4.11.2, the authorization server as an open redirector: anyone can register an
# application whose redirect URI is a phishing page, then send people a broken request to it.


def test_an_error_for_a_visitor_who_is_not_signed_in_is_redirected_only_after_sign_in(
    client: TestClient, world: World
) -> None:
    params = authorize_params(world.app, scope="read admin", state="s")
    first = client.get("/oauth/authorize", params=params)
    assert first.status_code == 303
    assert urlsplit(first.headers["location"]).path == "/login"
    sign_in(client, world.admin)
    assert callback_params(client.get("/oauth/authorize", params=params))["error"] == (
        "invalid_scope"
    )


def test_an_oversized_request_of_a_visitor_who_is_not_signed_in_gets_a_page(
    client: TestClient, world: World
) -> None:
    response = client.get("/oauth/authorize", params=authorize_params(world.app, state="x" * 5000))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "too long" in response.text


def test_an_error_for_another_companys_application_is_offered_not_followed(
    client: TestClient, world: World
) -> None:
    """The application is registered by company A; the person is company B's admin: they are
    told where they would go and decide, with the RFC 6749 §4.1.2.1 redirect as a link."""
    sign_in(client, world.other_admin)
    response = client.get(
        "/oauth/authorize", params=authorize_params(world.app, scope="read admin", state="s")
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not by your company" in response.text
    link = re.search(r'href="([^"]+)"[^>]*rel="noreferrer"', response.text)
    assert link is not None
    target = html.unescape(link.group(1))
    assert target.startswith(REDIRECT_URI + "?")
    assert "error=invalid_scope" in target and "state=s" in target and "iss=" in target


def test_a_denial_of_another_companys_application_is_offered_not_followed(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.other_admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app, state="d"))
    assert page.status_code == 200
    answered = client.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "deny"}
    )
    assert answered.status_code == 403
    assert "location" not in answered.headers
    assert "error=access_denied" in html.unescape(answered.text)


def test_a_denial_of_an_application_of_ones_own_company_is_redirected_at_once(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app, state="d"))
    answered = client.post(
        "/oauth/authorize", data={**hidden_fields(page.text), "decision": "deny"}
    )
    assert answered.status_code == 302
    assert callback_params(answered)["error"] == "access_denied"
