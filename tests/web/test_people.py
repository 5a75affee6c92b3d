"""/people: the company's people, for its admins (search, add, invite, deactivate, reactivate,
and each person's grants)."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient

from grantly.oauth.clock import FrozenClock
from grantly.passwords import hash_password
from grantly.store.audit import AuditQuery
from tests.conftest import (
    Person,
    World,
    csrf_of,
    grant_as,
    hidden_fields,
    sign_in,
)


def _as(client: TestClient, person: Person) -> None:
    client.cookies.clear()
    sign_in(client, person)


def _me(client: TestClient, token: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def _post(client: TestClient, path: str, page: str, **fields: str):
    return client.post(path, data={"csrf_token": csrf_of(page), **fields})


def _events(world: World, prefix: str) -> list[Any]:
    async def work(uow: Any) -> list[Any]:
        return [
            e
            for e in await uow.audit.batch(world.company_a, AuditQuery(), None, 1000)
            if e.event.startswith(prefix)
        ]

    return list(world.run(work))


def _link(page: str) -> str:
    match = re.search(r'id="invitation-link"[^>]*>([^<]+)<', page)
    assert match, "no invitation link on the page"
    return html.unescape(match.group(1))


def _table(page: str) -> str:
    """The list of people (the header names the signed-in admin too)."""
    match = re.search(r'<table id="people">.*?</table>', page, re.S)
    return match.group(0) if match else ""


def _notices(page: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r'<p class="notice \w+">([^<]+)</p>', page)]


def _add_people(world: World, clock: FrozenClock, count: int) -> None:
    async def work(uow: Any) -> None:
        for n in range(count):
            await uow.accounts.create_user(
                company_id=world.company_a,
                email=f"person{n:02d}@acme.example",
                name=f"Person {n:02d}",
                password_hash=None,
                admin=False,
                now=clock.now(),
            )

    world.run(work)


# --- who sees the page ------------------------------------------------------------------------


def test_a_visitor_is_sent_to_sign_in(client: TestClient, world: World) -> None:
    response = client.get("/people")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fpeople"


def test_an_employee_gets_a_403_page_that_explains_why(client: TestClient, world: World) -> None:
    _as(client, world.employee)
    for path in ("/people", f"/people/{world.employee.id}", f"/people/{world.admin.id}"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "Only admins manage people" in response.text
    page = client.get("/")
    assert 'href="/people"' not in page.text
    refused = _post(client, f"/people/{world.admin.id}/deactivate", page.text, confirmed="yes")
    assert refused.status_code == 403
    _as(client, world.admin)
    assert "Deactivated" not in client.get("/people").text


def test_the_admins_nav_links_to_people(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    assert 'href="/people"' in client.get("/").text


def test_the_list_shows_only_the_companys_people(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get("/people")
    assert page.status_code == 200
    assert world.admin.email in page.text and world.employee.email in page.text
    assert world.other_admin.email not in page.text
    assert "Admin" in page.text and "Employee" in page.text and "Active" in page.text


def test_another_companys_person_is_not_found(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get("/people")
    other = world.other_admin.id
    assert client.get(f"/people/{other}").status_code == 404
    for action in ("invite", "deactivate", "activate"):
        response = _post(client, f"/people/{other}/{action}", page.text, confirmed="yes")
        assert response.status_code == 404, action
        assert "There is no such person in your company." in response.text
    for path in ("/people/999999", "/people/0", "/people/99999999999"):
        assert client.get(path).status_code == 404, path
    _as(client, world.other_admin)
    assert "Deactivated" not in client.get("/people").text


# --- search and pages -------------------------------------------------------------------------


def test_people_are_searched_by_name_or_email_on_the_server(
    client: TestClient, world: World
) -> None:
    _as(client, world.admin)
    by_name = client.get("/people", params={"q": "EMPLOY"})
    assert world.employee.email in _table(by_name.text)
    assert world.admin.email not in _table(by_name.text)
    assert 'value="EMPLOY"' in by_name.text
    by_email = client.get("/people", params={"q": "admin@acme"})
    assert world.admin.email in _table(by_email.text)
    assert world.employee.email not in _table(by_email.text)
    nobody = client.get("/people", params={"q": "%"})
    assert nobody.status_code == 200
    assert "No one's name or email contains “%”" in html.unescape(nobody.text)
    assert _table(nobody.text) == ""
    assert client.get("/people", params={"q": "\x00" + "x" * 5000}).status_code == 200


def test_a_long_list_is_shown_in_pages(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    _add_people(world, clock, 55)  # 57 people in all
    _as(client, world.admin)
    first = client.get("/people")
    assert first.text.count("person0") + first.text.count("person1") > 0
    assert "57 people; page 1 of 2" in first.text
    assert 'href="/people?page=2" rel="next"' in first.text
    second = client.get("/people", params={"page": "2"})
    assert second.text.count('href="/people/') == 7  # rows' links
    assert "person54@acme.example" in second.text
    assert world.admin.email not in _table(second.text)
    assert 'href="/people" rel="prev"' in second.text
    searched = client.get("/people", params={"q": "person", "page": "2"})
    assert "55 people match" in searched.text
    assert 'href="/people?q=person" rel="prev"' in searched.text
    for page in ("0", "-1", "abc", "9999999999", "99"):
        assert client.get("/people", params={"page": page}).status_code == 200, page


# --- invitations ------------------------------------------------------------------------------


def test_an_invitation_is_shown_once_and_its_link_sets_the_password(
    client: TestClient, world: World
) -> None:
    _as(client, world.admin)
    page = client.get("/people")
    form = re.search(
        rf'action="/people/{world.employee.id}/invite".*?name="form_id" value="([^"]+)"',
        page.text,
        re.S,
    )
    assert form
    response = _post(client, f"/people/{world.employee.id}/invite", page.text, form_id=form[1])
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    assert 'data-copy="invitation-link"' in response.text
    link = _link(response.text)
    assert link.startswith("http://127.0.0.1:8000/set-password?token=gin_")
    # A reload sends the same form again: no second link, back to the person.
    again = _post(client, f"/people/{world.employee.id}/invite", page.text, form_id=form[1])
    assert again.status_code == 303 and again.headers["location"] == f"/people/{world.employee.id}"
    listed = client.get("/people")
    assert "Invitation pending (until " in listed.text
    [event] = _events(world, "user.invited")
    assert event.actor_email == world.admin.email
    assert event.detail["email"] == world.employee.email
    assert "gin_" not in str(event.detail)

    client.cookies.clear()
    token = parse_qs(urlsplit(link).query)["token"][0]
    set_page = client.get("/set-password", params={"token": token})
    assert set_page.status_code == 200
    done = client.post(
        "/set-password",
        data={
            **hidden_fields(set_page.text),
            "password": "fresh password",
            "confirm": "fresh password",
        },
    )
    assert done.status_code == 303
    sign_in(client, Person(world.employee.id, world.employee.email, "fresh password", 0, False))


def test_inviting_again_replaces_the_earlier_link(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get(f"/people/{world.employee.id}")
    first = _link(_post(client, f"/people/{world.employee.id}/invite", page.text).text)
    second_page = _post(client, f"/people/{world.employee.id}/invite", page.text)
    assert "Their earlier invitation link stopped working." in _notices(second_page.text)[0]
    first_token = parse_qs(urlsplit(first).query)["token"][0]
    assert client.get("/set-password", params={"token": first_token}).status_code == 410


def test_a_deactivated_person_is_not_invited(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get("/people")
    _post(client, f"/people/{world.employee.id}/deactivate", page.text, confirmed="yes")
    refused = _post(client, f"/people/{world.employee.id}/invite", page.text)
    assert refused.status_code == 400
    assert "Reactivate them first" in refused.text
    assert f'action="/people/{world.employee.id}/invite"' not in client.get("/people").text


def test_an_admin_adds_a_person_who_is_invited_at_once(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get("/people")
    response = _post(
        client, "/people", page.text, name="Nuria Vidal", email=" Nuria@Acme.example ", admin="on"
    )
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    assert "is added as an admin, without a password" in response.text
    assert _link(response.text).startswith("http://127.0.0.1:8000/set-password?token=gin_")
    row = client.get("/people", params={"q": "nuria"}).text
    assert "nuria@acme.example" in row and "Invitation pending" in row and "Admin" in row
    assert sorted(e.event for e in _events(world, "user.")) == ["user.created", "user.invited"]
    assert "earlier invitation link" not in response.text  # there was none
    assert "1 person matches “nuria”" in html.unescape(row)


def test_inviting_again_says_the_earlier_link_stopped(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    for replaced in (False, True):
        page = client.get(f"/people/{world.employee.id}")
        invited = _post(client, f"/people/{world.employee.id}/invite", page.text)
        assert ("Their earlier invitation link no longer works." in invited.text) is replaced


def test_a_page_past_the_end_says_so(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = html.unescape(client.get("/people?page=999").text)
    assert "no people yet" not in page
    assert "There is no page 999: 2 people, on 1 page." in page


def test_adding_a_person_refuses_a_bad_or_taken_email(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get("/people")
    bad = _post(client, "/people", page.text, name="X", email="not an email")
    assert bad.status_code == 422
    assert "is not an email address" in bad.text
    assert 'value="X"' in bad.text
    taken = _post(client, "/people", page.text, name="X", email=world.other_admin.email)
    assert taken.status_code == 422
    assert "is already someone's sign-in email" in html.unescape(taken.text)
    nameless = _post(client, "/people", page.text, name=" ", email="new@acme.example")
    assert nameless.status_code == 422 and "1 to 200 characters" in nameless.text
    assert _events(world, "user.") == []


def test_the_list_says_who_has_a_password(
    client: TestClient, world: World, clock: FrozenClock
) -> None:
    _add_people(world, clock, 1)
    _as(client, world.admin)
    page = client.get("/people")
    rows = {
        email: row
        for row in re.findall(r"<tr.*?</tr>", page.text, re.S)
        for email in re.findall(r"<td>([^<]+@acme\.example)</td>", row)
    }
    assert "No password" in rows["person00@acme.example"]
    assert "<td>Set</td>" in rows[world.employee.email]


# --- deactivation and reactivation ------------------------------------------------------------


def test_deactivating_asks_first_and_says_what_stops_working(
    client: TestClient, world: World
) -> None:
    tokens = grant_as(client, world, world.employee, scope="read")
    _as(client, world.admin)
    person_page = client.get(f"/people/{world.employee.id}")
    # The employee signed in to authorize: that session is theirs too.
    assert (
        'data-confirm="employee can no longer sign in. 1 sign-in session ends at once. 2 live '
        "tokens acting as them (access and refresh tokens, of 1 application they authorized) "
        'stop working at once."' in person_page.text
    )
    confirm_page = _post(client, f"/people/{world.employee.id}/deactivate", person_page.text)
    assert confirm_page.status_code == 200
    assert "Deactivate employee?" in confirm_page.text
    assert "2 live tokens acting as them" in confirm_page.text
    assert 'name="confirmed" value="yes"' in confirm_page.text
    assert _me(client, tokens["access_token"]) == 200  # nothing happened yet

    done = client.post(
        f"/people/{world.employee.id}/deactivate", data=hidden_fields(confirm_page.text)
    )
    assert done.status_code == 303 and done.headers["location"] == f"/people/{world.employee.id}"
    shown = client.get(done.headers["location"])
    assert (
        "Deactivated employee: 1 sign-in session ended, 2 live tokens stopped working."
        in (_notices(shown.text)[0])
    )
    assert "Deactivated: cannot sign in" in shown.text
    assert _me(client, tokens["access_token"]) == 401
    [event] = _events(world, "user.deactivated")
    assert event.actor_email == world.admin.email
    assert event.detail["tokens_stopped"] == 2 and event.detail["email"] == world.employee.email


def test_a_deactivated_persons_grants_are_listed_and_counted_nowhere(
    client: TestClient, world: World
) -> None:
    """Their tokens are revoked at deactivation: no page lists them as working, no count
    counts them (the person page, the application page and its confirm steps, the CLI's)."""
    grant_as(client, world, world.employee, scope="read")
    _as(client, world.admin)
    application = f"/oauth/applications/{world.app.id}"
    assert world.employee.email in client.get(application).text
    person_page = client.get(f"/people/{world.employee.id}")
    confirm_page = _post(client, f"/people/{world.employee.id}/deactivate", person_page.text)
    client.post(f"/people/{world.employee.id}/deactivate", data=hidden_fields(confirm_page.text))

    shown = client.get(f"/people/{world.employee.id}").text
    assert "Revoke" not in shown.split("<main>", 1)[1]
    assert world.employee.email not in client.get(application).text
    delete_step = _post(client, f"{application}/delete", client.get(application).text)
    assert "No grant of it works now, so no token stops working." in delete_step.text

    async def live(uow: Any) -> int:
        return (await uow.tokens.live_tokens(int(time.time()), world.app.id)).tokens

    assert world.run(live) == 0


def test_deactivating_ends_the_persons_sessions_at_once(client: TestClient, world: World) -> None:
    with TestClient(
        client.app, base_url="http://127.0.0.1:8000", follow_redirects=False
    ) as employee:
        sign_in(employee, world.employee)
        _as(client, world.admin)
        page = client.get("/people")
        confirm_page = _post(client, f"/people/{world.employee.id}/deactivate", page.text)
        assert "1 sign-in session ends at once." in confirm_page.text
        _post(
            client,
            f"/people/{world.employee.id}/deactivate",
            page.text,
            confirmed="yes",
            next="/people",
        )
        assert employee.get("/").headers["location"] == "/login"
    assert "1 sign-in session ended" in _notices(client.get("/people").text)[0]


def test_an_admin_cannot_deactivate_themselves(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get(f"/people/{world.admin.id}")
    assert f'action="/people/{world.admin.id}/deactivate"' not in page.text
    refused = _post(client, f"/people/{world.admin.id}/deactivate", page.text, confirmed="yes")
    assert refused.status_code == 400
    assert "You cannot deactivate yourself" in refused.text
    assert client.get("/").status_code == 200


def test_reactivating_lets_the_person_sign_in_without_their_old_tokens(
    client: TestClient, world: World
) -> None:
    tokens = grant_as(client, world, world.employee, scope="read")
    _as(client, world.admin)
    page = client.get("/people")
    _post(client, f"/people/{world.employee.id}/deactivate", page.text, confirmed="yes")
    listed = client.get("/people")
    assert f'action="/people/{world.employee.id}/activate"' in listed.text
    response = _post(client, f"/people/{world.employee.id}/activate", listed.text, next="/people")
    assert response.status_code == 303 and response.headers["location"] == "/people"
    notice = _notices(client.get("/people").text)[0]
    assert notice.startswith("Reactivated employee: they can sign in again.")
    assert _me(client, tokens["access_token"]) == 401
    again = _post(client, f"/people/{world.employee.id}/activate", listed.text)
    assert again.status_code == 303
    assert "was already active; nothing changed" in _notices(client.get("/people").text)[0]
    assert [e.event for e in _events(world, "user.")] == ["user.activated", "user.deactivated"]
    _as(client, world.employee)


def test_a_foreign_next_is_not_followed(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    page = client.get("/people")
    for target in ("https://evil.example/", "//evil.example", "/oauth/applications"):
        response = _post(client, f"/people/{world.employee.id}/activate", page.text, next=target)
        assert response.headers["location"] == f"/people/{world.employee.id}", target


# --- grants -----------------------------------------------------------------------------------


def test_the_person_page_lists_their_grants_and_revokes_one_after_asking(
    client: TestClient, world: World
) -> None:
    tokens = grant_as(client, world, world.employee, scope="read")
    _as(client, world.admin)
    page = client.get(f"/people/{world.employee.id}")
    assert "Acme integration" in page.text and "User token" in page.text
    [action] = re.findall(r'action="(/people/\d+/grants/\d+/revoke)"', page.text)
    assert (
        'data-confirm="Acme integration can no longer act as employee (employee@acme.example) '
        "with this user token: 1 access token and 1 refresh token stop working at once."
    ) in page.text
    confirm_page = _post(client, action, page.text)
    assert confirm_page.status_code == 200
    assert "Revoke Acme integration&#39;s access?" in confirm_page.text
    assert _me(client, tokens["access_token"]) == 200
    done = client.post(action, data=hidden_fields(confirm_page.text))
    assert done.status_code == 303
    shown = client.get(done.headers["location"])
    assert _notices(shown.text) == [
        "Revoked Acme integration's access: 1 access token and 1 refresh token stopped working."
    ]
    assert "No application holds access they gave." in shown.text
    assert _me(client, tokens["access_token"]) == 401
    [event] = _events(world, "grant.revoked")
    assert event.actor_email == world.admin.email and event.detail["user_id"] == world.employee.id
    assert event.detail["tokens_revoked"] == 2


def test_company_tokens_an_admin_authorized_are_on_their_page(
    client: TestClient, world: World
) -> None:
    tokens = grant_as(client, world, world.admin, resource_owner_type="company")
    page = client.get(f"/people/{world.admin.id}")
    assert "Company token" in page.text
    [action] = re.findall(r'action="(/people/\d+/grants/\d+/revoke)"', page.text)
    assert (
        "Acme integration can no longer act for Acme with this company token: 1 access token "
        "stops working at once."
    ) in page.text
    _post(client, action, page.text, confirmed="yes")
    assert _me(client, tokens["access_token"]) == 401


def test_a_grant_of_someone_else_is_not_revoked_from_a_persons_page(
    client: TestClient, world: World
) -> None:
    tokens = grant_as(client, world, world.employee, scope="read")
    _as(client, world.admin)
    page = client.get(f"/people/{world.employee.id}")
    [action] = re.findall(r'action="/people/\d+(/grants/\d+/revoke)"', page.text)
    refused = _post(client, f"/people/{world.admin.id}{action}", page.text, confirmed="yes")
    assert refused.status_code == 404
    assert _me(client, tokens["access_token"]) == 200
    _as(client, world.other_admin)
    other = client.get("/people")
    foreign = _post(client, f"/people/{world.employee.id}{action}", other.text, confirmed="yes")
    assert foreign.status_code == 404
    assert _me(client, tokens["access_token"]) == 200


def test_forms_without_a_csrf_token_change_nothing(client: TestClient, world: World) -> None:
    _as(client, world.admin)
    for path in (
        f"/people/{world.employee.id}/deactivate",
        f"/people/{world.employee.id}/invite",
        "/people",
    ):
        response = client.post(
            path, data={"confirmed": "yes", "email": "x@acme.example", "name": "X"}
        )
        assert response.status_code == 403, path
    assert "Deactivated" not in client.get("/people").text
    assert _events(world, "user.") == []


def test_people_without_a_password_are_told_apart_from_the_migration_on(world: World) -> None:
    async def work(uow: Any) -> tuple[bool, bool]:
        with_password = await uow.accounts.create_user(
            company_id=world.company_a, email="p@acme.example", name="P",
            password_hash=hash_password("long enough"), admin=False, now=1,
        )  # fmt: skip
        without = await uow.accounts.create_user(
            company_id=world.company_a, email="n@acme.example", name="N",
            password_hash=None, admin=False, now=1,
        )  # fmt: skip
        a = await uow.accounts.person(with_password.id, 1)
        b = await uow.accounts.person(without.id, 1)
        return a.has_password, b.has_password

    assert world.run(work) == (True, False)
