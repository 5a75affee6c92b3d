"""The audit trail records security events for admins, and never a secret."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from limits import parse
from sqlalchemy import select

from grantly import throttle
from grantly.store import tables as t
from grantly.web import audit_page
from tests.conftest import (
    World,
    authorize_params,
    consent,
    csrf_of,
    dump_database,
    exchange,
    obtain_code,
    sign_in,
)
from tests.security.conftest import audit_trail


def _events(world: World) -> list[tuple[str, int | None]]:
    async def work(connection):
        rows = await connection.tx.rows(
            select(t.audit_events.c.event, t.audit_events.c.company_id).order_by(
                t.audit_events.c.id
            )
        )
        return [tuple(row) for row in rows]

    return world.run(work)


def test_a_full_flow_leaves_its_events(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    tokens = exchange(client, world.app, code).json()
    auth = (world.app.client_id, world.app.client_secret or "")
    client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=auth,
    )
    client.post("/oauth/revoke", data={"token": tokens["access_token"]}, auth=auth)
    names = [name for name, _ in _events(world)]
    assert names == [
        "sign_in.succeeded",
        "authorization.granted",
        "token.issued",
        "token.refreshed",
        "token.revoked",
    ]
    assert {company for _, company in _events(world)} == {world.company_a}


def test_replays_and_denials_are_recorded(client: TestClient, world: World) -> None:
    code = obtain_code(client, world)
    exchange(client, world.app, code)
    exchange(client, world.app, code)
    consent(client, authorize_params(world.app), decision="deny")
    names = [name for name, _ in _events(world)]
    assert "code.replayed" in names and "authorization.denied" in names


def test_refresh_token_reuse_is_recorded(client: TestClient, world: World) -> None:
    tokens = exchange(client, world.app, obtain_code(client, world)).json()
    auth = (world.app.client_id, world.app.client_secret or "")
    for _ in range(2):
        client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=auth,
        )
    assert "refresh_token.reused" in [name for name, _ in _events(world)]


def test_application_changes_are_recorded_and_shown_to_admins(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    page = client.get(f"/oauth/applications/{world.app.id}")
    regenerated = client.post(
        f"/oauth/applications/{world.app.id}/secret",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    secret = regenerated.text.split('id="client-secret">')[1].split("<")[0]
    trail = client.get("/audit")
    assert trail.status_code == 200
    assert "Client secret regenerated" in trail.text
    assert world.admin.email in trail.text
    assert secret not in trail.text
    assert secret not in dump_database(world.settings)


def test_the_audit_trail_is_for_admins_of_the_company_only(
    client: TestClient, world: World
) -> None:
    obtain_code(client, world)  # an event of company A
    client.cookies.clear()
    sign_in(client, world.employee)
    assert client.get("/audit").status_code == 403
    client.cookies.clear()
    sign_in(client, world.other_admin)
    [own_sign_in] = _rows(client.get("/audit").text)  # the filter still lists every kind
    assert "Signed in" in own_sign_in


def _application_id(world: World, name: str) -> int:
    async def work(uow):
        rows = await uow.tx.rows(select(t.applications.c.id).where(t.applications.c.name == name))
        [(found,)] = [tuple(row) for row in rows]
        return found

    return world.run(work)


def _register(client: TestClient, name: str) -> None:
    page = client.get("/oauth/applications/new")
    created = client.post(
        "/oauth/applications",
        data={
            "csrf_token": csrf_of(page.text),
            "name": name,
            "redirect_uris": "https://doomed.example/cb",
            "confidential": "on",
            "scopes": ["read"],
        },
    )
    assert created.status_code == 201


def test_a_deleted_application_keeps_its_name_and_its_id_in_the_trail(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    _register(client, "Doomed")
    doomed = _application_id(world, "Doomed")
    page = client.get(f"/oauth/applications/{doomed}")
    deleted = client.post(
        f"/oauth/applications/{doomed}/delete",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    assert deleted.status_code == 303
    _register(client, "Successor")  # the newest application is gone: its id must not return
    successor = _application_id(world, "Successor")
    assert successor > doomed

    trail = client.get("/audit").text
    # Its two events name it as it was, unlinked; the successor's links to it, by its name now.
    assert trail.count('Doomed <span class="muted">(deleted)</span>') == 2
    assert f'href="/oauth/applications/{doomed}"' not in trail
    assert trail.count(f'<a href="/oauth/applications/{successor}">Successor</a>') == 1


# --- the page: filters, paging, words ----------------------------------------------------

DAY = 86400


def _record(world: World, *events: dict[str, Any]) -> None:
    """Events written straight to the trail, each with its own time (``now``)."""

    async def work(uow):
        for event in events:
            await uow.audit.record(
                event.pop("event"), company_id=event.pop("company_id", world.company_a), **event
            )

    world.run(work)


def _rows(page: str) -> list[str]:
    """The trail's rows on a page, in order."""
    return re.findall(r'<tr class="event-[^"]+">(.*?)</tr>', page, flags=re.S)


def _admin(client: TestClient, world: World) -> None:
    sign_in(client, world.admin)


def test_each_filter_narrows_the_trail(client: TestClient, world: World) -> None:
    now = int(time.time())
    _record(
        world,
        {"event": "token.issued", "now": now - 3 * DAY, "application_id": world.app.id},
        {"event": "token.revoked", "now": now - 2 * DAY, "actor_user_id": world.employee.id},
        {"event": "api_key.created", "now": now - DAY, "name": "Backups", "hint": "gak_12"},
    )
    _admin(client, world)  # a sign-in event of its own, now

    def rows(**params: str) -> list[str]:
        page = client.get("/audit", params=params)
        assert page.status_code == 200, page.text
        return _rows(page.text)

    assert len(rows()) == 4
    assert [r for r in rows(event="token.revoked")] == rows(person=world.employee.email)
    assert (
        len(rows(event="token.revoked")) == 1 and "Token revoked" in rows(event="token.revoked")[0]
    )
    assert len(rows(event="token.*")) == 2
    assert len(rows(event="sign_in.*")) == 1
    assert rows(person=str(world.employee.id)) == rows(person=world.employee.email)
    [issued] = rows(application=str(world.app.id))
    assert "Token issued" in issued
    day = lambda ago: time.strftime("%Y-%m-%d", time.gmtime(now - ago * DAY))  # noqa: E731
    assert len(rows(**{"from": day(2)})) == 3  # the whole "from" day, then every day after
    assert len(rows(to=day(2))) == 2  # every day up to, and with, the "to" day
    assert len(rows(**{"from": day(2), "to": day(1)})) == 2
    assert len(rows(event="token.*", **{"from": day(2)})) == 1
    assert "4 events" in client.get("/audit").text
    assert "1 event matches these filters" in client.get("/audit?event=token.issued").text


def test_the_trail_is_paged_on_the_server_newest_first(client: TestClient, world: World) -> None:
    now = int(time.time()) - DAY
    _record(
        world,
        *(
            {"event": "token.issued", "now": now + n // 2, "scope": f"read n{n:03}"}
            for n in range(120)
        ),
    )
    _admin(client, world)
    seen: list[str] = []
    page = client.get("/audit?event=token.issued")
    pages = 0
    while True:
        pages += 1
        rows = _rows(page.text)
        assert len(rows) == (50 if pages < 3 else 20)
        seen += [re.search(r"n\d{3}", row).group(0) for row in rows]
        older = re.search(r'href="(/audit\?[^"]*before=\d+)" rel="next"', page.text)
        if older is None:
            break
        page = client.get(html.unescape(older.group(1)))
        assert "event=token.issued" in older.group(1)  # the filter goes along
        assert 'rel="prev"' in page.text
    assert pages == 3

    # Each once, newest first, and at one second the later id first (one unit's events, as
    # these are, may get their ids in any order on PostgreSQL).
    async def order(uow):
        e = t.audit_events
        rows = await uow.tx.rows(
            select(e.c.detail)
            .where(e.c.event == "token.issued")
            .order_by(e.c.created_at.desc(), e.c.id.desc())
        )
        return [json.loads(row.detail)["scope"].split()[1] for row in rows]

    assert seen == world.run(order)
    assert sorted(seen) == [f"n{n:03}" for n in range(120)]
    assert seen[:2] in (["n119", "n118"], ["n118", "n119"])
    # And back: the page newer than the last one is the second one.
    newer = re.search(r'href="(/audit\?[^"]*after=\d+)" rel="prev"', page.text).group(1)
    back = _rows(client.get(html.unescape(newer)).text)
    assert [re.search(r"n\d{3}", row).group(0) for row in back] == seen[50:100]


def test_details_read_as_words_and_the_time_as_one_time_element(
    client: TestClient, world: World
) -> None:
    _admin(client, world)
    _register(client, "Readable")
    page = client.get("/audit?event=application.created").text
    [row] = _rows(page)
    assert '<span class="detail">confidential: yes</span>' in row
    assert '<span class="detail">scope: read</span>' in row
    assert "name: Readable" in row
    assert "{" not in row and "true" not in row
    stamp = re.search(
        r'<time datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)" data-local>([^<]+)</time>', row
    )
    assert stamp and stamp.group(2).endswith(" UTC") and "\n" not in stamp.group(2)
    assert '<script src="/static/time.js" defer></script>' in page
    assert f'<a href="/people/{world.admin.id}">admin</a>' in row
    assert world.admin.email in row
    application = _application_id(world, "Readable")
    assert f'<a href="/oauth/applications/{application}">Readable</a>' in row
    assert 'class="table-scroll"' in page  # 375 px wide: the table scrolls, the page does not
    assert client.get("/static/time.js").status_code == 200


def test_events_of_people_and_unknown_events_still_read(client: TestClient, world: World) -> None:
    """Invitations, passwords and (de)activations get their words; an event this version does
    not know shows its raw name, and its detail's keys with spaces."""
    now = int(time.time())
    _record(
        world,
        {"event": "user.deactivated", "now": now, "actor_user_id": world.admin.id},
        {"event": "user.invited", "now": now, "actor_user_id": world.admin.id},
    )

    async def unknown(uow):
        from sqlalchemy import insert

        await uow.tx.execute(
            insert(t.audit_events).values(
                event="future.thing",
                company_id=world.company_a,
                detail='{"odd_key": true, "list_of": ["a", "b"]}',
                created_at=now,
            )
        )

    world.run(unknown)
    _admin(client, world)
    page = client.get("/audit").text
    assert "Person deactivated" in page and "Person invited" in page
    assert "future.thing" in page
    assert "odd key: yes" in page and "list of: a, b" in page


# --- bad input, and who may see it --------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "is a date written 2026-12-31"),
        ({"to": "2026-02-30"}, "is a date written 2026-12-31"),
        ({"from": "2026-W01-1"}, "is a date written 2026-12-31"),
        ({"from": "0001-01-01"}, "is a day from 1970 to 9998, not 0001-01-01"),
        ({"to": "9999-12-31"}, "is a day from 1970 to 9998, not 9999-12-31"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "is after the"),
        ({"person": "99999999999999999999"}, "named by an email address or an id"),
        ({"person": "12345"}, "No one at your company has the id 12345"),
        ({"person": "nobody@example.com"}, "No one at your company has the email address"),
        ({"person": "admin@globex.example"}, "No one at your company has the email address"),
        ({"application": "-1"}, "An application is named by a number"),
        ({"application": "2147483648"}, "An application is named by a number"),
        ({"event": "token.stolen"}, "There is no event type “token.stolen”"),
        ({"event": "nope.*"}, "There is no event type"),
        ({"before": "abc"}, "A page is named by a number"),
        ({"before": "1", "after": "2"}, "either before an event or after one"),
        ({"before": "2147483647"}, "not in your company's trail"),
        ({"event": "x" * 5000}, "too long"),
    ],
)
def test_a_filter_that_cannot_be_read_gets_a_message_not_a_server_error(
    client: TestClient, world: World, params: dict[str, str], message: str
) -> None:
    _admin(client, world)
    for path in ("/audit", "/audit/export.csv", "/audit/export.json"):
        if path != "/audit" and ("before" in params or "after" in params):
            continue  # an export has no pages
        page = client.get(path, params=params)
        assert page.status_code == 400, (path, page.text[:300])
        assert page.headers["content-type"].startswith("text/html")
        assert message in html.unescape(page.text), page.text
        assert '<form method="get" action="/audit"' in page.text


def test_only_admins_see_the_trail_and_its_exports(client: TestClient, world: World) -> None:
    for path in ("/audit", "/audit/export.csv", "/audit/export.json"):
        anonymous = client.get(path + "?event=token.issued")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?" + urlencode(
            {"next": path + "?event=token.issued"}
        )
    sign_in(client, world.employee)
    for path in ("/audit", "/audit/export.csv", "/audit/export.json"):
        refused = client.get(path)
        assert refused.status_code == 403
        assert "Only admins see the audit trail" in refused.text


def test_another_companys_events_are_in_no_page_filter_or_export(
    client: TestClient, world: World
) -> None:
    _record(
        world,
        {
            "event": "token.issued",
            "now": int(time.time()),
            "company_id": world.company_b,
            "application_id": world.other_app.id,
            "actor_user_id": world.other_admin.id,
        },
    )
    _admin(client, world)
    assert _rows(client.get(f"/audit?application={world.other_app.id}").text) == []
    assert client.get(f"/audit?person={world.other_admin.id}").status_code == 400
    assert "Token issued" not in client.get("/audit/export.csv").text
    assert json.loads(client.get("/audit/export.json?event=token.issued").text)["events"] == []

    async def b_event(uow):
        e = t.audit_events
        return await uow.tx.scalar(select(e.c.id).where(e.c.company_id == world.company_b))

    assert client.get(f"/audit?before={world.run(b_event)}").status_code == 400  # no anchor


# --- exports --------------------------------------------------------------------------------


def test_the_csv_export_holds_the_filtered_set_as_an_attachment(
    client: TestClient, world: World
) -> None:
    now = int(time.time())
    _record(
        world,
        {"event": "token.issued", "now": now - 2, "application_id": world.app.id, "scope": "read"},
        {"event": "token.revoked", "now": now - 1, "application_id": world.app.id},
        {"event": "token.issued", "now": now, "application_id": world.other_app.id},
    )
    _admin(client, world)
    page = client.get(f"/audit?application={world.app.id}").text
    link = html.unescape(re.search(r'href="(/audit/export\.csv[^"]*)"', page).group(1))
    assert link == f"/audit/export.csv?application={world.app.id}"
    export = client.get(link)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert export.headers["content-disposition"].startswith('attachment; filename="grantly-audit-')
    assert export.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [row["event"] for row in rows] == ["token.revoked", "token.issued"]
    assert rows[1]["application_name"] == "Acme integration"
    assert rows[1]["application_deleted"] == "no"
    assert rows[1]["details"].startswith("scope: read")
    assert rows[1]["time_utc"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 2))


def test_the_json_export_holds_the_filtered_set_with_its_filters(
    client: TestClient, world: World
) -> None:
    _admin(client, world)
    _register(client, "Exported")
    export = client.get("/audit/export.json?event=application.*")
    assert export.status_code == 200
    assert export.headers["content-disposition"].endswith('.json"')
    assert export.headers["cache-control"] == "no-store"
    document = export.json()
    assert document["filters"] == {"event": "application.*"}
    assert document["truncated"] is False and document["exported"] == 1
    [event] = document["events"]
    assert event["event"] == "application.created"
    assert event["detail"]["confidential"] is True
    assert "confidential: yes" in event["details"]
    assert event["person"] == {"id": world.admin.id, "name": "admin", "email": world.admin.email}
    assert event["application"]["name"] == "Exported"
    assert event["application"]["deleted"] is False


def test_the_export_is_bounded_and_says_when_it_is_cut(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_page, "EXPORT_LIMIT", 5)
    monkeypatch.setattr(audit_page, "EXPORT_BATCH", 2)
    now = int(time.time())
    _record(world, *({"event": "token.issued", "now": now - n} for n in range(8)))
    _admin(client, world)
    document = client.get("/audit/export.json?event=token.issued").json()
    assert document["exported"] == 5 and document["truncated"] is True
    assert [e["time"] for e in document["events"]] == sorted(
        (e["time"] for e in document["events"]), reverse=True
    )
    rows = list(csv.reader(io.StringIO(client.get("/audit/export.csv?event=token.issued").text)))
    assert len(rows) == 1 + 5


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted_as_text(
    client: TestClient, world: World
) -> None:
    _admin(client, world)
    for name in ('=HYPERLINK("http://evil.example","x")', "+1+1", "-2", "@SUM(A1)"):
        _register(client, name)
    export = client.get("/audit/export.csv?event=application.created").text
    names = [row["application_name"] for row in csv.DictReader(io.StringIO(export))]
    assert sorted(names) == sorted(
        ['\'=HYPERLINK("http://evil.example","x")', "'+1+1", "'-2", "'@SUM(A1)"]
    )
    assert not any(cell[:1] in "=+-@" for row in csv.reader(io.StringIO(export)) for cell in row)


def test_a_deleted_application_is_exported_with_the_name_it_had(
    client: TestClient, world: World
) -> None:
    sign_in(client, world.admin)
    _register(client, "Gone")
    gone = _application_id(world, "Gone")
    page = client.get(f"/oauth/applications/{gone}")
    client.post(
        f"/oauth/applications/{gone}/delete",
        data={"csrf_token": csrf_of(page.text), "confirmed": "yes"},
    )
    document = client.get(f"/audit/export.json?application={gone}").json()
    assert [e["application"] for e in document["events"]] == [
        {"id": gone, "name": "Gone", "deleted": True}
    ] * 2
    trail = client.get(f"/audit?application={gone}").text
    assert f"Application #{gone} (deleted)" in trail  # the filter's choice, though it is gone


# --- sign-in events -------------------------------------------------------------------------


def _try(client: TestClient, email: str, password: str) -> int:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
    ).status_code


def test_a_sign_in_is_recorded_for_the_persons_company(client: TestClient, world: World) -> None:
    sign_in(client, world.employee)
    [trace] = audit_trail(world)
    assert (trace.event, trace.company_id, trace.actor_user_id) == (
        "sign_in.succeeded",
        world.company_a,
        world.employee.id,
    )
    assert trace.detail == {"known_browser": False}


def test_a_failed_sign_in_is_recorded_for_the_accounts_company_without_the_password(
    client: TestClient, world: World
) -> None:
    guess = "Tr0ub4dor&3-guess"
    assert _try(client, world.employee.email, guess) == 401
    [trace] = audit_trail(world)
    assert (trace.event, trace.company_id, trace.actor_user_id) == (
        "sign_in.failed",
        world.company_a,
        world.employee.id,
    )
    assert trace.detail["reason"] == "wrong password"
    assert guess not in dump_database(world.settings)
    sign_in(client, world.admin)
    assert "Sign-in failed" in client.get("/audit?event=sign_in.failed").text


def test_a_failed_sign_in_of_a_deactivated_account_says_so(
    client: TestClient, world: World
) -> None:
    async def deactivate(uow):
        await uow.accounts.deactivate(world.employee.id, int(time.time()))

    world.run(deactivate)
    assert _try(client, world.employee.email, world.employee.password) == 401
    [trace] = audit_trail(world)
    assert trace.detail["reason"] == "account deactivated"


def test_a_sign_in_with_an_email_no_one_has_is_recorded_nowhere(
    client: TestClient, world: World
) -> None:
    assert _try(client, "stranger@acme.example", "whatever-guess") == 401
    assert audit_trail(world) == []


def test_a_stranger_cannot_fill_a_companys_trail_with_failed_sign_ins(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failures of every account of a company share one budget of the trail (the throttle's
    limits are per account): past it they are counted, not written, and the last one written
    says so. Another company's budget is its own."""
    monkeypatch.setattr(throttle, "AUDITED_SIGN_IN_FAILURES_PER_COMPANY", parse("3/15 minutes"))
    for n in range(3):
        for person in (world.admin, world.employee):
            assert _try(client, person.email, f"guess-{n}") == 401
    assert _try(client, world.other_admin.email, "guess") == 401
    failed = [t for t in audit_trail(world) if t.event == "sign_in.failed"]
    assert [t.company_id for t in failed] == [world.company_a] * 3 + [world.company_b]
    assert failed[2].detail.get("later_failures_unrecorded") is True
    assert "later_failures_unrecorded" not in failed[1].detail
    sign_in(client, world.admin)
    assert "failed sign-ins is spent" in client.get("/audit?event=sign_in.failed").text
