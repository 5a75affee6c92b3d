"""/set-password: an invitation's one-time link, with which a person sets their password."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly import admin
from grantly.oauth.clock import FrozenClock
from grantly.oauth.secrets import digest
from grantly.store.audit import AuditQuery
from tests.conftest import (
    Person,
    World,
    csrf_of,
    dump_database,
    hidden_fields,
    run_db,
    sign_in,
)

NEW_PASSWORD = "a new password, long"


def _invite(world: World, clock: FrozenClock, email: str | None = None) -> str:
    """An invitation for the employee (or the person with ``email``), as the People page and
    ``grantly users invite`` make it: its token."""

    async def work(uow: Any) -> str:
        user = await uow.accounts.user_by_email(email or world.employee.email)
        invited = await admin.invite(uow, user, world.admin.id, clock.now())
        return invited.token

    return str(world.run(work))


def _set(client: TestClient, token: str, password: str = NEW_PASSWORD, again: str | None = None):
    page = client.get("/set-password", params={"token": token})
    assert page.status_code == 200, page.text
    return client.post(
        "/set-password",
        data={
            **hidden_fields(page.text),
            "password": password,
            "confirm": password if again is None else again,
        },
    )


def _person(world: World, password: str = NEW_PASSWORD) -> Person:
    return Person(world.employee.id, world.employee.email, password, world.company_a, admin=False)


def _events(world: World, event: str) -> list[dict[str, Any]]:
    async def work(uow: Any) -> list[dict[str, Any]]:
        found = await uow.audit.batch(world.company_a, AuditQuery(), None, 1000)
        return [{"actor": e.actor_email, **e.detail} for e in found if e.event == event]

    return list(world.run(work))


def test_the_link_shows_whose_password_it_sets_and_is_never_cached_nor_logged(
    client: TestClient, world: World, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    token = _invite(world, clock)
    page = client.get("/set-password", params={"token": token})
    assert page.status_code == 200
    assert "Set your password" in page.text
    assert "employee@acme.example" in page.text and "<strong>employee</strong>" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert hidden_fields(page.text)["token"] == token
    assert 'autocomplete="new-password"' in page.text
    _set(client, token)
    logged = capsys.readouterr().out
    assert "/set-password" in logged and token not in logged


def test_the_link_sets_the_password_once_and_the_person_then_signs_in_with_it(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    response = _set(client, token)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert response.headers["cache-control"] == "no-store"
    login = client.get("/login")
    assert "Your password is set. Sign in as employee@acme.example with it." in login.text
    sign_in(client, _person(world))
    assert "Hello, employee" in client.get("/").text
    client.cookies.clear()
    # The old password no longer works.
    page = client.get("/login")
    refused = client.post(
        "/login",
        data={"email": world.employee.email, "password": world.employee.password,
              "csrf_token": csrf_of(page.text), "next": "/"},
    )  # fmt: skip
    assert refused.status_code == 401


def test_a_used_link_is_refused_the_second_time(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    first = client.get("/set-password", params={"token": token})
    assert _set(client, token).status_code == 303
    again = client.get("/set-password", params={"token": token})
    assert again.status_code == 410
    assert "This link was already used" in again.text
    assert "ask your admin for a new invitation" in again.text
    # The form of the first visit, sent again: refused too, and the password stays.
    replay = client.post(
        "/set-password",
        data={**hidden_fields(first.text), "password": "other words", "confirm": "other words"},
    )
    assert replay.status_code == 410
    sign_in(client, _person(world))


def test_redeeming_is_exactly_once(world: World, clock: FrozenClock) -> None:
    token = _invite(world, clock)

    async def work(uow: Any) -> list[bool]:
        invitation = await uow.invitations.by_digest(digest(token))
        return [await uow.invitations.redeem(invitation.id, clock.now()) for _ in range(2)]

    assert world.run(work) == [True, False]


def test_an_expired_link_is_refused(client: TestClient, world: World, clock: FrozenClock) -> None:
    token = _invite(world, clock)
    page = client.get("/set-password", params={"token": token})
    clock.advance(7 * 86400)
    expired = client.get("/set-password", params={"token": token})
    assert expired.status_code == 410
    assert "This link has expired" in expired.text
    assert "ask your admin for a new invitation" in expired.text
    late = client.post(
        "/set-password",
        data={**hidden_fields(page.text), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert late.status_code == 410
    sign_in(client, world.employee)  # the old password still works


def test_a_link_works_until_the_last_second_of_its_seven_days(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    clock.advance(7 * 86400 - 1)
    assert _set(client, token).status_code == 303


def test_a_newer_invitation_replaces_the_earlier_link(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    first = _invite(world, clock)
    second = _invite(world, clock)
    replaced = client.get("/set-password", params={"token": first})
    assert replaced.status_code == 410
    assert "This link was replaced" in replaced.text
    assert "newest link" in replaced.text
    assert _set(client, second).status_code == 303


def test_a_deactivated_persons_link_is_refused(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    page = client.get("/set-password", params={"token": token})

    async def deactivate(uow: Any) -> None:
        user = await uow.accounts.user(world.employee.id)
        await admin.deactivate(uow, user, clock.now())

    world.run(deactivate)
    refused = client.get("/set-password", params={"token": token})
    assert refused.status_code == 403
    assert "This account is deactivated" in refused.text
    posted = client.post(
        "/set-password",
        data={**hidden_fields(page.text), "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert posted.status_code == 403


def test_an_unknown_or_missing_link_says_what_to_do(client: TestClient, world: World) -> None:
    for params in ({}, {"token": ""}, {"token": "gin_nope"}, {"token": "x" * 5000}):
        page = client.get("/set-password", params=params)
        assert page.status_code == 400, params
        assert "This link does not work" in page.text
        assert "ask your admin for a new invitation" in page.text
        assert page.headers["cache-control"] == "no-store"


def test_the_password_rules_are_those_of_sign_up_and_a_refused_form_keeps_the_link(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    short = _set(client, token, "short")
    assert short.status_code == 422
    assert "at least 8 characters" in short.text
    assert hidden_fields(short.text)["token"] == token
    different = _set(client, token, NEW_PASSWORD, again="another new password")
    assert different.status_code == 422
    assert "not the same" in different.text
    too_long = _set(client, token, "x" * 1025)
    assert too_long.status_code == 422 and "at most 1024 characters" in too_long.text
    assert _set(client, token).status_code == 303


def test_a_form_without_its_csrf_token_is_refused(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    response = client.post(
        "/set-password", data={"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 403
    assert client.get("/set-password", params={"token": token}).status_code == 200


def test_only_a_digest_of_the_link_is_stored(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    dumped = dump_database(world.settings)
    assert token not in dumped and token.removeprefix("gin_") not in dumped
    assert digest(token) in dumped
    _set(client, token)
    assert token not in dump_database(world.settings)


def test_setting_a_password_signs_the_person_out_everywhere(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    sign_in(client, world.employee)
    assert client.get("/").status_code == 200
    token = _invite(world, clock)
    with TestClient(client.app, base_url="http://127.0.0.1:8000", follow_redirects=False) as other:
        assert _set(other, token).status_code == 303
    assert client.get("/").headers["location"] == "/login"


def test_setting_a_password_is_audited_without_the_link(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    _set(client, token)
    [event] = _events(world, "user.password_set")
    assert event["actor"] == world.employee.email
    assert token not in json.dumps(event)


def test_no_one_is_locked_out_by_guesses(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    token = _invite(world, clock)
    for n in range(30):
        client.get("/set-password", params={"token": f"gin_guess{n}"})
        client.post("/set-password", data={"token": f"gin_guess{n}", "password": "x" * 8})
    assert _set(client, token).status_code == 303


def test_a_person_made_through_the_api_gets_a_password_with_an_invitation(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    async def create(uow: Any) -> None:
        await uow.people.create(
            world.company_a,
            email="new@acme.example",
            first_name="Nuria",
            last_name="Vidal",
            values={},
            now=clock.now(),
        )

    world.run(create)
    token = _invite(world, clock, "new@acme.example")
    assert "Nuria Vidal" in client.get("/set-password", params={"token": token}).text
    assert _set(client, token).status_code == 303
    sign_in(client, Person(0, "new@acme.example", NEW_PASSWORD, world.company_a, admin=False))

    async def listed(uow: Any) -> bool:
        user = await uow.accounts.user_by_email("new@acme.example")
        return bool((await uow.accounts.person(user.id, clock.now())).has_password)

    assert run_db(world.settings, listed)
