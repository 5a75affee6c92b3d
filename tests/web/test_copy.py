"""What pages say (issue 14, Copy): each scope described for whom the token acts, error pages
that keep the signed-in navigation and say "Page not found" once, waits in minutes, and
possessives that read right."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient

from grantly.web.pages import possessive
from tests.conftest import World, authorize_params, hidden_fields, run_sql, sign_in


def _consent_page(client: TestClient, world: World, **extra: str) -> str:
    sign_in(client, world.admin)
    page = client.get("/oauth/authorize", params=authorize_params(world.app, **extra))
    assert page.status_code == 200, page.text
    return page.text


def test_a_company_token_is_described_for_the_company(client: TestClient, world: World) -> None:
    page = _consent_page(client, world, scope="read write", resource_owner_type="company")
    assert "Company token" in page
    assert "on your behalf" not in page and "as you can see it" not in page
    assert "as the company itself" in page


def test_a_user_token_is_described_for_the_person(client: TestClient, world: World) -> None:
    page = _consent_page(client, world, scope="read write")
    assert "on your behalf" in page
    assert "as the company itself" not in page


def test_the_consent_page_says_whose_data_with_a_correct_possessive(
    client: TestClient, world: World
) -> None:
    run_sql(
        world.settings.async_database_url,
        [f"UPDATE companies SET name = 'Acme Labs' WHERE id = {world.company_a}"],
    )
    page = html.unescape(_consent_page(client, world))
    assert "Acme Labs'</strong> data" in page
    assert "Labs's" not in page


def test_possessives() -> None:
    assert possessive("Acme") == "Acme's"
    assert possessive("Acme Labs") == "Acme Labs'"
    assert possessive("GLOBEX INDUSTRIES") == "GLOBEX INDUSTRIES'"


def test_a_missing_page_keeps_the_navigation_and_says_it_once(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "Sign out" in page.text and world.admin.email in page.text
    body = page.text.split("<main>", 1)[1]
    assert body.count("Page not found") == 1
    assert "Not Found" not in page.text


def test_a_wrong_method_page_names_the_methods_it_answers(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    page = client.delete("/oauth/authorized_applications", headers={"Accept": "text/html"})
    assert page.status_code == 405
    assert "Sign out" in page.text
    assert re.search(r"does not answer DELETE requests \(it answers GET[^)]*\)", page.text)


def test_a_missing_page_for_nobody_signed_in_has_no_navigation(client: TestClient) -> None:
    page = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "Sign out" not in page.text


def test_a_sign_in_wait_is_told_in_minutes(client: TestClient, world: World) -> None:
    for _ in range(40):
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf is not None
        response = client.post(
            "/login",
            data={"email": world.employee.email, "password": "wrong", "csrf_token": csrf[1]},
        )
        if response.status_code == 429:
            break
    assert response.status_code == 429
    assert re.search(r"Wait \d+ minutes?, then try again", response.text)
    assert "seconds" not in response.text


def test_denying_on_the_authorize_button_tells_the_person_what_they_did(
    client: TestClient, world: World
) -> None:
    """The client reads "the user denied"; the person who pressed Deny reads "You denied"."""
    sign_in(client, world.admin)
    page = client.get(f"/oauth/applications/{world.app.id}/authorize")
    assert page.status_code == 200
    denied = client.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "deny"})
    assert denied.status_code == 403
    assert "You denied the request" in denied.text and "the user denied" not in denied.text


def test_a_form_sent_again_says_nothing_was_done_again(client: TestClient, world: World) -> None:
    """A reload of the page that showed a code re-sends its form: nothing is done again, and
    the page it lands on says so."""
    sign_in(client, world.admin)
    page = client.get(f"/oauth/applications/{world.app.id}/authorize")
    fields = {**hidden_fields(page.text), "decision": "allow"}
    assert client.post("/oauth/authorize", data=fields).status_code == 200  # the code page
    again = client.post("/oauth/authorize", data=fields)
    assert again.status_code == 303
    landed = client.get(again.headers["location"])
    assert "already shown once and is not shown again" in html.unescape(landed.text)
