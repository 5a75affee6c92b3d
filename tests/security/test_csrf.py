"""Threat: cross-site request forgery (RFC 9700 §4.7; RFC 6749 §10.12) and login CSRF.

A page on another site makes the victim's browser POST to Grantly with the victim's cookie.
Every state-changing form must refuse a request without the session's CSRF token — missing,
empty, forged, or the attacker's own valid token from another session — and change nothing.

Covered elsewhere: the session cookie's ``SameSite=Lax``/``HttpOnly`` (``tests/web/test_login.py::
test_the_session_cookie_is_httponly_and_samesite_lax``) and the replacement of the session and
its CSRF token at sign-in (``…::test_the_session_is_replaced_at_sign_in``). OAuth's own CSRF
defence for clients (``state``, PKCE) is the client's part: Grantly returns ``state``
unchanged (``tests/web/test_authorize_endpoint.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.store import tables as t
from tests.conftest import (
    World,
    authorize_params,
    count_rows,
    csrf_of,
    dump_database,
    hidden_fields,
    obtain_code,
    sign_in,
)
from tests.security.conftest import events

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "grantly" / "web" / "templates"


@dataclass
class Ids:
    application: int
    api_key: int
    consent: int


@pytest.fixture
def ids(client: TestClient, world: World) -> Ids:
    """The admin of company A, signed in, with a grant and an API key to aim at."""
    obtain_code(client, world)
    page = client.get("/api_keys")
    client.post(
        "/api_keys",
        data={
            "csrf_token": csrf_of(page.text),
            "form_id": hidden_fields(page.text)["form_id"],
            "name": "Payroll",
        },
    )
    api_key = world.run(lambda c: c.tx.scalar(select(t.api_keys.c.id)))
    consent_id = world.run(lambda c: c.tx.scalar(select(t.consents.c.id)))
    return Ids(world.app.id, api_key, consent_id)


def _forms(world: World, ids: Ids) -> dict[str, dict[str, str]]:
    """Every state-changing form of the dashboard and of the consent page, with the fields an
    attacker's page would send (everything but a valid ``csrf_token``)."""
    app = f"/oauth/applications/{ids.application}"
    return {
        "/logout": {},
        "/oauth/applications": {
            "name": "Forged",
            "redirect_uris": "https://attacker.example/cb",
            "confidential": "on",
            "scopes": "read",
        },
        app: {
            "name": "Renamed",
            "redirect_uris": "https://attacker.example/cb",
            "confidential": "on",
            "scopes": "read",
        },
        # An attacker's page sends the confirmation of the confirm step too.
        f"{app}/delete": {"confirmed": "yes"},
        # The agent applications page checks the form before it looks for the application.
        "/oauth/agent_applications/policy": {"agent_applications": "block"},
        f"/oauth/agent_applications/{ids.application}/revoke": {"confirmed": "yes"},
        f"/oauth/agent_applications/{ids.application}/block": {"confirmed": "yes"},
        f"/oauth/agent_applications/{ids.application}/unblock": {},
        f"{app}/secret": {"confirmed": "yes"},
        "/api_keys": {"name": "Forged key"},
        f"/api_keys/{ids.api_key}/revoke": {"confirmed": "yes"},
        f"/oauth/authorized_applications/{ids.consent}/revoke": {"confirmed": "yes"},
        "/people": {"name": "Forged", "email": "forged@attacker.example"},
        f"/people/{world.employee.id}/invite": {},
        f"/people/{world.employee.id}/deactivate": {"confirmed": "yes"},
        f"/people/{world.employee.id}/activate": {},
        f"/people/{world.admin.id}/grants/{ids.consent}/revoke": {"confirmed": "yes"},
        "/account/password": {
            "current": world.admin.password,
            "password": "the attacker's",
            "confirm": "the attacker's",
        },
        "/set-password": {"token": "gin_forged", "password": "x" * 10, "confirm": "x" * 10},
        "/oauth/authorize": {**authorize_params(world.app), "decision": "allow"},
    }


def _attackers_token(client: TestClient) -> str:
    """A perfectly valid CSRF token — of the attacker's own browser session (another cookie
    jar on the same running app)."""
    victims = type(client.cookies)(client.cookies)
    client.cookies.clear()
    token = csrf_of(client.get("/login").text)
    client.cookies = victims
    return token


FORGERIES = ["missing", "empty", "forged", "the attacker's own"]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_no_state_changing_form_accepts_a_forged_post(
    client: TestClient, world: World, ids: Ids, forgery: str
) -> None:
    """RFC 9700 §4.7 / RFC 6749 §10.12: each form answers 403 and the database is exactly as
    before — no application created, changed, deleted or re-keyed, no key made or revoked,
    no grant revoked, no code issued, no session ended."""
    token = {
        "missing": None,
        "empty": "",
        "forged": "A" * 43,
        "the attacker's own": _attackers_token(client),
    }[forgery]
    before = dump_database(world.settings)
    for path, fields in _forms(world, ids).items():
        data = dict(fields)
        if token is not None:
            data["csrf_token"] = token
        response = client.post(path, data=data, headers={"Origin": "https://attacker.example"})
        assert response.status_code == 403, (path, response.status_code)
        assert "location" not in response.headers, path
    assert dump_database(world.settings) == before
    # Still signed in: /logout was refused as well.
    assert client.get("/oauth/applications").status_code == 200


def test_every_post_form_in_the_templates_is_attacked_above(world: World, ids: Ids) -> None:
    """RFC 9700 §4.7, completeness: a form added to a template must join the attack list."""
    attacked = {re.sub(r"/\d+", "/{id}", path) for path in _forms(world, ids)}
    attacked.add("/login")  # test_login_csrf_cannot_sign_the_victim_in_as_the_attacker
    actions = set()
    for template in TEMPLATES.rglob("*.html"):
        if template.name == "confirm.html":
            continue  # the confirm step posts a form above again, to that form's action
        for action in re.findall(r'<form method="post" action="([^"]+)"', template.read_text()):
            if action.startswith("{{ '/oauth/applications/' ~ application.id if application"):
                actions |= {"/oauth/applications/{id}", "/oauth/applications"}  # edit / new
            else:
                actions.add(re.sub(r"\{\{[^}]*\}\}", "{id}", action))
    assert len(actions) >= 9
    assert actions <= attacked, actions - attacked


def test_a_forged_consent_issues_no_code_to_the_attackers_client(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.7 and §4.16 (consent must come from the person): a cross-site POST that
    "presses Allow" for the attacker's application, with a signed-in victim, gets a 403 and
    neither a code nor a grant."""
    sign_in(client, world.employee)
    response = client.post(
        "/oauth/authorize",
        data={**authorize_params(world.other_app, state="x"), "decision": "allow"},
    )
    assert response.status_code == 403
    assert "location" not in response.headers
    assert count_rows(world.settings, "authorization_codes") == 0
    assert "authorization.granted" not in events(world)


def test_login_csrf_cannot_sign_the_victim_in_as_the_attacker(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.7 (login CSRF, the variant RFC 6749 §10.12 warns about): the attacker posts
    *their own* credentials from their own page, with the CSRF token of their own session, so
    that the victim's browser ends up signed in as the attacker (and authorizes into the
    attacker's account). The victim's browser holds no such token: refused, not signed in."""
    attackers = _attackers_token(client)
    client.get("/login")  # the victim has a session cookie of their own
    for token in (attackers, None):
        data = {"email": world.other_admin.email, "password": world.other_admin.password}
        if token:
            data["csrf_token"] = token
        response = client.post("/login", data=data)
        assert response.status_code == 403
    assert client.get("/").headers["location"] == "/login"
    assert count_rows(world.settings, "user_sessions") == 0


MARKUP = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def test_markup_from_an_attacker_is_shown_as_text_on_the_consent_page(
    client: TestClient, world: World
) -> None:
    """RFC 9700 §4.7 and §4.16: script injected into the consent page would read the CSRF
    token and press Allow itself. Any company may register an application, so its name is
    attacker-controlled, as are ``state`` and every parameter an error page quotes: all of it
    is escaped."""
    from grantly import admin
    from grantly.oauth.registration import validate
    from tests.conftest import REDIRECT_URI

    async def register(connection):
        draft = validate(
            name="Evil " + MARKUP,
            redirect_uris=[REDIRECT_URI],
            confidential=True,
            scopes=["read"],
            server_scopes=("read", "write"),
        )
        return await admin.create_application(connection, world.company_b, draft, 0)

    evil = world.run(register).application
    sign_in(client, world.employee)
    pages = [
        client.get(
            "/oauth/authorize",
            params={
                "client_id": evil.client_id,
                "redirect_uri": REDIRECT_URI,
                "response_type": "code",
                "state": MARKUP,
            },
        ),
        client.get("/oauth/authorize", params={"client_id": MARKUP, "response_type": "code"}),
        client.get("/oauth/authorize", params=authorize_params(world.app, redirect_uri=MARKUP)),
    ]
    assert pages[0].status_code == 200 and "Evil" in pages[0].text
    for page in pages:
        assert "<script>alert(1)" not in page.text
        assert "<img src=x" not in page.text
