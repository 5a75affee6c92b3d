"""The admins' page of agent applications (/oauth/agent_applications): which agent
applications people of the company authorized and who; the company's policy; revoking all of
an application's grants in the company, and blocking it there, without touching another
company's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grantly.app import create_app
from grantly.oauth import pkce
from grantly.store.audit import AuditQuery
from tests.conftest import World, callback_params, csrf_of, hidden_fields, sign_in

CALLBACK = "http://127.0.0.1:33418/callback"


def _client(world: World) -> TestClient:
    return TestClient(
        create_app(world.settings),
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
        client=("127.0.0.1", 50000),
    )


@pytest.fixture
def http(world: World) -> Iterator[TestClient]:
    with _client(world) as client:
        yield client


def _register(http: TestClient, name: str = "Helper agent") -> dict[str, Any]:
    created = http.post(
        "/oauth/register",
        json={
            "client_name": name,
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
        },
    )
    assert created.status_code == 201
    return dict(created.json())


def _token(http: TestClient, client_id: str) -> str:
    verifier = pkce.new_verifier()
    params = {
        "client_id": client_id,
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "code_challenge": pkce.s256(verifier),
        "code_challenge_method": "S256",
    }
    page = http.get("/oauth/authorize", params=params)
    code = callback_params(
        http.post("/oauth/authorize", data={**hidden_fields(page.text), "decision": "allow"})
    )["code"]
    response = http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    return str(response.json()["access_token"])


def _works(http: TestClient, token: str) -> bool:
    return http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _post(http: TestClient, path: str, **fields: str) -> Any:
    page = http.get("/oauth/agent_applications")
    return http.post(path, data={"csrf_token": csrf_of(page.text), **fields})


def test_only_admins_see_the_page(http: TestClient, world: World) -> None:
    sign_in(http, world.employee)
    assert http.get("/oauth/agent_applications").status_code == 403
    http.cookies.clear()
    assert http.get("/oauth/agent_applications").status_code == 303


def test_admins_see_who_authorized_and_revoke_all_in_their_company_only(
    world: World,
) -> None:
    with _client(world) as employee, _client(world) as admin, _client(world) as other:
        agent = _register(employee)
        sign_in(employee, world.employee)
        sign_in(other, world.other_admin)
        mine = _token(employee, agent["client_id"])
        theirs = _token(other, agent["client_id"])
        sign_in(admin, world.admin)
        page = admin.get("/oauth/agent_applications")
        assert "Helper agent" in page.text
        assert world.employee.email.split("@")[0] in page.text  # the person's name
        assert "127.0.0.1:33418" in page.text
        # Globex's page does not list Acme's people.
        assert world.employee.email.split("@")[0] not in other.get("/oauth/agent_applications").text

        application = world.run(lambda uow: uow.applications.by_client_id(agent["client_id"]))
        asked = _post(admin, f"/oauth/agent_applications/{application.id}/revoke")
        assert asked.status_code == 200 and "Revoke" in asked.text  # the confirm step
        assert _works(employee, mine)
        done = _post(admin, f"/oauth/agent_applications/{application.id}/revoke", confirmed="yes")
        assert done.status_code == 303
        assert not _works(employee, mine)
        assert _works(other, theirs)  # another company's grant is untouched
        # Not blocked: the person may authorize it again.
        assert _works(employee, _token(employee, agent["client_id"]))


def test_blocking_refuses_it_in_the_company_until_unblocked(world: World) -> None:
    with _client(world) as employee, _client(world) as admin, _client(world) as other:
        agent = _register(employee)
        sign_in(employee, world.employee)
        sign_in(other, world.other_admin)
        mine = _token(employee, agent["client_id"])
        sign_in(admin, world.admin)
        application = world.run(lambda uow: uow.applications.by_client_id(agent["client_id"]))
        done = _post(admin, f"/oauth/agent_applications/{application.id}/block", confirmed="yes")
        assert done.status_code == 303
        assert not _works(employee, mine)
        params = {
            "client_id": agent["client_id"],
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "code_challenge": pkce.s256(pkce.new_verifier()),
            "code_challenge_method": "S256",
        }
        refused = employee.get("/oauth/authorize", params=params)
        assert refused.status_code == 403
        assert "blocked this application" in refused.text
        assert other.get("/oauth/authorize", params=params).status_code == 200
        assert "blocked" in admin.get("/oauth/agent_applications").text
        _post(admin, f"/oauth/agent_applications/{application.id}/unblock")
        assert employee.get("/oauth/authorize", params=params).status_code == 200
        events = [
            e.event
            for e in world.run(lambda uow: uow.audit.batch(world.company_a, AuditQuery(), None, 50))
        ]
        assert "agent_application.blocked" in events
        assert "agent_application.unblocked" in events


def test_the_policy_blocks_every_agent_application(http: TestClient, world: World) -> None:
    agent = _register(http)
    sign_in(http, world.admin)
    assert 'value="allow" checked' in http.get("/oauth/agent_applications").text
    assert (
        _post(http, "/oauth/agent_applications/policy", agent_applications="block").status_code
        == 303
    )
    assert world.run(lambda uow: uow.agents.policy(world.company_a)) == "block"
    params = {
        "client_id": agent["client_id"],
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "code_challenge": pkce.s256(pkce.new_verifier()),
        "code_challenge_method": "S256",
    }
    refused = http.get("/oauth/authorize", params=params)
    assert refused.status_code == 403
    # A dashboard application of the company is not an agent application: unaffected.
    assert (
        http.get(
            "/oauth/authorize",
            params={
                "client_id": world.app.client_id,
                "redirect_uri": "https://client.example/callback",
                "response_type": "code",
            },
        ).status_code
        == 200
    )
    assert (
        _post(http, "/oauth/agent_applications/policy", agent_applications="maybe").status_code
        == 400
    )


def test_a_dashboard_application_is_not_an_agent_application(
    http: TestClient, world: World
) -> None:
    sign_in(http, world.admin)
    response = _post(http, f"/oauth/agent_applications/{world.other_app.id}/block", confirmed="yes")
    assert response.status_code == 404


def test_an_agent_application_the_company_never_dealt_with_is_not_found(
    world: World,
) -> None:
    """Not even its name is told to another company's admin."""
    with _client(world) as other, _client(world) as admin:
        agent = _register(other, "Secret project agent")
        sign_in(other, world.other_admin)
        _token(other, agent["client_id"])
        sign_in(admin, world.admin)
        application = world.run(lambda uow: uow.applications.by_client_id(agent["client_id"]))
        for action in ("revoke", "block", "unblock"):
            response = _post(admin, f"/oauth/agent_applications/{application.id}/{action}")
            assert response.status_code == 404, action
            assert "Secret project agent" not in response.text
