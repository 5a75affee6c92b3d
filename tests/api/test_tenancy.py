"""Nothing of company A is visible or changeable with company B's credentials: another
company's employee answers exactly as an unknown id does (404), and lists are filtered."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import (
    EMPLOYEES,
    Target,
    api_key,
    bearer,
    company_token,
    dashboard_api_key,
    user_token,
)
from tests.conftest import World


def _b_headers(client: TestClient, world: World) -> dict[str, str]:
    return api_key(dashboard_api_key(client, world.other_admin))


def test_another_company_s_employee_is_indistinguishable_from_an_unknown_id(
    client: TestClient, world: World, target: Target
) -> None:
    headers = _b_headers(client, world)
    theirs = client.get(f"{EMPLOYEES}/{target.id}", headers=headers)
    unknown = client.get(f"{EMPLOYEES}/999999", headers=headers)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == unknown.json()


def test_ids_of_another_company_are_dropped_from_a_filtered_list(
    client: TestClient, world: World, target: Target
) -> None:
    token = company_token(client, world.other_admin, world.other_app)
    response = client.get(
        EMPLOYEES,
        headers=bearer(token),
        params={"ids[]": [target.id, world.admin.id, world.other_admin.id]},
    )
    assert [e["id"] for e in response.json()["data"]] == [world.other_admin.id]


def test_emails_of_another_company_find_no_one(
    client: TestClient, world: World, target: Target
) -> None:
    token = user_token(client, world.other_admin, world.other_app)
    response = client.get(EMPLOYEES, headers=bearer(token), params={"emails[]": target.email})
    assert response.json()["data"] == []
    assert response.json()["meta"]["total"] == 0


def test_another_company_cannot_change_terminate_or_unterminate_an_employee(
    client: TestClient, world: World, target: Target
) -> None:
    headers = _b_headers(client, world)
    answers = [
        client.put(f"{EMPLOYEES}/{target.id}", headers=headers, json={"first_name": "Mallory"}),
        client.post(
            f"{EMPLOYEES}/terminate",
            headers=headers,
            json={"id": target.id, "terminated_on": "2030-01-01"},
        ),
        client.post(f"{EMPLOYEES}/unterminate", headers=headers, json={"id": target.id}),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404]

    async def read(connection):
        return await connection.people.get(world.company_a, target.id)

    employee = world.run(read)
    assert employee.first_name == "Tara" and employee.active and employee.terminated_on is None


def test_an_employee_cannot_be_created_in_another_company(client: TestClient, world: World) -> None:
    headers = _b_headers(client, world)
    response = client.post(
        f"{EMPLOYEES}/create_with_contract",
        headers=headers,
        json={
            "company_id": world.company_a,
            "first_name": "Eve",
            "last_name": "Intruder",
            "email": "eve@intruder.example",
        },
    )
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    key = dashboard_api_key(client, world.admin)
    emails = [e["email"] for e in client.get(EMPLOYEES, headers=api_key(key)).json()["data"]]
    assert "eve@intruder.example" not in emails


def test_a_manager_from_another_company_is_refused_as_unknown(
    client: TestClient, world: World, target: Target
) -> None:
    headers = api_key(dashboard_api_key(client, world.admin))
    response = client.put(
        f"{EMPLOYEES}/{target.id}", headers=headers, json={"manager_id": world.other_admin.id}
    )
    assert response.status_code == 422
    assert "no such employee" in response.json()["error_description"]


def test_a_company_s_list_counts_only_its_own_people(
    client: TestClient, world: World, target: Target
) -> None:
    a = client.get(EMPLOYEES, headers=api_key(dashboard_api_key(client, world.admin))).json()
    b = client.get(EMPLOYEES, headers=_b_headers(client, world)).json()
    assert {e["company_id"] for e in a["data"]} == {world.company_a}
    assert {e["company_id"] for e in b["data"]} == {world.company_b}
    assert a["meta"]["total"] == 3 and b["meta"]["total"] == 1
