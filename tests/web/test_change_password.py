"""/account/password: a signed-in person changes their password."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.store.audit import AuditQuery
from tests.conftest import Person, World, csrf_of, sign_in

NEW_PASSWORD = "a brand new password"


@pytest.fixture
def other_browser(client: TestClient) -> Iterator[TestClient]:
    """A second browser on the same app (its own cookies)."""
    with TestClient(
        client.app, base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as browser:
        yield browser


def _change(client: TestClient, current: str, new: str = NEW_PASSWORD, again: str | None = None):
    page = client.get("/account/password")
    assert page.status_code == 200, page.text
    return client.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current": current,
            "password": new,
            "confirm": new if again is None else again,
        },
    )


def _signed_in(client: TestClient) -> bool:
    return client.get("/").status_code == 200


def test_the_header_links_to_the_page_and_a_visitor_is_sent_to_sign_in(
    client: TestClient, world: World
) -> None:
    response = client.get("/account/password")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Faccount%2Fpassword"
    sign_in(client, world.employee)
    assert 'href="/account/password"' in client.get("/").text
    page = client.get("/account/password")
    assert 'autocomplete="current-password"' in page.text
    assert page.headers["cache-control"] == "no-store"


def test_changing_the_password_ends_the_other_sessions_and_keeps_this_one(
    client: TestClient, world: World, other_browser: TestClient
) -> None:
    sign_in(client, world.employee)
    sign_in(other_browser, world.employee)
    response = _change(client, world.employee.password)
    assert response.status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    assert "Your password is changed. 1 other sign-in session ended" in home.text
    assert not _signed_in(other_browser)
    other_browser.cookies.clear()
    sign_in(other_browser, Person(**{**vars(world.employee), "password": NEW_PASSWORD}))


def test_the_old_password_stops_working(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    _change(client, world.employee.password)
    client.cookies.clear()
    page = client.get("/login")
    refused = client.post(
        "/login",
        data={"email": world.employee.email, "password": world.employee.password,
              "csrf_token": csrf_of(page.text), "next": "/"},
    )  # fmt: skip
    assert refused.status_code == 401


def test_a_wrong_current_password_changes_nothing(
    client: TestClient, world: World, other_browser: TestClient
) -> None:
    sign_in(client, world.employee)
    sign_in(other_browser, world.employee)
    response = _change(client, "not my password")
    assert response.status_code == 400
    assert "Your current password is not right." in response.text
    assert _signed_in(other_browser)
    client.cookies.clear()
    sign_in(client, world.employee)


def test_the_new_password_is_typed_twice_and_follows_the_rules(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.employee)
    different = _change(client, world.employee.password, again="something else entirely")
    assert different.status_code == 422 and "not the same" in different.text
    short = _change(client, world.employee.password, "short")
    assert short.status_code == 422 and "at least 8 characters" in short.text


def test_guessing_the_current_password_is_throttled(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    statuses = [_change(client, f"guess number {n}").status_code for n in range(12)]
    assert statuses[:10] == [400] * 10
    assert statuses[-1] == 429
    assert _change(client, world.employee.password).status_code == 429


def test_a_change_is_audited(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    _change(client, world.employee.password)

    async def work(uow: Any) -> list[Any]:
        return [
            e
            for e in await uow.audit.batch(world.company_a, AuditQuery(), None, 1000)
            if e.event.startswith("user.")
        ]

    [event] = world.run(work)
    assert event.event == "user.password_changed"
    assert event.actor_email == world.employee.email
    assert event.detail == {"sessions_ended": 0}
