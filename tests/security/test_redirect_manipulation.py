"""Threat: redirect URI manipulation and open redirection (RFC 9700 §2.1, §4.1, §4.11, §4.12).

The attacker crafts an authorization request whose ``redirect_uri`` resembles a registered
one, hoping the code (or just the browser) lands on a server they control. Grantly compares
redirect URIs character for character (a loopback port may vary for native apps only,
RFC 8252 §7.3); anything else is an HTML error page, never a redirect.

Covered elsewhere: an unknown client (``tests/web/test_authorize_endpoint.py::
test_an_unknown_client_gets_an_error_page_and_never_a_redirect``), a consent form whose
redirect URI was tampered with before Allow (``…::
test_the_consent_form_is_revalidated_so_a_tampered_redirect_uri_is_refused``), sign-in's
``next`` on POST (``tests/web/test_login.py::test_sign_in_never_redirects_off_site``), and the
registration rules (``tests/oauth/test_redirect_uris.py``); also RFC 9700 §4.11.2's phishing
variant — an attacker's own application, with its own registered redirect URI, sending a
deliberately broken request — which is redirected only after sign-in and only automatically
to an application of the person's own company (``tests/web/test_authorize_endpoint.py::
test_an_error_for_a_visitor_who_is_not_signed_in_is_redirected_only_after_sign_in``,
``…::test_an_error_for_another_companys_application_is_offered_not_followed``,
``…::test_a_denial_of_another_companys_application_is_offered_not_followed``).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.store import tables as t
from tests.conftest import (
    REDIRECT_URI,
    Client,
    World,
    authorize_params,
    consent,
    count_rows,
    csrf_of,
    hidden_fields,
    obtain_code,
    sign_in,
)
from tests.security.conftest import events

# World.app registers https://client.example/callback and http://127.0.0.1:8765/callback.
LOOK_ALIKES = [
    "https://attacker.example/callback",
    "https://client.example/callback/",  # suffix
    "https://client.example/callbackx",
    "https://client.example/call",  # prefix
    "https://client.example/callback/../../attacker",  # path traversal
    "https://client.example/callback%2F..%2Fattacker",
    "https://client.example/%63allback",  # percent-encoded look-alike of the same path
    "https://client.example/Callback",  # case of the path
    "https://CLIENT.EXAMPLE/callback",  # case of the host
    "HTTPS://client.example/callback",  # case of the scheme
    "https://client.example.attacker.example/callback",  # host suffix
    "https://client.example@attacker.example/callback",  # userinfo
    "https://attacker.example@client.example/callback",
    "https://client.example:443/callback",  # explicit default port
    "https://client.example:8443/callback",  # another port
    "http://client.example/callback",  # scheme downgrade
    "https://client.example/callback?next=https://attacker.example",  # query added
    "https://client.example/callback#@attacker.example",  # fragment
    "//attacker.example/callback",  # scheme-relative
    "https://client.example\\@attacker.example/callback",
    "https://client.example/callback ",
    "http://127.0.0.1:8766/callback",  # port: a confidential app's loopback URI is exact
    "http://localhost:8765/callback",
    "javascript:alert(document.domain)//https://client.example/callback",
]


def _assert_error_page(response) -> None:
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "attacker" not in response.headers.get("refresh", "")


@pytest.mark.parametrize("redirect_uri", LOOK_ALIKES)
def test_a_look_alike_redirect_uri_gets_an_error_page_never_a_redirect(
    client: TestClient, world: World, redirect_uri: str
) -> None:
    """RFC 9700 §2.1 / §4.1.3 (exact string matching) and §4.11.2 (the authorization server as
    open redirector), RFC 6749 §4.1.2.1: an invalid redirect URI MUST NOT be redirected to —
    not even with an error, and not even for a signed-in person who would click Allow."""
    sign_in(client, world.admin)
    response = client.get(
        "/oauth/authorize", params=authorize_params(world.app, redirect_uri=redirect_uri)
    )
    _assert_error_page(response)


@pytest.mark.parametrize(
    "params",
    [
        {"response_type": "token"},
        {"scope": "admin"},
        {"resource_owner_type": "root"},
        {"code_challenge_method": "plain", "code_challenge": "x" * 43},
    ],
)
def test_a_bad_request_with_a_foreign_redirect_uri_is_not_redirected(
    client: TestClient, world: World, params: dict[str, str]
) -> None:
    """RFC 6749 §4.1.2.1, RFC 9700 §4.11.2: errors that would normally go back to the client
    are shown on a page when the redirect URI is not registered: an attacker cannot make
    Grantly bounce a browser to their site by breaking another parameter on purpose."""
    response = client.get(
        "/oauth/authorize",
        params=authorize_params(
            world.app, redirect_uri="https://attacker.example/callback", **params
        ),
    )
    _assert_error_page(response)


def test_denying_a_tampered_consent_form_is_not_redirected_either(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.11.2: the consent POST is re-validated; pressing Deny on a form whose
    redirect URI was changed yields a page, not an ``access_denied`` redirect to the attacker."""
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app, state="s"))
    fields = hidden_fields(page.text)
    fields["redirect_uri"] = "https://attacker.example/callback"
    response = client.post("/oauth/authorize", data={**fields, "decision": "deny"})
    _assert_error_page(response)
    assert "authorization.denied" not in events(world)


def test_a_consent_form_pointed_at_another_registered_client_grants_nothing_to_the_attacker(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.1: swapping ``client_id`` in the consent form for another application while
    keeping the first one's redirect URI fails validation instead of sending a code there."""
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app))
    fields = hidden_fields(page.text)
    fields["client_id"] = world.other_app.client_id
    fields["redirect_uri"] = "https://attacker.example/callback"
    response = client.post("/oauth/authorize", data={**fields, "decision": "allow"})
    _assert_error_page(response)
    assert count_rows(world.settings, "authorization_codes") == 0


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1.attacker.example:5000/cb",
        "http://localhost:5000/cb",  # another host name, though loopback
        "http://[::1]:5000/cb",
        "https://127.0.0.1:5000/cb",
        "http://127.0.0.1:5000/cb/../attacker",
        "http://127.0.0.1:5000/cb?x=1",
        "http://attacker@127.0.0.1:5000/cb",
        "com.example.app:/oauth/callback/../x",
        "com.example.appx:/oauth/callback",
    ],
)
def test_the_native_loopback_exception_varies_the_port_only(
    client: TestClient, world: World, public_app: Client, redirect_uri: str
) -> None:
    """RFC 8252 §7.3 and RFC 9700 §2.1 / §4.1.3: a public app may use any port on its
    registered loopback URI (``http://127.0.0.1/cb``) — and nothing else may differ."""
    response = client.get(
        "/oauth/authorize",
        params={
            "client_id": public_app.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
        },
    )
    _assert_error_page(response)


@pytest.mark.parametrize(
    "target",
    [
        "https://attacker.example/",
        "//attacker.example/",
        "/\\attacker.example",
        "\\\\attacker.example",
        "/\t/attacker.example",
        "http:attacker.example",
    ],
)
def test_a_signed_in_visit_to_login_does_not_bounce_off_site(
    client: TestClient, world: World, target: str
) -> None:
    """RFC 9700 §4.11.2 (the authorization server as open redirector): a link to
    ``/login?next=…`` sent to someone already signed in redirects at once, so ``next`` must
    stay a local path there too."""
    sign_in(client, world.admin)
    response = client.get("/login", params={"next": target})
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_revoking_an_authorization_does_not_bounce_off_site(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.11.2: the ``next`` of the Revoke form is a local path or nothing."""
    obtain_code(client, world)
    consent_id = world.run(
        lambda c: c.tx.scalar(select(t.consents.c.id).order_by(t.consents.c.id.desc()))
    )
    page = client.get("/oauth/authorized_applications")
    data = {"csrf_token": csrf_of(page.text), "next": "//attacker.example/"}
    path = f"/oauth/authorized_applications/{consent_id}/revoke"
    asked = client.post(path, data=data)  # the confirm step: its Cancel and form stay local
    assert asked.status_code == 200 and "attacker.example" not in asked.text
    response = client.post(path, data={**data, "confirmed": "yes"})
    assert response.status_code == 303
    assert response.headers["location"] == "/oauth/authorized_applications"


def test_posts_carrying_credentials_are_never_answered_with_307(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.12: a 307 after a POST would make the browser re-post the form (the
    password, the CSRF token) to the redirect target. Sign-in and consent answer 303/302."""
    page = client.get("/login")
    login = client.post(
        "/login",
        data={
            "email": world.admin.email,
            "password": world.admin.password,
            "csrf_token": csrf_of(page.text),
            "next": "/",
        },
    )
    assert login.status_code == 303
    allowed = consent(client, authorize_params(world.app))
    denied = consent(client, authorize_params(world.app), decision="deny")
    assert allowed.status_code in (302, 303) and denied.status_code in (302, 303)
    assert allowed.headers["location"].startswith(REDIRECT_URI + "?")
