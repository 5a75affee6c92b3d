"""The audit trail records security events for admins, and never a secret."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from grantly.store import tables as t
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
        f"/oauth/applications/{world.app.id}/secret", data={"csrf_token": csrf_of(page.text)}
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
    assert "Authorization granted" not in client.get("/audit").text


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
        f"/oauth/applications/{doomed}/delete", data={"csrf_token": csrf_of(page.text)}
    )
    assert deleted.status_code == 303
    _register(client, "Successor")  # the newest application is gone: its id must not return
    successor = _application_id(world, "Successor")
    assert successor > doomed

    trail = client.get("/audit").text
    assert trail.count(f'Doomed <span class="muted">(#{doomed}, deleted)</span>') == 2
    assert trail.count(f'Successor <span class="muted">(#{successor})</span>') == 1
    assert f"(#{doomed})" not in trail
