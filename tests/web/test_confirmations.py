"""Destructive actions of the dashboard ask first and say what will stop working (a page
without JavaScript, the same words in the form's ``data-confirm`` for the dialog), change
nothing until confirmed, then act and say what they did on the next page (post/redirect/get).
Edits that revoke warn before saving. The new-application form reports every problem at once.
"""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.store import tables as t
from tests.api.conftest import CREDENTIALS, api_key
from tests.conftest import (
    REDIRECT_URI,
    Person,
    World,
    csrf_of,
    grant_as,
    hidden_fields,
    sign_in,
)
from tests.security.conftest import audit_trail, basic, me

APP = "/oauth/applications/{}"
EVERYTHING = (
    "1 user grant and 1 company grant end: 2 access tokens and 1 refresh token stop working "
    "at once."
)


def _as(client: TestClient, person: Person) -> None:
    client.cookies.clear()
    sign_in(client, person)


def _two_grants(client: TestClient, world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """The employee's user grant (an access and a refresh token) and the admin's company
    grant (one access token) of ``world.app``; the admin is signed in after."""
    user = grant_as(client, world, world.employee)
    company = grant_as(client, world, world.admin, resource_owner_type="company")
    return user, company


def _confirm_texts(page: str) -> dict[str, str]:
    """``data-confirm`` of each form on the page, by its action."""
    return {
        action: html.unescape(text)
        for action, text in re.findall(r'action="([^"]+)"[^>]*data-confirm="([^"]*)"', page)
    }


def _consequences(page: str) -> list[str]:
    block = page.split('<ul class="consequences">', 1)[1].split("</ul>", 1)[0]
    return [html.unescape(line) for line in re.findall(r"<li>(.*?)</li>", block, re.S)]


def _notices(page: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r'<p class="notice [a-z]+">(.*?)</p>', page)]


def _application_row(world: World) -> Any:
    rows = world.run(
        lambda uow: uow.tx.rows(select(t.applications).where(t.applications.c.id == world.app.id))
    )
    return rows[0] if rows else None


# --- delete -------------------------------------------------------------------------------


def test_deleting_without_confirmation_shows_what_stops_and_changes_nothing(
    client: TestClient, world: World
) -> None:
    user, company = _two_grants(client, world)
    page = client.get(APP.format(world.app.id))
    asked = client.post(
        APP.format(world.app.id) + "/delete", data={"csrf_token": csrf_of(page.text)}
    )
    assert asked.status_code == 200
    assert "Delete “Acme integration”?" in html.unescape(asked.text)
    said = _consequences(asked.text)
    assert said[1] == EVERYTHING
    assert world.app.client_id in said[0]
    assert hidden_fields(asked.text)["confirmed"] == "yes"
    assert _application_row(world) is not None
    assert me(client, user["access_token"]) == 200 and me(client, company["access_token"]) == 200
    # The dialog of the show page's Delete button says the same.
    assert _confirm_texts(page.text)[APP.format(world.app.id) + "/delete"] == " ".join(said)


def test_a_confirmed_delete_acts_and_the_next_page_says_what_stopped(
    client: TestClient, world: World
) -> None:
    user, company = _two_grants(client, world)
    page = client.get(APP.format(world.app.id))
    deleted = client.post(
        APP.format(world.app.id) + "/delete",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/oauth/applications"
    listing = client.get("/oauth/applications")
    assert _notices(listing.text) == [
        "Application “Acme integration” deleted: its client id no longer works; "
        "2 access tokens and 1 refresh token stopped working."
    ]
    assert _notices(client.get("/oauth/applications").text) == []  # said once
    assert me(client, user["access_token"]) == 401 and me(client, company["access_token"]) == 401
    [event] = [e for e in audit_trail(world) if e.event == "application.deleted"]
    assert event.detail["tokens_revoked"] == 3 and event.detail["grants_revoked"] == 2


def test_deleting_an_unused_application_says_no_token_stops(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get(APP.format(world.app.id))
    asked = client.post(
        APP.format(world.app.id) + "/delete", data={"csrf_token": csrf_of(page.text)}
    )
    assert _consequences(asked.text)[1] == "No grant of it works now, so no token stops working."


# --- regenerate the secret ----------------------------------------------------------------


def test_regenerating_without_confirmation_keeps_the_secret_and_says_who_must_update(
    client: TestClient, world: World
) -> None:
    _two_grants(client, world)
    page = client.get(APP.format(world.app.id))
    fields = hidden_fields(page.text.split('/secret"', 1)[1])
    asked = client.post(
        APP.format(world.app.id) + "/secret",
        data={"csrf_token": fields["csrf_token"], "form_id": fields["form_id"]},
    )
    assert asked.status_code == 200
    said = _consequences(asked.text)
    assert said == [
        "The current client secret stops working at once: every client using it must be "
        "updated with the new one, which is shown once.",
        "Tokens already issued keep working (2 access tokens and 1 refresh token); "
        "refreshing them needs the new secret.",
    ]
    assert 'id="client-secret"' not in asked.text
    assert hidden_fields(asked.text)["form_id"] == fields["form_id"]  # reload protection
    probe = client.post("/oauth/introspect", data={"token": "gat_x"}, auth=basic(world.app))
    assert probe.status_code == 200  # the old secret still authenticates
    assert _confirm_texts(page.text)[APP.format(world.app.id) + "/secret"] == " ".join(said)


def test_a_confirmed_regeneration_shows_the_new_secret_once(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get(APP.format(world.app.id))
    fields = hidden_fields(page.text.split('/secret"', 1)[1])
    data = {"csrf_token": fields["csrf_token"], "form_id": fields["form_id"], "confirmed": "yes"}
    shown = client.post(APP.format(world.app.id) + "/secret", data=data)
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert f'data-location="/oauth/applications/{world.app.id}"' in shown.text
    assert 'id="client-secret"' in shown.text
    assert "New client secret made; the old one stopped working." in _notices(shown.text)[0]
    again = client.post(APP.format(world.app.id) + "/secret", data=data)  # a reload
    assert again.status_code == 303
    assert 'id="client-secret"' not in client.get(again.headers["location"]).text
    probe = client.post("/oauth/introspect", data={"token": "gat_x"}, auth=basic(world.app))
    assert probe.status_code == 401


# --- edits that revoke --------------------------------------------------------------------


def _edit_fields(page: str, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "csrf_token": csrf_of(page),
        "form_id": hidden_fields(page)["form_id"],
        "name": "Acme integration",
        "redirect_uris": f"{REDIRECT_URI}\nhttp://127.0.0.1:8765/callback",
        "confidential": "on",
        "scopes": ["read", "write"],
        "consent": "always",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def test_an_edit_that_revokes_warns_with_the_counts_and_saves_nothing(
    client: TestClient, world: World
) -> None:
    user, company = _two_grants(client, world)
    form = client.get(APP.format(world.app.id) + "/edit")
    warned = client.post(
        APP.format(world.app.id), data=_edit_fields(form.text, name="Renamed", scopes=["read"])
    )
    assert warned.status_code == 200
    assert _consequences(warned.text)[0] == (
        "Changing its scopes revokes every grant of this application: 1 user grant and 1 "
        "company grant end and 2 access tokens and 1 refresh token stop working at once."
    )
    assert "Save and revoke" in warned.text
    assert 'value="Renamed"' in warned.text  # what was typed is kept
    assert _application_row(world).name == "Acme integration"
    assert me(client, user["access_token"]) == 200 and me(client, company["access_token"]) == 200


def test_a_confirmed_edit_saves_and_the_notice_and_the_trail_give_the_count(
    client: TestClient, world: World
) -> None:
    user, company = _two_grants(client, world)
    form = client.get(APP.format(world.app.id) + "/edit")
    fields = _edit_fields(form.text, confidential=None, scopes=["read"])
    warned = client.post(APP.format(world.app.id), data=fields)
    assert "Changing its client type and scopes" in html.unescape(warned.text)
    saved = client.post(APP.format(world.app.id), data={**fields, **hidden_fields(warned.text)})
    assert saved.status_code == 303
    assert _notices(client.get(saved.headers["location"]).text) == [
        "Saved “Acme integration”: client type and scopes changed. 1 user grant and 1 company "
        "grant revoked: 2 access tokens and 1 refresh token stopped working; people and "
        "companies must authorize it again."
    ]
    assert me(client, user["access_token"]) == 401 and me(client, company["access_token"]) == 401
    [event] = [e for e in audit_trail(world) if e.event == "application.updated"]
    assert event.detail["tokens_revoked"] == 3 and event.detail["grants_revoked"] == 2
    assert event.detail["changed"] == "client type, scopes"


def test_a_confirmation_holds_only_for_the_change_it_warned_of(
    client: TestClient, world: World
) -> None:
    user, _company = _two_grants(client, world)
    form = client.get(APP.format(world.app.id) + "/edit")
    warned = client.post(APP.format(world.app.id), data=_edit_fields(form.text, scopes=["read"]))
    other = {**_edit_fields(warned.text, scopes=["write"]), **hidden_fields(warned.text)}
    again = client.post(APP.format(world.app.id), data=other)
    assert again.status_code == 200 and 'id="revoke-warning"' in again.text
    assert me(client, user["access_token"]) == 200


def test_an_edit_that_revokes_nothing_live_saves_at_once(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    form = client.get(APP.format(world.app.id) + "/edit")
    saved = client.post(APP.format(world.app.id), data=_edit_fields(form.text, scopes=["read"]))
    assert saved.status_code == 303
    assert _notices(client.get(saved.headers["location"]).text) == [
        "Saved “Acme integration”: scopes changed. No token was working, so none was revoked."
    ]
    [event] = [e for e in audit_trail(world) if e.event == "application.updated"]
    assert event.detail["tokens_revoked"] == 0


def test_a_rename_keeps_the_tokens_and_says_what_changed(client: TestClient, world: World) -> None:
    user, _company = _two_grants(client, world)
    form = client.get(APP.format(world.app.id) + "/edit")
    saved = client.post(APP.format(world.app.id), data=_edit_fields(form.text, name="Payroll"))
    assert saved.status_code == 303
    assert _notices(client.get(saved.headers["location"]).text) == [
        "Saved “Payroll”: name changed."
    ]
    assert me(client, user["access_token"]) == 200


# --- the new application form -------------------------------------------------------------


def test_the_new_form_ticks_read_and_states_the_lifetime_range(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    form = client.get("/oauth/applications/new").text
    assert re.search(r'name="scopes" value="read" checked', form)
    assert not re.search(r'name="scopes" value="write" checked', form)
    assert "From 60 seconds to 86400 (1 day). Empty: the server default, 1 hour." in form
    assert 'class="chip">read<' in form


def test_the_new_form_shows_every_problem_at_once(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    form = client.get("/oauth/applications/new")
    response = client.post(
        "/oauth/applications",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "",
            "redirect_uris": "http://evil.example/cb",
            "access_token_lifetime": "ten minutes",
        },
    )
    assert response.status_code == 422
    problems = re.findall(r"<li>(.*?)</li>", response.text.split('class="alert"')[1])
    assert [html.unescape(p) for p in problems] == [
        "the name cannot be empty.",
        problems and html.unescape(problems[1]),
        "choose at least one scope.",
        "the access-token lifetime must be a whole number of seconds between 60 and 86400 "
        "(1 day), or none for the server's default.",
    ]
    assert "https" in problems[1]
    assert 'value="ten minutes"' in response.text


def test_creating_answers_with_the_applications_url_and_a_reload_creates_nothing(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    form = client.get("/oauth/applications/new")
    data = {
        "csrf_token": csrf_of(form.text),
        "form_id": hidden_fields(form.text)["form_id"],
        "name": "Payroll sync",
        "redirect_uris": "https://payroll.example/cb",
        "confidential": "on",
        "scopes": ["read"],
    }
    created = client.post("/oauth/applications", data=data)
    assert created.status_code == 201
    [app_id] = re.findall(r'data-location="/oauth/applications/(\d+)"', created.text)
    assert "Application “Payroll sync” created." in _notices(created.text)[0]
    again = client.post("/oauth/applications", data=data)  # the browser's reload
    assert again.status_code == 303
    assert again.headers["location"] == f"/oauth/applications/{app_id}"
    shown = client.get(again.headers["location"])
    assert 'id="client-secret"' not in shown.text
    assert client.get("/oauth/applications").text.count("Payroll sync") == 1


# --- grants on the application page -------------------------------------------------------


def _revoke_forms(page: str) -> list[str]:
    return re.findall(r'action="(/oauth/authorized_applications/\d+/revoke)"', page)


def test_the_application_page_lists_every_live_grant_with_who_holds_it(
    client: TestClient, world: World
) -> None:
    grant_as(client, world, world.other_admin, scope="read")  # a person of another company
    _two_grants(client, world)
    page = client.get(APP.format(world.app.id)).text
    users = page.split("<h2>User tokens</h2>", 1)[1].split("<h2>Company tokens</h2>", 1)[0]
    companies = page.split("<h2>Company tokens</h2>", 1)[1]
    assert "employee" in users and world.employee.email in users
    assert world.other_admin.email in users and "Globex" in users
    assert len(_revoke_forms(users)) == 2
    assert users.count('class="chip">read<') == 2 and users.count('class="chip">write<') == 1
    assert "Acme" in companies and world.admin.email in companies
    assert len(_revoke_forms(companies)) == 1
    assert users.count("User token") == 2 and companies.count("Company token") == 1
    assert "Latest token issued" in page


def test_an_admin_revokes_a_persons_grant_from_the_application_page(
    client: TestClient, world: World
) -> None:
    user, company = _two_grants(client, world)
    here = APP.format(world.app.id)
    page = client.get(here).text
    users = page.split("<h2>User tokens</h2>", 1)[1].split("<h2>Company tokens</h2>", 1)[0]
    [action] = _revoke_forms(users)
    asked = client.post(action, data={"csrf_token": csrf_of(page), "next": here})
    assert asked.status_code == 200
    assert _consequences(asked.text) == [
        f"Acme integration can no longer act as employee ({world.employee.email}) with this "
        "user token: 1 access token and 1 refresh token stop working at once.",
        "It must ask them again to regain access.",
    ]
    assert _confirm_texts(page)[action] == " ".join(_consequences(asked.text))
    assert me(client, user["access_token"]) == 200
    done = client.post(action, data={**hidden_fields(asked.text)})
    assert done.status_code == 303 and done.headers["location"] == here
    assert _notices(client.get(here).text) == [
        f"Revoked the user token of employee ({world.employee.email}) for Acme integration: "
        "1 access token and 1 refresh token stopped working."
    ]
    assert me(client, user["access_token"]) == 401 and me(client, company["access_token"]) == 200
    [event] = [e for e in audit_trail(world) if e.event == "grant.revoked"]
    assert event.detail["tokens_revoked"] == 2


def test_an_employee_revokes_their_own_grant_after_confirming(
    client: TestClient, world: World
) -> None:
    user = grant_as(client, world, world.employee)
    page = client.get("/oauth/authorized_applications").text
    [action] = _revoke_forms(page)
    asked = client.post(action, data={"csrf_token": csrf_of(page)})
    assert _consequences(asked.text)[0] == (
        "Acme integration can no longer act as you with this user token: 1 access token and "
        "1 refresh token stop working at once."
    )
    assert me(client, user["access_token"]) == 200
    client.post(action, data=hidden_fields(asked.text))
    assert _notices(client.get("/oauth/authorized_applications").text) == [
        "Revoked your user token for Acme integration: 1 access token and 1 refresh token "
        "stopped working."
    ]
    assert me(client, user["access_token"]) == 401


def test_the_authorized_applications_page_labels_each_grant(
    client: TestClient, world: World
) -> None:
    grant_as(client, world, world.admin)
    grant_as(client, world, world.admin, resource_owner_type="company")
    page = client.get("/oauth/authorized_applications").text
    mine, company = page.split("<h2>Company tokens</h2>", 1)
    assert mine.count('<span class="token-label">User token</span>') == 1
    assert "Company token</span>" not in mine
    assert company.count('<span class="token-label company">Company token</span>') == 1


# --- API keys -----------------------------------------------------------------------------


def _key(client: TestClient, world: World) -> tuple[str, str]:
    sign_in(client, world.admin)
    page = client.get("/api_keys")
    created = client.post(
        "/api_keys",
        data={
            "csrf_token": csrf_of(page.text),
            "form_id": hidden_fields(page.text)["form_id"],
            "name": "Payroll",
        },
    )
    assert created.status_code == 201
    assert _notices(created.text) == [
        "API key “Payroll” created. Copy it now: this is the only time it is shown."
    ]
    key = re.search(r'id="api-key">([^<]+)<', created.text).group(1)  # type: ignore[union-attr]
    listing = client.get("/api_keys").text
    action = re.search(r'action="(/api_keys/\d+/revoke)"', listing).group(1)  # type: ignore[union-attr]
    return key, action


def _works(client: TestClient, key: str) -> bool:
    return client.get(CREDENTIALS, headers=api_key(key)).status_code == 200


def test_revoking_an_api_key_asks_first_then_says_it_is_done(
    client: TestClient, world: World
) -> None:
    key, action = _key(client, world)
    listing = client.get("/api_keys").text
    asked = client.post(action, data={"csrf_token": csrf_of(listing)})
    assert asked.status_code == 200
    said = _consequences(asked.text)
    assert said[0].startswith("Requests with the API key “Payroll” (it starts with ")
    assert "get 401 at once" in said[0]
    assert _confirm_texts(listing)[action] == " ".join(said)
    assert _works(client, key)
    done = client.post(action, data=hidden_fields(asked.text))
    assert done.status_code == 303
    assert _notices(client.get("/api_keys").text) == [
        "API key “Payroll” revoked: requests with it get 401 from now on."
    ]
    assert not _works(client, key)
    twice = client.post(action, data=hidden_fields(asked.text))
    assert twice.status_code == 303
    assert _notices(client.get("/api_keys").text) == ["API key “Payroll” was already revoked."]


def test_the_confirm_page_needs_the_csrf_token_too(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)
    response = client.post(
        APP.format(world.app.id) + "/delete", data={"csrf_token": "forged", "confirmed": "yes"}
    )
    assert response.status_code == 403
    assert _application_row(world) is not None
